//! Roomcast's sans-I/O core.
//!
//! Nothing in this crate touches a socket, a file, a thread or the clock: every entry point is fed bytes,
//! events and `now`, and hands back bytes, events and deadlines (the `handle_*` / `poll_*` families, as in
//! quinn-proto). The `roomcast-server` crate owns every file descriptor and drives this crate.
//!
//! Map:
//! - [`ids`]: `SocketId`, `RoomId`, `ShardId`, `Sid` — distinct id types, never aliases.
//! - [`rooms`]: the generational socket slab, per-namespace membership sets, and broadcast planning
//!   (the hot path: union of target rooms minus except rooms minus except sockets).
//! - [`http`]: HTTP/1.1 request heads and the responses Engine.IO needs.
//! - [`ws`]: RFC 6455 frames (resumable decoder, encoder, shared pre-built broadcast frames).
//! - [`eio`]: Engine.IO v4 packets, polling payloads and the session state machine.
//! - [`sio`]: Socket.IO v5 packets, raw JSON pass-through and binary attachments.
//! - [`cluster`]: the Redis adapter's and emitter's wire messages (msgpack/JSON), sans-I/O.
//! - [`error`]: the crate's one error enum, split by who is at fault.

pub mod cluster;
pub mod eio;
pub mod error;
pub mod http;
pub mod ids;
pub mod rooms;
pub mod sio;
pub mod ws;

pub use error::{Error, Limit, PeerMisbehaved};
