//! The behaviours the "Rooms" guide promises, checked on the examples' own handlers
//! (`examples/rooms_broadcast.rs`, `examples/rooms_use_cases.rs`), over real sockets on both backends
//! and two shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[allow(dead_code)] // its `main` is the example's, not the tests'
#[path = "../examples/rooms_broadcast.rs"]
mod rooms_broadcast;
#[allow(dead_code)]
#[path = "../examples/rooms_use_cases.rs"]
mod rooms_use_cases;

use std::sync::Arc;

use roomcast_server::api::Server;
use roomcast_server::config::IoChoice;
use support::*;

/// The broadcast example, plus a `fence` event (emitted to everyone) that marks the end of a step.
fn start_broadcast_example(io: IoChoice) -> TestServer {
    let mut server = Server::new();
    rooms_broadcast::install(&mut server);
    server.namespace("/").on("fence", |socket, _| socket.nsp().emit("fence", &[]));
    TestServer::start(server, config(io, 2))
}

/// Client `sender` emits `trigger`, then `fence`; returns how many `some event` each client got.
fn some_events(clients: &mut [(Client, String, usize)], sender: usize, trigger: &str) -> Vec<usize> {
    clients[sender].0.emit(trigger, "");
    clients[sender].0.emit("fence", "");
    clients.iter_mut().map(|(c, _, _)| c.events_until("some event", "fence").len()).collect()
}

fn to_and_in_reach_the_room_and_except_the_others(io: IoChoice) {
    let server = start_broadcast_example(io);
    let mut clients = server.connect_spread(4);
    // Everyone joined "some room" on connection; client 3 leaves it (and the leave is done once a
    // later event of the same client has been answered).
    clients[3].0.emit("leave", r#""some room""#);
    clients[3].0.emit("fence", "");
    for (client, _, _) in &mut clients {
        client.expect_event("fence");
    }
    assert_eq!(some_events(&mut clients, 3, "to some room"), [1, 1, 1, 0]);
    assert_eq!(some_events(&mut clients, 0, "in some room"), [1, 1, 1, 0]);
    assert_eq!(some_events(&mut clients, 0, "except some room"), [0, 0, 0, 1]);
}

fn several_rooms_reach_each_socket_once(io: IoChoice) {
    let server = start_broadcast_example(io);
    let mut clients = server.connect_spread(5);
    let rooms: [&[&str]; 5] =
        [&["room1"], &["room1", "room2"], &["room1", "room2", "room3"], &["room3"], &[]];
    for ((client, _, _), rooms) in clients.iter_mut().zip(rooms) {
        for room in rooms {
            client.emit("join", &format!("{room:?}"));
        }
    }
    // Each client's joins are handled before its own next event; fence from each to be sure of all.
    for i in 0..clients.len() {
        clients[i].0.emit("fence", "");
        for (client, _, _) in &mut clients {
            client.expect_event("fence");
        }
    }
    assert_eq!(some_events(&mut clients, 4, "to three rooms"), [1, 1, 1, 1, 0]);
}

fn a_socket_broadcast_excludes_the_sender(io: IoChoice) {
    let server = start_broadcast_example(io);
    let mut clients = server.connect_spread(3);
    for sender in 0..clients.len() {
        let expected: Vec<usize> = (0..clients.len()).map(|i| usize::from(i != sender)).collect();
        assert_eq!(some_events(&mut clients, sender, "from socket"), expected);
    }
}

fn start_use_cases_example(io: IoChoice, log: &Log) -> TestServer {
    let mut server = Server::new();
    let log = log.clone();
    rooms_use_cases::install(&mut server, Arc::new(move |line| log.push(line)));
    TestServer::start(server, config(io, 2))
}

/// A client of `user` (through the `x-user-id` header) following `projects`.
fn tab(server: &TestServer, user: &str, projects: &str) -> (Client, String, usize) {
    let mut client = Client::open_with_headers(server.addr, &[("x-user-id", user)]);
    let sid = client.join_nsp("/", Some(&format!(r#"{{"projects":{projects}}}"#))).unwrap();
    let shard = server.shard_of("/", &sid);
    (client, sid, shard)
}

/// Every client's events up to a `fence` sent to everyone from the test thread.
fn names_until_fence(server: &TestServer, clients: &mut [(Client, String, usize)]) -> Vec<Vec<String>> {
    server.handle().emit("/", &[], &[], "fence", &[]);
    let mut all = Vec::new();
    for (client, _, _) in clients {
        let mut names = Vec::new();
        loop {
            let name = client.recv().name.unwrap();
            if name == "fence" {
                break;
            }
            names.push(name);
        }
        all.push(names);
    }
    all
}

fn every_tab_of_a_user_and_every_follower_of_a_project_is_reached(io: IoChoice) {
    let server = start_use_cases_example(io, &Log::default());
    // Several tabs of "ann" (over both shards, as the kernel spreads them), one of "bob".
    let mut clients: Vec<_> =
        (0..6).map(|i| tab(&server, "ann", if i % 2 == 0 { "[4321]" } else { "[]" })).collect();
    let ann_shards: std::collections::HashSet<usize> = clients.iter().map(|c| c.2).collect();
    clients.push(tab(&server, "bob", "[4321,7]"));
    clients.push(tab(&server, "", "[]"));

    rooms_use_cases::notify_user(&server.handle(), "ann");
    let hi = vec!["hi".to_owned()];
    let mut expected = vec![hi; 6];
    expected.extend([vec![], vec![]]);
    assert_eq!(names_until_fence(&server, &mut clients), expected, "ann's tabs on shards {ann_shards:?}");

    rooms_use_cases::notify_project(&server.handle(), 4321);
    let updated = vec!["project updated".to_owned()];
    let expected: Vec<Vec<String>> =
        (0..8).map(|i| if i % 2 == 0 { updated.clone() } else { vec![] }).collect();
    assert_eq!(names_until_fence(&server, &mut clients), expected);
    rooms_use_cases::notify_project(&server.handle(), 7);
    let expected = [vec![], vec![], vec![], vec![], vec![], vec![], updated, vec![]];
    assert_eq!(names_until_fence(&server, &mut clients), expected);
}

fn disconnecting_lists_the_rooms_and_room_events_are_logged(io: IoChoice) {
    let log = Log::default();
    let server = start_use_cases_example(io, &log);
    let (mut client, sid, _) = tab(&server, "ann", "[4321]");
    client.close();
    log.wait_for("the socket disconnected", |l| l.starts_with(&format!("socket {sid} disconnected")));
    let expected = [
        format!("room {sid} was created"),
        format!("socket {sid} has joined room {sid}"),
        "room ann was created".into(),
        format!("socket {sid} has joined room ann"),
        "room project:4321 was created".into(),
        format!("socket {sid} has joined room project:4321"),
        format!(r#"socket {sid} disconnecting, rooms ["{sid}", "ann", "project:4321"]"#),
        format!("socket {sid} has left room {sid}"),
        format!("room {sid} was deleted"),
        format!("socket {sid} has left room ann"),
        "room ann was deleted".into(),
        format!("socket {sid} has left room project:4321"),
        "room project:4321 was deleted".into(),
        format!("socket {sid} disconnected, 0 rooms"),
    ];
    assert_eq!(log.lines(), expected);
}

on_both_backends!(
    to_and_in_reach_the_room_and_except_the_others,
    several_rooms_reach_each_socket_once,
    a_socket_broadcast_excludes_the_sender,
    every_tab_of_a_user_and_every_follower_of_a_project_is_reached,
    disconnecting_lists_the_rooms_and_room_events_are_logged,
);
