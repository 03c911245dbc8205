//! The shard's connection table and send side, shared by both backends.
//!
//! Hot path. A broadcast enters its frame once per shard ([`Outbox::share`]) and calls
//! [`Outbox::send_shared`] once per recipient: O(1) each, a non-atomic count increment, no copy, no
//! allocation once the arenas are warm. [`Outbox::send`] queues bytes for one connection (one table
//! entry for them). Queued bytes live in one per-shard arena of 12-byte queue nodes (singly linked per
//! connection) pointing into a per-shard table of buffers ([`super::queue`]), so an idle connection holds
//! only its 32-byte [`Slot`]: no queue allocation, no read buffer.
//!
//! Lifecycle of a slot: `insert` (accepted or adopted) → live → close decided (`retire`: the `Closed`
//! event is queued and the generation bumped, so the [`ConnId`] is stale at once) → the backend winds
//! down its in-flight operations and lingering → `release` (queue dropped, fd closed, generation bumped
//! again, slot reusable). Bumping at both steps means a late record (a linger deadline, a stale event)
//! that remembers a slot and generation can never match the next connection in that slot.
//!
//! A detached slot ends differently: `detach` (queue sealed, reads go on) → the backend flushes the queue
//! and stops its reads → `hand_over` (`Detached` queued with the still-open fd, both generation bumps at
//! once, slot reusable).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use bytes::Bytes;

use super::queue::{self, List, Queues};
use super::CloseCause;

/// How a connection left this driver: the payload of its last event.
#[derive(Debug)]
pub(super) enum Ending {
    /// Closed; reported as [`super::DriverEvent::Closed`].
    Closed(CloseCause),
    /// Detached; the open socket goes to the handler in [`super::DriverEvent::Detached`].
    Detached(OwnedFd),
}

/// A connection on one shard: a slot in the driver's table plus the slot's generation.
///
/// Invariant: a slot's generation changes whenever its connection's close is decided, so an id kept
/// after its `Closed` event never addresses the connection that reuses the slot; the [`Outbox`] ignores
/// it. Only the driver mints ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The slot index in the shard's connection table (dense, reused after a close).
    pub const fn slot(self) -> u32 {
        self.slot
    }

    /// The slot's generation when this id was minted.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl std::fmt::Debug for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnId({}v{})", self.slot, self.generation)
    }
}

/// Slot state bits. The backends own the meaning of the ones marked with their name.
pub(super) mod flag {
    /// The slot holds a connection (it may be closing).
    pub const OPEN: u16 = 1 << 0;
    /// `Closed` was queued for the user; the id is stale; the slot waits for `release`.
    pub const REPORTED: u16 = 1 << 1;
    /// The slot is in the dirty list.
    pub const DIRTY: u16 = 1 << 2;
    /// The user asked for a close once the queue drains; the queue is sealed.
    pub const CLOSE_AFTER_FLUSH: u16 = 1 << 3;
    /// Closed by `abort`: the backend resets the socket and releases the slot.
    pub const ABORT: u16 = 1 << 4;
    /// FIN sent after a flush; inbound bytes are discarded until the peer's FIN or the deadline.
    pub const LINGER: u16 = 1 << 5;
    /// io_uring: a send (`SENDMSG` or the first half of `SEND_ZC`) is in flight.
    pub const SEND_INFLIGHT: u16 = 1 << 6;
    /// io_uring: a multishot receive is armed.
    pub const RECV_ARMED: u16 = 1 << 7;
    /// io_uring: a cancel of all operations on the fd was submitted.
    pub const CANCELLING: u16 = 1 << 8;
    /// epoll: the last send hit `EAGAIN`; wait for writability before sending again.
    pub const WRITE_BLOCKED: u16 = 1 << 9;
    /// The user asked for the socket back ([`super::Outbox::detach`]); the queue is sealed, reads go on
    /// until the backend has stopped them.
    pub const DETACH: u16 = 1 << 10;
}

/// The hot per-connection record. No heap allocation of its own.
#[derive(Debug)]
pub(super) struct Slot {
    /// Bytes queued and not yet accepted by the kernel.
    queued: u64,
    /// Of `queued`, the bytes queued since the slot was last taken for a flush (saturating): a burst
    /// within one turn, which [`Outbox::backlog`] leaves out.
    fresh: u32,
    /// The outbound queue (nodes in [`Outbox::queues`]).
    list: List,
    generation: u32,
    /// The socket; `None` when the slot is free.
    fd: Option<OwnedFd>,
    flags: u16,
}

