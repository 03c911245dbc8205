//! The end-of-run figures as one JSON line with stable key names (documented in docs/LOADGEN.md).
//!
//! Contract: the keys in [`JSON_KEYS`] are always present, in that order, with those meanings; a
//! change of meaning bumps [`SCHEMA`]. New keys may be appended without a bump. The line embeds the
//! whole latency histogram (`latency_histogram`, HdrHistogram V2-deflate in base64), so
//! `roomcast-loadgen report` can re-plot and overlay runs from their JSON lines alone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cpu::{CpuUsage, Saturation, Starvation};
use crate::latency::LatencyHistogram;
use crate::Error;

/// Value of the `schema` key.
pub const SCHEMA: &str = "roomcast-loadgen/1";

/// Every key of the JSON line, in order.
pub const JSON_KEYS: &[&str] = &[
    "schema",
    "label",
    "scenario",
    "url",
    "connections",
    "rooms",
    "duration_s",
    "messages_sent",
    "deliveries_expected",
    "deliveries_received",
    "deliveries_per_s",
    "latency_samples",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "latency_clamped",
    "cpu_user_s",
    "cpu_system_s",
    "cpu_percent_one_core",
    "cpu_percent_all_cores",
    "cpu_usable_cores",
    "cpu_saturated",
    "violations",
    "latency_histogram",
    "cpu_run_queue_wait_s",
    "cpu_starved",
];

/// What a scenario knows at the end of a run, besides latency and CPU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFacts {
    /// Name of this series in tables and plots (e.g. `roomcast`, `node`); defaults to the scenario.
    pub label: String,
    /// `fanout`, `verify`, `connect` or `idle`.
    pub scenario: String,
    /// Server URL the run targeted.
    pub url: String,
    /// Connections the run held open (target, not the count that succeeded).
    pub connections: u64,
    /// Rooms the connections were spread over.
    pub rooms: u64,
    /// Measured part of the run (warm-up excluded).
    pub duration: Duration,
    /// Messages published.
    pub messages_sent: u64,
    /// Deliveries the published messages should have caused (sum of their audiences).
    pub deliveries_expected: u64,
    /// Deliveries observed.
    pub deliveries_received: u64,
    /// Delivery violations found (`verify` and `fanout` check them; always 0 otherwise).
    pub violations: u64,
}

/// The end-of-run summary, one JSON object; field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Series name.
    pub label: String,
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub url: String,
    /// Connections held.
    pub connections: u64,
    /// Rooms used.
    pub rooms: u64,
    /// Measured duration in seconds.
    pub duration_s: f64,
    /// Messages published.
    pub messages_sent: u64,
    /// Deliveries expected.
    pub deliveries_expected: u64,
    /// Deliveries received.
    pub deliveries_received: u64,
    /// `deliveries_received / duration_s`.
    pub deliveries_per_s: f64,
    /// Latency samples recorded (one per delivery that carried a token).
    pub latency_samples: u64,
    /// Median latency, ms, from the scheduled send time.
    pub latency_p50_ms: f64,
    /// 90th percentile latency, ms.
    pub latency_p90_ms: f64,
    /// 99th percentile latency, ms.
    pub latency_p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub latency_p999_ms: f64,
    /// Largest latency, ms.
    pub latency_max_ms: f64,
    /// Latencies of 60 s or more, recorded as 60 s.
    pub latency_clamped: u64,
    /// Load generator user CPU seconds (itself and its reaped workers).
    pub cpu_user_s: f64,
    /// Load generator system CPU seconds.
    pub cpu_system_s: f64,
    /// Busy CPU as % of one core (200 = two cores flat out).
    pub cpu_percent_one_core: f64,
    /// Busy CPU as % of every core the process may use.
    pub cpu_percent_all_cores: f64,
    /// Cores the load generator could use (its event-loop threads, capped at the cores available).
    pub cpu_usable_cores: u32,
    /// Whether the load generator was the bottleneck (see `cpu::SATURATION_FRACTION`).
    pub cpu_saturated: bool,
    /// Delivery violations.
    pub violations: u64,
    /// The overall latency histogram, HdrHistogram V2-deflate, base64.
    pub latency_histogram: LatencyHistogram,
    /// Seconds the load generator's event loops were runnable but waited for a core.
    #[serde(default)]
    pub cpu_run_queue_wait_s: f64,
    /// Whether the load generator was runnable above 90% of the time without being busy that much:
    /// other processes held the cores and it was the bottleneck all the same.
    #[serde(default)]
    pub cpu_starved: bool,
}

