//! Pieces both adapter protocols share: broadcast options and flags, the Socket.IO packet as adapters
//! carry it, the sockets a `fetchSockets` answer describes, and reading typed members out of a decoded
//! message.
//!
//! Decoding is lenient where socket.io is (a missing `rooms` is empty, unknown members and flags are
//! ignored, numeric room names become their JavaScript string) and strict where a value of the wrong
//! kind would make a Node.js server misbehave (a `requestId` that is not a string, `data` that is not
//! there).

use bytes::{BufMut, Bytes, BytesMut};

use super::js;
use super::msgpack::{self, Value};
use super::transcode::{self, event_message, EventMessage};
use crate::sio::encode::write_json_string;
use crate::sio::OutArg;
use crate::{Error, PeerMisbehaved};

/// The uid `@socket.io/redis-emitter` (and the other emitters) publish with. No server uses it.
pub const EMITTER_UID: &str = "emitter";

/// The default key / channel prefix of both Redis adapters.
pub const DEFAULT_PREFIX: &str = "socket.io";

pub(crate) fn malformed(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::ClusterParse(what))
}

/// Decodes a message that may be JSON or msgpack, as the adapters tell them apart: JSON when its first
/// byte is `{`, msgpack otherwise.
pub fn decode_value(message: &[u8]) -> Result<Value, Error> {
    if message.first() == Some(&b'{') {
        transcode::json_to_value(message)
    } else {
        msgpack::decode(message)
    }
}

/// The value of member `key` unless it is missing or `undefined`.
pub(crate) fn member<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|v| !matches!(v, Value::Undefined))
}

/// A required string member.
pub(crate) fn string(object: &Value, key: &str, err: &'static str) -> Result<String, Error> {
    member(object, key).and_then(Value::as_str).map(str::to_owned).ok_or(malformed(err))
}

/// An optional string member: missing or `undefined` is `None`, another kind is an error.
pub(crate) fn opt_string(object: &Value, key: &str, err: &'static str) -> Result<Option<String>, Error> {
    match member(object, key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(err)),
    }
}

/// The message `type` member as an integer.
pub(crate) fn message_type(object: &Value) -> Result<i64, Error> {
    match member(object, "type") {
        Some(Value::Int(n)) => Ok(*n),
        _ => Err(malformed("message \"type\" is missing or not an integer")),
    }
}

/// A non-negative integer member (counts).
pub(crate) fn count(object: &Value, key: &str, err: &'static str) -> Result<u64, Error> {
    match member(object, key) {
        Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| malformed(err)),
        _ => Err(malformed(err)),
    }
}

/// A room name as socket.io holds it: a string, or a number (socket.io's `Room` is `string | number`),
/// which Roomcast names by its JavaScript string.
fn room_name(value: &Value) -> Option<String> {
    let mut out = BytesMut::new();
    match value {
        Value::Str(s) => return Some(s.clone()),
        Value::Int(n) => js::write_integer(*n, &mut out),
        Value::Float(x) => js::write_number(*x, &mut out),
        _ => return None,
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A list of room names or socket ids; missing, `undefined` and `null` are empty (`new Set(undefined)`).
pub(crate) fn rooms(value: Option<&Value>, err: &'static str) -> Result<Vec<String>, Error> {
    match value {
        None | Some(Value::Nil | Value::Undefined) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|v| room_name(v).ok_or(malformed(err))).collect(),
        Some(_) => Err(malformed(err)),
    }
}

/// The broadcast flags socket.io's `BroadcastOperator` sets. `None` means the flag was never set (the
/// member is absent on the wire), which receivers treat as the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// `volatile`: drop for sockets that cannot take the packet now.
    pub volatile: Option<bool>,
    /// `compress(bool)`: permessage-deflate hint.
    pub compress: Option<bool>,
    /// `local`: never published (a received message with it set is delivered like any other).
    pub local: Option<bool>,
    /// `timeout(ms)`: the acknowledgement deadline of a broadcast with ack or of `fetchSockets`.
    pub timeout: Option<u64>,
}

