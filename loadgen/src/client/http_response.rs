//! A resumable reader of HTTP/1.1 responses on a keep-alive connection: the status line, the headers,
//! and a `Content-Length` body (or, without one, a body that ends when the server closes). It is the
//! client half the polling transport needs; `roomcast_engine::http` is the server half.
//!
//! Contract: [`ResponseReader::handle_bytes`] takes bytes in any split and returns one complete
//! response at a time with how many input bytes it used, so bytes of the next response (pipelined, or
//! read together) stay with the caller. Memory: the head is kept (≤ [`MAX_RESPONSE_HEAD`]); a body is
//! borrowed straight from the input when it arrives whole in one read, and otherwise collected, up to
//! the reader's body limit. Chunked bodies (`Transfer-Encoding`) are refused: Engine.IO servers send
//! `Content-Length`.

use std::fmt;

/// Largest response head accepted (status line and headers); Engine.IO answers carry a few hundred
/// bytes.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Body buffer capacity kept between responses; a bigger one is freed when the next starts.
const KEPT_BODY_CAPACITY: usize = 64 * 1024;

/// Why bytes are not a usable response. Each `Display` is a sentence fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// The head did not end within [`MAX_RESPONSE_HEAD`] bytes.
    HeadTooLong,
    /// The body is longer than the reader's limit (the announced or received length).
    BodyTooLong {
        /// The limit, bytes.
        limit: usize,
    },
    /// The connection closed in the middle of a response.
    Truncated,
    /// The head breaks HTTP/1.1 or uses what this reader does not support; the text says which.
    Malformed(&'static str),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::HeadTooLong => {
                write!(f, "HTTP response head longer than {MAX_RESPONSE_HEAD} bytes")
            }
            ResponseError::BodyTooLong { limit } => write!(f, "HTTP response body longer than {limit} bytes"),
            ResponseError::Truncated => f.write_str("connection closed in the middle of an HTTP response"),
            ResponseError::Malformed(why) => write!(f, "bad HTTP response: {why}"),
        }
    }
}

/// One complete response, borrowed from the reader and the input until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The status line's text after the code (empty if absent or not UTF-8).
    pub reason: &'a str,
    /// Whether the connection may carry another request: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`, never after a body that ended with the connection.
    pub keep_alive: bool,
    /// The body.
    pub body: &'a [u8],
    head: &'a [u8],
}

impl<'a> Response<'a> {
    /// The header lines as `(name, value)`, value trimmed, in order. Cost: one scan of the head.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        header_lines(self.head)
    }

    /// The body as text for a one-line message: at most 120 characters, control characters removed.
    pub fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(self.body).trim().chars().filter(|c| !c.is_control()).take(120).collect()
    }
}

/// What [`ResponseReader::handle_bytes`] made of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// No response is complete yet; every input byte was kept.
    Incomplete,
    /// A response ended `consumed` bytes into the input; the bytes after belong to what follows.
    Complete {
        /// The response.
        response: Response<'a>,
        /// Input bytes used, `1..=input.len()`.
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body {
        remaining: usize,
    },
    UntilClose,
    /// A response was handed out; the next call starts a new one.
    Done,
}

/// Reads the responses of one connection, one after the other. See the module docs.
#[derive(Debug)]
pub struct ResponseReader {
    max_body: usize,
    state: State,
    head: Vec<u8>,
    body: Vec<u8>,
    status: u16,
    keep_alive: bool,
}

impl ResponseReader {
    /// A reader that accepts bodies of at most `max_body` bytes. Allocates nothing until bytes come.
    pub fn new(max_body: usize) -> ResponseReader {
        ResponseReader {
            max_body,
            state: State::Head,
            head: Vec::new(),
            body: Vec::new(),
            status: 0,
            keep_alive: false,
        }
    }

    /// Whether part of a response has arrived and the rest has not.
    pub fn is_mid_response(&self) -> bool {
        match self.state {
            State::Head => !self.head.is_empty(),
            State::Body { .. } | State::UntilClose => true,
            State::Done => false,
        }
    }

    /// Feeds `input`; see [`Progress`]. After an error the reader is unusable (drop the connection).
    /// Cost: O(input); the head is copied once (≤ 8 KiB), a body only when it spans reads.
    pub fn handle_bytes<'a>(&'a mut self, input: &'a [u8]) -> Result<Progress<'a>, ResponseError> {
        if self.state == State::Done {
            self.start_next();
        }
        let mut used = 0;
        if self.state == State::Head {
            let Some(head_used) = self.read_head(input)? else { return Ok(Progress::Incomplete) };
            used = head_used;
        }
        let rest = input.get(used..).unwrap_or_default();
        match self.state {
            State::Head | State::Done => {
                // A body-less response: complete at the end of its head.
                self.state = State::Done;
                Ok(Progress::Complete { response: self.response(&[]), consumed: used })
            }
            State::Body { remaining } if self.body.is_empty() && rest.len() >= remaining => {
                self.state = State::Done;
                let body = rest.get(..remaining).unwrap_or_default();
                Ok(Progress::Complete { response: self.response(body), consumed: used + remaining })
            }
            State::Body { remaining } => {
                let take = rest.len().min(remaining);
                self.body.extend_from_slice(rest.get(..take).unwrap_or_default());
                if take < remaining {
                    self.state = State::Body { remaining: remaining - take };
                    return Ok(Progress::Incomplete);
                }
                self.state = State::Done;
                Ok(Progress::Complete { response: self.collected(), consumed: used + take })
            }
            State::UntilClose => {
                if self.body.len().saturating_add(rest.len()) > self.max_body {
                    return Err(ResponseError::BodyTooLong { limit: self.max_body });
                }
                self.body.extend_from_slice(rest);
                Ok(Progress::Incomplete)
            }
        }
    }

