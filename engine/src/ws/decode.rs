//! The frame decoder: bytes from the peer in, whole messages and control frames out. Server role by
//! default ([`FrameDecoder::new`]: frames must be masked); client role with [`FrameDecoder::new_client`]
//! (frames must not be masked).

use std::ops::Range;

use super::header::{unmask, FrameHeader, HeaderCarry, Role};
use super::{is_valid_close_code, Opcode};
use crate::error::{Error, Limit, PeerMisbehaved};

/// Default largest message (sum of fragments) a client may send: socket.io's `maxHttpBufferSize`
/// default (1e6 bytes), which it passes to `ws` as `maxPayload` (protocol notes §1.9).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1_000_000;

/// Message buffer capacity kept after a message is delivered. A socket that once received a message
/// split across reads keeps at most this much; bigger buffers are freed so idle sockets stay small.
const RETAINED_BUFFER_CAPACITY: usize = 1024;

/// Most buffer space reserved from a frame's declared length before its payload arrives: one allocation
/// for typical split frames, while a client that sends only headers cannot make us reserve megabytes.
const RESERVE_AHEAD_LIMIT: usize = 64 * 1024;

/// What a client sent: a complete message or a control frame.
///
/// Borrows either the caller's input (a frame that arrived whole in one read: no copy) or the decoder's
/// message buffer (a message reassembled from fragments or reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A complete text message, validated as UTF-8.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping; answer with a pong carrying the same payload (≤ 125 bytes).
    Ping(&'a [u8]),
    /// A pong (an answer to our ping, or unsolicited).
    Pong(&'a [u8]),
    /// The peer started or answered the closing handshake. `code` is `None` for an empty close frame;
    /// otherwise it is a code valid on the wire (see [`is_valid_close_code`](super::is_valid_close_code)).
    /// The decoder ignores every byte after this event.
    Close { code: Option<u16>, reason: &'a str },
}

/// The result of one [`FrameDecoder::decode`] call.
///
/// Contract: `0 <= consumed <= input.len()`; when `event` is `None`, `consumed == input.len()` (the
/// decoder carried any partial frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes of the input the call used; continue with `&mut input[consumed..]`.
    pub consumed: usize,
    /// The next event, if the input completed one.
    pub event: Option<WsEvent<'a>>,
}

/// Decodes the frames a client sends (RFC 6455 §5), resumable across any split of the input; or, made
/// with [`FrameDecoder::new_client`], the frames a server sends.
///
/// Carry-over between calls is bounded: at most 13 bytes of a split header, plus one message of at most
/// `max_message_size` bytes (the fragments or reads received so far) and one control payload of at most
/// 125 bytes. A message bigger than the limit is rejected from its frame header, before any of its
/// payload is buffered.
///
/// Errors say what the peer did; [`Error::ws_close_code`] gives the close code to send (1002 protocol,
/// 1007 invalid UTF-8, 1009 too big). After an error the decoder must not be fed again (it returns
/// `Error::Misuse`). After a [`WsEvent::Close`] it consumes and ignores everything.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message_size: usize,
    header: HeaderCarry,
    /// The frame whose payload is being buffered, if its header has been read.
    frame: Option<PartialFrame>,
    /// The data message in progress (its first frame arrived, its FIN frame has not).
    message: Option<MessageKind>,
    /// Payload of the message in progress, then (while one is in flight) the control frame's payload.
    buffer: Vec<u8>,
    /// `buffer[..utf8_valid]` is valid UTF-8 up to a possibly incomplete last code point.
    utf8_valid: usize,
    /// Buffer space held by the event returned last, freed on the next call.
    release: Release,
    phase: Phase,
}

// Per-connection state (112 bytes on 64-bit targets, plus the message buffer when one is in flight).
const _: () = assert!(std::mem::size_of::<FrameDecoder>() <= 128);

#[derive(Debug, Clone, Copy)]
struct PartialFrame {
    opcode: Opcode,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes buffered so far (the mask position of the next byte).
    done: usize,
    remaining: usize,
    /// Where this frame's payload starts in `buffer` (non-zero for a control frame between fragments).
    start: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageKind {
    Text,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Text,
    Binary,
    Ping,
    Pong,
    Close,
}

#[derive(Debug, Clone, Copy, Default)]
enum Release {
    #[default]
    Nothing,
    /// A control frame was delivered from the buffer: drop its bytes, keep the message before them.
    Control { message_len: usize },
    /// A whole message was delivered from the buffer.
    Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Closed,
    Failed,
}

/// An event ready to hand out: its payload is `range` of the input or of the buffer, already unmasked.
struct Ready {
    kind: EventKind,
    in_buffer: bool,
    range: Range<usize>,
}

fn protocol(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::WsProtocol(what))
}

fn invalid_utf8() -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::WsInvalidUtf8)
}

