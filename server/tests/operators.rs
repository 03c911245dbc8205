//! The server-wide utility operators (checklist 34) over real sockets, on both backends and two shards:
//! `local_socket_ids` (fetchSockets), `sockets_join`, `sockets_leave` and `disconnect_sockets` act on the
//! union of target rooms minus except rooms. Started on every shard at once through
//! `ServerHandle::on_each_shard`, the server-wide operators stay idempotent (each also reaches the other
//! shard); `tests/selection.rs` starts them from a single socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use roomcast_server::api::{Arg, Operator, Server};
use roomcast_server::config::IoChoice;
use support::*;

fn start(io: IoChoice) -> TestServer {
    let mut server = Server::new();
    server.namespace("/").on("join", |socket, event| {
        socket.join(&event.arg(0).unwrap().as_str().unwrap());
        socket.ack(event.ack_id(), &[Arg::str("ok")]);
    });
    TestServer::start(server, config(io, 2))
}

/// Runs `f` on `/` of every shard with an operator targeting `to` minus `except`.
fn on_every_shard(
    server: &TestServer,
    to: &'static [&str],
    except: &'static [&str],
    f: impl Fn(Operator<'_, '_>) + Send + Sync + 'static,
) {
    server.on_each_shard(move |cx| {
        let mut op = cx.of("/").unwrap();
        for room in to {
            op = op.to(room);
        }
        for room in except {
            op = op.except(room);
        }
        f(op);
    });
}

/// The ids `to` minus `except` designates, over all shards (`fetchSockets`).
fn fetch(server: &TestServer, to: &'static [&str], except: &'static [&str]) -> BTreeSet<String> {
    let found = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = found.clone();
    on_every_shard(server, to, except, move |op| sink.lock().unwrap().extend(op.local_socket_ids()));
    let ids = found.lock().unwrap().clone();
    ids
}

/// Who receives an emit to `room` (1 or 0 per client), fenced by an emit to everyone.
fn receivers(server: &TestServer, clients: &mut [(Client, String, usize)], room: &str) -> Vec<usize> {
    server.handle().emit("/", &[room], &[], "hit", &[]);
    server.handle().emit("/", &[], &[], "fence", &[]);
    clients.iter_mut().map(|(c, _, _)| c.events_until("hit", "fence").len()).collect()
}

fn fetch_join_and_leave_act_on_the_targets_of_every_shard(io: IoChoice) {
    let server = start(io);
    let mut clients = server.connect_spread(4);
    let sids: Vec<String> = clients.iter().map(|c| c.1.clone()).collect();
    for (i, room) in [(0, "a"), (1, "a"), (1, "b"), (2, "b")] {
        assert_eq!(clients[i].0.call("join", &format!("{room:?}")).arg(0), "ok");
    }
    let set = |indices: &[usize]| -> BTreeSet<String> { indices.iter().map(|&i| sids[i].clone()).collect() };
    assert_eq!(fetch(&server, &[], &[]), set(&[0, 1, 2, 3]));
    assert_eq!(fetch(&server, &["a", "b"], &[]), set(&[0, 1, 2]));
    assert_eq!(fetch(&server, &["a"], &["b"]), set(&[0]));
    assert_eq!(fetch(&server, &[], &["a"]), set(&[2, 3]));

    // socketsJoin("c") on a ∪ b minus a: client 2 only.
    on_every_shard(&server, &["b"], &["a"], |op| op.sockets_join("c"));
    assert_eq!(receivers(&server, &mut clients, "c"), [0, 0, 1, 0]);
    // socketsJoin("c") on everyone but b, then socketsLeave("c") on a.
    on_every_shard(&server, &[], &["b"], |op| op.sockets_join("c"));
    assert_eq!(receivers(&server, &mut clients, "c"), [1, 0, 1, 1]);
    on_every_shard(&server, &["a"], &[], |op| op.sockets_leave("c"));
    assert_eq!(receivers(&server, &mut clients, "c"), [0, 0, 1, 1]);
}

fn disconnect_sockets_acts_on_the_targets_of_every_shard(io: IoChoice) {
    let server = start(io);
    let mut clients = server.connect_spread(4);
    for (i, room) in [(0, "doomed"), (1, "doomed"), (2, "closed")] {
        assert_eq!(clients[i].0.call("join", &format!("{room:?}")).arg(0), "ok");
    }
    // Without close: DISCONNECT, the connection stays and may join again.
    on_every_shard(&server, &["doomed"], &[], |op| op.disconnect_sockets(false));
    for (client, _, _) in &mut clients[..2] {
        assert_eq!(client.recv().text, "1");
        client.join_nsp("/", None).unwrap();
    }
    // With close: DISCONNECT, then the connection closes.
    on_every_shard(&server, &["closed"], &[], |op| op.disconnect_sockets(true));
    let (ending, texts) = clients[2].0.wait_closed();
    assert_eq!((ending, texts), (Ending::CloseFrame(Some(1000)), vec!["41".to_owned()]));
    let remaining: BTreeSet<String> = fetch(&server, &[], &[]);
    assert_eq!(remaining.len(), 3, "the two re-joined sockets and the untouched one");
    assert!(remaining.contains(&clients[3].1));
}

on_both_backends!(
    fetch_join_and_leave_act_on_the_targets_of_every_shard,
    disconnect_sockets_acts_on_the_targets_of_every_shard,
);
