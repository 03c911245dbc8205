//! What a misbehaving client gets, over real sockets on both backends (checklist 13, 21, 24, 27): each
//! bad input closes that client only, with the WebSocket close code or Socket.IO disconnect reason that
//! names the fault, while another client on the same server is undisturbed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use roomcast_server::api::Server;
use roomcast_server::config::{Config, IoChoice};
use support::*;

/// What one bad input must produce.
struct Case {
    what: &'static str,
    send: fn(&mut Client),
    /// The close frame's code: the fault's for WebSocket and Engine.IO faults, 1000 (a normal close of
    /// the session) when the Socket.IO layer closes the client.
    close_code: u16,
    /// The reason the server's `disconnect` handler sees.
    reason: &'static str,
}

const MAX_PAYLOAD: usize = 1000;

const CASES: &[Case] = &[
    Case {
        what: "an unmasked frame",
        send: |c| {
            let mut frame = Vec::new();
            ws::encode_frame(0x80 | ws::TEXT, br#"42["x"]"#, None, &mut frame);
            c.write(&frame);
        },
        close_code: 1002,
        reason: "transport error",
    },
    Case {
        what: "a frame with a reserved bit",
        send: |c| c.send_frame(0x80 | 0x40 | ws::TEXT, br#"42["x"]"#),
        close_code: 1002,
        reason: "transport error",
    },
    Case {
        what: "a message above maxHttpBufferSize",
        send: |c| c.send_text(&format!(r#"42["x","{}"]"#, "y".repeat(MAX_PAYLOAD))),
        close_code: 1009,
        reason: "transport error",
    },
    Case {
        what: "invalid UTF-8 in a text frame",
        send: |c| c.send_frame(0x80 | ws::TEXT, b"42[\"\xff\"]"),
        close_code: 1007,
        reason: "transport error",
    },
    Case {
        what: "an event whose payload is an object",
        send: |c| c.send_sio("2{}"),
        close_code: 1000,
        reason: "parse error",
    },
    Case {
        what: "an unknown packet type",
        send: |c| c.send_sio("abc"),
        close_code: 1000,
        reason: "parse error",
    },
    Case {
        what: "a reserved event name",
        send: |c| c.send_sio(r#"2["disconnecting"]"#),
        close_code: 1000,
        reason: "parse error",
    },
    Case {
        what: "text while attachments are awaited",
        send: |c| {
            c.send_sio(r#"51-["x",{"_placeholder":true,"num":0}]"#);
            c.send_sio(r#"2["y"]"#);
        },
        close_code: 1000,
        reason: "parse error",
    },
    Case {
        what: "an event for a namespace not joined",
        send: |c| c.send_sio(r#"2/nope,["x"]"#),
        close_code: 1000,
        reason: "forced server close",
    },
    Case {
        what: "a second CONNECT",
        send: |c| c.send_sio("0"),
        close_code: 1000,
        reason: "forced server close",
    },
    Case {
        what: "an invalid Engine.IO packet",
        send: |c| c.send_text("abc"),
        close_code: 1008,
        reason: "parse error",
    },
];

fn start(io: IoChoice, log: &Log) -> TestServer {
    let mut server = Server::new();
    let log = log.clone();
    server
        .namespace("/")
        .on("echo", |socket, event| socket.emit("echo-back", &event.to_args()))
        .on_disconnect(move |socket, reason| log.push(format!("{} {reason}", socket.id())));
    TestServer::start(server, Config { max_http_buffer_size: MAX_PAYLOAD, ..config(io, 2) })
}

fn each_bad_input_closes_only_its_client(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let mut bystanders = server.connect_spread(2);
    for case in CASES {
        let (mut culprit, sid) = Client::connect(server.addr);
        (case.send)(&mut culprit);
        let (ending, texts) = culprit.wait_closed();
        assert_eq!(ending, Ending::CloseFrame(Some(case.close_code)), "{}: saw {texts:?}", case.what);
        let expected = format!("{sid} {}", case.reason);
        let lines = log.wait_for(case.what, |l| l.starts_with(sid.as_str()));
        assert!(lines.contains(&expected), "{}: expected {expected:?} in {lines:?}", case.what);
        for (bystander, _, shard) in &mut bystanders {
            bystander.emit("echo", r#""still here""#);
            let echo = bystander.expect_event("echo-back");
            assert_eq!(echo.text, r#"2["echo-back","still here"]"#, "after {}, shard {shard}", case.what);
        }
    }
}

on_both_backends!(each_bad_input_closes_only_its_client);
