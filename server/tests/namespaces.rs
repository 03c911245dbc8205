//! Namespaces over real sockets, on both backends (checklist 16–18, 25): ids, unknown namespaces,
//! middleware refusals, dynamic namespaces across shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use roomcast_server::api::{Arg, ConnectError, Namespace, Server};
use roomcast_server::config::IoChoice;
use support::*;

/// `/` refuses connections whose upgrade request has an `x-banned` header; `/admin` wants
/// `{"token":"secret"}`; `/dyn-*` namespaces are created on demand. Everywhere, `shout` broadcasts its
/// arguments to the namespace, and a new socket gets `welcome` with its namespace and `auth`.
fn start(io: IoChoice) -> TestServer {
    let mut server = Server::new();
    server.namespace("/").middleware(|request| match request.handshake.header("x-banned") {
        Some(_) => Err(ConnectError::new("banned")),
        None => Ok(()),
    });
    server.namespace("/admin").middleware(|request| {
        let auth: serde_json::Value = serde_json::from_slice(&request.auth).unwrap();
        match auth["token"].as_str() {
            Some("secret") => Ok(()),
            _ => Err(ConnectError::new("not authorized").with_data(r#"{"content":"Please retry later"}"#)),
        }
    });
    let handlers = |nsp: &mut Namespace| {
        nsp.on_connection(|socket| {
            let name = Arg::str(socket.namespace());
            let auth = Arg::Json(bytes::Bytes::copy_from_slice(socket.auth()));
            socket.emit("welcome", &[name, auth]);
        })
        .on("shout", |socket, event| socket.nsp().emit("shout", &event.to_args()));
    };
    handlers(server.namespace("/"));
    // `tell` (namespace): `io.of(namespace).emit("told")`, acked "ok" or "unknown namespace".
    server.namespace("/").on("tell", |socket, event| {
        let name = event.arg(0).and_then(|a| a.as_str()).unwrap_or_default().into_owned();
        let answer = match socket.ctx().of(&name) {
            Some(nsp) => {
                nsp.emit("told", &[]);
                "ok"
            }
            None => "unknown namespace",
        };
        socket.ack(event.ack_id(), &[Arg::str(answer)]);
    });
    handlers(server.namespace("/admin"));
    handlers(server.dynamic_namespace(|name| name.starts_with("/dyn-")));
    TestServer::start(server, config(io, 2))
}

fn each_namespace_socket_has_its_own_id(io: IoChoice) {
    let server = start(io);
    let mut client = Client::open(server.addr);
    // The CONNECT reply comes before anything the connection handler emits.
    client.send_sio("0");
    let connected = client.recv();
    assert!(connected.text.starts_with(r#"0{"sid":""#), "{}", connected.text);
    let payload: serde_json::Value = serde_json::from_str(&connected.text[1..]).unwrap();
    let main = payload["sid"].as_str().unwrap().to_owned();
    assert_eq!(client.expect_event("welcome").text, r#"2["welcome","/",{}]"#);
    let admin = client.join_nsp("/admin", Some(r#"{"token":"secret","b":[1,"2"]}"#)).unwrap();
    let welcome = client.expect_event("welcome");
    assert_eq!(welcome.text, r#"2/admin,["welcome","/admin",{"token":"secret","b":[1,"2"]}]"#);
    assert_eq!(main.len(), 20);
    assert_eq!(admin.len(), 20);
    assert_ne!(main, admin);
    assert_ne!(main, client.engine_sid);
}

fn unknown_namespaces_are_refused_and_the_connection_kept(io: IoChoice) {
    let server = start(io);
    let mut client = Client::open(server.addr);
    let refused = client.join_nsp("/nope", None).unwrap_err();
    assert_eq!(refused, r#"4/nope,{"message":"Invalid namespace"}"#);
    // The session is still open: joining a real namespace and talking on it works.
    client.join_nsp("/", None).unwrap();
    client.expect_event("welcome");
    client.emit("shout", "1");
    assert_eq!(client.expect_event("shout").text, r#"2["shout",1]"#);
}

fn middleware_refusals_carry_message_and_data(io: IoChoice) {
    let server = start(io);
    let mut client = Client::open(server.addr);
    let refused = client.join_nsp("/admin", Some(r#"{"token":"guess"}"#)).unwrap_err();
    assert_eq!(refused, r#"4/admin,{"message":"not authorized","data":{"content":"Please retry later"}}"#);
    // A refused client may retry with better credentials on the same connection.
    client.join_nsp("/admin", Some(r#"{"token":"secret"}"#)).unwrap();
    client.expect_event("welcome");

    let mut banned = Client::open_with_headers(server.addr, &[("X-Banned", "yes")]);
    assert_eq!(banned.join_nsp("/", None).unwrap_err(), r#"4{"message":"banned"}"#);
    // Refused sockets are not in the namespace: a broadcast there reaches only the admitted ones.
    let (mut admitted, _) = Client::connect(server.addr);
    admitted.expect_event("welcome");
    admitted.emit("shout", r#""all""#);
    admitted.expect_event("shout");
    banned.assert_quiet(Duration::from_millis(50));
}

fn dynamic_namespaces_are_created_on_demand_on_every_shard(io: IoChoice) {
    let server = start(io);
    // One client per shard on "/dyn-1", and one more on "/dyn-2".
    let mut clients = server.connect_spread(2);
    for (client, _, _) in &mut clients {
        client.expect_event("welcome");
        client.join_nsp("/dyn-1", None).unwrap();
        assert_eq!(client.expect_event("welcome").text, r#"2/dyn-1,["welcome","/dyn-1",{}]"#);
    }
    let mut other = Client::open(server.addr);
    other.join_nsp("/dyn-2", None).unwrap();
    other.expect_event("welcome");
    assert_eq!(other.join_nsp("/other", None).unwrap_err(), r#"4/other,{"message":"Invalid namespace"}"#);

    clients[0].0.emit_nsp("/dyn-1", "shout", r#""hello""#);
    for (client, sid, shard) in &mut clients {
        assert_eq!(client.recv().text, r#"2/dyn-1,["shout","hello"]"#, "{sid} on shard {shard}");
    }
    other.emit_nsp("/dyn-2", "shout", r#""two""#);
    assert_eq!(other.recv().text, r#"2/dyn-2,["shout","two"]"#);
    for (client, _, _) in &mut clients {
        client.assert_quiet(Duration::from_millis(50));
    }
}

fn dynamic_namespaces_are_reachable_from_every_shard(io: IoChoice) {
    let server = start(io);
    let mut clients = server.connect_spread(2);
    // Only client 0's shard has a socket on "/dyn-3"; client 1's shard has never seen the namespace,
    // yet `io.of("/dyn-3")` from there reaches it (the namespace matches the dynamic definition).
    clients[0].0.join_nsp("/dyn-3", None).unwrap();
    let welcome = clients[0].0.recv_where(|p| p.nsp == "/dyn-3");
    assert!(welcome.is_event("welcome"), "{}", welcome.text);
    let (teller, _, _) = &mut clients[1];
    assert_eq!(teller.call("tell", r#""/dyn-3""#).str_arg(0), "ok");
    assert_eq!(clients[0].0.recv_where(|p| p.nsp == "/dyn-3").text, r#"2/dyn-3,["told"]"#);
    assert_eq!(clients[1].0.call("tell", r#""/elsewhere""#).str_arg(0), "unknown namespace");
}

on_both_backends!(
    each_namespace_socket_has_its_own_id,
    unknown_namespaces_are_refused_and_the_connection_kept,
    middleware_refusals_carry_message_and_data,
    dynamic_namespaces_are_created_on_demand_on_every_shard,
    dynamic_namespaces_are_reachable_from_every_shard,
);
