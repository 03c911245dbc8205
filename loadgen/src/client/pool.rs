//! The client event loop: every connection of one process on one `mio::Poll`.
//!
//! Calling order, like the engine's sans-I/O types: the scenario calls [`Pool::open`],
//! [`Pool::emit`] and [`Pool::close`] (which only queue work), then [`Pool::turn`] (flush queued bytes,
//! wait for readiness or the wake-up time, read, answer pings, hand deliveries to the callback), then
//! drains [`Pool::poll_notice`] (connected, acks, failures) before the next turn.
//!
//! Costs and memory: per connection a mio `TcpStream`, a [`Session`] (frame decoder, output buffer)
//! and a few words (~200 bytes at rest). One 64 KiB read buffer serves all connections. Reads run until
//! the socket would block (edge-triggered); writes are batched per turn: everything queued for a
//! connection goes out in one `write` when the socket takes it. The loop wakes within microseconds of
//! the time it is asked to ([`WakeTimer`]), not epoll's milliseconds.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use roomcast_engine::eio::BytesMut;

use super::session::{Context, Phase, Session, SessionEvent};
use super::sys::{connect_from, WakeTimer};
use super::upgrade::{write_upgrade_request, WebSocketKey};
use super::{Failure, Target};
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

#[derive(Debug)]
struct Conn {
    stream: mio::net::TcpStream,
    session: Session,
    key_bits: u128,
    scheduled: RunMicros,
    tag: u32,
    dirty: bool,
}

