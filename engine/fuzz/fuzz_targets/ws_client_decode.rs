#![no_main]
//! Feeds server bytes to the client role's `ws::FrameDecoder::new_client` (what roomcast-loadgen reads
//! every WebSocket with) whole and in chunks, and checks that both runs give the same events and the
//! same error, that errors are the peer's fault, that `decode` keeps its progress contract, and that no
//! data message is longer than the limit.
//!
//! Input layout, as in `ws_decode`: byte 0 = `k | limit << 3` where `k` (0–7) is the number of
//! chunk-size bytes that follow and `limit` picks the message size limit from `LIMITS`; then `k` bytes,
//! each a chunk size minus one (cycled; no bytes means one byte at a time); the rest is the byte stream
//! from the server.
use libfuzzer_sys::fuzz_target;
use roomcast_engine::ws::{FrameDecoder, WsEvent};
use roomcast_engine::Error;

const LIMITS: [usize; 4] = [0, 100, 4096, 1 << 20];

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn owned(event: WsEvent<'_>, limit: usize) -> Owned {
    match event {
        WsEvent::Text(text) => {
            assert!(text.len() <= limit, "text message of {} bytes over the limit {limit}", text.len());
            Owned::Text(text.to_owned())
        }
        WsEvent::Binary(bytes) => {
            assert!(bytes.len() <= limit, "binary message of {} bytes over the limit {limit}", bytes.len());
            Owned::Binary(bytes.to_vec())
        }
        WsEvent::Ping(bytes) => Owned::Ping(bytes.to_vec()),
        WsEvent::Pong(bytes) => Owned::Pong(bytes.to_vec()),
        WsEvent::Close { code, reason } => Owned::Close(code, reason.to_owned()),
    }
}

fn decode_in_chunks(limit: usize, stream: &[u8], sizes: &[usize]) -> (Vec<Owned>, Option<Error>) {
    let mut decoder = FrameDecoder::new_client(limit);
    let mut stream = stream.to_vec();
    let mut events = Vec::new();
    let mut rest = &mut stream[..];
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at_mut((*size).clamp(1, rest.len()));
        rest = tail;
        let mut offset = 0;
        loop {
            let len = chunk.len() - offset;
            let decoded = match decoder.decode(&mut chunk[offset..]) {
                Ok(decoded) => decoded,
                Err(error) => {
                    assert!(error.is_peer_fault(), "network bytes caused a non-peer error: {error:?}");
                    return (events, Some(error));
                }
            };
            assert!(decoded.consumed <= len);
            offset += decoded.consumed;
            match decoded.event {
                Some(event) => events.push(owned(event, limit)),
                None => {
                    assert_eq!(decoded.consumed, len, "no event but input left over");
                    break;
                }
            }
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let size_bytes = usize::from(control & 7).min(rest.len());
    let limit = LIMITS[usize::from(control >> 3) % LIMITS.len()];
    let (size_spec, stream) = rest.split_at(size_bytes);
    let mut sizes: Vec<usize> = size_spec.iter().map(|b| usize::from(*b) + 1).collect();
    if sizes.is_empty() {
        sizes.push(1);
    }
    let whole = decode_in_chunks(limit, stream, &[stream.len().max(1)]);
    let chunked = decode_in_chunks(limit, stream, &sizes);
    assert_eq!(whole, chunked, "chunk sizes {sizes:?}");
});
