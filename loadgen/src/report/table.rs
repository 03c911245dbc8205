//! The human table: one row per run (or per series read back from files), fixed columns, numbers
//! right-aligned, then one warning line per saturated run.
//!
//! ```text
//! label     scenario  conns  rooms  dur_s   sent  expected  received  deliv/s  samples  p50_ms  p90_ms  p99_ms  p99.9_ms  max_ms  cpu%  violations
//! roomcast  fanout    10000    100   30.0  30000   3000000   3000000   100000  3000000   0.812   1.430   3.210     7.950  12.030    41           0
//! ```
//!
//! `cpu%` is busy CPU as a share of the cores the load generator could use (100 = no slack left);
//! a trailing `!` marks a saturated run. A series read from an `.hlog` file has latency columns
//! only; the others show `-`.

use super::Series;

const HEADERS: [&str; 17] = [
    "label",
    "scenario",
    "conns",
    "rooms",
    "dur_s",
    "sent",
    "expected",
    "received",
    "deliv/s",
    "samples",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p99.9_ms",
    "max_ms",
    "cpu%",
    "violations",
];

/// Columns 0 and 1 (label, scenario) are left-aligned text; the rest are numbers.
const TEXT_COLUMNS: usize = 2;

/// Renders the table for `series`, ending with a newline. Cost: O(series × buckets) for the
/// percentiles.
pub fn render_table(series: &[Series]) -> String {
    let rows: Vec<[String; 17]> = series.iter().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_line(&mut out, &HEADERS.map(str::to_string), &widths);
    for r in &rows {
        push_line(&mut out, r, &widths);
    }
    for s in series {
        if let Some(warning) = s.run.as_ref().and_then(|r| r.saturation()) {
            out.push_str(&format!("warning: {}: {warning}\n", s.label));
        }
        if let Some(warning) = s.run.as_ref().and_then(|r| r.starvation()) {
            out.push_str(&format!("warning: {}: {warning}\n", s.label));
        }
    }
    out
}

fn push_line(out: &mut String, cells: &[String; 17], widths: &[usize; 17]) {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths.iter()).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        if i < TEXT_COLUMNS {
            line.push_str(&format!("{cell:<w$}"));
        } else {
            line.push_str(&format!("{cell:>w$}"));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn row(s: &Series) -> [String; 17] {
    let h = &s.latency;
    let q = |p: f64| format_ms(h.quantile_micros(p));
    let latency = [h.count().to_string(), q(0.5), q(0.9), q(0.99), q(0.999), format_ms(h.max_micros())];
    let dash = || "-".to_string();
    let run_cells: [String; 9] = match s.run.as_ref() {
        Some(r) => [
            r.scenario.clone(),
            r.connections.to_string(),
            r.rooms.to_string(),
            format!("{:.1}", r.duration_s),
            r.messages_sent.to_string(),
            r.deliveries_expected.to_string(),
            r.deliveries_received.to_string(),
            format!("{:.0}", r.deliveries_per_s),
            r.violations.to_string(),
        ],
        None => std::array::from_fn(|_| dash()),
    };
    let cpu = match s.run.as_ref() {
        Some(r) => {
            let usable = f64::from(r.cpu_usable_cores.max(1));
            let mark = if r.cpu_saturated || r.cpu_starved { "!" } else { "" };
            format!("{:.0}{mark}", r.cpu_percent_one_core / usable)
        }
        None => dash(),
    };
    let [scenario, conns, rooms, dur, sent, expected, received, per_s, violations] = run_cells;
    let [samples, p50, p90, p99, p999, max] = latency;
    [
        s.label.clone(),
        scenario,
        conns,
        rooms,
        dur,
        sent,
        expected,
        received,
        per_s,
        samples,
        p50,
        p90,
        p99,
        p999,
        max,
        cpu,
        violations,
    ]
}

/// Milliseconds with 3 decimals (µs precision) below 1 s, fewer above, so columns stay narrow
/// without hiding a sub-millisecond median.
pub(crate) fn format_ms(micros: u64) -> String {
    let v = micros as f64 / 1_000.0;
    if v < 1_000.0 {
        format!("{v:.3}")
    } else if v < 10_000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_keep_microseconds_below_a_second() {
        assert_eq!(format_ms(812), "0.812");
        assert_eq!(format_ms(12_030), "12.030");
        assert_eq!(format_ms(1_234_567), "1234.6");
        assert_eq!(format_ms(60_000_000), "60000");
    }
}