// Per-connection budget: socket, frame decoder, output buffer handle, ids and times.
const _: () = assert!(std::mem::size_of::<Conn>() <= 256);

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
    request: BytesMut,
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
        let mut request = BytesMut::new();
        // The request differs per connection only in its key: build it once with a placeholder.
        write_upgrade_request(&config.target, &WebSocketKey::from_bits(0), &mut request);
        let mask_state = splitmix(config.seed ^ 0x6d61_736b) | 1;
        Ok(Pool {
            poll,
            events: Events::with_capacity(1024),
            timer,
            epoch,
            config,
            request,
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
        let source = match self.config.source_addrs.as_slice() {
            [] => None,
            addrs => {
                self.next_source = self.next_source.wrapping_add(1);
                addrs.get(self.next_source % addrs.len()).copied()
            }
        };
        let key_bits = (u128::from(splitmix(self.config.seed ^ u64::from(slot))) << 64)
            | u128::from(splitmix(self.mask_state ^ u64::from(generation)));
        let registered = connect_from(source, self.config.target.addr).and_then(|mut stream| {
            self.poll.registry().register(
                &mut stream,
                Token(slot as usize),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        match registered {
            Ok(stream) => {
                self.live += 1;
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    s.conn = Some(Conn {
                        stream,
                        session: Session::new(),
                        key_bits,
                        scheduled,
                        tag,
                        dirty: false,
                    });
                }
                let deadline = self.epoch.now().plus_micros(micros(self.config.handshake_timeout));
                self.handshake_deadlines.push_back((deadline, id));
            }
            Err(e) => {
                self.release_slot(slot);
                let from = source.map_or_else(String::new, |s| format!(" from {s}"));
                self.notices.push_back(Notice::Failed {
                    conn: id,
                    tag,
                    failure: Failure::Connect(format!("{e}{from}")),
                    was_ready: false,
                });
            }
        }
        id
    }

    /// Queues event `name` with raw JSON `args` on a ready connection; returns the ack id when
    /// `want_ack`. `None` (nothing queued) when the connection is gone or not ready.
    pub fn emit(&mut self, conn: ConnId, name: &str, args: &[&[u8]], want_ack: bool) -> Option<Option<u64>> {
        let c = self.conn_mut(conn)?;
        if c.session.phase() != Phase::Ready {
            return None;
        }
        let Pool { slots, mask_state, config, dirty, .. } = self;
        let c = slots.get_mut(conn.slot as usize)?.conn.as_mut()?;
        let id = c.session.emit(&config.target.namespace, name, args, want_ack, mask_state);
        if !c.dirty {
            c.dirty = true;
            dirty.push(conn);
        }
        Some(id)
    }

    /// Starts closing a connection cleanly (DISCONNECT, close frame); a [`Notice::Closed`] follows.
    /// A connection still handshaking is dropped at once (and `Closed` is reported too).
    pub fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.session.phase() != Phase::Ready {
            let tag = c.tag;
            self.remove(conn);
            self.notices.push_back(Notice::Closed { conn, tag });
            return;
        }
        let Pool { slots, mask_state, config, dirty, close_deadlines, epoch, ready, .. } = self;
        let Some(c) = slots.get_mut(conn.slot as usize).and_then(|s| s.conn.as_mut()) else { return };
        c.session.close(&config.target.namespace, mask_state);
        *ready = ready.saturating_sub(1);
        if !c.dirty {
            c.dirty = true;
            dirty.push(conn);
        }
        close_deadlines.push_back((epoch.now().plus_micros(micros(CLOSE_GRACE)), conn));
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
        for &(token, hangup) in &ready {
            if token == TIMER {
                self.timer.acknowledge();
                continue;
            }
            self.handle_ready(token.0, hangup, on_delivery);
        }
        self.ready_tokens = ready;
        self.expire_deadlines();
        self.flush_dirty();
        Ok(())
    }

    fn handle_ready(&mut self, slot: usize, hangup: bool, on_delivery: &mut dyn FnMut(Delivery<'_>)) {
        let Some(generation) = self.slots.get(slot).filter(|s| s.conn.is_some()).map(|s| s.generation) else {
            return;
        };
        let id = ConnId { slot: slot as u32, generation };
        let Pool { slots, request, .. } = self;
        let Some(c) = slots.get_mut(slot).and_then(|s| s.conn.as_mut()) else { return };
        if c.session.phase() == Phase::Connecting {
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(id, Failure::Connect(e.to_string())),
            }
            match c.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected && !hangup => return,
                Err(e) => return self.fail(id, Failure::Connect(e.to_string())),
            }
            let mut request = request.clone();
            set_key(&mut request, &WebSocketKey::from_bits(c.key_bits));
            c.session.handle_tcp_connected(&request);
            self.mark_dirty(id);
        }
        if let Err(failure) = self.read_all(id, on_delivery) {
            self.fail(id, failure);
            return;
        }
        if let Err(failure) = self.flush(id) {
            self.fail(id, failure);
        }
    }

    fn read_all(&mut self, id: ConnId, on_delivery: &mut dyn FnMut(Delivery<'_>)) -> Result<(), Failure> {
        let Pool { slots, read_buf, notices, mask_state, config, epoch, ready, dirty, .. } = self;
        let Some(c) = slots.get_mut(id.slot as usize).and_then(|s| s.conn.as_mut()) else { return Ok(()) };
        let mut closed = false;
        loop {
            let n = match c.stream.read(read_buf) {
                Ok(0) => {
                    if c.session.phase() == Phase::Closing {
                        closed = true;
                        break;
                    }
                    return Err(Failure::Closed("the server closed the TCP connection".into()));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Closed(format!("read failed: {e}"))),
            };
            let at = epoch.now();
            let input = read_buf.get_mut(..n).unwrap_or_default();
            let mut cx = Context {
                namespace: &config.target.namespace,
                key: WebSocketKey::from_bits(c.key_bits),
                mask_state,
            };
            let (tag, scheduled) = (c.tag, c.scheduled);
            c.session.handle_bytes(input, &mut cx, |event| match event {
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
            })?;
            if closed {
                break;
            }
        }
        if !c.session.out.is_empty() && !c.dirty {
            c.dirty = true;
            dirty.push(id);
        }
        if closed {
            let tag = c.tag;
            self.remove(id);
            self.notices.push_back(Notice::Closed { conn: id, tag });
        }
        Ok(())
    }

    fn flush(&mut self, id: ConnId) -> Result<(), Failure> {
        let Some(c) = self.conn_mut(id) else { return Ok(()) };
        c.dirty = false;
        if c.session.phase() == Phase::Connecting {
            return Ok(());
        }
        while !c.session.out.is_empty() {
            match c.stream.write(&c.session.out) {
                Ok(0) => return Err(Failure::Closed("the connection stopped taking bytes".into())),
                Ok(n) if n == c.session.out.len() => c.session.out.clear(),
                Ok(n) => drop(c.session.out.split_to(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Closed(format!("write failed: {e}"))),
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
        let _ = self.poll.registry().deregister(&mut c.stream);
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

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation)?.conn.as_mut()
    }
}

/// Writes `key` over the placeholder key of the prebuilt request.
fn set_key(request: &mut BytesMut, key: &WebSocketKey) {
    const NAME: &[u8] = b"Sec-WebSocket-Key: ";
    if let Some(at) = request.windows(NAME.len()).position(|w| w == NAME) {
        if let Some(slot) = request.get_mut(at + NAME.len()..at + NAME.len() + 24) {
            slot.copy_from_slice(key.as_bytes());
        }
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
