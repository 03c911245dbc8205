//! The io_uring backend: multishot accept, multishot receive into a provided-buffer ring, one
//! send per dirty connection per flush (`SEND` of a lone buffer, `SENDMSG` of several, `SEND_ZC` for a
//! large buffer), waits with a timeout
//! through `io_uring_enter`'s extended argument, and the waker's eventfd read through the ring.
//!
//! Per connection at most one send is in flight, so queue order is wire order; a partial send is
//! consumed from the queue at its completion and the rest goes out at the next flush. A close winds
//! down in steps: decide (`Closed` queued, id stale) → cancel the fd's operations (or, for a graceful
//! close, FIN and linger until the peer's FIN) → when no operation is in flight, drop the queue and
//! close the fd → slot reusable. A detach winds down the same way without closing: flush the queue →
//! cancel the receive (its buffered completions are still delivered as `Data`) → when nothing is in
//! flight, hand the open fd over (`Detached`). An adopted fd gets a multishot receive like an accepted one.

mod bufring;
mod files;
mod submit;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{cqueue, IoUring};

use self::bufring::ProvidedBuffers;
use self::files::RegisteredFiles;
use self::submit::{OpKind, SendOps, SendTarget};
use super::outbox::flag;
use super::{
    sys, CloseCause, ConnId, Driver, DriverConfig, DriverEvent, DriverStats, IoBackend, Outbox, Waker,
};

/// Buffer group id of the shard's provided-buffer ring (one group per ring).
const BUFFER_GROUP: u16 = 0;
/// How long `Drop` waits for cancelled operations before leaking their memory instead.
const DROP_DRAIN: Duration = Duration::from_secs(2);

/// The io_uring driver of one shard. See the [module docs](super) for the shared contract.
pub struct UringDriver {
    // Declared first: dropped (ring closed) before the memory its operations named.
    ring: IoUring,
    bufs: ProvidedBuffers,
    /// Sockets the sends name by table index (slot `i` → entry `i`).
    files: RegisteredFiles,
    ops: SendOps,
    outbox: Outbox,
    listener: TcpListener,
    waker: Waker,
    /// Target of the eventfd read; boxed so its address is stable.
    wake_counter: Box<u64>,
    config: DriverConfig,
    /// Completions to process: the current batch, plus any moved aside while a submit was blocked.
    cqes: Vec<cqueue::Entry>,
    /// Slots whose multishot receive ended while still wanted (`ENOBUFS`, overflow); re-armed after the
    /// batch has returned its buffers.
    rearm: Vec<u32>,
    accept_armed: bool,
    /// Accepting stopped on `EMFILE`/`ENFILE`/`ENOMEM`; resumes when a connection is released.
    accept_paused: bool,
    inflight: usize,
    stats: DriverStats,
}

impl std::fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDriver").field("outbox", &self.outbox).field("inflight", &self.inflight).finish()
    }
}

