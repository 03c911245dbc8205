//! Counters a person can look at: each shard publishes its counters once per loop turn into its own
//! slot of atomics, and `GET /metrics` (on the server's port, outside the Engine.IO paths) renders every
//! shard's slot in the Prometheus text format.
//!
//! Cost: a handful of relaxed stores per shard per turn; rendering reads them without stopping anyone.
//! Counters are monotonic totals since start; `sessions` and `connections` are current values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::core::{ShardCore, ShardStats};
use super::guard::HANDLER_PANICS;

/// One shard's published figures.
#[derive(Debug, Default)]
pub(crate) struct ShardGauges {
    sessions: AtomicU64,
    connections: AtomicU64,
    sessions_opened: AtomicU64,
    broadcasts: AtomicU64,
    deliveries: AtomicU64,
    volatile_dropped: AtomicU64,
    slow_consumers_closed: AtomicU64,
    peer_errors: AtomicU64,
    requests_forwarded: AtomicU64,
    connections_moved: AtomicU64,
}

/// (metric name, type, help, reader).
type Row = (&'static str, &'static str, &'static str, fn(&ShardGauges) -> &AtomicU64);

const ROWS: [Row; 10] = [
    ("roomcast_sessions", "gauge", "Engine.IO sessions open on the shard.", |g| &g.sessions),
    ("roomcast_connections", "gauge", "TCP connections open on the shard.", |g| &g.connections),
    ("roomcast_sessions_opened_total", "counter", "Engine.IO sessions opened.", |g| &g.sessions_opened),
    ("roomcast_broadcasts_total", "counter", "Broadcasts planned on the shard.", |g| &g.broadcasts),
    ("roomcast_deliveries_total", "counter", "Packets queued to recipients by broadcasts.", |g| {
        &g.deliveries
    }),
    ("roomcast_volatile_dropped_total", "counter", "Volatile packets dropped for busy sockets.", |g| {
        &g.volatile_dropped
    }),
    (
        "roomcast_slow_consumers_closed_total",
        "counter",
        "Sockets closed past the outbound hard limit.",
        |g| &g.slow_consumers_closed,
    ),
    ("roomcast_peer_errors_total", "counter", "Connections closed for a peer's protocol error.", |g| {
        &g.peer_errors
    }),
    ("roomcast_requests_forwarded_total", "counter", "Polling requests sent to their home shard.", |g| {
        &g.requests_forwarded
    }),
    (
        "roomcast_connections_moved_total",
        "counter",
        "Upgrading connections moved to their home shard.",
        |g| &g.connections_moved,
    ),
];

impl ShardGauges {
    fn publish(&self, stats: &ShardStats, sessions: usize, connections: usize) {
        let set = |cell: &AtomicU64, value: u64| cell.store(value, Ordering::Relaxed);
        set(&self.sessions, sessions as u64);
        set(&self.connections, connections as u64);
        set(&self.sessions_opened, stats.sessions_opened);
        set(&self.broadcasts, stats.broadcasts);
        set(&self.deliveries, stats.deliveries);
        set(&self.volatile_dropped, stats.volatile_dropped);
        set(&self.slow_consumers_closed, stats.slow_consumers_closed);
        set(&self.peer_errors, stats.peer_errors);
        set(&self.requests_forwarded, stats.requests_forwarded);
        set(&self.connections_moved, stats.connections_moved);
    }
}

/// The Prometheus text exposition of every shard's figures.
pub(crate) fn render(shards: &[ShardGauges]) -> String {
    let mut out = String::new();
    for (name, kind, help, cell) in ROWS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, gauges) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", cell(gauges).load(Ordering::Relaxed));
        }
    }
    let panics = HANDLER_PANICS.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP roomcast_handler_panics_total Handler panics caught.\n# TYPE roomcast_handler_panics_total counter\nroomcast_handler_panics_total {panics}"
    );
    out
}

impl ShardCore {
    /// Publishes this shard's figures (once per loop turn).
    pub(crate) fn publish_metrics(&self, connections: usize) {
        if let Some(gauges) = self.shared.gauges.get(self.id.0 as usize) {
            gauges.publish(&self.stats, self.sessions_by_sid.len(), connections);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_appears_under_every_metric() {
        let shards = [ShardGauges::default(), ShardGauges::default()];
        let stats = ShardStats { deliveries: 42, ..ShardStats::default() };
        shards[1].publish(&stats, 3, 4);
        let text = render(&shards);
        assert!(text.contains("roomcast_deliveries_total{shard=\"1\"} 42\n"), "{text}");
        assert!(text.contains("roomcast_sessions{shard=\"1\"} 3\n"), "{text}");
        assert!(text.contains("roomcast_deliveries_total{shard=\"0\"} 0\n"), "{text}");
        assert!(text.contains("# TYPE roomcast_deliveries_total counter\n"), "{text}");
    }
}
