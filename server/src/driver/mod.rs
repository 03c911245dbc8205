//! The I/O driver seam: one driver per shard thread moves bytes between sockets and the shard.
//!
//! A shard owns one driver, and the driver owns everything with a file descriptor on that shard: its
//! ring or poller, its listener, its connections and its wake-up eventfd. The shard loop is generic over
//! [`Driver`] (static dispatch) and has this shape (here an echo server):
//!
//! ```no_run
//! use bytes::Bytes;
//! use roomcast_server::driver::{bind_shard_listeners, Driver, DriverConfig, DriverEvent, IoBackend};
//! use roomcast_server::driver::{EpollDriver, UringDriver};
//!
//! fn shard<D: Driver>(listener: std::net::TcpListener) -> std::io::Result<()> {
//!     let mut driver = D::new(listener, &DriverConfig::default())?;
//!     loop {
//!         // While the last flush left connections for a next batch, look at I/O without waiting.
//!         let wait = driver.outbox().has_dirty().then_some(std::time::Duration::ZERO);
//!         driver.turn(wait, &mut |event, outbox| {
//!             if let DriverEvent::Data { conn, bytes } = event {
//!                 outbox.send(conn, Bytes::copy_from_slice(bytes)); // the engine goes here
//!             }
//!         })?;
//!         // timers and cross-shard queues add more `driver.outbox().send(..)` here
//!         driver.flush()?; // one submission batch for up to `flush_batch` connections with new bytes
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let (backend, why_not_uring) = IoBackend::detect();
//! if let Some(reason) = why_not_uring {
//!     eprintln!("io_uring unavailable, using epoll: {reason}");
//! }
//! let mut listeners = bind_shard_listeners("127.0.0.1:3000".parse().unwrap(), 1, 1024)?;
//! let listener = listeners.remove(0);
//! match backend {
//!     IoBackend::Uring => shard::<UringDriver>(listener),
//!     IoBackend::Epoll => shard::<EpollDriver>(listener),
//! }
//! # }
//! ```
//!
//! Two backends implement the same contract: [`UringDriver`] (io_uring: multishot accept, multishot recv
//! into a provided-buffer ring, one `SENDMSG` per dirty connection) and [`EpollDriver`] (mio/epoll,
//! edge-triggered, one per-shard read buffer, `sendmsg` with an iovec array). [`probe_io_uring`] says
//! whether the first can run here; `docs/design/why-io-uring-driver.md` explains the choices.
//!
//! # Contract shared by both backends
//! - **Events.** Every connection that arrived by [`DriverEvent::Accepted`] or [`Driver::adopt`] ends
//!   exactly once, with a [`DriverEvent::Closed`] for the same [`ConnId`] (whoever closed it: the peer,
//!   an I/O error, [`Outbox::abort`], [`Outbox::close_after_flush`]) or, after [`Outbox::detach`], a
//!   [`DriverEvent::Detached`]. No event for a connection follows its last, and from the moment a close
//!   is decided the id is stale: every [`Outbox`] call with it is ignored.
//! - **Hand-over.** [`Outbox::detach`] and [`Driver::adopt`] move a live connection between drivers
//!   (between shards): the old driver sends what was queued, stops reading, and delivers every byte it
//!   had read before `Detached`; the new one reads the rest from the socket. No byte is lost or
//!   reordered in either direction.
//! - **Data.** [`DriverEvent::Data`] borrows the bytes from the driver (a provided buffer or the shared
//!   read buffer); they are valid only during the handler call. Bytes of one connection arrive in order.
//!   A peer's end of stream closes the connection ([`CloseCause::PeerClosed`]); half-open connections
//!   are not kept. Inbound bytes that arrive after `abort` or `close_after_flush` are discarded.
//! - **Sends.** [`Outbox::send`] queues a refcounted [`bytes::Bytes`]; nothing is copied until the kernel
//!   copies it into the socket. Bytes of one connection leave in queue order; partial writes resume where
//!   they stopped. Sends go out at [`Driver::flush`] (and at the start of [`Driver::turn`], which flushes
//!   first so that work queued outside a turn is never stranded).
//! - **Errors.** A failing connection is closed and reported; `turn`/`flush` return `Err` only when the
//!   ring or poller itself fails, which ends the shard.
//! - **Threads.** A driver is used by one thread at a time; only [`Waker`] crosses threads.

