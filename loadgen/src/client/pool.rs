//! The client event loop: every connection of one process on one `mio::Poll`.
//!
//! Calling order, like the engine's sans-I/O types: the scenario calls [`Pool::open`],
//! [`Pool::emit`] and [`Pool::close`] (which only queue work), then [`Pool::turn`] (flush queued bytes,
//! wait for readiness or the wake-up time, read, answer pings, hand deliveries to the callback), then
//! drains [`Pool::poll_notice`] (connected, acks, failures) before the next turn.
//!
//! A connection has one TCP socket over WebSocket and two over polling (see [`Session`]'s streams); the
//! session asks for sockets to be opened, dropped or renumbered ([`StreamAction`]) and the pool does
//! it after every call into the session. A socket's epoll token is its slot, a serial number and its
//! stream (`slot << 32 | serial << 1 | stream`): an event still queued for a socket that was replaced
//! in the same turn does not reach its successor.
//!
//! Costs and memory: per connection up to two mio `TcpStream`s, a [`Session`] (frame decoder, output
//! buffer, a boxed polling state when polling) and a few words (~230 bytes at rest over WebSocket).
//! Reading (`--io`, [`PoolConfig::io`]): over epoll, one 64 KiB read buffer serves all connections; a
//! socket is read when its event says readable, until it would block or a read returns less than the
//! buffer (edge-triggered: later bytes raise a new event), to the end after a hangup or after the
//! upgrade renumbers it. Over io_uring
//! ([`UringRecv`], the pool's side in `pool_uring.rs`) a multishot receive is armed on each socket
//! once its TCP connect completes, epoll watches the socket for writability only, and each turn hands
//! the receive completions to the sessions before it handles epoll's events. Writes are batched per
//! turn: everything queued for a socket goes out in one `write` when it takes it. The loop wakes
//! within microseconds of the time it is asked to ([`WakeTimer`]), not epoll's milliseconds.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::session::{Context, Phase, Session, SessionEvent, Stream, StreamAction};
use super::sys::{self, connect_from, WakeTimer};
use super::upgrade::WebSocketKey;
use super::uring_recv::{RecvConfig, UringRecv};
use super::{Failure, IoMode, Target, Transport};
use crate::latency::{RunEpoch, RunMicros};
use crate::Error;

const TIMER: Token = Token(usize::MAX);
const URING: Token = Token(usize::MAX - 1);
const READ_BUFFER: usize = 64 * 1024;
/// How long a close we started may take before the socket is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Longest a turn sleeps when nothing is due, so callers re-check their own deadlines.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// How the pool connects.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The server.
    pub target: Target,
    /// Source addresses to spread connections over (round robin); empty lets the kernel choose.
    pub source_addrs: Vec<Ipv4Addr>,
    /// From `open` to the namespace's CONNECT answer; past it the connection fails with a timeout.
    pub handshake_timeout: Duration,
    /// Seeds the WebSocket keys and masking keys (any value; kept for reproducible byte streams).
    pub seed: u64,
    /// How connections carry their sessions.
    pub transport: Transport,
    /// How sockets are read (`Auto`: io_uring when this process may use it, else epoll, silently).
    pub io: IoMode,
}

/// A connection of this pool. A slot reused after a close gets a new generation, so a stale id is
/// never mistaken for the new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

/// What happened to a connection, in order, for the scenario to act on between turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The namespace accepted the connection; `handshake_micros` counts from the time `open` was
    /// scheduled for (so a lagging ramp shows), through TCP, the upgrade and both opens.
    Connected { conn: ConnId, tag: u32, handshake_micros: u64 },
    /// The server acked request `id` of this connection; `error` when it answered `{"error":…}`.
    Ack { conn: ConnId, tag: u32, id: u64, error: bool },
    /// The connection failed or the server closed it; it is gone. `was_ready`: it had connected.
    Failed { conn: ConnId, tag: u32, failure: Failure, was_ready: bool },
    /// A close started with [`Pool::close`] finished (or its grace ran out); the connection is gone.
    Closed { conn: ConnId, tag: u32 },
}

