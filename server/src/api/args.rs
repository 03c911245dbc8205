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
}

/// A JSON text that did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON argument")]
pub struct InvalidJson;

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

/// A received argument: its JSON text, or a binary attachment that stood at this position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRef<'a> {
    Json(&'a [u8]),
    Binary(&'a Bytes),
}

impl<'a> ArgRef<'a> {
    /// The argument as an owned [`Arg`] (a copy for JSON, a refcount for binary), e.g. to echo it.
    pub fn to_arg(self) -> Arg {
        match self {
            ArgRef::Json(text) => Arg::Json(Bytes::copy_from_slice(text)),
            ArgRef::Binary(bytes) => Arg::Binary(bytes.clone()),
        }
    }

    /// The JSON text, if this is a JSON argument.
    pub fn json(self) -> Option<&'a [u8]> {
        match self {
            ArgRef::Json(text) => Some(text),
            ArgRef::Binary(_) => None,
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
    fn invalid_json_is_refused() {
        assert_eq!(Arg::json("{\"a\":"), Err(InvalidJson));
        assert!(Arg::json("{\"b\":1,\"a\":2}").is_ok());
    }
}
