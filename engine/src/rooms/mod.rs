//! Rooms of one namespace on one shard: the generational socket slab, room membership sets, Socket.IO's
//! adapter semantics and events, and broadcast planning.
//!
//! Semantics are those of socket.io-adapter's in-memory adapter (protocol notes §4). One
//! [`NamespaceRooms`] per shard and namespace holds only that shard's sockets; a broadcast is resolved
//! and planned on every shard, each yielding its own recipients.
//!
//! The module tree separates the two paths:
//! - control path (may allocate, hash, log): [`namespace`] (connect, join, leave, views, adapter
//!   events), `names` (room-name interning), `slab` (socket slots).
//! - hot path: [`plan`] (resolve a broadcast's names, plan its recipients), `recipients` (the
//!   iterator that computes them), `scatter` (the bitmap that unions sparse lists), `batch` (decodes
//!   sparse recipient words in batches), `cursors` (galloping cursors into except lists), over
//!   [`set`] (member sets: chunked sorted lists or bitsets).

mod batch;
mod chunked;
mod cursors;
mod names;
pub mod namespace;
pub mod plan;
mod recipients;
mod scatter;
pub mod set;
mod slab;

#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod plan_tests;

pub use names::RoomName;
pub use namespace::{AdapterEvent, NamespaceRooms};
pub use plan::{BroadcastFlags, BroadcastSpec, BroadcastTarget, Scratch};
pub use recipients::Recipients;
pub use set::{MemberSet, DENSE_FACTOR};