impl BroadcastFlags {
    /// The flags object, members in the order `volatile, compress, local, timeout` (socket.io writes
    /// them in the order the operator's methods were called; receivers do not care).
    pub(crate) fn to_value(&self) -> Value {
        let mut entries = Vec::new();
        let bools = [("volatile", self.volatile), ("compress", self.compress), ("local", self.local)];
        for (key, flag) in bools {
            if let Some(b) = flag {
                entries.push((key.to_owned(), Value::Bool(b)));
            }
        }
        if let Some(ms) = self.timeout {
            entries.push(("timeout".to_owned(), Value::Int(i64::try_from(ms).unwrap_or(i64::MAX))));
        }
        Value::Map(entries)
    }

    /// Reads the flags a peer sent; members of another kind, and unknown flags, are ignored.
    pub(crate) fn from_value(value: Option<&Value>) -> BroadcastFlags {
        let Some(flags) = value else { return BroadcastFlags::default() };
        let flag = |key| match member(flags, key) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        };
        let timeout = match member(flags, "timeout") {
            Some(Value::Int(ms)) => u64::try_from(*ms).ok(),
            Some(Value::Float(ms)) if ms.is_finite() && *ms >= 0.0 => Some(*ms as u64),
            _ => None,
        };
        BroadcastFlags {
            volatile: flag("volatile"),
            compress: flag("compress"),
            local: flag("local"),
            timeout,
        }
    }
}

/// Who a broadcast (or a remote join/leave/disconnect/fetch) targets: sockets in any of `rooms` (all
/// sockets when empty), minus sockets in any of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOpts {
    /// Target rooms (union); empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Rooms whose sockets are left out (a sender's own id for `socket.broadcast`).
    pub except: Vec<String>,
    /// The operator's flags. Written only where the adapter writes them (not in the classic
    /// adapter's requests).
    pub flags: BroadcastFlags,
}

impl BroadcastOpts {
    /// `{rooms, except, flags}`, or `{rooms, except}` without flags (the classic adapter's requests).
    pub(crate) fn to_value(&self, with_flags: bool) -> Value {
        let mut entries = vec![
            ("rooms".to_owned(), Value::str_array(&self.rooms)),
            ("except".to_owned(), Value::str_array(&self.except)),
        ];
        if with_flags {
            entries.push(("flags".to_owned(), self.flags.to_value()));
        }
        Value::Map(entries)
    }

    /// Reads `{rooms, except, flags}` in any member order (the emitter writes `rooms, flags, except`).
    pub(crate) fn from_value(value: &Value) -> Result<BroadcastOpts, Error> {
        if !matches!(value, Value::Map(_)) {
            return Err(malformed("broadcast options are not an object"));
        }
        Ok(BroadcastOpts {
            rooms: rooms(member(value, "rooms"), "\"rooms\" is not a list of room names")?,
            except: rooms(member(value, "except"), "\"except\" is not a list of room names")?,
            flags: BroadcastFlags::from_value(member(value, "flags")),
        })
    }
}

/// A Socket.IO packet as the adapters carry it: `{type, data, nsp}`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterPacket {
    /// The Socket.IO packet type: 2 (EVENT) for everything adapters broadcast.
    pub packet_type: u8,
    /// `[event, …args]`.
    pub data: Value,
    /// The namespace; the classic adapter always sends it (a missing one means `/`), the sharded
    /// adapter never does (the message's `nsp` applies).
    pub nsp: Option<String>,
}

