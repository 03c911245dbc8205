//! Requests a Roomcast node makes of the other nodes of a Redis cluster, in both adapter protocols
//! (classic, and sharded with `--redis-sharded`; each test runs in both, on both I/O backends):
//! `fetch_cluster_sockets`, `fetch_cluster_rooms`, `sockets_join`/`sockets_leave`/`disconnect_sockets`
//! reaching the other node, `server_side_emit` with and without ack, broadcast with acks counting the
//! clients of both nodes, and the timeouts when a node stops answering (an error, never a hang). Also
//! a dynamic namespace, created at run time, subscribed on Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/lab.rs"]
mod lab;
#[path = "cluster/redis_server.rs"]
mod redis_server;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_server::{Protocol, RedisServer};
use roomcast_server::api::{Arg, ClusterResult, Ctx, Server};
use roomcast_server::config::{IoChoice, RedisConfig};
use support::*;

fn node_with(
    redis: &RedisServer,
    io: IoChoice,
    protocol: Protocol,
    server: Server,
    requests_timeout: Duration,
) -> TestServer {
    let mut config = config(io, 2);
    let mut redis_config = RedisConfig::new(redis.url().parse().unwrap());
    redis_config.requests_timeout = requests_timeout;
    redis_config.sharded = protocol == Protocol::Sharded;
    config.redis = Some(redis_config);
    TestServer::start(server, config)
}

/// A lab node whose `/` answers other servers' `ask` (n → 2n) and reports their `ping`s on `pings`.
fn answering_node(
    redis: &RedisServer,
    io: IoChoice,
    protocol: Protocol,
    pings: Sender<String>,
) -> TestServer {
    let mut server = lab::lab();
    let pings = Mutex::new(pings);
    server.namespace("/").on_server_side_emit(move |event, args, ack| match (event, ack) {
        ("ask", Some(ack)) => {
            let n: u64 = json_of(&args[0]).parse().unwrap();
            ack.send(Some(&Arg::json((2 * n).to_string()).unwrap()));
        }
        ("ping", None) => {
            let _ = pings.lock().unwrap().send(json_of(&args[0]));
        }
        _ => {}
    });
    node_with(redis, io, protocol, server, Duration::from_secs(5))
}

fn joined(node: &TestServer, rooms: &[&str]) -> (Client, String) {
    let (mut client, sid) = Client::connect(node.addr);
    if !rooms.is_empty() {
        let args: Vec<String> = rooms.iter().map(|r| format!("{r:?}")).collect();
        client.call("join", &args.join(","));
    }
    (client, sid)
}

/// The JSON text of an argument.
fn json_of(arg: &Arg) -> String {
    match arg {
        Arg::Json(text) => String::from_utf8_lossy(text).into_owned(),
        other => panic!("not a JSON argument: {other:?}"),
    }
}

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

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Each `Arg` of an ack list as JSON text, sorted.
fn texts(args: &[Arg]) -> Vec<String> {
    sorted(args.iter().map(json_of).collect())
}

/// `fetch_cluster_sockets` of `to(room)` from shard 0 of `node`: (local ids, remote ids) or the error.
/// What a fetch found: this node's socket ids, and the other nodes' (id, rooms).
type Found = (Vec<String>, Vec<(String, Vec<String>)>);

fn fetch(node: &TestServer, room: &str) -> ClusterResult<Found> {
    let room = room.to_owned();
    let rx = on_shard0(node, move |cx, tx| {
        cx.of("/").unwrap().to(&room).fetch_cluster_sockets(move |_, result| {
            let _ = tx.send(result);
        })
    });
    let describe = |found: roomcast_server::api::ClusterSockets| {
        let local = sorted(found.local.iter().map(|s| s.id.clone()).collect());
        let remote = found.remote.iter().map(|s| (s.id.clone(), sorted(s.rooms.clone()))).collect();
        (local, remote)
    };
    match rx.recv_timeout(PATIENCE).expect("fetch_cluster_sockets never called back") {
        Ok(found) => Ok(describe(found)),
        Err(e) => Err(roomcast_server::api::TimedOut {
            partial: describe(e.partial),
            answered: e.answered,
            expected: e.expected,
        }),
    }
}

