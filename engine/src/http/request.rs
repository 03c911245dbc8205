//! A parsed request head: the bytes stored once, plus ranges into them and the facts Engine.IO needs.

use super::head::HeadLimits;
use super::syntax::{
    list_items, malformed, parse_content_length, parse_header_line, parse_request_line, HeaderSpan, Lines,
    Span,
};
use crate::error::{Error, Limit, PeerMisbehaved};
use std::fmt;

/// The request method. Methods are case-sensitive (RFC 9110 §9.1): `get` is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Options,
    Head,
    Put,
    /// Any other syntactically valid method; [`RequestHead::method_str`] gives its name.
    Other,
}

impl Method {
    fn from_token(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"POST" => Method::Post,
            b"OPTIONS" => Method::Options,
            b"HEAD" => Method::Head,
            b"PUT" => Method::Put,
            _ => Method::Other,
        }
    }
}

/// The HTTP version of the request line. Responses are always written as `HTTP/1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Http10,
    Http11,
}

/// Whether the connection stays open after the response (RFC 9112 §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    /// Persistent: HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    KeepAlive,
    /// Close after the response: `Connection: close`, or HTTP/1.0 without `keep-alive`.
    Close,
}

/// What Engine.IO needs from the headers, gathered in the parse pass: list headers (`Connection`,
/// `Upgrade`, `Content-Length`) combined over repeats, the others as the span of their first occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Facts {
    content_length: Option<u64>,
    connection_close: bool,
    connection_keep_alive: bool,
    connection_upgrade: bool,
    upgrade_websocket: bool,
    hosts: u8,
    sec_websocket_key: Option<Span>,
    sec_websocket_version: Option<Span>,
    sec_websocket_protocol: Option<Span>,
    origin: Option<Span>,
    content_type: Option<Span>,
    access_control_request_headers: Option<Span>,
    user_agent: Option<Span>,
}

/// One parsed HTTP/1.x request head.
///
/// Guarantees, checked at parse time: the method is a token; the request target is non-empty printable
/// ASCII without spaces; header names are tokens; header values hold no control character but HTAB
/// (so reflecting a value into a response can never inject a header) and have no surrounding
/// whitespace; an HTTP/1.1 request has exactly one `Host`; there is no `Transfer-Encoding` (bodies are
/// delimited by `Content-Length` only); `Content-Length` values agree with each other.
///
/// `Debug` shows the method and path only: the query holds the session id and headers may hold cookies.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The head as received, from the request line through the blank line.
    bytes: Vec<u8>,
    method: Method,
    method_span: Span,
    /// The request target; `path_end` splits it into path and `?query` (the `#fragment`, if a client sent
    /// one, is dropped from the query).
    target: Span,
    path_end: usize,
    version: Version,
    headers: Vec<HeaderSpan>,
    facts: Facts,
}

impl RequestHead {
    /// Parses a complete head: `bytes[start..]` is the request line through the blank line, with every
    /// line ending in CRLF (the scanner guarantees it).
    pub(super) fn parse(bytes: Vec<u8>, start: usize, limits: &HeadLimits) -> Result<RequestHead, Error> {
        let mut lines = Lines { bytes: &bytes, pos: start };
        let request_line = lines.next().ok_or(malformed("missing request line"))?;
        let (method_span, target, version) = parse_request_line(&bytes, request_line)?;
        let method = Method::from_token(method_span.of(&bytes));
        let target_bytes = target.of(&bytes);
        let path_len =
            target_bytes.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(target_bytes.len());
        let path_end = target.start() + path_len;

        let line_estimate = bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(2);
        let mut headers = Vec::with_capacity(line_estimate.min(limits.max_headers));
        let mut facts = Facts::default();
        for line in lines {
            if headers.len() == limits.max_headers {
                return Err(Limit::HttpHeaderCount { max: limits.max_headers }.into());
            }
            let header = parse_header_line(&bytes, line)?;
            facts.record(header.name.of(&bytes), header.value, &bytes)?;
            headers.push(header);
        }
        match (version, facts.hosts) {
            (Version::Http11, 0) => return Err(malformed("missing Host header").into()),
            (_, 2..) => return Err(malformed("more than one Host header").into()),
            _ => {}
        }
        Ok(RequestHead { bytes, method, method_span, target, path_end, version, headers, facts })
    }

    /// The request method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method as sent (useful for [`Method::Other`]).
    pub fn method_str(&self) -> &str {
        self.ascii(self.method_span)
    }

    /// The HTTP version of the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The whole request target as sent, e.g. `/socket.io/?EIO=4&transport=polling`.
    pub fn target(&self) -> &str {
        self.ascii(self.target)
    }

    /// The target up to (not including) the first `?` or `#`, still percent-encoded.
    pub fn path(&self) -> &str {
        self.ascii(Span::new(self.target.start(), self.path_end))
    }

    /// The query string after `?` without the `?` and without any `#fragment`, still percent-encoded;
    /// empty when there is none. Parse it with [`EngineQuery::parse`](super::EngineQuery::parse).
    pub fn raw_query(&self) -> &str {
        let rest = self.ascii(Span::new(self.path_end, self.target.end()));
        let query = rest.strip_prefix('?').unwrap_or("");
        query.split('#').next().unwrap_or("")
    }

    /// Value of the first header named `name` (ASCII case-insensitive), without surrounding whitespace.
    /// Cost: a linear scan of the header table.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Values of every header named `name`, in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every header as `(name, value)`, in the order received. Names are as sent (not lower-cased).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|h| (self.ascii(h.name), h.value.of(&self.bytes)))
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The body length announced by `Content-Length`; `None` means no body (no chunked bodies exist here).
    pub fn content_length(&self) -> Option<u64> {
        self.facts.content_length
    }

