//! Packet encoders: `<type>[<n>-][<nsp>,][<ack id>][<JSON>]` written from parts, with raw JSON arguments
//! copied verbatim (never re-serialized).
//!
//! Every `encode_*` function appends to `out` and reserves the exact length first, so a warm buffer
//! costs one copy per input byte and no allocation. Raw JSON arguments are the caller's contract: each
//! must be one valid JSON value (checked by `debug_assert!` only). Strings the encoder writes itself
//! (event names, messages, ids) are escaped exactly as `JSON.stringify` escapes them.

use bytes::{BufMut, Bytes, BytesMut};

use super::json;
use super::packet::PacketType;

/// The Engine.IO `message` packet type: the byte in front of every Socket.IO packet text on the wire.
pub const EIO_MESSAGE: u8 = b'4';

fn names_nsp(nsp: &str) -> bool {
    // socket.io-parser writes the namespace when it is truthy and not "/".
    !nsp.is_empty() && nsp != "/"
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

pub(crate) fn write_decimal(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        if let Some(slot) = digits.get_mut(i) {
            *slot = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Length of the packet header (everything before the JSON payload).
pub(crate) fn header_len(kind: PacketType, attachments: usize, nsp: &str, ack_id: Option<u64>) -> usize {
    let count = if kind.is_binary() { decimal_len(attachments as u64) + 1 } else { 0 };
    let nsp = if names_nsp(nsp) { nsp.len() + 1 } else { 0 };
    1 + count + nsp + ack_id.map_or(0, decimal_len)
}

/// Writes the packet header; `attachments` is written only for binary types. `nsp` must be `"/"`, empty,
/// or start with `/` and hold no `,` (checked in debug builds): a namespace a decoder could read back.
pub(crate) fn write_header(
    out: &mut BytesMut,
    kind: PacketType,
    attachments: usize,
    nsp: &str,
    ack_id: Option<u64>,
) {
    debug_assert!(nsp.is_empty() || (nsp.starts_with('/') && !nsp.contains(',')), "bad namespace {nsp:?}");
    out.put_u8(kind.digit());
    if kind.is_binary() {
        write_decimal(out, attachments as u64);
        out.put_u8(b'-');
    }
    if names_nsp(nsp) {
        out.extend_from_slice(nsp.as_bytes());
        out.put_u8(b',');
    }
    if let Some(id) = ack_id {
        write_decimal(out, id);
    }
}

/// The escape `JSON.stringify` writes for byte `b` of a string, if any.
fn escape_of(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x0c => b"\\f",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x00..=0x1f => b"\\u00",
        _ => return None,
    })
}

/// Length of `s` as a JSON string token, quotes included.
pub(crate) fn json_string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match escape_of(b) {
            Some(b"\\u00") => 6,
            Some(e) => e.len(),
            None => 1,
        })
        .sum::<usize>()
}

/// Writes `s` as a JSON string token exactly as `JSON.stringify` would (lowercase `\u00xx` for other
/// control characters; `/`, DEL and non-ASCII left as they are).
pub(crate) fn write_json_string(out: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let Some(escape) = escape_of(b) else { continue };
        out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
        out.extend_from_slice(escape);
        if escape == b"\\u00" {
            out.put_u8(HEX[usize::from(b >> 4)]);
            out.put_u8(HEX[usize::from(b & 0xf)]);
        }
        run_start = i + 1;
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.put_u8(b'"');
}

fn debug_check_json(args: &[&[u8]]) {
    debug_assert!(
        args.iter()
            .all(|a| json::validate(a, json::MAX_DEPTH_CEILING).is_ok_and(|v| v.value == (0..a.len()))),
        "raw JSON arguments must each be one valid JSON value without surrounding whitespace"
    );
}

fn args_len(args: &[&[u8]]) -> usize {
    args.iter().map(|a| a.len() + 1).sum()
}