fn fetch_sockets_and_all_rooms_gather_both_nodes(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let (pings, _) = mpsc::channel();
    let (a, b) =
        (answering_node(&redis, io, protocol, pings.clone()), answering_node(&redis, io, protocol, pings));
    protocol.wait_for_servers(&redis, "/", 2);
    let (_a_r, a_r) = joined(&a, &["r"]);
    let (_b_r, b_r) = joined(&b, &["r", "x"]);
    let (_b_none, _) = joined(&b, &[]);

    let (local, remote) = fetch(&a, "r").unwrap();
    assert_eq!(local, std::slice::from_ref(&a_r));
    assert_eq!(remote, [(b_r.clone(), sorted(vec![b_r.clone(), "r".into(), "x".into()]))]);
    // From the other side, the same sockets.
    let (local, remote) = fetch(&b, "r").unwrap();
    assert_eq!((local, remote.len()), (vec![b_r.clone()], 1));
    assert_eq!(remote[0].0, a_r);

    let rx = on_shard0(&a, |cx, tx| {
        cx.fetch_cluster_rooms("/", move |_, rooms| {
            let _ = tx.send(rooms.map_err(|e| e.to_string()));
        })
    });
    let rooms = rx.recv_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(rooms.iter().filter(|r| *r == "r").count(), 1, "{rooms:?}");
    match protocol {
        Protocol::Classic => {
            for room in ["r", "x", a_r.as_str(), b_r.as_str()] {
                assert!(rooms.iter().any(|r| r == room), "{room} missing from {rooms:?}");
            }
        }
        // The sharded protocol has no ALL_ROOMS request (Node's sharded adapter neither): this node's
        // rooms only, at once.
        Protocol::Sharded => assert_eq!(sorted(rooms), sorted(vec![a_r, "r".into()])),
    }
}

fn join_leave_and_disconnect_from_one_node_reach_the_other(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let (pings, _) = mpsc::channel();
    let (a, b) =
        (answering_node(&redis, io, protocol, pings.clone()), answering_node(&redis, io, protocol, pings));
    protocol.wait_for_servers(&redis, "/", 2);
    let (mut a_r, a_r_sid) = joined(&a, &["r"]);
    let (mut b_r, b_r_sid) = joined(&b, &["r"]);
    let (mut b_other, _) = joined(&b, &[]);

    // Node A makes every `r` member of the cluster join `j`; a broadcast to `j` from A then reaches B.
    on_shard0(&a, |cx, tx: Sender<()>| {
        cx.of("/").unwrap().to("r").sockets_join("j");
        let _ = tx.send(());
    })
    .recv_timeout(PATIENCE)
    .unwrap();
    let (_, remote) = fetch(&a, "j").unwrap();
    assert_eq!(remote, [(b_r_sid.clone(), sorted(vec![b_r_sid.clone(), "j".into(), "r".into()]))]);
    protocol.wait_for_room(&redis, "/", "j", 2);
    a.handle().emit("/", &["j"], &[], "hit", &[Arg::str("j")]);
    assert_eq!(b_r.expect_event("hit").str_arg(0), "j");
    assert_eq!(a_r.expect_event("hit").str_arg(0), "j");

    // `local` keeps it on A.
    on_shard0(&a, |cx, tx: Sender<()>| {
        cx.of("/").unwrap().to("r").local().sockets_join("only-a");
        let _ = tx.send(());
    })
    .recv_timeout(PATIENCE)
    .unwrap();
    let (local, remote) = fetch(&a, "only-a").unwrap();
    assert_eq!((local, remote), (vec![a_r_sid.clone()], vec![]));

    // Leaving, then disconnecting from A: B's sockets leave `j`, then B's `r` member is disconnected.
    on_shard0(&a, |cx, tx: Sender<()>| {
        cx.of("/").unwrap().sockets_leave("j");
        let _ = tx.send(());
    })
    .recv_timeout(PATIENCE)
    .unwrap();
    assert_eq!(fetch(&a, "j").unwrap(), (vec![], vec![]));
    let keep = a_r_sid.clone();
    on_shard0(&a, move |cx, tx: Sender<()>| {
        cx.of("/").unwrap().to("r").except(&keep).disconnect_sockets(false);
        let _ = tx.send(());
    })
    .recv_timeout(PATIENCE)
    .unwrap();
    let gone = b_r.recv_where(|p| p.kind == roomcast_engine::sio::PacketType::Disconnect);
    assert_eq!(gone.nsp, "/");
    let (local, remote) = fetch(&a, "r").unwrap();
    assert_eq!((local, remote), (vec![a_r_sid], vec![]), "B's r member should be gone");
    b_other.call("join", "\"still-here\"");
}

fn server_side_emit_reaches_the_other_node_and_gathers_its_ack(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let (a_pings, a_heard) = mpsc::channel();
    let (b_pings, b_heard) = mpsc::channel();
    let (a, _b) =
        (answering_node(&redis, io, protocol, a_pings), answering_node(&redis, io, protocol, b_pings));
    protocol.wait_for_servers(&redis, "/", 2);

    a.handle().server_side_emit("/", "ping", &[Arg::json("7").unwrap()]);
    assert_eq!(b_heard.recv_timeout(PATIENCE).unwrap(), "7");
    let rx = on_shard0(&a, |cx, tx| {
        cx.server_side_emit_with_ack("/", "ask", &[Arg::json("21").unwrap()], move |_, answers| {
            let _ = tx.send(answers.map(|a| texts(&a)).map_err(|e| e.to_string()));
        })
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), ["42"]);
    // A server does not hear its own server-side emits.
    assert!(a_heard.recv_timeout(Duration::from_millis(300)).is_err());
}

