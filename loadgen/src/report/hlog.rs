//! HdrHistogram interval logs (`.hlog`): one compressed histogram per interval, readable by the
//! HdrHistogram tools (`HistogramLogProcessor`, HdrHistogramVisualizer, this crate's `report`).
//!
//! What we write, in the standard text format of the hdrhistogram crate's `IntervalLogWriter`:
//!
//! ```text
//! #roomcast-loadgen interval log: latency in microseconds from the scheduled send time
//! #[StartTime: 1718000000.000 (seconds since epoch)]
//! #[BaseTime: 1718000000.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=roomcast,0.000,1.000,3210.000,HISTFAAAA...
//! ```
//!
//! Values (and the `Interval_Max` column) are microseconds; give Java's `HistogramLogProcessor`
//! `-outputValueUnitRatio 1000` for milliseconds. Interval timestamps are seconds since the run
//! epoch, and `BaseTime` is the wall-clock time of that epoch, so `BaseTime + timestamp` is the
//! wall-clock start of each interval.

use std::io::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, LogIteratorError, Tag,
};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::latency::{IntervalSnapshot, LatencyHistogram};
use crate::Error;

/// The legend line Java's `HistogramLogWriter` writes after the headers.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Streams interval histograms to an `.hlog` file (or any writer), one line per interval.
///
/// Cost per interval: one compression of the histogram (~tens of µs) and one line of a few KiB.
pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
}

impl<W: Write> std::fmt::Debug for HlogWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter").finish_non_exhaustive()
    }
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header: `comment` lines, then `StartTime` and `BaseTime` set to `run_start`, the
    /// wall-clock time of the run epoch, then the legend.
    pub fn begin(mut out: W, run_start: SystemTime, comment: &str) -> Result<Self, Error> {
        let mut serializer = V2DeflateSerializer::new();
        {
            let mut builder = IntervalLogWriterBuilder::new();
            for line in comment.lines() {
                builder.add_comment(line);
            }
            builder.with_start_time(run_start).with_base_time(run_start);
            builder.begin_log_with(&mut out, &mut serializer)?;
        }
        out.write_all(LEGEND.as_bytes())?;
        Ok(HlogWriter { out, serializer })
    }

    /// Appends one interval. `tag` names the series (a run label); characters the format forbids
    /// in tags (comma, space, CR, LF) become `_`.
    pub fn append(&mut self, interval: &IntervalSnapshot, tag: Option<&str>) -> Result<(), Error> {
        let tag_text = tag.map(sanitize_tag);
        let start = Duration::from_micros(interval.start.as_micros());
        let length = Duration::from_micros(interval.end.micros_since(interval.start));
        // No headers configured: the builder writes nothing before the interval line.
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        writer
            .write_histogram(
                interval.histogram.as_hdr(),
                start,
                length,
                tag_text.as_deref().and_then(Tag::new),
            )
            .map_err(|e| Error::Histogram(e.to_string()))
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn sanitize_tag(tag: &str) -> String {
    tag.chars().map(|c| if matches!(c, ',' | ' ' | '\r' | '\n') { '_' } else { c }).collect()
}

/// All intervals of one tag of an interval log, added up.
#[derive(Debug, Clone, PartialEq)]
pub struct HlogSeries {
    /// The intervals' tag; `None` for untagged intervals.
    pub tag: Option<String>,
    /// Every interval's histogram added together.
    pub histogram: LatencyHistogram,
    /// How many intervals were added.
    pub intervals: usize,
    /// Seconds from the first interval's start to the last one's end.
    pub span_secs: f64,
}

/// Reads an interval log, adding up the intervals of each tag; series come in order of first
/// appearance. Any unparsable line or histogram fails the whole read.
pub fn read_hlog(bytes: &[u8]) -> Result<Vec<HlogSeries>, Error> {
    // (series, earliest start, latest end) per tag.
    let mut out: Vec<(HlogSeries, f64, f64)> = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let interval = match entry {
            Ok(LogEntry::Interval(i)) => i,
            Ok(LogEntry::StartTime(_) | LogEntry::BaseTime(_)) => continue,
            Err(LogIteratorError::ParseError { offset }) => return Err(Error::Hlog { offset }),
        };
        let histogram = LatencyHistogram::from_base64(interval.encoded_histogram().as_bytes())?;
        let tag = interval.tag().map(|t| t.as_str().to_string());
        let start = interval.start_timestamp().as_secs_f64();
        let end = start + interval.duration().as_secs_f64();
        match out.iter_mut().find(|(s, _, _)| s.tag == tag) {
            Some((series, first, last)) => {
                series.histogram.add(&histogram);
                series.intervals += 1;
                *first = first.min(start);
                *last = last.max(end);
            }
            None => out.push((HlogSeries { tag, histogram, intervals: 1, span_secs: 0.0 }, start, end)),
        }
    }
    Ok(out.into_iter().map(|(s, first, last)| HlogSeries { span_secs: last - first, ..s }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_lose_the_characters_the_format_forbids() {
        assert_eq!(sanitize_tag("node 20,x"), "node_20_x");
        assert!(Tag::new(&sanitize_tag("a b\r\n,c")).is_some());
    }

    #[test]
    fn garbage_is_an_error_with_its_offset_not_a_panic() {
        let log = b"#comment\n0.000,1.000,5.000,HISTFAAAAB\n";
        assert!(matches!(read_hlog(log), Err(Error::Histogram(_))));
        assert!(matches!(read_hlog(b"#ok\nnot a log line\n"), Err(Error::Hlog { offset: 4 })));
        assert_eq!(read_hlog(b"").unwrap(), Vec::new());
    }
}
