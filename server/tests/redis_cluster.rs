//! Two Roomcast nodes sharing broadcasts through a real Redis (classic adapter protocol): rooms,
//! unions, `except`, sender exclusion, binary arguments and `local` across nodes, each recipient
//! once; and the faults: Redis missing at start, malformed messages, Redis killed and restarted while
//! a broadcast stream runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/lab.rs"]
mod lab;
#[path = "cluster/redis_server.rs"]
mod redis_server;
mod support;

use std::time::{Duration, Instant};

use lab::lab;
use redis_server::RedisServer;
use roomcast_server::api::{Arg, StartError};
use roomcast_server::config::{Config, IoChoice, RedisConfig, RedisRetry};
use support::*;

fn node(redis: &RedisServer) -> TestServer {
    let mut config = config(IoChoice::Epoll, 2);
    config.redis = Some(RedisConfig::new(redis.url().parse().unwrap()));
    TestServer::start(lab(), config)
}

fn joined(node: &TestServer, rooms: &[&str]) -> (Client, String) {
    let (mut client, sid) = Client::connect(node.addr);
    if !rooms.is_empty() {
        let args: Vec<String> = rooms.iter().map(|r| format!("{r:?}")).collect();
        client.call("join", &args.join(","));
    }
    (client, sid)
}

/// The `hit` senders a client received before the next fence.
fn hits(client: &mut Client) -> Vec<String> {
    client.events_until("hit", "fence").iter().map(|p| p.str_arg(0)).collect()
}

