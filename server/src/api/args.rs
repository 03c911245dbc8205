//! Event arguments: what handlers receive (borrowed JSON texts and binary attachments) and what they send.
//!
//! JSON is never parsed into values on the way through: an argument is its raw JSON text, validated by
//! the engine, so a payload is re-emitted byte for byte (key order, number spelling). Handlers that need
//! values parse the text themselves (e.g. `serde_json::from_slice`).

use bytes::Bytes;
use roomcast_engine::sio::json;

/// One argument to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A JSON value, as its text.
    Json(Bytes),
    /// A binary attachment (sent as a Socket.IO attachment, i.e. a `Buffer` on Node clients).
    Binary(Bytes),
    /// A JSON value with binary attachments nested inside (`{"file":<Buffer>}` on Node clients).
    JsonWithBinary(JsonWithBinary),
}

/// A JSON text that did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON argument")]
pub struct InvalidJson;

/// A JSON value whose placeholders `{"_placeholder":true,"num":N}` stand for `attachments[N]`, checked
/// when built: the text is valid JSON and every `num` indexes `attachments`. When sent, placeholders are
/// renumbered into the packet's attachment sequence, so several such arguments combine freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonWithBinary {
    json: Bytes,
    attachments: Vec<Bytes>,
}

impl JsonWithBinary {
    /// Checks `json` (nesting limited to 64 levels) and its placeholders against `attachments`.
    pub fn new(json: impl Into<Bytes>, attachments: Vec<Bytes>) -> Result<Self, InvalidJson> {
        let json = json.into();
        let mut in_range = true;
        let validated = json::placeholders(&json, 64, |p| {
            in_range &= p.num.is_some_and(|n| n < attachments.len()) && p.num_text.is_some();
        })
        .map_err(|_| InvalidJson)?;
        if !in_range || validated.value != (0..json.len()) {
            return Err(InvalidJson);
        }
        Ok(JsonWithBinary { json, attachments })
    }

    /// The JSON text, placeholders numbered from 0 in [`JsonWithBinary::attachments`].
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// From a received argument: placeholders numbered in the whole packet's sequence become numbered
    /// in this argument's own, in text order. Cost: one pass over `json`, one copy of it.
    fn renumbered(json: &[u8], packet_attachments: &[Bytes]) -> Self {
        let mut found = Vec::new();
        let _ = json::placeholders(json, json::MAX_DEPTH_CEILING, |p| {
            if let (Some(num), Some(text)) = (p.num, p.num_text) {
                found.push((text, num));
            }
        });
        found.sort_by_key(|(text, _)| text.start);
        let mut out = Vec::with_capacity(json.len());
        let mut attachments = Vec::with_capacity(found.len());
        let mut copied = 0;
        for (text, num) in found {
            out.extend_from_slice(json.get(copied..text.start).unwrap_or_default());
            out.extend_from_slice(attachments.len().to_string().as_bytes());
            attachments.push(packet_attachments.get(num).cloned().unwrap_or_default());
            copied = text.end;
        }
        out.extend_from_slice(json.get(copied..).unwrap_or_default());
        JsonWithBinary { json: Bytes::from(out), attachments }
    }
}

impl Arg {
    /// A JSON string argument.
    pub fn str(text: &str) -> Arg {
        let mut out = Vec::with_capacity(text.len() + 2);
        write_json_string(text, &mut out);
        Arg::Json(Bytes::from(out))
    }

    /// A JSON argument from its text, validated (nesting limited to 64 levels).
    pub fn json(text: impl Into<Bytes>) -> Result<Arg, InvalidJson> {
        let text = text.into();
        json::validate(&text, 64).map_err(|_| InvalidJson)?;
        Ok(Arg::Json(text))
    }

    /// A JSON argument from any serializable value.
    pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Arg, InvalidJson> {
        serde_json::to_vec(value).map(|v| Arg::Json(Bytes::from(v))).map_err(|_| InvalidJson)
    }

    /// A binary argument.
    pub fn binary(bytes: impl Into<Bytes>) -> Arg {
        Arg::Binary(bytes.into())
    }
}