/// A broadcast with acks from A is counted by both nodes; every client's ack comes back to A.
fn broadcast_with_ack_counts_the_clients_of_both_nodes(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let (pings, _) = mpsc::channel();
    let (a, b) =
        (answering_node(&redis, io, protocol, pings.clone()), answering_node(&redis, io, protocol, pings));
    protocol.wait_for_servers(&redis, "/", 2);
    let mut clients = vec![
        ("a1", joined(&a, &["q"]).0),
        ("a2", joined(&a, &[]).0),
        ("b1", joined(&b, &["q"]).0),
        ("b2", joined(&b, &["q"]).0),
    ];
    let ask = |node: &TestServer, room: Option<&'static str>, local: bool| {
        on_shard0(node, move |cx, tx| {
            let mut op = cx.of("/").unwrap();
            if let Some(room) = room {
                op = op.to(room);
            }
            if local {
                op = op.local();
            }
            op.emit_with_ack(
                "question",
                &[Arg::json("1").unwrap()],
                Duration::from_secs(3),
                move |_, acks| {
                    let _ = tx.send(acks.map(|a| texts(&a)).map_err(|e| e.to_string()));
                },
            )
        })
    };
    let answer = |clients: &mut Vec<(&str, Client)>, which: &[&str]| {
        for (name, client) in clients.iter_mut().filter(|(n, _)| which.contains(n)) {
            let question = client.expect_event("question");
            assert_eq!(question.arg(0), 1);
            client.send_sio(&format!("3{}[\"{name}\"]", question.ack_id.unwrap()));
        }
    };

    let rx = ask(&a, Some("q"), false);
    answer(&mut clients, &["a1", "b1", "b2"]);
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), ["\"a1\"", "\"b1\"", "\"b2\""]);

    let rx = ask(&b, None, false);
    answer(&mut clients, &["a1", "a2", "b1", "b2"]);
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), ["\"a1\"", "\"a2\"", "\"b1\"", "\"b2\""]);

    let rx = ask(&a, Some("q"), true);
    answer(&mut clients, &["a1"]);
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), ["\"a1\""]);

    // A client that never answers: the caller gets a timeout with the acks that came.
    let started = Instant::now();
    let rx = on_shard0(&a, move |cx, tx| {
        cx.of("/").unwrap().to("q").emit_with_ack(
            "question",
            &[Arg::json("1").unwrap()],
            Duration::from_millis(500),
            move |_, acks| {
                let _ = tx.send(acks.map_err(|e| (texts(&e.partial), e.answered, e.expected)));
            },
        )
    });
    answer(&mut clients, &["b1", "b2"]);
    clients[0].1.expect_event("question");
    let (partial, answered, expected) = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert_eq!((partial, answered, expected), (vec!["\"b1\"".to_owned(), "\"b2\"".into()], 1, Some(1)));
    assert!(started.elapsed() >= Duration::from_millis(450), "{:?}", started.elapsed());
}

/// A connection that subscribes to the channel of `/`'s requests and never answers: a node that hangs.
fn silent_node(redis: &RedisServer, protocol: Protocol) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    let command = match protocol {
        Protocol::Classic => "SUBSCRIBE",
        Protocol::Sharded => "SSUBSCRIBE",
    };
    let channel = protocol.servers_channel("/");
    write!(conn, "*2\r\n${}\r\n{command}\r\n${}\r\n{channel}\r\n", command.len(), channel.len()).unwrap();
    conn
}

fn requests_time_out_with_what_came_when_a_node_stops_answering(io: IoChoice, protocol: Protocol) {
    let mut redis = RedisServer::start();
    let (pings, _) = mpsc::channel();
    let a = node_with(&redis, io, protocol, lab::lab(), Duration::from_millis(600));
    let _b = answering_node(&redis, io, protocol, pings);
    protocol.wait_for_servers(&redis, "/", 2);
    let (_b_r, b_r) = joined(&_b, &["r"]);
    let _silent = silent_node(&redis, protocol);
    protocol.wait_for_servers(&redis, "/", 3);

    let started = Instant::now();
    let err = fetch(&a, "r").unwrap_err();
    let waited = started.elapsed();
    assert_eq!((err.answered, err.expected), (1, Some(2)));
    assert_eq!(err.partial.1.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), [b_r]);
    assert!(waited >= Duration::from_millis(550) && waited < Duration::from_secs(3), "{waited:?}");

    let rx = on_shard0(&a, |cx, tx| {
        cx.server_side_emit_with_ack("/", "ask", &[Arg::json("1").unwrap()], move |_, answers| {
            let _ = tx.send(answers.map_err(|e| (texts(&e.partial), e.answered, e.expected)));
        })
    });
    let (partial, answered, expected) = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert_eq!((partial, answered, expected), (vec!["2".to_owned()], 1, Some(2)));

    // Once the silent node is gone, the same request completes without waiting.
    drop(_silent);
    protocol.wait_for_servers(&redis, "/", 2);
    let started = Instant::now();
    assert!(fetch(&a, "r").is_ok());
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());

    // With Redis gone, the request cannot even be published: it still ends at its deadline.
    redis.kill();
    let (_a_r, a_r) = joined(&a, &["r"]);
    let err = fetch(&a, "r").unwrap_err();
    assert_eq!((err.answered, err.expected), (0, None));
    assert_eq!(err.partial, (vec![a_r], vec![]));
}