const _: () = assert!(size_of::<Slot>() <= 32);

/// A buffer entered once in this shard's queue table ([`Outbox::share`]) to be queued on many of its
/// connections ([`Outbox::send_shared`]), each paying a plain increment of a shard-local count instead
/// of an atomic refcount. Give it back with [`Outbox::unshare`] (dropping it instead only keeps the
/// buffer until the driver is dropped). Contract: use it only with the `Outbox` that made it; it cannot
/// leave the shard's thread.
#[must_use = "give the handle back with Outbox::unshare"]
#[derive(Debug)]
pub struct SharedBytes {
    frame: Option<u32>,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// The send side of a shard's driver (and its connection table). See the module docs for costs.
///
/// Every method taking a [`ConnId`] ignores a stale id (returning `false` or 0): a connection may close
/// between the moment the caller learned its id and the call, and that is not an error.
pub struct Outbox {
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    queues: Queues,
    dirty: Vec<u32>,
    spare_dirty: Vec<u32>,
    /// Last events to deliver (`Closed` or `Detached`), oldest first.
    ended: VecDeque<(ConnId, Ending)>,
    /// (slot, generation at linger start, deadline); deadlines are increasing.
    lingering: VecDeque<(u32, u32, Instant)>,
    live: usize,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("live", &self.live)
            .field("slots", &self.slots.len())
            .field("dirty", &self.dirty.len())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Queues `bytes` at the end of `conn`'s outbound queue; it goes out at the next flush. Returns
    /// `false` (and drops `bytes`) if `conn` is stale or after `close_after_flush` or `detach`. Empty `bytes` are
    /// accepted and ignored.
    ///
    /// Hot path: O(1), no allocation once warm, one refcount already paid by the caller's clone.
    pub fn send(&mut self, conn: ConnId, bytes: Bytes) -> bool {
        let Some(index) = self.writable_index(conn) else { return false };
        if bytes.is_empty() {
            return true;
        }
        let Some(frame) = self.queues.add(bytes) else { return false };
        self.push(index, frame);
        true
    }

    /// Enters `bytes` in this shard's queue table once, to queue them on many connections with
    /// [`Outbox::send_shared`]. Cost: one table entry (no allocation once warm); the `Bytes`' own
    /// refcount is not touched again until the last connection has sent them.
    pub fn share(&mut self, bytes: Bytes) -> SharedBytes {
        let frame = if bytes.is_empty() { None } else { self.queues.add(bytes) };
        if let Some(frame) = frame {
            self.queues.hold(frame);
        }
        SharedBytes { frame, _not_send: std::marker::PhantomData }
    }

    /// Queues the shared bytes at the end of `conn`'s outbound queue, as [`Outbox::send`] does.
    ///
    /// Hot path: O(1), a non-atomic count increment, no allocation once warm.
    pub fn send_shared(&mut self, conn: ConnId, shared: &SharedBytes) -> bool {
        let Some(index) = self.writable_index(conn) else { return false };
        if let Some(frame) = shared.frame {
            self.push(index, frame);
        }
        true
    }

    /// Gives back a handle from [`Outbox::share`]; the bytes go once no queue holds them.
    pub fn unshare(&mut self, shared: SharedBytes) {
        if let Some(frame) = shared.frame {
            self.queues.release(frame);
        }
    }

    /// Closes `conn` gracefully: bytes already queued are sent, then FIN; later `send`s are refused and
    /// inbound bytes are discarded. `Closed { cause: Flushed }` follows once the queue has drained.
    /// Returns `false` if `conn` is stale.
    pub fn close_after_flush(&mut self, conn: ConnId) -> bool {
        let Some(index) = self.live_index(conn) else { return false };
        self.clear(index, flag::DETACH); // a close decided during a detach wins
        self.set(index, flag::CLOSE_AFTER_FLUSH);
        self.mark_dirty(index);
        true
    }

    /// Closes `conn` now: queued bytes are dropped and the socket is reset (RST), which also drops what
    /// the kernel still buffers. `conn` is stale on return; `Closed { cause: Aborted }` is reported by
    /// the next turn. Returns `false` if `conn` was already stale.
    pub fn abort(&mut self, conn: ConnId) -> bool {
        let Some(index) = self.live_index(conn) else { return false };
        self.retire(index, CloseCause::Aborted);
        self.set(index, flag::ABORT);
        self.mark_dirty(index);
        true
    }

