//! Binary attachments: encoding arguments that hold binary blobs as placeholders plus buffers, and
//! reassembling a received `5`/`6` header with the binary messages that follow it.
//!
//! On the wire a binary packet is a text header (`451-["ev",{"_placeholder":true,"num":0}]`) followed by
//! `n` Engine.IO binary messages, attachment `num` being the `num`-th message. Buffers are `Bytes`, so
//! received attachments are never copied and a broadcast shares each buffer with every recipient.

use bytes::{BufMut, Bytes, BytesMut};

use super::encode::{header_len, json_string_len, write_decimal, write_header, write_json_string};
use super::json::{self, Placeholder};
use super::packet::{decode_head, Args, Head, Packet, PacketType};
use super::Limits;
use crate::{Error, Limit, PeerMisbehaved};

/// One argument to encode.
#[derive(Debug, Clone)]
pub enum OutArg<'a> {
    /// A JSON value with no binary inside, copied verbatim.
    Json(&'a [u8]),
    /// A binary blob: written as a placeholder, sent as the next attachment.
    Binary(Bytes),
    /// A JSON value with binary nested inside: `json` holds placeholders numbered `0..attachments.len()`
    /// relative to this argument; the encoder renumbers them into the packet's sequence.
    JsonWithBinary { json: &'a [u8], attachments: &'a [Bytes] },
}

