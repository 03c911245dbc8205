//! Response builders: each appends one complete HTTP/1.1 response head (and its small body, when the
//! builder owns it) to a `BytesMut`, byte-compatible with what the reference server sends.
//!
//! Cost: every builder writes straight into `out` (reserving what it needs); none allocates anything
//! else. Status lines are always `HTTP/1.1`, also to HTTP/1.0 clients (RFC 9110 §2.5).

use super::cors::{put_header, CorsHeaders};
use super::request::{ConnectionMode, RequestHead};
use super::route::{EngineErrorCode, UpgradeRejection};
use super::CorsConfig;
use crate::error::{Error, Limit, PeerMisbehaved};
use base64::Engine as _;
use bytes::{BufMut, BytesMut};

/// The status codes Roomcast answers with, with Node's reason phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    SwitchingProtocols,
    Ok,
    NoContent,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    PayloadTooLarge,
    RequestHeaderFieldsTooLarge,
    InternalServerError,
    HttpVersionNotSupported,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::SwitchingProtocols => 101,
            Status::Ok => 200,
            Status::NoContent => 204,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::RequestHeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::HttpVersionNotSupported => 505,
        }
    }

    /// The reason phrase (Node's `http.STATUS_CODES`).
    pub fn reason(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::Ok => "OK",
            Status::NoContent => "No Content",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::RequestHeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::HttpVersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// What every response to one request shares: connection persistence, CORS headers, and the IE quirk.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// Written as `Connection: keep-alive` or `Connection: close`. The caller closes after a `Close`.
    pub connection: ConnectionMode,
    /// CORS headers added to the response ([`CorsHeaders::NONE`] for none).
    pub cors: CorsHeaders<'a>,
    /// The client is Internet Explorer (`User-Agent` holds `;MSIE` or `Trident/`): polling responses get
    /// `X-XSS-Protection: 0`, as the reference sends.
    pub legacy_ie: bool,
}

impl<'a> ResponseContext<'a> {
    /// The context for answering `head` on an endpoint with CORS configuration `cors`.
    pub fn for_request(head: &'a RequestHead, cors: &'a CorsConfig) -> ResponseContext<'a> {
        let legacy_ie =
            head.user_agent().is_some_and(|ua| contains(ua, b";MSIE") || contains(ua, b"Trident/"));
        ResponseContext { connection: head.connection(), cors: cors.headers_for(head), legacy_ie }
    }

    /// A context with no CORS headers, e.g. for a 404 outside the Engine.IO path.
    pub fn plain(connection: ConnectionMode) -> ResponseContext<'static> {
        ResponseContext { connection, cors: CorsHeaders::NONE, legacy_ie: false }
    }

    /// The same context, but closing the connection after the response.
    pub fn closing(self) -> ResponseContext<'a> {
        ResponseContext { connection: ConnectionMode::Close, ..self }
    }
}

/// A polling response head (handshake open packet or a GET's payload): `200`,
/// `Content-Type: text/plain; charset=UTF-8`, `Content-Length: body_len`, `cache-control: no-store`.
/// The caller appends exactly `body_len` body bytes.
pub fn write_polling_head(out: &mut BytesMut, ctx: &ResponseContext<'_>, body_len: usize) {
    put_status(out, Status::Ok);
    put_header(out, b"Content-Type", b"text/plain; charset=UTF-8");
    put_content_length(out, body_len);
    put_polling_tail(out, ctx);
}

/// [`write_polling_head`] followed by `body`.
pub fn write_polling(out: &mut BytesMut, ctx: &ResponseContext<'_>, body: &[u8]) {
    write_polling_head(out, ctx, body.len());
    out.put_slice(body);
}

/// The answer to a successful POST: `200`, `Content-Type: text/html`, `Content-Length: 2`, body `ok`.
pub fn write_post_ok(out: &mut BytesMut, ctx: &ResponseContext<'_>) {
    put_status(out, Status::Ok);
    put_header(out, b"Content-Type", b"text/html");
    put_header(out, b"Content-Length", b"2");
    put_polling_tail(out, ctx);
    out.put_slice(b"ok");
}

