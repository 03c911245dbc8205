//! Between Socket.IO's JSON argument texts and the adapters' values, preserving what a mixed cluster
//! needs: the bytes a Roomcast client receives for a broadcast that came from a Node.js server are the
//! bytes that server's own clients receive.
//!
//! - Value → Socket.IO: [`event_message`] turns a broadcast's `packet.data` (`[event, …args]`) into the
//!   Engine.IO message text of an EVENT, or of a BINARY_EVENT plus its attachments when it holds
//!   buffers. Values print as `JSON.stringify` prints them (compact, member order kept, numbers and
//!   dates spelled by [`super::js`]); buffers become `{"_placeholder":true,"num":N}` in depth-first
//!   order as socket.io-parser's `deconstructPacket` numbers them. The text comes from
//!   [`crate::sio::encode_event_with_binary`], so it is byte for byte what a local emit of the same
//!   arguments produces.
//! - Socket.IO → value: [`event_data`] turns an event name and the raw arguments the server holds
//!   ([`OutArg`]s) into `[event, …args]`: JSON numbers as notepack writes JavaScript numbers (integral
//!   and within ±(2^53 − 1) → integers, others → floats), objects with their member order, and binary
//!   arguments (placeholders resolved) as [`Value::Bin`].
//! - [`json_to_value`] / [`value_to_json`] read and write the JSON-encoded adapter messages.
//!
//! JavaScript differences that are kept on purpose: an object read from JSON keeps its members in text
//! order, duplicates included (JavaScript would move integer-like keys first and keep the last
//! duplicate at the first one's place); a lone surrogate escape becomes U+FFFD. Neither occurs in
//! `JSON.stringify` output of ordinary data.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::js;
use super::msgpack::{ext_date_ms, Value, MAX_DEPTH};
use crate::sio::encode::write_json_string;
use crate::sio::json::{self, scan_value, JsonError, JsonKind, Visitor};
use crate::sio::{encode_event_with_binary, OutArg, EIO_MESSAGE};
use crate::{Error, Limit, PeerMisbehaved};

fn malformed(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::ClusterParse(what))
}

/// How buffers are written into JSON text.
#[derive(Debug)]
pub enum BinaryJson<'a> {
    /// As socket.io-parser's placeholders `{"_placeholder":true,"num":N}`; each buffer is appended to
    /// the vector and `N` counts from the vector's length when the call started.
    Placeholders(&'a mut Vec<Bytes>),
    /// As `JSON.stringify` writes a Node `Buffer`: `{"type":"Buffer","data":[1,2,3]}`.
    BufferObject,
}

/// Appends the `JSON.stringify` text of `value`. `undefined` prints as `null` (in arrays and at the
/// top) and is left out as a map member, as are values JavaScript cannot print (never here). Cost: one
/// pass; recursion as deep as the value.
pub fn write_json(value: &Value, out: &mut BytesMut, binary: &mut BinaryJson<'_>) {
    let first = match binary {
        BinaryJson::Placeholders(list) => list.len(),
        BinaryJson::BufferObject => 0,
    };
    write_value(value, out, binary, first);
}

fn write_value(value: &Value, out: &mut BytesMut, binary: &mut BinaryJson<'_>, first: usize) {
    match value {
        Value::Nil | Value::Undefined => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(n) => js::write_integer(*n, out),
        Value::Float(x) => js::write_json_number(*x, out),
        Value::Str(s) => write_json_string(out, s),
        Value::Bin(data) => write_binary(data, out, binary, first),
        Value::Array(items) => {
            out.put_u8(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_value(item, out, binary, first);
            }
            out.put_u8(b']');
        }
        Value::Map(entries) => {
            out.put_u8(b'{');
            let present = entries.iter().filter(|(_, v)| !matches!(v, Value::Undefined));
            for (i, (key, item)) in present.enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_json_string(out, key);
                out.put_u8(b':');
                write_value(item, out, binary, first);
            }
            out.put_u8(b'}');
        }
        Value::Ext(kind, data) => match ext_date_ms(*kind, data) {
            Some(ms) => js::write_json_date(ms, out),
            None => {
                // notepack's `[type, Buffer]`.
                out.put_u8(b'[');
                js::write_integer(i64::from(*kind), out);
                out.put_u8(b',');
                write_binary(data, out, binary, first);
                out.put_u8(b']');
            }
        },
    }
}