mod backend;
mod config;
mod epoll;
mod listener;
mod outbox;
mod queue;
mod sys;
mod uring;
mod waker;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::time::Duration;

pub use backend::{probe_io_uring, IoBackend};
pub use config::DriverConfig;
pub use epoll::EpollDriver;
pub use listener::{bind_reuseport, bind_shard_listeners};
pub use outbox::{ConnId, Outbox, SharedBytes};
pub use uring::UringDriver;
pub use waker::Waker;

/// One thing that happened on a shard's sockets, handed to the `turn` handler.
#[derive(Debug)]
pub enum DriverEvent<'a> {
    /// A connection was accepted on this shard's listener (`TCP_NODELAY` is set).
    Accepted {
        /// The new connection; valid until its `Closed` event.
        conn: ConnId,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// Bytes arrived on a connection.
    Data {
        /// The connection they arrived on.
        conn: ConnId,
        /// Borrowed from the driver's receive buffers; valid only during this handler call. Never empty.
        bytes: &'a [u8],
    },
    /// The connection is gone; `conn` is stale from now on and its slot will be reused.
    Closed {
        /// The connection that closed.
        conn: ConnId,
        /// Who or what closed it.
        cause: CloseCause,
    },
    /// [`Outbox::detach`] completed: the socket, still open, is the handler's now (typically for
    /// [`Driver::adopt`] on another shard's driver). Every byte this driver read from it was delivered in
    /// `Data` events before this one; every byte queued on it was handed to the kernel. `conn` is stale
    /// from now on and no `Closed` follows.
    Detached {
        /// The connection that left this driver.
        conn: ConnId,
        /// Its socket; dropping it closes the connection.
        fd: OwnedFd,
    },
    /// A [`Waker`] was woken since the last `Woken` event. Wakes coalesce: many `wake()` calls may give
    /// one event, so the handler drains whatever queue the wakers guard.
    Woken,
}

/// Why a connection closed. Normal closes are causes, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The peer ended its stream (a read returned end of file). Unsent queued bytes are dropped.
    PeerClosed,
    /// The peer reset the connection or stopped reading (`ECONNRESET`, `EPIPE`, `ECONNABORTED`).
    Reset,
    /// Another socket error, with its `errno` (for the log line).
    Error {
        /// The raw OS error number.
        errno: i32,
    },
    /// [`Outbox::close_after_flush`] completed: every queued byte was handed to the kernel, then FIN.
    Flushed,
    /// [`Outbox::abort`]: queued bytes were dropped and the connection reset.
    Aborted,
}

impl CloseCause {
    /// The cause for a failed socket call's `errno`.
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED => CloseCause::Reset,
            _ => CloseCause::Error { errno },
        }
    }

    /// Whether this close was the peer's doing or a network failure rather than our own decision.
    pub fn is_remote(self) -> bool {
        matches!(self, CloseCause::PeerClosed | CloseCause::Reset | CloseCause::Error { .. })
    }
}

impl std::fmt::Display for CloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseCause::PeerClosed => f.write_str("peer closed the connection"),
            CloseCause::Reset => f.write_str("connection reset by peer"),
            CloseCause::Error { errno } => {
                write!(f, "socket error: {}", io::Error::from_raw_os_error(*errno))
            }
            CloseCause::Flushed => f.write_str("closed after flushing"),
            CloseCause::Aborted => f.write_str("aborted"),
        }
    }
}

/// The per-shard I/O driver. Implemented by [`UringDriver`] and [`EpollDriver`].
///
/// Thread: every method is called by the shard's own thread; the driver is `Send` so it can be built
/// elsewhere and moved in, but it is never shared.
pub trait Driver: Sized {
    /// Takes ownership of this shard's listener (typically from [`bind_shard_listeners`]) and sets up
    /// the ring or poller. Fails if the configuration is invalid or the kernel refuses the setup.
    fn new(listener: TcpListener, config: &DriverConfig) -> io::Result<Self>;

