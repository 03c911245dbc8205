//! Codec tests: golden byte vectors from the protocol notes, rejections, binary reassembly, and
//! property-based round trips.

mod binary;
mod golden;
mod rejections;
mod roundtrip;

use super::{decode, Limits, Packet};
use bytes::BytesMut;

/// The Socket.IO packet inside an Engine.IO message as the notes write it (`42[...]` → `2[...]`).
fn sio(eio_message: &str) -> &[u8] {
    eio_message.as_bytes().strip_prefix(b"4").expect("an Engine.IO message starts with 4")
}

fn decoded(text: &[u8]) -> Packet<'_> {
    match decode(text, &Limits::default()) {
        Ok(p) => p,
        Err(e) => panic!("{:?} rejected: {e}", String::from_utf8_lossy(text)),
    }
}

fn reencoded(packet: &Packet<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.encode(&mut out);
    assert_eq!(out.len(), packet.encoded_len());
    out.to_vec()
}