fn write_binary(data: &Bytes, out: &mut BytesMut, binary: &mut BinaryJson<'_>, first: usize) {
    match binary {
        BinaryJson::Placeholders(list) => {
            out.extend_from_slice(b"{\"_placeholder\":true,\"num\":");
            out.extend_from_slice((list.len() - first).to_string().as_bytes());
            out.put_u8(b'}');
            list.push(data.clone());
        }
        BinaryJson::BufferObject => {
            out.extend_from_slice(b"{\"type\":\"Buffer\",\"data\":[");
            for (i, byte) in data.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                out.extend_from_slice(byte.to_string().as_bytes());
            }
            out.extend_from_slice(b"]}");
        }
    }
}

/// The `JSON.stringify` text of `value`, buffers written as Node writes them
/// ([`BinaryJson::BufferObject`]).
pub fn value_to_json(value: &Value) -> Bytes {
    let mut out = BytesMut::new();
    write_json(value, &mut out, &mut BinaryJson::BufferObject);
    out.freeze()
}

/// Reads one JSON text (a JSON-encoded adapter message) into a value, as `JSON.parse` would.
/// Errors: [`PeerMisbehaved::ClusterParse`] for invalid JSON, [`Limit::ClusterDepth`] beyond
/// [`MAX_DEPTH`]. Cost: one pass, no recursion.
pub fn json_to_value(text: &[u8]) -> Result<Value, Error> {
    parse(text, None).map_err(|e| match e {
        ParseError::TooDeep => Error::LimitExceeded(Limit::ClusterDepth { max: MAX_DEPTH }),
        ParseError::Invalid(what) => malformed(what),
    })
}

enum ParseError {
    Invalid(&'static str),
    TooDeep,
}

/// Parses `text`; with `attachments`, placeholder objects become those buffers (socket.io-parser's
/// `reconstructPacket`: a `_placeholder` member that is `true` and a `num` in range, else an error).
fn parse(text: &[u8], attachments: Option<&[Bytes]>) -> Result<Value, ParseError> {
    let mut builder = Builder { text, attachments, stack: Vec::new(), root: None, error: None };
    let (_, end) = scan_value(text, 0, MAX_DEPTH, &mut builder).map_err(|e| match e {
        JsonError::TooDeep { .. } => ParseError::TooDeep,
        JsonError::Syntax { what, .. } => ParseError::Invalid(what),
    })?;
    if !text.get(end..).unwrap_or_default().iter().all(|&b| json::is_json_whitespace(b)) {
        return Err(ParseError::Invalid("JSON: trailing characters after the value"));
    }
    if let Some(what) = builder.error {
        return Err(ParseError::Invalid(what));
    }
    builder.root.ok_or(ParseError::Invalid("JSON: no value"))
}

enum Frame {
    Array(Vec<Value>),
    /// Members so far, and the key whose value comes next.
    Object(Vec<(String, Value)>, String),
}

/// Builds a [`Value`] from the scanner's events (the scanner validates; this only assembles).
struct Builder<'t> {
    text: &'t [u8],
    attachments: Option<&'t [Bytes]>,
    stack: Vec<Frame>,
    root: Option<Value>,
    error: Option<&'static str>,
}

