//! The WebSocket transport as a well-behaved but unusual client uses it, over real sockets on both
//! backends: fragmented messages, WebSocket pings between fragments, the close handshake, and the
//! disconnect reason of each way a client can go away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Shutdown;

use roomcast_server::api::Server;
use roomcast_server::config::IoChoice;
use support::*;

fn start(io: IoChoice, log: &Log) -> TestServer {
    let mut server = Server::new();
    let log = log.clone();
    server
        .namespace("/")
        .on("echo", |socket, event| socket.emit("echo-back", &event.to_args()))
        .on_disconnect(move |socket, reason| log.push(format!("{} {reason}", socket.id())));
    TestServer::start(server, config(io, 2))
}

fn fragmented_messages_are_reassembled(io: IoChoice) {
    let server = start(io, &Log::default());
    let (mut client, _) = Client::connect(server.addr);
    // A text message in three fragments, with a WebSocket ping between two of them.
    client.send_frame(ws::TEXT, br#"42["ec"#);
    client.send_frame(ws::CONTINUATION, br#"ho","frag"#);
    client.send_frame(0x80 | ws::PING, b"p");
    client.send_frame(0x80 | ws::CONTINUATION, br#"mented"]"#);
    assert_eq!(client.recv().text, r#"2["echo-back","fragmented"]"#);
    // A binary attachment in two fragments.
    client.send_sio(r#"51-["echo",{"_placeholder":true,"num":0}]"#);
    client.send_frame(ws::BINARY, &[1, 2]);
    client.send_frame(0x80 | ws::CONTINUATION, &[3]);
    let back = client.recv();
    assert_eq!(back.text, r#"51-["echo-back",{"_placeholder":true,"num":0}]"#);
    assert_eq!(back.attachments, [vec![1u8, 2, 3]]);
}

fn pings_and_the_close_handshake_are_answered(io: IoChoice) {
    let server = start(io, &Log::default());
    let (mut client, _) = Client::connect(server.addr);
    client.send_frame(0x80 | ws::PING, b"hello");
    let pong = client.next_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (ws::PONG, &b"hello"[..]));
    // A close frame is answered with a close frame, then the server ends the connection.
    client.close();
    let reply = client.next_frame().unwrap();
    assert_eq!((reply.opcode, reply.close_code()), (ws::CLOSE, Some(1000)));
    assert_eq!(client.next_frame(), Err(Ending::Eof));
}

fn each_way_of_leaving_has_its_reason(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    // A close frame, a TCP close without one, and a Socket.IO DISCONNECT.
    let (mut polite, polite_sid) = Client::connect(server.addr);
    polite.close();
    let (abrupt, abrupt_sid) = Client::connect(server.addr);
    abrupt.shutdown(Shutdown::Both);
    let (mut leaving, leaving_sid) = Client::connect(server.addr);
    leaving.send_sio("1");
    wait_until("three sockets left", || log.lines().len() == 3);
    let mut lines = log.lines();
    lines.sort();
    let mut expected = [
        format!("{polite_sid} transport close"),
        format!("{abrupt_sid} transport close"),
        format!("{leaving_sid} client namespace disconnect"),
    ];
    expected.sort();
    assert_eq!(lines, expected);
    // After its DISCONNECT the connection stays open (a ping would be the next frame): rejoin works.
    leaving.join_nsp("/", None).unwrap();
}

fn frames_sent_right_behind_the_upgrade_request_are_read(io: IoChoice) {
    let server = start(io, &Log::default());
    // The upgrade request and a first frame (CONNECT to "/") in one write, before the 101 arrives.
    let mut client = Client::upgrade_with_first_frame(server.addr, b"40");
    let connected = client.recv_where(|p| p.kind == roomcast_engine::sio::PacketType::Connect);
    assert!(connected.text.starts_with(r#"0{"sid":"#), "{}", connected.text);
}

/// Bytes that follow a WebSocket upgrade request in the same read belong to the WebSocket.
mod pipelined_upgrade {
    #[test]
    fn uring() {
        if roomcast_server::driver::probe_io_uring().is_ok() {
            super::frames_sent_right_behind_the_upgrade_request_are_read(
                roomcast_server::config::IoChoice::Uring,
            );
        }
    }

    #[test]
    fn epoll() {
        super::frames_sent_right_behind_the_upgrade_request_are_read(
            roomcast_server::config::IoChoice::Epoll,
        );
    }
}

on_both_backends!(
    fragmented_messages_are_reassembled,
    pings_and_the_close_handshake_are_answered,
    each_way_of_leaving_has_its_reason,
);