/// Writes `text` as a JSON string literal (quotes included), escaping as `JSON.stringify` does.
pub(crate) fn write_json_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A received argument: its JSON text, a binary attachment that stood at this position, or JSON with
/// attachments nested inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRef<'a> {
    Json(&'a [u8]),
    Binary(&'a Bytes),
    /// JSON with placeholders nested inside, numbered in the received packet's sequence: `num` indexes
    /// `attachments` (all of the packet's). [`ArgRef::to_arg`] renumbers them for sending.
    JsonWithBinary {
        json: &'a [u8],
        attachments: &'a [Bytes],
    },
}

impl<'a> ArgRef<'a> {
    /// The argument as an owned [`Arg`] (a copy for JSON, a refcount for binary), e.g. to echo it.
    pub fn to_arg(self) -> Arg {
        match self {
            ArgRef::Json(text) => Arg::Json(Bytes::copy_from_slice(text)),
            ArgRef::Binary(bytes) => Arg::Binary(bytes.clone()),
            ArgRef::JsonWithBinary { json, attachments } => {
                Arg::JsonWithBinary(JsonWithBinary::renumbered(json, attachments))
            }
        }
    }

    /// The JSON text, if this is a plain JSON argument (no binary inside).
    pub fn json(self) -> Option<&'a [u8]> {
        match self {
            ArgRef::Json(text) => Some(text),
            ArgRef::Binary(_) | ArgRef::JsonWithBinary { .. } => None,
        }
    }

    /// The value of a JSON string argument, un-escaped.
    pub fn as_str(self) -> Option<std::borrow::Cow<'a, str>> {
        match self {
            ArgRef::Json(text) if text.first() == Some(&b'"') => json::unescape_string(text),
            _ => None,
        }
    }
}

/// An event received from a client: its name and arguments (ack id aside).
#[derive(Debug)]
pub struct Event<'a> {
    pub(crate) name: &'a str,
    pub(crate) args: Vec<ArgRef<'a>>,
    pub(crate) ack_id: Option<u64>,
}

impl<'a> Event<'a> {
    /// The event name (first element of the packet's array).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The arguments after the name, in order; top-level binary placeholders resolved.
    pub fn args(&self) -> &[ArgRef<'a>] {
        &self.args
    }

    /// Argument `i`, if present.
    pub fn arg(&self, i: usize) -> Option<ArgRef<'a>> {
        self.args.get(i).copied()
    }

    /// Whether the client asked for an acknowledgement (answer it with `Socket::ack`).
    pub fn wants_ack(&self) -> bool {
        self.ack_id.is_some()
    }

    /// The client's ack id, if any.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }

    /// All arguments as owned [`Arg`]s (e.g. to echo them).
    pub fn to_args(&self) -> Vec<Arg> {
        self.args.iter().map(|a| a.to_arg()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_json_stringify() {
        assert_eq!(
            Arg::str("a\"b\\c\n\u{1}é"),
            Arg::Json(Bytes::from_static(b"\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\""))
        );
    }

    #[test]
    fn nested_binary_is_renumbered_into_its_own_sequence() {
        let packet = [Bytes::from_static(b"a"), Bytes::from_static(b"b"), Bytes::from_static(b"c")];
        let json = br#"{"x":[{"_placeholder":true,"num":2},{"_placeholder":true,"num":0}]}"#;
        let arg = ArgRef::JsonWithBinary { json, attachments: &packet }.to_arg();
        let own = JsonWithBinary::new(
            &br#"{"x":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}"#[..],
            vec![packet[2].clone(), packet[0].clone()],
        )
        .unwrap();
        assert_eq!(arg, Arg::JsonWithBinary(own));
    }

    #[test]
    fn nested_binary_must_match_its_attachments() {
        let one = vec![Bytes::from_static(b"a")];
        assert!(JsonWithBinary::new(&br#"[{"_placeholder":true,"num":0}]"#[..], one.clone()).is_ok());
        assert_eq!(
            JsonWithBinary::new(&br#"[{"_placeholder":true,"num":1}]"#[..], one.clone()),
            Err(InvalidJson)
        );
        assert_eq!(JsonWithBinary::new(&br#"[{"_placeholder":true}]"#[..], one.clone()), Err(InvalidJson));
        assert_eq!(JsonWithBinary::new(&b"[1,"[..], one), Err(InvalidJson));
    }

    #[test]
    fn invalid_json_is_refused() {
        assert_eq!(Arg::json("{\"a\":"), Err(InvalidJson));
        assert!(Arg::json("{\"b\":1,\"a\":2}").is_ok());
    }
}
