//! Engine.IO request classification: what an HTTP request asks of the endpoint, or which error it gets.
//!
//! [`Endpoint::classify`] is a pure function reproducing the checks of the reference server in its
//! order: the path prefix (`attach().check`), the CORS middleware's preflight, engine.io's `verify()`
//! (transport, sid, handshake method, `allowRequest`), then for upgrades `ws`'s `handleUpgrade()` checks
//! and engine.io's `onWebSocket()`, and last the `EIO` check of `handshake()`.
//!
//! Deliberate differences from the reference, each harmless to clients:
//! - `verify()`'s Origin check (code 3, `INVALID_ORIGIN`) is enforced earlier: the head parser rejects
//!   control characters in every header value, so such a request never reaches classification.
//! - A direct WebSocket handshake with a bad `EIO` is refused before the 101 (the reference completes the
//!   upgrade, then writes an HTTP error onto the WebSocket and closes).
//! - A non-upgrade `transport=websocket` request on a WebSocket session gets code 3 (the reference never
//!   answers it).

use super::query::EngineQuery;
use super::request::{Method, RequestHead};
use super::response::Status;
use super::syntax::{is_tchar, list_items, trim_ows};
use crate::ids::EngineSid;

/// An Engine.IO transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling (`transport=polling`).
    Polling,
    /// WebSocket (`transport=websocket`).
    WebSocket,
}

impl Transport {
    /// The transport a `transport` query value names, if any (exact, case-sensitive match).
    pub fn from_query(value: &str) -> Option<Transport> {
        match value {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::WebSocket),
            _ => None,
        }
    }

    /// The name used in queries and in the open packet's `upgrades`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Engine.IO's error codes (engine.io `Server.errors`), sent as `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EngineErrorCode {
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl EngineErrorCode {
    /// The numeric code, 0..=5.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reference's default message for the code (`Server.errorMessages`).
    pub fn message(self) -> &'static str {
        match self {
            EngineErrorCode::UnknownTransport => "Transport unknown",
            EngineErrorCode::UnknownSid => "Session ID unknown",
            EngineErrorCode::BadHandshakeMethod => "Bad handshake method",
            EngineErrorCode::BadRequest => "Bad request",
            EngineErrorCode::Forbidden => "Forbidden",
            EngineErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status of a polling error response: 403 for [`EngineErrorCode::Forbidden`], else 400.
    pub fn status(self) -> Status {
        match self {
            EngineErrorCode::Forbidden => Status::Forbidden,
            _ => Status::BadRequest,
        }
    }
}

/// Why a WebSocket upgrade request is refused before the 101; answered with a raw HTTP error and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpgradeRejection {
    /// engine.io's `abortUpgrade`: always 400, body is the code's message.
    Engine(EngineErrorCode),
    /// `ws`: an upgrade of an existing session with a method other than GET (405).
    InvalidMethod,
    /// `ws`: `Sec-WebSocket-Key` missing or not 16 bytes of base64 (400).
    InvalidKey,
    /// `ws`: `Sec-WebSocket-Version` missing or not 13 or 8 (400, with `Sec-WebSocket-Version: 13, 8`).
    InvalidVersion,
    /// `ws`: `Sec-WebSocket-Protocol` is not a list of tokens (400).
    InvalidProtocol,
}

impl UpgradeRejection {
    /// The status line's code.
    pub fn status(self) -> Status {
        match self {
            UpgradeRejection::InvalidMethod => Status::MethodNotAllowed,
            _ => Status::BadRequest,
        }
    }

    /// The body text.
    pub fn message(self) -> &'static str {
        match self {
            UpgradeRejection::Engine(code) => code.message(),
            UpgradeRejection::InvalidMethod => "Invalid HTTP method",
            UpgradeRejection::InvalidKey => "Missing or invalid Sec-WebSocket-Key header",
            UpgradeRejection::InvalidVersion => "Missing or invalid Sec-WebSocket-Version header",
            UpgradeRejection::InvalidProtocol => "Invalid Sec-WebSocket-Protocol header",
        }
    }
}