    /// Asks for `conn`'s socket back, still open, to hand it to another driver ([`super::Driver::adopt`]).
    /// Bytes already queued are sent first; later `send`s are refused. Reading stops at the next flush,
    /// but bytes that were already on their way to the handler still arrive as `Data` events; then
    /// [`super::DriverEvent::Detached`] gives the socket to the handler and `conn` is stale. Bytes the
    /// peer sends later stay in the socket for its next owner. If the connection ends first (peer close,
    /// error, `abort`, `close_after_flush`), `Closed` is reported instead.
    ///
    /// Returns `false` (doing nothing) if `conn` is stale, closing, or already detaching.
    pub fn detach(&mut self, conn: ConnId) -> bool {
        let Some(index) = self.live_index(conn) else { return false };
        if self.has(index, flag::CLOSE_AFTER_FLUSH | flag::DETACH) {
            return false;
        }
        self.set(index, flag::DETACH);
        self.mark_dirty(index);
        true
    }

    /// Bytes queued on `conn` that the kernel has not accepted yet (0 if stale). The slow-consumer
    /// policy of the layer above reads this after queueing.
    pub fn queued_bytes(&self, conn: ConnId) -> u64 {
        self.live_index(conn).and_then(|index| self.slots.get(index)).map_or(0, |slot| slot.queued)
    }

    /// Bytes queued on `conn` before this turn's flush that the kernel has not accepted yet (0 if
    /// stale): [`Outbox::queued_bytes`] minus what was queued since the connection was last flushed. A
    /// burst queued within one turn is not a slow reader; this is what backpressure policies compare.
    pub fn backlog(&self, conn: ConnId) -> u64 {
        self.live_index(conn)
            .and_then(|index| self.slots.get(index))
            .map_or(0, |slot| slot.queued.saturating_sub(u64::from(slot.fresh)))
    }

    /// Whether `conn` is live (accepted and no close decided).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.live_index(conn).is_some()
    }

    /// Live connections on this shard.
    pub fn live_connections(&self) -> usize {
        self.live
    }

    // ----- crate-internal: used by the backends -----

    pub(super) fn new() -> Self {
        Outbox {
            slots: Vec::new(),
            free_slots: Vec::new(),
            queues: Queues::default(),
            dirty: Vec::new(),
            spare_dirty: Vec::new(),
            ended: VecDeque::new(),
            lingering: VecDeque::new(),
            live: 0,
        }
    }

