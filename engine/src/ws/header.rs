//! Frame headers: parsing (with a bounded carry-over for headers split across reads) and unmasking.
//!
//! The server role reads client frames, which must be masked (RFC 6455 §5.1); the client role reads
//! server frames, which must not be.

use super::{Opcode, MAX_CLIENT_HEADER_LEN, MAX_CONTROL_PAYLOAD};
use crate::error::{Error, PeerMisbehaved};

/// Which side of the connection the decoder runs on, and so which masking rule the peer must follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Role {
    /// We are the server: frames come from a client and must be masked.
    #[default]
    Server,
    /// We are the client: frames come from a server and must not be masked.
    Client,
}

/// A validated frame header (RFC 6455 §5.2).
///
/// Invariant: the masking bit matched the role (a client frame carried a key; a server frame carried
/// none, and `mask` is then all zeros, which unmasking leaves as is), the RSV bits were 0, a control
/// frame has `fin` and `payload_len <= 125`, and `payload_len < 2^63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub(super) fin: bool,
    pub(super) opcode: Opcode,
    pub(super) mask: [u8; 4],
    pub(super) payload_len: u64,
}

fn protocol(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::WsProtocol(what))
}

/// Parses and validates the header at the start of `bytes`, as read by `role`.
///
/// Returns `Ok(None)` when `bytes` holds only a prefix of a header that is valid so far, and
/// `Ok(Some((header, header_len)))` once it is complete. Checks run in wire order (first byte, then the
/// second, then the extended length) so the error for a given byte stream does not depend on how it was
/// split. Never reads past the header.
pub(super) fn parse_header(bytes: &[u8], role: Role) -> Result<Option<(FrameHeader, usize)>, Error> {
    let Some(&b0) = bytes.first() else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(protocol("RSV bit set without a negotiated extension"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(protocol("reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() && !fin {
        return Err(protocol("fragmented control frame"));
    }
    let Some(&b1) = bytes.get(1) else { return Ok(None) };
    let masked = b1 & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(Error::PeerMisbehaved(PeerMisbehaved::WsUnmasked)),
        (Role::Client, true) => return Err(Error::PeerMisbehaved(PeerMisbehaved::WsMasked)),
        _ => {}
    }
    let len7 = b1 & 0x7f;
    if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
        return Err(protocol("control frame payload longer than 125 bytes"));
    }
    let extended_len = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + extended_len + if masked { 4 } else { 0 };
    let Some(rest) = bytes.get(2..header_len) else { return Ok(None) };
    let (length_bytes, mask_bytes) = rest.split_at(extended_len);
    let payload_len = match *length_bytes {
        [] => u64::from(len7),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => return Err(Error::Misuse("header length table out of step")),
    };
    if payload_len >> 63 != 0 {
        return Err(protocol("64-bit payload length with the most significant bit set"));
    }
    // Four key bytes when masked, none otherwise (then the all-zero key leaves payloads as they are).
    let mask = <[u8; 4]>::try_from(mask_bytes).unwrap_or([0; 4]);
    Ok(Some((FrameHeader { fin, opcode, mask, payload_len }, header_len)))
}

/// The start of a header that arrived split across reads, and the role headers are read in. At most 13
/// bytes are ever held.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HeaderCarry {
    bytes: [u8; MAX_CLIENT_HEADER_LEN],
    len: u8,
    role: Role,
}

impl HeaderCarry {
    /// An empty carry reading headers as `role`.
    pub(super) fn new(role: Role) -> HeaderCarry {
        HeaderCarry { role, ..HeaderCarry::default() }
    }

