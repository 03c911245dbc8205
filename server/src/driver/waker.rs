//! Cross-thread wake-up of a shard's `turn`, over one eventfd per driver.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::sys;

/// Wakes one driver's [`super::Driver::turn`] from any thread, which then reports
/// [`super::DriverEvent::Woken`].
///
/// Contract: push the work (e.g. onto a lock-free queue) *before* calling [`Waker::wake`]; the handler
/// that sees `Woken` then sees the work. Wakes coalesce: while one is pending, further calls cost one
/// atomic swap and no syscall. Cloning shares the eventfd; it stays open until the driver and every
/// clone are dropped, so waking a driver that is gone is harmless.
#[derive(Clone)]
pub struct Waker {
    inner: Arc<Inner>,
}

struct Inner {
    eventfd: OwnedFd,
    /// Set by `wake`, cleared by the driver just before it reports `Woken`.
    pending: AtomicBool,
}

impl Waker {
    pub(super) fn new() -> io::Result<Self> {
        Ok(Waker { inner: Arc::new(Inner { eventfd: sys::eventfd()?, pending: AtomicBool::new(false) }) })
    }

    /// Makes the driver's current or next `turn` return and report `Woken`. Callable from any thread;
    /// never blocks. Fails only if the eventfd write fails, which does not happen on a healthy system.
    pub fn wake(&self) -> io::Result<()> {
        if self.inner.pending.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        sys::eventfd_signal(&self.inner.eventfd)
    }

    /// The eventfd the driver waits on.
    pub(super) fn raw_fd(&self) -> RawFd {
        self.inner.eventfd.as_raw_fd()
    }

    /// Called by the driver after it consumed the eventfd's counter and before it reports `Woken`, so a
    /// `wake` racing with the report either is seen by the handler or signals the eventfd again.
    pub(super) fn rearm(&self) {
        self.inner.pending.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker").field("eventfd", &self.raw_fd()).finish()
    }
}
