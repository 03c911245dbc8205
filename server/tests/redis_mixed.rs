//! A mixed cluster: a Node.js socket.io 4.8 server with `@socket.io/redis-adapter` 8.x, a Roomcast node
//! and `@socket.io/redis-emitter` 5.x on one real Redis. The scenario runs from the Node side
//! (`tests/cluster/mixed.mjs`, real `socket.io-client`s on both servers); each step prints what every
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

use node::run_scenario;
use redis_server::RedisServer;
use roomcast_server::api::{Arg, ServerHandle};
use roomcast_server::config::{IoChoice, RedisConfig};
use serde_json::{json, Value};
use support::*;

#[test]
fn node_and_roomcast_nodes_share_broadcasts_requests_and_the_emitter() {
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
    let mut config = config(IoChoice::Epoll, 2);
    config.redis = Some(RedisConfig::new(redis.url().parse().unwrap()));
    let node = TestServer::start(server, config);
    handle.set(node.handle()).unwrap();
    let facts = run_scenario("mixed.mjs", &[&format!("http://{}", node.addr), &redis.url()]);

    let got = |step: &str| -> Value {
        facts.get(step).unwrap_or_else(|| panic!("no fact for {step}: {facts:?}"))["got"].clone()
    };
    let hit = |x: &str| json!([["hit", x]]);
    let none = json!([]);
    assert_eq!(facts["serverCount"]["serverCount"], 2, "Node does not count the Roomcast node");

    // Node → Roomcast.
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

    // Requests answered by the Roomcast node.
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
    let rooms = facts["allRooms"]["result"].as_array().unwrap();
    assert!(rooms.contains(&json!("r")) && !rooms.contains(&json!("j")), "{rooms:?}");
    let answers = facts["broadcast with ack"]["result"].clone();
    assert_eq!(answers, json!(["node:2", "node_r:2", "rc:2", "rc_r:2"]));
    // The Roomcast listener answers `ping` with `ServerHandle::emit`, which reaches the whole cluster.
    let sse = json!([["sse", "from-node", 7]]);
    assert_eq!(got("serverSideEmit"), json!({"rc_r": sse, "rc": sse, "node_r": sse, "node": sse}));
    assert_eq!(facts["serverSideEmitWithAck"]["result"], json!([4]));

    // The emitter.
    assert_eq!(
        got("emitter to(r)"),
        json!({"rc_r": hit("e1"), "rc": none, "node_r": hit("e1"), "node": none})
    );
    assert_eq!(
        got("emitter except(r)"),
        json!({"rc_r": none, "rc": hit("e2"), "node_r": none, "node": hit("e2")})
    );
    assert_eq!(
        got("emitter volatile"),
        json!({"rc_r": hit("e3"), "rc": hit("e3"), "node_r": hit("e3"), "node": hit("e3")})
    );
    assert_eq!(facts["emitter of(/admin)"]["result"], "e4");
    assert_eq!(
        got("emitter socketsJoin"),
        json!({"rc_r": none, "rc": hit("e5"), "node_r": none, "node": none})
    );

    assert_eq!(facts["disconnectSockets"]["reason"], "io server disconnect");
}