impl Builder<'_> {
    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            Some(Frame::Array(items)) => items.push(value),
            Some(Frame::Object(entries, key)) => entries.push((std::mem::take(key), value)),
            None => self.root = Some(value),
        }
    }

    fn fail(&mut self, what: &'static str) {
        self.error.get_or_insert(what);
    }

    fn scalar_value(&mut self, kind: JsonKind, token: &[u8]) -> Value {
        match kind {
            JsonKind::String => match json::unescape_string(token) {
                Some(s) => Value::Str(s.into_owned()),
                None => {
                    self.fail("JSON: bad string");
                    Value::Nil
                }
            },
            JsonKind::Number => match std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok()) {
                Some(x) => number_value(x),
                None => {
                    self.fail("JSON: bad number");
                    Value::Nil
                }
            },
            JsonKind::Bool => Value::Bool(token == b"true"),
            _ => Value::Nil,
        }
    }

    /// socket.io-parser's placeholder test and substitution for a just-closed object.
    fn resolve_placeholder(&mut self, entries: Vec<(String, Value)>) -> Value {
        let object = Value::Map(entries);
        let Some(attachments) = self.attachments else { return object };
        if object.get("_placeholder") != Some(&Value::Bool(true)) {
            return object;
        }
        let num = match object.get("num") {
            Some(Value::Int(n)) => usize::try_from(*n).ok(),
            _ => None,
        };
        match num.and_then(|n| attachments.get(n)) {
            Some(data) => Value::Bin(data.clone()),
            None => {
                self.fail("illegal attachments");
                object
            }
        }
    }
}

impl Visitor for Builder<'_> {
    fn open(&mut self, kind: JsonKind, _at: usize) {
        self.stack.push(match kind {
            JsonKind::Object => Frame::Object(Vec::new(), String::new()),
            _ => Frame::Array(Vec::new()),
        });
    }

    fn key(&mut self, raw: Range<usize>) {
        let token = self.text.get(raw.start.saturating_sub(1)..raw.end + 1).unwrap_or_default();
        let key = json::unescape_string(token).map(|k| k.into_owned());
        match (key, self.stack.last_mut()) {
            (Some(key), Some(Frame::Object(_, pending))) => *pending = key,
            _ => self.fail("JSON: bad object key"),
        }
    }

    fn scalar(&mut self, kind: JsonKind, range: Range<usize>) {
        let text = self.text;
        let value = self.scalar_value(kind, text.get(range).unwrap_or_default());
        self.push(value);
    }

    fn close(&mut self, _end: usize) {
        let value = match self.stack.pop() {
            Some(Frame::Array(items)) => Value::Array(items),
            Some(Frame::Object(entries, _)) => self.resolve_placeholder(entries),
            None => return,
        };
        self.push(value);
    }
}

/// A JavaScript number as notepack writes it: integral values within ±(2^53 − 1) as integers (`-0`
/// too, as `0`), everything else as a float.
fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() <= js::MAX_SAFE_INTEGER as f64 {
        // Exact: integral and within ±2^53.
        Value::Int(x as i64)
    } else {
        Value::Float(x)
    }
}

/// `[event, …args]` for a broadcast (or server-side emit) the server emits, from the raw arguments it
/// holds.
///
/// Errors: [`Error::Misuse`] when an argument is not one valid JSON value or a
/// [`OutArg::JsonWithBinary`] placeholder does not name one of its attachments: the server validates
/// arguments before emitting, so this is a bug in the caller. Cost: one parse of each JSON argument.
pub fn event_data(event: &str, args: &[OutArg<'_>]) -> Result<Value, Error> {
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(Value::str(event));
    for arg in args {
        data.push(arg_value(arg)?);
    }
    Ok(Value::Array(data))
}

/// One argument the server holds as the value adapters carry (e.g. a client's ack argument answering a
/// broadcast with acks): JSON read as notepack would write it, buffers and resolved placeholders as
/// [`Value::Bin`]. Errors: [`Error::Misuse`] as for [`event_data`].
pub fn arg_value(arg: &OutArg<'_>) -> Result<Value, Error> {
    match arg {
        OutArg::Json(text) => parse(text, None),
        OutArg::Binary(bytes) => Ok(Value::Bin(bytes.clone())),
        OutArg::JsonWithBinary { json, attachments } => parse(json, Some(attachments)),
    }
    .map_err(|_| Error::Misuse("event argument is not valid JSON with valid placeholders"))
}

/// One event argument as the server holds it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventArg {
    /// A JSON text with no buffer inside.
    Json(Bytes),
    /// A buffer.
    Binary(Bytes),
    /// A JSON text whose placeholders number `attachments` from 0.
    JsonWithBinary { json: Bytes, attachments: Vec<Bytes> },
}

