//! Two Roomcast nodes sharing broadcasts through a real Redis with the sharded adapter protocol
//! (`--redis-sharded`: SSUBSCRIBE/SPUBLISH, `dynamic` room channels): rooms, unions, `except`, sender
//! exclusion, binary arguments and `local` across nodes, each recipient once; a room's channel is
//! subscribed while any shard of a node has the room; and the faults: malformed messages, Redis killed
//! and restarted (room channels subscribed again).
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
use roomcast_server::config::{Config, IoChoice, RedisConfig, RedisRetry, SubscriptionMode};
use support::*;

fn node(redis: &RedisServer, io: IoChoice) -> TestServer {
    node_in_mode(redis, io, SubscriptionMode::Dynamic)
}

fn node_in_mode(redis: &RedisServer, io: IoChoice, mode: SubscriptionMode) -> TestServer {
    let mut config = config(io, 2);
    let mut cluster = RedisConfig::new(redis.url().parse().unwrap());
    cluster.sharded = true;
    cluster.subscription_mode = mode;
    config.redis = Some(cluster);
    TestServer::start(lab(), config)
}

/// Waits until `n` connections subscribe to `channel` (the sharded adapter's server count, for the
/// namespace's main channel).
fn wait_for_subscribers(redis: &RedisServer, channel: &str, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    while redis.shardnumsub(channel) != n {
        assert!(Instant::now() < deadline, "{channel} never had {n} subscriber(s)");
        std::thread::sleep(Duration::from_millis(20));
    }
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

fn broadcasts_reach_rooms_on_both_nodes_each_recipient_once(io: IoChoice) {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, io), node(&redis, io));
    wait_for_subscribers(&redis, "socket.io#/#", 2);
    let (mut a_r, _) = joined(&a, &["r"]);
    let (mut a_x, _) = joined(&a, &["x"]);
    let (mut a_rx, _) = joined(&a, &["r", "x"]);
    let (mut b_r, b_r_sid) = joined(&b, &["r"]);
    let (mut b_none, b_none_sid) = joined(&b, &[]);
    // Both nodes follow room `r` on its own channel, `x` only on node A.
    wait_for_subscribers(&redis, "socket.io#/#r#", 2);
    wait_for_subscribers(&redis, "socket.io#/#x#", 1);
    let mut everyone = [&mut a_r, &mut a_x, &mut a_rx, &mut b_r, &mut b_none];

    // io.to("r") from node B, published on r's channel: r-members on both nodes, once each.
    everyone[4].call("op", r#"{"via":"io","to":["r"],"except":[]}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [1, 0, 1, 1, 0]);

    // socket.to("r") from b_r: the sender is left out, the other members (node A) get it.
    everyone[3].call("op", r#"{"via":"socket","to":["r"],"except":[]}"#);
    let got: Vec<Vec<String>> = everyone.iter_mut().map(|c| hits(c)).collect();
    assert_eq!(got[0], [b_r_sid.as_str()]);
    assert_eq!(got[2], [b_r_sid.as_str()]);
    assert!(got[1].is_empty() && got[3].is_empty() && got[4].is_empty(), "{got:?}");

    // Union minus except across nodes (main channel): to(r, x) except(x) reaches r-only members once.
    everyone[4].call("op", r#"{"via":"io","to":["r","x"],"except":["x"]}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [1, 0, 0, 1, 0]);

    // io.to("x") from node B, which has no x-member: published on x's channel, node A delivers.
    everyone[4].call("op", r#"{"via":"io","to":["x"],"except":[]}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [0, 1, 1, 0, 0]);

    // socket.broadcast from node B: everyone but the sender.
    everyone[4].call("op", r#"{"via":"socket","to":[],"except":[]}"#);
    let got: Vec<Vec<String>> = everyone.iter_mut().map(|c| hits(c)).collect();
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 1, 0]);
    assert!(got[0] == [b_none_sid.clone()]);

    // `local` stays on node B.
    everyone[4].call("op", r#"{"via":"io","to":["r"],"except":[],"local":true}"#);
    let got: Vec<usize> = everyone.iter_mut().map(|c| hits(c).len()).collect();
    assert_eq!(got, [0, 0, 0, 1, 0]);

    // Binary arguments cross as attachments (msgpack on the wire).
    everyone[4].call("bin", "");
    let got = everyone[0].expect_event("bin");
    assert_eq!(got.attachments, [vec![1u8, 2, 3]]);
    assert_eq!(got.arg(1), serde_json::json!({"n": 1}));
    assert!(got.text.starts_with("51-[\"bin\",{\"_placeholder\":true,\"num\":0}"), "{}", got.text);
    everyone[0].expect_event("fence");
}

on_both_backends!(broadcasts_reach_rooms_on_both_nodes_each_recipient_once);

/// Room `q` held by sockets on both shards of node A is one subscription; it ends with the last one.
#[test]
fn a_room_channel_is_followed_while_any_shard_has_the_room() {
    let redis = RedisServer::start();
    let a = node(&redis, IoChoice::Epoll);
    wait_for_subscribers(&redis, "socket.io#/#", 1);
    // Clients until one sits on each shard (connections are spread over the shards).
    let mut by_shard: [Option<Client>; 2] = [None, None];
    for _ in 0..32 {
        let (client, sid) = joined(&a, &["q"]);
        let shard = a.shard_of("/", &sid);
        if by_shard[shard].is_none() {
            by_shard[shard] = Some(client);
        }
        if by_shard.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(mut first), Some(mut second)] = by_shard else { panic!("every client landed on one shard") };
    wait_for_subscribers(&redis, "socket.io#/#q#", 1);
    // Socket ids are private rooms in `dynamic` mode: no channel of their own.
    let channels = redis.cli(&["PUBSUB", "SHARDCHANNELS", "socket.io#/#*"]);
    assert_eq!(channels.len(), 3, "main, the node's own and q's: {channels:?}");

    first.close();
    first.wait_closed();
    // The other shard still has q; give a wrong unsubscription time to show.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(redis.shardnumsub("socket.io#/#q#"), 1);
    second.close();
    second.wait_closed();
    wait_for_subscribers(&redis, "socket.io#/#q#", 0);
    assert_eq!(redis.shardnumsub("socket.io#/#"), 1);
}

/// `static` mode: no room channel at all, a one-room broadcast goes on the main channel and still
/// reaches the room's members on the other node; `dynamic-private` gives socket ids channels too.
#[test]
fn static_mode_has_no_room_channels_and_dynamic_private_has_socket_channels() {
    let redis = RedisServer::start();
    let (a, b) = (
        node_in_mode(&redis, IoChoice::Epoll, SubscriptionMode::Static),
        node_in_mode(&redis, IoChoice::Epoll, SubscriptionMode::Static),
    );
    wait_for_subscribers(&redis, "socket.io#/#", 2);
    let (mut a_r, _) = joined(&a, &["r"]);
    let (mut b_none, _) = joined(&b, &[]);
    b_none.call("op", r#"{"via":"io","to":["r"],"except":[]}"#);
    assert_eq!(hits(&mut a_r).len(), 1);
    assert_eq!(hits(&mut b_none).len(), 0);
    assert_eq!(redis.shardnumsub("socket.io#/#r#"), 0);

    let private = node_in_mode(&redis, IoChoice::Epoll, SubscriptionMode::DynamicPrivate);
    let (_client, sid) = joined(&private, &[]);
    wait_for_subscribers(&redis, &format!("socket.io#/#{sid}#"), 1);
}

#[test]
fn redis_missing_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config: Config = config(IoChoice::Epoll, 1);
    let mut redis = RedisConfig::new(format!("redis://127.0.0.1:{port}").parse().unwrap());
    redis.sharded = true;
    redis.retry = RedisRetry::Attempts(2);
    config.redis = Some(redis);
    let err = lab().start(config).expect_err("started without redis");
    assert!(matches!(err, StartError::Redis(_)), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// A stand-in for a Redis 6 server: answers `INFO` with `version` and any other command with `+OK`,
/// on every connection, until the test ends.
fn fake_redis(version: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    let Some(input) = buf.get(..n).filter(|b| !b.is_empty()) else { return };
                    let reply = if String::from_utf8_lossy(input).to_ascii_uppercase().contains("INFO") {
                        let body =
                            format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n");
                        format!("${}\r\n{body}\r\n", body.len())
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_redis_older_than_7_is_refused_for_the_sharded_adapter_with_the_reason() {
    let port = fake_redis("6.2.14");
    let sharded = |sharded: bool| {
        let mut config: Config = config(IoChoice::Epoll, 1);
        let mut redis = RedisConfig::new(format!("redis://127.0.0.1:{port}").parse().unwrap());
        redis.sharded = sharded;
        redis.retry = RedisRetry::Fail;
        config.redis = Some(redis);
        config
    };
    let err = lab().start(sharded(true)).expect_err("the sharded adapter started on Redis 6");
    assert!(matches!(err, StartError::RedisTooOld(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("Redis 7.0") && text.contains("6.2.14"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    // The classic adapter (PUBLISH/SUBSCRIBE) has no such requirement.
    let classic = lab().start(sharded(false)).expect("the classic adapter refused Redis 6");
    classic.shutdown().unwrap();
}

#[test]
fn malformed_messages_are_dropped_and_the_node_carries_on() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, IoChoice::Epoll), node(&redis, IoChoice::Epoll));
    wait_for_subscribers(&redis, "socket.io#/#", 2);
    let (mut on_a, _) = joined(&a, &["r"]);
    wait_for_subscribers(&redis, "socket.io#/#r#", 1);
    for (channel, junk) in [
        ("socket.io#/#", "not msgpack"),
        ("socket.io#/#", "\u{93}"),
        ("socket.io#/#", "{\"uid\":1}"),
        ("socket.io#/#", "{\"type\":99,\"uid\":\"x\",\"nsp\":\"/\",\"data\":{}}"),
        (
            "socket.io#/#",
            "{\"type\":3,\"uid\":\"x\",\"nsp\":\"/\",\"data\":{\"packet\":{\"type\":2,\"data\":7}}}",
        ),
        ("socket.io#/#r#", "{oops"),
        ("socket.io#/#", "{\"type\":7,\"uid\":\"x\",\"nsp\":\"/\",\"data\":{\"opts\":{}}}"),
    ] {
        redis.cli(&["SPUBLISH", channel, junk]);
    }
    let (mut on_b, _) = joined(&b, &[]);
    on_b.call("op", r#"{"via":"io","to":["r"],"except":[]}"#);
    assert_eq!(hits(&mut on_a).len(), 1);
}

/// Node A streams ticks to room `r` (published on r's channel) while Redis is killed and restarted.
/// Ticks published while Redis is down or before B has subscribed again are lost (pub/sub is
/// at-most-once); B's r-member hears A again once B is back on r's channel.
#[test]
fn room_channels_are_subscribed_again_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis, IoChoice::Epoll), node(&redis, IoChoice::Epoll));
    wait_for_subscribers(&redis, "socket.io#/#", 2);
    let (mut on_a, _) = joined(&a, &["r"]);
    let (mut on_b, _) = joined(&b, &["r"]);
    wait_for_subscribers(&redis, "socket.io#/#r#", 2);
    let handle = a.handle();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                handle.emit("/", &["r"], &[], "tick", &[Arg::json(n.to_string()).unwrap()]);
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let tick = |c: &mut Client| c.expect_event("tick").arg(0).as_u64().unwrap();
    let before = tick(&mut on_b);
    tick(&mut on_a);
    redis.kill();
    let during: Vec<u64> = (0..10).map(|_| tick(&mut on_a)).collect();
    assert!(during.windows(2).all(|w| w[1] == w[0] + 1), "{during:?}");
    redis.restart();
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
    wait_for_subscribers(&redis, "socket.io#/#r#", 2);
}
