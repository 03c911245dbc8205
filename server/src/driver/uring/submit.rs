//! Every io_uring submission, and the storage that must outlive each operation. This is where the
//! io_uring backend's `unsafe` gathers: each push states why the memory it names stays valid until the
//! operation's last completion.
//!
//! Operations are tagged in `user_data` with their kind and an index (a connection slot or a send-op
//! slot). The driver counts in-flight operations (`+1` per push, `-1` per completion without
//! `IORING_CQE_F_MORE`) and drains them before freeing any memory named here.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use io_uring::cqueue;
use io_uring::opcode;
use io_uring::squeue;
use io_uring::types::{CancelBuilder, Fd, Fixed};
use io_uring::IoUring;

/// What a completion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    /// The listener's multishot accept.
    Accept,
    /// A connection's multishot receive; the index is the connection slot.
    Recv,
    /// A `SEND`, `SENDMSG` or `SEND_ZC`; the index is the send-op slot.
    Send,
    /// The read of the waker's eventfd.
    Wake,
    /// A cancel request (its own completion carries nothing we need).
    Cancel,
}

const KIND_SHIFT: u32 = 56;

fn user_data(kind: OpKind, index: u32) -> u64 {
    let tag: u64 = match kind {
        OpKind::Accept => 1,
        OpKind::Recv => 2,
        OpKind::Send => 3,
        OpKind::Wake => 4,
        OpKind::Cancel => 5,
    };
    (tag << KIND_SHIFT) | u64::from(index)
}

/// Splits a completion's `user_data` back into kind and index.
pub(super) fn decode(user_data: u64) -> Option<(OpKind, u32)> {
    let index = (user_data & u64::from(u32::MAX)) as u32;
    let kind = match user_data >> KIND_SHIFT {
        1 => OpKind::Accept,
        2 => OpKind::Recv,
        3 => OpKind::Send,
        4 => OpKind::Wake,
        5 => OpKind::Cancel,
        _ => return None,
    };
    Some((kind, index))
}

/// The socket a send names: its fd, or its entry in the ring's table of registered files (see
/// `files`), which spares the kernel an fd lookup and a file reference count per send.
#[derive(Debug, Clone, Copy)]
pub(super) enum SendTarget {
    Fd(RawFd),
    Registered(u32),
}

/// Storage of one send in flight: the msghdr and iovec array a `SENDMSG` names (a `SEND` names only
/// the buffer its first iovec points at), or the `Bytes` a
/// `SEND_ZC` names. Boxed so its address survives growth of the pool.
struct SendOp {
    /// The connection slot the send belongs to.
    slot: u32,
    /// Bytes the send asked the kernel to take.
    len: usize,
    msg: libc::msghdr,
    iovecs: Box<[libc::iovec]>,
    /// `SEND_ZC` only: keeps the payload alive until the notification completion.
    zc_hold: Option<Bytes>,
}

/// A pool of send-op storage, reused once warm (no allocation per send).
pub(super) struct SendOps {
    // Boxed on purpose: an op's msghdr is named by an in-flight SENDMSG and must not move when the
    // vector grows.
    #[allow(clippy::vec_box)]
    ops: Vec<Box<SendOp>>,
    free: Vec<u32>,
    iovecs_per_op: usize,
}

// SAFETY: the raw pointers inside each op point into that op's own iovec box or into `Bytes` the driver
// owns; moving the pool to another thread moves those owners with it.
unsafe impl Send for SendOps {}

impl SendOps {
    pub(super) fn new(iovecs_per_op: usize) -> Self {
        SendOps { ops: Vec::new(), free: Vec::new(), iovecs_per_op }
    }

    /// A free op for connection `slot` (allocates only while the pool grows).
    pub(super) fn alloc(&mut self, slot: u32) -> u32 {
        if let Some(index) = self.free.pop() {
            if let Some(op) = self.ops.get_mut(index as usize) {
                op.slot = slot;
                return index;
            }
        }
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        // SAFETY: an all-zero msghdr is a valid value (null pointers, zero lengths).
        let msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let iovecs = vec![empty; self.iovecs_per_op].into_boxed_slice();
        self.ops.push(Box::new(SendOp { slot, len: 0, msg, iovecs, zc_hold: None }));
        (self.ops.len() - 1) as u32
    }