impl FrameDecoder {
    /// A server-side decoder for a fresh connection accepting messages of up to `max_message_size`
    /// bytes. Every frame must be masked ([`PeerMisbehaved::WsUnmasked`] otherwise).
    /// Allocates nothing until a message arrives split across reads or fragments.
    pub fn new(max_message_size: usize) -> FrameDecoder {
        FrameDecoder::with_role(max_message_size, Role::Server)
    }

    /// A client-side decoder (for a load generator or test client) reading what a server sends: the
    /// same rules and limits as [`FrameDecoder::new`], except that frames must NOT be masked
    /// ([`PeerMisbehaved::WsMasked`] otherwise, RFC 6455 §5.1). Payloads are handed out as received.
    pub fn new_client(max_message_size: usize) -> FrameDecoder {
        FrameDecoder::with_role(max_message_size, Role::Client)
    }

    fn with_role(max_message_size: usize, role: Role) -> FrameDecoder {
        FrameDecoder {
            max_message_size,
            header: HeaderCarry::new(role),
            frame: None,
            message: None,
            buffer: Vec::new(),
            utf8_valid: 0,
            release: Release::Nothing,
            phase: Phase::Open,
        }
    }

    /// The configured message size limit.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Decodes from `input` up to and including the next event.
    ///
    /// Unmasks payload bytes in place, so the consumed part of `input` is altered. Call again with
    /// `&mut input[consumed..]` until `event` is `None`; that last call also frees the buffer space the
    /// previous event borrowed. Hot path. Cost: O(consumed); no copy and no allocation for a frame that
    /// is complete in `input`, otherwise one copy into the message buffer (amortized growth, bounded by
    /// the message limit).
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, Error> {
        self.release_delivered();
        match self.phase {
            Phase::Failed => return Err(Error::Misuse("FrameDecoder fed after it returned an error")),
            Phase::Closed => return Ok(Decoded { consumed: input.len(), event: None }),
            Phase::Open => {}
        }
        let (consumed, ready) = match self.advance(input) {
            Ok(step) => step,
            Err(error) => {
                self.phase = Phase::Failed;
                return Err(error);
            }
        };
        let Some(ready) = ready else { return Ok(Decoded { consumed, event: None }) };
        let source: &'a [u8] = if ready.in_buffer { &self.buffer } else { input };
        let event = source
            .get(ready.range)
            .ok_or(Error::Misuse("FrameDecoder event range out of step"))
            .and_then(|payload| event_from(ready.kind, payload));
        match event {
            Ok(event) => {
                if let WsEvent::Close { .. } = event {
                    self.phase = Phase::Closed;
                }
                Ok(Decoded { consumed, event: Some(event) })
            }
            Err(error) => {
                self.phase = Phase::Failed;
                Err(error)
            }
        }
    }

