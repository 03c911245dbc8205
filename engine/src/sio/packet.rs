//! The Socket.IO packet: its types, the decoder, and accessors that read the payload without copying.

use std::borrow::Cow;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::encode::{header_len, write_header, EIO_MESSAGE};
use super::json::{self, JsonError, JsonKind};
use super::Limits;
use crate::{Error, Limit, PeerMisbehaved};

/// Socket.IO packet types; the discriminant is the digit on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    /// The type named by an ASCII digit `'0'..='6'`.
    pub fn from_digit(digit: u8) -> Option<PacketType> {
        Some(match digit {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII digit written on the wire.
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// Whether the type carries an attachment count (`5`, `6`).
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }

    /// Whether the payload is `[event, args…]` (`2`, `5`).
    pub fn is_event(self) -> bool {
        matches!(self, PacketType::Event | PacketType::BinaryEvent)
    }

    /// Whether the payload is `[args…]` answering an ack id (`3`, `6`).
    pub fn is_ack(self) -> bool {
        matches!(self, PacketType::Ack | PacketType::BinaryAck)
    }
}

/// Event names a client may not emit (socket.io-parser `RESERVED_EVENTS`); an EVENT naming one is invalid.
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// One decoded Socket.IO packet, borrowing the text it was decoded from.
///
/// Invariants (upheld by [`decode`], the only constructor): `payload`, when present, is valid JSON with
/// no surrounding whitespace and of the shape its type requires (see [`decode`]); `nsp` starts with `/`
/// and holds no `,`; `attachments` is 0 unless the type is binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    kind: PacketType,
    nsp: &'a str,
    ack_id: Option<u64>,
    attachments: usize,
    payload: Option<&'a [u8]>,
}

/// A decoded packet as offsets into its text, so an owner can keep it next to an owned buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    kind: PacketType,
    /// `None` for the main namespace written implicitly.
    nsp: Option<Range<usize>>,
    ack_id: Option<u64>,
    attachments: usize,
    payload: Option<Range<usize>>,
}

impl Head {
    /// The packet view over `text`, which must be the text this head was decoded from.
    pub(crate) fn packet<'a>(&self, text: &'a [u8]) -> Packet<'a> {
        let nsp = self.nsp.as_ref().and_then(|r| text.get(r.clone()));
        Packet {
            kind: self.kind,
            // Decoding checked the namespace is UTF-8; the fallback is unreachable.
            nsp: nsp.and_then(|n| std::str::from_utf8(n).ok()).unwrap_or("/"),
            ack_id: self.ack_id,
            attachments: self.attachments,
            payload: self.payload.as_ref().and_then(|r| text.get(r.clone())),
        }
    }

    pub(crate) fn attachments(&self) -> usize {
        self.attachments
    }
}

fn parse_error(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::SioParse(what))
}

pub(crate) fn json_error(e: JsonError) -> Error {
    match e {
        JsonError::Syntax { what, .. } => parse_error(what),
        JsonError::TooDeep { max } => Error::LimitExceeded(Limit::SioJsonDepth { max }),
    }
}

/// Decodes one Socket.IO packet text (an Engine.IO message without its `4`).
///
/// Follows socket.io-parser 4.2's `decodeString` and `isPayloadValid`: type digit `0`–`6`; for `5`/`6`
/// a decimal attachment count and `-` (more than `limits.max_attachments` is [`Limit::SioAttachments`]);
/// `/nsp` up to a `,` or the end (`40/custom` and `40/custom,` are the same); ack id digits (above
/// `u64::MAX` is an error); then, if anything remains, a JSON payload that must be an object for
/// CONNECT, absent for DISCONNECT, a string or object for CONNECT_ERROR, a non-empty array starting
/// with a number or a non-reserved string for EVENT/BINARY_EVENT, and an array for ACK/BINARY_ACK. For
/// `5`/`6` every placeholder must have an integer `num` below the attachment count. See the module docs
/// for where this is stricter than the reference. A packet with no payload is valid for every type, as in
/// the reference (an EVENT without one has no name and should be ignored).
///
/// Errors: [`PeerMisbehaved::SioParse`], [`Limit::SioAttachments`], [`Limit::SioJsonDepth`].
/// Cost: one pass over the text, no allocation (binary types allocate a small walk stack).
pub fn decode<'a>(text: &'a [u8], limits: &Limits) -> Result<Packet<'a>, Error> {
    decode_head(text, limits).map(|head| head.packet(text))
}

