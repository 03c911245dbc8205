//! Driver configuration: every size and threshold of the I/O layer, with the reason for its default.

use std::io;
use std::time::Duration;

/// Tunables of one shard's driver. The defaults suit a fan-out server with many mostly idle
/// connections and small messages; memory figures are per shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// io_uring submission queue entries (a power of two, 1..=32768); the completion queue gets four
    /// times as many. Default 1024: one flush pushes one entry per dirty connection and submits early
    /// when the queue fills, so this bounds syscalls per flush, not connections.
    pub ring_entries: u32,
    /// io_uring provided receive buffers shared by all connections of the shard (a power of two,
    /// 1..=32768). Default 1024: 1024 × 4 KiB = 4 MiB per shard, so 1,024 connections can have unread
    /// data in the same turn; beyond that receives wait (`ENOBUFS`, re-armed in the same turn).
    pub provided_buffers: u16,
    /// Size of each provided buffer in bytes. Default 4 KiB: one page, larger than a typical
    /// Socket.IO frame from a client; bigger messages simply arrive in several `Data` events.
    pub provided_buffer_size: u32,
    /// The epoll backend's one per-shard read buffer. Default 64 KiB: a loopback burst is read in few
    /// calls and no connection holds a buffer of its own.
    pub read_buffer_size: usize,
    /// Most `Bytes` handed to the kernel in one send call per connection (1..=1024, the `IOV_MAX`).
    /// Default 64: beyond that the per-call cost is already amortised, and the iovec array of an
    /// io_uring send (held until its completion) stays at 1 KiB.
    pub max_iovecs_per_send: usize,
    /// io_uring only: a queued `Bytes` at least this long goes out with `SEND_ZC` (the kernel pins the
    /// pages instead of copying, and the `Bytes` is held until the notification completion). `None`
    /// turns zero copy off. Default 16 KiB: below about 10–16 KiB pinning pages and the extra
    /// notification cost more than the copy they save (kernel `msg_zerocopy` docs, io_uring benchmarks);
    /// over loopback the kernel copies anyway, so this only pays off on real NICs.
    pub zero_copy_threshold: Option<usize>,
    /// Listen backlog of the listeners made by [`super::bind_shard_listeners`]. Default 1024, clipped
    /// by the kernel to `net.core.somaxconn` (4096 on current kernels).
    pub accept_backlog: i32,
    /// How long a connection closed with `close_after_flush` may linger after our FIN, discarding what
    /// the peer still sends, before it is reset. Closing while unread bytes sit in the receive queue
    /// would make the kernel reset at once and drop our unsent tail, so we wait for the peer's FIN.
    /// Default 5 s, nginx's `lingering_timeout`.
    pub close_linger: Duration,
    /// Most dirty connections one [`Driver::flush`](super::Driver::flush) hands to the kernel; the
    /// rest stay dirty, in order, and the shard turns again without waiting before flushing them.
    /// Default 128: a flush of every connection of a large room takes tens of milliseconds of kernel
    /// time (a loopback send is several µs), and publishes or other shards' broadcasts that arrive
    /// meanwhile would otherwise wait for the next round and go out in sends of their own. Flushed in
    /// batches, what arrived is planned between two batches and joins the frames of every connection
    /// not flushed yet: in scenario 1 (10k receivers, 16 messages in flight) this took deliveries per
    /// send from ≈ 7 to ≈ 16 and server CPU per delivery down by a third (docs/BENCHMARKS.md). Costs
    /// one non-blocking `turn` per batch.
    pub flush_batch: usize,
    /// epoll only: readiness events fetched per `epoll_wait`. Default 1024.
    pub events_capacity: usize,
    /// epoll only: reads of one connection per turn before it yields to the others (it is read again
    /// next turn without waiting for new readiness). Default 16 (1 MiB with the default read buffer).
    pub read_budget: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            ring_entries: 1024,
            provided_buffers: 1024,
            provided_buffer_size: 4096,
            read_buffer_size: 64 * 1024,
            max_iovecs_per_send: 64,
            flush_batch: 128,
            zero_copy_threshold: Some(16 * 1024),
            accept_backlog: 1024,
            close_linger: Duration::from_secs(5),
            events_capacity: 1024,
            read_budget: 16,
        }
    }
}

impl DriverConfig {
    /// Checks the ranges documented on each field; drivers call it before setting anything up.
    pub fn validate(&self) -> io::Result<()> {
        let fail =
            |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, format!("DriverConfig: {what}")));
        if !self.ring_entries.is_power_of_two() || self.ring_entries > 32768 {
            return fail("ring_entries must be a power of two in 1..=32768");
        }
        if !self.provided_buffers.is_power_of_two() || self.provided_buffers > 32768 {
            return fail("provided_buffers must be a power of two in 1..=32768");
        }
        if self.provided_buffer_size == 0 || self.read_buffer_size == 0 {
            return fail("buffer sizes must not be zero");
        }
        if !(1..=1024).contains(&self.max_iovecs_per_send) {
            return fail("max_iovecs_per_send must be in 1..=1024");
        }
        if self.zero_copy_threshold == Some(0) {
            return fail("zero_copy_threshold must be positive (None turns it off)");
        }
        if self.events_capacity == 0 || self.read_budget == 0 || self.flush_batch == 0 {
            return fail("events_capacity, read_budget and flush_batch must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_refused() {
        assert!(DriverConfig::default().validate().is_ok());
        let bad = [
            DriverConfig { ring_entries: 1000, ..Default::default() },
            DriverConfig { provided_buffers: 0, ..Default::default() },
            DriverConfig { max_iovecs_per_send: 0, ..Default::default() },
            DriverConfig { max_iovecs_per_send: 2000, ..Default::default() },
            DriverConfig { zero_copy_threshold: Some(0), ..Default::default() },
            DriverConfig { read_buffer_size: 0, ..Default::default() },
            DriverConfig { flush_batch: 0, ..Default::default() },
        ];
        for config in bad {
            assert_eq!(
                config.validate().map_err(|e| e.kind()),
                Err(io::ErrorKind::InvalidInput),
                "{config:?}"
            );
        }
    }
}
