//! The behaviours the official Engine.IO v4 test suite checks (reference notes §3.3, checklist 1–15,
//! 27, 28), over loopback on both backends, against a raw Engine.IO echo endpoint on `/engine.io/`
//! configured as the suite wants: ping 300/200 ms, maxPayload 1e6, CORS `*`.
//!
//! Robustness on a loaded machine: a session that the test does not want to heartbeat has a long ping
//! interval ([`relaxed`]), so a slow test thread never sees a stray ping in a payload; the heartbeat
//! tests that must survive several rounds get a generous ping timeout. Closes are checked by content:
//! the endpoint logs `<name> <reason>` for each session it closes, `name` coming from the handshake's
//! query.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use roomcast_server::api::{InMessage, Server, StartError};
use roomcast_server::config::{Config, IoChoice};
use support::http::{HttpClient, Response};
use support::*;

const PATH: &str = "/engine.io/";

/// The suite's endpoint: echo every message unchanged, except that the text `close-me` makes the
/// server close the session. Close reasons are logged as `<name> <reason>`. A second endpoint,
/// `/greet/`, sends `welcome` and the bytes `07` as soon as a session opens.
fn server(log: &Log) -> Server {
    let mut server = Server::new();
    let closes = log.clone();
    server
        .engine_io(PATH)
        .on_message(|socket, message| match message {
            InMessage::Text(text) if &text[..] == b"close-me" => socket.close(),
            _ => socket.send(message),
        })
        .on_close(move |socket, reason| {
            let name = socket.handshake().and_then(|h| h.query_param("name").map(str::to_owned));
            closes.push(format!("{} {reason}", name.unwrap_or_default()));
        });
    server.engine_io("/greet").on_open(|socket| {
        socket.send_text("welcome");
        socket.send_binary(bytes::Bytes::from_static(&[7]));
    });
    server
}

/// The suite's configuration: ping 300/200 ms, maxHttpBufferSize 1e6, CORS `*`, one shard.
fn suite(io: IoChoice) -> Config {
    Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(1000),
        cors_origins: vec!["*".into()],
        ..config(io, 1)
    }
}

/// As [`suite`], with the default 25 s heartbeat: no ping interferes with what a test checks.
fn relaxed(io: IoChoice) -> Config {
    Config { ping_interval: Duration::from_secs(25), ping_timeout: Duration::from_secs(20), ..suite(io) }
}

fn start(config: Config, log: &Log) -> TestServer {
    TestServer::start(server(log), config)
}

fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

