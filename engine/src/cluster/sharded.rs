//! The sharded Redis adapter (`createShardedAdapter`, Redis ≥ 7 `SPUBLISH`/`SSUBSCRIBE`), which speaks
//! socket.io-adapter's `ClusterAdapter` protocol: every message is `{type, data, uid, nsp}`.
//!
//! Channels, for prefix `socket.io` (the `channelPrefix` option):
//! - `socket.io#<nsp>#`: every message except responses and dynamic-room broadcasts; `PUBSUB
//!   SHARDNUMSUB` of it is the server count.
//! - `socket.io#<nsp>#<uid>#`: responses to server `uid` (uid: 16 hex digits).
//! - `socket.io#<nsp>#<room>#`: broadcasts to exactly `[room]` in the `dynamic` modes
//!   ([`ShardedMessage::publish_channel`]); servers subscribe while they have the room
//!   ([`SubscriptionMode::subscribes_room`]).
//!
//! Encoding: JSON, unless the type may carry buffers (BROADCAST, FETCH_SOCKETS_RESPONSE,
//! SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_ACK) and `data` holds one: then msgpack.
//! Receivers tell them apart by a first byte of `{`.
//!
//! Receiving (the Node `ClusterAdapter.onMessage`): ignore messages whose `uid` is this server's or
//! whose `nsp` is not this namespace; a message on this server's own channel is a response.
//! Unlike the classic adapter, the sender applies join/leave/disconnect locally before publishing.

use bytes::{BufMut, Bytes, BytesMut};

use super::common::{
    count, decode_value, malformed, member, message_type, opt_string, rooms, string, AdapterPacket,
    BroadcastOpts, RemoteSocket, DEFAULT_PREFIX,
};
use super::msgpack::{self, Value};
use super::transcode::value_to_json;
use crate::sio::encode::write_json_string;
use crate::Error;

/// Which rooms get their own channel (`subscriptionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Two channels per namespace; every broadcast goes to the main one.
    Static,
    /// Also one channel per public room (a room that is not a socket's own id). The Node default.
    #[default]
    Dynamic,
    /// Also one channel per room, private ones included.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Whether a server subscribes to a room's channel when the room is created (and unsubscribes when
    /// it is deleted). `is_socket_room`: the room is a local socket's own id.
    pub fn subscribes_room(self, is_socket_room: bool) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !is_socket_room,
            SubscriptionMode::DynamicPrivate => true,
        }
    }
}

/// socket.io's `looksLikeASocketId`: a room name of exactly 20 UTF-16 code units (a JavaScript string's
/// `length`), the length of a socket id.
pub fn looks_like_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// The channel names of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    prefix: String,
}

impl Default for ShardedChannels {
    fn default() -> Self {
        ShardedChannels::new(DEFAULT_PREFIX)
    }
}

impl ShardedChannels {
    /// Channels under `prefix` (`socket.io` by default).
    pub fn new(prefix: impl Into<String>) -> Self {
        ShardedChannels { prefix: prefix.into() }
    }

    /// `<prefix>#<nsp>#`: the namespace's main channel.
    pub fn main(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.prefix)
    }

    /// `<prefix>#<nsp>#<uid>#`: responses to server `uid` (and a room's channel, for a room name).
    pub fn node(&self, nsp: &str, uid: &str) -> String {
        format!("{}#{nsp}#{uid}#", self.prefix)
    }

    /// `<prefix>#<nsp>#<room>#`: a dynamic room's channel.
    pub fn room(&self, nsp: &str, room: &str) -> String {
        self.node(nsp, room)
    }

    /// Reads a channel this prefix produced: `(nsp, None)` for a main channel, `(nsp, Some(name))` for
    /// a node's or a room's (the caller compares `name` with its own uid). The namespace ends at its
    /// first `#`. Cost: O(channel length), no allocation.
    pub fn parse<'c>(&self, channel: &'c [u8]) -> Option<(&'c str, Option<&'c str>)> {
        let channel = std::str::from_utf8(channel).ok()?;
        let rest = channel.strip_prefix(self.prefix.as_str())?.strip_prefix('#')?;
        let (nsp, tail) = rest.split_once('#')?;
        match tail {
            "" => Some((nsp, None)),
            named => Some((nsp, Some(named.strip_suffix('#').filter(|n| !n.is_empty())?))),
        }
    }
}