    /// The server closed the connection. `Ok(Some)`: that ended a body delimited by the close.
    /// `Ok(None)`: the close fell between responses. `Err(Truncated)`: a response was cut short.
    pub fn handle_eof(&mut self) -> Result<Option<Response<'_>>, ResponseError> {
        match self.state {
            State::UntilClose => {
                self.state = State::Done;
                Ok(Some(self.collected()))
            }
            State::Head if self.head.is_empty() => Ok(None),
            State::Done => Ok(None),
            State::Head | State::Body { .. } => Err(ResponseError::Truncated),
        }
    }

    fn start_next(&mut self) {
        self.head.clear();
        self.body.clear();
        if self.body.capacity() > KEPT_BODY_CAPACITY {
            // One big answer must not pin its buffer for the connection's life.
            self.body = Vec::new();
        }
        self.state = State::Head;
    }

    /// Adds input to the head. `Ok(Some(n))`: the head ended `n` bytes into `input`, was parsed, and
    /// the state now says how the body is framed.
    fn read_head(&mut self, input: &[u8]) -> Result<Option<usize>, ResponseError> {
        let before = self.head.len();
        let overlap = before.saturating_sub(3);
        let take = input.len().min(MAX_RESPONSE_HEAD.saturating_sub(before));
        self.head.extend_from_slice(input.get(..take).unwrap_or_default());
        let search = self.head.get(overlap..).unwrap_or_default();
        let Some(end) = search.windows(4).position(|w| w == b"\r\n\r\n").map(|p| overlap + p + 4) else {
            if self.head.len() >= MAX_RESPONSE_HEAD {
                return Err(ResponseError::HeadTooLong);
            }
            return Ok(None);
        };
        self.head.truncate(end);
        self.parse_head()?;
        // The terminator ends in this input, so `end > before`.
        Ok(Some(end - before))
    }

    fn parse_head(&mut self) -> Result<(), ResponseError> {
        let status_line = self.head.split(|&b| b == b'\n').next().unwrap_or_default();
        let status_line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
        let http10 = match status_line.get(..9) {
            Some(b"HTTP/1.1 ") => false,
            Some(b"HTTP/1.0 ") => true,
            _ => return Err(ResponseError::Malformed("not an HTTP/1.x response")),
        };
        let after = status_line.get(9..).unwrap_or_default();
        let code = after.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
        let code = code.ok_or(ResponseError::Malformed("status code is not 3 digits"))?;
        if !matches!(after.get(3), None | Some(b' ')) {
            return Err(ResponseError::Malformed("status code is not 3 digits"));
        }
        self.status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let (mut length, mut close, mut keep) = (None::<usize>, false, false);
        for line in self.head.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                return Err(ResponseError::Malformed("folded header line"));
            }
            let (name, value) =
                split_header(line).ok_or(ResponseError::Malformed("header line without ':'"))?;
            if name.eq_ignore_ascii_case(b"content-length") {
                let n =
                    parse_length(value).ok_or(ResponseError::Malformed("Content-Length is not a number"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ResponseError::Malformed("two different Content-Length headers"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return Err(ResponseError::Malformed("Transfer-Encoding bodies are not supported"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        self.keep_alive = !close && (!http10 || keep);
        let bodyless = matches!(self.status, 100..=199 | 204 | 304);
        self.state = match length {
            _ if bodyless => State::Head,
            Some(n) if n > self.max_body => return Err(ResponseError::BodyTooLong { limit: self.max_body }),
            Some(n) => State::Body { remaining: n },
            None => {
                self.keep_alive = false;
                State::UntilClose
            }
        };
        Ok(())
    }

    fn response<'a>(&'a self, body: &'a [u8]) -> Response<'a> {
        let first = self.head.split(|&b| b == b'\n').next().unwrap_or_default();
        let reason = first.get(13..).unwrap_or_default();
        let reason = std::str::from_utf8(reason).unwrap_or_default().trim();
        Response { status: self.status, reason, keep_alive: self.keep_alive, body, head: &self.head }
    }

    fn collected(&self) -> Response<'_> {
        self.response(&self.body)
    }
}

fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|&b| b == b':')?;
    let name = line.get(..at)?;
    if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    Some((name, line.get(at + 1..)?.trim_ascii()))
}

fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 15 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

fn header_lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(split_header)
}

#[cfg(test)]
#[path = "http_response_tests.rs"]
mod tests;
