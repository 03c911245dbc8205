//! The ring's table of registered sockets, so that sends name a connection by table index instead of
//! by fd.
//!
//! Why: a `SENDMSG` on a plain fd makes the kernel look the fd up and take and drop a reference on its
//! file for every send (`fget`/`fput`, ≈ 5% of the server's CPU in scenario 4's profile, where every
//! delivery costs about a quarter of a send). A registered file is read from the ring's own table with
//! no reference counting.
//!
//! Contract: connection slot `i` uses table entry `i` (slots below the table's capacity only; others
//! send by fd). The entry is set when the slot gets its socket and cleared before the socket leaves
//! the slot (release, hand-over), because the table holds its own reference on the file: a socket
//! still in the table would stay open after its fd is closed. Only sends use the table; the receive,
//! cancels and socket options use the fd, which names the same file.

use std::os::fd::RawFd;

use io_uring::IoUring;

/// Table entries registered per ring at most (each costs the kernel 8 bytes plus a bit).
const MAX_ENTRIES: u32 = 32_768;

/// Which table entries hold a socket.
#[derive(Debug, Default)]
pub(super) struct RegisteredFiles {
    /// One per table entry: `true` while it holds the socket of the slot with the same index.
    set: Vec<bool>,
}

impl RegisteredFiles {
    /// Registers an empty table sized to the process's open-file limit (the kernel refuses more), at
    /// most [`MAX_ENTRIES`]. On a kernel without sparse tables this is an empty table: every send uses
    /// its fd, as before.
    pub(super) fn register(ring: &IoUring) -> Self {
        let capacity = open_file_limit().min(MAX_ENTRIES);
        if capacity == 0 || ring.submitter().register_files_sparse(capacity).is_err() {
            return RegisteredFiles::default();
        }
        RegisteredFiles { set: vec![false; capacity as usize] }
    }

    /// Puts slot `index`'s socket into the table (no-op past its capacity, or if the kernel refuses:
    /// that slot then sends by fd).
    pub(super) fn insert(&mut self, ring: &IoUring, index: usize, fd: RawFd) {
        let Some(entry) = self.set.get_mut(index) else { return };
        let Ok(offset) = u32::try_from(index) else { return };
        *entry = matches!(ring.submitter().register_files_update(offset, &[fd]), Ok(1));
    }

    /// Takes slot `index`'s socket out of the table; call before its fd is closed or handed over.
    pub(super) fn remove(&mut self, ring: &IoUring, index: usize) {
        let Some(entry) = self.set.get_mut(index) else { return };
        if !*entry {
            return;
        }
        *entry = false;
        let Ok(offset) = u32::try_from(index) else { return };
        // -1 empties the entry (operations already submitted keep their own reference). If the kernel
        // refused, the socket would stay open until the ring closes: a leak, never a wrong send.
        let _ = ring.submitter().register_files_update(offset, &[-1]);
    }

    /// Whether slot `index` may send through its table entry.
    pub(super) fn is_registered(&self, index: usize) -> bool {
        self.set.get(index).copied().unwrap_or(false)
    }

    /// Empties the whole table (the driver is shutting down and is about to reset every socket).
    pub(super) fn clear(&mut self, ring: &IoUring) {
        if self.set.iter().any(|&e| e) {
            let _ = ring.submitter().unregister_files();
        }
        self.set.iter_mut().for_each(|e| *e = false);
    }
}

/// The soft `RLIMIT_NOFILE`, clamped to `u32`.
fn open_file_limit() -> u32 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer, which points at a live local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return 0;
    }
    u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX)
}