/// Encodes an event whose arguments may hold binary: BINARY_EVENT `5<n>-[<nsp>,][<id>]["ev",…]` when
/// any attachment results, plain EVENT otherwise (as socket.io's encoder does). Attachment buffers are
/// appended to `attachments`, in `num` order, to be sent as binary messages after the text.
///
/// Errors: [`Error::Misuse`] when a [`OutArg::JsonWithBinary`] is not valid JSON or has a placeholder
/// whose `num` is not below its `attachments.len()`; nothing is written then.
pub fn encode_event_with_binary(
    nsp: &str,
    ack_id: Option<u64>,
    event: &str,
    args: &[OutArg<'_>],
    out: &mut BytesMut,
    attachments: &mut Vec<Bytes>,
) -> Result<(), Error> {
    encode_with_binary(PacketType::Event, nsp, ack_id, Some(event), args, out, attachments)
}

/// Encodes an ack answering `ack_id` whose arguments may hold binary: BINARY_ACK `6<n>-[<nsp>,]<id>[…]`
/// or plain ACK; see [`encode_event_with_binary`].
pub fn encode_ack_with_binary(
    nsp: &str,
    ack_id: u64,
    args: &[OutArg<'_>],
    out: &mut BytesMut,
    attachments: &mut Vec<Bytes>,
) -> Result<(), Error> {
    encode_with_binary(PacketType::Ack, nsp, Some(ack_id), None, args, out, attachments)
}

const PLACEHOLDER_HEAD: &[u8] = b"{\"_placeholder\":true,\"num\":";

/// The placeholders of a caller-supplied JSON argument, in text order, checked against its attachments.
fn nested_placeholders(
    json: &[u8],
    attachments: usize,
) -> Result<Vec<(std::ops::Range<usize>, usize)>, Error> {
    let misuse = Error::Misuse("OutArg::JsonWithBinary must be valid JSON numbering its own attachments");
    let mut found = Vec::new();
    let mut bad = false;
    let validated =
        json::placeholders(json, json::MAX_DEPTH_CEILING, |p: Placeholder| match (p.num, p.num_text) {
            (Some(num), Some(text)) if num < attachments => found.push((text, num)),
            _ => bad = true,
        })
        .map_err(|_| misuse.clone())?;
    if bad || validated.value != (0..json.len()) {
        return Err(misuse);
    }
    found.sort_by_key(|(text, _)| text.start);
    Ok(found)
}

fn encode_with_binary(
    plain: PacketType,
    nsp: &str,
    ack_id: Option<u64>,
    event: Option<&str>,
    args: &[OutArg<'_>],
    out: &mut BytesMut,
    attachments: &mut Vec<Bytes>,
) -> Result<(), Error> {
    let mut count = 0;
    let mut len = 2 + event.map_or(0, |e| json_string_len(e) + 1);
    // Checked before anything is written; consumed in order by the write loop below.
    let mut nested_found = Vec::new();
    for arg in args {
        len += 1;
        match arg {
            OutArg::Json(json) => len += json.len(),
            OutArg::Binary(_) => {
                count += 1;
                len += PLACEHOLDER_HEAD.len() + 21;
            }
            OutArg::JsonWithBinary { json, attachments: nested } => {
                let found = nested_placeholders(json, nested.len())?;
                count += nested.len();
                len += json.len() + 20 * found.len();
                nested_found.push(found);
            }
        }
    }
    let kind = match (plain, count) {
        (_, 0) => plain,
        (PacketType::Event, _) => PacketType::BinaryEvent,
        _ => PacketType::BinaryAck,
    };
    // Placeholder numbers count from this packet's first attachment, whatever `attachments` held before.
    let first = attachments.len();
    out.reserve(len + header_len(kind, count, nsp, ack_id));
    write_header(out, kind, count, nsp, ack_id);
    out.put_u8(b'[');
    if let Some(event) = event {
        write_json_string(out, event);
    }
    let mut nested_found = nested_found.into_iter();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 || event.is_some() {
            out.put_u8(b',');
        }
        match arg {
            OutArg::Json(json) => out.extend_from_slice(json),
            OutArg::Binary(data) => {
                out.extend_from_slice(PLACEHOLDER_HEAD);
                write_decimal(out, (attachments.len() - first) as u64);
                out.put_u8(b'}');
                attachments.push(data.clone());
            }
            OutArg::JsonWithBinary { json, attachments: nested } => {
                let base = attachments.len() - first;
                let mut copied = 0;
                for (text, num) in nested_found.next().unwrap_or_default() {
                    out.extend_from_slice(json.get(copied..text.start).unwrap_or_default());
                    write_decimal(out, (base + num) as u64);
                    copied = text.end;
                }
                out.extend_from_slice(json.get(copied..).unwrap_or_default());
                attachments.extend(nested.iter().cloned());
            }
        }
    }
    out.put_u8(b']');
    Ok(())
}

/// An argument of a received binary packet, with top-level placeholders resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// A JSON value with no placeholder inside, byte-exact.
    Json(&'a [u8]),
    /// The argument was a placeholder: this is its attachment.
    Binary(&'a Bytes),
    /// A JSON value with placeholders nested inside; find them with [`json::placeholders`] and resolve
    /// each `num` with [`BinaryPacket::attachment`].
    JsonWithBinary(&'a [u8]),
}

/// A complete binary packet: the header text and its attachments. Owns its buffers (`Bytes`, no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryPacket {
    text: Bytes,
    head: Head,
    attachments: Vec<Bytes>,
}

impl BinaryPacket {
    /// The header packet (type `5` or `6`; its payload still holds the placeholders).
    pub fn packet(&self) -> Packet<'_> {
        self.head.packet(&self.text)
    }

    /// The header text as received; re-sending it with [`BinaryPacket::attachments`] forwards the packet.
    pub fn text(&self) -> &Bytes {
        &self.text
    }

    /// The attachments in `num` order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Attachment `num`, if the packet has that many.
    pub fn attachment(&self, num: usize) -> Option<&Bytes> {
        self.attachments.get(num)
    }

    /// The arguments (after the event name for events), each classified as in [`Arg`].
    /// Cost: one pass over each argument that contains an object.
    pub fn args(&self) -> BinaryArgs<'_> {
        BinaryArgs { args: self.packet().args(), attachments: &self.attachments }
    }

    /// The header text and the attachments.
    pub fn into_parts(self) -> (Bytes, Vec<Bytes>) {
        (self.text, self.attachments)
    }
}

/// Iterator returned by [`BinaryPacket::args`].
#[derive(Debug, Clone)]
pub struct BinaryArgs<'a> {
    args: Args<'a>,
    attachments: &'a [Bytes],
}

impl<'a> Iterator for BinaryArgs<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        let raw = self.args.next()?;
        if !raw.contains(&b'{') {
            return Some(Arg::Json(raw));
        }
        let (mut whole, mut nested) = (None, false);
        let walked = json::placeholders(raw, json::MAX_DEPTH_CEILING, |p| {
            if p.object == (0..raw.len()) {
                whole = p.num;
            } else {
                nested = true;
            }
        });
        Some(match (walked, whole.and_then(|n| self.attachments.get(n))) {
            (Ok(_), Some(data)) => Arg::Binary(data),
            (Ok(_), None) if nested => Arg::JsonWithBinary(raw),
            _ => Arg::Json(raw),
        })
    }
}

