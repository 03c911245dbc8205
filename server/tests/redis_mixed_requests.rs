//! A mixed cluster, driven from the Roomcast side: a Roomcast node originates every cluster request of
//! `@socket.io/redis-adapter` 8.x towards a Node.js socket.io 4.8 server running that adapter
//! (`tests/cluster/requests.mjs`, with real `socket.io-client`s): `fetch_cluster_sockets`,
//! `sockets_join`/`sockets_leave`/`disconnect_sockets`, `fetch_cluster_rooms`, `server_side_emit` with
//! and without ack (and the Node server's own server-side emit back), and a broadcast with acks whose
//! answers come from clients of both servers. Once with the classic adapter on both sides, once with
//! the sharded one (`--redis-sharded`, Node's `createShardedAdapter`); each on both I/O backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/lab.rs"]
mod lab;
#[path = "cluster/node.rs"]
mod node;
#[path = "cluster/redis_server.rs"]
mod redis_server;
mod support;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use node::NodeScenario;
use redis_server::{Protocol, RedisServer};
use roomcast_server::api::{Arg, ClusterResult, ClusterSockets, Ctx};
use roomcast_server::config::{IoChoice, RedisConfig};
use serde_json::{json, Value};
use support::*;

/// Runs `f` once, on shard 0 of `node`, with a sender for its result.
fn on_shard0<T: Send + 'static>(
    node: &TestServer,
    f: impl FnOnce(&mut Ctx<'_>, Sender<T>) + Send + 'static,
) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    let once = Mutex::new(Some((f, tx)));
    node.handle().on_each_shard(move |cx| {
        if cx.shard().0 == 0 {
            if let Some((f, tx)) = once.lock().unwrap().take() {
                f(cx, tx);
            }
        }
    });
    rx
}

fn json_of(arg: &Arg) -> String {
    match arg {
        Arg::Json(text) => String::from_utf8_lossy(text).into_owned(),
        other => panic!("not a JSON argument: {other:?}"),
    }
}

/// `fetch_cluster_sockets` of `to(room)`: this node's ids, and the Node server's (id, rooms, handshake).
/// A timeout says what came, and whether the Redis on the test's port is still the test's own and who
/// subscribes there (a foreign or vanished Redis explains a timeout the nodes cannot).
fn fetch(node: &TestServer, redis: &RedisServer, protocol: Protocol, room: &'static str) -> ClusterSockets {
    let rx: Receiver<ClusterResult<ClusterSockets>> = on_shard0(node, move |cx, tx| {
        cx.of("/").unwrap().to(room).fetch_cluster_sockets(move |_, found| {
            let _ = tx.send(found);
        })
    });
    let found = rx.recv_timeout(PATIENCE).expect("fetch_cluster_sockets never called back");
    found.unwrap_or_else(|e| {
        panic!(
            "fetch of {room}: {e}; came: {:?}; redis on port {}: pid {:?} (ours {:?}), {} server(s) of /",
            e.partial,
            redis.port,
            redis.serving_pid(),
            redis.pid(),
            protocol.servers(redis, "/"),
        )
    })
}

fn remote_rooms(found: &ClusterSockets) -> Vec<(String, Vec<String>)> {
    let mut remote: Vec<_> = found
        .remote
        .iter()
        .map(|s| {
            let mut rooms = s.rooms.clone();
            rooms.sort();
            (s.id.clone(), rooms)
        })
        .collect();
    remote.sort();
    remote
}

