//! The process that runs a scenario (the only one, or the parent of the workers) reports through one
//! [`Reporter`]: it adds up latency intervals, writes the `.hlog` interval log as the run goes, prints
//! the progress line once a second, and samples the server's RSS when asked to watch a process.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::client::sys::rss_kib;
use crate::cpu::CpuTimes;
use crate::latency::{LatencyHistogram, RunEpoch, RunMicros};
use crate::report::{HlogWriter, ProgressCounters, ProgressMeter};
use crate::Error;

/// RSS readings of the server under test, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssReadings {
    /// Before the first connection.
    pub before: Option<u64>,
    /// When every connection was up and in its rooms.
    pub ready: Option<u64>,
    /// At the last progress tick (connections still held).
    pub last: Option<u64>,
}

/// See the module docs. Thread: the reporting loop.
pub struct Reporter {
    epoch: RunEpoch,
    label: String,
    quiet: bool,
    recorder: crate::latency::Recorder,
    meter: ProgressMeter,
    hlog: Option<HlogWriter<BufWriter<File>>>,
    server_pid: Option<u32>,
    rss: RssReadings,
    last_setup_line: Option<RunMicros>,
    workers: bool,
}

fn own_busy() -> Duration {
    CpuTimes::of_self().map(|t| t.busy()).unwrap_or_default()
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("label", &self.label).field("rss", &self.rss).finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter for a run starting now (this reading becomes the run epoch). `hlog`: the interval log
    /// to write; `server_pid`: a process whose RSS to sample (read once here, as "before").
    pub fn new(
        label: &str,
        quiet: bool,
        hlog: Option<&Path>,
        server_pid: Option<u32>,
    ) -> Result<Reporter, Error> {
        let epoch = RunEpoch::start();
        let wall = SystemTime::now();
        let hlog = match hlog {
            None => None,
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| Error::Usage(format!("cannot create --hlog {}: {e}", path.display())))?;
                let comment =
                    "roomcast-loadgen interval log: latency in microseconds from the scheduled send time";
                Some(HlogWriter::begin(BufWriter::new(file), wall, comment)?)
            }
        };
        let before = match server_pid {
            None => None,
            Some(pid) => Some(rss_kib(pid).map_err(|e| Error::Usage(format!("--server-pid {pid}: {e}")))?),
        };
        Ok(Reporter {
            epoch,
            label: label.to_string(),
            quiet,
            recorder: crate::latency::Recorder::new(RunMicros::ZERO),
            meter: ProgressMeter::new(RunMicros::ZERO),
            hlog,
            server_pid,
            rss: RssReadings { before, ..RssReadings::default() },
            last_setup_line: None,
            workers: false,
        })
    }

    /// The run's clock.
    pub fn epoch(&self) -> RunEpoch {
        self.epoch
    }

    /// Setup progress, printed at most once a second.
    pub fn setup_line(&mut self, up: u64, target: u64) {
        let now = self.epoch.now();
        if self.last_setup_line.is_some_and(|t| now.micros_since(t) < 1_000_000) {
            return;
        }
        self.last_setup_line = Some(now);
        if !self.quiet {
            eprintln!("[setup {:>5.1}s] conns {up}/{target} connected and in their rooms", now.as_secs_f64());
        }
    }

    /// Progress counters will come from worker processes (their CPU counted from their ready time).
    pub fn use_workers(&mut self) {
        self.workers = true;
    }

    /// Every connection is up: samples the server's RSS (if watched) and starts the measured intervals.
    pub fn mark_ready(&mut self, start: RunMicros) {
        self.rss.ready = self.sample_rss();
        self.recorder.rotate(start);
        self.meter = ProgressMeter::new(start);
        // The first progress line's CPU counts from here, not from the start of the setup. (Workers
        // report their CPU counted from their own ready time, so for them the baseline is zero.)
        let baseline = ProgressCounters {
            cpu_busy: Some(if self.workers { Duration::ZERO } else { own_busy() }),
            ..ProgressCounters::default()
        };
        let _ = self.meter.line(start, baseline, &LatencyHistogram::new());
    }

    /// Adds latencies from a slice to the current interval and the overall histogram.
    pub fn add(&mut self, histogram: &LatencyHistogram) {
        let snapshot = crate::latency::IntervalSnapshot {
            start: RunMicros::ZERO,
            end: RunMicros::ZERO,
            histogram: histogram.clone(),
        };
        self.recorder.add_interval(&snapshot);
    }

    /// Closes the interval at `now`: one `.hlog` line, one progress line (with this process's CPU
    /// and its reaped children's), one RSS sample.
    pub fn tick(&mut self, now: RunMicros, mut counters: ProgressCounters) -> Result<(), Error> {
        let interval = self.recorder.rotate(now);
        if let Some(hlog) = self.hlog.as_mut() {
            hlog.append(&interval, Some(&self.label))?;
        }
        if counters.cpu_busy.is_none() {
            counters.cpu_busy = Some(own_busy());
        }
        let line = self.meter.line(now, counters, &interval.histogram);
        if !self.quiet {
            eprintln!("{line}");
        }
        if self.server_pid.is_some() {
            self.rss.last = self.sample_rss();
        }
        Ok(())
    }

    /// Every latency added so far (a copy; see [`crate::latency::Recorder::overall`]).
    pub fn overall(&self) -> LatencyHistogram {
        self.recorder.overall()
    }

    /// The RSS readings of the watched server.
    pub fn rss(&self) -> RssReadings {
        self.rss
    }

    /// Flushes the interval log.
    pub fn close(&mut self) -> Result<(), Error> {
        if let Some(hlog) = self.hlog.take() {
            hlog.finish()?;
        }
        Ok(())
    }

    fn sample_rss(&self) -> Option<u64> {
        self.server_pid.and_then(|pid| rss_kib(pid).ok())
    }
}
