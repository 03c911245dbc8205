//! The epoll backend (mio 1.x, edge-triggered): the fallback where io_uring is unavailable.
//!
//! Same contract as the io_uring backend. Reads go into one per-shard buffer (no connection holds a read
//! buffer) and are handed to the handler at once; a connection is read until `EAGAIN`, a short read, or
//! its per-turn budget (then it is read again next turn without waiting for readiness). A flush calls
//! `sendmsg` (a `writev` with `MSG_NOSIGNAL`) over the queued `Bytes` until the queue is empty or the
//! socket is full; a full socket waits for its writable edge, which re-dirties it. No operation outlives
//! a call, so a decided close releases the slot at once unless it lingers, and a detach hands the socket
//! over (deregistered) as soon as its queue is flushed; an adopted socket is registered and read at once.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::outbox::flag;
use super::{
    sys, CloseCause, ConnId, Driver, DriverConfig, DriverEvent, DriverStats, IoBackend, Outbox, Waker,
};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// The epoll driver of one shard. See the [module docs](super) for the shared contract.
pub struct EpollDriver {
    poll: Poll,
    events: Events,
    outbox: Outbox,
    listener: mio::net::TcpListener,
    waker: Waker,
    read_buf: Box<[u8]>,
    iovecs: IovecScratch,
    config: DriverConfig,
    /// Slots that used up their read budget: read again next turn.
    read_again: Vec<u32>,
    spare_read_again: Vec<u32>,
    /// Accepting stopped on `EMFILE`/`ENFILE`/`ENOMEM`; `accept_retry` is set when a slot is released.
    accept_paused: bool,
    accept_retry: bool,
    stats: DriverStats,
}

/// The iovec array of one `sendmsg` call; its pointers mean nothing between calls.
struct IovecScratch(Box<[libc::iovec]>);

// SAFETY: the pointers are dead data outside `flush_one`, which fills and uses them within one call on
// the owning thread; moving the array to another thread moves no live borrow.
unsafe impl Send for IovecScratch {}

impl std::fmt::Debug for EpollDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpollDriver").field("outbox", &self.outbox).finish_non_exhaustive()
    }
}

impl Driver for EpollDriver {
    fn new(listener: TcpListener, config: &DriverConfig) -> io::Result<Self> {
        config.validate()?;
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new()?;
        poll.registry().register(&mut SourceFd(&waker.raw_fd()), WAKER, Interest::READABLE)?;
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        Ok(EpollDriver {
            poll,
            events: Events::with_capacity(config.events_capacity),
            outbox: Outbox::new(),
            listener,
            waker,
            read_buf: vec![0; config.read_buffer_size].into_boxed_slice(),
            iovecs: IovecScratch(vec![empty; config.max_iovecs_per_send].into_boxed_slice()),
            config: config.clone(),
            read_again: Vec::new(),
            spare_read_again: Vec::new(),
            accept_paused: false,
            accept_retry: false,
            stats: DriverStats::default(),
        })
    }

    fn turn<H>(&mut self, timeout: Option<Duration>, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        self.flush_dirty();
        let mut wait = timeout;
        if self.outbox.next_linger_deadline().is_some() {
            let now = Instant::now();
            while let Some(index) = self.outbox.pop_expired_linger(now) {
                let _ = sys::set_linger_zero(self.outbox.fd(index));
                self.release(index);
            }
            if let Some(deadline) = self.outbox.next_linger_deadline() {
                let until = deadline.saturating_duration_since(now);
                wait = Some(wait.map_or(until, |w| w.min(until)));
            }
        }
        if self.outbox.deliver_ended(&mut self.stats, handler)
            || !self.read_again.is_empty()
            || self.accept_retry
        {
            wait = Some(Duration::ZERO);
        }
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(e),
        }
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept_all(handler),
                WAKER => {
                    sys::eventfd_drain(self.waker.raw_fd());
                    self.waker.rearm();
                    handler(DriverEvent::Woken, &mut self.outbox);
                }
                Token(index) => {
                    if (event.is_writable() || event.is_write_closed())
                        && self.outbox.has(index, flag::WRITE_BLOCKED)
                    {
                        self.outbox.clear(index, flag::WRITE_BLOCKED);
                        self.outbox.mark_dirty(index);
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.read_conn(index, handler);
                    }
                }
            }
            self.outbox.deliver_ended(&mut self.stats, handler);
        }
        self.events = events;
        let again = std::mem::replace(&mut self.read_again, std::mem::take(&mut self.spare_read_again));
        for &slot in &again {
            self.read_conn(slot as usize, handler);
            self.outbox.deliver_ended(&mut self.stats, handler);
        }
        self.spare_read_again = again;
        self.spare_read_again.clear();
        if self.accept_retry {
            self.accept_retry = false;
            self.accept_all(handler);
        }
        Ok(())
    }

    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_dirty();
        Ok(())
    }

    fn adopt(&mut self, fd: OwnedFd) -> io::Result<ConnId> {
        sys::set_nonblocking(fd.as_raw_fd(), true)?;
        let conn = self.outbox.insert(fd);
        let index = conn.slot() as usize;
        if let Err(e) = self.register(index) {
            drop(self.outbox.release(index));
            return Err(e);
        }
        self.stats.adopted += 1;
        // Bytes may already wait in the socket; read them next turn even if no new edge comes.
        self.read_again.push(index as u32);
        Ok(conn)
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn stats(&self) -> DriverStats {
        self.stats
    }

    const BACKEND: IoBackend = IoBackend::Epoll;
}