/// One `ClusterAdapter` message.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedMessage {
    /// The sender's uid (or an emitter's).
    pub uid: String,
    /// The namespace it concerns.
    pub nsp: String,
    /// The `type` and its `data`.
    pub body: ShardedBody,
}

/// A message's `type` and `data`. Responses (8, 10, 11, 12) go to the requester's node channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardedBody {
    /// 1 INITIAL_HEARTBEAT (heartbeat variants of the adapter only; the Redis adapter sends none).
    InitialHeartbeat,
    /// 2 HEARTBEAT.
    Heartbeat,
    /// 3 BROADCAST: deliver `packet` locally to `opts` (the packet has no `nsp`: the message's applies).
    /// With a `request_id`, it is a broadcast with acks: answer BROADCAST_CLIENT_COUNT, then
    /// BROADCAST_ACK per client ack.
    Broadcast { packet: AdapterPacket, opts: BroadcastOpts, request_id: Option<String> },
    /// 4 SOCKETS_JOIN.
    SocketsJoin { opts: BroadcastOpts, rooms: Vec<String> },
    /// 5 SOCKETS_LEAVE.
    SocketsLeave { opts: BroadcastOpts, rooms: Vec<String> },
    /// 6 DISCONNECT_SOCKETS.
    DisconnectSockets { opts: BroadcastOpts, close: bool },
    /// 7 FETCH_SOCKETS: answer FETCH_SOCKETS_RESPONSE.
    FetchSockets { opts: BroadcastOpts, request_id: String },
    /// 8 FETCH_SOCKETS_RESPONSE.
    FetchSocketsResponse { request_id: String, sockets: Vec<RemoteSocket> },
    /// 9 SERVER_SIDE_EMIT: `packet` is `[event, …args]`; with a `request_id`, answer
    /// SERVER_SIDE_EMIT_RESPONSE with the ack's first argument.
    ServerSideEmit { request_id: Option<String>, packet: Value },
    /// 10 SERVER_SIDE_EMIT_RESPONSE (`packet`: `None` when the ack had no argument).
    ServerSideEmitResponse { request_id: String, packet: Option<Value> },
    /// 11 BROADCAST_CLIENT_COUNT.
    BroadcastClientCount { request_id: String, client_count: u64 },
    /// 12 BROADCAST_ACK.
    BroadcastAck { request_id: String, packet: Option<Value> },
    /// 13 ADAPTER_CLOSE.
    AdapterClose,
}

impl ShardedBody {
    /// The `type` number.
    pub fn message_type(&self) -> u8 {
        match self {
            ShardedBody::InitialHeartbeat => 1,
            ShardedBody::Heartbeat => 2,
            ShardedBody::Broadcast { .. } => 3,
            ShardedBody::SocketsJoin { .. } => 4,
            ShardedBody::SocketsLeave { .. } => 5,
            ShardedBody::DisconnectSockets { .. } => 6,
            ShardedBody::FetchSockets { .. } => 7,
            ShardedBody::FetchSocketsResponse { .. } => 8,
            ShardedBody::ServerSideEmit { .. } => 9,
            ShardedBody::ServerSideEmitResponse { .. } => 10,
            ShardedBody::BroadcastClientCount { .. } => 11,
            ShardedBody::BroadcastAck { .. } => 12,
            ShardedBody::AdapterClose => 13,
        }
    }

    /// Whether this answers a request (and so is published on the requester's node channel).
    pub fn is_response(&self) -> bool {
        matches!(self.message_type(), 8 | 10 | 11 | 12)
    }