/// What a request asks of the Engine.IO endpoint, and so how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The path is outside the endpoint's prefix: answer 404 (or hand it to another handler).
    NotFound,
    /// A CORS preflight (`OPTIONS` with CORS enabled): answer 204 with the preflight headers.
    Preflight,
    /// Open a new session. Polling: answer 200 with the open packet. WebSocket: answer 101, then send the
    /// open packet as the first text frame.
    Handshake(Transport),
    /// A long-poll `GET` on a polling session.
    Poll(EngineSid),
    /// A `POST` of a payload to a polling session. Its body follows the head (`Content-Length` bytes).
    Send(EngineSid),
    /// A WebSocket upgrade of a session that is on polling: answer 101 and start the probe (the session
    /// layer closes the new WebSocket if an upgrade is already under way).
    Upgrade(EngineSid),
    /// Answer 101, then close the WebSocket at once: the reference's answer to an upgrade naming a
    /// transport that cannot be upgraded to (`transport=polling`) or a session already on WebSocket.
    UpgradeThenClose,
    /// A method other than GET or POST on a polling session: answer 500 with an empty body.
    UnsupportedMethod,
    /// Refuse with an Engine.IO JSON error (400, or 403 for [`EngineErrorCode::Forbidden`]).
    Reject(EngineErrorCode),
    /// Refuse a WebSocket upgrade with a raw HTTP error, then close the connection.
    RejectUpgrade(UpgradeRejection),
}

/// Where the Engine.IO endpoint lives and what it serves. Built once from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Normalized prefix: starts and ends with `/`.
    path: String,
    polling: bool,
    websocket: bool,
    cors: bool,
}

impl Endpoint {
    /// An endpoint at `path` (e.g. `/socket.io`) serving both transports, without CORS. The path is
    /// normalized as engine.io does it: one trailing `/` removed, then one added (and a leading `/` added
    /// if missing), so `/socket.io` and `/socket.io/` both give `/socket.io/`.
    pub fn new(path: &str) -> Endpoint {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let lead = if trimmed.starts_with('/') { "" } else { "/" };
        Endpoint { path: format!("{lead}{trimmed}/"), polling: true, websocket: true, cors: false }
    }

    /// Which transports are enabled (the reference's `transports` option); a disabled one gets code 0.
    pub fn with_transports(mut self, polling: bool, websocket: bool) -> Endpoint {
        self.polling = polling;
        self.websocket = websocket;
        self
    }

    /// Whether CORS is configured, which turns every `OPTIONS` request into a 204 preflight.
    pub fn with_cors(mut self, enabled: bool) -> Endpoint {
        self.cors = enabled;
        self
    }

    /// The normalized path prefix.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request target is under the prefix (a plain prefix test on the raw target, as the
    /// reference does, so `/socket.io/default/?EIO=4` matches too).
    pub fn matches(&self, target: &str) -> bool {
        target.starts_with(&self.path)
    }

    fn enabled(&self, transport: Transport) -> bool {
        match transport {
            Transport::Polling => self.polling,
            Transport::WebSocket => self.websocket,
        }
    }