/// The JSON error body of an Engine.IO error code.
fn error(code: u8) -> String {
    let message = match code {
        0 => "Transport unknown",
        1 => "Session ID unknown",
        2 => "Bad handshake method",
        3 => "Bad request",
        _ => "Unsupported protocol version",
    };
    format!(r#"{{"code":{code},"message":"{message}"}}"#)
}

/// The sid of an open packet `0{"sid":"…",…}`.
fn open_sid(open: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
    value["sid"].as_str().unwrap().to_owned()
}

/// A polling session named `name` on `/engine.io/`, its handshake answered: the connection and the sid.
fn open_polling(server: &TestServer, name: &str) -> (HttpClient, String) {
    let mut client = HttpClient::connect_at(server.addr, PATH);
    let open = client.request("GET", &format!("EIO=4&transport=polling&name={name}"), b"");
    assert_eq!(open.status, 200, "{open:?}");
    let sid = open_sid(open.text());
    (client, sid)
}

fn assert_error(response: &Response, code: u8, what: &str) {
    assert_eq!((response.status, response.text()), (400, error(code).as_str()), "{what}");
    assert_eq!(response.header("Content-Type"), Some("application/json"), "{what}");
}

fn handshakes_and_their_refusals_over_polling(io: IoChoice) {
    let server = start(suite(io), &Log::default());
    let mut client = HttpClient::connect_at(server.addr, PATH);
    let open = client.request("GET", "EIO=4&transport=polling", b"");
    assert_eq!(open.status, 200);
    assert_eq!(open.header("Content-Type"), Some("text/plain; charset=UTF-8"));
    let sid = open_sid(open.text());
    let expected = format!(
        r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
    );
    assert_eq!(open.text(), expected, "exactly the suite's keys, in the reference's order");

    let refusals = [
        ("GET", "transport=polling".to_owned(), 5),
        ("GET", "EIO=abc&transport=polling".to_owned(), 5),
        ("GET", "EIO=3&transport=polling".to_owned(), 5),
        ("GET", "EIO=4".to_owned(), 0),
        ("GET", "EIO=4&transport=abc".to_owned(), 0),
        ("POST", "EIO=4&transport=polling".to_owned(), 2),
        ("PUT", "EIO=4&transport=polling".to_owned(), 2),
        ("GET", "EIO=4&transport=websocket".to_owned(), 3),
        ("GET", polling("AAAAAAAAAAAAAAAAAAAAAAAA"), 1),
        ("POST", polling("AAAAAAAAAAAAAAAAAAAAAAAA"), 1),
    ];
    for (method, query, code) in refusals {
        // One keep-alive connection: an error response leaves it usable.
        let refused = client.request(method, &query, b"");
        assert_error(&refused, code, &format!("{method} ?{query}"));
    }
}

fn handshakes_and_their_refusals_over_websocket(io: IoChoice) {
    let server = start(suite(io), &Log::default());
    let mut client = Client::upgrade_to(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]);
    let open = match client.recv_message() {
        Ok(Message::Text(open)) => open,
        other => panic!("expected the open packet, got {other:?}"),
    };
    let sid = open_sid(&open);
    let expected = format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
    );
    assert_eq!(open, expected);

    let refusals = [
        ("transport=websocket".to_owned(), "Unsupported protocol version"),
        ("EIO=abc&transport=websocket".to_owned(), "Unsupported protocol version"),
        ("EIO=4".to_owned(), "Transport unknown"),
        ("EIO=4&transport=abc".to_owned(), "Transport unknown"),
        ("EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), "Session ID unknown"),
    ];
    for (query, message) in refusals {
        let mut refused = HttpClient::connect_at(server.addr, PATH);
        let response = refused.upgrade_with_query(&query);
        assert_eq!((response.status, response.text()), (400, message), "?{query}");
        assert!(refused.read_until_closed().is_empty(), "?{query}: the connection closes after the refusal");
    }
}

fn polling_echo_keeps_batches_text_and_binary(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let (mut client, sid) = open_polling(&server, "echo");
    let bodies = ["4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "4\x1e4é"];
    for body in bodies {
        let sent = client.request("POST", &polling(&sid), body.as_bytes());
        assert_eq!((sent.status, sent.text()), (200, "ok"), "{body:?}");
        assert_eq!(sent.header("Content-Type"), Some("text/html"), "{body:?}");
        let echoed = client.request("GET", &polling(&sid), b"");
        assert_eq!((echoed.status, echoed.text()), (200, body), "one GET carries the whole batch back");
    }
}

fn websocket_echo_keeps_text_and_binary(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let mut client = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]);
    client.send_text("4hello");
    assert_eq!(client.recv_message(), Ok(Message::Text("4hello".into())));
    client.send_binary(&[1, 2, 3, 4]);
    assert_eq!(client.recv_message(), Ok(Message::Binary(vec![1, 2, 3, 4])));
    // A base64 message in a text frame is binary: it comes back as a binary frame.
    client.send_text("bAQID");
    assert_eq!(client.recv_message(), Ok(Message::Binary(vec![1, 2, 3])));
}

fn a_duplicate_get_closes_the_session(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    let (mut first, sid) = open_polling(&server, "dup");
    first.write_request("GET", &polling(&sid), b"");
    first.assert_silent(Duration::from_millis(50));
    let mut second = HttpClient::connect_at(server.addr, PATH);
    let refused = second.request("GET", &format!("{}&t=burst", polling(&sid)), b"");
    assert!(matches!(refused.status, 400 | 500), "{refused:?}");
    assert_eq!(first.read_response().text(), "1", "the parked GET learns of the close");
    log.wait_for("the session closed", |l| l == "dup transport error");
    let mut third = HttpClient::connect_at(server.addr, PATH);
    assert_error(&third.request("GET", &polling(&sid), b""), 1, "after the overlap");
}

fn a_cancelled_get_closes_the_session(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    let (mut client, sid) = open_polling(&server, "cancel");
    client.write_request("GET", &polling(&sid), b"");
    client.assert_silent(Duration::from_millis(50));
    drop(client);
    log.wait_for("the session closed", |l| l == "cancel transport error");
    let mut after = HttpClient::connect_at(server.addr, PATH);
    assert_error(&after.request("GET", &polling(&sid), b""), 1, "after the cancelled GET");
}

