//! The resumable request-head parser: bytes in, one [`RequestHead`] out per request.
//!
//! Wire rules this parser enforces (RFC 9112, strict where the RFC allows a choice):
//! - Lines end with CRLF. A bare LF or a bare CR anywhere in the head is a peer error (RFC 9112 §2.2 lets a
//!   server accept bare LF; we reject it, so there is exactly one way to end a line).
//! - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2 "SHOULD ignore"); they count
//!   toward `max_head_bytes`.
//! - The head ends at the first empty line. Bytes after it are never consumed: they are the body or the
//!   next pipelined request.

use super::request::RequestHead;
use crate::error::{Error, Limit, PeerMisbehaved};

/// Size limits for one request head. Both are peer-facing limits: going past them is
/// [`Error::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest request head accepted, in bytes, from the first byte of the request line (or of a skipped
    /// leading empty line) to the end of the blank line. Default 8 KiB: Engine.IO requests from browsers
    /// are a few hundred bytes plus cookies; nginx's default `large_client_header_buffers` line size is
    /// the same 8 KiB. The parser never buffers more than this per connection.
    pub max_head_bytes: usize,
    /// Most header fields accepted in one head. Default 64: browsers send about 20.
    pub max_headers: usize,
}

impl HeadLimits {
    /// Default for [`HeadLimits::max_head_bytes`].
    pub const DEFAULT_MAX_HEAD_BYTES: usize = 8 * 1024;
    /// Default for [`HeadLimits::max_headers`].
    pub const DEFAULT_MAX_HEADERS: usize = 64;
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits { max_head_bytes: Self::DEFAULT_MAX_HEAD_BYTES, max_headers: Self::DEFAULT_MAX_HEADERS }
    }
}

/// What one call to [`RequestHeadParser::handle_bytes`] achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadProgress {
    /// The head is not complete yet. Every byte of the input was consumed (and buffered); feed more.
    Incomplete,
    /// A whole head was parsed.
    Complete {
        /// The parsed head; owns a copy of its bytes.
        head: RequestHead,
        /// How many bytes of this call's input belonged to the head, `1 <= consumed <= input.len()`.
        /// `input[consumed..]` was not looked at: it is the body or the next request.
        consumed: usize,
    },
}

/// Incremental request-head parser for one connection.
///
/// Feed it whatever the socket delivered; it copies at most [`HeadLimits::max_head_bytes`] bytes into its
/// carry-over buffer and hands back a [`RequestHead`] once the blank line arrives, then is ready for the next
/// request on the same connection.
///
/// Cost: one pass over the new bytes per call plus one pass over the whole head when it completes; one
/// allocation for the head bytes (moved into the [`RequestHead`], not copied again) and one for its header
/// table.
///
/// After an error the connection must be closed (the error says whose fault it was); the parser's state is
/// then unspecified but calling it again never panics.
#[derive(Debug, Default)]
pub struct RequestHeadParser {
    limits: HeadLimits,
    /// Bytes of the unfinished head. Invariant: `buf.len() < limits.max_head_bytes` between calls.
    buf: Vec<u8>,
    scan: LineScanner,
}

impl RequestHeadParser {
    /// A parser for one connection, idle.
    /// `limits.max_head_bytes` is clamped to `u32::MAX`.
    pub fn new(mut limits: HeadLimits) -> Self {
        limits.max_head_bytes = limits.max_head_bytes.min(u32::MAX as usize);
        RequestHeadParser { limits, buf: Vec::new(), scan: LineScanner::default() }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> HeadLimits {
        self.limits
    }

    /// Bytes of an unfinished head held in the carry-over buffer (0 between requests, so a keep-alive
    /// connection with `buffered() == 0` that the peer closes ended cleanly).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Consumes bytes of a request head.
    ///
    /// Returns [`HeadProgress::Complete`] as soon as the blank line ending the head is seen, consuming
    /// nothing after it; the caller re-feeds the rest (body, or the next pipelined request) to whatever
    /// comes next. Errors: [`PeerMisbehaved::HttpMalformed`] / [`PeerMisbehaved::HttpVersion`] /
    /// [`PeerMisbehaved::HttpTransferEncoding`] for bad syntax, [`Limit::HttpHeadSize`] /
    /// [`Limit::HttpHeaderCount`] past the limits.
    pub fn handle_bytes(&mut self, input: &[u8]) -> Result<HeadProgress, Error> {
        let max = self.limits.max_head_bytes;
        let room = max.saturating_sub(self.buf.len());
        let window = input.get(..room).unwrap_or(input);
        match self.scan.advance(window)? {
            Some(end) => {
                let mut bytes = std::mem::take(&mut self.buf);
                bytes.extend_from_slice(window.get(..end).unwrap_or(window));
                let request_line_start = self.scan.blank_prefix;
                self.scan = LineScanner::default();
                let head = RequestHead::parse(bytes, request_line_start, &self.limits)?;
                Ok(HeadProgress::Complete { head, consumed: end })
            }
            None => {
                // Not complete means at least one more byte is needed, which would not fit.
                if self.buf.len() + window.len() >= max {
                    return Err(Limit::HttpHeadSize { max }.into());
                }
                self.buf.extend_from_slice(window);
                Ok(HeadProgress::Incomplete)
            }
        }
    }
}

/// Finds the end of the head across chunk boundaries, checking line endings on the way.
#[derive(Debug, Default, Clone, Copy)]
struct LineScanner {
    /// The previous byte was a CR (so this one must be LF).
    prev_cr: bool,
    /// The current line has at least one byte besides its CR.
    line_has_content: bool,
    /// A non-empty line (the request line) has been seen.
    seen_request_line: bool,
    /// Bytes of empty lines skipped before the request line.
    blank_prefix: usize,
}

impl LineScanner {
    /// Scans `chunk`; returns the index just past the blank line ending the head, if it is in `chunk`.
    fn advance(&mut self, chunk: &[u8]) -> Result<Option<usize>, Error> {
        for (i, &byte) in chunk.iter().enumerate() {
            match byte {
                b'\n' => {
                    if !self.prev_cr {
                        return Err(PeerMisbehaved::HttpMalformed("bare LF in request head").into());
                    }
                    self.prev_cr = false;
                    if self.line_has_content {
                        self.line_has_content = false;
                        self.seen_request_line = true;
                    } else if self.seen_request_line {
                        return Ok(Some(i + 1));
                    } else {
                        self.blank_prefix += 2;
                    }
                }
                _ if self.prev_cr => {
                    return Err(PeerMisbehaved::HttpMalformed("bare CR in request head").into());
                }
                b'\r' => self.prev_cr = true,
                _ => self.line_has_content = true,
            }
        }
        Ok(None)
    }
}
