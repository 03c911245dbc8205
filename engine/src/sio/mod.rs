//! Socket.IO v5 packets: a sans-I/O codec with byte-exact JSON pass-through and binary attachments.
//!
//! A Socket.IO packet is the text of one Engine.IO `message` (the part after the `4`):
//! `<type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]`. Binary attachments follow as separate
//! Engine.IO binary messages.
//!
//! # Receiving
//! - [`decode`] turns one packet text into a [`Packet`] that borrows it: type, namespace, ack id,
//!   attachment count and the payload as raw, validated JSON bytes. It applies socket.io-parser's
//!   `decodeString` and `isPayloadValid` rules (reserved event names, CONNECT needs an object, …) and
//!   returns [`Error::PeerMisbehaved`]`(`[`PeerMisbehaved::SioParse`]`)` or a [`Limit`] error otherwise.
//! - [`AttachmentReassembler`] is the per-connection state for binary packets: feed it every text and
//!   binary message of the connection in order; it yields plain packets at once and a [`BinaryPacket`]
//!   once all attachments of a `5`/`6` header arrived, enforcing the reference's ordering rules.
//! - Accessors read without copying: [`Packet::event_name`] (un-escaped), [`Packet::args`] (raw JSON
//!   slices), [`Packet::auth`], and [`BinaryPacket::args`] with top-level placeholders resolved to
//!   attachments ([`Arg`]).
//!
//! # Sending
//! - [`encode_event`], [`encode_ack`], [`encode_connect`], [`encode_connect_error`],
//!   [`encode_disconnect`] append one packet to a `BytesMut` from parts; JSON arguments are raw texts
//!   copied verbatim. [`Packet::encode`] re-emits a decoded packet byte for byte.
//! - [`event_message`] builds the Engine.IO message text (`"4"` + packet) of an event in one exactly-sized
//!   buffer: encode once per broadcast, frame once, share the `Bytes` with every recipient.
//! - [`encode_event_with_binary`] / [`encode_ack_with_binary`] take [`OutArg`]s, write placeholders
//!   `{"_placeholder":true,"num":N}` in order and collect the attachment buffers to send after the header.
//!
//! # JSON
//! Payloads are never parsed into values nor re-serialized: [`json`] validates, slices and un-escapes
//! them in place. The reference server parses and re-stringifies; since clients send compact
//! `JSON.stringify` output, passing the client's bytes through yields the same bytes the reference
//! would send (key order, number spelling and escapes included). A client that sends non-compact JSON
//! (extra whitespace inside a value) would see it echoed as sent; whitespace *around* the payload is
//! trimmed.
//!
//! # Deliberate strictness
//! Where `decodeString` accepts input only through JavaScript coercion quirks, the decoder rejects it:
//! an empty packet (JS reads type `Number("") = 0`), non-digit attachment counts (`" 1-"`, `"0x1-"`,
//! `"-"`), and whitespace right after the header (JS reads `" "` as ack-id digit `0`, so `2 ["x"]` would
//! be an event with ack id 0). Placeholder `num`s must be plain integer literals, and every placeholder is
//! checked, even inside another placeholder. No real client produces any of these.

pub mod binary;
pub mod encode;
pub mod json;
pub mod packet;

#[cfg(test)]
mod tests;

pub use binary::{
    encode_ack_with_binary, encode_event_with_binary, Arg, AttachmentReassembler, BinaryArgs, BinaryPacket,
    OutArg, Received,
};
pub use encode::{
    encode_ack, encode_connect, encode_connect_error, encode_disconnect, encode_event, event_len,
    event_message, EIO_MESSAGE,
};
pub use packet::{decode, Args, Packet, PacketType, RESERVED_EVENTS};

#[allow(unused_imports)] // named by the docs above
use crate::{Error, Limit, PeerMisbehaved};

/// Limits on what one peer may send; each is a configuration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most binary attachments one packet may announce; more is [`Limit::SioAttachments`].
    /// Default 10: socket.io-parser's `maxAttachments` (since 4.2.6).
    pub max_attachments: usize,
    /// Deepest array/object nesting accepted in a payload; deeper is [`Limit::SioJsonDepth`].
    /// Default 32: far above what applications send, and it bounds the work of one packet. Values above
    /// [`json::MAX_DEPTH_CEILING`] act as the ceiling.
    pub max_json_depth: usize,
    /// Most bytes the reassembler holds for one binary packet (header text plus attachments); more is
    /// [`Limit::SioAttachmentBytes`]. Default 11 MB: the header plus 10 attachments, each at Engine.IO's
    /// default `maxHttpBufferSize` (1 MB), so the default never rejects what the reference accepts.
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_attachments: 10, max_json_depth: 32, max_buffered_bytes: 11_000_000 }
    }
}
