//! Driver tests of the send side over real loopback sockets, run on both backends: one `Bytes` broadcast
//! to every connection, large queues and one large frame to a slow reader, graceful close after flush, and two shards
//! sharing a port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver_support;

use std::time::Duration;

use bytes::Bytes;
use driver_support::*;
use roomcast_server::driver::{
    bind_shard_listeners, CloseCause, ConnId, Driver, DriverConfig, DriverEvent, IoBackend, Outbox,
};

/// The connections a shard accepted, and how they closed.
#[derive(Default)]
struct Members {
    conns: Vec<ConnId>,
    closed: Vec<CloseCause>,
    /// The last broadcast payload, kept to check that the driver let go of every clone.
    broadcast: Option<Bytes>,
}

fn track(state: &mut Members, event: DriverEvent<'_>, _: &mut Outbox) {
    match event {
        DriverEvent::Accepted { conn, .. } => state.conns.push(conn),
        DriverEvent::Closed { conn, cause } => {
            state.conns.retain(|c| *c != conn);
            state.closed.push(cause);
        }
        DriverEvent::Data { .. } | DriverEvent::Detached { .. } | DriverEvent::Woken => {}
    }
}

fn broadcast_reaches_every_connection_whole<D: Driver + Send + 'static>() {
    const CLIENTS: usize = 300;
    let shard = Shard::spawn::<D>(loopback_listener(), DriverConfig::default(), Members::default(), track);
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(shard.addr)).collect();
    shard.wait_until("every client is accepted", |state, _| state.conns.len() == CLIENTS);

    // A small message (vectored send) then a 64 KiB one (zero copy on io_uring), each one `Bytes`.
    for len in [1000, 64 * 1024] {
        let before = shard.stats();
        let message = Bytes::from(pattern(len, len));
        let queued = shard.query(move |state, outbox| {
            for &conn in &state.conns {
                assert!(outbox.send(conn, message.clone()));
            }
            let queued: u64 = state.conns.iter().map(|&conn| outbox.queued_bytes(conn)).sum();
            state.broadcast = Some(message);
            queued
        });
        assert_eq!(
            queued,
            (CLIENTS * len) as u64,
            "every recipient queued the whole message before the flush"
        );
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(read_len(client, len), pattern(len, len), "client {i}, {len}-byte message");
        }
        shard.wait_until("the driver released every clone of the broadcast", |state, _| {
            state.broadcast.as_ref().is_some_and(Bytes::is_unique)
        });
        let drained =
            shard.query(|state, outbox| state.conns.iter().all(|&conn| outbox.queued_bytes(conn) == 0));
        assert!(drained, "queued bytes return to zero once sent");
        let after = shard.stats();
        assert_eq!(after.bytes_sent - before.bytes_sent, (CLIENTS * len) as u64);
        if len == 1000 {
            assert_eq!(after.sends - before.sends, CLIENTS as u64, "one send per recipient");
        }
        if D::BACKEND == IoBackend::Uring && len >= 16 * 1024 {
            let zero_copy = after.zero_copy_sends - before.zero_copy_sends;
            assert!(
                zero_copy >= CLIENTS as u64,
                "payloads over the threshold go out with SEND_ZC: {zero_copy}"
            );
        }
    }
    drop(clients);
    shard.wait_until("every client is reported closed", |state, _| state.closed.len() == CLIENTS);
}

/// A flush hands at most `flush_batch` connections to the kernel; the rest follow in later batches,
/// each connection once, with everything queued for it in one send, in order.
fn small_flush_batches_reach_every_connection_once_in_order<D: Driver + Send + 'static>() {
    const CLIENTS: usize = 100;
    let config = DriverConfig { flush_batch: 7, ..DriverConfig::default() };
    let shard = Shard::spawn::<D>(loopback_listener(), config, Members::default(), track);
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(shard.addr)).collect();
    shard.wait_until("every client is accepted", |state, _| state.conns.len() == CLIENTS);
    let before = shard.stats();
    let (first, second) = (Bytes::from(pattern(0, 300)), Bytes::from(pattern(300, 200)));
    shard.query(move |state, outbox| {
        for &conn in &state.conns {
            assert!(outbox.send(conn, first.clone()) && outbox.send(conn, second.clone()));
        }
    });
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(read_len(client, 500), pattern(0, 500), "client {i}: both frames, in order");
    }
    let after = shard.stats();
    assert_eq!(after.sends - before.sends, CLIENTS as u64, "one send per connection across 15 batches");
    assert_eq!(after.bytes_sent - before.bytes_sent, (CLIENTS * 500) as u64);
}

