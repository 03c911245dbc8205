//! The io_uring receive path of the pool (`--io uring`): one multishot receive (`IORING_OP_RECV` with
//! `IORING_RECV_MULTISHOT`) per connected socket into a ring of provided buffers, completions drained
//! once per turn. It spares each delivery the epoll event and the two `read`s (one with the bytes,
//! one returning `EAGAIN`) of the epoll path: the kernel reads a socket when its bytes arrive, in
//! task work run when this thread next leaves a system call (`IORING_SETUP_COOP_TASKRUN`: no
//! interrupt), and posts one completion naming a buffer.
//!
//! Contract with the pool: a receive is named by a 64-bit key (the pool packs a slot and a socket
//! serial into it; bit 63 is ours). [`UringRecv::arm`] starts one; [`UringRecv::dispatch`] hands every
//! completion to the pool in completion order (so per socket in byte order), lending the buffer's bytes
//! for the call and giving the buffer back to the kernel after it (the session copies what it keeps);
//! a receive that ended while its socket may still be wanted (the multishot ended, `ENOBUFS`) is
//! listed in [`UringRecv::take_rearm`] for the pool to re-arm if the socket is still its. A socket the
//! pool drops with a receive armed must be [`UringRecv::cancel`]led (by key; its fd may be closed and
//! its number reused by then). Sockets stay registered in the pool's epoll for writability, and the
//! ring's own fd is registered there too: it is readable when completions wait.
//!
//! Memory: the buffer ring (by default 16,384 buffers of 2 KiB, 32 MiB, mapped and populated at
//! start) and a completion queue of 32,768 entries (512 KiB). A buffer is taken per completion, not per
//! socket, so an idle socket holds none; the ring only runs dry when more completions wait than it has
//! buffers, and then the receives that found it empty end with `ENOBUFS` and are re-armed.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

/// Tag bit of the cancel requests' `user_data` (a receive key never has it).
const CANCEL: u64 = 1 << 63;
const BUFFER_GROUP: u16 = 0;
/// How long dropping the ring waits for cancelled receives before leaking the buffers instead.
const DROP_DRAIN: Duration = Duration::from_secs(2);

/// Sizes of the ring and its buffers.
#[derive(Debug, Clone, Copy)]
pub struct RecvConfig {
    /// Provided buffers (a power of two, at most 32,768).
    pub buffers: u16,
    /// Bytes per buffer: the most one completion carries.
    pub buffer_size: u32,
    /// Submission queue entries (arms and cancels are pushed in bursts; a full queue is submitted).
    pub sq_entries: u32,
    /// Completion queue entries; past it completions overflow into the kernel's list (not lost).
    pub cq_entries: u32,
}

impl Default for RecvConfig {
    fn default() -> Self {
        RecvConfig { buffers: 16_384, buffer_size: 2_048, sq_entries: 4_096, cq_entries: 32_768 }
    }
}

/// What a completion brings the pool.
#[derive(Debug)]
pub enum Received<'a> {
    /// Bytes read, in the socket's order; lent for the call (the buffer goes back to the kernel after).
    Bytes(&'a mut [u8]),
    /// The peer closed its side; the receive has ended.
    Eof,
    /// The receive failed (reset, …) and has ended.
    Failed(io::Error),
}

/// Counters for tests and the docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// Completions that carried bytes.
    pub data: u64,
    /// Receives that ended because the buffer ring was empty.
    pub no_buffers: u64,
    /// Receives listed for re-arming (`ENOBUFS` or a multishot that ended).
    pub rearms: u64,
    /// Times the completion queue had overflowed (the kernel kept the rest aside; none lost).
    pub overflows: u64,
}

/// The ring, its buffers and the receives in flight; see the module docs. Thread: one owner.
pub struct UringRecv {
    // Declared first: closed before the buffers its receives wrote into are unmapped.
    ring: IoUring,
    bufs: ProvidedBuffers,
    /// Completions taken off the queue while a submission was blocked (`EBUSY`); dispatched first.
    backlog: Vec<cqueue::Entry>,
    rearm: Vec<u64>,
    /// Operations whose last completion has not been seen (receives and cancels).
    inflight: usize,
    stats: RecvStats,
}

impl std::fmt::Debug for UringRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringRecv").field("inflight", &self.inflight).field("stats", &self.stats).finish()
    }
}

