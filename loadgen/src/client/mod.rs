//! The native Socket.IO client engine: thousands of connections on one `mio` (epoll) loop, with no
//! task or thread per connection, over WebSocket or HTTP long-polling (with or without the upgrade).
//!
//! - [`target`]: `--url` → address, `Host`, Engine.IO path, namespace.
//! - [`upgrade`]: the HTTP upgrade request and the resumable reader of the server's `101`.
//! - [`http_response`]: the resumable reader of HTTP/1.1 responses (polling answers).
//! - [`session`]: one connection's protocol state (transport, Engine.IO, Socket.IO), sans I/O;
//!   `polling` is its long-polling transport and the upgrade probe, `packets` what it sends and how
//!   it reads Engine.IO and Socket.IO packets on any transport.
//! - [`pool`]: the event loop owning every socket: ramped connects from several source addresses,
//!   handshake deadlines, batched writes, delivery callbacks and [`Notice`]s.
//! - [`uring_recv`]: the io_uring receive path (`--io uring`): multishot receives into a ring of
//!   provided buffers, the ring's fd on the pool's epoll.
//! - [`sys`]: source-address connects, the microsecond wake-up timer, fd limits, `/proc` RSS.
//!
//! No TLS.

pub mod http_response;
mod packets;
mod polling;
pub mod pool;
pub mod session;
pub mod sys;
pub mod target;
pub mod upgrade;
pub mod uring_recv;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use polling::MAX_POLL_RESPONSE;
pub use pool::{ConnId, Notice, Pool, PoolConfig};
pub use session::Context;
pub use target::Target;
pub use uring_recv::RecvConfig;

/// How a connection carries its Engine.IO session (`--transport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Transport {
    /// A WebSocket from the first request (`transport=websocket`), as socket.io-client with
    /// `transports: ["websocket"]`.
    #[default]
    #[value(name = "websocket")]
    WebSocket,
    /// HTTP long-polling only: a GET always outstanding, POSTs for sends; two TCP connections.
    #[value(name = "polling")]
    Polling,
    /// socket.io-client's default: the polling handshake, then the session moves to a probed
    /// WebSocket; two TCP connections during the upgrade, one after.
    #[value(name = "polling-upgrade")]
    PollingUpgrade,
}

impl Transport {
    /// TCP connections (file descriptors) one Socket.IO connection may hold at once.
    pub fn sockets_per_conn(self) -> u32 {
        match self {
            Transport::WebSocket => 1,
            Transport::Polling | Transport::PollingUpgrade => 2,
        }
    }

    /// The `--transport` value.
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Polling => "polling",
            Transport::PollingUpgrade => "polling-upgrade",
        }
    }
}

/// How the pool reads its sockets (`--io`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum IoMode {
    /// Edge-triggered epoll; a socket is read when it reports readable (the default: io_uring saved
    /// no CPU flat out, see docs/LOADGEN.md).
    #[default]
    #[value(name = "epoll")]
    Epoll,
    /// A multishot io_uring receive per socket into a ring of provided buffers (Linux 6.0+, not
    /// under Docker's default seccomp profile); epoll still does connects, writes and timers.
    #[value(name = "uring")]
    Uring,
    /// `uring` when this process may use io_uring, else `epoll`.
    #[value(name = "auto")]
    Auto,
}

impl IoMode {
    /// The `--io` value.
    pub fn name(self) -> &'static str {
        match self {
            IoMode::Epoll => "epoll",
            IoMode::Uring => "uring",
            IoMode::Auto => "auto",
        }
    }

    /// `Auto` made definite: `Uring` if this process may use io_uring, else `Epoll` and the reason.
    pub fn resolve(self) -> (IoMode, Option<String>) {
        match self {
            IoMode::Auto => match uring_recv::UringRecv::probe() {
                Ok(()) => (IoMode::Uring, None),
                Err(e) => (IoMode::Epoll, Some(format!("io_uring is unavailable ({e})"))),
            },
            mode => (mode, None),
        }
    }
}

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