fn heartbeat_rounds_over_both_transports(io: IoChoice) {
    // The suite's interval; a timeout generous enough that a slow test thread still pongs in time.
    let config = Config { ping_timeout: Duration::from_secs(5), ..suite(io) };
    let server = start(config, &Log::default());
    let (mut client, sid) = open_polling(&server, "beat");
    for round in 0..3 {
        let ping = client.request("GET", &polling(&sid), b"");
        assert_eq!((ping.status, ping.text()), (200, "2"), "round {round}");
        assert_eq!(client.request("POST", &polling(&sid), b"3").text(), "ok", "round {round}");
    }
    let mut ws = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]);
    for round in 0..3 {
        let frame = ws.next_frame().unwrap();
        assert_eq!((frame.opcode, frame.payload.as_slice()), (ws::TEXT, &b"2"[..]), "round {round}");
        ws.send_text("3");
    }
    // Both sessions are alive after their rounds.
    assert_eq!(client.request("POST", &polling(&sid), b"4alive").text(), "ok");
    let echoed = client.request("GET", &polling(&sid), b"");
    // A slow test thread may find the next ping queued beside the echo.
    let packets: Vec<&str> = echoed.text().split('\x1e').filter(|p| *p != "2").collect();
    assert_eq!(packets, ["4alive"], "{echoed:?}");
    ws.send_text("4alive");
    assert_eq!(ws.recv_message(), Ok(Message::Text("4alive".into())));
}

fn missing_pongs_close_the_session_on_both_transports(io: IoChoice) {
    let log = Log::default();
    let server = start(suite(io), &log);
    let (mut client, sid) = open_polling(&server, "silent-polling");
    let mut ws = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket&name=silent-ws", &[]);
    log.wait_for("the polling session timed out", |l| l == "silent-polling ping timeout");
    assert_error(&client.request("GET", &polling(&sid), b""), 1, "after the ping timeout");
    // The WebSocket sees its ping, which it does not answer, then the end.
    let ended = loop {
        match ws.next_frame() {
            Ok(frame) if frame.opcode == ws::TEXT && frame.payload == b"2" => {}
            Ok(frame) if frame.opcode == ws::CLOSE => break Ok(frame.close_code()),
            Ok(frame) => panic!("unexpected frame {frame:?}"),
            Err(ending) => break Err(ending),
        }
    };
    assert!(matches!(ended, Ok(Some(1000)) | Err(Ending::Eof)), "{ended:?}");
    log.wait_for("the WebSocket session timed out", |l| l == "silent-ws ping timeout");
}

fn closing_from_either_side(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    // The client's POST `1` releases the parked GET with a noop; later requests are refused.
    let (mut get, sid) = open_polling(&server, "client-polling");
    get.write_request("GET", &polling(&sid), b"");
    get.assert_silent(Duration::from_millis(50));
    let mut post = HttpClient::connect_at(server.addr, PATH);
    assert_eq!(post.request("POST", &polling(&sid), b"1").text(), "ok");
    assert_eq!(get.read_response().text(), "6");
    assert_error(&get.request("GET", &polling(&sid), b""), 1, "after the client's close");
    log.wait_for("the client closed", |l| l == "client-polling transport close");

    let mut ws = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket&name=client-ws", &[]);
    ws.send_text("1");
    ws.wait_closed();
    log.wait_for("the client closed its WebSocket session", |l| l == "client-ws transport close");

    // A server close with no GET parked: the next GET gets noop + close, then the sid is unknown.
    let (mut client, sid) = open_polling(&server, "server-polling");
    assert_eq!(client.request("POST", &polling(&sid), b"4close-me").text(), "ok");
    assert_eq!(client.request("GET", &polling(&sid), b"").text(), "6\x1e1");
    assert_error(&client.request("GET", &polling(&sid), b""), 1, "after the server's close");
    log.wait_for("the server closed", |l| l == "server-polling forced close");

    let mut ws = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket&name=server-ws", &[]);
    ws.send_text("4close-me");
    let (ending, texts) = ws.wait_closed();
    assert_eq!((ending, texts), (Ending::CloseFrame(Some(1000)), vec![]));
    log.wait_for("the server closed the WebSocket session", |l| l == "server-ws forced close");
}