impl Driver for UringDriver {
    fn new(listener: TcpListener, config: &DriverConfig) -> io::Result<Self> {
        config.validate()?;
        listener.set_nonblocking(false)?;
        let mut builder = IoUring::builder();
        builder.setup_cqsize(config.ring_entries * 4).setup_coop_taskrun();
        let ring = match builder.build(config.ring_entries) {
            Ok(ring) => ring,
            // COOP_TASKRUN needs Linux 5.19; the driver works without it.
            Err(_) => IoUring::builder().setup_cqsize(config.ring_entries * 4).build(config.ring_entries)?,
        };
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring lacks IORING_FEAT_EXT_ARG"));
        }
        let bufs = ProvidedBuffers::register(
            &ring.submitter(),
            config.provided_buffers,
            config.provided_buffer_size,
            BUFFER_GROUP,
        )?;
        let files = RegisteredFiles::register(&ring);
        let mut driver = UringDriver {
            ring,
            bufs,
            files,
            ops: SendOps::new(config.max_iovecs_per_send),
            outbox: Outbox::new(),
            listener,
            waker: Waker::new()?,
            wake_counter: Box::new(0),
            config: config.clone(),
            cqes: Vec::new(),
            rearm: Vec::new(),
            accept_armed: false,
            accept_paused: false,
            inflight: 0,
            stats: DriverStats::default(),
        };
        driver.arm_accept()?;
        driver.arm_wake()?;
        driver.ring.submit()?;
        Ok(driver)
    }

    fn turn<H>(&mut self, timeout: Option<Duration>, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        self.push_flush()?;
        let mut wait = timeout;
        if self.outbox.next_linger_deadline().is_some() {
            let now = Instant::now();
            while let Some(index) = self.outbox.pop_expired_linger(now) {
                let _ = sys::set_linger_zero(self.outbox.fd(index));
                self.wind_down(index)?;
            }
            if let Some(deadline) = self.outbox.next_linger_deadline() {
                let until = deadline.saturating_duration_since(now);
                wait = Some(wait.map_or(until, |w| w.min(until)));
            }
        }
        if self.outbox.deliver_ended(&mut self.stats, handler) || !self.cqes.is_empty() {
            wait = Some(Duration::ZERO);
        }
        self.enter(wait)?;
        self.cqes.extend(self.ring.completion());
        let mut batch = std::mem::take(&mut self.cqes);
        let mut result = Ok(());
        for cqe in &batch {
            result = self.complete(cqe, handler);
            if result.is_err() {
                break;
            }
            self.outbox.deliver_ended(&mut self.stats, handler);
        }
        batch.clear();
        // Completions moved aside during this batch (a push met a full ring) stay for the next turn.
        batch.append(&mut self.cqes);
        self.cqes = batch;
        result?;
        self.rearm()
    }

    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_flush()?;
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn adopt(&mut self, fd: OwnedFd) -> io::Result<ConnId> {
        // Blocking, as accepted sockets are here: io_uring never blocks on them and sends never EAGAIN.
        sys::set_nonblocking(fd.as_raw_fd(), false)?;
        let raw = fd.as_raw_fd();
        let conn = self.outbox.insert(fd);
        let index = conn.slot() as usize;
        if let Err(e) = self.arm_recv(index) {
            drop(self.outbox.release(index));
            return Err(e);
        }
        self.files.insert(&self.ring, index, raw);
        self.stats.adopted += 1;
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

    const BACKEND: IoBackend = IoBackend::Uring;
}

impl UringDriver {
    /// Pushes one send per dirty connection of this batch (the first `flush_batch`) and carries out
    /// aborts and graceful closes. Submission is left to the caller (`flush` submits at once, `turn`
    /// with its wait).
    fn push_flush(&mut self) -> io::Result<()> {
        let dirty = self.outbox.take_dirty(self.config.flush_batch);
        let mut result = Ok(());
        for &slot in &dirty {
            let index = slot as usize;
            self.outbox.clear(index, flag::DIRTY);
            result = self.flush_one(index);
            if result.is_err() {
                break;
            }
        }
        self.outbox.restore_dirty(dirty);
        result
    }

    fn flush_one(&mut self, index: usize) -> io::Result<()> {
        if !self.outbox.has(index, flag::OPEN) {
            return Ok(());
        }
        if self.outbox.has(index, flag::ABORT) {
            self.outbox.clear(index, flag::ABORT);
            let _ = sys::set_linger_zero(self.outbox.fd(index));
            return self.wind_down(index);
        }
        if self.outbox.has(index, flag::REPORTED | flag::SEND_INFLIGHT) {
            return Ok(()); // closing, or the send completion re-dirties the slot
        }
        if !self.outbox.queue_is_empty(index) {
            return self.submit_send(index);
        }
        if self.outbox.has(index, flag::CLOSE_AFTER_FLUSH) {
            let fd = self.outbox.fd(index);
            let fin_sent = sys::shutdown_write(fd).is_ok();
            self.outbox.retire(index, CloseCause::Flushed);
            if fin_sent {
                self.outbox.start_linger(index, Instant::now() + self.config.close_linger);
                if !self.outbox.has(index, flag::RECV_ARMED) {
                    self.rearm.push(index as u32);
                }
            }
            return self.wind_down(index);
        }
        if self.outbox.has(index, flag::DETACH) {
            return self.advance_detach(index);
        }
        Ok(())
    }

