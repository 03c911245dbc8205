//! Selections over every shard, started from ONE socket's handler (checklist 34): `fetch_sockets`,
//! `sockets_join`, `disconnect_sockets`, and the rooms view reach sockets on the other shard too; and a
//! socket's own handler (`socket.on`) takes precedence over the namespace's. Both backends, 2 shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use roomcast_server::api::{Arg, Server};
use roomcast_server::config::IoChoice;
use support::*;

fn reply_to(cx: &mut roomcast_server::api::Ctx<'_>, sid: &str, event: &str, items: Vec<String>) {
    let mut items = items;
    items.sort();
    cx.of("/").unwrap().to(sid).emit(event, &[Arg::to_json(&items).unwrap()]);
}

fn start(io: IoChoice) -> TestServer {
    let mut server = Server::new();
    server
        .namespace("/")
        .on_connection(|socket| {
            if socket.handshake().is_some_and(|h| h.header("x-own").is_some()) {
                socket.on("who", |socket, event| socket.ack(event.ack_id(), &[Arg::str("own")]));
            }
        })
        .on("who", |socket, event| socket.ack(event.ack_id(), &[Arg::str("namespace")]))
        .on("join", |socket, event| {
            socket.join(&event.arg(0).unwrap().as_str().unwrap());
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        })
        .on("fetch", |socket, event| {
            let room = event.arg(0).unwrap().as_str().unwrap().into_owned();
            let me = socket.id();
            socket.nsp().to(&room).fetch_sockets(move |cx, sockets| {
                let ids = sockets.into_iter().map(|s| s.id).collect();
                reply_to(cx, &me, "fetched", ids);
            });
        })
        .on("everyone-joins", |socket, event| {
            socket.nsp().sockets_join(&event.arg(0).unwrap().as_str().unwrap());
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        })
        .on("kick-room", |socket, event| {
            socket.broadcast().to(&event.arg(0).unwrap().as_str().unwrap()).disconnect_sockets(false);
        })
        .on("rooms", |socket, event| {
            let room = event.arg(0).unwrap().as_str().unwrap().into_owned();
            let me = socket.id();
            socket.ctx().fetch_rooms("/", move |cx, view| {
                reply_to(cx, &me, "rooms", view.get(&room).cloned().unwrap_or_default());
            });
        });
    TestServer::start(server, config(io, 2))
}

fn args_of(packet: &Packet) -> Vec<String> {
    serde_json::from_str(&packet.args[0]).unwrap()
}

fn selections_started_on_one_shard_reach_every_shard(io: IoChoice) {
    let server = start(io);
    let mut clients = server.connect_spread(4);
    let mut all: Vec<String> = clients.iter().map(|c| c.1.clone()).collect();
    all.sort();
    // One socket makes everyone join "team", then fetches "team": all four, across both shards.
    assert_eq!(clients[0].0.call("everyone-joins", r#""team""#).args, [r#""ok""#]);
    wait_until("every shard applied the join", || {
        clients[0].0.emit("fetch", r#""team""#);
        args_of(&clients[0].0.expect_event("fetched")) == all
    });
    // The rooms view agrees.
    clients[1].0.emit("rooms", r#""team""#);
    assert_eq!(args_of(&clients[1].0.expect_event("rooms")), all);
    // Kick "team" except the sender: the three others leave the namespace (a DISCONNECT each).
    clients[0].0.emit("kick-room", r#""team""#);
    for (client, _, _) in clients.iter_mut().skip(1) {
        let packet = client.recv_where(|p| p.kind == roomcast_engine::sio::PacketType::Disconnect);
        assert_eq!(packet.text, "1");
    }
    let mut left = vec![clients[0].1.clone()];
    wait_until("the kicked sockets are gone on every shard", || {
        clients[0].0.emit("fetch", r#""team""#);
        let got = args_of(&clients[0].0.expect_event("fetched"));
        left.sort();
        got == left
    });
}

fn a_sockets_own_handler_wins_over_the_namespaces(io: IoChoice) {
    let server = start(io);
    let (mut plain, _) = Client::connect(server.addr);
    let mut own = Client::open_with_headers(server.addr, &[("x-own", "1")]);
    own.join_nsp("/", None).unwrap();
    assert_eq!(plain.call("who", "").args, [r#""namespace""#]);
    assert_eq!(own.call("who", "").args, [r#""own""#]);
}

on_both_backends!(
    selections_started_on_one_shard_reach_every_shard,
    a_sockets_own_handler_wins_over_the_namespaces,
);
