//! Roomcast's I/O shell: the only crate that owns file descriptors, threads and the clock.
//!
//! [`driver`] is the bottom layer: one I/O driver per shard thread (io_uring, or epoll as the fallback)
//! that accepts connections, lends received bytes to the shard and flushes queued `Bytes`.

pub mod config;
pub mod driver;