    /// Classifies one request.
    ///
    /// `session_transport` answers "does this session exist, and which transport does it use now?";
    /// it is called at most once, only for a syntactically valid sid. `allow_handshake` is the
    /// application's `allowRequest` hook; it is called at most once, only for a new session that passed
    /// the earlier checks, and `false` gives [`EngineErrorCode::Forbidden`].
    ///
    /// Cost: a few comparisons; no allocation.
    pub fn classify(
        &self,
        head: &RequestHead,
        query: &EngineQuery<'_>,
        session_transport: impl FnOnce(EngineSid) -> Option<Transport>,
        allow_handshake: impl FnOnce(&RequestHead) -> bool,
    ) -> Route {
        if !self.matches(head.target()) {
            return Route::NotFound;
        }
        if self.cors && head.method() == Method::Options {
            return Route::Preflight;
        }
        let upgrade = head.upgrade_websocket();
        let reject = |code| {
            if upgrade {
                Route::RejectUpgrade(UpgradeRejection::Engine(code))
            } else {
                Route::Reject(code)
            }
        };

        // verify(): transport.
        let transport = query.transport.as_deref().and_then(Transport::from_query);
        let Some(transport) = transport.filter(|&t| self.enabled(t)) else {
            return reject(EngineErrorCode::UnknownTransport);
        };
        // verify(): sid, or the handshake's method, transport and allowRequest.
        let session = match query.sid.as_deref() {
            Some(sid) => {
                let Some(sid) = EngineSid::parse(sid) else { return reject(EngineErrorCode::UnknownSid) };
                let Some(current) = session_transport(sid) else {
                    return reject(EngineErrorCode::UnknownSid);
                };
                if !upgrade && current != transport {
                    return reject(EngineErrorCode::BadRequest);
                }
                Some((sid, current))
            }
            None => {
                if head.method() != Method::Get {
                    return reject(EngineErrorCode::BadHandshakeMethod);
                }
                if transport == Transport::WebSocket && !upgrade {
                    return reject(EngineErrorCode::BadRequest);
                }
                if !allow_handshake(head) {
                    return reject(EngineErrorCode::Forbidden);
                }
                None
            }
        };

        if upgrade {
            if let Err(rejection) = check_websocket_handshake(head) {
                return Route::RejectUpgrade(rejection);
            }
            // onWebSocket()
            if transport != Transport::WebSocket {
                return Route::UpgradeThenClose;
            }
            return match session {
                Some((_, Transport::WebSocket)) => Route::UpgradeThenClose,
                Some((sid, Transport::Polling)) => Route::Upgrade(sid),
                None if !query.is_eio4() => reject(EngineErrorCode::UnsupportedProtocolVersion),
                None => Route::Handshake(Transport::WebSocket),
            };
        }
        match session {
            Some((sid, Transport::Polling)) => match head.method() {
                Method::Get => Route::Poll(sid),
                Method::Post => Route::Send(sid),
                _ => Route::UnsupportedMethod,
            },
            Some((_, Transport::WebSocket)) => Route::Reject(EngineErrorCode::BadRequest),
            None if !query.is_eio4() => Route::Reject(EngineErrorCode::UnsupportedProtocolVersion),
            None => Route::Handshake(Transport::Polling),
        }
    }
}

/// The checks `ws`'s `handleUpgrade()` makes before accepting, in its order.
fn check_websocket_handshake(head: &RequestHead) -> Result<(), UpgradeRejection> {
    if head.method() != Method::Get {
        return Err(UpgradeRejection::InvalidMethod);
    }
    if !head.sec_websocket_key().is_some_and(is_valid_websocket_key) {
        return Err(UpgradeRejection::InvalidKey);
    }
    if !matches!(head.sec_websocket_version(), Some(b"13" | b"8")) {
        return Err(UpgradeRejection::InvalidVersion);
    }
    if let Some(offered) = head.sec_websocket_protocol() {
        if !is_valid_protocol_list(offered) {
            return Err(UpgradeRejection::InvalidProtocol);
        }
    }
    Ok(())
}

/// `ws`'s `/^[+/0-9A-Za-z]{22}==$/`: base64 of 16 bytes.
fn is_valid_websocket_key(key: &[u8]) -> bool {
    match key {
        [body @ .., b'=', b'='] if body.len() == 22 => {
            body.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        }
        _ => false,
    }
}

/// `ws`'s `subprotocol.parse`: comma-separated tokens with optional whitespace, no empty item. (`ws` also
/// refuses a repeated subprotocol; that check is left out, as it costs a quadratic scan or an allocation.)
fn is_valid_protocol_list(list: &[u8]) -> bool {
    list.split(|&b| b == b',').map(trim_ows).all(|item| !item.is_empty() && item.iter().all(|&b| is_tchar(b)))
}

/// The first subprotocol a client offers, which `ws` selects by default (no `handleProtocols`), so the
/// 101 must echo it or a browser fails the connection. `None` if none was offered.
pub fn selected_websocket_protocol(head: &RequestHead) -> Option<&[u8]> {
    head.sec_websocket_protocol().and_then(|offered| list_items(offered).next())
}
