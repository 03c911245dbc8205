//! The load generator's own CPU use, so a run where the client was the bottleneck says so.
//!
//! A saturated load generator sends late and reads late: its latency figures then describe the
//! client, and its throughput is the client's ceiling, not the server's. Every run reports user and
//! system CPU from `getrusage` and a [`Saturation`] verdict.
//!
//! Which cores count: a scenario tells [`CpuMeter::finish`] how many event-loop threads did the
//! work (one per single-threaded worker process). Usable cores are that number capped at the cores
//! this process may run on. Busy above [`SATURATION_FRACTION`] of the usable cores is saturation.
//! One worker pegging its core while the others idle is saturation too, so a parent should also
//! check each worker's own [`CpuUsage`] (a worker measures itself with `loop_threads = 1`).
//!
//! `RUSAGE_CHILDREN` counts only children that have exited and been waited for: the parent reads it
//! after reaping its workers.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Busy fraction of the usable cores above which the load generator is called saturated. 90%
/// leaves room for scheduler noise while still catching a client that has no slack left: past this
/// point its send and receive loops start to lag and its latencies grow for reasons of its own.
pub const SATURATION_FRACTION: f64 = 0.9;

/// CPU time consumed, as `getrusage` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel on this process's behalf.
    pub system: Duration,
}

impl CpuTimes {
    /// All threads of this process so far (`RUSAGE_SELF`). Cost: one system call.
    pub fn of_self() -> std::io::Result<Self> {
        rusage(libc::RUSAGE_SELF)
    }

    /// All exited and reaped child processes so far (`RUSAGE_CHILDREN`).
    pub fn of_children() -> std::io::Result<Self> {
        rusage(libc::RUSAGE_CHILDREN)
    }

    /// User plus system time.
    pub fn busy(&self) -> Duration {
        self.user.saturating_add(self.system)
    }

    /// The time spent between an `earlier` reading and this one.
    pub fn since(&self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    fn plus(&self, other: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_add(other.user),
            system: self.system.saturating_add(other.system),
        }
    }
}

