//! What a run leaves behind for people and tools.
//!
//! At the end of a run a scenario builds a [`RunSummary`] and emits:
//! 1. the human table ([`render_table`]) on stdout, with a warning line if the load generator was
//!    saturated;
//! 2. with `--json`, ONE JSON line ([`RunSummary::to_json_line`], keys in [`summary::JSON_KEYS`]);
//! 3. with `--hlog FILE`, the interval log it streamed during the run ([`HlogWriter`]);
//! 4. with `--plot FILE`, the percentile plot ([`render_svg`]).
//!
//! During the run it prints a [`ProgressLine`] to stderr once a second ([`ProgressMeter`]).
//! `roomcast-loadgen report` reads JSON lines and `.hlog` files back ([`load_series`]) to put several
//! runs in one table and one plot.

pub mod hlog;
pub mod plot;
pub mod progress;
pub mod summary;
pub mod table;

pub use hlog::{read_hlog, HlogSeries, HlogWriter};
pub use plot::{render_svg, PlotOptions};
pub use progress::{ProgressCounters, ProgressLine, ProgressMeter};
pub use summary::{RunFacts, RunSummary};
pub use table::render_table;

use crate::latency::LatencyHistogram;
use crate::Error;

/// One line of a plot and one row of a table: a name, its latencies, and the run's other figures
/// when known (a series read from an `.hlog` file has latencies only).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Name shown in the legend and the table.
    pub label: String,
    /// Its latency histogram.
    pub latency: LatencyHistogram,
    /// The run summary it came from, if any.
    pub run: Option<RunSummary>,
}

impl Series {
    /// The series of a finished run.
    pub fn from_run(run: RunSummary) -> Self {
        Series { label: run.label.clone(), latency: run.latency_histogram.clone(), run: Some(run) }
    }
}

/// Reads the series in one input file: JSON summary lines (a file whose first non-blank byte is
/// `{`; one series per line) or an interval log (one series per tag). `name` (typically the file
/// name) labels untagged intervals and JSON lines without a label.
pub fn load_series(name: &str, bytes: &[u8]) -> Result<Vec<Series>, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut out = Vec::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()) {
            let mut run = RunSummary::from_json_line(line)?;
            if run.label.is_empty() {
                run.label = name.to_string();
            }
            out.push(Series::from_run(run));
        }
        return Ok(out);
    }
    let series = read_hlog(bytes)?;
    if series.is_empty() {
        return Err(Error::BadFile(format!("{name}: no JSON summary line and no interval histogram")));
    }
    Ok(series
        .into_iter()
        .map(|s| Series {
            label: s.tag.filter(|t| !t.is_empty()).unwrap_or_else(|| name.to_string()),
            latency: s.histogram,
            run: None,
        })
        .collect())
}

/// All `series` as one, named `label`: latencies added (the merge of several workers' logs or
/// runs). Run figures are dropped, since adding durations or CPU shares would mislead.
pub fn merge_series(label: &str, series: &[Series]) -> Series {
    let mut latency = LatencyHistogram::new();
    for s in series {
        latency.add(&s.latency);
    }
    Series { label: label.to_string(), latency, run: None }
}
