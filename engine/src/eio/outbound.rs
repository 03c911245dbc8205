//! Outbound packets as shared bytes: what a session queues and what its transports write.
//!
//! Hot path. A broadcast encodes its Engine.IO packet (and, optionally, its WebSocket frame) once into
//! refcounted [`Bytes`]; queueing it on a recipient clones two refcounts, never the bytes.

use crate::eio::packet::{encode_base64_into, PacketType};
use bytes::{Bytes, BytesMut};

/// One packet on its way to a client.
///
/// Invariant: a text packet's bytes are a whole Engine.IO text packet, type digit included
/// (`b"42[\"ev\",1]"`, `b"2"`); a binary packet's bytes are the raw message, with no type byte.
///
/// Size: 72 bytes (two `Bytes` and a flag); cloning costs two refcount increments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutPacket {
    packet: Bytes,
    ws_frame: Option<Bytes>,
    binary: bool,
}

// The per-recipient cost of a queued broadcast packet; keep it from growing unnoticed.
const _: () = assert!(std::mem::size_of::<OutPacket>() <= 72);

impl OutPacket {
    /// A text packet: `packet` is the full Engine.IO packet, type digit first (e.g. `4` + a Socket.IO
    /// packet). Contract: the first byte is `0`–`6`; the session does not re-check what it sends.
    pub fn text(packet: Bytes) -> OutPacket {
        debug_assert!(packet.first().is_some_and(|b| PacketType::from_digit(*b).is_some()));
        OutPacket { packet, ws_frame: None, binary: false }
    }

    /// A binary message: `data` is the raw payload (WebSocket binary frame; `b<base64>` on polling).
    pub fn binary(data: Bytes) -> OutPacket {
        OutPacket { packet: data, ws_frame: None, binary: true }
    }

    /// A data-less control packet (`2`, `6`, `1`, ...) from static bytes: no allocation.
    pub fn control(packet_type: PacketType) -> OutPacket {
        let packet: &'static [u8] = match packet_type {
            PacketType::Open => b"0",
            PacketType::Close => b"1",
            PacketType::Ping => b"2",
            PacketType::Pong => b"3",
            PacketType::Message => b"4",
            PacketType::Upgrade => b"5",
            PacketType::Noop => b"6",
        };
        OutPacket::text(Bytes::from_static(packet))
    }

    /// `3probe`, the answer to `2probe` on an upgrade candidate.
    pub fn pong_probe() -> OutPacket {
        OutPacket::text(Bytes::from_static(b"3probe"))
    }

    /// Attaches the complete WebSocket frame for this packet, built once by the caller for every
    /// recipient of a broadcast. The session only carries it; the server writes it instead of framing
    /// [`OutPacket::packet`] itself. Contract: the frame's payload is this packet (text frame for a text
    /// packet, binary frame for a binary one).
    pub fn with_ws_frame(mut self, frame: Bytes) -> OutPacket {
        self.ws_frame = Some(frame);
        self
    }

    /// The pre-built WebSocket frame, moved out (no refcount traffic), or the packet back if it has
    /// none.
    pub fn into_ws_frame(self) -> Result<Bytes, OutPacket> {
        match self.ws_frame {
            Some(frame) => Ok(frame),
            None => Err(self),
        }
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The packet bytes: the whole text packet, or the raw binary payload.
    pub fn packet(&self) -> &Bytes {
        &self.packet
    }

    /// The pre-built WebSocket frame, if the caller attached one.
    pub fn ws_frame(&self) -> Option<&Bytes> {
        self.ws_frame.as_ref()
    }

    /// The packet type: `Message` for binary, else the leading digit (`None` only if the
    /// [`OutPacket::text`] contract was broken).
    pub fn packet_type(&self) -> Option<PacketType> {
        if self.binary {
            return Some(PacketType::Message);
        }
        self.packet.first().and_then(|b| PacketType::from_digit(*b))
    }

    /// Length of this packet in text form (`b` + padded base64 for binary).
    pub fn text_len(&self) -> usize {
        if self.binary {
            1 + self.packet.len().div_ceil(3) * 4
        } else {
            self.packet.len()
        }
    }

    /// Appends the text form of this packet to `out`: the packet bytes for text, `b<base64>` for binary.
    /// Used for polling payloads and for WebSocket clients that asked for `b64=1`.
    pub fn encode_text(&self, out: &mut BytesMut) {
        if self.binary {
            out.reserve(self.text_len());
            out.extend_from_slice(b"b");
            encode_base64_into(&self.packet, out);
        } else {
            out.extend_from_slice(&self.packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packet_keeps_its_bytes_and_shares_them() {
        let shared = Bytes::from_static(b"42[\"ev\",1]");
        let packet = OutPacket::text(shared.clone());
        let copy = packet.clone();
        assert_eq!(packet.packet().as_ptr(), copy.packet().as_ptr(), "clone must not copy the bytes");
        assert_eq!(packet.packet_type(), Some(PacketType::Message));
        let mut out = BytesMut::new();
        packet.encode_text(&mut out);
        assert_eq!(&out[..], b"42[\"ev\",1]");
    }

    #[test]
    fn binary_packet_is_base64_in_text_form_and_carries_its_frame() {
        let packet = OutPacket::binary(Bytes::from_static(&[1, 2, 3, 4]))
            .with_ws_frame(Bytes::from_static(&[0x82, 4, 1, 2, 3, 4]));
        let mut out = BytesMut::new();
        packet.encode_text(&mut out);
        assert_eq!(&out[..], b"bAQIDBA==");
        assert_eq!(packet.text_len(), out.len());
        assert_eq!(packet.ws_frame().map(|f| &f[..]), Some(&[0x82, 4, 1, 2, 3, 4][..]));
    }

    #[test]
    fn control_packets_are_their_digit() {
        let mut out = BytesMut::new();
        for ty in [PacketType::Close, PacketType::Ping, PacketType::Noop] {
            OutPacket::control(ty).encode_text(&mut out);
        }
        OutPacket::pong_probe().encode_text(&mut out);
        assert_eq!(&out[..], b"1263probe");
    }
}