    /// Flushes dirty connections, then waits until at least one completion or readiness arrives or
    /// `timeout` passes (`None`: no limit; `Some(ZERO)`: do not block), and dispatches what arrived to
    /// `handler`. The handler gets the [`Outbox`] to queue replies, which go out at the next flush.
    ///
    /// May return without calling the handler (internal completions, signals). Does not block when
    /// there are already events to deliver. Cost: one `io_uring_enter` or `epoll_wait`, plus the
    /// accept/read syscalls of the epoll backend.
    fn turn<H>(&mut self, timeout: Option<Duration>, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox);

    /// The send side, for work done outside [`Driver::turn`] (cross-shard broadcasts, timers).
    fn outbox(&mut self) -> &mut Outbox;

    /// Hands the queued bytes of the first [`DriverConfig::flush_batch`] dirty connections to the
    /// kernel in one batch: io_uring pushes one `SENDMSG` (or `SEND_ZC`, or `SEND` for a lone buffer)
    /// per connection and submits once; epoll calls `sendmsg` per connection until its queue is empty
    /// or the socket is full (then waits for writability). Also carries out `abort` and
    /// `close_after_flush`; the `Closed` events this causes are delivered by the next `turn`.
    ///
    /// Contract: connections past the batch stay dirty, in order, ahead of any dirtied later
    /// ([`Outbox::has_dirty`]); the caller turns again without waiting (`turn(Some(ZERO))`) and flushes
    /// again until none is left, so bytes queued between two batches join the same sends.
    ///
    /// Cost: O(connections flushed); no allocation once warm.
    fn flush(&mut self) -> io::Result<()>;

    /// Takes ownership of a connected TCP socket (typically from another driver's
    /// [`DriverEvent::Detached`]) and serves it as if it had been accepted here, without an `Accepted`
    /// event: `Data` follows for bytes already waiting in the socket and later ones, and the connection
    /// ends with `Closed` or `Detached` like any other. Sets the blocking mode this backend needs.
    ///
    /// Fails (closing the socket) if the poller refuses it or the ring fails. Cost: epoll: a few
    /// syscalls; io_uring: one `fcntl` and a receive pushed for the next submission.
    fn adopt(&mut self, fd: OwnedFd) -> io::Result<ConnId>;

    /// A handle that wakes this driver's `turn` from any thread (see [`DriverEvent::Woken`]).
    fn waker(&self) -> Waker;

    /// The address this driver's listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Counters since the driver started (for metrics and tests). Cost: a copy of a few words.
    fn stats(&self) -> DriverStats;

    /// Which backend this is (for the startup log line).
    const BACKEND: IoBackend;
}

/// Counters of one driver since it started. Plain numbers kept by the shard thread; never reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Connections accepted (`Accepted` events).
    pub accepted: u64,
    /// Connections reported closed (`Closed` events).
    pub closed: u64,
    /// Connections adopted from another driver ([`Driver::adopt`]).
    pub adopted: u64,
    /// Connections handed out ([`DriverEvent::Detached`] events). `accepted + adopted` equals
    /// `closed + detached +` the live connections.
    pub detached: u64,
    /// Send operations: io_uring `SENDMSG`/`SEND_ZC` submissions, or epoll `sendmsg` calls.
    pub sends: u64,
    /// Of `sends`, those submitted as `SEND_ZC` (io_uring only).
    pub zero_copy_sends: u64,
    /// Sends the kernel took only part of (a full socket); the rest went out later, in order.
    pub partial_sends: u64,
    /// io_uring multishot receives re-armed after ending while still wanted (`ENOBUFS` when every
    /// provided buffer was in use, or a completion-queue overflow).
    pub receive_rearms: u64,
    /// Bytes the kernel accepted from our queues.
    pub bytes_sent: u64,
    /// Bytes handed to the handler in `Data` events.
    pub bytes_received: u64,
}
