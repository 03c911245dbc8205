//! The Socket.IO v5 behaviours of checklist 16–27 (reference notes §2.4–2.7, §3.4, §8) that the other
//! server tests leave out, over loopback on both backends, against the server the official Socket.IO
//! suite expects: `/` echoes `auth` on connect, answers `message` with `message-back` and acks
//! `message-with-ack` with its arguments; `/custom` echoes `auth`. Mostly over polling, which the
//! other tests barely use; the rest over WebSocket.
//!
//! Robustness on a loaded machine: sessions that the test does not heartbeat have a long ping
//! interval, and the tests that wait for a ping get a generous ping timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use roomcast_server::api::{Arg, Server, Socket};
use roomcast_server::config::{Config, IoChoice};
use support::http::{HttpClient, Response};
use support::*;

const NOT_FOUND_SID: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

fn emit_auth(socket: &mut Socket<'_>) {
    let auth = Arg::Json(bytes::Bytes::copy_from_slice(socket.auth()));
    socket.emit("auth", &[auth]);
}

/// The suite's server (`server/examples/conformance.rs`), with disconnect reasons logged as
/// `<namespace> <reason>`.
fn start(config: Config, log: &Log) -> TestServer {
    let mut server = Server::new();
    for name in ["/", "/custom"] {
        let log = log.clone();
        server
            .namespace(name)
            .on_connection(emit_auth)
            .on_disconnect(move |socket, reason| log.push(format!("{} {reason}", socket.namespace())));
    }
    server
        .namespace("/")
        .on("message", |socket, event| socket.emit("message-back", &event.to_args()))
        .on("message-with-ack", |socket, event| socket.ack(event.ack_id(), &event.to_args()));
    TestServer::start(server, config)
}

/// The suite's settings, with a long heartbeat: no ping interferes with what a test checks.
fn relaxed(io: IoChoice) -> Config {
    Config { connect_timeout: Duration::from_millis(1000), cors_origins: vec!["*".into()], ..config(io, 1) }
}

/// The suite's ping interval (300 ms), with a timeout generous enough for a slow test thread to pong.
fn pinging(io: IoChoice) -> Config {
    Config { ping_interval: Duration::from_millis(300), ping_timeout: Duration::from_secs(5), ..relaxed(io) }
}

fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn get(client: &mut HttpClient, sid: &str) -> Response {
    client.request("GET", &polling(sid), b"")
}

fn post(client: &mut HttpClient, sid: &str, body: &str) {
    let sent = client.request("POST", &polling(sid), body.as_bytes());
    assert_eq!((sent.status, sent.text()), (200, "ok"), "POST {body:?}");
}

/// An Engine.IO polling session on `/socket.io/`, no namespace joined: the connection and the sid.
fn open_polling(server: &TestServer) -> (HttpClient, String) {
    let mut client = HttpClient::connect(server.addr);
    let open = client.request("GET", "EIO=4&transport=polling", b"");
    let json: serde_json::Value = serde_json::from_str(open.text().strip_prefix('0').unwrap()).unwrap();
    (client, json["sid"].as_str().unwrap().to_owned())
}

/// The Socket.IO id in a CONNECT reply `40[/nsp,]{"sid":"…"}`, which must hold that one key only.
fn connect_reply_sid(packet: &str, prefix: &str) -> String {
    let json = packet.strip_prefix(prefix).unwrap_or_else(|| panic!("{packet:?} is not {prefix}{{…}}"));
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sid"], "no pid without connection state recovery: {packet}");
    let sid = value["sid"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 20, "{packet}");
    sid
}

