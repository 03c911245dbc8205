//! Rooms over real sockets, on both backends and across shards (protocol notes §4, checklist 29–32):
//! the own-id room, unions, `except`, sender exclusion, per-namespace rooms, the disconnecting/disconnect
//! pair (a leaving socket neither joins rooms nor hears broadcasts from its `disconnect` handlers),
//! adapter events, 200 sockets in dense overlapping rooms, and the order of one sender's broadcasts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use roomcast_server::api::{AdapterEvent, Arg, Event, Server, Socket};
use roomcast_server::config::IoChoice;
use serde_json::Value;
use support::*;

const NAMESPACES: [&str; 2] = ["/", "/custom"];

/// A server whose clients drive room operations:
/// - `join` / `leave` (room names…) → ack `"ok"`; `rooms` → ack with `socket.rooms`;
/// - `op` `{"via":"io"|"socket","to":[…],"except":[…]}` → `io.to(…).except(…)` or `socket.to(…)…`
///   emits `hit` (the sender's id), then a `fence` on every namespace, then acks `"ok"`;
/// - `n` (number) → `socket.broadcast.emit("n", number)`.
///
/// Disconnect handlers write `disconnecting <id> <reason> <rooms>` / `disconnect <id> <reason> <rooms>`
/// to `log`.
fn lab(log: &Log) -> Server {
    let mut server = Server::new();
    for name in NAMESPACES {
        let (on_disconnecting, on_disconnect) = (log.clone(), log.clone());
        server
            .namespace(name)
            .on("join", |socket, event| {
                for room in event.args().iter().filter_map(|a| a.as_str()) {
                    socket.join(&room);
                }
                socket.ack(event.ack_id(), &[Arg::str("ok")]);
            })
            .on("leave", |socket, event| {
                for room in event.args().iter().filter_map(|a| a.as_str()) {
                    socket.leave(&room);
                }
                socket.ack(event.ack_id(), &[Arg::str("ok")]);
            })
            .on("rooms", |socket, event| {
                let rooms = Arg::to_json(&socket.rooms()).unwrap();
                socket.ack(event.ack_id(), &[rooms]);
            })
            .on("op", op)
            .on("n", |socket, event| socket.broadcast().emit("n", &event.to_args()))
            .on_disconnecting(move |socket, reason| {
                on_disconnecting.push(format!("disconnecting {} {reason} {:?}", socket.id(), socket.rooms()))
            })
            .on_disconnect(move |socket, reason| {
                on_disconnect.push(format!("disconnect {} {reason} {:?}", socket.id(), socket.rooms()))
            });
    }
    server
}

fn op(socket: &mut Socket<'_>, event: &Event<'_>) {
    let spec: Value = serde_json::from_slice(event.arg(0).and_then(|a| a.json()).unwrap()).unwrap();
    let rooms = |key: &str| -> Vec<String> {
        spec[key].as_array().into_iter().flatten().map(|r| r.as_str().unwrap().to_owned()).collect()
    };
    let hit = [Arg::str(&socket.id())];
    let mut operator = if spec["via"] == "socket" { socket.broadcast() } else { socket.nsp() };
    for room in rooms("to") {
        operator = operator.to(&room);
    }
    for room in rooms("except") {
        operator = operator.except(&room);
    }
    operator.emit("hit", &hit);
    for name in NAMESPACES {
        if let Some(nsp) = socket.ctx().of(name) {
            nsp.emit("fence", &[]);
        }
    }
    socket.ack(event.ack_id(), &[Arg::str("ok")]);
}

/// Joins rooms through the `join` event, waiting for the ack.
fn join(client: &mut Client, rooms: &[&str]) {
    let args: Vec<String> = rooms.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    assert_eq!(client.call("join", &args.join(",")).arg(0), "ok");
}

/// How many `hit`s each client receives before the fence.
fn hits(clients: &mut [(Client, String, usize)]) -> Vec<usize> {
    clients.iter_mut().map(|(c, _, _)| c.events_until("hit", "fence").len()).collect()
}

