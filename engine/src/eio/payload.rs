//! Polling payloads: packets joined by the record separator `\x1e` (reference notes §1.4).
//!
//! **Decoding takes a complete body.** The HTTP layer collects a POST body up to `maxHttpBufferSize`
//! (answering 413 beyond it, without involving the session), so the decoder sees the whole payload at once
//! and needs no carry-over. It iterates over the records in place and never allocates.
//!
//! Encoding writes a GET response body from queued [`OutPacket`]s into a caller-owned buffer, binary always
//! as `b<base64>` (the reference never sends raw bytes in a poll response).

use crate::eio::outbound::OutPacket;
use crate::eio::packet::Packet;
use crate::error::{Error, PeerMisbehaved};
use bytes::BytesMut;

/// The record separator between packets of a polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Iterator over the packets of a complete polling payload.
///
/// Yields each packet in order; at the first invalid record it yields that error once and then stops,
/// like engine.io-parser's `decodePayload`: the packets before it are valid and are to be delivered, then
/// the session closes with `parse error`. An empty body is one empty record, so it yields one error.
///
/// Each record must be UTF-8 (the reference reads the body as a UTF-8 string); a record that is not is an
/// `EioParse` error. Cost: O(body) in total (separator search, UTF-8 check, base64 validation), no allocation.
#[derive(Debug, Clone)]
pub struct PayloadDecoder<'a> {
    /// The records not yet yielded; `None` once finished.
    rest: Option<&'a [u8]>,
}

impl<'a> PayloadDecoder<'a> {
    /// A decoder over a complete POST body.
    pub fn new(body: &'a [u8]) -> PayloadDecoder<'a> {
        PayloadDecoder { rest: Some(body) }
    }
}

impl<'a> Iterator for PayloadDecoder<'a> {
    type Item = Result<Packet<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let (record, after) = match rest.iter().position(|&b| b == RECORD_SEPARATOR) {
            Some(at) => (rest.get(..at).unwrap_or_default(), rest.get(at + 1..)),
            None => (rest, None),
        };
        self.rest = after;
        let decoded = match std::str::from_utf8(record) {
            Ok(_) => Packet::decode_text(record),
            Err(_) => Err(PeerMisbehaved::EioParse("payload record is not UTF-8").into()),
        };
        if decoded.is_err() {
            self.rest = None;
        }
        Some(decoded)
    }
}

