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
//! One 64 KiB read buffer serves all connections. Reads run until the socket would block
//! (edge-triggered); writes are batched per turn: everything queued for a socket goes out in one
//! `write` when it takes it. The loop wakes within microseconds of the time it is asked to
//! ([`WakeTimer`]), not epoll's milliseconds.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::session::{Context, Phase, Session, SessionEvent, Stream, StreamAction};
use super::sys::{self, connect_from, WakeTimer};
use super::upgrade::WebSocketKey;
use super::{Failure, Target, Transport};
use crate::latency::{RunEpoch, RunMicros};
use crate::Error;

const TIMER: Token = Token(usize::MAX);
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
    ready_tokens: Vec<(Token, bool)>,
    mask_state: u64,
    next_source: usize,
    next_serial: u32,
    live: usize,
    ready: usize,
}

impl Pool {
    /// An empty pool for the run whose clock is `epoch`. Fails only if epoll or the timer cannot be
    /// created.
    pub fn new(config: PoolConfig, epoch: RunEpoch) -> Result<Pool, Error> {
        let poll = Poll::new()?;
        let timer = WakeTimer::new(epoch)?;
        poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
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
        let sleep = match wake {
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
        ready.extend(
            self.events
                .iter()
                .map(|e| (e.token(), e.is_error() || e.is_read_closed() || e.is_write_closed())),
        );
        for (k, &(token, hangup)) in ready.iter().enumerate() {
            // The next ready connection's slot (5 cache lines of a slab of 10,000) loads while this
            // one is read: it missed the cache on nearly every ready event.
            if let Some(next) = ready.get(k + 1).filter(|(t, _)| *t != TIMER) {
                if let Some(slot) = self.slots.get(untoken(next.0).0) {
                    sys::prefetch(slot);
                }
            }
            if token == TIMER {
                self.timer.acknowledge();
                continue;
            }
            let (slot, serial, stream) = untoken(token);
            self.handle_ready(slot, serial, stream, hangup, on_delivery);
        }
        self.ready_tokens = ready;
        self.expire_deadlines();
        self.flush_dirty();
        Ok(())
    }

    fn handle_ready(
        &mut self,
        slot: usize,
        serial: u32,
        stream: Stream,
        hangup: bool,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) {
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
            let mut cx =
                Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
            c.session.handle_connected(stream, &mut cx);
            if let Err(failure) = self.sync(id) {
                return self.fail(id, failure);
            }
        }
        if let Err(failure) = self.read_all(id, stream, hangup, on_delivery) {
            self.fail(id, failure);
            return;
        }
        if let Err(failure) = self.flush(id) {
            self.fail(id, failure);
        }
    }

    /// Reads `stream` until its receive queue is empty, feeding the session; follows the socket if the
    /// session renumbers it (the upgrade), and stops when it closes.
    ///
    /// Empty means a read that would block or, unless `hangup` (the event also reported an error or a
    /// closed side), a read shorter than the buffer: a TCP read returns short only once the receive
    /// queue is empty, and data that arrives later raises a new edge (epoll(7) on stream sockets). That
    /// saves the read that would block, half of all reads in a flat-out fan-out run. With `hangup` the
    /// end of the stream may already be queued behind the data, with no edge to come, so it reads on.
    fn read_all(
        &mut self,
        id: ConnId,
        mut stream: Stream,
        hangup: bool,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), Failure> {
        let mut closed = false;
        // After a renumbering the new primary is read until it would block.
        let mut until_would_block = hangup;
        loop {
            let Pool { slots, read_buf, notices, mask_state, config, epoch, ready, poll, .. } = self;
            let Some(c) = slots.get_mut(id.slot as usize).and_then(|s| s.conn.as_mut()) else {
                return Ok(());
            };
            let i = stream.index();
            let Some(socket) = c.sockets.get_mut(i).and_then(Option::as_mut) else { break };
            let read = socket.tcp.read(read_buf);
            let at = epoch.now();
            let mut cx =
                Context { target: &config.target, key: WebSocketKey::from_bits(c.key_bits), mask_state };
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
            let (eof, short) = match read {
                Ok(0) => {
                    if let Some(mut socket) = c.sockets.get_mut(i).and_then(Option::take) {
                        let _ = poll.registry().deregister(&mut socket.tcp);
                    }
                    c.session.handle_eof(stream, &mut cx, on_event)?;
                    (true, true)
                }
                Ok(n) => {
                    let short = n < read_buf.len();
                    let input = read_buf.get_mut(..n).unwrap_or_default();
                    c.session.handle_bytes(stream, input, &mut cx, on_event)?;
                    (false, short)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Closed(format!("read failed: {e}"))),
            };
            if closed {
                break;
            }
            let promoted = self.sync(id)?;
            if eof {
                break;
            }
            if promoted && stream == Stream::Secondary {
                stream = Stream::Primary;
                until_would_block = true;
                continue;
            }
            if short && !until_would_block {
                break;
            }
        }
        if closed {
            let tag = self.conn_mut(id).map_or(0, |c| c.tag);
            self.remove(id);
            self.notices.push_back(Notice::Closed { conn: id, tag });
        }
        Ok(())
    }

    /// Carries out the session's socket actions (drops, the promotion, connects) and marks the
    /// connection dirty if it has bytes to write. Returns whether `Secondary` became `Primary`.
    fn sync(&mut self, id: ConnId) -> Result<bool, Failure> {
        let mut promoted = false;
        let Pool { slots, poll, config, next_source, next_serial, dirty, .. } = self;
        let Some(c) = slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation) else {
            return Ok(false);
        };
        let Some(c) = c.conn.as_mut() else { return Ok(false) };
        while let Some(action) = c.session.poll_action() {
            match action {
                StreamAction::Drop(stream) => {
                    if let Some(mut socket) = c.sockets.get_mut(stream.index()).and_then(Option::take) {
                        let _ = poll.registry().deregister(&mut socket.tcp);
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
                                Interest::READABLE | Interest::WRITABLE,
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
                        .register(
                            &mut tcp,
                            token(id.slot, serial, stream),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(|e| Failure::Connect(e.to_string()))?;
                    let socket = Socket { tcp, serial, connected: false };
                    if let Some(mut old) = c.sockets.get_mut(stream.index()).and_then(|s| s.replace(socket)) {
                        let _ = poll.registry().deregister(&mut old.tcp);
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
        for socket in c.sockets.iter_mut().flatten() {
            let _ = self.poll.registry().deregister(&mut socket.tcp);
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