fn own_room_and_direct_targets(io: IoChoice) {
    let server = TestServer::start(lab(&Log::default()), config(io, 2));
    let mut clients = server.connect_spread(3);
    for (client, sid, _) in clients.iter_mut() {
        let rooms = client.call("rooms", "").arg(0);
        assert_eq!(rooms, serde_json::json!([sid]), "a socket starts in its own room only");
    }
    // io.to(sid) reaches that one socket, whatever shard it is on; and a socket may target itself.
    for target in 0..clients.len() {
        let sid = clients[target].1.clone();
        let sender = (target + 1) % clients.len();
        clients[sender].0.call("op", &format!(r#"{{"via":"io","to":["{sid}"]}}"#));
        let expected: Vec<usize> = (0..clients.len()).map(|i| usize::from(i == target)).collect();
        assert_eq!(hits(&mut clients), expected, "io.to({sid}) from client {sender}");
    }
}

fn targets_are_unions_minus_excepts(io: IoChoice) {
    let server = TestServer::start(lab(&Log::default()), config(io, 2));
    let mut clients = server.connect_spread(5);
    // s: sender, in r1. a: r1. b: r2. c: r1 and r2. d: no room.
    let memberships: [&[&str]; 5] = [&["r1"], &["r1"], &["r2"], &["r1", "r2"], &[]];
    for ((client, _, _), rooms) in clients.iter_mut().zip(memberships) {
        join(client, rooms);
    }
    let cases: [(&str, [usize; 5]); 9] = [
        (r#"{"via":"io","to":["r1"]}"#, [1, 1, 0, 1, 0]),
        (r#"{"via":"io","to":["r1","r2"]}"#, [1, 1, 1, 1, 0]),
        (r#"{"via":"io","to":["r1","r2","r1","nobody"]}"#, [1, 1, 1, 1, 0]),
        (r#"{"via":"io","except":["r1"]}"#, [0, 0, 1, 0, 1]),
        (r#"{"via":"io","to":["r2"],"except":["r1"]}"#, [0, 0, 1, 0, 0]),
        (r#"{"via":"io"}"#, [1, 1, 1, 1, 1]),
        (r#"{"via":"socket","to":["r1"]}"#, [0, 1, 0, 1, 0]),
        (r#"{"via":"socket"}"#, [0, 1, 1, 1, 1]),
        (r#"{"via":"socket","except":["r2"]}"#, [0, 1, 0, 0, 1]),
    ];
    for (spec, expected) in cases {
        assert_eq!(clients[0].0.call("op", spec).arg(0), "ok");
        assert_eq!(hits(&mut clients), expected, "op {spec}");
    }
    // After leaving, a socket is no longer a target.
    assert_eq!(clients[3].0.call("leave", r#""r1""#).arg(0), "ok");
    clients[4].0.call("op", r#"{"via":"io","to":["r1"]}"#);
    assert_eq!(hits(&mut clients), [1, 1, 0, 0, 0]);
}

fn rooms_are_per_namespace(io: IoChoice) {
    let server = TestServer::start(lab(&Log::default()), config(io, 2));
    let (mut main_only, _) = Client::connect(server.addr);
    let mut custom_only = Client::open(server.addr);
    custom_only.join_nsp("/custom", None).unwrap();
    let (mut both, _) = Client::connect(server.addr);
    both.join_nsp("/custom", None).unwrap();
    join(&mut main_only, &["r"]);
    assert_eq!(custom_only.call_nsp("/custom", "join", r#""r""#).arg(0), "ok");
    join(&mut both, &["r"]);
    assert_eq!(both.call_nsp("/custom", "join", r#""r""#).arg(0), "ok");

    // A broadcast to "r" on "/" reaches "/" members only.
    main_only.call("op", r#"{"via":"io","to":["r"]}"#);
    let seen = |c: &mut Client, n: usize| -> Vec<String> {
        (0..n).map(|_| c.recv()).map(|p| format!("{} {}", p.nsp, p.name.unwrap())).collect()
    };
    assert_eq!(seen(&mut main_only, 2), ["/ hit", "/ fence"]);
    assert_eq!(seen(&mut custom_only, 1), ["/custom fence"]);
    assert_eq!(seen(&mut both, 3), ["/ hit", "/ fence", "/custom fence"]);

    // And one on "/custom" reaches "/custom" members only.
    custom_only.call_nsp("/custom", "op", r#"{"via":"io","to":["r"]}"#);
    assert_eq!(seen(&mut main_only, 1), ["/ fence"]);
    assert_eq!(seen(&mut custom_only, 2), ["/custom hit", "/custom fence"]);
    assert_eq!(seen(&mut both, 3), ["/custom hit", "/ fence", "/custom fence"]);
}

fn disconnecting_sees_rooms_and_disconnect_none(io: IoChoice) {
    let log = Log::default();
    let server = TestServer::start(lab(&log), config(io, 2));
    let mut clients = server.connect_spread(2);
    let [(leaver, leaver_sid, _), (other, _, _)] = &mut clients[..] else { unreachable!() };
    let custom_sid = leaver.join_nsp("/custom", None).unwrap();
    join(leaver, &["a", "b"]);
    join(other, &["a"]);

    // Leaving "/" only (DISCONNECT packet): handlers see the reason and the rooms before / after.
    leaver.send_sio("1");
    let disconnect = format!("disconnect {leaver_sid} ");
    log.wait_for("disconnect ran", |l| l.starts_with(&disconnect));
    let lines: Vec<String> = log.lines().into_iter().filter(|l| l.contains(leaver_sid.as_str())).collect();
    assert_eq!(
        lines,
        [
            format!(r#"disconnecting {leaver_sid} client namespace disconnect ["{leaver_sid}", "a", "b"]"#),
            format!("disconnect {leaver_sid} client namespace disconnect []"),
        ]
    );
    // The socket left "a": a broadcast to "a" reaches the other member only; the leaver's connection
    // (still on "/custom") sees the fences of "/custom" and nothing of "/".
    other.call("op", r#"{"via":"io","to":["a"]}"#);
    assert_eq!(other.events_until("hit", "fence").len(), 1);
    let next = leaver.recv();
    assert_eq!((next.nsp.as_str(), next.name.as_deref()), ("/custom", Some("fence")), "{}", next.text);

    // Closing the connection: "/custom" leaves with reason "transport close".
    leaver.close();
    let gone = format!("disconnect {custom_sid} transport close []");
    log.wait_for("the /custom socket left", |l| l == gone);
}

fn adapter_events_follow_the_reference_order(io: IoChoice) {
    let log = Log::default();
    let mut server = lab(&Log::default());
    let (events, connections) = (log.clone(), log.clone());
    server
        .namespace("/")
        .on_adapter_event(move |event| {
            events.push(match event {
                AdapterEvent::CreateRoom(room) => format!("create-room {room}"),
                AdapterEvent::DeleteRoom(room) => format!("delete-room {room}"),
                AdapterEvent::JoinRoom(room, sid) => format!("join-room {room} {sid}"),
                AdapterEvent::LeaveRoom(room, sid) => format!("leave-room {room} {sid}"),
            })
        })
        .on_connection(move |_| connections.push("connection"));
    // One shard: adapter events are per shard, as they are per server in a cluster.
    let server = TestServer::start(server, config(io, 1));
    let (mut first, s1) = Client::connect(server.addr);
    join(&mut first, &["a", "b"]);
    join(&mut first, &["a"]);
    assert_eq!(first.call("leave", r#""b","zzz""#).arg(0), "ok");
    let (mut second, s2) = Client::connect(server.addr);
    join(&mut second, &["a"]);
    first.close();
    log.wait_for("the first socket's rooms are gone", |l| l == format!("delete-room {s1}"));
    second.close();
    log.wait_for("the second socket's rooms are gone", |l| l == "delete-room a");
    let expected = [
        format!("create-room {s1}"),
        format!("join-room {s1} {s1}"),
        "connection".into(),
        "create-room a".into(),
        format!("join-room a {s1}"),
        "create-room b".into(),
        format!("join-room b {s1}"),
        format!("leave-room b {s1}"),
        "delete-room b".into(),
        format!("create-room {s2}"),
        format!("join-room {s2} {s2}"),
        "connection".into(),
        format!("join-room a {s2}"),
        format!("leave-room {s1} {s1}"),
        format!("delete-room {s1}"),
        format!("leave-room a {s1}"),
        format!("leave-room {s2} {s2}"),
        format!("delete-room {s2}"),
        format!("leave-room a {s2}"),
        "delete-room a".into(),
    ];
    assert_eq!(log.lines(), expected);
}

fn a_socket_that_left_cannot_join_rooms(io: IoChoice) {
    let log = Log::default();
    let mut server = lab(&Log::default());
    let events = log.clone();
    server
        .namespace("/")
        .on_adapter_event(move |event| events.push(format!("{event:?}")))
        .on_disconnect(|socket, _| socket.join("zombie"));
    let server = TestServer::start(server, config(io, 1));
    let (mut first, s1) = Client::connect(server.addr);
    first.close();
    log.wait_for("the socket left", |l| l.starts_with("DeleteRoom"));
    let (mut second, s2) = Client::connect(server.addr);
    join(&mut second, &["zombie"]);
    let own_room = |s: &str| [format!("CreateRoom({s:?})"), format!("JoinRoom({s:?}, Sid({s}))")];
    let mut expected = own_room(&s1).to_vec();
    expected.extend([format!("LeaveRoom({s1:?}, Sid({s1}))"), format!("DeleteRoom({s1:?})")]);
    expected.extend(own_room(&s2));
    expected.extend(["CreateRoom(\"zombie\")".to_owned(), format!("JoinRoom(\"zombie\", Sid({s2}))")]);
    assert_eq!(log.lines(), expected);
}

fn a_broadcast_from_a_disconnect_handler_skips_the_leaving_socket(io: IoChoice) {
    let mut server = lab(&Log::default());
    server.namespace("/").on_disconnect(|socket, _| {
        let id = Arg::str(&socket.id());
        socket.nsp().emit("left", &[id]);
        if let Some(custom) = socket.ctx().of("/custom") {
            custom.emit("fence", &[]);
        }
    });
    let server = TestServer::start(server, config(io, 2));
    let (mut leaver, leaver_sid) = Client::connect(server.addr);
    let (mut other, _) = Client::connect(server.addr);
    leaver.join_nsp("/custom", None).unwrap();
    // The leaver leaves "/" but keeps its connection (and "/custom"): the others learn it left, and it
    // hears nothing more on "/", not even about itself.
    leaver.send_sio("1");
    let left = other.expect_event("left");
    assert_eq!(left.str_arg(0), leaver_sid);
    let next = leaver.recv();
    assert_eq!((next.nsp.as_str(), next.name.as_deref()), ("/custom", Some("fence")), "{}", next.text);
}

/// Which of the numbered clients a broadcast must reach.
type Reached = fn(usize) -> bool;

fn large_rooms_are_planned_like_small_ones(io: IoChoice) {
    const CLIENTS: usize = 200;
    let server = TestServer::start(lab(&Log::default()), config(io, 2));
    let mut clients: Vec<(Client, String, usize)> =
        (0..CLIENTS).map(|_| Client::connect(server.addr)).map(|(c, sid)| (c, sid, 0)).collect();
    // Client i is in "by<d>" for each d in {2, 3, 5} dividing i: dense, overlapping rooms on both shards.
    for (i, (client, _, _)) in clients.iter_mut().enumerate() {
        let rooms: Vec<&str> = [("by2", 2), ("by3", 3), ("by5", 5)]
            .into_iter()
            .filter(|(_, d)| i.is_multiple_of(*d))
            .map(|(r, _)| r)
            .collect();
        join(client, &rooms);
    }
    let cases: [(&str, Reached); 3] = [
        (r#"{"via":"io","to":["by2","by3"],"except":["by5"]}"#, |i| {
            (i.is_multiple_of(2) || i.is_multiple_of(3)) && !i.is_multiple_of(5)
        }),
        (r#"{"via":"io","except":["by2"]}"#, |i| !i.is_multiple_of(2)),
        (r#"{"via":"socket","to":["by3"]}"#, |i| i.is_multiple_of(3) && i != 9),
    ];
    for (spec, reached) in cases {
        clients[9].0.call("op", spec);
        let expected: Vec<usize> = (0..CLIENTS).map(|i| usize::from(reached(i))).collect();
        assert_eq!(hits(&mut clients), expected, "op {spec}");
    }
}

fn one_senders_broadcasts_arrive_once_in_order(io: IoChoice) {
    const COUNT: usize = 200;
    let server = TestServer::start(lab(&Log::default()), config(io, 2));
    let mut clients = server.connect_spread(5);
    let sender = &mut clients[0].0;
    for n in 0..COUNT {
        sender.emit("n", &n.to_string());
    }
    sender.call("op", r#"{"via":"io","to":["nobody"]}"#);
    assert!(sender.events_until("n", "fence").is_empty(), "socket.broadcast excludes the sender");
    for (client, sid, shard) in &mut clients[1..] {
        let numbers: Vec<Value> = client.events_until("n", "fence").iter().map(|p| p.arg(0)).collect();
        let expected: Vec<Value> = (0..COUNT).map(Value::from).collect();
        assert!(numbers == expected, "client {sid} on shard {shard} got {numbers:?}");
    }
}

on_both_backends!(
    own_room_and_direct_targets,
    targets_are_unions_minus_excepts,
    rooms_are_per_namespace,
    disconnecting_sees_rooms_and_disconnect_none,
    adapter_events_follow_the_reference_order,
    a_socket_that_left_cannot_join_rooms,
    a_broadcast_from_a_disconnect_handler_skips_the_leaving_socket,
    large_rooms_are_planned_like_small_ones,
    one_senders_broadcasts_arrive_once_in_order,
);
