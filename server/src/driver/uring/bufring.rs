//! The provided-buffer ring (`IORING_REGISTER_PBUF_RING`) that multishot receives read into.
//!
//! One pool of `count` buffers of `size` bytes per shard, shared by every connection: the kernel picks
//! a buffer only when bytes arrive, so an idle connection holds none. Ownership of a buffer moves
//! kernel → driver with a receive completion (the buffer id is in the CQE flags) and driver → kernel
//! when [`ProvidedBuffers::give_back`] re-adds it to the ring (visible to the kernel after
//! [`ProvidedBuffers::publish`]). Between the two, the bytes are lent to the `turn` handler.
//!
//! Both the ring of entries and the buffers are anonymous mappings addressed only through raw
//! pointers, since the kernel writes into them behind Rust's back.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

/// A registered provided-buffer ring and its buffers.
pub(super) struct ProvidedBuffers {
    entries: Mapping,
    buffers: Mapping,
    count: u16,
    size: u32,
    /// Our copy of the ring tail; published to the kernel by `publish`.
    tail: u16,
    group: u16,
}

// SAFETY: the mappings are owned by this value alone; moving it to another thread moves that ownership
// (the kernel side is tied to the io_uring instance, not to a thread).
unsafe impl Send for ProvidedBuffers {}

impl ProvidedBuffers {
    /// Maps `count` buffers of `size` bytes, registers them as buffer group `group` with the ring, and
    /// hands all of them to the kernel. `count` must be a power of two (checked by the config).
    ///
    /// Contract for the owner: no receive using `group` may still be in flight when this value is
    /// dropped (the driver cancels and drains its operations first, or leaks this value).
    pub(super) fn register(submitter: &Submitter<'_>, count: u16, size: u32, group: u16) -> io::Result<Self> {
        let entries = Mapping::new(usize::from(count) * size_of::<BufRingEntry>())?;
        let buffers = Mapping::new(usize::from(count) * size as usize)?;
        // SAFETY: `entries` is a page-aligned, zeroed mapping of `count` ring entries; it stays mapped
        // until this value drops, which the owner orders after every operation of the ring has ended
        // (see the contract above); the kernel pins its pages on registration.
        unsafe { submitter.register_buf_ring_with_flags(entries.ptr.as_ptr() as u64, count, group, 0)? };
        let mut ring = ProvidedBuffers { entries, buffers, count, size, tail: 0, group };
        for bid in 0..count {
            ring.give_back(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The buffer group id to name in receive submissions.
    pub(super) fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `bid`, which a receive completion just handed to us.
    ///
    /// The caller must own the buffer (completion seen, not given back yet). Returns `None` for an id
    /// or length the ring never handed out.
    pub(super) fn get(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.size as usize {
            return None;
        }
        let offset = usize::from(bid) * self.size as usize;
        // SAFETY: `offset + len` lies inside the buffer mapping (bid < count, len <= size). The kernel
        // finished writing this buffer before posting the completion we read (the CQ tail load acquires
        // it), and it will not touch it again until `give_back` returns it, which needs `&mut self`,
        // so the shared borrow cannot overlap a kernel write.
        Some(unsafe { std::slice::from_raw_parts(self.buffers.ptr.as_ptr().add(offset), len) })
    }

    /// Returns buffer `bid` to the kernel (effective at the next `publish`).
    pub(super) fn give_back(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
        // SAFETY: `index < count`, so the entry lies inside the entries mapping. The kernel reads entries
        // only between its head and the published tail; `index` is at or past our unpublished tail and at
        // most `count` ahead of the head (each buffer is in the ring at most once), so the kernel is not
        // reading this entry.
        let entry = unsafe { &mut *self.entries.ptr.as_ptr().cast::<BufRingEntry>().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every buffer given back so far visible to the kernel (one release store).
    pub(super) fn publish(&self) {
        // SAFETY: the tail field of a buffer ring overlays the `resv` field of entry 0, inside the mapping,
        // aligned for u16; the kernel reads it with acquire ordering, so this release store orders the
        // entry writes of `give_back` before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.ptr.as_ptr().cast::<BufRingEntry>()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Gives up the memory without unmapping it: for a driver that could not confirm every receive has
    /// ended, a leak is the only safe end.
    pub(super) fn leak(&mut self) {
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
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh anonymous mapping aliases no Rust object; arguments are constants and a length.
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
        if self.len == 0 {
            return; // leaked
        }
        // SAFETY: unmaps exactly the region `new` mapped; no reference into it outlives `self` (slices
        // from `get` borrow the owning `ProvidedBuffers`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
