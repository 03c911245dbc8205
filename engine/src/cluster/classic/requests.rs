//! Requests (channel `<key>-request#<nsp>#`) and responses (`<key>-response#<nsp>#[<uid>#]`) of the
//! classic adapter.
//!
//! Framing: a message whose first byte is `{` is JSON, anything else msgpack. Every request is JSON
//! except [`RequestKind::BroadcastWithAck`] (msgpack, its packet may hold buffers); every response is
//! JSON except [`Response::BroadcastAck`]. Decoders accept either framing for any message.

use bytes::{BufMut, Bytes, BytesMut};

use super::super::common::{
    count, decode_value, malformed, member, message_type, opt_string, rooms, string, AdapterPacket,
    BroadcastOpts, RemoteSocket,
};
use super::super::msgpack::{self, Value};
use super::super::transcode::value_to_json;
use crate::sio::encode::write_json_string;
use crate::Error;

/// A request: who sent it (`uid`; the emitter's join/leave/disconnect requests carry none) and what it
/// asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The requesting server's uid, [`super::super::EMITTER_UID`], or `None`.
    pub uid: Option<String>,
    /// The request type and its members.
    pub kind: RequestKind,
}

/// What a request asks, with its `type` number. Which requests a server answers, and which of its own
/// it must ignore, is documented on each variant (the Node adapter's `onrequest`).
#[derive(Debug, Clone, PartialEq)]
pub enum RequestKind {
    /// 0 SOCKETS (`adapter.sockets(rooms)`, sent by adapters ≤ 7.x): answer [`Response::Sockets`] with
    /// the ids of local sockets in any of `rooms` (all when empty). Ignore own `request_id`s.
    Sockets { request_id: String, rooms: Vec<String> },
    /// 1 ALL_ROOMS: answer [`Response::AllRooms`]. Ignore own `request_id`s.
    AllRooms { request_id: String },
    /// 2 REMOTE_JOIN (`socketsJoin`): make the sockets `opts` selects join `rooms`. No answer. Node
    /// servers apply their own request when it comes back from Redis (they do not apply it locally
    /// first), so it is not filtered by uid.
    SocketsJoin { opts: BroadcastOpts, rooms: Vec<String> },
    /// 3 REMOTE_LEAVE (`socketsLeave`): as [`RequestKind::SocketsJoin`], leaving `rooms`.
    SocketsLeave { opts: BroadcastOpts, rooms: Vec<String> },
    /// 4 REMOTE_DISCONNECT (`disconnectSockets`): disconnect the sockets `opts` selects, closing their
    /// connection when `close`. No answer; not filtered by uid either.
    DisconnectSockets { opts: BroadcastOpts, close: bool },
    /// 2/3/4 in the form of adapters before 7.x (one socket by id): act if `sid` is local, then answer
    /// [`Response::Done`].
    Legacy { request_id: String, sid: String, action: LegacyAction },
    /// 5 REMOTE_FETCH (`fetchSockets`): answer [`Response::FetchSockets`]. Ignore own `request_id`s.
    FetchSockets { request_id: String, opts: BroadcastOpts },
    /// 6 SERVER_SIDE_EMIT: call the namespace's server-side listeners with `data` (`[event, …args]`);
    /// with a `request_id`, also pass an ack whose first argument is answered as
    /// [`Response::ServerSideEmit`] on the default response channel. Ignore own uid.
    ServerSideEmit { request_id: Option<String>, data: Value },
    /// 7 BROADCAST (emit with ack and timeout; msgpack): broadcast `packet` locally with acks, answer
    /// one [`Response::BroadcastClientCount`] then one [`Response::BroadcastAck`] per client ack.
    /// Ignore own `request_id`s.
    BroadcastWithAck { request_id: String, packet: AdapterPacket, opts: BroadcastOpts },
}

/// The single-socket action of a [`RequestKind::Legacy`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyAction {
    /// The socket joins this room.
    Join(String),
    /// The socket leaves this room.
    Leave(String),
    /// The socket is disconnected; `close` also closes its connection.
    Disconnect { close: bool },
}

fn entry(key: &str, value: Value) -> (String, Value) {
    (key.to_owned(), value)
}