    /// Whether the connection persists after this request's response.
    pub fn connection(&self) -> ConnectionMode {
        let keep = match self.version {
            Version::Http11 => !self.facts.connection_close,
            Version::Http10 => self.facts.connection_keep_alive && !self.facts.connection_close,
        };
        if keep {
            ConnectionMode::KeepAlive
        } else {
            ConnectionMode::Close
        }
    }

    /// An HTTP/1.1 request asking to switch to WebSocket: an `Upgrade` list naming `websocket` and a
    /// `Connection` list holding `upgrade` (both case-insensitive, across repeated headers). Says nothing
    /// about the method or the `Sec-WebSocket-*` headers; the classifier checks those.
    pub fn upgrade_websocket(&self) -> bool {
        self.version == Version::Http11 && self.facts.connection_upgrade && self.facts.upgrade_websocket
    }

    /// First `Sec-WebSocket-Key`.
    pub fn sec_websocket_key(&self) -> Option<&[u8]> {
        self.fact(self.facts.sec_websocket_key)
    }

    /// First `Sec-WebSocket-Version`.
    pub fn sec_websocket_version(&self) -> Option<&[u8]> {
        self.fact(self.facts.sec_websocket_version)
    }

    /// First `Sec-WebSocket-Protocol` (a comma list of subprotocols the client offers).
    pub fn sec_websocket_protocol(&self) -> Option<&[u8]> {
        self.fact(self.facts.sec_websocket_protocol)
    }

    /// First `Origin`.
    pub fn origin(&self) -> Option<&[u8]> {
        self.fact(self.facts.origin)
    }

    /// First `Content-Type`.
    pub fn content_type(&self) -> Option<&[u8]> {
        self.fact(self.facts.content_type)
    }

    /// First `Access-Control-Request-Headers` (reflected by a CORS preflight answer).
    pub fn access_control_request_headers(&self) -> Option<&[u8]> {
        self.fact(self.facts.access_control_request_headers)
    }

    /// First `User-Agent`.
    pub fn user_agent(&self) -> Option<&[u8]> {
        self.fact(self.facts.user_agent)
    }

    fn fact(&self, span: Option<Span>) -> Option<&[u8]> {
        span.map(|s| s.of(&self.bytes))
    }

    /// Text of a span that parsing proved ASCII (method, target, header names).
    fn ascii(&self, span: Span) -> &str {
        // Invariant: only called on spans validated as ASCII by `parse`; "" is unreachable.
        std::str::from_utf8(span.of(&self.bytes)).unwrap_or("")
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method_str())
            .field("path", &self.path())
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// The headers [`Facts`] tracks.
#[derive(Debug, Clone, Copy)]
enum Known {
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Host,
    SecWebSocketKey,
    SecWebSocketVersion,
    SecWebSocketProtocol,
    Origin,
    ContentType,
    AccessControlRequestHeaders,
    UserAgent,
}

const KNOWN_HEADERS: [(&[u8], Known); 12] = [
    (b"content-length", Known::ContentLength),
    (b"transfer-encoding", Known::TransferEncoding),
    (b"connection", Known::Connection),
    (b"upgrade", Known::Upgrade),
    (b"host", Known::Host),
    (b"sec-websocket-key", Known::SecWebSocketKey),
    (b"sec-websocket-version", Known::SecWebSocketVersion),
    (b"sec-websocket-protocol", Known::SecWebSocketProtocol),
    (b"origin", Known::Origin),
    (b"content-type", Known::ContentType),
    (b"access-control-request-headers", Known::AccessControlRequestHeaders),
    (b"user-agent", Known::UserAgent),
];

impl Facts {
    /// Notes one header. Cost: a few length-first case-insensitive compares; no allocation.
    fn record(&mut self, name: &[u8], value: Span, bytes: &[u8]) -> Result<(), Error> {
        let Some(&(_, known)) = KNOWN_HEADERS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
            return Ok(());
        };
        let text = value.of(bytes);
        let slot = match known {
            Known::ContentLength => {
                let length = parse_content_length(text)?;
                if self.content_length.is_some_and(|seen| seen != length) {
                    return Err(malformed("conflicting Content-Length headers").into());
                }
                self.content_length = Some(length);
                return Ok(());
            }
            Known::TransferEncoding => return Err(PeerMisbehaved::HttpTransferEncoding.into()),
            Known::Connection => {
                for token in list_items(text) {
                    self.connection_close |= token.eq_ignore_ascii_case(b"close");
                    self.connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    self.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                }
                return Ok(());
            }
            Known::Upgrade => {
                self.upgrade_websocket |= list_items(text).any(|p| p.eq_ignore_ascii_case(b"websocket"));
                return Ok(());
            }
            Known::Host => {
                self.hosts = self.hosts.saturating_add(1);
                return Ok(());
            }
            Known::SecWebSocketKey => &mut self.sec_websocket_key,
            Known::SecWebSocketVersion => &mut self.sec_websocket_version,
            Known::SecWebSocketProtocol => &mut self.sec_websocket_protocol,
            Known::Origin => &mut self.origin,
            Known::ContentType => &mut self.content_type,
            Known::AccessControlRequestHeaders => &mut self.access_control_request_headers,
            Known::UserAgent => &mut self.user_agent,
        };
        slot.get_or_insert(value);
        Ok(())
    }
}