fn an_invalid_packet_closes_the_session(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    let (mut client, sid) = open_polling(&server, "bad-polling");
    assert_eq!(client.request("POST", &polling(&sid), b"abc").status, 400);
    let mut after = HttpClient::connect_at(server.addr, PATH);
    assert_error(&after.request("GET", &polling(&sid), b""), 1, "after an invalid packet");
    log.wait_for("the polling session closed", |l| l == "bad-polling parse error");

    let mut ws = Client::open_at(server.addr, "/engine.io/?EIO=4&transport=websocket&name=bad-ws", &[]);
    ws.send_text("abc");
    let (ending, _) = ws.wait_closed();
    assert_eq!(ending, Ending::CloseFrame(Some(1008)));
    log.wait_for("the WebSocket session closed", |l| l == "bad-ws parse error");
}

fn the_upgrade_and_what_follows_it(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let (mut client, sid) = open_polling(&server, "upgrade");
    let target = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let mut ws = Client::upgrade_to(server.addr, &target, &[]);
    ws.send_text("2probe");
    assert_eq!(ws.recv_message(), Ok(Message::Text("3probe".into())));
    let released = client.request("GET", &polling(&sid), b"");
    assert_eq!((released.status, released.text()), (200, "6"), "a GET after the probe gets a noop");
    ws.send_text("5");
    ws.send_text("4hello");
    assert_eq!(ws.recv_message(), Ok(Message::Text("4hello".into())));
    ws.send_binary(&[1, 2]);
    assert_eq!(ws.recv_message(), Ok(Message::Binary(vec![1, 2])));
    // Polling requests for the sid are a transport mismatch now; a second WebSocket is closed.
    assert_error(&client.request("GET", &polling(&sid), b""), 3, "a GET after the upgrade");
    assert_error(&client.request("POST", &polling(&sid), b"4x"), 3, "a POST after the upgrade");
    let mut second = Client::upgrade_to(server.addr, &target, &[]);
    let (ending, texts) = second.wait_closed();
    assert_ne!(ending, Ending::Reset, "saw {texts:?}");
    assert!(texts.is_empty(), "the second WebSocket carried {texts:?}");
    ws.send_text("4still");
    assert_eq!(ws.recv_message(), Ok(Message::Text("4still".into())));
}