impl Request {
    /// The request's bytes, in the member order the Node adapter writes: JSON, or msgpack for
    /// [`RequestKind::BroadcastWithAck`].
    pub fn encode(&self) -> Bytes {
        let mut entries = Vec::with_capacity(6);
        if let Some(uid) = &self.uid {
            entries.push(entry("uid", Value::str(uid)));
        }
        let id = |request_id: &str| entry("requestId", Value::str(request_id));
        let kind = |n: i64| entry("type", Value::Int(n));
        match &self.kind {
            RequestKind::Sockets { request_id, rooms } => {
                entries.extend([id(request_id), kind(0), entry("rooms", Value::str_array(rooms))]);
            }
            RequestKind::AllRooms { request_id } => entries.extend([id(request_id), kind(1)]),
            RequestKind::SocketsJoin { opts, rooms } | RequestKind::SocketsLeave { opts, rooms } => {
                let n = if matches!(self.kind, RequestKind::SocketsJoin { .. }) { 2 } else { 3 };
                entries.extend([
                    kind(n),
                    entry("opts", opts.to_value(false)),
                    entry("rooms", Value::str_array(rooms)),
                ]);
            }
            RequestKind::DisconnectSockets { opts, close } => {
                entries.extend([
                    kind(4),
                    entry("opts", opts.to_value(false)),
                    entry("close", Value::Bool(*close)),
                ]);
            }
            RequestKind::Legacy { request_id, sid, action } => {
                let (n, last) = match action {
                    LegacyAction::Join(room) => (2, entry("room", Value::str(room))),
                    LegacyAction::Leave(room) => (3, entry("room", Value::str(room))),
                    LegacyAction::Disconnect { close } => (4, entry("close", Value::Bool(*close))),
                };
                entries.extend([id(request_id), kind(n), entry("sid", Value::str(sid)), last]);
            }
            RequestKind::FetchSockets { request_id, opts } => {
                entries.extend([id(request_id), kind(5), entry("opts", opts.to_value(false))]);
            }
            RequestKind::ServerSideEmit { request_id, data } => {
                entries.extend(request_id.as_deref().map(id));
                entries.extend([kind(6), entry("data", data.clone())]);
            }
            RequestKind::BroadcastWithAck { request_id, packet, opts } => {
                entries.extend([
                    id(request_id),
                    kind(7),
                    entry("packet", packet.to_value()),
                    entry("opts", opts.to_value(true)),
                ]);
                return msgpack::to_bytes(&Value::Map(entries));
            }
        }
        value_to_json(&Value::Map(entries))
    }

    /// Decodes a request (JSON or msgpack). Errors: [`crate::PeerMisbehaved::ClusterParse`] for an
    /// unknown `type` or a member of the wrong kind; the framing's own errors.
    pub fn decode(message: &[u8]) -> Result<Request, Error> {
        let v = decode_value(message)?;
        if !matches!(v, Value::Map(_)) {
            return Err(malformed("request is not an object"));
        }
        let uid = opt_string(&v, "uid", "request \"uid\" is not a string")?;
        let request_id = || string(&v, "requestId", "request \"requestId\" is missing or not a string");
        let target_rooms = || rooms(member(&v, "rooms"), "request \"rooms\" is not a list of room names");
        let opts = || BroadcastOpts::from_value(member(&v, "opts").unwrap_or(&Value::Map(Vec::new())));
        let close = matches!(member(&v, "close"), Some(Value::Bool(true)));
        let n = message_type(&v)?;
        let kind = match n {
            0 => RequestKind::Sockets { request_id: request_id()?, rooms: target_rooms()? },
            1 => RequestKind::AllRooms { request_id: request_id()? },
            2..=4 if member(&v, "opts").is_none_or(|o| matches!(o, Value::Nil | Value::Bool(false))) => {
                let room = || string(&v, "room", "legacy request \"room\" is missing or not a string");
                let action = match n {
                    2 => LegacyAction::Join(room()?),
                    3 => LegacyAction::Leave(room()?),
                    _ => LegacyAction::Disconnect { close },
                };
                let sid = string(&v, "sid", "legacy request \"sid\" is missing or not a string")?;
                RequestKind::Legacy { request_id: request_id()?, sid, action }
            }
            2 => RequestKind::SocketsJoin { opts: opts()?, rooms: target_rooms()? },
            3 => RequestKind::SocketsLeave { opts: opts()?, rooms: target_rooms()? },
            4 => RequestKind::DisconnectSockets { opts: opts()?, close },
            5 => RequestKind::FetchSockets { request_id: request_id()?, opts: opts()? },
            6 => RequestKind::ServerSideEmit {
                request_id: opt_string(&v, "requestId", "request \"requestId\" is not a string")?,
                data: member(&v, "data").cloned().ok_or(malformed("server-side emit has no \"data\""))?,
            },
            7 => RequestKind::BroadcastWithAck {
                request_id: request_id()?,
                packet: AdapterPacket::from_value(
                    member(&v, "packet").ok_or(malformed("broadcast request has no \"packet\""))?,
                )?,
                opts: opts()?,
            },
            _ => return Err(malformed("unknown request type")),
        };
        Ok(Request { uid, kind })
    }
}