pub(crate) fn decode_head(text: &[u8], limits: &Limits) -> Result<Head, Error> {
    let &first = text.first().ok_or(parse_error("empty packet"))?;
    let kind = PacketType::from_digit(first).ok_or(parse_error("unknown packet type"))?;
    let mut pos = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let rest = text.get(pos..).unwrap_or_default();
        let dash = rest.iter().position(|&b| b == b'-').ok_or(parse_error("illegal attachments"))?;
        let digits = rest.get(..dash).unwrap_or_default();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(parse_error("illegal attachments"));
        }
        let count =
            digits.iter().try_fold(0usize, |n, &d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')));
        attachments = count
            .filter(|&n| n <= limits.max_attachments)
            .ok_or(Error::LimitExceeded(Limit::SioAttachments { max: limits.max_attachments }))?;
        pos += dash + 1;
    }

    let mut nsp = None;
    if text.get(pos) == Some(&b'/') {
        let rest = text.get(pos..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let name = rest.get(..len).unwrap_or_default();
        std::str::from_utf8(name).map_err(|_| parse_error("namespace is not valid UTF-8"))?;
        nsp = Some(pos..pos + len);
        pos = (pos + len + 1).min(text.len());
    }

    let mut ack_id = None;
    while let Some(&digit) = text.get(pos).filter(|b| b.is_ascii_digit()) {
        let id = ack_id.unwrap_or(0u64).checked_mul(10).and_then(|n| n.checked_add(u64::from(digit - b'0')));
        ack_id = Some(id.ok_or(parse_error("ack id does not fit 64 bits"))?);
        pos += 1;
    }

    let payload = match text.get(pos..) {
        None | Some([]) => None,
        Some(rest) => {
            Some(check_payload(kind, attachments, rest, limits)?).map(|r| pos + r.start..pos + r.end)
        }
    };
    Ok(Head { kind, nsp, ack_id, attachments, payload })
}

/// Validates the payload text `rest` for `kind`; returns the value's range within `rest`.
fn check_payload(
    kind: PacketType,
    attachments: usize,
    rest: &[u8],
    limits: &Limits,
) -> Result<Range<usize>, Error> {
    if kind == PacketType::Disconnect {
        return Err(parse_error("invalid payload: DISCONNECT takes none"));
    }
    if rest.first().copied().is_some_and(json::is_json_whitespace) {
        return Err(parse_error("whitespace between the header and the payload"));
    }
    let validated = if kind.is_binary() {
        let mut illegal = false;
        let validated = json::placeholders(rest, limits.max_json_depth, |p| {
            illegal |= p.num.is_none_or(|n| n >= attachments);
        })
        .map_err(json_error)?;
        if illegal {
            return Err(parse_error("illegal attachments"));
        }
        validated
    } else {
        json::validate(rest, limits.max_json_depth).map_err(json_error)?
    };
    let value = rest.get(validated.value.clone()).unwrap_or_default();
    let ok = match kind {
        PacketType::Connect => validated.kind == JsonKind::Object,
        PacketType::ConnectError => matches!(validated.kind, JsonKind::String | JsonKind::Object),
        PacketType::Ack | PacketType::BinaryAck => validated.kind == JsonKind::Array,
        PacketType::Event | PacketType::BinaryEvent => {
            if validated.kind != JsonKind::Array {
                return Err(parse_error("invalid payload: EVENT needs an array"));
            }
            let name = json::array_elements(value).next();
            match name.and_then(json::kind_of) {
                Some(JsonKind::Number) => true,
                Some(JsonKind::String) => {
                    let name = name.and_then(json::unescape_string);
                    if name.is_none_or(|n| RESERVED_EVENTS.contains(&n.as_ref())) {
                        return Err(parse_error("invalid payload: reserved event name"));
                    }
                    true
                }
                _ => return Err(parse_error("invalid payload: EVENT needs a string or number name")),
            }
        }
        PacketType::Disconnect => false,
    };
    if !ok {
        return Err(parse_error(match kind {
            PacketType::Connect => "invalid payload: CONNECT needs an object",
            PacketType::ConnectError => "invalid payload: CONNECT_ERROR needs a string or object",
            _ => "invalid payload: ACK needs an array",
        }));
    }
    Ok(validated.value)
}

