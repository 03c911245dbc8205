//! WebSocket (RFC 6455) framing, sans I/O: the server side, plus a client role for load generators and
//! test clients.
//!
//! - [`FrameDecoder`] turns bytes read from a client into [`WsEvent`]s: whole text/binary messages
//!   (fragments reassembled, text validated as UTF-8) and ping/pong/close control frames. It accepts any
//!   chunking, unmasks in place, and buffers at most one message of `max_message_size` bytes.
//! - [`encode`] writes unmasked server frames into a `BytesMut`; [`SharedFrame`] /
//!   [`prebuilt_text_frame`] build a whole broadcast frame once into one refcounted `Bytes` that every
//!   recipient's queue shares (the socket.io adapter's `wsPreEncodedFrame`, protocol notes §4.6).
//! - Client role: [`FrameDecoder::new_client`] reads server frames (unmasked; a masked one is an error)
//!   and [`encode_client_frame`] writes masked client frames.
//! - [`CloseHandshake`] tracks the closing handshake (RFC 6455 §7): what to send back when the peer
//!   closes, and the close frame for an [`Error`](crate::Error) that ends the connection.
//!
//! Not here: the HTTP upgrade (`Sec-WebSocket-Accept`, the 101 response) and extensions. We negotiate
//! none, so `permessage-deflate` frames (RSV1 set) are a protocol error.
//!
//! Reading loop of a connection (hot path; no allocation for messages that arrive whole in one read):
//!
//! ```
//! use roomcast_engine::ws::{FrameDecoder, WsEvent};
//!
//! let mut decoder = FrameDecoder::new(1_000_000);
//! // A masked text frame "Hello" (RFC 6455 §5.7), as read from the socket.
//! let mut read = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut offset = 0;
//! loop {
//!     let decoded = decoder.decode(&mut read[offset..])?;
//!     offset += decoded.consumed;
//!     match decoded.event {
//!         Some(WsEvent::Text(text)) => assert_eq!(text, "Hello"),
//!         Some(_) => {}
//!         None => break, // every byte consumed; the decoder keeps any partial frame
//!     }
//! }
//! // Or push-style: decoder.handle_bytes(&mut read, |event| { ...; Ok(()) })?
//! # Ok::<(), roomcast_engine::Error>(())
//! ```

mod client;
mod close;
mod decode;
pub mod encode;
mod header;

#[cfg(test)]
mod decode_tests;
#[cfg(test)]
mod prop_tests;

pub use client::{client_header_len, encode_client_frame, MAX_CLIENT_HEADER_LEN};
pub use close::{close_reply_code, CloseHandshake, PeerCloseOutcome};
pub use decode::{Decoded, FrameDecoder, WsEvent, DEFAULT_MAX_MESSAGE_SIZE};
pub use encode::{
    encode_binary, encode_close, encode_frame, encode_ping, encode_pong, encode_text, frame_header,
    prebuilt_binary_frame, prebuilt_text_frame, SharedFrame, MAX_SERVER_HEADER_LEN,
};

/// Largest payload of a control frame (ping, pong, close), RFC 6455 §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest close reason: a control payload minus the 2-byte status code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Frame opcodes of RFC 6455 §5.2. The reserved values (3–7, 11–15) have no variant: they are a protocol
/// error when received and cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A non-first fragment of a data message.
    Continuation,
    /// First (or only) frame of a UTF-8 text message.
    Text,
    /// First (or only) frame of a binary message.
    Binary,
    /// Close control frame: empty, or a 2-byte status code and a UTF-8 reason.
    Close,
    /// Ping control frame; the receiver answers with a pong carrying the same payload.
    Ping,
    /// Pong control frame.
    Pong,
}

impl Opcode {
    /// The opcode with these 4 bits, or `None` for a reserved value.
    pub const fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4 bits this opcode has on the wire.
    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Whether this is a control frame (close, ping, pong): never fragmented, payload ≤ 125 bytes.
    pub const fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4): 1000–1003, 1007–1011 and the
/// registered/private range 3000–4999. 1005, 1006 and 1015 are reserved for local reporting and never sent.
pub const fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}
