//! The run's time base: microseconds since a run epoch shared by every worker process.
//!
//! A message's scheduled time is written by the publisher's process and compared with the receive
//! time in the receiver's process, so both must count from the same zero. The epoch is a reading of
//! `CLOCK_MONOTONIC`, which every process on one host shares (it does not jump with NTP steps and is
//! not comparable across hosts: all workers of a run must run on one machine). The parent takes
//! [`RunEpoch::start`] and hands [`RunEpoch::monotonic_nanos`] to each worker, which rebuilds it with
//! [`RunEpoch::from_monotonic_nanos`].

use serde::{Deserialize, Serialize};

/// A point in the run: whole microseconds since the run epoch.
///
/// Invariant: only ever compared with other `RunMicros` of the same run. 2^64 µs is ~584,000 years,
/// so arithmetic on it saturates instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunMicros(u64);

impl RunMicros {
    /// The run epoch itself.
    pub const ZERO: RunMicros = RunMicros(0);

    /// The point `micros` µs after the run epoch.
    pub const fn from_micros(micros: u64) -> Self {
        RunMicros(micros)
    }

    /// The point `millis` ms after the run epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        RunMicros(millis.saturating_mul(1_000))
    }

    /// Microseconds since the run epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the run epoch, for display and interval logs.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self - earlier` in µs, or 0 when `earlier` is later than `self`.
    pub const fn micros_since(self, earlier: RunMicros) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The point `micros` µs later (saturating).
    pub const fn plus_micros(self, micros: u64) -> Self {
        RunMicros(self.0.saturating_add(micros))
    }
}

/// The zero of a run's clock, as a `CLOCK_MONOTONIC` reading in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEpoch {
    monotonic_nanos: u64,
}

impl RunEpoch {
    /// Starts a run now. Cost: one `clock_gettime` (vDSO, tens of ns).
    pub fn start() -> Self {
        RunEpoch { monotonic_nanos: monotonic_nanos() }
    }

    /// The epoch a parent process started, from the number it passed on (see the module docs).
    pub const fn from_monotonic_nanos(monotonic_nanos: u64) -> Self {
        RunEpoch { monotonic_nanos }
    }

    /// The number to hand to worker processes so they share this epoch.
    pub const fn monotonic_nanos(self) -> u64 {
        self.monotonic_nanos
    }

    /// The current point in the run. Reads the clock; cost as [`RunEpoch::start`].
    /// Before the epoch (a worker whose epoch came from a later reading) this is [`RunMicros::ZERO`].
    pub fn now(self) -> RunMicros {
        RunMicros(monotonic_nanos().saturating_sub(self.monotonic_nanos) / 1_000)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds; 0 if the clock cannot be read (it always can on Linux).
fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call; CLOCK_MONOTONIC is supported
    // on every Linux and BSD, and clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_rebuilding_the_epoch_reads_the_same_clock() {
        let parent = RunEpoch::start();
        let worker = RunEpoch::from_monotonic_nanos(parent.monotonic_nanos());
        let a = parent.now();
        let b = worker.now();
        let c = parent.now();
        assert!(a <= b && b <= c, "{a:?} {b:?} {c:?}");
    }

    #[test]
    fn differences_saturate_instead_of_wrapping() {
        let early = RunMicros::from_millis(5);
        let late = RunMicros::from_millis(7);
        assert_eq!(late.micros_since(early), 2_000);
        assert_eq!(early.micros_since(late), 0);
        assert_eq!(RunMicros::from_micros(u64::MAX).plus_micros(1).as_micros(), u64::MAX);
    }
}