impl UringRecv {
    /// A ring with `config`'s sizes and its registered buffers. Fails where io_uring is unavailable
    /// (a seccomp profile such as Docker's default, `kernel.io_uring_disabled`, a kernel before 6.0).
    pub fn new(config: &RecvConfig) -> io::Result<UringRecv> {
        if !config.buffers.is_power_of_two() || config.buffers > 32_768 || config.buffer_size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffers: a power of two up to 32768"));
        }
        // COOP_TASKRUN: the receives run when this thread next leaves a system call, without an
        // interrupt; TASKRUN_FLAG says when some wait. (DEFER_TASKRUN measured worse: its work runs only
        // in io_uring_enter, and epoll then needs a registered eventfd to wake up for it.)
        let mut builder = IoUring::builder();
        builder
            .setup_cqsize(config.cq_entries)
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_single_issuer();
        // SINGLE_ISSUER came with Linux 6.0, as did multishot receives: an older kernel fails here.
        let ring = builder.build(config.sq_entries)?;
        let bufs = ProvidedBuffers::register(&ring, config.buffers, config.buffer_size)?;
        Ok(UringRecv {
            ring,
            bufs,
            backlog: Vec::new(),
            rearm: Vec::new(),
            inflight: 0,
            stats: RecvStats::default(),
        })
    }

    /// Whether this process may use the receive path: sets up and drops a small ring with buffers.
    pub fn probe() -> io::Result<()> {
        let config = RecvConfig { buffers: 8, buffer_size: 64, sq_entries: 8, cq_entries: 16 };
        UringRecv::new(&config).map(drop)
    }

    /// The ring's fd, for the pool's epoll (readable when completions wait).
    pub fn raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Counters so far.
    pub fn stats(&self) -> RecvStats {
        self.stats
    }

    /// Whether completions are waiting to be dispatched (so the next wait must not sleep).
    pub fn has_completions(&mut self) -> bool {
        !self.backlog.is_empty()
            || !self.ring.completion().is_empty()
            || self.ring.submission().cq_overflow()
            || self.ring.submission().taskrun()
    }

    /// Starts a multishot receive on `fd` named `key` (bit 63 clear). The fd must stay open until the
    /// receive ends or is cancelled; submitted with the next [`UringRecv::submit`].
    pub fn arm(&mut self, key: u64, fd: RawFd) -> io::Result<()> {
        let entry = opcode::RecvMulti::new(Fd(fd), BUFFER_GROUP).build().user_data(key & !CANCEL);
        // SAFETY: the receive writes only into provided buffers of BUFFER_GROUP, which stay mapped
        // until every operation of the ring has ended (`Drop` drains them, or leaks the mapping).
        unsafe { self.push(&entry)? };
        self.inflight += 1;
        Ok(())
    }

    /// Cancels the receive named `key` (if it is still armed); its last completion, `ECANCELED`, is
    /// not dispatched.
    pub fn cancel(&mut self, key: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(key & !CANCEL).build().user_data(CANCEL);
        // SAFETY: a cancel names no memory.
        unsafe { self.push(&entry)? };
        self.inflight += 1;
        Ok(())
    }

    /// Submits what was pushed since the last call (no system call if nothing was).
    pub fn submit(&mut self) -> io::Result<()> {
        if self.ring.submission().is_empty() && !self.ring.submission().cq_overflow() {
            return Ok(());
        }
        self.enter()
    }

    /// Hands every waiting completion to `on` (its key, what it brought), oldest first, and returns
    /// the buffers to the kernel. An overflowed completion queue is flushed and drained too.
    pub fn dispatch(&mut self, mut on: impl FnMut(u64, Received<'_>)) -> io::Result<()> {
        if self.ring.submission().taskrun() {
            self.enter()?; // receives queued for this thread since it last left the kernel run now
        }
        let backlog = std::mem::take(&mut self.backlog);
        for cqe in &backlog {
            self.complete(cqe, &mut on);
        }
        self.backlog = backlog;
        self.backlog.clear();
        loop {
            let UringRecv { ring, bufs, rearm, inflight, stats, .. } = self;
            for cqe in ring.completion() {
                complete(bufs, rearm, inflight, stats, &cqe, &mut on);
            }
            bufs.publish();
            if !ring.submission().cq_overflow() {
                return Ok(());
            }
            // Completions the kernel kept aside: an enter with GETEVENTS moves them into the queue.
            self.stats.overflows += 1;
            self.enter()?;
        }
    }

    /// Keys of receives that ended while their socket may still want them (re-arm those still open).
    pub fn take_rearm(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.rearm)
    }

    /// Gives back the list `take_rearm` returned, emptied, so its allocation is reused.
    pub fn restore_rearm(&mut self, mut list: Vec<u64>) {
        list.clear();
        if self.rearm.is_empty() {
            self.rearm = list;
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry, on: &mut impl FnMut(u64, Received<'_>)) {
        let UringRecv { bufs, rearm, inflight, stats, .. } = self;
        complete(bufs, rearm, inflight, stats, cqe, on);
        bufs.publish();
    }

    /// Pushes `entry`, submitting first if the queue is full.
    ///
    /// # Safety
    /// Every buffer `entry` names must stay valid until the operation's last completion.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.enter()?;
        }
    }

    /// Submits, running deferred work and flushing overflowed completions; completions that block the
    /// submission (`EBUSY`) are moved to the backlog.
    fn enter(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.backlog.extend(self.ring.completion());
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// One completion: counts it, dispatches what it brought, gives its buffer back (published by the
/// caller) and lists the receive for re-arming if it ended while wanted.
fn complete(
    bufs: &mut ProvidedBuffers,
    rearm: &mut Vec<u64>,
    inflight: &mut usize,
    stats: &mut RecvStats,
    cqe: &cqueue::Entry,
    on: &mut impl FnMut(u64, Received<'_>),
) {
    let (key, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
    let more = cqueue::more(flags);
    if !more {
        *inflight = inflight.saturating_sub(1);
    }
    if key & CANCEL != 0 {
        return;
    }
    let bid = cqueue::buffer_select(flags);
    match result {
        1.. => {
            stats.data += 1;
            if let Some(bytes) = bid.and_then(|b| bufs.get_mut(b, result as usize)) {
                on(key, Received::Bytes(bytes));
            }
            if !more {
                stats.rearms += 1;
                rearm.push(key);
            }
        }
        0 => on(key, Received::Eof),
        _ if -result == libc::ENOBUFS => {
            stats.no_buffers += 1;
            stats.rearms += 1;
            rearm.push(key);
        }
        _ if -result == libc::ECANCELED => {}
        _ => on(key, Received::Failed(io::Error::from_raw_os_error(-result))),
    }
    if let Some(bid) = bid {
        bufs.give_back(bid);
    }
}

impl Drop for UringRecv {
    /// Cancels every receive and waits (bounded) for their last completions, so the kernel writes into
    /// no unmapped memory; if some never come, leaks the buffers instead of unmapping them.
    fn drop(&mut self) {
        let entry = opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(CANCEL);
        // SAFETY: a cancel names no memory.
        if unsafe { self.push(&entry) }.is_ok() {
            self.inflight += 1;
        }
        let deadline = Instant::now() + DROP_DRAIN;
        while self.inflight > 0 && Instant::now() < deadline {
            let ts = Timespec::new().nsec(50_000_000);
            let _ = self.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts));
            for cqe in self.backlog.drain(..).chain(self.ring.completion()) {
                if !cqueue::more(cqe.flags()) {
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
        }
        if self.inflight > 0 {
            self.bufs.leak();
        }
    }
}

/// A registered provided-buffer ring and its buffers. A buffer belongs to the kernel while it is in
/// the ring, to us from the completion naming it until [`ProvidedBuffers::give_back`].
struct ProvidedBuffers {
    entries: Mapping,
    buffers: Mapping,
    count: u16,
    size: u32,
    /// Our copy of the ring's tail, made visible to the kernel by `publish`.
    tail: u16,
}

impl ProvidedBuffers {
    /// Maps `count` buffers of `size` bytes, registers them as BUFFER_GROUP and gives all to the kernel.
    fn register(ring: &IoUring, count: u16, size: u32) -> io::Result<ProvidedBuffers> {
        let entries = Mapping::new(usize::from(count) * std::mem::size_of::<BufRingEntry>())?;
        let buffers = Mapping::new(usize::from(count) * size as usize)?;
        // SAFETY: `entries` is a page-aligned zeroed mapping of `count` entries that stays mapped until
        // this value drops, which `UringRecv::drop` orders after every receive has ended (or never).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.ptr.as_ptr() as u64,
                count,
                BUFFER_GROUP,
                0,
            )?
        };
        let mut bufs = ProvidedBuffers { entries, buffers, count, size, tail: 0 };
        for bid in 0..count {
            bufs.give_back(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed us; `None` for an id or
    /// length the ring never hands out.
    fn get_mut(&mut self, bid: u16, len: usize) -> Option<&mut [u8]> {
        if bid >= self.count || len > self.size as usize {
            return None;
        }
        let offset = usize::from(bid) * self.size as usize;
        // SAFETY: `offset + len` lies inside the buffer mapping. The kernel wrote this buffer before
        // posting the completion we read (the completion-queue tail load acquires it) and does not touch
        // it again until `give_back` puts it back in the ring, which needs `&mut self`, so this borrow
        // ends before that.
        Some(unsafe { std::slice::from_raw_parts_mut(self.buffers.ptr.as_ptr().add(offset), len) })
    }

    /// Puts buffer `bid` back in the ring (seen by the kernel after the next `publish`).
    fn give_back(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
        // SAFETY: `index < count`, inside the entries mapping. The kernel reads only entries between
        // its head and the published tail; `index` is our unpublished tail, and each buffer is in the
        // ring at most once, so the kernel is not reading this entry.
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back so far visible to the kernel (one release store).
    fn publish(&self) {
        // SAFETY: the ring's tail overlays the reserved field of entry 0, inside the mapping and
        // aligned for u16; the kernel loads it with acquire ordering, so this release store orders the
        // entries written by `give_back` before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.ptr.as_ptr().cast::<BufRingEntry>()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Gives the memory up without unmapping it (when receives may still be in flight).
    fn leak(&mut self) {
        self.entries.len = 0;
        self.buffers.len = 0;
    }
}

/// An anonymous private read-write mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous mapping aliases no Rust object; the arguments are constants and a
        // length.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap gave null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly what `new` mapped; no borrow into it outlives its owner.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
#[path = "uring_recv_tests.rs"]
mod tests;