    /// Decodes all of `input`, calling `on_event` for each event in order; stops at the first error,
    /// from the decoder or from `on_event`. Same costs and in-place unmasking as [`Self::decode`].
    pub fn handle_bytes(
        &mut self,
        mut input: &mut [u8],
        mut on_event: impl FnMut(WsEvent<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        loop {
            let Decoded { consumed, event } = self.decode(&mut *input)?;
            let Some(event) = event else { return Ok(()) };
            on_event(event)?;
            input = std::mem::take(&mut input).get_mut(consumed..).unwrap_or_default();
        }
    }

    fn release_delivered(&mut self) {
        match std::mem::take(&mut self.release) {
            Release::Nothing => {}
            Release::Control { message_len } => self.buffer.truncate(message_len),
            Release::Message => {
                self.utf8_valid = 0;
                if self.buffer.capacity() > RETAINED_BUFFER_CAPACITY {
                    self.buffer = Vec::new();
                } else {
                    self.buffer.clear();
                }
            }
        }
    }

    /// Consumes input until an event is ready or the input runs out.
    fn advance(&mut self, input: &mut [u8]) -> Result<(usize, Option<Ready>), Error> {
        let mut pos = 0;
        loop {
            let Some(frame) = self.frame.as_mut() else {
                let rest = input.get(pos..).unwrap_or_default();
                if rest.is_empty() {
                    return Ok((pos, None));
                }
                let Some((header, used)) = self.header.take_header(rest)? else {
                    return Ok((input.len(), None));
                };
                pos += used;
                let len = self.check_frame_start(&header)?;
                let direct =
                    header.opcode.is_control() || (header.fin && header.opcode != Opcode::Continuation);
                let whole = pos.checked_add(len).filter(|end| *end <= input.len());
                if let (true, Some(end)) = (direct, whole) {
                    unmask(input.get_mut(pos..end).unwrap_or_default(), header.mask, 0);
                    let range = pos..end;
                    let kind = event_kind(header.opcode, MessageKind::Text);
                    return Ok((range.end, Some(Ready { kind, in_buffer: false, range })));
                }
                self.begin_frame(&header, len);
                continue;
            };
            let rest = input.get(pos..).unwrap_or_default();
            let take = frame.remaining.min(rest.len());
            let start = self.buffer.len();
            self.buffer.extend_from_slice(rest.get(..take).unwrap_or_default());
            unmask(self.buffer.get_mut(start..).unwrap_or_default(), frame.mask, frame.done);
            frame.done += take;
            frame.remaining -= take;
            pos += take;
            if !frame.opcode.is_control() && self.message == Some(MessageKind::Text) {
                let unchecked = self.buffer.get(self.utf8_valid..).unwrap_or_default();
                self.utf8_valid += valid_utf8_prefix(unchecked)?;
            }
            if frame.remaining > 0 {
                return Ok((pos, None));
            }
            let frame = *frame;
            self.frame = None;
            if let Some(ready) = self.finish_frame(&frame) {
                return Ok((pos, Some(ready)));
            }
        }
    }

    /// Checks a new frame against the message in progress and the size limit; returns its payload length.
    fn check_frame_start(&self, header: &FrameHeader) -> Result<usize, Error> {
        match header.opcode {
            Opcode::Continuation if self.message.is_none() => {
                return Err(protocol("continuation frame without a message in progress"));
            }
            Opcode::Text | Opcode::Binary if self.message.is_some() => {
                return Err(protocol("new data frame before the fragmented message ended"));
            }
            _ => {}
        }
        let too_big = Error::LimitExceeded(Limit::WsMessageSize { max: self.max_message_size });
        if header.opcode.is_control() {
            // Parsing guarantees payload_len <= 125.
            return usize::try_from(header.payload_len).map_err(|_| too_big);
        }
        let so_far = if self.message.is_some() { self.buffer.len() } else { 0 };
        let total = (so_far as u64).saturating_add(header.payload_len);
        if total > self.max_message_size as u64 {
            return Err(too_big);
        }
        usize::try_from(header.payload_len).map_err(|_| too_big)
    }

    fn begin_frame(&mut self, header: &FrameHeader, len: usize) {
        self.buffer.reserve(len.min(RESERVE_AHEAD_LIMIT));
        match header.opcode {
            Opcode::Text => self.message = Some(MessageKind::Text),
            Opcode::Binary => self.message = Some(MessageKind::Binary),
            _ => {}
        }
        self.frame = Some(PartialFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            done: 0,
            remaining: len,
            start: self.buffer.len(),
        });
    }

    /// A buffered frame's payload is complete: the event it finishes, if any.
    fn finish_frame(&mut self, frame: &PartialFrame) -> Option<Ready> {
        let end = self.buffer.len();
        if frame.opcode.is_control() {
            self.release = Release::Control { message_len: frame.start };
            let kind = event_kind(frame.opcode, MessageKind::Binary);
            return Some(Ready { kind, in_buffer: true, range: frame.start..end });
        }
        if !frame.fin {
            return None;
        }
        let message = self.message.take()?;
        self.release = Release::Message;
        let kind = event_kind(Opcode::Continuation, message);
        Some(Ready { kind, in_buffer: true, range: 0..end })
    }
}

/// The event a frame of `opcode` completes; a continuation completes the `message` it belongs to.
fn event_kind(opcode: Opcode, message: MessageKind) -> EventKind {
    match (opcode, message) {
        (Opcode::Text, _) | (Opcode::Continuation, MessageKind::Text) => EventKind::Text,
        (Opcode::Binary, _) | (Opcode::Continuation, MessageKind::Binary) => EventKind::Binary,
        (Opcode::Ping, _) => EventKind::Ping,
        (Opcode::Pong, _) => EventKind::Pong,
        (Opcode::Close, _) => EventKind::Close,
    }
}

/// Length of the longest prefix of `bytes` that is valid UTF-8 or ends in the start of a code point that
/// more bytes could complete; an error if `bytes` can never become valid.
fn valid_utf8_prefix(bytes: &[u8]) -> Result<usize, Error> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() => Ok(e.valid_up_to()),
        Err(_) => Err(invalid_utf8()),
    }
}

fn event_from(kind: EventKind, payload: &[u8]) -> Result<WsEvent<'_>, Error> {
    Ok(match kind {
        EventKind::Text => WsEvent::Text(std::str::from_utf8(payload).map_err(|_| invalid_utf8())?),
        EventKind::Binary => WsEvent::Binary(payload),
        EventKind::Ping => WsEvent::Ping(payload),
        EventKind::Pong => WsEvent::Pong(payload),
        EventKind::Close => match payload {
            [] => WsEvent::Close { code: None, reason: "" },
            [_] => return Err(protocol("close frame with a 1-byte payload")),
            [high, low, reason @ ..] => {
                let code = u16::from_be_bytes([*high, *low]);
                if !is_valid_close_code(code) {
                    return Err(protocol("close frame with an invalid status code"));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| invalid_utf8())?;
                WsEvent::Close { code: Some(code), reason }
            }
        },
    })
}