impl AdapterPacket {
    /// The EVENT packet of a broadcast the server emits in `nsp` (`None` for the sharded adapter).
    /// Errors: [`Error::Misuse`] for arguments that are not valid JSON ([`transcode::event_data`]).
    pub fn event(nsp: Option<&str>, event: &str, args: &[OutArg<'_>]) -> Result<AdapterPacket, Error> {
        Ok(AdapterPacket {
            packet_type: 2,
            data: transcode::event_data(event, args)?,
            nsp: nsp.map(str::to_owned),
        })
    }

    /// The packet's namespace, `/` when it names none.
    pub fn nsp_or_root(&self) -> &str {
        self.nsp.as_deref().unwrap_or("/")
    }

    /// The Engine.IO message (and attachments) clients receive for this packet, in namespace `nsp`
    /// (the receiving namespace). Errors: [`PeerMisbehaved::ClusterParse`] unless it is an EVENT (type
    /// 2, or 5 as a BINARY_EVENT) with `[event name, …]` data.
    pub fn event_message(&self, nsp: &str) -> Result<EventMessage, Error> {
        if !matches!(self.packet_type, 2 | 5) {
            return Err(malformed("only EVENT packets can be broadcast"));
        }
        event_message(nsp, &self.data)
    }

    /// `{type, data[, nsp]}`, in that order.
    pub(crate) fn to_value(&self) -> Value {
        let mut entries = vec![
            ("type".to_owned(), Value::Int(i64::from(self.packet_type))),
            ("data".to_owned(), self.data.clone()),
        ];
        if let Some(nsp) = &self.nsp {
            entries.push(("nsp".to_owned(), Value::str(nsp)));
        }
        Value::Map(entries)
    }

    pub(crate) fn from_value(value: &Value) -> Result<AdapterPacket, Error> {
        let packet_type = match member(value, "type") {
            Some(Value::Int(n)) => u8::try_from(*n).ok(),
            _ => None,
        }
        .ok_or(malformed("packet \"type\" is missing or not a packet type"))?;
        let data = member(value, "data").cloned().ok_or(malformed("packet has no \"data\""))?;
        let nsp = opt_string(value, "nsp", "packet \"nsp\" is not a string")?;
        Ok(AdapterPacket { packet_type, data, nsp })
    }
}

/// One socket of a `fetchSockets` answer, as Node builds its `RemoteSocket`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSocket {
    /// The socket id.
    pub id: String,
    /// JSON text of `socket.handshake` (`{headers, time, address, xdomain, secure, issued, url, query,
    /// auth}`), kept as text.
    pub handshake: Bytes,
    /// The rooms the socket is in (its own id included).
    pub rooms: Vec<String>,
    /// JSON text of `socket.data`; `None` when it is `undefined` (the member is left out).
    pub data: Option<Bytes>,
}

impl RemoteSocket {
    pub(crate) fn from_value(value: &Value) -> Result<RemoteSocket, Error> {
        let handshake = member(value, "handshake").ok_or(malformed("fetched socket has no \"handshake\""))?;
        Ok(RemoteSocket {
            id: string(value, "id", "fetched socket \"id\" is missing or not a string")?,
            handshake: transcode::value_to_json(handshake),
            rooms: rooms(member(value, "rooms"), "fetched socket \"rooms\" is not a list of room names")?,
            data: member(value, "data").map(transcode::value_to_json),
        })
    }

    /// Reads a list of sockets (`"sockets":[…]`).
    pub(crate) fn list_from_value(value: Option<&Value>) -> Result<Vec<RemoteSocket>, Error> {
        match value {
            Some(Value::Array(items)) => items.iter().map(RemoteSocket::from_value).collect(),
            _ => Err(malformed("\"sockets\" is not a list")),
        }
    }

    /// Appends `[{"id":…,"handshake":…,"rooms":[…],"data":…},…]`, the JSON texts copied verbatim.
    pub(crate) fn write_list(sockets: &[RemoteSocket], out: &mut BytesMut) {
        out.put_u8(b'[');
        for (i, socket) in sockets.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            write_json_string(out, &socket.id);
            out.extend_from_slice(b",\"handshake\":");
            out.extend_from_slice(&socket.handshake);
            out.extend_from_slice(b",\"rooms\":");
            transcode::write_json(
                &Value::str_array(&socket.rooms),
                out,
                &mut transcode::BinaryJson::BufferObject,
            );
            if let Some(data) = &socket.data {
                out.extend_from_slice(b",\"data\":");
                out.extend_from_slice(data);
            }
            out.put_u8(b'}');
        }
        out.put_u8(b']');
    }
}
