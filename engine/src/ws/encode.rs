//! Server-to-client frames: unmasked (RFC 6455 §5.1), written into a `BytesMut` or built once into a
//! shared `Bytes` for broadcasts.
//!
//! Functions that can be called with a payload the protocol forbids (a control payload over 125 bytes,
//! an unsendable close code) check first and return [`Error::Misuse`] without writing anything.

use bytes::{BufMut, Bytes, BytesMut};

use super::{is_valid_close_code, Opcode, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD};
use crate::error::Error;

/// Longest header a server frame has: 2 bytes plus an 8-byte extended length (no masking key).
pub const MAX_SERVER_HEADER_LEN: usize = 10;

/// Length of the header of a server frame carrying `payload_len` bytes.
pub const fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

fn put_header(opcode: Opcode, fin: bool, payload_len: usize, out: &mut BytesMut) {
    let first = if fin { 0x80 } else { 0 } | opcode.bits();
    match u16::try_from(payload_len) {
        // The match arm guarantees the value fits the 7-bit length field.
        Ok(len @ 0..=125) => out.put_slice(&[first, len as u8]),
        Ok(len) => {
            out.put_slice(&[first, 126]);
            out.put_u16(len);
        }
        Err(_) => {
            out.put_slice(&[first, 127]);
            out.put_u64(payload_len as u64);
        }
    }
}

/// Writes the header of a final (FIN) frame with a `payload_len`-byte payload, for callers that send the
/// payload as a separate iovec. Writes at most [`MAX_SERVER_HEADER_LEN`] bytes. The caller must not use
/// it for a control frame over 125 bytes.
pub fn frame_header(opcode: Opcode, payload_len: usize, out: &mut BytesMut) {
    put_header(opcode, true, payload_len, out);
}

/// Writes one frame. Fails with `Misuse` for a control frame that is not `fin` or carries over 125 bytes.
/// Cost: one header and one copy of `payload`.
pub fn encode_frame(opcode: Opcode, fin: bool, payload: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    if opcode.is_control() && (!fin || payload.len() > MAX_CONTROL_PAYLOAD) {
        return Err(Error::Misuse("control frame must be final and carry at most 125 bytes"));
    }
    out.reserve(header_len(payload.len()) + payload.len());
    put_header(opcode, fin, payload.len(), out);
    out.put_slice(payload);
    Ok(())
}

/// Writes a whole text message as one frame.
pub fn encode_text(text: &str, out: &mut BytesMut) {
    put_data_frame(Opcode::Text, text.as_bytes(), out);
}

/// Writes a whole binary message as one frame.
pub fn encode_binary(payload: &[u8], out: &mut BytesMut) {
    put_data_frame(Opcode::Binary, payload, out);
}

fn put_data_frame(opcode: Opcode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(header_len(payload.len()) + payload.len());
    put_header(opcode, true, payload.len(), out);
    out.put_slice(payload);
}

/// Writes a ping; `payload` is at most 125 bytes.
pub fn encode_ping(payload: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    encode_frame(Opcode::Ping, true, payload, out)
}

/// Writes a pong; to answer a ping, pass the ping's payload (the decoder guarantees ≤ 125 bytes).
pub fn encode_pong(payload: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    encode_frame(Opcode::Pong, true, payload, out)
}

/// Writes a close frame: empty when `code` is `None` (then `reason` must be empty), else the code and
/// `reason` (at most 123 bytes). Fails with `Misuse` for a code that may not be sent (1005, 1006, 1015,
/// unassigned ranges; see [`is_valid_close_code`]).
pub fn encode_close(code: Option<u16>, reason: &str, out: &mut BytesMut) -> Result<(), Error> {
    let Some(code) = code else {
        if !reason.is_empty() {
            return Err(Error::Misuse("close reason without a close code"));
        }
        put_header(Opcode::Close, true, 0, out);
        return Ok(());
    };
    if !is_valid_close_code(code) {
        return Err(Error::Misuse("close code that may not be sent"));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::Misuse("close reason longer than 123 bytes"));
    }
    put_header(Opcode::Close, true, 2 + reason.len(), out);
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
    Ok(())
}

/// A complete server frame (header and payload in one allocation) shared by every recipient of a
/// broadcast. Cloning is a reference-count increment; the bytes never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFrame {
    bytes: Bytes,
}

impl SharedFrame {
    /// Builds a final text frame whose payload is `payload_parts` concatenated (for Engine.IO, `"4"`
    /// then the Socket.IO packet). The concatenation must be UTF-8; not checked in release builds.
    /// Run once per broadcast. Cost: one allocation of exactly header + payload bytes, one copy of each
    /// part, and one small allocation for the shared refcount; cloning afterwards allocates nothing.
    pub fn text(payload_parts: &[&[u8]]) -> SharedFrame {
        let frame = SharedFrame::build(Opcode::Text, payload_parts);
        debug_assert!(std::str::from_utf8(frame.payload()).is_ok(), "text frame payload is not UTF-8");
        frame
    }

    /// Builds a final binary frame whose payload is `payload_parts` concatenated (a Socket.IO binary
    /// attachment). Same cost as [`SharedFrame::text`].
    pub fn binary(payload_parts: &[&[u8]]) -> SharedFrame {
        SharedFrame::build(Opcode::Binary, payload_parts)
    }