/// Runs `f` on shard 0 of `node` (an operation without answer) and waits until it ran.
fn run(node: &TestServer, f: impl FnOnce(&mut Ctx<'_>) + Send + 'static) {
    on_shard0(node, move |cx, tx: Sender<()>| {
        f(cx);
        let _ = tx.send(());
    })
    .recv_timeout(PATIENCE)
    .unwrap();
}

fn roomcast_originates_every_request_towards_a_node_server(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let (pongs_tx, pongs) = mpsc::channel();
    let pongs_tx = Mutex::new(pongs_tx);
    let mut server = lab::lab();
    server.namespace("/").on_server_side_emit(move |event, args, _| {
        if event == "pong" {
            let _ = pongs_tx.lock().unwrap().send(json_of(&args[0]));
        }
    });
    let mut config = config(io, 2);
    let mut cluster = RedisConfig::new(redis.url().parse().unwrap());
    cluster.sharded = protocol == Protocol::Sharded;
    config.redis = Some(cluster);
    let rc = TestServer::start(server, config);
    let script_protocol = if protocol == Protocol::Sharded { "sharded" } else { "classic" };
    let scenario = NodeScenario::start("requests.mjs", &[&redis.url(), script_protocol]);
    let ready = scenario.fact(PATIENCE, |f| f["ready"] == true);
    assert_eq!(ready["serverCount"], 2, "{ready}");
    let (node_r, node) =
        (ready["node_r"].as_str().unwrap().to_owned(), ready["node"].as_str().unwrap().to_owned());
    let (mut rc_r, rc_r_sid) = Client::connect(rc.addr);
    rc_r.call("join", "\"r\"");

    // fetchSockets: the Node server's `r` member, with its handshake, beside the local one.
    let found = fetch(&rc, &redis, protocol, "r");
    assert_eq!(found.local.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [rc_r_sid.as_str()]);
    let mut expected_rooms = vec![node_r.clone(), "r".to_owned()];
    expected_rooms.sort();
    assert_eq!(remote_rooms(&found), [(node_r.clone(), expected_rooms)]);
    let handshake: Value = serde_json::from_slice(&found.remote[0].handshake).unwrap();
    assert_eq!(handshake["auth"], json!({"rooms": ["r"]}), "{handshake}");
    assert!(handshake["headers"].is_object(), "{handshake}");

    // socketsJoin reaches the Node server's socket; a broadcast to the joined room then reaches it.
    run(&rc, |cx| cx.of("/").unwrap().to("r").sockets_join("j"));
    let found = fetch(&rc, &redis, protocol, "j");
    assert_eq!(found.local.len(), 1);
    assert_eq!(found.remote.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [node_r.as_str()]);
    protocol.wait_for_room(&redis, "/", "j", 2);
    rc.handle().emit("/", &["j"], &[], "hit", &[Arg::str("joined")]);
    let hit = scenario.fact(PATIENCE, |f| f["event"] == "hit");
    assert_eq!(hit, json!({"client": "node_r", "event": "hit", "args": ["joined"]}));
    assert_eq!(rc_r.expect_event("hit").str_arg(0), "joined");

    // allRooms, over both servers (the sharded protocol has no such request: this server's rooms).
    let rx = on_shard0(&rc, |cx, tx| {
        cx.fetch_cluster_rooms("/", move |_, rooms| {
            let _ = tx.send(rooms.map_err(|e| e.to_string()));
        })
    });
    let rooms = rx.recv_timeout(PATIENCE).unwrap().unwrap();
    for room in ["r", "j", rc_r_sid.as_str()] {
        assert!(rooms.iter().any(|r| r == room), "{room} missing from {rooms:?}");
    }
    for room in [node_r.as_str(), node.as_str()] {
        let listed = rooms.iter().any(|r| r == room);
        assert_eq!(listed, protocol == Protocol::Classic, "{room} in {rooms:?} ({protocol:?})");
    }

    // serverSideEmit with ack: one answer, from the Node server; without ack: Node pongs back.
    let rx = on_shard0(&rc, |cx, tx| {
        cx.server_side_emit_with_ack("/", "ask", &[Arg::json("21").unwrap()], move |_, answers| {
            let _ = tx
                .send(answers.map(|a| a.iter().map(json_of).collect::<Vec<_>>()).map_err(|e| e.to_string()));
        })
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), ["42"]);
    rc.handle().server_side_emit("/", "ping", &[Arg::json("7").unwrap()]);
    assert_eq!(pongs.recv_timeout(PATIENCE).unwrap(), "8");

    // Broadcast with acks: both Node clients and the Roomcast one answer; the Node server counts its own.
    let rx = on_shard0(&rc, |cx, tx| {
        cx.of("/").unwrap().emit_with_ack(
            "question",
            &[Arg::json("1").unwrap()],
            Duration::from_secs(3),
            move |_, acks| {
                let mut acks: Vec<String> = match acks {
                    Ok(acks) => acks.iter().map(json_of).collect(),
                    Err(e) => vec![e.to_string()],
                };
                acks.sort();
                let _ = tx.send(acks);
            },
        )
    });
    let question = rc_r.expect_event("question");
    rc_r.send_sio(&format!("3{}[\"rc_r:2\"]", question.ack_id.unwrap()));
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ["\"node:2\"", "\"node_r:2\"", "\"rc_r:2\""]);

    // socketsLeave, then disconnectSockets of the Node server's `r` member.
    run(&rc, |cx| cx.of("/").unwrap().sockets_leave("j"));
    assert!(fetch(&rc, &redis, protocol, "j").remote.is_empty());
    let keep = rc_r_sid.clone();
    run(&rc, move |cx| cx.of("/").unwrap().to("r").except(&keep).disconnect_sockets(false));
    let gone = scenario.fact(PATIENCE, |f| f.get("disconnect").is_some());
    assert_eq!(gone, json!({"client": "node_r", "disconnect": "io server disconnect"}));
    assert_eq!(fetch(&rc, &redis, protocol, "r").remote.len(), 0);
}

in_both_protocols!(roomcast_originates_every_request_towards_a_node_server);
