//! Socket.IO codec: event encode and decode with a 100-byte and a 4 KiB JSON argument.
//!
//! Baselines in the same run: encode is compared with copying the finished packet bytes into a warm
//! buffer (the floor of any encoder that copies its arguments once); decode with `str::from_utf8` over
//! the packet (one validating pass, which the WebSocket layer already pays for text frames).
//!
//! Run: `cargo bench -p roomcast-benches --bench sio`.
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roomcast_engine::sio::{decode, encode_event, event_message, Limits};

/// A compact chat-message object of exactly `len` bytes (for `len` ≥ 80).
fn message_object(len: usize, seq: usize) -> String {
    let head = format!(r#"{{"user":"alice{seq}","room":"lobby","ts":1700000000{seq:03},"text":""#);
    let tail = r#""}"#;
    let filler = "hello é \\\"world\\\" 😀 ".chars().cycle();
    let mut text = String::new();
    for c in filler {
        if head.len() + text.len() + c.len_utf8() + tail.len() > len {
            break;
        }
        text.push(c);
    }
    // Trailing backslash would escape the closing quote; pad with plain ASCII instead.
    while text.ends_with('\\') {
        text.pop();
    }
    while head.len() + text.len() + tail.len() < len {
        text.push('.');
    }
    format!("{head}{text}{tail}")
}

/// A JSON argument of exactly `len` bytes: one object for small sizes, an array of objects otherwise.
fn json_arg(len: usize) -> String {
    if len <= 200 {
        return message_object(len, 0);
    }
    // `[` + k objects of 200 bytes, each followed by `,` + one last object + `]`.
    let mut parts = Vec::new();
    let mut used = 2;
    while len - used > 300 {
        parts.push(message_object(200, parts.len()));
        used += 201;
    }
    parts.push(message_object(len - used, parts.len()));
    format!("[{}]", parts.join(","))
}

fn codec(c: &mut Criterion) {
    for (label, len) in [("100B", 100), ("4KiB", 4096)] {
        let arg = json_arg(len);
        assert_eq!(arg.len(), len, "argument size");
        let args: [&[u8]; 1] = [arg.as_bytes()];
        let packet = event_message("/", None, "message", &args);
        let text = &packet[1..];
        assert!(decode(text, &Limits::default()).is_ok());

        let mut group = c.benchmark_group("sio/encode_event");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("baseline_memcpy", label), |b| {
            let mut out = Vec::with_capacity(text.len());
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(text));
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("warm_buffer", label), |b| {
            let mut out = Default::default();
            encode_event("/", None, "message", &args, &mut out);
            b.iter(|| {
                out.clear();
                encode_event("/", None, black_box("message"), black_box(&args), &mut out);
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("eio_message_fresh_bytes", label), |b| {
            b.iter(|| event_message("/", None, black_box("message"), black_box(&args)))
        });
        group.finish();

        let mut group = c.benchmark_group("sio/decode_event");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("baseline_from_utf8", label), |b| {
            b.iter(|| std::str::from_utf8(black_box(text)).is_ok())
        });
        group.bench_function(BenchmarkId::new("decode_and_name", label), |b| {
            let limits = Limits::default();
            b.iter(|| {
                let packet = decode(black_box(text), &limits).ok()?;
                packet.event_name().map(|n| n.len())
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = codec
}
criterion_main!(benches);
