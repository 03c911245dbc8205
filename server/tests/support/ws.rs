//! The client side of RFC 6455 framing, just enough for tests: masked frames out (the server must
//! refuse unmasked ones, so tests also build those on purpose), unmasked server frames in. The engine's
//! decoder is server-side only (it requires masks), hence this small codec.

/// Frame opcodes (RFC 6455 §5.2).
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        match self.payload.as_slice() {
            [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }
}

/// Appends one frame with the given first byte (FIN, RSV bits, opcode) and payload; masked with `mask`
/// when given, as a client must, or unmasked to provoke the server.
pub fn encode_frame(first_byte: u8, payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    out.push(first_byte);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
}

/// Decodes one server frame from the front of `input`: `Some((frame, consumed))`, or `None` when more
/// bytes are needed. Panics on a masked server frame (a server must never mask).
pub fn decode_frame(input: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, rest) = input.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    assert_eq!(b1 & 0x80, 0, "the server sent a masked frame");
    let (len, header) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let end = header + usize::try_from(len).ok()?;
    let payload = input.get(header..end)?.to_vec();
    Some((Frame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, payload }, end))
}