impl EpollDriver {
    fn accept_all<H>(&mut self, handler: &mut H)
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        if self.accept_paused {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if stream.set_nodelay(true).is_err() {
                        continue; // the peer is already gone
                    }
                    let conn = self.outbox.insert(OwnedFd::from(stream));
                    let index = conn.slot() as usize;
                    if self.register(index).is_err() {
                        drop(self.outbox.release(index));
                        continue;
                    }
                    self.stats.accepted += 1;
                    handler(DriverEvent::Accepted { conn, peer }, &mut self.outbox);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO)) => {}
                Err(_) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: retry once a connection is released.
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    /// Registers a slot's socket with the poller, edge-triggered, for both directions.
    fn register(&mut self, index: usize) -> io::Result<()> {
        let fd: RawFd = self.outbox.fd(index);
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll.registry().register(&mut SourceFd(&fd), Token(index), interest)
    }

    fn read_conn<H>(&mut self, index: usize, handler: &mut H)
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        for _ in 0..self.config.read_budget {
            if !self.outbox.has(index, flag::OPEN) {
                return;
            }
            if self.outbox.has(index, flag::REPORTED) && !self.outbox.has(index, flag::LINGER) {
                return; // aborted: the flush releases it
            }
            match sys::recv(self.outbox.fd(index), &mut self.read_buf) {
                Ok(0) => {
                    self.outbox.retire(index, CloseCause::PeerClosed);
                    self.release(index);
                    return;
                }
                Ok(len) => {
                    if let (Some(conn), Some(bytes)) =
                        (self.outbox.reader_id(index), self.read_buf.get(..len))
                    {
                        self.stats.bytes_received += len as u64;
                        handler(DriverEvent::Data { conn, bytes }, &mut self.outbox);
                    }
                    if len < self.read_buf.len() {
                        return; // drained for now; new bytes raise a new edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    self.outbox.retire(index, CloseCause::from_errno(errno));
                    self.release(index);
                    return;
                }
            }
        }
        self.read_again.push(index as u32);
    }

    fn flush_dirty(&mut self) {
        let dirty = self.outbox.take_dirty(self.config.flush_batch);
        for &slot in &dirty {
            let index = slot as usize;
            self.outbox.clear(index, flag::DIRTY);
            self.flush_one(index);
        }
        self.outbox.restore_dirty(dirty);
    }

    fn flush_one(&mut self, index: usize) {
        if !self.outbox.has(index, flag::OPEN) {
            return;
        }
        if self.outbox.has(index, flag::ABORT) {
            let _ = sys::set_linger_zero(self.outbox.fd(index));
            self.release(index);
            return;
        }
        if self.outbox.has(index, flag::REPORTED | flag::WRITE_BLOCKED) {
            return; // lingering, or waiting for the writable edge
        }
        let fd = self.outbox.fd(index);
        loop {
            let (count, asked) = self.outbox.fill_iovecs(index, &mut self.iovecs.0, usize::MAX);
            let Some(iovecs) = self.iovecs.0.get(..count).filter(|iovecs| !iovecs.is_empty()) else { break };
            self.stats.sends += 1;
            // SAFETY: `fill_iovecs` pointed the iovecs into `Bytes` owned by this slot's queue, which
            // nothing consumes or drops until the call returns.
            match unsafe { sys::send_vectored(fd, iovecs) } {
                Ok(sent) => {
                    self.stats.bytes_sent += sent as u64;
                    self.stats.partial_sends += u64::from(sent < asked);
                    self.outbox.consume(index, sent);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.outbox.set(index, flag::WRITE_BLOCKED);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    self.outbox.retire(index, CloseCause::from_errno(errno));
                    self.release(index);
                    return;
                }
            }
        }
        if self.outbox.has(index, flag::DETACH) {
            // Queue flushed: stop reading and give the socket away. Bytes read before this point were
            // delivered by earlier turns; later ones stay in the socket for its next owner.
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            self.outbox.hand_over(index);
            return;
        }
        if self.outbox.has(index, flag::CLOSE_AFTER_FLUSH) {
            let fin_sent = sys::shutdown_write(fd).is_ok();
            self.outbox.retire(index, CloseCause::Flushed);
            if fin_sent {
                self.outbox.start_linger(index, Instant::now() + self.config.close_linger);
            } else {
                self.release(index);
            }
        }
    }

    /// Closes a slot's socket and makes the slot reusable (its close must be decided).
    fn release(&mut self, index: usize) {
        if let Some(fd) = self.outbox.release(index) {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
            drop(fd);
            if self.accept_paused {
                self.accept_paused = false;
                self.accept_retry = true;
            }
        }
    }
}