    fn submit_send(&mut self, index: usize) -> io::Result<()> {
        let target = if self.files.is_registered(index) {
            SendTarget::Registered(index as u32)
        } else {
            SendTarget::Fd(self.outbox.fd(index))
        };
        let threshold = self.config.zero_copy_threshold.unwrap_or(usize::MAX);
        let op = self.ops.alloc(index as u32);
        match self.outbox.head_len(index) {
            Some(len) if len >= threshold => {
                let payload = self.outbox.head_bytes(index).unwrap_or_default();
                submit::push_send_zc(&mut self.ring, &mut self.ops, op, target, payload, &mut self.cqes)?;
                self.stats.zero_copy_sends += 1;
            }
            _ => {
                let filled = self.outbox.fill_iovecs(index, self.ops.iovecs_mut(op), threshold);
                submit::push_send(&mut self.ring, &mut self.ops, op, target, filled, &mut self.cqes)?;
            }
        }
        self.stats.sends += 1;
        self.inflight += 1;
        self.outbox.set(index, flag::SEND_INFLIGHT);
        Ok(())
    }

    fn complete<H>(&mut self, cqe: &cqueue::Entry, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        let (result, flags) = (cqe.result(), cqe.flags());
        if !cqueue::more(flags) {
            self.inflight = self.inflight.saturating_sub(1);
        }
        let Some((kind, index)) = submit::decode(cqe.user_data()) else { return Ok(()) };
        match kind {
            OpKind::Accept => self.on_accept(result, flags, handler),
            OpKind::Recv => self.on_recv(index as usize, result, flags, handler),
            OpKind::Send => self.on_send(index, result, flags),
            OpKind::Wake if result == -libc::ECANCELED => Ok(()),
            OpKind::Wake => {
                self.waker.rearm();
                handler(DriverEvent::Woken, &mut self.outbox);
                self.arm_wake()
            }
            OpKind::Cancel => Ok(()),
        }
    }

    fn on_accept<H>(&mut self, result: i32, flags: u32, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        if !cqueue::more(flags) {
            self.accept_armed = false; // re-armed after the batch
        }
        if matches!(-result, libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS) {
            self.accept_paused = true;
        }
        let Some(fd) = submit::own_accepted(result) else { return Ok(()) };
        let Ok((fd, peer)) = sys::prepare_accepted(fd) else { return Ok(()) }; // peer already gone
        let raw = fd.as_raw_fd();
        let conn = self.outbox.insert(fd);
        self.stats.accepted += 1;
        self.files.insert(&self.ring, conn.slot() as usize, raw);
        self.arm_recv(conn.slot() as usize)?;
        handler(DriverEvent::Accepted { conn, peer }, &mut self.outbox);
        Ok(())
    }

