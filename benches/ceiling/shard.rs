//! One ceiling thread: a `SO_REUSEPORT` listener, an epoll loop (mio) and the sockets it accepted.
//!
//! Cost of a broadcast on a shard: one walk of the target room's member list (a union with a stamp per
//! slot when there are several rooms or excepted rooms) and, per recipient, one `write` (single mode) or
//! one queued `Bytes` clone plus a share of one `writev` (coalesced mode). Nothing else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::conn::{Action, Conn};
use crate::SendMode;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// A broadcast as handed from the publisher's shard to the others.
#[derive(Debug)]
pub struct Broadcast {
    pub frame: Bytes,
    pub to: Vec<String>,
    pub except: Vec<String>,
    /// The publisher's shard and slot (excluded there).
    pub origin: usize,
    pub sender: usize,
}

/// How to reach another shard.
#[derive(Debug)]
pub struct Peer {
    pub tx: Sender<Arc<Broadcast>>,
    pub waker: Arc<Waker>,
}

/// A listening socket with `SO_REUSEPORT`, so every thread can accept on the same port.
pub fn reuseport_listener(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let SocketAddr::V4(v4) = addr else { anyhow::bail!("the ceiling listens on IPv4 only") };
    // SAFETY: plain socket syscalls on a descriptor this function owns; `sockaddr_in` is fully
    // initialised (zeroed, then family, port and address set) and outlives the `bind` call; the
    // descriptor is handed to `TcpListener` exactly once, or closed on failure.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        anyhow::ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        let len = size_of::<libc::c_int>() as libc::socklen_t;
        let opt = (&one as *const libc::c_int).cast();
        let mut ok = libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, opt, len) == 0
            && libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, opt, len) == 0;
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = v4.port().to_be();
        sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        ok = ok
            && libc::bind(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            ) == 0
            && libc::listen(fd, 4096) == 0;
        if !ok {
            let error = std::io::Error::last_os_error();
            libc::close(fd);
            anyhow::bail!("listening on {addr}: {error}");
        }
        Ok(TcpListener::from_std(std::net::TcpListener::from_raw_fd(fd)))
    }
}

/// One event loop and the connections it owns.
#[derive(Debug)]
pub struct Shard {
    index: usize,
    poll: Poll,
    listener: TcpListener,
    inbox: Receiver<Arc<Broadcast>>,
    mode: SendMode,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    rooms: HashMap<String, Vec<usize>>,
    /// Union stamps: `stamp[slot] == epoch` means the slot is already served or excluded.
    stamp: Vec<u32>,
    epoch: u32,
    /// Slots with pending frames (coalesced mode).
    dirty: Vec<usize>,
    /// Slots to close at the end of the turn.
    dead: Vec<usize>,
    next_sid: u64,
}