impl<'a> Packet<'a> {
    /// The packet type.
    pub fn kind(&self) -> PacketType {
        self.kind
    }

    /// The namespace, `"/"` when the packet names none.
    pub fn nsp(&self) -> &'a str {
        self.nsp
    }

    /// The ack id: on EVENT, the id the sender wants acknowledged; on ACK, the id being answered.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }

    /// How many binary messages follow this packet (0 unless BINARY_EVENT/BINARY_ACK).
    pub fn attachments(&self) -> usize {
        self.attachments
    }

    /// The raw JSON payload, exactly as received minus surrounding whitespace.
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.payload
    }

    /// The event name of an EVENT/BINARY_EVENT with escapes resolved (borrowed when it has none).
    /// A numeric name (the reference allows one) is returned as its literal text. Cost: O(name).
    pub fn event_name(&self) -> Option<Cow<'a, str>> {
        if !self.kind.is_event() {
            return None;
        }
        let name = json::array_elements(self.payload?).next()?;
        match json::kind_of(name)? {
            JsonKind::String => json::unescape_string(name),
            JsonKind::Number => std::str::from_utf8(name).ok().map(Cow::Borrowed),
            _ => None,
        }
    }

    /// The arguments as raw JSON texts: after the name for events, all elements for acks, none otherwise.
    /// Binary placeholders appear as their JSON text; see [`super::BinaryPacket::args`] to resolve them.
    pub fn args(&self) -> Args<'a> {
        let payload = match self.kind {
            PacketType::Event | PacketType::BinaryEvent | PacketType::Ack | PacketType::BinaryAck => {
                self.payload.unwrap_or_default()
            }
            _ => &[],
        };
        let mut elements = json::array_elements(payload);
        if self.kind.is_event() {
            elements.next();
        }
        Args { elements }
    }

    /// The raw JSON object a CONNECT carries (the handshake `auth`); `None` means the reference's `{}`.
    pub fn auth(&self) -> Option<&'a [u8]> {
        (self.kind == PacketType::Connect).then_some(self.payload).flatten()
    }

    /// Length of [`Packet::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        header_len(self.kind, self.attachments, self.nsp, self.ack_id) + self.payload.map_or(0, <[u8]>::len)
    }

    /// Appends the packet text to `out`. A packet decoded from canonical text (what socket.io encoders
    /// produce) re-encodes to the same bytes; otherwise to an equivalent canonical form (`40/a` becomes
    /// `40/a,`, `2/,` becomes `2`, leading zeros of an ack id go). Cost: one reserve, one copy.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        write_header(out, self.kind, self.attachments, self.nsp, self.ack_id);
        out.extend_from_slice(self.payload.unwrap_or_default());
    }

    /// The Engine.IO message text (`"4"` + [`Packet::encode`]) in one exactly-sized buffer, e.g. to
    /// forward a received packet to many sockets.
    pub fn to_eio_message(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(1 + self.encoded_len());
        out.put_u8(EIO_MESSAGE);
        self.encode(&mut out);
        out.freeze()
    }
}

/// Iterator over a packet's arguments as raw JSON texts; see [`Packet::args`].
#[derive(Debug, Clone)]
pub struct Args<'a> {
    elements: json::ArrayElements<'a>,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.elements.next()
    }
}