fn cors_preflight_and_response_headers(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let mut client = HttpClient::connect_at(server.addr, PATH);
    let preflight = client.request_with(
        "OPTIONS",
        "EIO=4&transport=polling",
        &[("Origin", "http://example.com"), ("Access-Control-Request-Headers", "content-type")],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(preflight.header("Access-Control-Allow-Methods"), Some("GET,HEAD,PUT,PATCH,POST,DELETE"));
    assert_eq!(preflight.header("Access-Control-Allow-Headers"), Some("content-type"));
    assert_eq!(preflight.header("Content-Length"), Some("0"));
    let origin = [("Origin", "http://example.com")];
    let open = client.request_with("GET", "EIO=4&transport=polling", &origin, b"");
    let sid = open_sid(open.text());
    let sent = client.request_with("POST", &polling(&sid), &origin, b"4cors");
    let echoed = client.request_with("GET", &polling(&sid), &origin, b"");
    let refused = client.request_with("GET", "EIO=4", &origin, b"");
    for (what, response) in [("handshake", &open), ("POST", &sent), ("GET", &echoed), ("error", &refused)] {
        assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"), "{what}: {response:?}");
    }
    assert_eq!(echoed.text(), "4cors");
}

fn oversized_and_binary_posts(io: IoChoice) {
    let log = Log::default();
    let server = start(relaxed(io), &log);
    let (mut client, sid) = open_polling(&server, "posts");
    // The head announces one byte more than maxHttpBufferSize: refused before any body is read.
    let mut big = HttpClient::connect_at(server.addr, PATH);
    let too_large = big.request_with("POST", &polling(&sid), &[("Content-Length", "1000001")], b"");
    assert_eq!(too_large.status, 413);
    // The session is kept.
    assert_eq!(client.request("POST", &polling(&sid), b"4kept").text(), "ok");
    assert_eq!(client.request("GET", &polling(&sid), b"").text(), "4kept");
    // A binary body is refused and closes the session.
    let binary = [("Content-Type", "application/octet-stream")];
    assert_eq!(client.request_with("POST", &polling(&sid), &binary, &[4, 1, 2]).status, 400);
    log.wait_for("the session closed", |l| l == "posts transport error");
    let mut after = HttpClient::connect_at(server.addr, PATH);
    assert_error(&after.request("GET", &polling(&sid), b""), 1, "after a binary POST");
}

fn open_handlers_send_behind_the_open_packet(io: IoChoice) {
    let server = start(relaxed(io), &Log::default());
    let mut client = HttpClient::connect_at(server.addr, "/greet/");
    let open = client.request("GET", "EIO=4&transport=polling", b"");
    let (packet, rest) = open.text().split_once('\x1e').expect("a batch");
    assert!(packet.starts_with("0{\"sid\":"), "{open:?}");
    assert_eq!(rest, "4welcome\x1ebBw==");
    let mut ws = Client::open_at(server.addr, "/greet/?EIO=4&transport=websocket", &[]);
    assert_eq!(ws.recv_message(), Ok(Message::Text("4welcome".into())));
    assert_eq!(ws.recv_message(), Ok(Message::Binary(vec![7])));
}

/// Two shards: requests on fresh connections land on either, so most reach the session's home shard
/// through a forward (polling) or a move (upgrade), and the echo still comes back exactly. Sessions
/// belong to their endpoint: a sid is unknown on the other one, wherever the request lands.
fn raw_sessions_route_across_shards(io: IoChoice) {
    let server = start(Config { shards: 2, ..relaxed(io) }, &Log::default());
    let (_, sid) = open_polling(&server, "routed");
    let mut socket_io = HttpClient::connect(server.addr);
    let sio_open = socket_io.request("GET", "EIO=4&transport=polling", b"");
    let sio_sid = open_sid(sio_open.text());
    for _ in 0..4 {
        let mut sio = HttpClient::connect(server.addr);
        assert_error(&sio.request("GET", &polling(&sid), b""), 1, "a raw sid on /socket.io/");
        let mut raw = HttpClient::connect_at(server.addr, PATH);
        assert_error(&raw.request("GET", &polling(&sio_sid), b""), 1, "a Socket.IO sid on /engine.io/");
    }
    for i in 0..10 {
        let body = format!("4round {i}\x1ebAQ==");
        let sent = HttpClient::connect_at(server.addr, PATH).request("POST", &polling(&sid), body.as_bytes());
        assert_eq!(sent.text(), "ok", "round {i}");
        let echoed = HttpClient::connect_at(server.addr, PATH).request("GET", &polling(&sid), b"");
        assert_eq!(echoed.text(), body, "round {i}");
    }
    for i in 0..4 {
        let (_, sid) = open_polling(&server, "moved");
        let target = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
        let mut ws = Client::upgrade_to(server.addr, &target, &[]);
        ws.send_text("2probe");
        assert_eq!(ws.recv_message(), Ok(Message::Text("3probe".into())), "session {i}");
        ws.send_text("5");
        ws.send_text("4over ws");
        assert_eq!(ws.recv_message(), Ok(Message::Text("4over ws".into())), "session {i}");
    }
}

#[test]
fn a_raw_endpoint_cannot_take_the_socket_io_path() {
    let mut server = Server::new();
    server.engine_io("/socket.io");
    match server.start(config(IoChoice::Epoll, 1)) {
        Err(StartError::PathTaken(path)) => assert_eq!(path, "/socket.io/"),
        other => panic!("expected PathTaken, got {other:?}"),
    }
}

on_both_backends!(
    handshakes_and_their_refusals_over_polling,
    handshakes_and_their_refusals_over_websocket,
    polling_echo_keeps_batches_text_and_binary,
    websocket_echo_keeps_text_and_binary,
    a_duplicate_get_closes_the_session,
    a_cancelled_get_closes_the_session,
    heartbeat_rounds_over_both_transports,
    missing_pongs_close_the_session_on_both_transports,
    closing_from_either_side,
    an_invalid_packet_closes_the_session,
    the_upgrade_and_what_follows_it,
    cors_preflight_and_response_headers,
    oversized_and_binary_posts,
    open_handlers_send_behind_the_open_packet,
    raw_sessions_route_across_shards,
);