impl Shard {
    pub fn new(
        index: usize,
        listener: TcpListener,
        inbox: Receiver<Arc<Broadcast>>,
        mode: SendMode,
    ) -> anyhow::Result<Shard> {
        let poll = Poll::new().context("epoll")?;
        let mut shard = Shard {
            index,
            poll,
            listener,
            inbox,
            mode,
            conns: Vec::new(),
            free: Vec::new(),
            rooms: HashMap::new(),
            stamp: Vec::new(),
            epoch: 0,
            dirty: Vec::new(),
            dead: Vec::new(),
            next_sid: (index as u64) << 48,
        };
        shard.poll.registry().register(&mut shard.listener, LISTENER, Interest::READABLE)?;
        Ok(shard)
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// A waker for this shard's loop (call once per shard).
    pub fn waker(&self) -> anyhow::Result<Arc<Waker>> {
        Ok(Arc::new(Waker::new(self.poll.registry(), WAKER)?))
    }

    /// Runs the loop until a fatal epoll error.
    pub fn run(&mut self, peers: &[Peer]) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 64 * 1024];
        let mut actions = Vec::new();
        loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept()?,
                    WAKER => {
                        while let Ok(b) = self.inbox.try_recv() {
                            self.broadcast(&b);
                        }
                    }
                    Token(slot) => {
                        if event.is_readable() || event.is_read_closed() {
                            self.on_readable(slot, &mut buf, &mut actions, peers);
                        }
                        if event.is_writable() {
                            let flushed = self.conn(slot).map(|c| c.flush_backlog());
                            if let Some(Err(_)) = flushed {
                                self.dead.push(slot);
                            }
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.dirty) {
                if let Some(Err(_)) = self.conn(slot).map(|c| c.flush_pending()) {
                    self.dead.push(slot);
                }
            }
            for slot in std::mem::take(&mut self.dead) {
                self.close(slot);
            }
        }
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    fn accept(&mut self) -> anyhow::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Out of descriptors or a connection reset before accept: drop it, keep serving.
                Err(_) => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or(self.conns.len());
            self.poll.registry().register(
                &mut stream,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            self.next_sid += 1;
            let conn = Conn::new(stream, self.next_sid);
            if slot == self.conns.len() {
                self.conns.push(Some(conn));
                self.stamp.push(0);
            } else if let Some(place) = self.conns.get_mut(slot) {
                *place = Some(conn);
            }
        }
    }

    fn on_readable(&mut self, slot: usize, buf: &mut [u8], actions: &mut Vec<Action>, peers: &[Peer]) {
        let Some(conn) = self.conn(slot) else { return };
        if conn.on_readable(buf, actions).is_err() {
            actions.push(Action::Close);
        }
        for action in actions.drain(..) {
            match action {
                Action::Reply(bytes) => {
                    if let Some(Err(_)) = self.conn(slot).map(|c| c.send_now(&bytes)) {
                        self.dead.push(slot);
                    }
                }
                Action::Join(room) => {
                    let Some(conn) = self.conn(slot) else { continue };
                    if !conn.rooms.contains(&room) {
                        conn.rooms.push(room.clone());
                        self.rooms.entry(room).or_default().push(slot);
                    }
                }
                Action::Leave(room) => {
                    let Some(conn) = self.conn(slot) else { continue };
                    conn.rooms.retain(|r| *r != room);
                    if let Some(members) = self.rooms.get_mut(&room) {
                        members.retain(|&s| s != slot);
                    }
                }
                Action::Publish { frame, to, except } => {
                    let b = Arc::new(Broadcast { frame, to, except, origin: self.index, sender: slot });
                    self.broadcast(&b);
                    for (index, peer) in peers.iter().enumerate() {
                        if index != self.index && peer.tx.send(b.clone()).is_ok() {
                            let _ = peer.waker.wake();
                        }
                    }
                }
                Action::Close => self.dead.push(slot),
            }
        }
    }

    /// Delivers `b` to this shard's members of its audience.
    fn broadcast(&mut self, b: &Broadcast) {
        let sender = (b.origin == self.index).then_some(b.sender);
        let everyone: Vec<usize> = if b.to.is_empty() {
            (0..self.conns.len()).filter(|&s| self.conns.get(s).is_some_and(Option::is_some)).collect()
        } else {
            Vec::new()
        };
        let Shard { conns, rooms, stamp, epoch, dirty, dead, mode, .. } = self;
        let mut deliver = |slot: usize| {
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else { return };
            match mode {
                SendMode::Single => {
                    if conn.send_now(&b.frame).is_err() {
                        dead.push(slot);
                    }
                }
                SendMode::Coalesced => {
                    if conn.pending.is_empty() {
                        dirty.push(slot);
                    }
                    conn.pending.push(b.frame.clone());
                }
            }
        };
        if let ([room], []) = (b.to.as_slice(), b.except.as_slice()) {
            for &slot in rooms.get(room).map(Vec::as_slice).unwrap_or_default() {
                if Some(slot) != sender {
                    deliver(slot);
                }
            }
            return;
        }
        *epoch = epoch.wrapping_add(1).max(1);
        let epoch = *epoch;
        let mut mark = |slot: usize| match stamp.get_mut(slot) {
            Some(s) if *s != epoch => {
                *s = epoch;
                true
            }
            _ => false,
        };
        if let Some(slot) = sender {
            mark(slot);
        }
        for room in &b.except {
            for &slot in rooms.get(room).map(Vec::as_slice).unwrap_or_default() {
                mark(slot);
            }
        }
        if b.to.is_empty() {
            for slot in everyone {
                if mark(slot) {
                    deliver(slot);
                }
            }
            return;
        }
        for room in &b.to {
            for &slot in rooms.get(room).map(Vec::as_slice).unwrap_or_default() {
                if mark(slot) {
                    deliver(slot);
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        for room in &conn.rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.retain(|&s| s != slot);
            }
        }
        self.dirty.retain(|&s| s != slot);
        self.free.push(slot);
    }
}
