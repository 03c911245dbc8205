//! A mixed cluster with the sharded adapter: a Node.js socket.io 4.8 server with
//! `createShardedAdapter` (`@socket.io/redis-adapter` 8.x, `dynamic` subscription mode) and a Roomcast
//! node with `--redis-sharded`, on one real Redis 7. The scenario runs from the Node side
//! (`tests/cluster/sharded.mjs`, real `socket.io-client`s on both servers); each step prints what every
//! client received before the step's fence, and this test checks it against what a cluster of Node
//! servers would deliver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/lab.rs"]
mod lab;
#[path = "cluster/node.rs"]
mod node;
#[path = "cluster/redis_server.rs"]
mod redis_server;
mod support;

use std::sync::{Arc, OnceLock};

use redis_server::RedisServer;
use roomcast_server::api::{Arg, ServerHandle};
use roomcast_server::config::{IoChoice, RedisConfig};
use serde_json::{json, Value};
use support::*;

fn node_and_roomcast_share_broadcasts_and_requests_over_sharded_pubsub(io: IoChoice) {
    let redis = RedisServer::start();
    let handle: Arc<OnceLock<ServerHandle>> = Arc::default();
    let mut server = lab::lab();
    let on_emit = handle.clone();
    server.namespace("/").on_server_side_emit(move |event, args, ack| match (event, ack) {
        ("ping", None) => {
            let mut echoed = vec![Arg::str("from-node")];
            echoed.extend(args.iter().cloned());
            if let Some(handle) = on_emit.get() {
                handle.emit("/", &[], &[], "sse", &echoed);
            }
        }
        ("ask", Some(ack)) => ack.send(Some(&Arg::json("4").unwrap())),
        _ => {}
    });
    let mut config = config(io, 2);
    let mut cluster = RedisConfig::new(redis.url().parse().unwrap());
    cluster.sharded = true;
    config.redis = Some(cluster);
    let node = TestServer::start(server, config);
    handle.set(node.handle()).unwrap();
    let facts = node::run_scenario("sharded.mjs", &[&format!("http://{}", node.addr), &redis.url()]);

    let got = |step: &str| -> Value {
        facts.get(step).unwrap_or_else(|| panic!("no fact for {step}: {facts:?}"))["got"].clone()
    };
    let hit = |x: &str| json!([["hit", x]]);
    let none = json!([]);
    assert_eq!(facts["serverCount"]["serverCount"], 2, "Node does not count the Roomcast node");
    assert_eq!(facts["room channel"]["subscribers"], 2, "both servers follow room r");

    // Node → Roomcast: `to(r)` comes on r's channel, the others on the main one.
    assert_eq!(
        got("node io.to(r)"),
        json!({"rc_r": hit("n1"), "rc": none, "node_r": hit("n1"), "node": none})
    );
    assert_eq!(
        got("node io.except(r)"),
        json!({"rc_r": none, "rc": hit("n2"), "node_r": none, "node": hit("n2")})
    );
    assert_eq!(
        got("node socket.broadcast"),
        json!({"rc_r": hit("n3"), "rc": hit("n3"), "node_r": none, "node": hit("n3")})
    );
    assert_eq!(
        got("node socket.to(r)"),
        json!({"rc_r": hit("n4"), "rc": none, "node_r": none, "node": none})
    );
    let bin = json!([["bin", {"buffer": [1, 2, 3]}, {"n": 1}]]);
    assert_eq!(got("node binary"), json!({"rc_r": bin, "rc": bin, "node_r": bin, "node": bin}));

    // Roomcast → Node: the lab's `hit` carries the sender's socket id.
    let from = |step: &str| -> Vec<&'static str> {
        let g = got(step);
        ["rc_r", "rc", "node_r", "node"]
            .into_iter()
            .filter(|k| g[*k].as_array().unwrap().len() == 1)
            .collect()
    };
    assert_eq!(from("roomcast io.to(r)"), ["rc_r", "node_r"]);
    assert_eq!(from("roomcast socket.broadcast"), ["rc", "node_r", "node"]);
    assert_eq!(from("roomcast io.except(r)"), ["rc", "node"]);
    let g = got("roomcast binary");
    assert_eq!((g["rc_r"].clone(), g["rc"].clone()), (bin.clone(), none.clone()));
    assert_eq!((g["node_r"].clone(), g["node"].clone()), (bin.clone(), bin.clone()));

    // Requests answered by the Roomcast node, in the sharded format on Node's own channel.
    let fetched = facts["fetchSockets"]["result"].as_array().unwrap().clone();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert!(fetched
        .iter()
        .all(|s| s["hasHandshake"] == true && s["rooms"].as_array().unwrap().contains(&json!("r"))));
    assert_eq!(
        got("socketsJoin then io.to(j)"),
        json!({"rc_r": none, "rc": hit("joined"), "node_r": none, "node": none})
    );
    assert_eq!(
        got("socketsLeave then io.to(j)"),
        json!({"rc_r": none, "rc": none, "node_r": none, "node": none})
    );
    let answers = facts["broadcast with ack"]["result"].clone();
    assert_eq!(answers, json!(["node:2", "node_r:2", "rc:2", "rc_r:2"]));
    let sse = json!([["sse", "from-node", 7]]);
    assert_eq!(got("serverSideEmit"), json!({"rc_r": sse, "rc": sse, "node_r": sse, "node": sse}));
    assert_eq!(facts["serverSideEmitWithAck"]["result"], json!([4]));

    // The classic-only emitter is heard by no sharded server, Node's or Roomcast.
    assert_eq!(got("emitter io.emit"), json!({"rc_r": none, "rc": none, "node_r": none, "node": none}));

    assert_eq!(facts["disconnectSockets"]["reason"], "io server disconnect");
}

on_both_backends!(node_and_roomcast_share_broadcasts_and_requests_over_sharded_pubsub);
