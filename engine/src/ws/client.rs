//! The client role's encoder: masked frames (RFC 6455 §5.3), for a load generator or a test client.
//! The client role's decoder is [`FrameDecoder::new_client`](super::FrameDecoder::new_client).
//!
//! A client must mask every frame with a fresh 4-byte key. The key only guards against cache poisoning
//! by intermediaries that misread WebSocket traffic as HTTP; the server unmasks whatever key it is given,
//! so the caller picks the key (a test wants fixed ones, a load generator a cheap random one).

use bytes::{BufMut, BytesMut};

use super::header::unmask;
use super::{Opcode, MAX_CONTROL_PAYLOAD};
use crate::error::Error;

/// Longest header a client frame has: 2 bytes, an 8-byte extended length and the 4-byte masking key.
pub const MAX_CLIENT_HEADER_LEN: usize = 14;

/// Length of the header of a client frame carrying `payload_len` bytes (masking key included).
pub const fn client_header_len(payload_len: usize) -> usize {
    super::encode::header_len(payload_len) + 4
}

/// Appends one final (FIN) client frame: header with the mask bit and `mask_key`, then `payload` XORed
/// with the key. Fails with `Misuse`, writing nothing, for a control frame over 125 bytes or a
/// `Continuation` (this encoder writes whole messages only).
/// Cost: one reserve, one copy of `payload` and one masking pass over it, 8 bytes at a time.
pub fn encode_client_frame(
    opcode: Opcode,
    payload: &[u8],
    mask_key: [u8; 4],
    out: &mut BytesMut,
) -> Result<(), Error> {
    if opcode == Opcode::Continuation {
        return Err(Error::Misuse("encode_client_frame writes whole messages, not continuations"));
    }
    if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::Misuse("control frame must carry at most 125 bytes"));
    }
    out.reserve(client_header_len(payload.len()) + payload.len());
    let first = 0x80 | opcode.bits();
    match u16::try_from(payload.len()) {
        // The match arm guarantees the value fits the 7-bit length field.
        Ok(len @ 0..=125) => out.put_slice(&[first, 0x80 | len as u8]),
        Ok(len) => {
            out.put_slice(&[first, 0x80 | 126]);
            out.put_u16(len);
        }
        Err(_) => {
            out.put_slice(&[first, 0x80 | 127]);
            out.put_u64(payload.len() as u64);
        }
    }
    out.put_slice(&mask_key);
    let start = out.len();
    out.put_slice(payload);
    unmask(out.get_mut(start..).unwrap_or_default(), mask_key, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PeerMisbehaved;
    use crate::ws::decode_tests::{client_frame, Owned, MASK};
    use crate::ws::{encode_close, encode_frame, encode_ping, encode_text, FrameDecoder};

    fn encoded(opcode: Opcode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_client_frame(opcode, payload, key, &mut out).unwrap();
        out.to_vec()
    }

    /// Decodes `input` with a client-role decoder in chunks whose sizes cycle through `sizes`.
    fn client_decode(input: &[u8], sizes: &[usize]) -> (Vec<Owned>, Option<Error>) {
        let mut decoder = FrameDecoder::new_client(1 << 20);
        let mut input = input.to_vec();
        let mut events = Vec::new();
        let mut rest = &mut input[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at_mut((*size).clamp(1, rest.len()));
            rest = tail;
            if let Err(e) = decoder.handle_bytes(chunk, |event| {
                events.push(Owned::from(event));
                Ok(())
            }) {
                return (events, Some(e));
            }
        }
        (events, None)
    }

    /// Whole and one byte at a time (and an odd chunking) must agree.
    fn client_decode_every_way(input: &[u8]) -> (Vec<Owned>, Option<Error>) {
        let whole = client_decode(input, &[input.len().max(1)]);
        assert_eq!(client_decode(input, &[1]), whole, "byte by byte disagrees with whole");
        assert_eq!(client_decode(input, &[3, 1, 4, 1, 5]), whole, "odd chunks disagree with whole");
        whole
    }

    #[test]
    fn rfc6455_masked_hello_is_the_golden_client_frame() {
        // §5.7: a single-frame masked text message "Hello".
        let golden = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(encoded(Opcode::Text, b"Hello", MASK), golden);
    }

    #[test]
    fn client_frames_decode_on_the_server_side_at_every_length_form() {
        for len in [0usize, 1, 7, 8, 9, 125, 126, 1000, 65535, 65536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = encoded(Opcode::Binary, &payload, [9, 8, 7, 6]);
            assert_eq!(frame, client_frame(0x82, &payload, [9, 8, 7, 6]), "len {len}");
            let mut copy = frame.clone();
            let mut got = Vec::new();
            FrameDecoder::new(1 << 20)
                .handle_bytes(&mut copy, |e| {
                    got.push(Owned::from(e));
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, [Owned::Binary(payload)], "len {len}");
        }
    }

    #[test]
    fn forbidden_client_frames_are_misuse_and_write_nothing() {
        let mut out = BytesMut::new();
        let err = encode_client_frame(Opcode::Ping, &[0; 126], MASK, &mut out);
        assert!(matches!(err, Err(Error::Misuse(_))));
        let err = encode_client_frame(Opcode::Continuation, b"x", MASK, &mut out);
        assert!(matches!(err, Err(Error::Misuse(_))));
        assert!(out.is_empty());
    }

    #[test]
    fn client_role_decodes_server_frames_whole_and_byte_by_byte() {
        let mut input = BytesMut::new();
        encode_text("0{\"sid\":\"abc\"}", &mut input);
        encode_frame(Opcode::Text, false, b"42[\"m\",", &mut input).unwrap();
        encode_ping(b"hb", &mut input).unwrap();
        encode_frame(Opcode::Continuation, true, "\"€\"]".as_bytes(), &mut input).unwrap();
        encode_text(&"x".repeat(70_000), &mut input);
        encode_close(Some(1000), "bye", &mut input).unwrap();
        encode_text("ignored after close", &mut input);
        let (events, error) = client_decode_every_way(&input);
        assert_eq!(error, None);
        let expected = [
            Owned::Text("0{\"sid\":\"abc\"}".into()),
            Owned::Ping(b"hb".to_vec()),
            Owned::Text("42[\"m\",\"€\"]".into()),
            Owned::Text("x".repeat(70_000)),
            Owned::Close(Some(1000), "bye".into()),
        ];
        assert_eq!(events, expected);
    }

    #[test]
    fn client_role_refuses_masked_frames_and_keeps_the_other_rules() {
        let (events, error) = client_decode_every_way(&client_frame(0x81, b"Hello", MASK));
        assert_eq!((events, error.clone()), (vec![], Some(PeerMisbehaved::WsMasked.into())));
        assert_eq!(error.map(|e| e.ws_close_code()), Some(1002));
        // RSV bits and oversized messages are refused as on the server side.
        let (_, error) = client_decode_every_way(&[0xc1, 0x01, b'x']);
        assert_eq!(error.map(|e| e.ws_close_code()), Some(1002));
        let mut big = BytesMut::new();
        encode_text(&"y".repeat(100), &mut big);
        let mut decoder = FrameDecoder::new_client(99);
        let result = decoder.handle_bytes(&mut big.to_vec(), |_| Ok(()));
        assert_eq!(result.map_err(|e| e.ws_close_code()), Err(1009));
        // A text message that is not UTF-8.
        let (_, error) = client_decode_every_way(&[0x81, 0x02, 0xc0, 0xaf]);
        assert_eq!(error.map(|e| e.ws_close_code()), Some(1007));
    }

    #[test]
    fn server_role_is_unchanged_by_the_client_role() {
        let mut unmasked = BytesMut::new();
        encode_text("Hello", &mut unmasked);
        let result = FrameDecoder::new(1024).handle_bytes(&mut unmasked.to_vec(), |_| Ok(()));
        assert_eq!(result, Err(PeerMisbehaved::WsUnmasked.into()));
    }
}