/// One Socket.IO event delivered to a connection, borrowed for the duration of the callback.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Which connection received it.
    pub conn: ConnId,
    /// The scenario's tag for that connection.
    pub tag: u32,
    /// The Socket.IO EVENT packet text, e.g. `2["m","rc1…"]`.
    pub text: &'a [u8],
    /// When the bytes were read (run clock), read once per socket read.
    pub at: RunMicros,
}

/// One TCP connection of a session.
#[derive(Debug)]
struct Socket {
    tcp: mio::net::TcpStream,
    /// Part of its epoll token, so that an event still queued for a socket this stream replaced is
    /// not taken for the new one.
    serial: u32,
    /// Its TCP connect has completed.
    connected: bool,
    /// A multishot receive of the io_uring path is armed on it (cancel it when dropping the socket).
    receiving: bool,
}

#[derive(Debug)]
struct Conn {
    /// The sockets of the session's streams, by [`Stream::index`].
    sockets: [Option<Socket>; 2],
    session: Session,
    key_bits: u128,
    scheduled: RunMicros,
    tag: u32,
    dirty: bool,
}

// Per-connection budget: sockets, frame decoder, output buffer handle, polling box, ids and times.
const _: () = assert!(std::mem::size_of::<Conn>() <= 256);

// Tokens pack the slot, a 31-bit socket serial and the stream into 64 bits.
const _: () = assert!(usize::BITS == 64);

fn token(slot: u32, serial: u32, stream: Stream) -> Token {
    Token((slot as usize) << 32 | ((serial & 0x7fff_ffff) as usize) << 1 | stream.index())
}

/// `(slot, serial, stream)` of a socket's token.
fn untoken(token: Token) -> (usize, u32, Stream) {
    let stream = if token.0 & 1 == 0 { Stream::Primary } else { Stream::Secondary };
    (token.0 >> 32, ((token.0 >> 1) & 0x7fff_ffff) as u32, stream)
}

/// The key naming a socket's io_uring receive: its slot and serial. The serial follows the socket
/// when the upgrade renumbers its stream, and a completion for a socket already replaced finds no
/// socket with its serial.
fn recv_key(slot: u32, serial: u32) -> u64 {
    u64::from(slot) << 32 | u64::from(serial & 0x7fff_ffff)
}

/// The epoll interest of a socket: over io_uring, its receive reads it, so only writability (the
/// connect completing, room in the send buffer) and errors come through epoll.
fn interest(uring: bool) -> Interest {
    if uring {
        Interest::WRITABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    }
}

/// Stops watching a socket the connection no longer uses and closes it (its receive, if armed, is
/// cancelled at the next submission; it keeps the socket open until then).
fn discard(poll: &Poll, cancels: &mut Vec<u64>, slot: u32, mut socket: Socket) {
    let _ = poll.registry().deregister(&mut socket.tcp);
    if socket.receiving {
        cancels.push(recv_key(slot, socket.serial));
    }
}

/// One read's outcome, from `read` or a receive completion.
enum Input<'b> {
    Bytes(&'b mut [u8]),
    Eof,
}

/// One epoll event, copied out of `Events`.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    token: Token,
    readable: bool,
    /// Error, or a side of the connection closed.
    hangup: bool,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The event loop; see the module docs. Thread: one owner.
#[derive(Debug)]
pub struct Pool {
    poll: Poll,
    events: Events,
    timer: WakeTimer,
    epoch: RunEpoch,
    config: PoolConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    dirty: Vec<ConnId>,
    notices: VecDeque<Notice>,
    handshake_deadlines: VecDeque<(RunMicros, ConnId)>,
    close_deadlines: VecDeque<(RunMicros, ConnId)>,
    read_buf: Box<[u8]>,
    /// Readiness of the last poll, copied out so handling may borrow the pool (reused every turn).
    ready_tokens: Vec<Readiness>,
    /// The io_uring receive path, when `config.io` chose it; taken out while its completions are
    /// dispatched.
    recv: Option<Box<UringRecv>>,
    uring: bool,
    /// Receives of dropped sockets, to cancel before the next submission.
    cancels: Vec<u64>,
    mask_state: u64,
    next_source: usize,
    next_serial: u32,
    live: usize,
    ready: usize,
}

