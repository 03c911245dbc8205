//! Latency histograms: per interval (for the live progress line and the interval log) and overall,
//! mergeable across worker processes.
//!
//! Every histogram here counts microseconds from 1 µs to 60 s at 3 significant digits (a value is
//! known to within 0.1%); a latency above 60 s is recorded as 60 s, and [`LatencyHistogram::clamped`]
//! (the count in the top bucket) lets the report say so. That count is part of the histogram itself,
//! so it survives serialization and merging. One histogram is ~190 KiB of counters;
//! serialized (HdrHistogram V2, deflate-compressed, base64, as in `.hlog` files) a typical one is a
//! few hundred bytes to a few KiB, which is what workers send to the parent.

use std::borrow::Borrow;

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::clock::RunMicros;
use crate::Error;

/// Lowest latency told apart from zero, in µs.
pub const LOWEST_MICROS: u64 = 1;
/// Highest latency recorded as itself, in µs (60 s); larger ones are clamped to it.
pub const HIGHEST_MICROS: u64 = 60_000_000;
/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds with the fixed bounds above.
///
/// Invariant: the inner histogram always has exactly these bounds, so any two add without error.
#[derive(Clone, PartialEq)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl std::fmt::Debug for LatencyHistogram {
    /// A summary: the counters themselves are ~24 000 numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .field("p50_us", &self.quantile_micros(0.5))
            .field("p99_us", &self.quantile_micros(0.99))
            .field("max_us", &self.max_micros())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        // Invariant: creation fails only for low == 0, high < 2 * low or sigfig > 5; the bounds are
        // the constants above (1, 60e6, 3), so it cannot fail.
        let inner = Histogram::new_with_bounds(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        LatencyHistogram { inner }
    }

    /// Records one latency. Cost: O(1), no allocation.
    pub fn record(&mut self, micros: u64) {
        self.record_n(micros, 1);
    }

    /// Records `count` equal latencies.
    pub fn record_n(&mut self, micros: u64, count: u64) {
        self.inner.saturating_record_n(micros.min(HIGHEST_MICROS), count);
    }

    /// Adds every count of `other` into this one. Cost: O(buckets), no allocation.
    pub fn add(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides (type invariant): `add` cannot fail; re-record if it ever did.
        if self.inner.add(&other.inner).is_err() {
            for v in other.inner.iter_recorded() {
                self.inner.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// Latencies of 60 s or more (to the 0.1% precision: the top bucket), which were recorded as
    /// 60 s whatever their real value.
    pub fn clamped(&self) -> u64 {
        self.inner.count_at(HIGHEST_MICROS)
    }

    /// The latency at quantile `q` (0.0..=1.0) in µs, as the highest value equivalent to it; 0 when
    /// empty.
    pub fn quantile_micros(&self, q: f64) -> u64 {
        if self.inner.is_empty() {
            return 0;
        }
        self.inner.value_at_quantile(q)
    }

    /// The largest latency recorded, in µs (to the histogram's precision); 0 when empty.
    pub fn max_micros(&self) -> u64 {
        if self.inner.is_empty() {
            return 0;
        }
        self.inner.max()
    }

    /// The underlying HdrHistogram (read-only: the bounds invariant must hold).
    pub fn as_hdr(&self) -> &Histogram<u64> {
        &self.inner
    }

    /// HdrHistogram V2 deflate encoding in standard base64: the same text as an `.hlog` line's last
    /// field.
    pub fn to_base64(&self) -> Result<String, Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.inner, &mut bytes)
            .map_err(|e| Error::Histogram(format!("{e:?}")))?;
        Ok(base64_encode(&bytes))
    }

    /// Decodes [`LatencyHistogram::to_base64`] output or any V2 / V2-deflate histogram (for example
    /// one written by another HdrHistogram implementation). A histogram with other bounds is
    /// re-recorded into ours, values above 60 s counting as clamped.
    ///
    /// Trust: for the run's own workers and files. A crafted blob can make the HdrHistogram decoder
    /// allocate up to 4 GiB; it cannot make this function panic.
    pub fn from_base64(text: &[u8]) -> Result<Self, Error> {
        let bytes = base64_decode(text).ok_or_else(|| Error::Histogram("not standard base64".into()))?;
        let decoded: Histogram<u64> =
            Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| Error::Histogram(e.to_string()))?;
        let mut out = LatencyHistogram::new();
        if decoded.low() == LOWEST_MICROS
            && decoded.high() == HIGHEST_MICROS
            && decoded.sigfig() == SIGNIFICANT_DIGITS
        {
            out.inner = decoded;
        } else {
            for v in decoded.iter_recorded() {
                out.record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        Ok(out)
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.to_base64().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        LatencyHistogram::from_base64(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// One closed interval of a recorder: what a worker sends its parent once a second (as a JSON
/// line via serde) and what becomes one line of the interval log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalSnapshot {
    /// Start of the interval.
    pub start: RunMicros,
    /// End of the interval (exclusive).
    pub end: RunMicros,
    /// Latencies recorded during it.
    pub histogram: LatencyHistogram,
}

/// Open-loop latency bookkeeping for one process: the current interval and the whole run.
///
/// Thread: owned by one event loop; merge across threads or processes with [`Recorder::merge`]
/// and [`Recorder::add_interval`]. Cost per record: one histogram increment, no allocation.
///
/// Invariant: `closed` + `interval` holds every latency recorded or added; a record touches only
/// `interval`, which folds into `closed` when it closes.
#[derive(Debug, Clone)]
pub struct Recorder {
    interval_start: RunMicros,
    interval: LatencyHistogram,
    /// The intervals closed so far.
    closed: LatencyHistogram,
}

impl Recorder {
    /// A recorder whose first interval starts at `start`.
    pub fn new(start: RunMicros) -> Self {
        Recorder { interval_start: start, interval: LatencyHistogram::new(), closed: LatencyHistogram::new() }
    }

    /// Records one delivery: latency = `received` − `scheduled` (the token's time, not the actual
    /// send time). A receive before its schedule (clock misuse) records 0 µs.
    pub fn record_delivery(&mut self, scheduled: RunMicros, received: RunMicros) {
        self.record_micros(received.micros_since(scheduled));
    }

    /// Records one latency in µs into the current interval (and so into the overall histogram).
    pub fn record_micros(&mut self, micros: u64) {
        self.interval.record(micros);
    }

    /// Closes the current interval at `now` and starts the next one there. The returned snapshot
    /// owns the closed interval's histogram (one ~190 KiB allocation per call, and one pass over
    /// the counters to fold it into the overall histogram).
    pub fn rotate(&mut self, now: RunMicros) -> IntervalSnapshot {
        self.closed.add(&self.interval);
        let histogram = std::mem::take(&mut self.interval);
        let start = std::mem::replace(&mut self.interval_start, now);
        IntervalSnapshot { start, end: now, histogram }
    }

    /// Adds an interval closed by another recorder (a worker's) to this recorder's current interval
    /// and overall histogram. The snapshot's own start/end are not kept: the parent reports on its
    /// own interval boundaries.
    pub fn add_interval(&mut self, snapshot: &IntervalSnapshot) {
        self.interval.add(&snapshot.histogram);
    }

    /// Merges another recorder's current interval and overall histogram into this one.
    pub fn merge<R: Borrow<Recorder>>(&mut self, other: R) {
        let other = other.borrow();
        self.interval.add(&other.interval);
        self.closed.add(&other.closed);
    }

    /// Latencies of the interval in progress (for the live progress line).
    pub fn current_interval(&self) -> &LatencyHistogram {
        &self.interval
    }

    /// When the interval in progress started.
    pub fn interval_start(&self) -> RunMicros {
        self.interval_start
    }

    /// Every latency recorded since the recorder was made. Cost: a copy of the closed intervals'
    /// histogram (~190 KiB) and one pass over the counters; for the end of a run, not per record.
    pub fn overall(&self) -> LatencyHistogram {
        let mut all = self.closed.clone();
        all.add(&self.interval);
        all
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as `.hlog` files use.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk.first(), chunk.get(1), chunk.get(2)].map(|b| b.copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 63;
            if i <= chunk.len() {
                out.push(char::from(B64.get(sextet as usize).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 with padding; `None` on any other byte, bad length or bad padding.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (q, quad) in text.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in quad.get(..4 - pad)? {
            let v = B64.iter().position(|&a| a == c)?;
            n = (n << 6) | u32::try_from(v).ok()?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(bytes.get(..3 - pad)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length_and_rejects_junk() {
        for len in 0..10u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(97).wrapping_add(200)).collect();
            let text = base64_encode(&bytes);
            assert_eq!(base64_decode(text.as_bytes()).unwrap(), bytes, "{text}");
        }
        assert_eq!(base64_encode(b"hdr"), "aGRy");
        assert_eq!(base64_encode(b"hd"), "aGQ=");
        for junk in [&b"aGQ"[..], b"a=Q=", b"aGQ=aGRy", b"aG!y", b"a==="] {
            assert!(base64_decode(junk).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn latencies_over_sixty_seconds_are_clamped_and_counted() {
        let mut h = LatencyHistogram::new();
        h.record(500);
        h.record(90_000_000);
        assert_eq!(h.count(), 2);
        assert_eq!(h.clamped(), 1);
        assert!(h.max_micros() >= HIGHEST_MICROS && h.max_micros() < HIGHEST_MICROS + HIGHEST_MICROS / 1000);
    }

    #[test]
    fn rotate_hands_back_the_interval_and_keeps_the_overall() {
        let mut r = Recorder::new(RunMicros::ZERO);
        r.record_delivery(RunMicros::from_millis(10), RunMicros::from_millis(13));
        let first = r.rotate(RunMicros::from_millis(1_000));
        assert_eq!((first.start, first.end), (RunMicros::ZERO, RunMicros::from_millis(1_000)));
        assert_eq!(first.histogram.count(), 1);
        assert!(r.current_interval().count() == 0 && r.overall().count() == 1);
        assert_eq!(r.interval_start(), RunMicros::from_millis(1_000));
    }

    #[test]
    fn the_overall_histogram_is_every_record_whether_its_interval_closed_or_not() {
        let mut r = Recorder::new(RunMicros::ZERO);
        let mut direct = LatencyHistogram::new();
        for (i, micros) in [3_000, 70, 250_000, 9, 1_200, 61_000_000].into_iter().enumerate() {
            r.record_micros(micros);
            direct.record(micros);
            if i % 2 == 1 {
                let _ = r.rotate(RunMicros::from_millis(i as u64));
            }
            assert_eq!(r.overall(), direct, "after {} records", i + 1);
        }
        assert_eq!(r.overall().clamped(), 1);
    }
}
