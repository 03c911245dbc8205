//! `--io epoll` and `--io uring` against Roomcast: `verify` finds nothing wrong and counts exactly the
//! same under both (and over `polling-upgrade` under uring, whose sockets are dropped and renumbered);
//! a server that goes away fails the run under both; and the pool itself, with a buffer ring far too
//! small for its connections, still completes every handshake (re-arming after `ENOBUFS`), closes
//! cleanly, and reports the connections a dead server dropped as failed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use std::time::{Duration, Instant};

use roomcast_loadgen::client::{IoMode, Notice, Pool, PoolConfig, RecvConfig, Target, Transport};
use roomcast_loadgen::latency::RunEpoch;
use servers::{json_line, loadgen, roomcast};

const VERIFY: &[&str] = &[
    "verify",
    "--conns",
    "120",
    "--rooms",
    "6",
    "--rooms-per-conn",
    "3",
    "--publishers",
    "4",
    "--rate",
    "20",
    "--duration",
    "1500ms",
    "--seed",
    "5",
    "--json",
    "--quiet",
];

#[test]
fn verify_counts_the_same_under_epoll_and_uring_with_no_violations() {
    let runs: Vec<_> = [("epoll", "websocket"), ("uring", "websocket"), ("uring", "polling-upgrade")]
        .map(|(io, transport)| {
            std::thread::spawn(move || {
                let server = roomcast(2);
                let mut args = VERIFY.to_vec();
                args.extend(["--url", &server.url, "--io", io, "--transport", transport]);
                let (out, _) = loadgen(&args);
                (io, transport, out)
            })
        })
        .into_iter()
        .map(|run| run.join().unwrap())
        .collect();
    let mut counts = Vec::new();
    for (io, transport, out) in &runs {
        assert!(out.status.success(), "{io}/{transport}: {}", String::from_utf8_lossy(&out.stderr));
        let json = json_line(out);
        assert_eq!(json["io"], *io, "the run must say how it read");
        assert_eq!(json["violations"], 0, "{io}/{transport}: {json}");
        assert_eq!(json["deliveries_received"], json["deliveries_expected"], "{io}/{transport}");
        counts.push(
            ["messages_sent", "deliveries_expected", "deliveries_received"]
                .map(|k| json[k].as_u64().unwrap()),
        );
    }
    assert!(counts[0][1] > 1_000, "the run must deliver something: {counts:?}");
    assert_eq!(counts[1], counts[0], "uring differs from epoll");
    assert_eq!(counts[2], counts[0], "polling-upgrade over uring differs from websocket over epoll");
}

#[test]
fn a_server_that_goes_away_ends_the_run_under_both_io_modes() {
    let runs: Vec<_> = ["epoll", "uring"]
        .map(|io| {
            std::thread::spawn(move || {
                let mut server = roomcast(1);
                let url = server.url.clone();
                let run = std::thread::spawn(move || {
                    loadgen(&[
                        "fanout",
                        "--url",
                        &url,
                        "--conns",
                        "50",
                        "--duration",
                        "20s",
                        "--io",
                        io,
                        "-q",
                    ])
                });
                std::thread::sleep(Duration::from_secs(2));
                server.kill();
                (io, run.join().unwrap())
            })
        })
        .into_iter()
        .map(|run| run.join().unwrap())
        .collect();
    for (io, (out, took)) in runs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{io}");
        assert!(stderr.contains("roomcast-loadgen: error: server dropped a connection"), "{io}: {stderr}");
        assert!(took < Duration::from_secs(8), "{io} took {took:?}");
    }
}

fn config(url: &str, io: IoMode) -> PoolConfig {
    PoolConfig {
        target: Target::parse(url, "/socket.io/").unwrap(),
        source_addrs: Vec::new(),
        handshake_timeout: Duration::from_secs(5),
        seed: 3,
        transport: Transport::WebSocket,
        io,
    }
}

/// Turns the pool until `want` notices matching `pick` arrived (or 5 s pass); returns them.
fn collect(pool: &mut Pool, want: usize, pick: impl Fn(&Notice) -> bool) -> Vec<Notice> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < deadline {
        pool.turn(None, &mut |_| {}).unwrap();
        while let Some(notice) = pool.poll_notice() {
            if pick(&notice) {
                got.push(notice);
            }
        }
    }
    got
}

#[test]
fn a_tiny_buffer_ring_still_connects_everyone_then_closes_and_fails_cleanly() {
    let mut server = roomcast(1);
    // 4 buffers of 64 bytes for 40 connections whose upgrade answers alone are longer than a buffer.
    let tiny = RecvConfig { buffers: 4, buffer_size: 64, sq_entries: 64, cq_entries: 64 };
    let epoch = RunEpoch::start();
    let mut pool = Pool::with_recv_config(config(&server.url, IoMode::Uring), epoch, &tiny).unwrap();
    assert_eq!(pool.io(), IoMode::Uring);
    let ids: Vec<_> = (0..40).map(|tag| pool.open(tag, epoch.now())).collect();
    let connected = collect(&mut pool, 40, |n| matches!(n, Notice::Connected { .. }));
    assert_eq!(connected.len(), 40, "not every handshake completed: {connected:?}");
    assert_eq!(pool.ready(), 40);
    let stats = pool.recv_stats().unwrap();
    assert!(stats.no_buffers > 0, "the tiny ring never ran dry: {stats:?}");
    // A clean close of ten of them.
    for id in &ids[..10] {
        pool.close(*id);
    }
    let closed = collect(&mut pool, 10, |n| matches!(n, Notice::Closed { .. }));
    assert_eq!(closed.len(), 10, "{closed:?}");
    // The server dies: the thirty left are reported failed, having been ready.
    server.kill();
    let failed = collect(&mut pool, 30, |n| matches!(n, Notice::Failed { was_ready: true, .. }));
    assert_eq!(failed.len(), 30, "{failed:?}");
    assert_eq!(pool.live(), 0);
}

#[test]
fn auto_picks_uring_where_the_kernel_allows_it_and_epoll_stays_available() {
    let server = roomcast(1);
    let epoch = RunEpoch::start();
    let auto = Pool::new(config(&server.url, IoMode::Auto), epoch).unwrap();
    let (resolved, why) = IoMode::Auto.resolve();
    assert_eq!(auto.io(), resolved, "Pool::new and --io auto must agree ({why:?})");
    let epoll = Pool::new(config(&server.url, IoMode::Epoll), epoch).unwrap();
    assert_eq!(epoll.io(), IoMode::Epoll);
    assert!(epoll.recv_stats().is_none());
}