    /// Takes ownership of an accepted (or adopted) socket and mints its id.
    pub(super) fn insert(&mut self, fd: OwnedFd) -> ConnId {
        self.live += 1;
        let fresh =
            |generation| Slot { queued: 0, fresh: 0, list: List::EMPTY, generation, fd: None, flags: 0 };
        let index = match self.free_slots.pop() {
            Some(index) => index,
            None => {
                self.slots.push(fresh(0));
                (self.slots.len() - 1) as u32
            }
        };
        let mut generation = 0;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.fd = Some(fd);
            slot.flags = flag::OPEN;
            generation = slot.generation;
        }
        ConnId { slot: index, generation }
    }

    /// The id of a live slot (open, close not decided).
    pub(super) fn live_id(&self, index: usize) -> Option<ConnId> {
        let slot = self.slots.get(index)?;
        (slot.flags & (flag::OPEN | flag::REPORTED) == flag::OPEN)
            .then_some(ConnId { slot: index as u32, generation: slot.generation })
    }

    /// The id of a slot whose inbound bytes the user still wants.
    pub(super) fn reader_id(&self, index: usize) -> Option<ConnId> {
        self.live_id(index).filter(|_| !self.has(index, flag::CLOSE_AFTER_FLUSH))
    }

    pub(super) fn fd(&self, index: usize) -> RawFd {
        self.slots.get(index).and_then(|slot| slot.fd.as_ref()).map_or(-1, AsRawFd::as_raw_fd)
    }

    pub(super) fn has(&self, index: usize, bits: u16) -> bool {
        self.slots.get(index).is_some_and(|slot| slot.flags & bits != 0)
    }

    pub(super) fn set(&mut self, index: usize, bits: u16) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.flags |= bits;
        }
    }

    pub(super) fn clear(&mut self, index: usize, bits: u16) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.flags &= !bits;
        }
    }

    /// Decides the close of a live slot: queues `Closed { cause }` and makes its id stale. No-op if the
    /// close was already decided.
    pub(super) fn retire(&mut self, index: usize, cause: CloseCause) {
        let Some(conn) = self.live_id(index) else { return };
        self.ended.push_back((conn, Ending::Closed(cause)));
        self.live -= 1;
        if let Some(slot) = self.slots.get_mut(index) {
            slot.generation = slot.generation.wrapping_add(1);
            slot.flags |= flag::REPORTED;
        }
    }

    /// The next `Closed` or `Detached` event, oldest first (tests look at the queue directly).
    #[cfg(test)]
    pub(super) fn next_ended(&mut self) -> Option<(ConnId, Ending)> {
        self.ended.pop_front()
    }

    /// Hands every queued `Closed` and `Detached` event to `handler`, oldest first, counting them in
    /// `stats`; returns whether there were any. Shared by both backends.
    pub(super) fn deliver_ended<H>(&mut self, stats: &mut super::DriverStats, handler: &mut H) -> bool
    where
        H: FnMut(super::DriverEvent<'_>, &mut Outbox),
    {
        let mut any = false;
        while let Some((conn, ending)) = self.ended.pop_front() {
            any = true;
            let event = match ending {
                Ending::Closed(cause) => {
                    stats.closed += 1;
                    super::DriverEvent::Closed { conn, cause }
                }
                Ending::Detached(fd) => {
                    stats.detached += 1;
                    super::DriverEvent::Detached { conn, fd }
                }
            };
            handler(event, self);
        }
        any
    }

    /// Ends a detaching slot whose backend operations are over: queues `Detached` with its socket (not
    /// closed) and makes the slot reusable. The queue must be empty (a detach seals it and the backend
    /// flushes it first). No-op unless the slot is live.
    pub(super) fn hand_over(&mut self, index: usize) {
        let Some(conn) = self.live_id(index) else { return };
        self.drop_queue(index);
        let Some(slot) = self.slots.get_mut(index) else { return };
        let Some(fd) = slot.fd.take() else { return };
        // Both bumps at once: the retire's (the id is stale) and the release's (the slot is free).
        slot.generation = slot.generation.wrapping_add(2);
        slot.flags = 0;
        self.free_slots.push(index as u32);
        self.live -= 1;
        self.ended.push_back((conn, Ending::Detached(fd)));
    }

    /// Frees a slot whose close was decided and whose backend operations are over: drops the queue,
    /// returns the fd for the backend to close (dropping it closes), makes the slot reusable.
    pub(super) fn release(&mut self, index: usize) -> Option<OwnedFd> {
        if self.live_id(index).is_some() {
            self.live -= 1; // released without a decided close: only when the driver shuts down
        }
        self.drop_queue(index);
        let slot = self.slots.get_mut(index)?;
        if slot.flags & flag::OPEN == 0 {
            return None;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.flags = 0;
        self.free_slots.push(index as u32);
        slot.fd.take()
    }

    pub(super) fn mark_dirty(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            if slot.flags & (flag::DIRTY | flag::OPEN) == flag::OPEN {
                slot.flags |= flag::DIRTY;
                self.dirty.push(index as u32);
            }
        }
    }

    /// Takes the first `max` slots of the dirty list (flags still set: the backend clears `DIRTY` per
    /// slot as it goes, so a slot re-dirtied meanwhile lands in the list again); the rest stay first in
    /// line. Give the taken list back with [`Outbox::restore_dirty`]. What the taken slots queued before
    /// is no longer fresh: it counts in [`Outbox::backlog`] from now on.
    pub(super) fn take_dirty(&mut self, max: usize) -> Vec<u32> {
        let mut taken = std::mem::take(&mut self.spare_dirty);
        taken.clear();
        if self.dirty.len() <= max {
            std::mem::swap(&mut taken, &mut self.dirty);
        } else {
            // Moves the tail down: a few KiB per batch at 10,000 dirty connections, no allocation.
            taken.extend(self.dirty.drain(..max));
        }
        for &index in &taken {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                slot.fresh = 0;
            }
        }
        taken
    }

    /// Whether a connection waits for a flush (see [`super::Driver::flush`]'s batches).
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub(super) fn restore_dirty(&mut self, mut list: Vec<u32>) {
        list.clear();
        self.spare_dirty = list;
    }

    pub(super) fn queue_is_empty(&self, index: usize) -> bool {
        self.slots.get(index).is_none_or(|slot| slot.list.head == queue::NIL)
    }

    /// Length of the oldest queued buffer's unsent bytes.
    pub(super) fn head_len(&self, index: usize) -> Option<usize> {
        self.queues.head_len(self.slots.get(index)?.list)
    }

    /// The oldest queued buffer's unsent bytes, shared (one refcount; for a zero-copy send).
    pub(super) fn head_bytes(&self, index: usize) -> Option<Bytes> {
        self.queues.head_bytes(self.slots.get(index)?.list)
    }

    /// Fills `out` with iovecs over the slot's queue from the head, stopping at `out.len()` entries or
    /// before the first buffer of `stop_at_len` bytes or more (those go out with zero copy). Returns
    /// (entries used, bytes covered). The iovecs point into `Bytes` owned by the queue table and stay
    /// valid until [`Outbox::consume`] or [`Outbox::release`] drops them.
    pub(super) fn fill_iovecs(
        &self,
        index: usize,
        out: &mut [libc::iovec],
        stop_at_len: usize,
    ) -> (usize, usize) {
        self.slots.get(index).map_or((0, 0), |slot| self.queues.fill_iovecs(slot.list, out, stop_at_len))
    }

    /// Removes the first `sent` bytes of the slot's queue (the kernel accepted them), releasing each
    /// fully sent buffer.
    pub(super) fn consume(&mut self, index: usize, sent: usize) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        let removed = self.queues.consume(&mut slot.list, sent);
        slot.queued = slot.queued.saturating_sub(removed as u64);
    }

    /// Starts the lingering close of a retired slot (FIN sent): it stays open until `deadline`.
    pub(super) fn start_linger(&mut self, index: usize, deadline: Instant) {
        self.set(index, flag::LINGER);
        if let Some(slot) = self.slots.get(index) {
            self.lingering.push_back((index as u32, slot.generation, deadline));
        }
    }

    /// The earliest deadline among lingering slots, forgetting entries of slots released since.
    pub(super) fn next_linger_deadline(&mut self) -> Option<Instant> {
        while let Some(&(index, generation, deadline)) = self.lingering.front() {
            let index = index as usize;
            if self.slots.get(index).is_some_and(|s| s.generation == generation)
                && self.has(index, flag::LINGER)
            {
                return Some(deadline);
            }
            self.lingering.pop_front();
        }
        None
    }

    /// A lingering slot whose deadline has passed, if any (call until `None`). Clears its `LINGER` bit.
    pub(super) fn pop_expired_linger(&mut self, now: Instant) -> Option<usize> {
        let deadline = self.next_linger_deadline()?;
        if deadline > now {
            return None;
        }
        let (index, _, _) = self.lingering.pop_front()?;
        self.clear(index as usize, flag::LINGER);
        Some(index as usize)
    }

    /// Teardown only: resets and closes every socket, leaving the queues in place (a send still in
    /// flight may name them). The table is unusable afterwards.
    pub(super) fn close_all_sockets(&mut self) {
        for slot in &mut self.slots {
            if let Some(fd) = slot.fd.take() {
                let _ = super::sys::set_linger_zero(fd.as_raw_fd());
            }
        }
    }

    fn live_index(&self, conn: ConnId) -> Option<usize> {
        let index = conn.slot as usize;
        self.live_id(index).filter(|id| *id == conn).map(|_| index)
    }

    /// The slot index of a live `conn` whose queue is not sealed.
    fn writable_index(&self, conn: ConnId) -> Option<usize> {
        self.live_index(conn).filter(|&index| !self.has(index, flag::CLOSE_AFTER_FLUSH | flag::DETACH))
    }

    /// Appends a table entry to a live slot's queue and marks the slot dirty.
    fn push(&mut self, index: usize, frame: u32) {
        let len = self.queues.len(frame);
        let Some(slot) = self.slots.get_mut(index) else { return };
        self.queues.push(&mut slot.list, frame);
        slot.queued += len as u64;
        slot.fresh = slot.fresh.saturating_add(len as u32);
        self.mark_dirty(index);
    }

    fn drop_queue(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        self.queues.clear(&mut slot.list);
        slot.queued = 0;
        slot.fresh = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(outbox: &mut Outbox) -> ConnId {
        let file = std::fs::File::open("/dev/null").unwrap();
        outbox.insert(OwnedFd::from(file))
    }

    fn queued_chunks(outbox: &Outbox, id: ConnId) -> Vec<Vec<u8>> {
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; 16];
        let (count, _) = outbox.fill_iovecs(id.slot as usize, &mut iovs, usize::MAX);
        iovs[..count]
            .iter()
            // SAFETY: the iovecs point into `Bytes` still owned by the outbox, which is borrowed here.
            .map(|iov| unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) }.to_vec())
            .collect()
    }

    #[test]
    fn partial_consume_keeps_order_and_accounting() {
        let mut outbox = Outbox::new();
        let id = conn(&mut outbox);
        for part in ["hello ", "big ", "world"] {
            assert!(outbox.send(id, Bytes::from_static(part.as_bytes())));
        }
        assert_eq!(outbox.queued_bytes(id), 15);
        outbox.consume(id.slot as usize, 8);
        assert_eq!(outbox.queued_bytes(id), 7);
        assert_eq!(queued_chunks(&outbox, id), vec![b"g ".to_vec(), b"world".to_vec()]);
        outbox.consume(id.slot as usize, 7);
        assert_eq!(outbox.queued_bytes(id), 0);
        assert!(outbox.queue_is_empty(id.slot as usize));
    }

    #[test]
    fn stale_ids_are_ignored_after_abort_and_reuse() {
        let mut outbox = Outbox::new();
        let old = conn(&mut outbox);
        assert!(outbox.send(old, Bytes::from_static(b"x")));
        assert!(outbox.abort(old));
        assert!(!outbox.is_open(old));
        assert!(!outbox.send(old, Bytes::from_static(b"y")));
        assert!(matches!(outbox.next_ended(), Some((id, Ending::Closed(CloseCause::Aborted))) if id == old));
        assert!(outbox.release(old.slot as usize).is_some());
        let new = conn(&mut outbox);
        assert_eq!(new.slot, old.slot, "slot reused");
        assert_ne!(new, old);
        assert!(!outbox.send(old, Bytes::from_static(b"z")));
        assert_eq!(outbox.queued_bytes(new), 0, "the aborted queue did not leak into the new connection");
        assert_eq!(outbox.live_connections(), 1);
    }

    #[test]
    fn backlog_leaves_out_what_was_queued_since_the_last_flush() {
        let mut outbox = Outbox::new();
        let id = conn(&mut outbox);
        outbox.send(id, Bytes::from_static(b"12345"));
        assert_eq!((outbox.queued_bytes(id), outbox.backlog(id)), (5, 0), "a burst within a turn");
        let dirty = outbox.take_dirty(usize::MAX);
        outbox.restore_dirty(dirty);
        outbox.send(id, Bytes::from_static(b"678"));
        assert_eq!((outbox.queued_bytes(id), outbox.backlog(id)), (8, 5), "unsent after a flush: backlog");
        outbox.consume(id.slot as usize, 5);
        assert_eq!(outbox.backlog(id), 0);
    }

    #[test]
    fn dirty_list_holds_each_connection_once() {
        let mut outbox = Outbox::new();
        let (a, b) = (conn(&mut outbox), conn(&mut outbox));
        for _ in 0..3 {
            outbox.send(a, Bytes::from_static(b"1"));
            outbox.send(b, Bytes::from_static(b"2"));
        }
        let dirty = outbox.take_dirty(usize::MAX);
        assert_eq!(dirty, vec![a.slot, b.slot]);
        outbox.restore_dirty(dirty);
        assert!(outbox.take_dirty(usize::MAX).is_empty(), "flushed slots leave the list");
    }

    #[test]
    fn a_batch_takes_the_oldest_dirty_connections_and_the_rest_stay_first_in_line() {
        let mut outbox = Outbox::new();
        let ids: Vec<ConnId> = (0..5).map(|_| conn(&mut outbox)).collect();
        for &id in &ids {
            outbox.send(id, Bytes::from_static(b"123"));
        }
        let first = outbox.take_dirty(2);
        assert_eq!(first, vec![ids[0].slot, ids[1].slot]);
        assert!(outbox.has_dirty(), "three connections still wait");
        for &slot in &first {
            outbox.clear(slot as usize, flag::DIRTY);
        }
        outbox.restore_dirty(first);
        // Queued between two batches: the connections flushed already are dirty again, after the rest.
        for &id in &ids {
            outbox.send(id, Bytes::from_static(b"45"));
        }
        assert_eq!(outbox.backlog(ids[0]), 3, "flushed, not taken by the kernel yet: backlog");
        assert_eq!(outbox.backlog(ids[4]), 0, "not flushed yet: all of it is fresh");
        let rest = outbox.take_dirty(usize::MAX);
        let order: Vec<u32> = [2, 3, 4, 0, 1].iter().map(|&i| ids[i].slot).collect();
        assert_eq!(rest, order);
        assert!(!outbox.has_dirty());
        outbox.restore_dirty(rest);
    }

    #[test]
    fn broadcast_reuses_warm_nodes_without_growing() {
        let mut outbox = Outbox::new();
        let ids: Vec<ConnId> = (0..100).map(|_| conn(&mut outbox)).collect();
        let message = Bytes::from(vec![7u8; 100]);
        for round in 0..3 {
            for &id in &ids {
                outbox.send(id, message.clone());
            }
            for &id in &ids {
                outbox.consume(id.slot as usize, 100);
            }
            if round == 0 {
                assert_eq!(outbox.queues.node_capacity(), 100);
            }
        }
        assert_eq!(outbox.queues.node_capacity(), 100, "warm arena: no new nodes for later broadcasts");
        assert!(message.is_unique(), "every queued clone was released");
    }

    #[test]
    fn linger_deadlines_expire_in_order_and_forget_released_slots() {
        let mut outbox = Outbox::new();
        let (a, b) = (conn(&mut outbox), conn(&mut outbox));
        let t0 = Instant::now();
        for (id, after_ms) in [(a, 10), (b, 20)] {
            outbox.retire(id.slot as usize, CloseCause::Flushed);
            outbox.start_linger(id.slot as usize, t0 + std::time::Duration::from_millis(after_ms));
        }
        assert_eq!(outbox.pop_expired_linger(t0), None, "nothing expired yet");
        // `a` ends by itself (peer FIN) and its slot is reused before its deadline passes.
        drop(outbox.release(a.slot as usize));
        let reused = conn(&mut outbox);
        assert_eq!(reused.slot, a.slot);
        let deadline = outbox.next_linger_deadline();
        assert_eq!(deadline, Some(t0 + std::time::Duration::from_millis(20)), "a's entry was forgotten");
        let late = t0 + std::time::Duration::from_secs(1);
        assert_eq!(outbox.pop_expired_linger(late), Some(b.slot as usize));
        assert_eq!(outbox.pop_expired_linger(late), None);
        assert!(outbox.is_open(reused), "the new connection in a's slot is not touched by a's deadline");
    }

    #[test]
    fn detach_seals_the_queue_and_hands_over_the_open_socket() {
        let mut outbox = Outbox::new();
        let id = conn(&mut outbox);
        assert!(outbox.send(id, Bytes::from_static(b"before")));
        assert!(outbox.detach(id));
        assert!(!outbox.detach(id), "already detaching");
        assert!(!outbox.send(id, Bytes::from_static(b"after")), "the queue is sealed");
        assert!(outbox.reader_id(id.slot as usize).is_some(), "reads go on until the backend stops them");
        outbox.consume(id.slot as usize, 6);
        outbox.hand_over(id.slot as usize);
        assert!(!outbox.is_open(id));
        assert_eq!(outbox.live_connections(), 0);
        let Some((ended, Ending::Detached(fd))) = outbox.next_ended() else { panic!("no Detached event") };
        assert_eq!(ended, id);
        let new = outbox.insert(fd);
        assert_eq!(new.slot, id.slot, "slot reused");
        assert_ne!(new, id, "the old id never addresses the slot's next connection");
    }

    #[test]
    fn close_after_flush_seals_the_queue() {
        let mut outbox = Outbox::new();
        let id = conn(&mut outbox);
        assert!(outbox.send(id, Bytes::from_static(b"last")));
        assert!(outbox.close_after_flush(id));
        assert!(!outbox.send(id, Bytes::from_static(b"late")));
        assert_eq!(outbox.queued_bytes(id), 4);
        assert!(outbox.reader_id(id.slot as usize).is_none());
    }
}
