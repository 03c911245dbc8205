//! Roomcast's I/O shell: the only crate that owns file descriptors, threads and the clock.
//!
//! Layers, bottom up:
//! - [`driver`]: one I/O driver per shard thread (io_uring, or epoll as the fallback) that accepts
//!   connections, lends received bytes to the shard and flushes queued `Bytes`.
//! - `shard` (private): the per-thread loop gluing the driver to the engine's HTTP, WebSocket,
//!   Engine.IO and Socket.IO state machines, the rooms, and the broadcast hot path.
//! - [`api`]: the Socket.IO server API (namespaces, handlers, sockets, broadcast operators).
//! - [`app`]: the built-in push app of the `roomcast` binary.
//! - `cluster` (private): the Redis adapter, on its own threads (publisher, subscriber).
//! - [`config`]: flags, environment and TOML configuration.

pub mod api;
pub mod app;
pub(crate) mod broadcast;
pub(crate) mod cluster;
pub mod config;
pub mod driver;
pub(crate) mod shard;
