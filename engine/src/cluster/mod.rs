//! The wire codec of `@socket.io/redis-adapter` 8.x (classic and sharded) and
//! `@socket.io/redis-emitter` 5.x: pure functions from a Redis message's bytes to typed messages and
//! back, so that Roomcast servers, Node.js socket.io servers and emitters share one cluster.
//!
//! No Redis client lives here (the engine does no I/O): the server subscribes, publishes and counts
//! servers (`PUBSUB NUMSUB` / `SHARDNUMSUB`), and hands each received message to these decoders whole —
//! Redis delivers pub/sub messages whole, so there is no partial input to resume; a truncated message is
//! an error like any other malformed one. Every decoder is total: malformed input is an
//! [`Error::PeerMisbehaved`]`(`[`PeerMisbehaved::ClusterParse`]`)` or [`Limit::ClusterDepth`], to be
//! logged and dropped; nothing panics.
//!
//! # Modules
//! - [`msgpack`]: notepack.io's msgpack ([`Value`] is a JavaScript value).
//! - [`js`]: JavaScript's spelling of numbers and dates in JSON.
//! - [`transcode`]: a broadcast's `[event, …args]` ↔ the Socket.IO packet text and attachments clients
//!   receive, byte for byte what a local emit produces.
//! - [`classic`]: the classic adapter and the emitter: channels, [`Broadcast`], [`Request`],
//!   [`Response`].
//! - [`sharded`]: the sharded adapter's `ClusterAdapter` messages and channel routing.
//!
//! # Socket.IO operations and their messages
//!
//! | operation | classic adapter / emitter | sharded adapter |
//! |---|---|---|
//! | `io.emit`, `to(rooms)`, `except(rooms)`, `socket.broadcast`, `volatile`, `compress` | [`Broadcast`] on the broadcast or room channel | BROADCAST (3) |
//! | `io.timeout(t).emit(…, ack)` | [`RequestKind::BroadcastWithAck`] (7) → [`Response::BroadcastClientCount`] (8) + [`Response::BroadcastAck`] (9) per client | BROADCAST with `requestId` → BROADCAST_CLIENT_COUNT (11) + BROADCAST_ACK (12) |
//! | `socketsJoin` / `socketsLeave` | [`RequestKind::SocketsJoin`] (2) / [`RequestKind::SocketsLeave`] (3), no answer | SOCKETS_JOIN (4) / SOCKETS_LEAVE (5) |
//! | `disconnectSockets(close)` | [`RequestKind::DisconnectSockets`] (4) | DISCONNECT_SOCKETS (6) |
//! | `fetchSockets` | [`RequestKind::FetchSockets`] (5) → [`Response::FetchSockets`] | FETCH_SOCKETS (7) → FETCH_SOCKETS_RESPONSE (8) |
//! | `serverSideEmit` (with ack) | [`RequestKind::ServerSideEmit`] (6) → [`Response::ServerSideEmit`] | SERVER_SIDE_EMIT (9) → SERVER_SIDE_EMIT_RESPONSE (10) |
//! | `adapter.allRooms()` | [`RequestKind::AllRooms`] (1) → [`Response::AllRooms`] | — |
//! | `adapter.sockets()` of adapters ≤ 7.x | [`RequestKind::Sockets`] (0) → [`Response::Sockets`] | — |
//! | `local` flag | nothing is published | nothing is published |
//!
//! # What a receiver ignores
//! - Classic broadcasts: a room channel (`socket.io#<nsp>#<room>#`) for a room it does not have —
//!   decided from the channel name alone ([`ClassicChannels::parse`]), before decoding; its own uid
//!   ([`classic::broadcast_sender`] reads it from the first bytes); a packet for another namespace.
//! - Classic requests: its own SOCKETS, ALL_ROOMS, REMOTE_FETCH and BROADCAST requests (by request id)
//!   and its own SERVER_SIDE_EMIT (by uid). REMOTE_JOIN/LEAVE/DISCONNECT are *not* filtered: Node
//!   servers apply their own when Redis echoes them, so a Roomcast server that applies locally first
//!   must ignore its own uid for these (or make them idempotent).
//! - Classic responses: request ids it has not pending (all servers share the response channel).
//! - Sharded messages: its own uid, another namespace; messages on its own node channel are responses.
//! - The emitter's uid [`EMITTER_UID`] never belongs to a server, and emitters never answer.

pub mod classic;
mod common;
pub mod js;
pub mod msgpack;
pub mod sharded;
pub mod transcode;

#[cfg(test)]
mod tests;

pub use classic::{Broadcast, ClassicChannel, ClassicChannels, LegacyAction, Request, RequestKind, Response};
pub use common::{
    decode_value, AdapterPacket, BroadcastFlags, BroadcastOpts, RemoteSocket, DEFAULT_PREFIX, EMITTER_UID,
};
pub use msgpack::Value;
pub use sharded::{ShardedBody, ShardedChannels, ShardedMessage, SubscriptionMode};
pub use transcode::{EventArg, EventMessage};

#[allow(unused_imports)] // named by the docs above
use crate::{Error, Limit, PeerMisbehaved};