/// Length of [`encode_event`]'s output for the same parts.
pub fn event_len(nsp: &str, ack_id: Option<u64>, event: &str, args: &[&[u8]]) -> usize {
    header_len(PacketType::Event, 0, nsp, ack_id) + 2 + json_string_len(event) + args_len(args)
}

/// Appends the EVENT `2[<nsp>,][<ack id>]["<event>",<arg>,…]` to `out`; `args` are raw JSON texts
/// copied verbatim. `ack_id` asks the receiver to acknowledge. Cost: one reserve and one copy.
pub fn encode_event(nsp: &str, ack_id: Option<u64>, event: &str, args: &[&[u8]], out: &mut BytesMut) {
    debug_check_json(args);
    out.reserve(event_len(nsp, ack_id, event, args));
    write_header(out, PacketType::Event, 0, nsp, ack_id);
    out.put_u8(b'[');
    write_json_string(out, event);
    for arg in args {
        out.put_u8(b',');
        out.extend_from_slice(arg);
    }
    out.put_u8(b']');
}

/// The Engine.IO message text (`"4"` + EVENT packet) of an event in one exactly-sized, frozen buffer:
/// what a broadcast encodes once, frames once and shares with every recipient.
pub fn event_message(nsp: &str, ack_id: Option<u64>, event: &str, args: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + event_len(nsp, ack_id, event, args));
    out.put_u8(EIO_MESSAGE);
    encode_event(nsp, ack_id, event, args, &mut out);
    out.freeze()
}

/// Appends the ACK `3[<nsp>,]<ack id>[<arg>,…]` answering `ack_id`; `args` are raw JSON texts.
pub fn encode_ack(nsp: &str, ack_id: u64, args: &[&[u8]], out: &mut BytesMut) {
    debug_check_json(args);
    out.reserve(header_len(PacketType::Ack, 0, nsp, Some(ack_id)) + 1 + args_len(args).max(1));
    write_header(out, PacketType::Ack, 0, nsp, Some(ack_id));
    out.put_u8(b'[');
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.extend_from_slice(arg);
    }
    out.put_u8(b']');
}

/// Appends the server's CONNECT reply `0[<nsp>,]{"sid":"<sid>"}`, with `,"pid":"<pid>"` only when
/// connection state recovery hands out a private session id (the reference omits it otherwise).
pub fn encode_connect(nsp: &str, sid: &str, pid: Option<&str>, out: &mut BytesMut) {
    let pid_len = pid.map_or(0, |p| 7 + json_string_len(p));
    out.reserve(header_len(PacketType::Connect, 0, nsp, None) + 8 + json_string_len(sid) + pid_len);
    write_header(out, PacketType::Connect, 0, nsp, None);
    out.extend_from_slice(b"{\"sid\":");
    write_json_string(out, sid);
    if let Some(pid) = pid {
        out.extend_from_slice(b",\"pid\":");
        write_json_string(out, pid);
    }
    out.put_u8(b'}');
}

/// Appends CONNECT_ERROR `4[<nsp>,]{"message":"<message>","data":<data>}`; `data` is raw JSON and the
/// member is omitted when `None` (as `JSON.stringify` omits `undefined`).
pub fn encode_connect_error(nsp: &str, message: &str, data: Option<&[u8]>, out: &mut BytesMut) {
    if let Some(data) = data {
        debug_check_json(&[data]);
    }
    let data_len = data.map_or(0, |d| 8 + d.len());
    out.reserve(
        header_len(PacketType::ConnectError, 0, nsp, None) + 12 + json_string_len(message) + data_len,
    );
    write_header(out, PacketType::ConnectError, 0, nsp, None);
    out.extend_from_slice(b"{\"message\":");
    write_json_string(out, message);
    if let Some(data) = data {
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data);
    }
    out.put_u8(b'}');
}

/// Appends DISCONNECT `1[<nsp>,]` (`1` for the main namespace, `1/admin,` otherwise).
pub fn encode_disconnect(nsp: &str, out: &mut BytesMut) {
    write_header(out, PacketType::Disconnect, 0, nsp, None);
}