impl Pool {
    /// An empty pool for the run whose clock is `epoch`. Fails only if epoll or the timer cannot be
    /// created, or `config.io` is `Uring` and io_uring is unavailable.
    pub fn new(config: PoolConfig, epoch: RunEpoch) -> Result<Pool, Error> {
        Pool::with_recv_config(config, epoch, &RecvConfig::default())
    }

    /// [`Pool::new`] with the io_uring path's sizes given (tests use a tiny buffer ring).
    pub fn with_recv_config(config: PoolConfig, epoch: RunEpoch, sizes: &RecvConfig) -> Result<Pool, Error> {
        let poll = Poll::new()?;
        let timer = WakeTimer::new(epoch)?;
        poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
        let recv = match config.io {
            IoMode::Epoll => None,
            IoMode::Uring => Some(UringRecv::new(sizes).map_err(|e| {
                Error::Usage(format!("--io uring: io_uring is unavailable here ({e}); use --io epoll"))
            })?),
            IoMode::Auto => UringRecv::new(sizes).ok(),
        };
        if let Some(recv) = &recv {
            poll.registry().register(&mut SourceFd(&recv.raw_fd()), URING, Interest::READABLE)?;
        }
        let mask_state = splitmix(config.seed ^ 0x6d61_736b) | 1;
        Ok(Pool {
            poll,
            events: Events::with_capacity(1024),
            timer,
            epoch,
            config,
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            notices: VecDeque::new(),
            handshake_deadlines: VecDeque::new(),
            close_deadlines: VecDeque::new(),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            ready_tokens: Vec::new(),
            uring: recv.is_some(),
            recv: recv.map(Box::new),
            cancels: Vec::new(),
            mask_state,
            next_source: 0,
            next_serial: 0,
            live: 0,
            ready: 0,
        })
    }

    /// The server this pool connects to.
    pub fn target(&self) -> &Target {
        &self.config.target
    }

    /// The handshake limit each connection gets.
    pub fn handshake_timeout(&self) -> Duration {
        self.config.handshake_timeout
    }

    /// How this pool reads its sockets: `Epoll` or `Uring` (never `Auto`).
    pub fn io(&self) -> IoMode {
        if self.uring {
            IoMode::Uring
        } else {
            IoMode::Epoll
        }
    }

    /// Counters of the io_uring path (`None` over epoll).
    pub fn recv_stats(&self) -> Option<super::uring_recv::RecvStats> {
        self.recv.as_ref().map(|r| r.stats())
    }