    /// Completes a header from the carried bytes plus the front of `input`.
    ///
    /// Returns `Ok(Some((header, used)))` where `used` is how many bytes of `input` the header took, or
    /// `Ok(None)` after carrying all of `input` (the header is still incomplete). Cost: one parse; when
    /// nothing is carried the header is parsed straight from `input` with no copy.
    pub(super) fn take_header(&mut self, input: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        if self.len == 0 {
            if let Some(done) = parse_header(input, self.role)? {
                return Ok(Some(done));
            }
            // A valid but incomplete header prefix is shorter than MAX_CLIENT_HEADER_LEN.
            self.push(input);
            return Ok(None);
        }
        let carried = usize::from(self.len);
        let mut joined = self.bytes;
        let room = MAX_CLIENT_HEADER_LEN - carried;
        let from_input = input.get(..room).unwrap_or(input);
        let filled = carried + from_input.len();
        joined[carried..filled].copy_from_slice(from_input);
        match parse_header(&joined[..filled], self.role)? {
            Some((header, header_len)) => {
                self.len = 0;
                Ok(Some((header, header_len - carried)))
            }
            None => {
                // Incomplete even with `room` more bytes, so `input` was shorter than `room`.
                self.push(input);
                Ok(None)
            }
        }
    }

    fn push(&mut self, input: &[u8]) {
        let start = usize::from(self.len);
        let end = (start + input.len()).min(MAX_CLIENT_HEADER_LEN);
        if let (Some(slot), Some(src)) = (self.bytes.get_mut(start..end), input.get(..end - start)) {
            slot.copy_from_slice(src);
            // end <= 14, so it fits a u8.
            self.len = end as u8;
        }
    }
}

/// XORs `data` with the masking key, `data[0]` being payload byte number `offset` of its frame.
///
/// Cost: one pass, 8 bytes at a time.
pub(super) fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    if mask == [0; 4] {
        return; // a server frame (no key), or a client key of zeros: XOR would change nothing
    }
    let rotated = [mask[offset % 4], mask[(offset + 1) % 4], mask[(offset + 2) % 4], mask[(offset + 3) % 4]];
    let [a, b, c, d] = rotated;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        if let Ok(word) = <&mut [u8; 8]>::try_from(word) {
            *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
        }
    }
    for (byte, key) in words.into_remainder().iter_mut().zip(rotated.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmask_matches_the_bytewise_definition_at_every_offset_and_length() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let original: Vec<u8> = (0..40u8).collect();
        for offset in 0..4 {
            for len in 0..original.len() {
                let mut data = original[..len].to_vec();
                unmask(&mut data, mask, offset);
                let expected: Vec<u8> =
                    original[..len].iter().enumerate().map(|(i, b)| b ^ mask[(i + offset) % 4]).collect();
                assert_eq!(data, expected, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn header_split_at_every_point_parses_like_the_whole_header() {
        // Binary frame, 64-bit length 65536, masked.
        let header = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        let whole = parse_header(&header, Role::Server).unwrap().unwrap();
        assert_eq!(whole.0.payload_len, 65536);
        assert_eq!(whole.1, 14);
        for split in 0..header.len() {
            let mut carry = HeaderCarry::new(Role::Server);
            assert_eq!(carry.take_header(&header[..split]).unwrap(), None);
            let (parsed, used) = carry.take_header(&header[split..]).unwrap().unwrap();
            assert_eq!(parsed, whole.0);
            assert_eq!(used, header.len() - split);
        }
    }

    #[test]
    fn server_headers_have_no_key_and_split_anywhere() {
        // Binary frame, 16-bit length 300, unmasked.
        let header = [0x82, 0x7e, 0x01, 0x2c];
        let (whole, len) = parse_header(&header, Role::Client).unwrap().unwrap();
        assert_eq!((whole.payload_len, whole.mask, len), (300, [0; 4], 4));
        for split in 0..header.len() {
            let mut carry = HeaderCarry::new(Role::Client);
            assert_eq!(carry.take_header(&header[..split]).unwrap(), None);
            assert_eq!(carry.take_header(&header[split..]).unwrap(), Some((whole, header.len() - split)));
        }
    }

    #[test]
    fn each_role_refuses_the_other_masking_rule() {
        let masked = [0x81, 0x80, 1, 2, 3, 4];
        let unmasked = [0x81, 0x00];
        assert_eq!(parse_header(&masked, Role::Client), Err(PeerMisbehaved::WsMasked.into()));
        assert_eq!(parse_header(&unmasked, Role::Server), Err(PeerMisbehaved::WsUnmasked.into()));
    }
}