fn rusage(who: libc::c_int) -> std::io::Result<CpuTimes> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage` that lives across the call;
    // `who` is RUSAGE_SELF or RUSAGE_CHILDREN, both valid on Linux.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: all-zero bytes are a valid `rusage` (plain integers) and getrusage succeeded, so it
    // was also filled in.
    let usage = unsafe { usage.assume_init() };
    Ok(CpuTimes { user: timeval(usage.ru_utime), system: timeval(usage.ru_stime) })
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs).saturating_add(Duration::from_micros(micros))
}

/// How long the calling thread has waited for a core while runnable, since it started (the second
/// field of `/proc/thread-self/schedstat`). `None` where the kernel does not keep it.
pub fn run_queue_wait() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Cores this process may run on (affinity mask and cgroup quota); 1 if unknown.
pub fn available_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Measures one run: take it at the start, [`CpuMeter::finish`] it at the end.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    started: Instant,
    own: CpuTimes,
    children: CpuTimes,
    waited: Option<Duration>,
}

impl CpuMeter {
    /// Reads this process's and its reaped children's CPU time now.
    pub fn start() -> std::io::Result<Self> {
        Ok(CpuMeter {
            started: Instant::now(),
            own: CpuTimes::of_self()?,
            children: CpuTimes::of_children()?,
            waited: run_queue_wait(),
        })
    }

    /// CPU used since [`CpuMeter::start`] by this process and the children reaped since, for a
    /// run whose work was done by `loop_threads` event-loop threads. Call it on the thread that called
    /// `start` (the event loop): the run-queue wait is that thread's.
    pub fn finish(&self, loop_threads: u32) -> std::io::Result<CpuUsage> {
        let used = CpuTimes::of_self()?.since(self.own).plus(CpuTimes::of_children()?.since(self.children));
        let usage = CpuUsage::new(self.started.elapsed(), used, loop_threads, available_cores());
        let waited = run_queue_wait().zip(self.waited).map(|(now, then)| now.saturating_sub(then));
        Ok(usage.with_run_queue_wait(waited.unwrap_or_default()))
    }
}

/// CPU used over a run, with the share of the cores it had. Serializable so workers can send theirs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Wall-clock length of the measurement, in seconds.
    pub wall_secs: f64,
    /// User-mode CPU seconds.
    pub user_secs: f64,
    /// Kernel CPU seconds.
    pub system_secs: f64,
    /// Cores the load generator could use: its event-loop threads, capped at `cores_available`.
    pub usable_cores: u32,
    /// Cores this process may run on.
    pub cores_available: u32,
    /// Seconds the event loop was runnable but waited for a core (other processes had them).
    #[serde(default)]
    pub run_queue_wait_secs: f64,
}

impl CpuUsage {
    /// Usage of `used` CPU time over `wall`, by `loop_threads` threads on a machine with
    /// `cores_available` cores (both at least 1).
    pub fn new(wall: Duration, used: CpuTimes, loop_threads: u32, cores_available: u32) -> Self {
        let cores_available = cores_available.max(1);
        CpuUsage {
            wall_secs: wall.as_secs_f64(),
            user_secs: used.user.as_secs_f64(),
            system_secs: used.system.as_secs_f64(),
            usable_cores: loop_threads.clamp(1, cores_available),
            cores_available,
            run_queue_wait_secs: 0.0,
        }
    }

    /// The same usage, with the event loops' time waiting for a core.
    pub fn with_run_queue_wait(mut self, waited: Duration) -> Self {
        self.run_queue_wait_secs = waited.as_secs_f64();
        self
    }

    /// Time runnable (busy or waiting for a core) as a percentage of the usable cores: how much of
    /// the time the load generator wanted to run. 100 = it never had anything left to wait for.
    pub fn percent_runnable_of_usable_cores(&self) -> f64 {
        if self.wall_secs > 0.0 {
            let runnable = self.user_secs + self.system_secs + self.run_queue_wait_secs;
            100.0 * runnable / self.wall_secs / f64::from(self.usable_cores.max(1))
        } else {
            0.0
        }
    }

    /// `Some` when the load generator was not busy enough to be saturated but was *runnable* above
    /// [`SATURATION_FRACTION`] of the time: it wanted its cores and other processes had them, so it
    /// read and sent late and was the bottleneck all the same.
    pub fn starved(&self) -> Option<Starvation> {
        let runnable = self.percent_runnable_of_usable_cores();
        (self.saturated().is_none() && runnable / 100.0 > SATURATION_FRACTION).then_some(Starvation {
            runnable_percent: runnable,
            busy_percent: self.percent_of_usable_cores(),
            usable_cores: self.usable_cores,
        })
    }

    /// Busy time as a percentage of one core (200 = two cores flat out). 0 for a zero-length run.
    pub fn percent_of_one_core(&self) -> f64 {
        if self.wall_secs > 0.0 {
            100.0 * (self.user_secs + self.system_secs) / self.wall_secs
        } else {
            0.0
        }
    }

    /// Busy time as a percentage of every core available (100 = the whole machine).
    pub fn percent_of_all_cores(&self) -> f64 {
        self.percent_of_one_core() / f64::from(self.cores_available.max(1))
    }

    /// Busy time as a percentage of the usable cores (100 = no slack left).
    pub fn percent_of_usable_cores(&self) -> f64 {
        self.percent_of_one_core() / f64::from(self.usable_cores.max(1))
    }

    /// `Some` when busy time exceeded [`SATURATION_FRACTION`] of the usable cores.
    pub fn saturated(&self) -> Option<Saturation> {
        let fraction = self.percent_of_usable_cores() / 100.0;
        (fraction > SATURATION_FRACTION).then_some(Saturation {
            busy_cores: self.percent_of_one_core() / 100.0,
            usable_cores: self.usable_cores,
        })
    }
}

/// The verdict that the load generator, not the server, limited a run. Its `Display` is the
/// warning line the report prints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturation {
    /// Cores' worth of CPU the load generator kept busy.
    pub busy_cores: f64,
    /// Cores it could use.
    pub usable_cores: u32,
}

impl fmt::Display for Saturation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = 100.0 * self.busy_cores / f64::from(self.usable_cores.max(1));
        write!(
            f,
            "load generator saturated: busy {:.2} of {} usable core{} ({share:.0}%) — the server was not the \
             bottleneck of this run; use more worker processes or cores, or a lower rate",
            self.busy_cores,
            self.usable_cores,
            if self.usable_cores == 1 { "" } else { "s" },
        )
    }
}

/// The verdict that the load generator limited a run without being busy: it was runnable nearly all
/// the time but other processes held the cores. Its `Display` is the warning line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Starvation {
    /// Busy or waiting for a core, % of the usable cores.
    pub runnable_percent: f64,
    /// Busy, % of the usable cores.
    pub busy_percent: f64,
    /// Cores it could use.
    pub usable_cores: u32,
}

impl fmt::Display for Starvation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "load generator starved: runnable {:.0}% of the time on {} usable core{} but running only {:.0}% \
             (other processes had the cores) — it read and sent late, so the server was not the bottleneck \
             of this run; rerun on a quieter machine",
            self.runnable_percent,
            self.usable_cores,
            if self.usable_cores == 1 { "" } else { "s" },
            self.busy_percent,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(wall_ms: u64, busy_ms: u64, threads: u32, cores: u32) -> CpuUsage {
        let used = CpuTimes {
            user: Duration::from_millis(busy_ms * 3 / 4),
            system: Duration::from_millis(busy_ms / 4),
        };
        CpuUsage::new(Duration::from_millis(wall_ms), used, threads, cores)
    }

    #[test]
    fn percentages_are_of_one_core_all_cores_and_usable_cores() {
        let u = usage(10_000, 15_000, 2, 4);
        assert!((u.percent_of_one_core() - 150.0).abs() < 1e-9);
        assert!((u.percent_of_all_cores() - 37.5).abs() < 1e-9);
        assert!((u.percent_of_usable_cores() - 75.0).abs() < 1e-9);
        assert!(u.saturated().is_none());
    }

    #[test]
    fn a_single_threaded_loop_at_95_percent_of_its_core_is_saturated_on_a_big_machine() {
        let u = usage(10_000, 9_500, 1, 16);
        let verdict = u.saturated().expect("saturated");
        let line = verdict.to_string();
        assert!(line.starts_with("load generator saturated: busy 0.95 of 1 usable core (95%)"), "{line}");
        assert!(line.contains("the server was not the bottleneck of this run"), "{line}");
        assert!(usage(10_000, 8_500, 1, 16).saturated().is_none());
    }

    #[test]
    fn a_loop_that_waited_for_its_core_most_of_the_run_is_starved_not_saturated() {
        let waiting = usage(10_000, 4_000, 1, 2).with_run_queue_wait(Duration::from_millis(5_500));
        assert!(waiting.saturated().is_none());
        let verdict = waiting.starved().expect("starved");
        assert!((verdict.runnable_percent - 95.0).abs() < 1e-9);
        assert!(verdict
            .to_string()
            .starts_with("load generator starved: runnable 95% of the time on 1 usable core"));
        let slack = usage(10_000, 4_000, 1, 2).with_run_queue_wait(Duration::from_millis(3_000));
        assert!(slack.starved().is_none(), "70% runnable leaves slack");
        assert!(usage(10_000, 9_500, 1, 2).with_run_queue_wait(Duration::from_secs(1)).starved().is_none());
    }

    #[test]
    fn more_threads_than_cores_are_capped_at_the_cores() {
        let u = usage(1_000, 1_900, 8, 2);
        assert_eq!(u.usable_cores, 2);
        assert!(u.saturated().is_some());
    }

    #[test]
    fn the_meter_sees_this_process_burn_cpu() {
        let meter = CpuMeter::start().unwrap();
        let spin_until = Instant::now() + Duration::from_millis(50);
        let mut x = 0u64;
        while Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let u = meter.finish(1).unwrap();
        assert!(u.user_secs + u.system_secs > 0.01, "{u:?}");
        assert!(u.wall_secs >= 0.05);
    }
}
