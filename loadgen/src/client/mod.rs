//! The native Socket.IO client engine: thousands of WebSocket connections on one `mio` (epoll) loop,
//! with no task or thread per connection.
//!
//! - [`target`]: `--url` → address, `Host`, Engine.IO path, namespace.
//! - [`upgrade`]: the HTTP upgrade request and the resumable reader of the server's `101`.
//! - [`session`]: one connection's protocol state (WebSocket, Engine.IO, Socket.IO), sans I/O.
//! - [`pool`]: the event loop owning every socket: ramped connects from several source addresses,
//!   handshake deadlines, batched writes, delivery callbacks and [`Notice`]s.
//! - [`sys`]: source-address connects, the microsecond wake-up timer, fd limits, `/proc` RSS.
//!
//! Only the WebSocket transport is implemented (no HTTP long-polling, no TLS).

pub mod pool;
pub mod session;
pub mod sys;
pub mod target;
pub mod upgrade;

use std::fmt;

pub use pool::{ConnId, Notice, Pool, PoolConfig};
pub use target::Target;

/// Why a connection ended or never came up. Each `Display` is a sentence fragment for a one-line
/// error; [`Failure::into_error`] adds which connection and maps it to the crate's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connection could not be made (the OS error).
    Connect(String),
    /// The server turned the handshake down (HTTP status, CONNECT_ERROR).
    Refused(String),
    /// The server broke the protocol.
    Protocol(String),
    /// The server closed the connection (EOF, close frame, Engine.IO close, DISCONNECT).
    Closed(String),
    /// A phase did not finish in time.
    Timeout(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(s)
            | Failure::Refused(s)
            | Failure::Protocol(s)
            | Failure::Closed(s)
            | Failure::Timeout(s) => f.write_str(s),
        }
    }
}

impl Failure {
    /// The crate error for this failure of a connection to `target`, `context` saying what the run
    /// was doing (e.g. "while connecting", "2.3 s into the run").
    pub fn into_error(self, target: &Target, context: &str) -> crate::Error {
        let addr = target.addr;
        match self {
            Failure::Connect(e) => crate::Error::Connect(format!("{addr} ({}): {e} {context}", target.url)),
            Failure::Refused(e) => {
                crate::Error::Refused(format!("{e} (from {}; check --url and --path) {context}", target.url))
            }
            Failure::Protocol(e) => crate::Error::Protocol(format!("{e} (from {addr}) {context}")),
            Failure::Closed(e) => crate::Error::Dropped(format!("{e} (from {addr}) {context}")),
            Failure::Timeout(e) => crate::Error::Timeout(format!("{e} (server {addr}) {context}")),
        }
    }
}