/// Microseconds as milliseconds, exact to the µs.
pub(crate) fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

impl RunSummary {
    /// The summary of a run from its facts, its overall latency histogram and its CPU use.
    pub fn new(facts: RunFacts, latency: &LatencyHistogram, cpu: &CpuUsage) -> Self {
        let duration_s = facts.duration.as_secs_f64();
        let per_s = if duration_s > 0.0 { facts.deliveries_received as f64 / duration_s } else { 0.0 };
        let label = if facts.label.is_empty() { facts.scenario.clone() } else { facts.label };
        RunSummary {
            schema: SCHEMA.to_string(),
            label,
            scenario: facts.scenario,
            url: facts.url,
            connections: facts.connections,
            rooms: facts.rooms,
            duration_s,
            messages_sent: facts.messages_sent,
            deliveries_expected: facts.deliveries_expected,
            deliveries_received: facts.deliveries_received,
            deliveries_per_s: (per_s * 10.0).round() / 10.0,
            latency_samples: latency.count(),
            latency_p50_ms: ms(latency.quantile_micros(0.5)),
            latency_p90_ms: ms(latency.quantile_micros(0.9)),
            latency_p99_ms: ms(latency.quantile_micros(0.99)),
            latency_p999_ms: ms(latency.quantile_micros(0.999)),
            latency_max_ms: ms(latency.max_micros()),
            latency_clamped: latency.clamped(),
            cpu_user_s: cpu.user_secs,
            cpu_system_s: cpu.system_secs,
            cpu_percent_one_core: round1(cpu.percent_of_one_core()),
            cpu_percent_all_cores: round1(cpu.percent_of_all_cores()),
            cpu_usable_cores: cpu.usable_cores,
            cpu_saturated: cpu.saturated().is_some(),
            violations: facts.violations,
            latency_histogram: latency.clone(),
            cpu_run_queue_wait_s: (cpu.run_queue_wait_secs * 1000.0).round() / 1000.0,
            cpu_starved: cpu.starved().is_some(),
        }
    }

    /// The starvation warning for this run, if the load generator waited for its cores (rebuilt from the
    /// summary's figures).
    pub fn starvation(&self) -> Option<Starvation> {
        if !self.cpu_starved || self.duration_s <= 0.0 {
            return None;
        }
        let usable = f64::from(self.cpu_usable_cores.max(1));
        let busy_percent = self.cpu_percent_one_core / usable;
        Some(Starvation {
            runnable_percent: busy_percent + 100.0 * self.cpu_run_queue_wait_s / self.duration_s / usable,
            busy_percent,
            usable_cores: self.cpu_usable_cores,
        })
    }

    /// The saturation warning for this run, if the load generator was saturated.
    pub fn saturation(&self) -> Option<Saturation> {
        self.cpu_saturated.then_some(Saturation {
            busy_cores: self.cpu_percent_one_core / 100.0,
            usable_cores: self.cpu_usable_cores,
        })
    }

    /// The summary as one line of JSON, without the trailing newline.
    pub fn to_json_line(&self) -> Result<String, Error> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses a line written by [`RunSummary::to_json_line`]. Unknown keys are ignored (newer
    /// writers may append keys); a different `schema` is refused.
    pub fn from_json_line(line: &[u8]) -> Result<Self, Error> {
        let summary: RunSummary = serde_json::from_slice(line)?;
        if summary.schema != SCHEMA {
            return Err(Error::BadFile(format!(
                "JSON line has schema {:?}, expected {SCHEMA:?}",
                summary.schema
            )));
        }
        Ok(summary)
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