#[test]
fn broadcasts_reach_rooms_on_both_nodes_each_recipient_once() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    redis.wait_for_servers(2);
    let (mut a_r, _) = joined(&a, &["r"]);
    let (mut a_x, _) = joined(&a, &["x"]);
    let (mut a_rx, _) = joined(&a, &["r", "x"]);
    let (mut b_r, b_r_sid) = joined(&b, &["r"]);
    let (mut b_none, b_none_sid) = joined(&b, &[]);
    let mut everyone = [&mut a_r, &mut a_x, &mut a_rx, &mut b_r, &mut b_none];

    // io.to("r") from node B: r-members on both nodes, once each.
    everyone[4].call("op", r#"{"via":"io","to":["r"],"except":[]}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [1, 0, 1, 1, 0]);

    // socket.to("r") from b_r: the sender is left out, the other members (node A) get it.
    everyone[3].call("op", r#"{"via":"socket","to":["r"],"except":[]}"#);
    let got: Vec<Vec<String>> = everyone.iter_mut().map(|c| hits(c)).collect();
    assert_eq!(got[0], [b_r_sid.as_str()]);
    assert_eq!(got[2], [b_r_sid.as_str()]);
    assert!(got[1].is_empty() && got[3].is_empty() && got[4].is_empty(), "{got:?}");

    // Union minus except across nodes: to(r, x) except(x) reaches r-only members once.
    everyone[4].call("op", r#"{"via":"io","to":["r","x"],"except":["x"]}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [1, 0, 0, 1, 0]);

    // socket.broadcast from node B: everyone but the sender.
    everyone[4].call("op", r#"{"via":"socket","to":[],"except":[]}"#);
    let got: Vec<Vec<String>> = everyone.iter_mut().map(|c| hits(c)).collect();
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 1, 0]);
    assert!(got[0] == [b_none_sid.clone()]);

    // `local` stays on node B.
    everyone[4].call("op", r#"{"via":"io","to":["r"],"except":[],"local":true}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [0, 0, 0, 1, 0]);
}

#[test]
fn binary_arguments_cross_nodes_as_attachments() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    redis.wait_for_servers(2);
    let (mut on_a, _) = joined(&a, &[]);
    let (mut on_b, _) = joined(&b, &[]);
    on_b.call("bin", "");
    let got = on_a.expect_event("bin");
    assert_eq!(got.attachments, [vec![1u8, 2, 3]]);
    assert_eq!(got.arg(1), serde_json::json!({"n": 1}));
    assert!(got.text.starts_with("51-[\"bin\",{\"_placeholder\":true,\"num\":0}"), "{}", got.text);
    on_a.expect_event("fence");
}

#[test]
fn redis_missing_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config: Config = config(IoChoice::Epoll, 1);
    let mut redis = RedisConfig::new(format!("redis://127.0.0.1:{port}").parse().unwrap());
    redis.retry = RedisRetry::Attempts(2);
    config.redis = Some(redis);
    let started = Instant::now();
    let err = lab().start(config).expect_err("started without redis");
    assert!(matches!(err, StartError::Redis(_)), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn malformed_messages_are_dropped_and_the_node_carries_on() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    redis.wait_for_servers(2);
    let (mut on_a, _) = joined(&a, &[]);
    for (channel, junk) in [
        ("socket.io#/#", "not msgpack"),
        ("socket.io#/#", "\u{93}"),
        ("socket.io#/#room#", "{\"uid\":1}"),
        ("socket.io-request#/#", "{\"type\":99}"),
        ("socket.io-request#/#", "{oops"),
        ("socket.io-request#/#", "{\"type\":7,\"requestId\":\"x\"}"),
    ] {
        redis.cli(&["PUBLISH", channel, junk]);
    }
    let (mut on_b, _) = joined(&b, &[]);
    on_b.call("op", r#"{"via":"io","to":[],"except":[]}"#);
    assert_eq!(hits(&mut on_a).len(), 1);
}

/// Node A streams ticks (`ServerHandle::emit`, published once) while Redis is killed and restarted.
/// Tolerated: ticks published while Redis is down or before B has resubscribed are lost (pub/sub is
/// at-most-once). Required: A's own client keeps receiving throughout, nothing crashes or hangs, and B's
/// client receives ticks again after the restart.
#[test]
fn deliveries_resume_after_redis_is_killed_and_restarted() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    redis.wait_for_servers(2);
    let (mut on_a, _) = joined(&a, &[]);
    let (mut on_b, _) = joined(&b, &[]);
    let handle = a.handle();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                handle.emit("/", &[], &[], "tick", &[Arg::json(n.to_string()).unwrap()]);
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let tick = |c: &mut Client| c.expect_event("tick").arg(0).as_u64().unwrap();
    let before = tick(&mut on_b);
    tick(&mut on_a);
    redis.kill();
    // Local delivery goes on while Redis is away.
    let during: Vec<u64> = (0..10).map(|_| tick(&mut on_a)).collect();
    assert!(during.windows(2).all(|w| w[1] == w[0] + 1), "{during:?}");
    redis.restart();
    // B hears A again once both reconnected; ticks in between are lost, never duplicated or reordered.
    let mut last = before;
    let resumed_at = Instant::now();
    loop {
        let n = tick(&mut on_b);
        assert!(n > last, "tick {n} after {last}");
        last = n;
        if n > during[9] + 5 {
            break;
        }
        assert!(resumed_at.elapsed() < PATIENCE, "B never heard A again");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ticker.join().unwrap();
    redis.wait_for_servers(2);
}

/// The harness itself: a test's private Redis is never another test's. When the port picked for it is
/// taken before redis-server binds it (here: by another test's redis-server), something else answers
/// there; a test going on with it would share that test's channels (its nodes count, and answer,
/// each other's requests) and lose its Redis when that test ends: a cluster request then times out.
#[test]
fn a_private_redis_is_never_shared_with_another_test() {
    let first = RedisServer::start();
    assert_eq!(first.serving_pid(), first.pid());
    // Something answers on the port, which is all the old readiness check looked at.
    assert!(std::net::TcpStream::connect(("127.0.0.1", first.port)).is_ok());
    let second = RedisServer::on_port(first.port);
    assert!(second.is_none(), "a second redis-server was taken to serve port {}", first.port);
    drop(second);
    // The first one is untouched by the attempt, and a fresh start gets a port of its own.
    assert_eq!(first.serving_pid(), first.pid());
    let other = RedisServer::start();
    assert_ne!(other.port, first.port);
    assert_eq!(other.serving_pid(), other.pid());
}