/// What one message handed to the [`AttachmentReassembler`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<'t> {
    /// A complete packet without attachments, borrowing the message text.
    Packet(Packet<'t>),
    /// A binary header or attachment was stored; `remaining` binary messages must follow.
    AwaitingAttachments { remaining: usize },
    /// A binary packet is complete (immediately when its header announces 0 attachments).
    Binary(BinaryPacket),
}

/// Per-connection state for binary packets: the reference decoder's `reconstructor`.
///
/// Feed every Engine.IO message of one connection, in order: text to [`handle_text`], binary to
/// [`handle_binary`]. Rules (socket.io-parser `Decoder.add`): a text message while attachments are
/// pending, or a binary message while none are, is a parse error; a header announcing 0 attachments
/// completes at once (the reference leaves its reconstructor set in that case so the *next* text packet
/// fails; Roomcast returns to idle). Any error leaves the reassembler idle; the caller closes the
/// connection anyway. Idle, it holds one null pointer (8 bytes); the pending packet lives out of line.
///
/// [`handle_text`]: AttachmentReassembler::handle_text
/// [`handle_binary`]: AttachmentReassembler::handle_binary
#[derive(Debug, Default)]
pub struct AttachmentReassembler {
    pending: Option<Box<Pending>>,
}

const _: () = assert!(std::mem::size_of::<AttachmentReassembler>() <= 8);

#[derive(Debug)]
struct Pending {
    packet: BinaryPacket,
    buffered: usize,
}

fn parse_error(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::SioParse(what))
}

impl AttachmentReassembler {
    /// An idle reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a binary header is waiting for attachments.
    pub fn is_reassembling(&self) -> bool {
        self.pending.is_some()
    }

    /// Handles a text message (the Socket.IO packet text). Plain packets come back borrowing `text`;
    /// a `5`/`6` header is copied (one allocation) and kept until its attachments arrive.
    /// Errors: those of [`super::decode`], a text message while reassembling, and
    /// [`Limit::SioAttachmentBytes`] for a header larger than `limits.max_buffered_bytes`.
    pub fn handle_text<'t>(&mut self, text: &'t [u8], limits: &Limits) -> Result<Received<'t>, Error> {
        if self.pending.take().is_some() {
            return Err(parse_error("text packet while waiting for binary attachments"));
        }
        let head = decode_head(text, limits)?;
        let packet = head.packet(text);
        if !packet.kind().is_binary() {
            return Ok(Received::Packet(packet));
        }
        if text.len() > limits.max_buffered_bytes {
            return Err(Error::LimitExceeded(Limit::SioAttachmentBytes { max: limits.max_buffered_bytes }));
        }
        let remaining = head.attachments();
        let packet = BinaryPacket { text: Bytes::copy_from_slice(text), head, attachments: Vec::new() };
        if remaining == 0 {
            return Ok(Received::Binary(packet));
        }
        self.pending = Some(Box::new(Pending { packet, buffered: text.len() }));
        Ok(Received::AwaitingAttachments { remaining })
    }

    /// Handles a binary message: the next attachment of the pending header (kept as is: a `Bytes` is
    /// not copied).
    /// Errors: a binary message while nothing is pending; [`Limit::SioAttachmentBytes`] when header plus
    /// attachments exceed `limits.max_buffered_bytes`.
    pub fn handle_binary(
        &mut self,
        data: impl Into<Bytes>,
        limits: &Limits,
    ) -> Result<Received<'static>, Error> {
        let data = data.into();
        let mut pending =
            self.pending.take().ok_or(parse_error("binary message while no packet awaits one"))?;
        pending.buffered = pending.buffered.saturating_add(data.len());
        if pending.buffered > limits.max_buffered_bytes {
            return Err(Error::LimitExceeded(Limit::SioAttachmentBytes { max: limits.max_buffered_bytes }));
        }
        pending.packet.attachments.push(data);
        let remaining = pending.packet.head.attachments().saturating_sub(pending.packet.attachments.len());
        if remaining == 0 {
            let Pending { packet, .. } = *pending;
            return Ok(Received::Binary(packet));
        }
        self.pending = Some(pending);
        Ok(Received::AwaitingAttachments { remaining })
    }
}