/// Queues `chunks` buffers of growing, uneven sizes (1 B up to 512 KiB) as one continuous pattern.
fn queue_stream(outbox: &mut Outbox, conn: ConnId, chunks: usize) -> usize {
    let mut offset = 0;
    for i in 0..chunks {
        let len = 1 + (i * 7919) % (512 * 1024);
        assert!(outbox.send(conn, Bytes::from(pattern(offset, len))));
        offset += len;
    }
    offset
}

fn slow_reader_gets_large_queues_in_order<D: Driver + Send + 'static>() {
    let shard = Shard::spawn::<D>(loopback_listener(), DriverConfig::default(), Members::default(), track);
    let mut client = connect(shard.addr);
    shard.wait_until("the client is accepted", |state, _| state.conns.len() == 1);
    // ~9 MiB in 48 buffers: far more than loopback socket buffers hold, so the driver meets full
    // sockets, partial writes and resumed queues while the client is not reading.
    let total = shard.query(|state, outbox| queue_stream(outbox, state.conns[0], 48));
    std::thread::sleep(Duration::from_millis(300));
    let still_queued = shard.query(|state, outbox| outbox.queued_bytes(state.conns[0]));
    assert!(
        still_queued > 0 && still_queued < total as u64,
        "a full socket leaves bytes queued: {still_queued}"
    );
    let mut received = Vec::with_capacity(total);
    let mut buf = vec![0; 7000];
    while received.len() < total {
        let got = std::io::Read::read(&mut client, &mut buf).unwrap();
        assert!(got > 0, "stream ended after {} of {total} bytes", received.len());
        received.extend_from_slice(&buf[..got]);
        if received.len() < total / 4 {
            std::thread::sleep(Duration::from_micros(200)); // slow at first: many partial writes
        }
    }
    assert_eq!(received.len(), total);
    assert!(received == pattern(0, total), "bytes arrived out of order or corrupted");
    shard.wait_until("the queue is empty", |state, outbox| outbox.queued_bytes(state.conns[0]) == 0);
    let stats = shard.stats();
    assert!(stats.partial_sends > 0, "the test never met a full socket: {stats:?}");
    assert_eq!(stats.bytes_sent, total as u64);
}

/// One frame alone in its queue goes out as a single-buffer send (`SEND` on io_uring); a frame far
/// larger than the socket buffers, read slowly, must resume from the right offset after every partial
/// send. Zero-copy is off so the frame takes the ordinary path whatever its size.
fn slow_reader_gets_one_large_frame_whole<D: Driver + Send + 'static>() {
    const LEN: usize = 6 * 1024 * 1024 + 13;
    let config = DriverConfig { zero_copy_threshold: None, ..DriverConfig::default() };
    let shard = Shard::spawn::<D>(loopback_listener(), config, Members::default(), track);
    let mut client = connect(shard.addr);
    shard.wait_until("the client is accepted", |state, _| state.conns.len() == 1);
    shard.query(|state, outbox| assert!(outbox.send(state.conns[0], Bytes::from(pattern(0, LEN)))));
    std::thread::sleep(Duration::from_millis(200));
    let still_queued = shard.query(|state, outbox| outbox.queued_bytes(state.conns[0]));
    assert!(
        still_queued > 0 && still_queued < LEN as u64,
        "a full socket leaves part of the frame: {still_queued}"
    );
    let mut received = Vec::with_capacity(LEN);
    let mut buf = vec![0; 5000];
    while received.len() < LEN {
        let got = std::io::Read::read(&mut client, &mut buf).unwrap();
        assert!(got > 0, "stream ended after {} of {LEN} bytes", received.len());
        received.extend_from_slice(&buf[..got]);
        if received.len() < LEN / 4 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert!(received == pattern(0, LEN), "the frame arrived corrupted or reordered");
    shard.wait_until("the queue is empty", |state, outbox| outbox.queued_bytes(state.conns[0]) == 0);
    let stats = shard.stats();
    assert!(stats.partial_sends > 0, "the test never met a full socket: {stats:?}");
    assert_eq!(stats.zero_copy_sends, 0);
    assert_eq!(stats.bytes_sent, LEN as u64);
}