/// An Engine.IO JSON error (`abortRequest`): 400 (403 for Forbidden), `Content-Type: application/json`,
/// body `{"code":N,"message":"..."}`. `message` replaces the code's default text (the reference lets
/// `allowRequest` supply one); it is JSON-escaped as `JSON.stringify` would.
pub fn write_engine_error(
    out: &mut BytesMut,
    ctx: &ResponseContext<'_>,
    code: EngineErrorCode,
    message: Option<&str>,
) {
    let message = message.filter(|m| !m.is_empty()).unwrap_or(code.message());
    let body_len = br#"{"code":N,"message":""}"#.len() + json_escaped_len(message);
    put_status(out, code.status());
    put_header(out, b"Content-Type", b"application/json");
    put_content_length(out, body_len);
    put_tail(out, ctx);
    out.put_slice(br#"{"code":"#);
    out.put_u8(b'0' + code.code());
    out.put_slice(br#","message":""#);
    put_json_escaped(out, message);
    out.put_slice(br#""}"#);
}

/// A refused WebSocket upgrade, written raw before closing the connection: engine.io's `abortUpgrade`
/// (`HTTP/1.1 400 Bad Request`, `Connection: close`, `Content-type: text/html`) for Engine.IO errors,
/// `ws`'s `abortHandshake` for its own checks.
pub fn write_upgrade_rejection(out: &mut BytesMut, rejection: UpgradeRejection) {
    let message = rejection.message().as_bytes();
    put_status(out, rejection.status());
    put_header(out, b"Connection", b"close");
    let content_type: &[u8] =
        if matches!(rejection, UpgradeRejection::Engine(_)) { b"Content-type" } else { b"Content-Type" };
    put_header(out, content_type, b"text/html");
    put_content_length(out, message.len());
    if rejection == UpgradeRejection::InvalidVersion {
        put_header(out, b"Sec-WebSocket-Version", b"13, 8");
    }
    out.put_slice(b"\r\n");
    out.put_slice(message);
}

/// A response with an empty body (`Content-Length: 0`): 404 outside the path, 500 for an unsupported
/// method on a session, 413 for a too-large POST, 400 for an overlapping poll. After a 413 the unread body
/// makes the connection unusable unless the caller discards `Content-Length` bytes; use
/// [`ResponseContext::closing`] otherwise.
pub fn write_empty(out: &mut BytesMut, ctx: &ResponseContext<'_>, status: Status) {
    put_status(out, status);
    put_header(out, b"Content-Length", b"0");
    put_tail(out, ctx);
}

/// The answer to a CORS preflight: `204` with the preflight CORS headers and `Content-Length: 0`.
pub fn write_preflight(out: &mut BytesMut, ctx: &ResponseContext<'_>) {
    put_status(out, Status::NoContent);
    ctx.cors.write_preflight(out);
    put_header(out, b"Content-Length", b"0");
    put_connection(out, ctx.connection);
    out.put_slice(b"\r\n");
}

/// The WebSocket handshake answer: `101 Switching Protocols` with `Sec-WebSocket-Accept` computed from
/// `key`, the selected subprotocol (see [`selected_websocket_protocol`](super::selected_websocket_protocol))
/// and the CORS headers. No `Sec-WebSocket-Extensions`: permessage-deflate is declined.
pub fn write_switching_protocols(
    out: &mut BytesMut,
    key: &[u8],
    protocol: Option<&[u8]>,
    cors: &CorsHeaders<'_>,
) {
    put_status(out, Status::SwitchingProtocols);
    put_header(out, b"Upgrade", b"websocket");
    put_header(out, b"Connection", b"Upgrade");
    put_header(out, b"Sec-WebSocket-Accept", &websocket_accept(key));
    if let Some(protocol) = protocol {
        put_header(out, b"Sec-WebSocket-Protocol", protocol);
    }
    cors.write_simple(out);
    out.put_slice(b"\r\n");
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): base64 of the SHA-1 of the key
/// followed by the protocol's GUID.
pub fn websocket_accept(key: &[u8]) -> [u8; 28] {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    let mut accept = [0u8; 28];
    // 20 bytes always encode to exactly 28 padded base64 characters.
    let written = base64::engine::general_purpose::STANDARD.encode_slice(sha1.digest().bytes(), &mut accept);
    debug_assert_eq!(written.ok(), Some(28));
    accept
}

/// The status answering a request whose head could not be parsed: 431 past a head limit, 505 for an HTTP
/// version other than 1.0/1.1, 411 for `Transfer-Encoding` (only `Content-Length` bodies are read), 400
/// otherwise.
pub fn head_error_status(error: &Error) -> Status {
    match error {
        Error::LimitExceeded(Limit::HttpHeadSize { .. } | Limit::HttpHeaderCount { .. }) => {
            Status::RequestHeaderFieldsTooLarge
        }
        Error::PeerMisbehaved(PeerMisbehaved::HttpVersion) => Status::HttpVersionNotSupported,
        Error::PeerMisbehaved(PeerMisbehaved::HttpTransferEncoding) => Status::LengthRequired,
        _ => Status::BadRequest,
    }
}

/// The answer to an unparsable head ([`head_error_status`]), with `Connection: close` and no body; the
/// caller closes the connection after writing it.
pub fn write_head_error(out: &mut BytesMut, error: &Error) {
    write_empty(out, &ResponseContext::plain(ConnectionMode::Close), head_error_status(error));
}

fn put_status(out: &mut BytesMut, status: Status) {
    out.reserve(256);
    out.put_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status.code()));
    out.put_u8(b' ');
    out.put_slice(status.reason().as_bytes());
    out.put_slice(b"\r\n");
}

/// The reference's polling `headers()`: IE quirk and `cache-control`, then CORS, connection, blank line.
fn put_polling_tail(out: &mut BytesMut, ctx: &ResponseContext<'_>) {
    if ctx.legacy_ie {
        put_header(out, b"X-XSS-Protection", b"0");
    }
    put_header(out, b"cache-control", b"no-store");
    put_tail(out, ctx);
}

fn put_tail(out: &mut BytesMut, ctx: &ResponseContext<'_>) {
    ctx.cors.write_simple(out);
    put_connection(out, ctx.connection);
    out.put_slice(b"\r\n");
}

fn put_connection(out: &mut BytesMut, connection: ConnectionMode) {
    let value: &[u8] = match connection {
        ConnectionMode::KeepAlive => b"keep-alive",
        ConnectionMode::Close => b"close",
    };
    put_header(out, b"Connection", value);
}

fn put_content_length(out: &mut BytesMut, len: usize) {
    out.put_slice(b"Content-Length: ");
    put_decimal(out, len as u64);
    out.put_slice(b"\r\n");
}

fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[start..]);
}

/// Length of `text` once escaped as `JSON.stringify` escapes a string's contents.
fn json_escaped_len(text: &str) -> usize {
    text.bytes().map(|b| json_escape(b).map_or(1, |e| e.len())).sum()
}

fn put_json_escaped(out: &mut BytesMut, text: &str) {
    for byte in text.bytes() {
        match json_escape(byte) {
            Some(escaped) => out.put_slice(escaped.as_bytes()),
            None => out.put_u8(byte),
        }
    }
}

/// `JSON.stringify`'s escape for one byte of UTF-8 text, if it has one (`"`, `\`, control characters;
/// lowercase hex as V8 writes it).
fn json_escape(byte: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t",
        "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013",
        "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c",
        "\\u001d", "\\u001e", "\\u001f",
    ];
    match byte {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        _ => CONTROL.get(usize::from(byte)).copied(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
