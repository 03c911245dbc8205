//! Engine.IO v4 packets: one packet per WebSocket frame, or one record of a polling payload.
//!
//! A text packet is `<type digit><data>`; `b<base64>` is a binary `message`; a WebSocket binary frame is a
//! binary `message` with no type byte (reference notes §1.4). Decoding borrows from the input and never
//! allocates: a `b<base64>` record is validated in fixed-size chunks on the stack and handed back still
//! encoded, so the caller decides where (and whether) the decoded bytes live.

use crate::error::{Error, PeerMisbehaved};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::BytesMut;

/// The seven Engine.IO packet types, in wire-digit order (`0`..=`6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: the handshake, sent by the server only.
    Open,
    /// `1`: close the session (client over polling; the server over polling when it closes).
    Close,
    /// `2`: heartbeat request, server to client (plus `2probe` from the client on an upgrade candidate).
    Ping,
    /// `3`: heartbeat answer, client to server (plus `3probe` from the server on an upgrade candidate).
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: the client switches to the upgrade candidate.
    Upgrade,
    /// `6`: nothing; ends a held polling GET.
    Noop,
}

impl PacketType {
    /// The type for a wire digit `b'0'..=b'6'`, `None` for anything else.
    pub const fn from_digit(digit: u8) -> Option<PacketType> {
        Some(match digit {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub const fn digit(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }
}

/// The data of a decoded packet, borrowed from the decoder's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketData<'a> {
    /// The text after the type digit (may be empty). Not checked for UTF-8 here: the WebSocket layer
    /// checks text frames and the polling payload decoder checks each record.
    Text(&'a [u8]),
    /// A binary message still base64-encoded (the part after `b`); already checked to be valid base64.
    Base64(&'a [u8]),
    /// A binary message as raw bytes (a WebSocket binary frame).
    Binary(&'a [u8]),
}

/// One decoded Engine.IO packet. Invariant: `Base64` and `Binary` data only come with `Message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The packet type.
    pub packet_type: PacketType,
    /// The payload, borrowed from the input.
    pub data: PacketData<'a>,
}

/// Standard-alphabet base64, as engine.io-parser writes it. Decoding is lenient where Node's decoder is
/// (missing padding, non-zero trailing bits) but rejects characters outside the alphabet.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Base64 characters decoded per stack chunk (a multiple of 4, so chunks split on group boundaries).
const BASE64_CHUNK: usize = 1024;

/// Decodes `encoded` chunk by chunk, handing each decoded chunk to `sink`. Returns the decoded length.
///
/// Cost: O(n), a 768-byte stack buffer, no allocation. Padding is only accepted at the very end.
pub(crate) fn decode_base64_chunks(encoded: &[u8], mut sink: impl FnMut(&[u8])) -> Result<usize, Error> {
    const BAD: Error = Error::PeerMisbehaved(PeerMisbehaved::EioParse("invalid base64 in binary packet"));
    let mut scratch = [0u8; BASE64_CHUNK / 4 * 3];
    let mut total = 0usize;
    let mut chunks = encoded.chunks(BASE64_CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        let is_last = chunks.peek().is_none();
        if !is_last && chunk.last() == Some(&b'=') {
            return Err(BAD);
        }
        let written = BASE64.decode_slice(chunk, &mut scratch).map_err(|_| BAD)?;
        sink(scratch.get(..written).unwrap_or_default());
        total += written;
    }
    Ok(total)
}

/// Decodes base64 `encoded` (already validated or not) into `out`, reserving the decoded size once.
pub(crate) fn decode_base64_into(encoded: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    out.reserve(encoded.len().div_ceil(4) * 3);
    decode_base64_chunks(encoded, |chunk| out.extend_from_slice(chunk)).map(|_| ())
}

/// Appends the padded base64 of `raw` to `out`. Cost: one reserve, O(n).
pub(crate) fn encode_base64_into(raw: &[u8], out: &mut BytesMut) {
    let start = out.len();
    let encoded_len = raw.len().div_ceil(3) * 4;
    out.resize(start + encoded_len, 0);
    if let Some(dest) = out.get_mut(start..) {
        // Cannot fail: `dest` is exactly the padded encoded length.
        let written = BASE64.encode_slice(raw, dest).unwrap_or(0);
        out.truncate(start + written);
    }
}

impl<'a> Packet<'a> {
    /// Decodes a text packet: a WebSocket text frame or one record of a polling payload.
    ///
    /// Errors (`PeerMisbehaved::EioParse`): empty input, a first byte other than `0`–`6` or `b`, invalid
    /// base64 after `b`. Cost: O(1) for typed packets, O(n) without allocation for `b<base64>`.
    pub fn decode_text(input: &'a [u8]) -> Result<Packet<'a>, Error> {
        let Some((&first, rest)) = input.split_first() else {
            return Err(PeerMisbehaved::EioParse("empty packet").into());
        };
        if first == b'b' {
            decode_base64_chunks(rest, |_| {})?;
            return Ok(Packet { packet_type: PacketType::Message, data: PacketData::Base64(rest) });
        }
        match PacketType::from_digit(first) {
            Some(packet_type) => Ok(Packet { packet_type, data: PacketData::Text(rest) }),
            None => Err(PeerMisbehaved::EioParse("unknown packet type").into()),
        }
    }

    /// Decodes a WebSocket binary frame: always a binary `message`, whatever its bytes. Never fails.
    pub fn decode_binary(input: &'a [u8]) -> Packet<'a> {
        Packet { packet_type: PacketType::Message, data: PacketData::Binary(input) }
    }

    /// Whether this is a binary message (raw or base64).
    pub fn is_binary(&self) -> bool {
        matches!(self.data, PacketData::Base64(_) | PacketData::Binary(_))
    }

    /// Appends the text form of this packet to `out`: `<digit><data>`, or `b<base64>` for a binary
    /// message (the only form a polling payload or a `b64=1` WebSocket may carry).
    pub fn encode_text(&self, out: &mut BytesMut) {
        match self.data {
            PacketData::Text(text) => {
                out.reserve(1 + text.len());
                out.extend_from_slice(&[self.packet_type.digit()]);
                out.extend_from_slice(text);
            }
            PacketData::Base64(encoded) => {
                out.reserve(1 + encoded.len());
                out.extend_from_slice(b"b");
                out.extend_from_slice(encoded);
            }
            PacketData::Binary(raw) => {
                out.reserve(1 + raw.len().div_ceil(3) * 4);
                out.extend_from_slice(b"b");
                encode_base64_into(raw, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &[u8]) -> Result<Packet<'_>, Error> {
        Packet::decode_text(input)
    }

    #[test]
    fn every_type_digit_round_trips() {
        for digit in b'0'..=b'6' {
            let ty = PacketType::from_digit(digit).unwrap();
            assert_eq!(ty.digit(), digit);
        }
        assert_eq!(PacketType::from_digit(b'7'), None);
    }

    #[test]
    fn heartbeat_and_upgrade_golden_vectors_decode() {
        let cases: [(&[u8], PacketType, &[u8]); 6] = [
            (b"2", PacketType::Ping, b""),
            (b"3", PacketType::Pong, b""),
            (b"2probe", PacketType::Ping, b"probe"),
            (b"3probe", PacketType::Pong, b"probe"),
            (b"5", PacketType::Upgrade, b""),
            (b"4hello", PacketType::Message, b"hello"),
        ];
        for (input, ty, data) in cases {
            assert_eq!(text(input).unwrap(), Packet { packet_type: ty, data: PacketData::Text(data) });
            let mut out = BytesMut::new();
            text(input).unwrap().encode_text(&mut out);
            assert_eq!(&out[..], input, "re-encoding {input:?}");
        }
    }

    #[test]
    fn base64_binary_message_decodes_to_its_bytes() {
        let packet = text(b"bAQIDBA==").unwrap();
        assert_eq!(packet.packet_type, PacketType::Message);
        assert!(packet.is_binary());
        let PacketData::Base64(encoded) = packet.data else { panic!("not base64: {packet:?}") };
        let mut out = BytesMut::new();
        decode_base64_into(encoded, &mut out).unwrap();
        assert_eq!(&out[..], &[1, 2, 3, 4]);
        // Node accepts unpadded base64, so do we.
        assert!(text(b"bAQIDBA").is_ok());
        assert!(text(b"b").is_ok(), "an empty binary message is valid");
    }

    #[test]
    fn invalid_packets_are_parse_errors() {
        let parse_error =
            |input: &[u8]| matches!(text(input), Err(Error::PeerMisbehaved(PeerMisbehaved::EioParse(_))));
        assert!(parse_error(b""), "empty");
        assert!(parse_error(b"abc"), "bad type char");
        assert!(parse_error(b"7"), "type out of range");
        assert!(parse_error(b"b!!!!"), "bad base64 alphabet");
        assert!(parse_error(b"bA"), "one dangling base64 char");
        assert!(parse_error(b"bAQ==AQID"), "padding in the middle");
    }

    #[test]
    fn long_base64_is_decoded_across_chunks_and_padding_only_counts_at_the_end() {
        let raw: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let mut encoded = BytesMut::new();
        encode_base64_into(&raw, &mut encoded);
        let mut decoded = BytesMut::new();
        decode_base64_into(&encoded, &mut decoded).unwrap();
        assert_eq!(&decoded[..], &raw[..]);

        // 1024 chars ending in padding, then more: padding inside the stream is rejected.
        let mut padded_middle = vec![b'A'; BASE64_CHUNK - 2];
        padded_middle.extend_from_slice(b"==AAAA");
        assert!(decode_base64_chunks(&padded_middle, |_| {}).is_err());
    }

    #[test]
    fn websocket_binary_frame_is_a_binary_message_and_encodes_as_base64_text() {
        let packet = Packet::decode_binary(&[1, 2, 3, 4]);
        assert_eq!(packet.packet_type, PacketType::Message);
        let mut out = BytesMut::new();
        packet.encode_text(&mut out);
        assert_eq!(&out[..], b"bAQIDBA==");
    }
}