fn close_after_flush_sends_everything_then_fin<D: Driver + Send + 'static>() {
    let shard = Shard::spawn::<D>(loopback_listener(), DriverConfig::default(), Members::default(), track);
    let mut client = connect(shard.addr);
    shard.wait_until("the client is accepted", |state, _| state.conns.len() == 1);
    let (total, refused_after_close) = shard.query(|state, outbox| {
        let conn = state.conns[0];
        let total = queue_stream(outbox, conn, 16);
        assert!(outbox.close_after_flush(conn));
        (total, !outbox.send(conn, Bytes::from_static(b"too late")))
    });
    assert!(refused_after_close, "send after close_after_flush must be refused");
    // Bytes the peer sends after our close must not turn the close into a reset.
    write_all(&mut client, b"bytes the server will discard");
    std::thread::sleep(Duration::from_millis(200));
    let received = read_to_eof(&mut client);
    assert_eq!(received.len(), total, "every queued byte arrives before the FIN");
    assert!(received == pattern(0, total));
    drop(client);
    shard.wait_until("the close is reported", |state, outbox| {
        state.closed == [CloseCause::Flushed] && outbox.live_connections() == 0
    });
}

fn dropping_the_driver_ends_stuck_connections<D: Driver + Send + 'static>() {
    let shard = Shard::spawn::<D>(loopback_listener(), DriverConfig::default(), Members::default(), track);
    let mut client = connect(shard.addr);
    shard.wait_until("the client is accepted", |state, _| state.conns.len() == 1);
    // Megabytes the client never reads: sends (zero-copy ones on io_uring) stay in flight.
    shard.query(|state, outbox| queue_stream(outbox, state.conns[0], 32));
    shard.wait_until("the socket is full", |state, outbox| outbox.queued_bytes(state.conns[0]) > 0);
    std::thread::sleep(Duration::from_millis(100));
    shard.stop(); // drops the driver on its thread
    let mut sink = vec![0; 1 << 16];
    loop {
        match std::io::Read::read(&mut client, &mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset,
                    "the connection outlived its driver"
                );
                break;
            }
        }
    }
}

fn two_shards_on_one_port_both_accept<D: Driver + Send + 'static>() {
    const CLIENTS: usize = 64;
    let listeners = bind_shard_listeners("127.0.0.1:0".parse().unwrap(), 2, 1024).unwrap();
    let shards: Vec<_> = listeners
        .into_iter()
        .map(|listener| Shard::spawn::<D>(listener, DriverConfig::default(), Members::default(), track))
        .collect();
    assert_eq!(shards[0].addr, shards[1].addr);
    let clients: Vec<_> = (0..CLIENTS).map(|_| connect(shards[0].addr)).collect();
    let deadline = std::time::Instant::now() + PATIENCE;
    let counts = loop {
        let counts: Vec<usize> =
            shards.iter().map(|shard| shard.query(|state, _| state.conns.len())).collect();
        if counts.iter().sum::<usize>() == CLIENTS || std::time::Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(counts.iter().sum::<usize>(), CLIENTS, "every connection accepted exactly once: {counts:?}");
    // The kernel hashes each connection's 4-tuple to a shard: all 64 on one side has odds of 2^-63.
    assert!(counts.iter().all(|&n| n > 0), "SO_REUSEPORT spread the accepts: {counts:?}");
    drop(clients);
}

both_backends!(
    broadcast_reaches_every_connection_whole,
    small_flush_batches_reach_every_connection_once_in_order,
    slow_reader_gets_large_queues_in_order,
    slow_reader_gets_one_large_frame_whole,
    close_after_flush_sends_everything_then_fin,
    dropping_the_driver_ends_stuck_connections,
    two_shards_on_one_port_both_accept,
);
