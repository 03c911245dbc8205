//! What a socket's handshake carried, as Socket.IO exposes it (`socket.handshake`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

/// The Engine.IO handshake request of a connection: shared by every namespace socket of that connection.
/// Cold data: kept out of the per-socket hot state, behind one `Arc`.
#[derive(Debug)]
pub struct Handshake {
    /// Request headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Query parameters of the handshake request, decoded.
    pub query: Vec<(String, String)>,
    /// The request target (path and query), as sent.
    pub url: String,
    /// The peer's address.
    pub address: SocketAddr,
    /// When the handshake happened.
    pub time: SystemTime,
    /// Whether the request carried an `Origin` header (a cross-site request).
    pub xdomain: bool,
}

impl Handshake {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The last query parameter with this name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What a namespace's middleware sees: the connection's handshake plus this namespace's CONNECT payload.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub handshake: Arc<Handshake>,
    /// The CONNECT packet's JSON payload (`socket.handshake.auth`), `{}` when the client sent none.
    pub auth: Bytes,
    /// The namespace being joined.
    pub namespace: Arc<str>,
}

/// A middleware's refusal: sent to the client as CONNECT_ERROR `{"message":…,"data":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub message: String,
    /// Raw JSON for `data`; omitted from the packet when `None`.
    pub data: Option<Bytes>,
}

impl ConnectError {
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError { message: message.into(), data: None }
    }

    /// Adds the `data` member (raw JSON text, trusted to be valid).
    pub fn with_data(mut self, json: impl Into<Bytes>) -> Self {
        self.data = Some(json.into());
        self
    }
}
