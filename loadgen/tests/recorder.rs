//! Recorders of several worker processes, merged through their serialized form, equal one recorder
//! that saw every latency.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

use roomcast_loadgen::latency::{IntervalSnapshot, LatencyHistogram, Recorder, RunMicros};

/// Latencies from 1 µs to ~60 s, spread over every order of magnitude (deterministic xorshift).
fn latencies(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let magnitude = x % 8; // 10^0 .. 10^7 µs
            (x >> 8) % 10u64.pow(magnitude as u32 + 1) + 1
        })
        .collect()
}

#[test]
fn merging_worker_recorders_equals_recording_everything_in_one() {
    let values = latencies(30_000);
    let mut single = LatencyHistogram::new();
    values.iter().for_each(|&v| single.record(v));

    // Three workers, each rotating an interval every 1 000 samples and sending it to the parent as
    // a JSON line; at the end each also sends its overall histogram in base64.
    let mut workers: Vec<Recorder> = (0..3).map(|_| Recorder::new(RunMicros::ZERO)).collect();
    let mut parent_from_intervals = Recorder::new(RunMicros::ZERO);
    for (i, &v) in values.iter().enumerate() {
        let w = &mut workers[i % 3];
        w.record_micros(v);
        if i % 1_000 == 999 {
            let snapshot = w.rotate(RunMicros::from_micros(i as u64));
            let line = serde_json::to_string(&snapshot).unwrap();
            let received: IntervalSnapshot = serde_json::from_str(&line).unwrap();
            assert_eq!(received, snapshot);
            parent_from_intervals.add_interval(&received);
        }
    }
    for w in &mut workers {
        let last = w.rotate(RunMicros::from_micros(1_000_000));
        parent_from_intervals.add_interval(&last);
    }

    let mut parent_from_overall = Recorder::new(RunMicros::ZERO);
    for w in &workers {
        let text = w.overall().to_base64().unwrap();
        let mut one = Recorder::new(RunMicros::ZERO);
        one.add_interval(&IntervalSnapshot {
            start: RunMicros::ZERO,
            end: RunMicros::ZERO,
            histogram: LatencyHistogram::from_base64(text.as_bytes()).unwrap(),
        });
        parent_from_overall.merge(one);
    }

    for merged in [parent_from_intervals.overall(), parent_from_overall.overall()] {
        assert_eq!(merged.as_hdr(), single.as_hdr());
        assert_eq!(merged.count(), 30_000);
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.quantile_micros(q), single.quantile_micros(q), "q={q}");
        }
    }
}

#[test]
fn merging_in_memory_keeps_both_the_interval_and_the_overall() {
    let mut a = Recorder::new(RunMicros::ZERO);
    let mut b = Recorder::new(RunMicros::ZERO);
    a.record_micros(100);
    a.rotate(RunMicros::from_millis(1_000));
    a.record_micros(200);
    b.record_micros(300);
    a.merge(&b);
    assert_eq!(a.current_interval().count(), 2);
    assert_eq!(a.overall().count(), 3);
}

#[test]
fn histograms_with_other_bounds_are_folded_into_ours() {
    // As written by another tool: µs up to an hour, 2 significant digits, uncompressed V2.
    let mut foreign = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
    foreign.record(5_000).unwrap();
    foreign.record(120_000_000).unwrap(); // 120 s: above our 60 s range
    let mut bytes = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2Serializer::new(),
        &foreign,
        &mut bytes,
    )
    .unwrap();
    let text = base64_standard(&bytes);
    let ours = LatencyHistogram::from_base64(text.as_bytes()).unwrap();
    assert_eq!(ours.count(), 2);
    assert_eq!(ours.clamped(), 1);
    assert!(LatencyHistogram::from_base64(b"SGVsbG8=").is_err(), "not a histogram");
    assert!(LatencyHistogram::from_base64(b"%%%%").is_err(), "not base64");
}

fn base64_standard(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(A[((n >> (18 - 6 * i)) & 63) as usize]) } else { '=' });
        }
    }
    out
}