impl EventArg {
    /// The argument as the Socket.IO encoders take it.
    pub fn as_out_arg(&self) -> OutArg<'_> {
        match self {
            EventArg::Json(json) => OutArg::Json(json),
            EventArg::Binary(data) => OutArg::Binary(data.clone()),
            EventArg::JsonWithBinary { json, attachments } => OutArg::JsonWithBinary { json, attachments },
        }
    }

    /// The argument a received value is handed to the server as (a server-side emit's argument, an
    /// ack's): buffers anywhere inside become attachments behind placeholders numbered from 0.
    pub fn from_value(value: &Value) -> EventArg {
        if let Value::Bin(data) = value {
            return EventArg::Binary(data.clone());
        }
        let mut out = BytesMut::new();
        let mut attachments = Vec::new();
        write_json(value, &mut out, &mut BinaryJson::Placeholders(&mut attachments));
        let json = out.freeze();
        if attachments.is_empty() {
            EventArg::Json(json)
        } else {
            EventArg::JsonWithBinary { json, attachments }
        }
    }
}

/// Splits `[event, …args]` (a broadcast's or a server-side emit's `data`) into the event name and the
/// arguments. Errors: [`PeerMisbehaved::ClusterParse`] unless `data` is an array starting with a string.
pub fn event_args(data: &Value) -> Result<(&str, Vec<EventArg>), Error> {
    let Value::Array(items) = data else { return Err(malformed("event data is not an array")) };
    let Some((Value::Str(event), args)) = items.split_first() else {
        return Err(malformed("event data does not start with an event name"));
    };
    Ok((event, args.iter().map(EventArg::from_value).collect()))
}

/// The Engine.IO message of an event and the binary attachments that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// `4` then the packet: `42["ev",…]`, `42/nsp,["ev",…]` or `451-["ev",{"_placeholder":…}]`.
    pub text: Bytes,
    /// Binary attachments in `num` order, each sent as its own Engine.IO binary message.
    pub attachments: Vec<Bytes>,
}

/// Whether `nsp` can be written into a packet header and read back: `/` or `/name` without a comma.
pub fn is_valid_nsp(nsp: &str) -> bool {
    nsp.starts_with('/') && !nsp.contains(',')
}

/// The Engine.IO message a broadcast's `data` (`[event, …args]`) is sent to clients as, in namespace
/// `nsp`: exactly what [`encode_event_with_binary`] writes for the same arguments.
/// Errors: [`PeerMisbehaved::ClusterParse`] for data that is not `[event name, …]`, a namespace that
/// is not `/…` without a comma, or an argument holding both buffers and a placeholder look-alike that
/// names no buffer. Cost: one write of the arguments' JSON, one copy into the message.
pub fn event_message(nsp: &str, data: &Value) -> Result<EventMessage, Error> {
    if !is_valid_nsp(nsp) {
        return Err(malformed("namespace must start with '/' and hold no ','"));
    }
    let (event, args) = event_args(data)?;
    let out_args: Vec<OutArg<'_>> = args.iter().map(EventArg::as_out_arg).collect();
    let mut out = BytesMut::new();
    out.put_u8(EIO_MESSAGE);
    let mut attachments = Vec::new();
    // The one failure: an argument with buffers also holds an object of the peer's that looks like a
    // placeholder but names no attachment (socket.io clients would reject the packet too).
    encode_event_with_binary(nsp, None, event, &out_args, &mut out, &mut attachments)
        .map_err(|_| malformed("event argument holds an object that looks like a binary placeholder"))?;
    Ok(EventMessage { text: out.freeze(), attachments })
}
