//! WebSocket codec: decoding masked client frames and building a broadcast frame once.
//!
//! Each group has a baseline measured in the same run: for decoding, `str::from_utf8` over the payload
//! (work any text decoder must do); for building, one allocation plus a copy of the payload (the floor
//! for a frame that owns its bytes). Results are read as ratios to the baseline.
//!
//! Run: `cargo bench -p roomcast-benches --bench ws`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use roomcast_engine::ws::{prebuilt_text_frame, FrameDecoder, WsEvent};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A Socket.IO-looking text payload of exactly `len` ASCII bytes.
fn event_payload(len: usize) -> Vec<u8> {
    let mut payload = br#"42["chat",{"room":"lobby","text":""#.to_vec();
    payload.resize(len.saturating_sub(3), b'x');
    payload.extend_from_slice(br#""}]"#);
    payload.truncate(len);
    payload
}

/// A masked, final text frame as a client sends it.
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// Decodes every event in `chunks` (one read each); returns the text bytes seen.
fn decode_reads(decoder: &mut FrameDecoder, chunks: &mut [Vec<u8>]) -> usize {
    let mut text_bytes = 0;
    for chunk in chunks {
        let result = decoder.handle_bytes(chunk, |event| {
            if let WsEvent::Text(text) = event {
                text_bytes += black_box(text).len();
            }
            Ok(())
        });
        assert!(result.is_ok());
    }
    text_bytes
}

fn decode_masked_client_frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_decode_masked_text");
    for size in [50, 4096] {
        let payload = event_payload(size);
        let frame = client_text_frame(&payload);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        let mut decoder = FrameDecoder::new(1 << 20);
        group.bench_with_input(BenchmarkId::new("one_read", size), &frame, |b, frame| {
            b.iter_batched_ref(
                || vec![frame.clone()],
                |reads| decode_reads(&mut decoder, reads),
                BatchSize::SmallInput,
            )
        });
        let (first, second) = frame.split_at(frame.len() / 2);
        group.bench_function(BenchmarkId::new("two_reads", size), |b| {
            b.iter_batched_ref(
                || vec![first.to_vec(), second.to_vec()],
                |reads| decode_reads(&mut decoder, reads),
                BatchSize::SmallInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("baseline_from_utf8", size), &payload, |b, payload| {
            b.iter(|| std::str::from_utf8(black_box(payload)).map(str::len))
        });
    }
    group.finish();
}

fn build_broadcast_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_broadcast_frame_build");
    for size in [100, 16 * 1024] {
        let packet = event_payload(size);
        group.throughput(Throughput::Bytes(size as u64 + 1));
        group.bench_with_input(BenchmarkId::new("prebuilt_text_frame", size), &packet, |b, packet| {
            b.iter(|| prebuilt_text_frame(&[b"4", black_box(packet)]))
        });
        group.bench_with_input(BenchmarkId::new("baseline_alloc_copy", size), &packet, |b, packet| {
            b.iter(|| {
                let mut owned = Vec::with_capacity(packet.len() + 1);
                owned.push(b'4');
                owned.extend_from_slice(black_box(packet));
                owned
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = decode_masked_client_frames, build_broadcast_frame
}
criterion_main!(benches);