    fn build(opcode: Opcode, payload_parts: &[&[u8]]) -> SharedFrame {
        let payload_len = payload_parts.iter().map(|part| part.len()).sum();
        let mut out = BytesMut::with_capacity(header_len(payload_len) + payload_len);
        put_header(opcode, true, payload_len, &mut out);
        for part in payload_parts {
            out.put_slice(part);
        }
        let bytes = out.freeze();
        // `bytes` allocates its shared refcount on the first clone; do it here, once, so queueing the
        // frame on each recipient is a plain atomic increment.
        drop(bytes.clone());
        SharedFrame { bytes }
    }

    /// The whole frame, ready to queue on a socket.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The whole frame, without a refcount increment.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The payload (the frame minus its header).
    pub fn payload(&self) -> &[u8] {
        let header = self.bytes.get(1).map_or(0, |len7| match len7 & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        });
        self.bytes.get(header..).unwrap_or_default()
    }
}

/// [`SharedFrame::text`] as plain `Bytes`: the pre-encoded broadcast frame of protocol notes §4.6.
pub fn prebuilt_text_frame(payload_parts: &[&[u8]]) -> Bytes {
    SharedFrame::text(payload_parts).into_bytes()
}

/// [`SharedFrame::binary`] as plain `Bytes`.
pub fn prebuilt_binary_frame(payload_parts: &[&[u8]]) -> Bytes {
    SharedFrame::binary(payload_parts).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut out = BytesMut::new();
        write(&mut out);
        out.to_vec()
    }

    #[test]
    fn rfc6455_examples_encode_to_their_golden_bytes() {
        // §5.7: single-frame unmasked text "Hello".
        assert_eq!(encoded(|o| encode_text("Hello", o)), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // §5.7: fragmented unmasked text "Hel" + "lo".
        let fragments = encoded(|o| {
            encode_frame(Opcode::Text, false, b"Hel", o).unwrap();
            encode_frame(Opcode::Continuation, true, b"lo", o).unwrap();
        });
        assert_eq!(fragments, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        // §5.7: unmasked ping "Hello" and its pong.
        assert_eq!(
            encoded(|o| encode_ping(b"Hello", o).unwrap()),
            [0x89, 0x05, b'H', b'e', b'l', b'l', b'o']
        );
        assert_eq!(encoded(|o| encode_pong(b"Hello", o).unwrap())[..2], [0x8a, 0x05]);
        // §5.7: 256 bytes and 64 KiB binary use the 16- and 64-bit length forms.
        let big = encoded(|o| encode_binary(&[7; 256], o));
        assert_eq!((&big[..4], big.len()), (&[0x82, 0x7e, 0x01, 0x00][..], 4 + 256));
        let huge = encoded(|o| encode_binary(&vec![7; 65536], o));
        assert_eq!(&huge[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(huge.len(), 10 + 65536);
    }

    #[test]
    fn length_forms_switch_at_126_and_65536() {
        for (len, header) in [(125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let frame = encoded(|o| frame_header(Opcode::Binary, len, o));
            assert_eq!(frame.len(), header, "payload {len}");
            assert_eq!(header_len(len), header);
        }
        assert_eq!(encoded(|o| frame_header(Opcode::Text, 126, o)), [0x81, 126, 0, 126]);
    }

    #[test]
    fn close_frames_carry_code_and_reason_or_nothing() {
        assert_eq!(encoded(|o| encode_close(Some(1000), "", o).unwrap()), [0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(
            encoded(|o| encode_close(Some(1001), "bye", o).unwrap()),
            [0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']
        );
        assert_eq!(encoded(|o| encode_close(None, "", o).unwrap()), [0x88, 0x00]);
    }

    #[test]
    fn forbidden_frames_are_misuse_and_write_nothing() {
        let mut out = BytesMut::new();
        assert!(matches!(encode_close(Some(1005), "", &mut out), Err(Error::Misuse(_))));
        assert!(matches!(encode_close(None, "why", &mut out), Err(Error::Misuse(_))));
        assert!(matches!(encode_close(Some(1000), &"x".repeat(124), &mut out), Err(Error::Misuse(_))));
        assert!(matches!(encode_ping(&[0; 126], &mut out), Err(Error::Misuse(_))));
        assert!(matches!(encode_frame(Opcode::Pong, false, b"", &mut out), Err(Error::Misuse(_))));
        assert!(out.is_empty());
    }

    #[test]
    fn shared_text_frame_is_the_concatenated_parts_in_one_buffer() {
        let frame = SharedFrame::text(&[b"4", br#"2["chat","hi"]"#]);
        let mut expected = BytesMut::new();
        encode_text(r#"42["chat","hi"]"#, &mut expected);
        assert_eq!(frame.bytes()[..], expected[..]);
        assert_eq!(frame.payload(), br#"42["chat","hi"]"#);
        // Recipients share the allocation instead of copying it.
        let queued = frame.clone().into_bytes();
        assert_eq!(queued.as_ptr(), frame.bytes().as_ptr());
    }

    #[test]
    fn shared_frames_over_125_and_65535_bytes_have_the_long_headers() {
        let payload = vec![b'a'; 70_000];
        let frame = prebuilt_text_frame(&[b"4", &payload]);
        assert_eq!(&frame[..10], [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x71]);
        assert_eq!(frame.len(), 10 + 70_001);
        let binary = SharedFrame::binary(&[&payload[..300]]);
        assert_eq!(&binary.bytes()[..4], [0x82, 126, 0x01, 0x2c]);
        assert_eq!(binary.payload().len(), 300);
        assert_eq!(prebuilt_binary_frame(&[]).to_vec(), [0x82, 0]);
    }
}