    fn on_recv<H>(&mut self, index: usize, result: i32, flags: u32, handler: &mut H) -> io::Result<()>
    where
        H: FnMut(DriverEvent<'_>, &mut Outbox),
    {
        let more = cqueue::more(flags);
        if !more {
            self.outbox.clear(index, flag::RECV_ARMED);
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            if result > 0 {
                let conn = self.outbox.reader_id(index);
                if let (Some(conn), Some(bytes)) = (conn, self.bufs.get(bid, result as usize)) {
                    self.stats.bytes_received += bytes.len() as u64;
                    handler(DriverEvent::Data { conn, bytes }, &mut self.outbox);
                }
            }
            self.bufs.give_back(bid);
            self.bufs.publish(); // one release store: the buffer is usable again at once
        }
        match result {
            1.. if !more => self.rearm.push(index as u32),
            1.. => {}
            0 => {
                self.outbox.retire(index, CloseCause::PeerClosed);
                self.outbox.clear(index, flag::LINGER);
                return self.wind_down(index);
            }
            _ if -result == libc::ENOBUFS => self.rearm.push(index as u32),
            _ if -result == libc::ECANCELED => return self.settle(index),
            _ => {
                self.outbox.retire(index, CloseCause::from_errno(-result));
                self.outbox.clear(index, flag::LINGER);
                return self.wind_down(index);
            }
        }
        Ok(())
    }

    fn on_send(&mut self, op: u32, result: i32, flags: u32) -> io::Result<()> {
        let target = self.ops.target(op);
        if cqueue::notif(flags) {
            self.ops.free(op); // the kernel let go of the zero-copy payload
            return Ok(());
        }
        if !cqueue::more(flags) {
            self.ops.free(op); // a plain send, or a zero-copy one with no notification to come
        }
        let Some((slot, asked)) = target else { return Ok(()) };
        let index = slot as usize;
        self.outbox.clear(index, flag::SEND_INFLIGHT);
        if result >= 0 {
            let sent = result as usize;
            self.stats.bytes_sent += sent as u64;
            self.stats.partial_sends += u64::from(sent < asked);
            self.outbox.consume(index, sent);
        } else if !matches!(-result, libc::ECANCELED | libc::EAGAIN | libc::EINTR) {
            self.outbox.retire(index, CloseCause::from_errno(-result));
        }
        if self.outbox.has(index, flag::REPORTED) {
            return self.wind_down(index);
        }
        if !self.outbox.queue_is_empty(index)
            || self.outbox.has(index, flag::CLOSE_AFTER_FLUSH | flag::DETACH)
        {
            self.outbox.mark_dirty(index);
        }
        Ok(())
    }

    /// Moves a detaching slot towards hand-over: once its queue is flushed and no send is in flight,
    /// cancels its receive; once that receive has ended too, hands the open fd to the user.
    fn advance_detach(&mut self, index: usize) -> io::Result<()> {
        if self.outbox.live_id(index).is_none() || !self.outbox.has(index, flag::DETACH) {
            return Ok(());
        }
        if self.outbox.has(index, flag::SEND_INFLIGHT) || !self.outbox.queue_is_empty(index) {
            return Ok(()); // the send completion re-dirties the slot
        }
        if self.outbox.has(index, flag::RECV_ARMED) {
            if !self.outbox.has(index, flag::CANCELLING) {
                submit::push_cancel_fd(&mut self.ring, self.outbox.fd(index), &mut self.cqes)?;
                self.inflight += 1;
                self.outbox.set(index, flag::CANCELLING);
            }
            return Ok(()); // the receive's last completion comes back here through `settle`
        }
        self.files.remove(&self.ring, index);
        self.outbox.hand_over(index);
        Ok(())
    }

    /// A slot's receive ended without a close: hand it over if it is detaching, else release it if
    /// its close was decided.
    fn settle(&mut self, index: usize) -> io::Result<()> {
        if self.outbox.live_id(index).is_some() && self.outbox.has(index, flag::DETACH) {
            return self.advance_detach(index);
        }
        self.try_release(index)
    }

    /// Moves a slot whose close is decided towards release: cancels its operations unless it lingers.
    fn wind_down(&mut self, index: usize) -> io::Result<()> {
        let busy = self.outbox.has(index, flag::SEND_INFLIGHT | flag::RECV_ARMED);
        if busy && !self.outbox.has(index, flag::LINGER | flag::CANCELLING) {
            submit::push_cancel_fd(&mut self.ring, self.outbox.fd(index), &mut self.cqes)?;
            self.inflight += 1;
            self.outbox.set(index, flag::CANCELLING);
        }
        self.try_release(index)
    }

    /// Releases a closed slot once nothing in flight names it: drops its queue and closes its fd.
    fn try_release(&mut self, index: usize) -> io::Result<()> {
        let done = self.outbox.has(index, flag::OPEN)
            && self.outbox.has(index, flag::REPORTED)
            && !self.outbox.has(index, flag::SEND_INFLIGHT | flag::RECV_ARMED | flag::LINGER);
        if done {
            self.files.remove(&self.ring, index);
            drop(self.outbox.release(index));
            if self.accept_paused {
                self.accept_paused = false;
            }
        }
        Ok(())
    }

    /// Re-arms receives that ended while wanted, and the accept; runs after buffers are published.
    fn rearm(&mut self) -> io::Result<()> {
        while let Some(slot) = self.rearm.pop() {
            let index = slot as usize;
            let wanted = self.outbox.has(index, flag::OPEN)
                && (!self.outbox.has(index, flag::REPORTED) || self.outbox.has(index, flag::LINGER))
                && !self.outbox.has(index, flag::RECV_ARMED | flag::CANCELLING | flag::DETACH);
            if wanted {
                self.stats.receive_rearms += 1;
                self.arm_recv(index)?;
            } else {
                self.settle(index)?;
            }
        }
        if !self.accept_armed && !self.accept_paused {
            self.arm_accept()?;
        }
        Ok(())
    }

    fn arm_recv(&mut self, index: usize) -> io::Result<()> {
        let fd = self.outbox.fd(index);
        submit::push_recv(&mut self.ring, fd, index as u32, self.bufs.group(), &mut self.cqes)?;
        self.inflight += 1;
        self.outbox.set(index, flag::RECV_ARMED);
        Ok(())
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        submit::push_accept(&mut self.ring, self.listener.as_raw_fd(), &mut self.cqes)?;
        self.inflight += 1;
        self.accept_armed = true;
        Ok(())
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let counter: *mut u64 = &mut *self.wake_counter;
        submit::push_wake_read(&mut self.ring, self.waker.raw_fd(), counter, &mut self.cqes)?;
        self.inflight += 1;
        Ok(())
    }

    /// Submits pending entries and waits for one completion or the timeout.
    fn enter(&mut self, wait: Option<Duration>) -> io::Result<()> {
        let result = match wait {
            Some(wait) if wait.is_zero() => self.ring.submit(),
            Some(wait) => {
                let ts = Timespec::new().sec(wait.as_secs()).nsec(wait.subsec_nanos());
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Registers and unregisters a small provided-buffer ring on `ring` (for [`super::probe_io_uring`]).
pub(super) fn probe_buffer_ring(ring: &IoUring) -> io::Result<()> {
    let submitter = ring.submitter();
    let bufs = ProvidedBuffers::register(&submitter, 8, 64, BUFFER_GROUP)?;
    submitter.unregister_buf_ring(bufs.group())?;
    drop(bufs); // no operation ever named it
    Ok(())
}

impl Drop for UringDriver {
    /// Cancels every operation, resets every connection, and waits (bounded) for the last completions
    /// so the kernel writes into and reads from no freed memory; if some never come, leaks the buffers,
    /// send storage and queues instead of freeing them.
    fn drop(&mut self) {
        let mut done = std::mem::take(&mut self.cqes);
        if submit::push_cancel_all(&mut self.ring, &mut done).is_ok() {
            self.inflight += 1;
        }
        let _ = self.ring.submit();
        // A zero-copy send whose bytes sit in a socket's send queue is notified only when the socket lets
        // go of them, so reset the sockets now. Cancelled operations hold their own file references, so
        // no operation can meet a reused fd number. The table of registered sockets goes first: it holds
        // a reference on each, which would keep them open past the close.
        self.files.clear(&self.ring);
        self.outbox.close_all_sockets();
        let deadline = Instant::now() + DROP_DRAIN;
        loop {
            for cqe in done.drain(..) {
                if !cqueue::more(cqe.flags()) {
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
            if self.inflight == 0 || Instant::now() >= deadline {
                break;
            }
            let _ = self.enter(Some(Duration::from_millis(50)));
            done.extend(self.ring.completion());
        }
        if self.inflight > 0 {
            self.bufs.leak();
            self.ops.leak();
            std::mem::forget(std::mem::replace(&mut self.wake_counter, Box::new(0)));
            std::mem::forget(std::mem::replace(&mut self.outbox, Outbox::new()));
        }
    }
}