/// A polling session joined to `/`: the connection and the Engine.IO sid.
fn connect_polling(server: &TestServer) -> (HttpClient, String) {
    let (mut client, sid) = open_polling(server);
    post(&mut client, &sid, "40");
    let connected = get(&mut client, &sid);
    let (reply, auth) = connected.text().split_once('\x1e').expect("CONNECT reply, then the auth event");
    connect_reply_sid(reply, "40");
    assert_eq!(auth, r#"42["auth",{}]"#);
    (client, sid)
}

fn connects_and_unknown_namespaces_over_polling(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let (mut client, sid) = open_polling(&server);
    // One POST, three CONNECTs: the answers come back as one batch, in order.
    post(&mut client, &sid, "40{\"token\":\"123\"}\x1e40/custom,{\"token\":\"abc\"}\x1e40/random");
    let answers = get(&mut client, &sid);
    let packets: Vec<&str> = answers.text().split('\x1e').collect();
    let [main, main_auth, custom, custom_auth, refused] = packets[..] else { panic!("{answers:?}") };
    let main_sid = connect_reply_sid(main, "40");
    assert_eq!(main_auth, r#"42["auth",{"token":"123"}]"#);
    let custom_sid = connect_reply_sid(custom, "40/custom,");
    assert_eq!(custom_auth, r#"42/custom,["auth",{"token":"abc"}]"#);
    assert_ne!(main_sid, custom_sid);
    assert_ne!(main_sid, sid, "the Socket.IO id is not the secret Engine.IO id");
    // `40/random` had no comma; the refusal has one. The session stays open.
    assert_eq!(refused, r#"44/random,{"message":"Invalid namespace"}"#);
    post(&mut client, &sid, r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(get(&mut client, &sid).text(), r#"42["message-back",1,"2",{"3":[true]}]"#);
}

fn events_binary_and_acks_over_polling(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let (mut client, sid) = connect_polling(&server);
    // JSON comes back byte for byte: key order, spacing-free numbers, escapes.
    post(&mut client, &sid, r#"42["message",{"b":1,"a":[true,null]},"\u00e9\n",-0.5e3]"#);
    assert_eq!(
        get(&mut client, &sid).text(),
        r#"42["message-back",{"b":1,"a":[true,null]},"\u00e9\n",-0.5e3]"#
    );
    // Attachments travel as `b<base64>` records of the same payload, in order.
    let placeholders = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
    post(&mut client, &sid, &format!("452-[\"message\",{placeholders}]\x1ebAQID\x1ebBAUG"));
    let echoed = get(&mut client, &sid);
    assert_eq!(echoed.text(), format!("452-[\"message-back\",{placeholders}]\x1ebAQID\x1ebBAUG"));
    post(&mut client, &sid, &format!("452-789[\"message-with-ack\",{placeholders}]\x1ebAQID\x1ebBAUG"));
    assert_eq!(get(&mut client, &sid).text(), format!("462-789[{placeholders}]\x1ebAQID\x1ebBAUG"));
    post(&mut client, &sid, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(get(&mut client, &sid).text(), r#"43456[1,"2",{"3":[false]}]"#);
}

fn rejected_packets_over_polling_end_with_noop_and_close(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    let cases = [
        ("an ack for a namespace not joined", "43/nope,0[1]"),
        ("a CONNECT_ERROR from the client", r#"44{"message":"no"}"#),
        ("a second CONNECT", "40"),
        ("an invalid ack id", r#"42abc["message-with-ack",1]"#),
    ];
    for (what, packet) in cases {
        let (mut client, sid) = connect_polling(&server);
        let before = log.lines().len();
        post(&mut client, &sid, packet);
        assert_eq!(get(&mut client, &sid).text(), "6\x1e1", "{what}: noop, then close");
        let gone = get(&mut client, &sid);
        assert_eq!((gone.status, gone.text()), (400, NOT_FOUND_SID), "{what}");
        let reason = if packet.starts_with("42abc") { "parse error" } else { "forced server close" };
        wait_until(what, || log.lines().len() > before);
        assert_eq!(log.lines()[before..], [format!("/ {reason}")], "{what}");
    }
}

fn no_connect_within_the_connect_timeout_closes_the_engine(io: IoChoice) {
    let server = start(pinging(io), &Log::default());
    let started = Instant::now();
    let (mut client, sid) = open_polling(&server);
    // The client answers every ping but joins no namespace.
    let last = loop {
        let answer = get(&mut client, &sid);
        if answer.text() != "2" {
            break answer;
        }
        post(&mut client, &sid, "3");
    };
    // Closed with a GET parked (`1`) or between two GETs (`6␞1`).
    assert!(matches!(last.text(), "1" | "6\x1e1"), "{last:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed after {:?}", started.elapsed());
    let gone = get(&mut client, &sid);
    assert_eq!((gone.status, gone.text()), (400, NOT_FOUND_SID));
}

fn malformed_packets_close_the_connection(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    // (what, joined `/` first, the Engine.IO text, the reason the `/` socket leaves with)
    let cases = [
        ("an invalid handshake", false, "4abc", ""),
        ("a CONNECT whose payload is no object", false, "40[]", ""),
        ("an invalid ack id", true, r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#, "parse error"),
        ("a DISCONNECT with a payload", true, r#"41{"a":1}"#, "parse error"),
        // A limit, not a syntax error, hence the other reason.
        ("more than 10 attachments", true, r#"4511-["message",1]"#, "transport error"),
    ];
    for (what, connected, packet, reason) in cases {
        let before = log.lines().len();
        let mut client = Client::open(server.addr);
        if connected {
            client.join_nsp("/", None).unwrap();
            client.expect_event("auth");
        }
        client.send_text(packet);
        let (ending, texts) = client.wait_closed();
        assert_eq!((ending, texts), (Ending::CloseFrame(Some(1000)), vec![]), "{what}");
        if connected {
            wait_until(what, || log.lines().len() > before);
            assert_eq!(log.lines()[before..], [format!("/ {reason}")], "{what}");
        }
    }
}

fn a_disconnect_is_silent_and_keeps_the_engine(io: IoChoice) {
    let log = Log::default();
    let server = start(pinging(io), &log);
    let (mut client, _) = Client::connect(server.addr);
    client.expect_event("auth");
    client.send_text("41");
    // Nothing answers the DISCONNECT: the next frame is the server's ping, on a live engine.
    let frame = client.next_frame().unwrap();
    assert_eq!((frame.opcode, frame.payload.as_slice()), (ws::TEXT, &b"2"[..]));
    client.send_text("3");
    assert_eq!(log.wait_for("the socket left", |l| l.starts_with('/')), ["/ client namespace disconnect"]);
    // Leaving /custom leaves / working.
    let (mut client, _) = Client::connect(server.addr);
    client.expect_event("auth");
    client.join_nsp("/custom", None).unwrap();
    client.expect_event("auth");
    client.send_text("41/custom,");
    client.send_text(r#"42["message","message to main namespace"]"#);
    assert_eq!(client.recv().text, r#"2["message-back","message to main namespace"]"#);
    log.wait_for("the /custom socket left", |l| l == "/custom client namespace disconnect");
}

on_both_backends!(
    connects_and_unknown_namespaces_over_polling,
    events_binary_and_acks_over_polling,
    rejected_packets_over_polling_end_with_noop_and_close,
    no_connect_within_the_connect_timeout_closes_the_engine,
    malformed_packets_close_the_connection,
    a_disconnect_is_silent_and_keeps_the_engine,
);