    /// The iovec array of op `index`, to be filled before [`push_send`].
    pub(super) fn iovecs_mut(&mut self, index: u32) -> &mut [libc::iovec] {
        self.ops.get_mut(index as usize).map_or(&mut [], |op| &mut op.iovecs[..])
    }

    /// The connection slot op `index` was allocated for, and the bytes it asked the kernel to take.
    pub(super) fn target(&self, index: u32) -> Option<(u32, usize)> {
        self.ops.get(index as usize).map(|op| (op.slot, op.len))
    }

    /// Returns op `index` to the pool, dropping any payload it held. Call only after its last completion.
    pub(super) fn free(&mut self, index: u32) {
        if let Some(op) = self.ops.get_mut(index as usize) {
            op.zc_hold = None;
            self.free.push(index);
        }
    }

    /// Gives up the storage without freeing it (see `ProvidedBuffers::leak`).
    pub(super) fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.ops));
    }
}

/// Pushes `entry`, submitting first if the submission queue is full. Completions that block the
/// submission (`EBUSY`: the completion queue overflowed) are moved to `backlog`, which the driver
/// processes at its next turn.
///
/// # Safety
/// Every buffer `entry` names must stay valid until the operation's last completion.
unsafe fn push(
    ring: &mut IoUring,
    entry: &squeue::Entry,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    loop {
        // SAFETY: forwarded from this function's contract.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        match ring.submit() {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => backlog.extend(ring.completion()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Arms the listener's multishot accept; accepted sockets are close-on-exec and blocking (io_uring
/// never blocks on them, and blocking keeps sends from returning `EAGAIN`).
pub(super) fn push_accept(
    ring: &mut IoUring,
    listener: RawFd,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let entry = opcode::AcceptMulti::new(Fd(listener))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(user_data(OpKind::Accept, 0));
    // SAFETY: names no memory; the listener fd is owned by the driver, which drains operations before
    // closing it.
    unsafe { push(ring, &entry, backlog) }
}

/// Arms a multishot receive on connection `slot` into buffer group `group`.
pub(super) fn push_recv(
    ring: &mut IoUring,
    fd: RawFd,
    slot: u32,
    group: u16,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let entry = opcode::RecvMulti::new(Fd(fd), group).build().user_data(user_data(OpKind::Recv, slot));
    // SAFETY: the receive writes only into provided buffers of `group`, which the driver unmaps only
    // after every operation has completed (or never); the fd is closed only after this receive's last
    // completion (the slot's RECV_ARMED bit).
    unsafe { push(ring, &entry, backlog) }
}

/// Submits op `index` over its first `count` iovecs (already filled, `len` bytes): a plain `SEND` of
/// the one buffer when `count` is 1 (no msghdr or iovec array for the kernel to copy in and import),
/// else a `SENDMSG`. Both complete alike: one result, the bytes taken, never `IORING_CQE_F_MORE`.
pub(super) fn push_send(
    ring: &mut IoUring,
    ops: &mut SendOps,
    index: u32,
    target: SendTarget,
    (count, len): (usize, usize),
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let Some(op) = ops.ops.get_mut(index as usize) else { return Err(io::Error::other("no such send op")) };
    op.len = len;
    let entry = match (count, op.iovecs.first()) {
        (1, Some(iov)) => {
            let (ptr, bytes) =
                (iov.iov_base.cast_const().cast::<u8>(), u32::try_from(iov.iov_len).unwrap_or(u32::MAX));
            op.len = bytes as usize;
            match target {
                SendTarget::Fd(fd) => opcode::Send::new(Fd(fd), ptr, bytes),
                SendTarget::Registered(entry) => opcode::Send::new(Fixed(entry), ptr, bytes),
            }
            .flags(libc::MSG_NOSIGNAL)
            .build()
        }
        _ => {
            op.msg.msg_iov = op.iovecs.as_mut_ptr();
            op.msg.msg_iovlen = count.min(op.iovecs.len()) as _;
            let msg: *const libc::msghdr = &op.msg;
            match target {
                SendTarget::Fd(fd) => opcode::SendMsg::new(Fd(fd), msg),
                SendTarget::Registered(entry) => opcode::SendMsg::new(Fixed(entry), msg),
            }
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
        }
    }
    .user_data(user_data(OpKind::Send, index));
    // SAFETY: a `SEND` names the one buffer the first iovec points at; a `SENDMSG` names the msghdr and
    // iovec array in this op's box, which the pool keeps (and does not reuse) until `free` after the
    // send's completion. Either way the bytes sent live in `Bytes` held by the connection's queue, which
    // is neither consumed nor dropped while the slot's SEND_INFLIGHT bit is set (cleared by that same
    // completion), and a `Bytes` never moves its data. The fd is closed, and the table entry emptied,
    // only after that completion.
    unsafe { push(ring, &entry, backlog) }
}

/// Submits op `index` as a `SEND_ZC` of `payload`, which the op holds until the notification.
pub(super) fn push_send_zc(
    ring: &mut IoUring,
    ops: &mut SendOps,
    index: u32,
    target: SendTarget,
    payload: Bytes,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let Some(op) = ops.ops.get_mut(index as usize) else { return Err(io::Error::other("no such send op")) };
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let entry = match target {
        SendTarget::Fd(fd) => opcode::SendZc::new(Fd(fd), payload.as_ptr(), len),
        SendTarget::Registered(entry) => opcode::SendZc::new(Fixed(entry), payload.as_ptr(), len),
    }
    .flags(libc::MSG_NOSIGNAL)
    .build()
    .user_data(user_data(OpKind::Send, index));
    op.len = len as usize;
    op.zc_hold = Some(payload);
    // SAFETY: the payload's memory is kept alive by the clone in `zc_hold` until `free`, which the
    // driver calls only at the op's last completion (the notification, or a result without
    // IORING_CQE_F_MORE); a `Bytes` never moves its data. The fd outlives the send as for `push_send`.
    unsafe { push(ring, &entry, backlog) }
}

/// Arms an 8-byte read of the waker's eventfd into `counter`.
pub(super) fn push_wake_read(
    ring: &mut IoUring,
    eventfd: RawFd,
    counter: *mut u64,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let entry =
        opcode::Read::new(Fd(eventfd), counter.cast(), 8).build().user_data(user_data(OpKind::Wake, 0));
    // SAFETY: `counter` is the driver's boxed u64, freed only after operations are drained (or leaked);
    // the eventfd is kept open by the driver's `Waker`.
    unsafe { push(ring, &entry, backlog) }
}

/// Cancels every operation on `fd` (its receive and any send); each ends with `-ECANCELED` or its
/// own result.
pub(super) fn push_cancel_fd(
    ring: &mut IoUring,
    fd: RawFd,
    backlog: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    let entry = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
        .build()
        .user_data(user_data(OpKind::Cancel, 0));
    // SAFETY: names no memory; matching happens when the kernel issues it, while the fd is still open.
    unsafe { push(ring, &entry, backlog) }
}

/// Cancels every operation of the ring (used when the driver is dropped).
pub(super) fn push_cancel_all(ring: &mut IoUring, backlog: &mut Vec<cqueue::Entry>) -> io::Result<()> {
    let entry =
        opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(user_data(OpKind::Cancel, 0));
    // SAFETY: names no memory.
    unsafe { push(ring, &entry, backlog) }
}

/// Takes ownership of the socket a successful accept completion returned.
pub(super) fn own_accepted(result: i32) -> Option<OwnedFd> {
    // SAFETY: a non-negative accept result is a new fd installed for this process that nothing else
    // knows about; wrapping it makes the driver its sole owner.
    (result >= 0).then(|| unsafe { OwnedFd::from_raw_fd(result) })
}