/// Appends the payload carrying `packets` to `out`: their text forms joined by `\x1e`.
///
/// Cost: one pass to size the body, one reserve, one pass to write; no other allocation.
pub fn encode_payload<'p, I>(packets: I, out: &mut BytesMut)
where
    I: IntoIterator<Item = &'p OutPacket>,
    I::IntoIter: Clone,
{
    let packets = packets.into_iter();
    let size: usize = packets.clone().map(|p| p.text_len() + 1).sum();
    out.reserve(size.saturating_sub(1));
    for (i, packet) in packets.enumerate() {
        if i > 0 {
            out.extend_from_slice(&[RECORD_SEPARATOR]);
        }
        packet.encode_text(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eio::packet::{PacketData, PacketType};
    use bytes::Bytes;
    use proptest::strategy::Strategy as _;

    fn decode_all(body: &[u8]) -> Vec<Result<Packet<'_>, Error>> {
        PayloadDecoder::new(body).collect()
    }

    fn text(ty: PacketType, data: &[u8]) -> Packet<'_> {
        Packet { packet_type: ty, data: PacketData::Text(data) }
    }

    #[test]
    fn several_text_packets_decode_in_order() {
        let packets = decode_all(b"4test1\x1e4test2\x1e4test3");
        assert_eq!(
            packets,
            vec![
                Ok(text(PacketType::Message, b"test1")),
                Ok(text(PacketType::Message, b"test2")),
                Ok(text(PacketType::Message, b"test3")),
            ]
        );
    }

    #[test]
    fn text_and_base64_binary_decode() {
        let packets = decode_all(b"4hello\x1ebAQIDBA==");
        assert_eq!(
            packets,
            vec![
                Ok(text(PacketType::Message, b"hello")),
                Ok(Packet { packet_type: PacketType::Message, data: PacketData::Base64(b"AQIDBA==") }),
            ]
        );
    }

    #[test]
    fn noop_then_close_and_heartbeats_decode() {
        assert_eq!(
            decode_all(b"6\x1e1"),
            vec![Ok(text(PacketType::Noop, b"")), Ok(text(PacketType::Close, b""))]
        );
        assert_eq!(decode_all(b"3"), vec![Ok(text(PacketType::Pong, b""))]);
        assert_eq!(decode_all(b"2probe"), vec![Ok(text(PacketType::Ping, b"probe"))]);
    }

    #[test]
    fn decoding_stops_at_the_first_invalid_record() {
        let packets = decode_all(b"4a\x1eabc\x1e4b");
        assert_eq!(packets.len(), 2, "nothing after the error: {packets:?}");
        assert_eq!(packets[0], Ok(text(PacketType::Message, b"a")));
        assert!(matches!(packets[1], Err(Error::PeerMisbehaved(PeerMisbehaved::EioParse(_)))));
    }

    #[test]
    fn empty_bodies_records_bad_base64_and_bad_utf8_are_errors() {
        for body in [&b""[..], b"4a\x1e", b"\x1e4a", b"b@@@@", b"4\xff\xfe"] {
            let packets = decode_all(body);
            assert!(packets.last().is_some_and(|p| p.is_err()), "{body:?} gave {packets:?}");
        }
    }

    #[test]
    fn encoded_payloads_match_the_reference_bytes() {
        let mut out = BytesMut::new();
        let packets = [
            OutPacket::text(Bytes::from_static(b"4hello")),
            OutPacket::binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        encode_payload(&packets, &mut out);
        assert_eq!(&out[..], b"4hello\x1ebAQIDBA==");

        out.clear();
        let packets = [OutPacket::control(PacketType::Noop), OutPacket::control(PacketType::Close)];
        encode_payload(&packets, &mut out);
        assert_eq!(&out[..], b"6\x1e1");

        out.clear();
        encode_payload(&[OutPacket::control(PacketType::Ping)], &mut out);
        assert_eq!(&out[..], b"2");
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let packets: Vec<OutPacket> = ["4test1", "4test2", "4test3"]
            .iter()
            .map(|t| OutPacket::text(Bytes::from_static(t.as_bytes())))
            .collect();
        let mut out = BytesMut::new();
        encode_payload(&packets, &mut out);
        assert_eq!(&out[..], b"4test1\x1e4test2\x1e4test3");
        assert_eq!(decode_all(&out).len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn any_text_and_binary_packets_round_trip_through_a_payload(
            packets in proptest::collection::vec(
                proptest::prop_oneof![
                    "[^\x1e]{0,40}".prop_map(|t| (false, format!("4{t}").into_bytes())),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40).prop_map(|b| (true, b)),
                ],
                1..8,
            )
        ) {
            let out_packets: Vec<OutPacket> = packets
                .iter()
                .map(|(binary, bytes)| {
                    let bytes = Bytes::copy_from_slice(bytes);
                    if *binary { OutPacket::binary(bytes) } else { OutPacket::text(bytes) }
                })
                .collect();
            let mut body = BytesMut::new();
            encode_payload(&out_packets, &mut body);
            let decoded: Vec<_> = PayloadDecoder::new(&body).collect();
            proptest::prop_assert_eq!(decoded.len(), packets.len());
            for (got, (binary, bytes)) in decoded.into_iter().zip(&packets) {
                let got = got.unwrap();
                match got.data {
                    PacketData::Text(text) => {
                        proptest::prop_assert!(!binary);
                        proptest::prop_assert_eq!(text, &bytes[1..]);
                    }
                    PacketData::Base64(encoded) => {
                        proptest::prop_assert!(binary);
                        let mut raw = BytesMut::new();
                        crate::eio::packet::decode_base64_into(encoded, &mut raw).unwrap();
                        proptest::prop_assert_eq!(&raw[..], &bytes[..]);
                    }
                    PacketData::Binary(_) => proptest::prop_assert!(false, "raw binary in a payload"),
                }
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics_and_stops_after_an_error(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)
        ) {
            let decoded: Vec<_> = PayloadDecoder::new(&body).collect();
            let first_error = decoded.iter().position(|p| p.is_err());
            if let Some(at) = first_error {
                proptest::prop_assert_eq!(at + 1, decoded.len());
            }
        }
    }
}
