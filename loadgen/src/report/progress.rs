//! The live progress line a scenario prints to stderr once a second:
//!
//! ```text
//! [  12.0s] conns 9998/10000  sent 1.00k/s  delivered 99.8k/s  p99 3.21 ms (99.8k)  cpu 45%
//! ```
//!
//! Rates are over the last interval, computed from the cumulative counters the scenario passes in;
//! `p99` is the current interval's, with its sample count in brackets (`-` when it has none, which
//! during a run means nothing arrived: look at the server). `cpu` is the load generator's own busy
//! time over the interval as a share of one core, shown only when the scenario passes it.

use std::fmt;
use std::time::Duration;

use crate::latency::{LatencyHistogram, RunMicros};

/// Cumulative counters since the start of the run, as the scenario keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressCounters {
    /// Connections currently established.
    pub connections_up: u64,
    /// Connections the run wants.
    pub connections_target: u64,
    /// Messages published so far.
    pub messages_sent: u64,
    /// Deliveries received so far.
    pub deliveries_received: u64,
    /// The load generator's CPU busy time so far (user + system), if the scenario measures it.
    pub cpu_busy: Option<Duration>,
}

/// Turns successive counter readings into progress lines. Thread: the scenario's reporting loop.
#[derive(Debug, Clone)]
pub struct ProgressMeter {
    start: RunMicros,
    last_at: RunMicros,
    last: ProgressCounters,
}

impl ProgressMeter {
    /// A meter for a run that started at `start` with all counters at zero.
    pub fn new(start: RunMicros) -> Self {
        ProgressMeter { start, last_at: start, last: ProgressCounters::default() }
    }

    /// The line for the interval ending at `now`, given the counters then and the interval's
    /// latencies. Cost: one percentile lookup.
    pub fn line(
        &mut self,
        now: RunMicros,
        counters: ProgressCounters,
        interval: &LatencyHistogram,
    ) -> ProgressLine {
        let secs = now.micros_since(self.last_at) as f64 / 1e6;
        let rate =
            |now: u64, before: u64| if secs > 0.0 { now.saturating_sub(before) as f64 / secs } else { 0.0 };
        let cpu_percent = match (counters.cpu_busy, self.last.cpu_busy) {
            (Some(busy), Some(before)) if secs > 0.0 => {
                Some(100.0 * busy.saturating_sub(before).as_secs_f64() / secs)
            }
            (Some(busy), None) if secs > 0.0 => Some(100.0 * busy.as_secs_f64() / secs),
            _ => None,
        };
        let samples = interval.count();
        let line = ProgressLine {
            elapsed_secs: now.micros_since(self.start) as f64 / 1e6,
            connections_up: counters.connections_up,
            connections_target: counters.connections_target,
            messages_per_s: rate(counters.messages_sent, self.last.messages_sent),
            deliveries_per_s: rate(counters.deliveries_received, self.last.deliveries_received),
            p99_ms: (samples > 0).then(|| interval.quantile_micros(0.99) as f64 / 1e3),
            samples,
            cpu_percent,
        };
        self.last_at = now;
        self.last = counters;
        line
    }
}

/// One progress line's figures; `Display` formats it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressLine {
    /// Seconds since the run started.
    pub elapsed_secs: f64,
    /// Connections established.
    pub connections_up: u64,
    /// Connections wanted.
    pub connections_target: u64,
    /// Messages published per second over the interval.
    pub messages_per_s: f64,
    /// Deliveries received per second over the interval.
    pub deliveries_per_s: f64,
    /// The interval's 99th percentile latency in ms; `None` without samples.
    pub p99_ms: Option<f64>,
    /// Latency samples in the interval.
    pub samples: u64,
    /// Load generator busy time over the interval, % of one core.
    pub cpu_percent: Option<f64>,
}

impl fmt::Display for ProgressLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>6.1}s] conns {}/{}  sent {}/s  delivered {}/s  ",
            self.elapsed_secs,
            self.connections_up,
            self.connections_target,
            si(self.messages_per_s),
            si(self.deliveries_per_s),
        )?;
        match self.p99_ms {
            Some(p99) => write!(f, "p99 {p99:.2} ms ({})", si(self.samples as f64))?,
            None => f.write_str("p99 - (0)")?,
        }
        if let Some(cpu) = self.cpu_percent {
            write!(f, "  cpu {cpu:.0}%")?;
        }
        Ok(())
    }
}

/// Three significant digits with a k/M/G suffix: 7, 998, 1.00k, 99.8k, 12.3M.
fn si(v: f64) -> String {
    let (scaled, suffix) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => return format!("{v:.0}"),
    };
    if scaled >= 100.0 {
        format!("{scaled:.0}{suffix}")
    } else if scaled >= 10.0 {
        format!("{scaled:.1}{suffix}")
    } else {
        format!("{scaled:.2}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_interval_and_the_line_reads_well() {
        let mut meter = ProgressMeter::new(RunMicros::ZERO);
        let mut h = LatencyHistogram::new();
        let c1 = ProgressCounters {
            connections_up: 9_998,
            connections_target: 10_000,
            messages_sent: 1_000,
            deliveries_received: 99_800,
            cpu_busy: Some(Duration::from_millis(450)),
        };
        let first = meter.line(RunMicros::from_millis(1_000), c1, &h);
        assert_eq!(first.p99_ms, None);
        assert_eq!(
            first.to_string(),
            "[   1.0s] conns 9998/10000  sent 1.00k/s  delivered 99.8k/s  p99 - (0)  cpu 45%"
        );
        for _ in 0..99 {
            h.record(3_000);
        }
        h.record(90_000);
        let c2 =
            ProgressCounters { messages_sent: 1_500, deliveries_received: 149_800, cpu_busy: None, ..c1 };
        let second = meter.line(RunMicros::from_millis(2_000), c2, &h);
        assert_eq!(second.messages_per_s, 500.0);
        assert_eq!(second.deliveries_per_s, 50_000.0);
        assert_eq!(
            second.to_string(),
            "[   2.0s] conns 9998/10000  sent 500/s  delivered 50.0k/s  p99 3.00 ms (100)"
        );
    }

    #[test]
    fn si_keeps_three_significant_digits() {
        assert_eq!(si(7.0), "7");
        assert_eq!(si(998.4), "998");
        assert_eq!(si(1_000.0), "1.00k");
        assert_eq!(si(12_345_678.0), "12.3M");
        assert_eq!(si(250e9), "250G");
    }
}