/// A namespace created at run time (a dynamic definition) subscribes to its channels: a Node-style
/// count sees it, and broadcasts and requests cross between the nodes in it.
fn dynamic_namespaces_subscribe_when_created(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let dynamic = || {
        let mut server = lab::lab();
        server.dynamic_namespace(|name| name.starts_with("/room-")).on("join", |socket, event| {
            for room in event.args().iter().filter_map(|a| a.as_str()) {
                socket.join(&room);
            }
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        });
        node_with(&redis, io, protocol, server, Duration::from_secs(5))
    };
    let (a, b) = (dynamic(), dynamic());
    protocol.wait_for_servers(&redis, "/", 2);
    assert_eq!(protocol.servers(&redis, "/room-1"), 0);
    let mut on_a = Client::open(a.addr);
    on_a.join_nsp("/room-1", None).unwrap();
    let mut on_b = Client::open(b.addr);
    on_b.join_nsp("/room-1", None).unwrap();
    on_b.call_nsp("/room-1", "join", "\"r\"");
    let deadline = Instant::now() + PATIENCE;
    while protocol.servers(&redis, "/room-1") != 2 {
        assert!(Instant::now() < deadline, "the dynamic namespace was never subscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
    protocol.wait_for_room(&redis, "/room-1", "r", 1);
    a.handle().emit("/room-1", &["r"], &[], "hit", &[Arg::str("dyn")]);
    let hit = on_b.expect_event("hit");
    assert_eq!((hit.nsp.as_str(), hit.str_arg(0)), ("/room-1", "dyn".to_owned()));
    let rx = on_shard0(&a, |cx, tx| {
        cx.of("/room-1").unwrap().to("r").fetch_cluster_sockets(move |_, found| {
            let _ = tx.send(found.map(|f| f.remote.len()).map_err(|e| e.to_string()));
        })
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Ok(1));
}

/// A request made at once in a dynamic namespace this node has just created, before its subscriber
/// followed it (up to 250 ms later in the classic protocol), still gathers the other node's answer:
/// published before that, the reply counting its receivers would leave this node out, and the
/// request would end one answer short, as if the other node had nothing.
fn a_request_in_a_dynamic_namespace_just_created_waits_for_the_other_node(io: IoChoice, protocol: Protocol) {
    let redis = RedisServer::start();
    let dynamic = || {
        let mut server = lab::lab();
        server.dynamic_namespace(|name| name.starts_with("/room-")).on("join", |socket, event| {
            for room in event.args().iter().filter_map(|a| a.as_str()) {
                socket.join(&room);
            }
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        });
        node_with(&redis, io, protocol, server, Duration::from_secs(5))
    };
    let (a, b) = (dynamic(), dynamic());
    protocol.wait_for_servers(&redis, "/", 2);
    let mut on_b = Client::open(b.addr);
    let b_sid = on_b.join_nsp("/room-2", None).unwrap();
    on_b.call_nsp("/room-2", "join", "\"r\"");
    protocol.wait_for_servers(&redis, "/room-2", 1);
    let rx = on_shard0(&a, |cx, tx| {
        // Creates the namespace on this node, and asks at once.
        cx.of("/room-2").unwrap().to("r").fetch_cluster_sockets(move |_, found| {
            let _ = tx.send(found.map(|f| f.remote.len()).map_err(|e| e.to_string()));
        })
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Ok(1), "{b_sid} is in r of /room-2 on the other node");
}

in_both_protocols!(
    a_request_in_a_dynamic_namespace_just_created_waits_for_the_other_node,
    fetch_sockets_and_all_rooms_gather_both_nodes,
    join_leave_and_disconnect_from_one_node_reach_the_other,
    server_side_emit_reaches_the_other_node_and_gathers_its_ack,
    broadcast_with_ack_counts_the_clients_of_both_nodes,
    requests_time_out_with_what_came_when_a_node_stops_answering,
    dynamic_namespaces_subscribe_when_created,
);
