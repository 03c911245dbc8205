//! Roomcast's I/O shell: the only crate that owns file descriptors, threads and the clock.

pub mod config;