    /// `data`, in the member order `ClusterAdapter` writes; `None` for the types without data.
    fn data(&self) -> Option<Value> {
        let e = |key: &str, value: Value| (key.to_owned(), value);
        let id = |request_id: &str| e("requestId", Value::str(request_id));
        let opt = |v: &Option<Value>| v.clone().unwrap_or(Value::Undefined);
        let entries = match self {
            ShardedBody::InitialHeartbeat | ShardedBody::Heartbeat | ShardedBody::AdapterClose => {
                return None
            }
            ShardedBody::Broadcast { packet, opts, request_id } => {
                let mut entries = vec![e("packet", packet.to_value())];
                entries.extend(request_id.as_deref().map(id));
                entries.push(e("opts", opts.to_value(true)));
                entries
            }
            ShardedBody::SocketsJoin { opts, rooms } | ShardedBody::SocketsLeave { opts, rooms } => {
                vec![e("opts", opts.to_value(true)), e("rooms", Value::str_array(rooms))]
            }
            ShardedBody::DisconnectSockets { opts, close } => {
                vec![e("opts", opts.to_value(true)), e("close", Value::Bool(*close))]
            }
            ShardedBody::FetchSockets { opts, request_id } => {
                vec![e("opts", opts.to_value(true)), id(request_id)]
            }
            // Written by hand (its JSON texts are spliced in): see `encode`.
            ShardedBody::FetchSocketsResponse { .. } => return None,
            ShardedBody::ServerSideEmit { request_id, packet } => {
                let mut entries: Vec<_> = request_id.as_deref().map(id).into_iter().collect();
                entries.push(e("packet", packet.clone()));
                entries
            }
            ShardedBody::ServerSideEmitResponse { request_id, packet }
            | ShardedBody::BroadcastAck { request_id, packet } => {
                vec![id(request_id), e("packet", opt(packet))]
            }
            ShardedBody::BroadcastClientCount { request_id, client_count } => vec![
                id(request_id),
                e("clientCount", Value::Int(i64::try_from(*client_count).unwrap_or(i64::MAX))),
            ],
        };
        Some(Value::Map(entries))
    }
}

impl ShardedMessage {
    /// The message's bytes: `{type, data, uid, nsp}`, JSON or msgpack as the module docs say.
    pub fn encode(&self) -> Bytes {
        let kind = self.body.message_type();
        if let ShardedBody::FetchSocketsResponse { request_id, sockets } = &self.body {
            let mut out = BytesMut::new();
            out.extend_from_slice(b"{\"type\":8,\"data\":{\"requestId\":");
            write_json_string(&mut out, request_id);
            out.extend_from_slice(b",\"sockets\":");
            RemoteSocket::write_list(sockets, &mut out);
            out.extend_from_slice(b"}");
            self.write_tail(&mut out);
            return out.freeze();
        }
        let data = self.body.data();
        let mut entries = vec![("type".to_owned(), Value::Int(i64::from(kind)))];
        let binary = data.as_ref().is_some_and(Value::has_binary);
        entries.extend(data.map(|d| ("data".to_owned(), d)));
        entries.push(("uid".to_owned(), Value::str(&self.uid)));
        entries.push(("nsp".to_owned(), Value::str(&self.nsp)));
        let message = Value::Map(entries);
        if binary && matches!(kind, 3 | 8 | 9 | 10 | 12) {
            msgpack::to_bytes(&message)
        } else {
            value_to_json(&message)
        }
    }

    fn write_tail(&self, out: &mut BytesMut) {
        out.extend_from_slice(b",\"uid\":");
        write_json_string(out, &self.uid);
        out.extend_from_slice(b",\"nsp\":");
        write_json_string(out, &self.nsp);
        out.put_u8(b'}');
    }