    /// Connections open or opening.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Connections whose namespace CONNECT succeeded and that are still open.
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// Starts a connection tagged `tag` (the scenario's number for it), due at `scheduled` (for the
    /// handshake latency). A connect that fails at once is reported as a [`Notice::Failed`].
    pub fn open(&mut self, tag: u32, scheduled: RunMicros) -> ConnId {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
        });
        let generation = self.slots.get(slot as usize).map_or(0, |s| s.generation);
        let id = ConnId { slot, generation };
        let key_bits = (u128::from(splitmix(self.config.seed ^ u64::from(slot))) << 64)
            | u128::from(splitmix(self.mask_state ^ u64::from(generation)));
        let Some(s) = self.slots.get_mut(slot as usize) else { return id };
        s.conn = Some(Conn {
            sockets: [None, None],
            session: Session::new(self.config.transport),
            key_bits,
            scheduled,
            tag,
            dirty: false,
        });
        self.live += 1;
        let deadline = self.epoch.now().plus_micros(micros(self.config.handshake_timeout));
        self.handshake_deadlines.push_back((deadline, id));
        if let Err(failure) = self.sync(id) {
            self.fail(id, failure);
        }
        id
    }

    /// Queues event `name` with raw JSON `args` on a ready connection; returns the ack id when
    /// `want_ack`. `None` (nothing queued) when the connection is gone or not ready.
    pub fn emit(&mut self, conn: ConnId, name: &str, args: &[&[u8]], want_ack: bool) -> Option<Option<u64>> {
        let Pool { slots, mask_state, config, .. } = self;
        let c =
            slots.get_mut(conn.slot as usize).filter(|s| s.generation == conn.generation)?.conn.as_mut()?;
        if c.session.phase() != Phase::Ready {
            return None;
        }
        let mut cx = Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
        let id = c.session.emit(&mut cx, name, args, want_ack);
        if let Err(failure) = self.sync(conn) {
            self.fail(conn, failure);
        }
        Some(id)
    }

    /// Starts closing a connection cleanly (DISCONNECT, then a close frame or packet); a
    /// [`Notice::Closed`] follows. A connection still handshaking is dropped at once (and `Closed` is
    /// reported too).
    pub fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.session.phase() != Phase::Ready {
            let tag = c.tag;
            self.remove(conn);
            self.notices.push_back(Notice::Closed { conn, tag });
            return;
        }
        let Pool { slots, mask_state, config, close_deadlines, epoch, ready, .. } = self;
        let Some(c) = slots.get_mut(conn.slot as usize).and_then(|s| s.conn.as_mut()) else { return };
        let mut cx = Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
        c.session.close(&mut cx);
        *ready = ready.saturating_sub(1);
        close_deadlines.push_back((epoch.now().plus_micros(micros(CLOSE_GRACE)), conn));
        if let Err(failure) = self.sync(conn) {
            self.fail(conn, failure);
        }
    }

    /// The next notice, oldest first.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// One loop turn: writes queued bytes, sleeps until a socket is ready or `wake_at` (run time;
    /// at most 250 ms), reads everything available, calls `on_delivery` for each event delivered,
    /// expires handshake and close deadlines, and writes again. Fails only if epoll itself fails.
    pub fn turn(
        &mut self,
        wake_at: Option<RunMicros>,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), Error> {
        self.flush_dirty();
        let now = self.epoch.now();
        let pool_due = [self.handshake_deadlines.front(), self.close_deadlines.front()]
            .into_iter()
            .flatten()
            .map(|(at, _)| *at)
            .min();
        let wake = [wake_at, pool_due].into_iter().flatten().min();
        let completions = self.recv.as_mut().is_some_and(|r| r.has_completions());
        let sleep = match wake {
            _ if completions => Some(Duration::ZERO),
            Some(at) if at <= now => Some(Duration::ZERO),
            _ => Some(MAX_SLEEP),
        };
        if sleep != Some(Duration::ZERO) {
            self.timer.arm(wake)?;
        }
        match self.poll.poll(&mut self.events, sleep) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        let mut ready = std::mem::take(&mut self.ready_tokens);
        ready.clear();
        ready.extend(self.events.iter().map(|e| Readiness {
            token: e.token(),
            readable: e.is_readable(),
            hangup: e.is_error() || e.is_read_closed() || e.is_write_closed(),
        }));
        // Completions first: bytes a socket received before an error or hangup epoll reports for it
        // are delivered before the pool acts on that report.
        self.dispatch_completions(on_delivery)?;
        for (k, r) in ready.iter().enumerate() {
            // The next ready connection's slot (5 cache lines of a slab of 10,000) loads while this
            // one is read: it missed the cache on nearly every ready event.
            if let Some(next) = ready.get(k + 1).filter(|n| n.token != TIMER && n.token != URING) {
                if let Some(slot) = self.slots.get(untoken(next.token).0) {
                    sys::prefetch(slot);
                }
            }
            match r.token {
                TIMER => self.timer.acknowledge(),
                URING => {}
                token => {
                    let (slot, serial, stream) = untoken(token);
                    self.handle_ready(slot, serial, stream, r, on_delivery);
                }
            }
        }
        self.ready_tokens = ready;
        self.expire_deadlines();
        self.flush_dirty();
        self.submit_receives()
    }

    fn handle_ready(
        &mut self,
        slot: usize,
        serial: u32,
        stream: Stream,
        readiness: &Readiness,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) {
        let hangup = readiness.hangup;
        let Some(generation) = self.slots.get(slot).filter(|s| s.conn.is_some()).map(|s| s.generation) else {
            return;
        };
        let id = ConnId { slot: slot as u32, generation };
        let Pool { slots, mask_state, config, .. } = self;
        let Some(c) = slots.get_mut(slot).and_then(|s| s.conn.as_mut()) else { return };
        let socket = c.sockets.get_mut(stream.index()).and_then(Option::as_mut);
        let Some(socket) = socket.filter(|s| s.serial == serial) else { return };
        if !socket.connected {
            match socket.tcp.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(id, Failure::Connect(e.to_string())),
            }
            match socket.tcp.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected && !hangup => return,
                Err(e) => return self.fail(id, Failure::Connect(e.to_string())),
            }
            socket.connected = true;
            if let Some(recv) = self.recv.as_mut() {
                if let Err(e) = recv.arm(recv_key(id.slot, serial), socket.tcp.as_raw_fd()) {
                    return self.fail(id, Failure::Connect(format!("cannot start receiving: {e}")));
                }
                socket.receiving = true;
            }
            let mut cx =
                Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
            c.session.handle_connected(stream, &mut cx);
            if let Err(failure) = self.sync(id) {
                return self.fail(id, failure);
            }
        }
        // Over io_uring the receive reads; over epoll, a socket is read when the event says it is
        // readable (edge-triggered: bytes arriving later raise a new event), to the end after a hangup.
        if !self.uring && (readiness.readable || hangup) {
            if let Err(failure) = self.read_all(id, stream, hangup, on_delivery) {
                self.fail(id, failure);
                return;
            }
        }
        if let Err(failure) = self.flush(id) {
            self.fail(id, failure);
        }
    }

    /// Epoll path: reads `stream`, feeding the session, following the socket if the session renumbers
    /// it (the upgrade), until the socket would block, closes, or (unless `to_the_end`, which the
    /// renumbering also sets) a read returns less than the buffer holds: the socket is then empty, and
    /// edge-triggered epoll reports bytes arriving later as a new event, so the read that would return
    /// `EAGAIN` is skipped.
    fn read_all(
        &mut self,
        id: ConnId,
        mut stream: Stream,
        mut to_the_end: bool,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), Failure> {
        let mut buf = std::mem::take(&mut self.read_buf);
        let result = loop {
            let socket = self.conn_mut(id).and_then(|c| c.sockets.get_mut(stream.index())?.as_mut());
            let Some(socket) = socket else { break Ok(()) };
            let read = socket.tcp.read(&mut buf);
            let at = self.epoch.now();
            let (input, short) = match read {
                Ok(0) => (Input::Eof, true),
                Ok(n) => (Input::Bytes(buf.get_mut(..n).unwrap_or_default()), n < READ_BUFFER),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Failure::Closed(format!("read failed: {e}"))),
            };
            match self.feed(id, stream, input, at, on_delivery) {
                // After the upgrade renumbers the socket it is read until it would block.
                Ok(Some(next)) if next != stream => {
                    (stream, to_the_end) = (next, true);
                }
                Ok(Some(_)) if to_the_end || !short => {}
                Ok(_) => break Ok(()),
                Err(failure) => break Err(failure),
            }
        };
        self.read_buf = buf;
        result
    }

    /// Feeds one read of `stream`'s socket to the session (read at `at`): deliveries, notices, the
    /// socket actions; at EOF drops the socket, and a close we started that completes removes the
    /// connection. Returns the stream the socket goes by now (the upgrade renumbers it) while it may
    /// still be read, `None` once it or the connection is gone.
    fn feed(
        &mut self,
        id: ConnId,
        stream: Stream,
        input: Input<'_>,
        at: RunMicros,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<Option<Stream>, Failure> {
        let mut closed = false;
        let Pool { slots, notices, mask_state, config, ready, poll, cancels, .. } = self;
        let Some(c) = slots.get_mut(id.slot as usize).and_then(|s| s.conn.as_mut()) else { return Ok(None) };
        let mut cx = Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
        let (tag, scheduled) = (c.tag, c.scheduled);
        let on_event = |event: SessionEvent<'_>| match event {
            SessionEvent::Event(text) => on_delivery(Delivery { conn: id, tag, text, at }),
            SessionEvent::Connected => {
                *ready += 1;
                notices.push_back(Notice::Connected {
                    conn: id,
                    tag,
                    handshake_micros: at.micros_since(scheduled),
                });
            }
            SessionEvent::Ack { id: ack, error } => {
                notices.push_back(Notice::Ack { conn: id, tag, id: ack, error })
            }
            SessionEvent::Closed => closed = true,
        };
        let eof = match input {
            Input::Eof => {
                if let Some(mut socket) = c.sockets.get_mut(stream.index()).and_then(Option::take) {
                    socket.receiving = false; // a receive ends with the EOF it reports
                    discard(poll, cancels, id.slot, socket);
                }
                c.session.handle_eof(stream, &mut cx, on_event)?;
                true
            }
            Input::Bytes(bytes) => {
                c.session.handle_bytes(stream, bytes, &mut cx, on_event)?;
                false
            }
        };
        if closed {
            self.remove(id);
            self.notices.push_back(Notice::Closed { conn: id, tag });
            return Ok(None);
        }
        let promoted = self.sync(id)?;
        Ok(match (eof, promoted) {
            (true, _) => None,
            (false, true) => Some(Stream::Primary),
            (false, false) => Some(stream),
        })
    }

    /// Carries out the session's socket actions (drops, the promotion, connects) and marks the
    /// connection dirty if it has bytes to write. Returns whether `Secondary` became `Primary`.
    fn sync(&mut self, id: ConnId) -> Result<bool, Failure> {
        let mut promoted = false;
        let Pool { slots, poll, config, next_source, next_serial, dirty, cancels, uring, .. } = self;
        let Some(c) = slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation) else {
            return Ok(false);
        };
        let Some(c) = c.conn.as_mut() else { return Ok(false) };
        while let Some(action) = c.session.poll_action() {
            match action {
                StreamAction::Drop(stream) => {
                    if let Some(socket) = c.sockets.get_mut(stream.index()).and_then(Option::take) {
                        discard(poll, cancels, id.slot, socket);
                    }
                }
                StreamAction::Promote => {
                    c.sockets.swap(0, 1);
                    if let Some(socket) = c.sockets.first_mut().and_then(Option::as_mut) {
                        // Re-registering also reports readiness the socket already has.
                        poll.registry()
                            .reregister(
                                &mut socket.tcp,
                                token(id.slot, socket.serial, Stream::Primary),
                                interest(*uring),
                            )
                            .map_err(|e| {
                                Failure::Connect(format!("cannot re-register the upgraded socket: {e}"))
                            })?;
                    }
                    promoted = true;
                }
                StreamAction::Connect(stream) => {
                    let source = match config.source_addrs.as_slice() {
                        [] => None,
                        addrs => {
                            *next_source = next_source.wrapping_add(1);
                            addrs.get(*next_source % addrs.len()).copied()
                        }
                    };
                    let mut tcp = connect_from(source, config.target.addr).map_err(|e| {
                        let from = source.map_or_else(String::new, |s| format!(" from {s}"));
                        Failure::Connect(format!("{e}{from}"))
                    })?;
                    *next_serial = next_serial.wrapping_add(1);
                    let serial = *next_serial;
                    poll.registry()
                        .register(&mut tcp, token(id.slot, serial, stream), interest(*uring))
                        .map_err(|e| Failure::Connect(e.to_string()))?;
                    let socket = Socket { tcp, serial, connected: false, receiving: false };
                    if let Some(old) = c.sockets.get_mut(stream.index()).and_then(|s| s.replace(socket)) {
                        discard(poll, cancels, id.slot, old);
                    }
                }
            }
        }
        if c.session.has_output() && !c.dirty {
            c.dirty = true;
            dirty.push(id);
        }
        Ok(promoted)
    }

    fn flush(&mut self, id: ConnId) -> Result<(), Failure> {
        let Some(c) = self.conn_mut(id) else { return Ok(()) };
        c.dirty = false;
        for stream in Stream::ALL {
            let socket = c.sockets.get_mut(stream.index()).and_then(Option::as_mut);
            let Some(socket) = socket.filter(|s| s.connected) else { continue };
            let Some(out) = c.session.out_mut(stream) else { continue };
            while !out.is_empty() {
                match socket.tcp.write(out) {
                    Ok(0) => return Err(Failure::Closed("the connection stopped taking bytes".into())),
                    Ok(n) if n == out.len() => out.clear(),
                    Ok(n) => drop(out.split_to(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Failure::Closed(format!("write failed: {e}"))),
                }
            }
        }
        Ok(())
    }

    /// Writes every connection that has bytes queued. Failing ones are removed (nothing new gets
    /// queued meanwhile), and the list keeps its allocation.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for id in dirty.drain(..) {
            if let Err(failure) = self.flush(id) {
                self.fail(id, failure);
            }
        }
        self.dirty = dirty;
    }

    fn expire_deadlines(&mut self) {
        let now = self.epoch.now();
        while let Some(&(at, id)) = self.handshake_deadlines.front().filter(|(at, _)| *at <= now) {
            self.handshake_deadlines.pop_front();
            let Some(c) = self.conn_mut(id) else { continue };
            let phase = c.session.phase();
            if matches!(phase, Phase::Ready | Phase::Closing) {
                continue;
            }
            let waited = at.micros_since(c.scheduled) as f64 / 1e6;
            let what = match phase {
                Phase::Connecting => "the TCP connect",
                Phase::Upgrading => "the answer to the WebSocket upgrade",
                Phase::AwaitOpen => "the Engine.IO open packet",
                Phase::Probing => "the upgrade of the polling session to a WebSocket",
                _ => "the Socket.IO CONNECT answer",
            };
            self.fail(id, Failure::Timeout(format!("no reply: waited {waited:.1} s for {what}")));
        }
        while let Some(&(_, id)) = self.close_deadlines.front().filter(|(at, _)| *at <= now) {
            self.close_deadlines.pop_front();
            if let Some(tag) = self.conn_mut(id).map(|c| c.tag) {
                self.remove(id);
                self.notices.push_back(Notice::Closed { conn: id, tag });
            }
        }
    }

    fn fail(&mut self, id: ConnId, failure: Failure) {
        let Some(c) = self.conn_mut(id) else { return };
        let (tag, phase) = (c.tag, c.session.phase());
        if phase == Phase::Closing {
            self.remove(id);
            self.notices.push_back(Notice::Closed { conn: id, tag });
            return;
        }
        let was_ready = phase == Phase::Ready;
        self.remove(id);
        self.notices.push_back(Notice::Failed { conn: id, tag, failure, was_ready });
    }

    fn remove(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(mut c) = slot.conn.take() else { return };
        for socket in c.sockets.iter_mut().filter_map(Option::take) {
            discard(&self.poll, &mut self.cancels, id.slot, socket);
        }
        if c.session.phase() == Phase::Ready {
            self.ready = self.ready.saturating_sub(1);
        }
        self.live = self.live.saturating_sub(1);
        self.release_slot(id.slot);
    }

    fn release_slot(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.generation = s.generation.wrapping_add(1);
            self.free.push(slot);
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation)?.conn.as_mut()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// SplitMix64: a well-mixed 64-bit value from any input.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[path = "pool_uring.rs"]
mod uring;