/// A response to a request. Responses carry no uid: a requester matches `request_id` against the
/// requests it has pending and ignores the rest (other servers' responses share the channel).
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// To [`RequestKind::Sockets`]: `{"requestId","sockets":["<sid>",…]}`.
    Sockets { request_id: String, sockets: Vec<String> },
    /// To [`RequestKind::FetchSockets`]: `{"requestId","sockets":[{id,handshake,rooms,data},…]}`. An
    /// empty `sockets` list decodes as this variant (it fits both).
    FetchSockets { request_id: String, sockets: Vec<RemoteSocket> },
    /// To [`RequestKind::AllRooms`]: `{"requestId","rooms":[…]}`.
    AllRooms { request_id: String, rooms: Vec<String> },
    /// To a [`RequestKind::Legacy`] request: `{"requestId"}`.
    Done { request_id: String },
    /// An ack of a [`RequestKind::ServerSideEmit`]: `{"type":6,"requestId","data":<first ack arg>}`;
    /// `data` is `None` when the ack had no argument (the member is left out).
    ServerSideEmit { request_id: String, data: Option<Value> },
    /// How many clients a [`RequestKind::BroadcastWithAck`] reached on the answering server:
    /// `{"type":8,"requestId","clientCount"}`.
    BroadcastClientCount { request_id: String, client_count: u64 },
    /// One client's ack of a [`RequestKind::BroadcastWithAck`] (msgpack):
    /// `{"type":9,"requestId","packet":<first ack arg>}`.
    BroadcastAck { request_id: String, packet: Option<Value> },
}

impl Response {
    /// The request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Response::Sockets { request_id, .. }
            | Response::FetchSockets { request_id, .. }
            | Response::AllRooms { request_id, .. }
            | Response::Done { request_id }
            | Response::ServerSideEmit { request_id, .. }
            | Response::BroadcastClientCount { request_id, .. }
            | Response::BroadcastAck { request_id, .. } => request_id,
        }
    }

    /// The response's bytes as the Node adapter writes them (JSON; msgpack for
    /// [`Response::BroadcastAck`]). [`RemoteSocket`] JSON texts are copied verbatim.
    pub fn encode(&self) -> Bytes {
        let id = |request_id: &str| entry("requestId", Value::str(request_id));
        let value = match self {
            Response::Sockets { request_id, sockets } => {
                Value::Map(vec![id(request_id), entry("sockets", Value::str_array(sockets))])
            }
            Response::FetchSockets { request_id, sockets } => {
                let mut out = BytesMut::new();
                out.extend_from_slice(b"{\"requestId\":");
                write_json_string(&mut out, request_id);
                out.extend_from_slice(b",\"sockets\":");
                RemoteSocket::write_list(sockets, &mut out);
                out.put_u8(b'}');
                return out.freeze();
            }
            Response::AllRooms { request_id, rooms } => {
                Value::Map(vec![id(request_id), entry("rooms", Value::str_array(rooms))])
            }
            Response::Done { request_id } => Value::Map(vec![id(request_id)]),
            Response::ServerSideEmit { request_id, data } => Value::Map(vec![
                entry("type", Value::Int(6)),
                id(request_id),
                entry("data", data.clone().unwrap_or(Value::Undefined)),
            ]),
            Response::BroadcastClientCount { request_id, client_count } => Value::Map(vec![
                entry("type", Value::Int(8)),
                id(request_id),
                entry("clientCount", Value::Int(i64::try_from(*client_count).unwrap_or(i64::MAX))),
            ]),
            Response::BroadcastAck { request_id, packet } => {
                return msgpack::to_bytes(&Value::Map(vec![
                    entry("type", Value::Int(9)),
                    id(request_id),
                    entry("packet", packet.clone().unwrap_or(Value::Undefined)),
                ]));
            }
        };
        value_to_json(&value)
    }

    /// Decodes a response (JSON or msgpack), telling the kinds apart by `type` (6, 8, 9) or by which
    /// list they carry. Errors: [`crate::PeerMisbehaved::ClusterParse`] for a missing `requestId`, an
    /// unknown `type` or a member of the wrong kind.
    pub fn decode(message: &[u8]) -> Result<Response, Error> {
        let v = decode_value(message)?;
        if !matches!(v, Value::Map(_)) {
            return Err(malformed("response is not an object"));
        }
        let request_id = string(&v, "requestId", "response \"requestId\" is missing or not a string")?;
        if member(&v, "type").is_some() {
            return Ok(match message_type(&v)? {
                6 => Response::ServerSideEmit { request_id, data: member(&v, "data").cloned() },
                8 => Response::BroadcastClientCount {
                    request_id,
                    client_count: count(&v, "clientCount", "\"clientCount\" is not a count")?,
                },
                9 => Response::BroadcastAck { request_id, packet: member(&v, "packet").cloned() },
                _ => return Err(malformed("unknown response type")),
            });
        }
        if let Some(sockets) = member(&v, "sockets") {
            return Ok(match sockets {
                Value::Array(items) if !items.is_empty() && items.iter().all(|s| s.as_str().is_some()) => {
                    Response::Sockets { request_id, sockets: rooms(Some(sockets), "")? }
                }
                _ => Response::FetchSockets {
                    request_id,
                    sockets: RemoteSocket::list_from_value(Some(sockets))?,
                },
            });
        }
        if let Some(list) = member(&v, "rooms") {
            return Ok(Response::AllRooms {
                request_id,
                rooms: rooms(Some(list), "response \"rooms\" is not a list of room names")?,
            });
        }
        Ok(Response::Done { request_id })
    }
}