    /// The channel a server publishes this (non-response) message on: a broadcast without acks to
    /// exactly one room goes to the room's channel in [`SubscriptionMode::Dynamic`] (unless the room
    /// [`looks_like_socket_id`]) and in [`SubscriptionMode::DynamicPrivate`]; everything else to the
    /// main channel. Responses go to [`ShardedChannels::node`] of the requester instead.
    pub fn publish_channel(&self, channels: &ShardedChannels, mode: SubscriptionMode) -> String {
        if let ShardedBody::Broadcast { opts, request_id: None, .. } = &self.body {
            if let [room] = opts.rooms.as_slice() {
                let dynamic = match mode {
                    SubscriptionMode::Static => false,
                    SubscriptionMode::Dynamic => !looks_like_socket_id(room),
                    SubscriptionMode::DynamicPrivate => true,
                };
                if dynamic {
                    return channels.room(&self.nsp, room);
                }
            }
        }
        channels.main(&self.nsp)
    }

    /// Decodes a message (JSON or msgpack). Errors: [`crate::PeerMisbehaved::ClusterParse`] for an
    /// unknown `type`, a missing `uid`/`nsp`/`data`, or a member of the wrong kind; the framing's own.
    pub fn decode(message: &[u8]) -> Result<ShardedMessage, Error> {
        let v = decode_value(message)?;
        if !matches!(v, Value::Map(_)) {
            return Err(malformed("message is not an object"));
        }
        let uid = string(&v, "uid", "message \"uid\" is missing or not a string")?;
        let nsp = string(&v, "nsp", "message \"nsp\" is missing or not a string")?;
        let kind = message_type(&v)?;
        let empty = Value::Map(Vec::new());
        let data = match member(&v, "data") {
            Some(d @ Value::Map(_)) => d,
            None if matches!(kind, 1 | 2 | 13) => &empty,
            _ => return Err(malformed("message \"data\" is missing or not an object")),
        };
        let request_id = || string(data, "requestId", "\"requestId\" is missing or not a string");
        let opt_request_id = || opt_string(data, "requestId", "\"requestId\" is not a string");
        let opts = || BroadcastOpts::from_value(member(data, "opts").unwrap_or(&empty));
        let target_rooms = || rooms(member(data, "rooms"), "\"rooms\" is not a list of room names");
        let body = match kind {
            1 => ShardedBody::InitialHeartbeat,
            2 => ShardedBody::Heartbeat,
            3 => ShardedBody::Broadcast {
                packet: AdapterPacket::from_value(
                    member(data, "packet").ok_or(malformed("broadcast has no \"packet\""))?,
                )?,
                opts: opts()?,
                request_id: opt_request_id()?,
            },
            4 => ShardedBody::SocketsJoin { opts: opts()?, rooms: target_rooms()? },
            5 => ShardedBody::SocketsLeave { opts: opts()?, rooms: target_rooms()? },
            6 => ShardedBody::DisconnectSockets {
                opts: opts()?,
                close: matches!(member(data, "close"), Some(Value::Bool(true))),
            },
            7 => ShardedBody::FetchSockets { opts: opts()?, request_id: request_id()? },
            8 => ShardedBody::FetchSocketsResponse {
                request_id: request_id()?,
                sockets: RemoteSocket::list_from_value(member(data, "sockets"))?,
            },
            9 => ShardedBody::ServerSideEmit {
                request_id: opt_request_id()?,
                packet: member(data, "packet")
                    .cloned()
                    .ok_or(malformed("server-side emit has no \"packet\""))?,
            },
            10 => ShardedBody::ServerSideEmitResponse {
                request_id: request_id()?,
                packet: member(data, "packet").cloned(),
            },
            11 => ShardedBody::BroadcastClientCount {
                request_id: request_id()?,
                client_count: count(data, "clientCount", "\"clientCount\" is not a count")?,
            },
            12 => ShardedBody::BroadcastAck {
                request_id: request_id()?,
                packet: member(data, "packet").cloned(),
            },
            13 => ShardedBody::AdapterClose,
            _ => return Err(malformed("unknown message type")),
        };
        Ok(ShardedMessage { uid, nsp, body })
    }
}
