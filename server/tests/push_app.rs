//! The built-in push app of the `roomcast` binary over real sockets, on both backends and two shards:
//! `join` / `leave` / `publish` with their acks, refusals, and the `--client-rooms` globs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use roomcast_server::api::Server;
use roomcast_server::config::IoChoice;
use support::*;

fn start(io: IoChoice, client_rooms: Option<&[&str]>) -> TestServer {
    let mut server = Server::new();
    let globs = client_rooms.map(|g| g.iter().map(|s| s.to_string()).collect());
    roomcast_server::app::install(&mut server, globs);
    TestServer::start(server, config(io, 2))
}

/// The ack's arguments as raw JSON texts.
fn ack(client: &mut Client, event: &str, args: &str) -> Vec<String> {
    client.call(event, args).args
}

const OK: &str = r#""ok""#;

/// What each client receives up to the fence another client publishes to everyone.
fn received(clients: &mut [(Client, String, usize)], fencer: usize) -> Vec<Vec<String>> {
    assert_eq!(ack(&mut clients[fencer].0, "publish", r#"{"event":"fence"}"#), [OK]);
    let mut seen = Vec::new();
    for (i, (client, _, _)) in clients.iter_mut().enumerate() {
        let mut texts = Vec::new();
        if i != fencer {
            loop {
                let packet = client.recv();
                if packet.is_event("fence") {
                    break;
                }
                texts.push(packet.text);
            }
        }
        seen.push(texts);
    }
    seen
}

fn join_leave_and_publish_reach_the_right_sockets(io: IoChoice) {
    let server = start(io, None);
    let mut clients = server.connect_spread(4);
    // 0 publishes; 1 is in "news"; 2 in "news" and "sport"; 3 (the fencer) in nothing.
    assert_eq!(ack(&mut clients[0].0, "join", r#""news""#), [OK]);
    assert_eq!(ack(&mut clients[1].0, "join", r#""news""#), [OK]);
    assert_eq!(ack(&mut clients[2].0, "join", r#""news""#), [OK]);
    assert_eq!(ack(&mut clients[2].0, "join", r#""sport""#), [OK]);

    // The payload is passed through byte for byte (key order kept); the sender is excluded.
    let publish = r#"{"to":"news","event":"update","data":{"b":1,"a":[2,"x"]}}"#;
    assert_eq!(ack(&mut clients[0].0, "publish", publish), [OK]);
    let update = r#"2["update",{"b":1,"a":[2,"x"]}]"#.to_owned();
    assert_eq!(received(&mut clients, 3), [vec![], vec![update.clone()], vec![update], vec![]]);

    // Several rooms: a union, each socket once; `except` removes members; no `to` means everyone.
    let publish = r#"{"to":["news","sport"],"except":"sport","event":"e"}"#;
    assert_eq!(ack(&mut clients[3].0, "publish", publish), [OK]);
    let e = r#"2["e"]"#.to_owned();
    assert_eq!(received(&mut clients, 3), [vec![e.clone()], vec![e.clone()], vec![], vec![]]);
    assert_eq!(ack(&mut clients[3].0, "publish", r#"{"event":"e","data":null}"#), [OK]);
    let e_null = r#"2["e",null]"#.to_owned();
    assert_eq!(received(&mut clients, 3), [vec![e_null.clone()], vec![e_null.clone()], vec![e_null], vec![]]);

    // After `leave`, a socket is no longer a recipient.
    assert_eq!(ack(&mut clients[1].0, "leave", r#""news""#), [OK]);
    assert_eq!(ack(&mut clients[3].0, "publish", r#"{"to":"news","event":"e"}"#), [OK]);
    assert_eq!(received(&mut clients, 3), [vec![e.clone()], vec![], vec![e], vec![]]);
}

fn bad_requests_are_refused_with_an_error_ack(io: IoChoice) {
    let server = start(io, None);
    let (mut client, _) = Client::connect(server.addr);
    let expected_room = r#"{"error":"expected a room name"}"#;
    assert_eq!(ack(&mut client, "join", "42"), [expected_room]);
    assert_eq!(ack(&mut client, "join", r#""""#), [expected_room]);
    assert_eq!(ack(&mut client, "join", ""), [expected_room]);
    assert_eq!(ack(&mut client, "leave", r#"["a"]"#), [expected_room]);
    let expected_publish = r#"{"error":"expected {\"to\":[…],\"except\":[…],\"event\":…,\"data\":…}"}"#;
    assert_eq!(ack(&mut client, "publish", r#""news""#), [expected_publish]);
    assert_eq!(ack(&mut client, "publish", r#"{"to":"news"}"#), [expected_publish]);
    assert_eq!(ack(&mut client, "publish", r#"{"to":7,"event":"e"}"#), [expected_publish]);
    // The connection is still fine after refusals.
    assert_eq!(ack(&mut client, "join", r#""news""#), [OK]);
}

fn client_rooms_globs_restrict_join_and_publish(io: IoChoice) {
    let server = start(io, Some(&["project:*", "user-??"]));
    let mut clients = server.connect_spread(3);
    let refused = r#"{"error":"room not allowed"}"#;
    let client = &mut clients[0].0;
    assert_eq!(ack(client, "join", r#""project:4321""#), [OK]);
    assert_eq!(ack(client, "join", r#""user-42""#), [OK]);
    assert_eq!(ack(client, "join", r#""user-421""#), [refused]);
    assert_eq!(ack(client, "join", r#""admin""#), [refused]);
    assert_eq!(ack(client, "leave", r#""admin""#), [refused]);
    assert_eq!(ack(client, "publish", r#"{"to":"admin","event":"e"}"#), [refused]);
    assert_eq!(ack(client, "publish", r#"{"to":"project:1","except":"admin","event":"e"}"#), [refused]);
    // A refused publish sends nothing; an allowed one reaches the room.
    assert_eq!(ack(&mut clients[1].0, "join", r#""project:4321""#), [OK]);
    assert_eq!(ack(&mut clients[1].0, "publish", r#"{"to":"project:4321","event":"e"}"#), [OK]);
    let e = r#"2["e"]"#.to_owned();
    assert_eq!(received(&mut clients, 2), [vec![e], vec![], vec![]]);
}

on_both_backends!(
    join_leave_and_publish_reach_the_right_sockets,
    bad_requests_are_refused_with_an_error_ack,
    client_rooms_globs_restrict_join_and_publish,
);
