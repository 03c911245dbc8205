//! Acknowledgements both ways (checklist 26) and binary attachments both ways (checklist 20), over real
//! sockets on both backends: exact wire texts, per-namespace ack ids, timeouts, disconnects, and binary
//! broadcasts across shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use roomcast_server::api::{AckError, Arg, Server};
use roomcast_server::config::IoChoice;
use support::*;

/// Events of the test server, on `/` and `/custom`:
/// - `echo-ack` → acks with its own arguments (binary included);
/// - `echo` → emits `echo-back` with its own arguments;
/// - `ask` (timeout in ms) → `emit_with_ack("question", 1, "two")`; the outcome is emitted back as
///   `answered` (the client's ack arguments) or `ack-error` (the error text), and logged;
/// - `ask-binary` → `emit_with_ack("file", <01 02 03>, "x")`, outcome as for `ask`;
/// - `join` (room) → joins, acks `"ok"`; `send-file` (room) → `io.to(room).emit("file", <01 02 03>,
///   "x")` then `io.emit("fence")`.
fn server(log: &Log) -> Server {
    let mut server = Server::new();
    for name in ["/", "/custom"] {
        let (ask_log, ask_binary_log) = (log.clone(), log.clone());
        server
            .namespace(name)
            .on("echo-ack", |socket, event| socket.ack(event.ack_id(), &event.to_args()))
            .on("echo", |socket, event| socket.emit("echo-back", &event.to_args()))
            .on("ask", move |socket, event| {
                let ms = event
                    .arg(0)
                    .and_then(|a| a.json())
                    .map_or(5000, |t| std::str::from_utf8(t).unwrap().parse().unwrap());
                let args = [Arg::json("1").unwrap(), Arg::str("two")];
                socket.emit_with_ack("question", &args, Duration::from_millis(ms), outcome(&ask_log));
            })
            .on("ask-binary", move |socket, _| {
                let args = [Arg::binary(vec![1u8, 2, 3]), Arg::str("x")];
                socket.emit_with_ack("file", &args, Duration::from_secs(5), outcome(&ask_binary_log));
            })
            .on("join", |socket, event| {
                socket.join(&event.arg(0).unwrap().as_str().unwrap());
                socket.ack(event.ack_id(), &[Arg::str("ok")]);
            })
            .on("send-file", |socket, event| {
                let room = event.arg(0).unwrap().as_str().unwrap().into_owned();
                socket.nsp().to(&room).emit("file", &[Arg::binary(vec![1u8, 2, 3]), Arg::str("x")]);
                socket.nsp().emit("fence", &[]);
            });
    }
    server
}

fn outcome(log: &Log) -> roomcast_server::api::AckCallback {
    let log = log.clone();
    Box::new(move |socket, result| match result {
        Ok(args) => {
            log.push(format!("ack {} args", args.len()));
            socket.emit("answered", &args);
        }
        Err(error) => {
            log.push(format!("ack error: {error}"));
            socket.emit("ack-error", &[Arg::str(&error.to_string())]);
        }
    })
}

fn start(io: IoChoice, log: &Log) -> TestServer {
    TestServer::start(server(log), config(io, 2))
}

fn client_acks_are_answered_with_the_same_id(io: IoChoice) {
    let server = start(io, &Log::default());
    let (mut client, _) = Client::connect(server.addr);
    client.join_nsp("/custom", None).unwrap();
    client.send_sio(r#"2456["echo-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(client.recv().text, r#"3456[1,"2",{"3":[false]}]"#);
    client.send_sio(r#"2/custom,7["echo-ack","x"]"#);
    assert_eq!(client.recv().text, r#"3/custom,7["x"]"#);
    // Without an ack id, no ack is sent (the next packet is the echo).
    client.send_sio(r#"2["echo-ack",1]"#);
    client.send_sio(r#"2["echo",1]"#);
    assert_eq!(client.recv().text, r#"2["echo-back",1]"#);
}

fn server_acks_resolve_and_ignore_unknown_ids(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (mut client, _) = Client::connect(server.addr);
    client.join_nsp("/custom", None).unwrap();
    // Ids come from a per-namespace counter starting at 0.
    client.emit("ask", "");
    assert_eq!(client.recv().text, r#"20["question",1,"two"]"#);
    client.emit("ask", "");
    assert_eq!(client.recv().text, r#"21["question",1,"two"]"#);
    client.emit_nsp("/custom", "ask", "");
    assert_eq!(client.recv().text, r#"2/custom,0["question",1,"two"]"#);
    // Answers in any order reach the right callback, once; unknown ids are ignored.
    client.send_sio(r#"31["second",{"n":2}]"#);
    assert_eq!(client.recv().text, r#"2["answered","second",{"n":2}]"#);
    client.send_sio(r#"399["nobody"]"#);
    client.send_sio(r#"31["again"]"#);
    client.send_sio(r#"30["first"]"#);
    assert_eq!(client.recv().text, r#"2["answered","first"]"#);
    client.send_sio(r#"3/custom,0[]"#);
    assert_eq!(client.recv().text, r#"2/custom,["answered"]"#);
    assert_eq!(log.lines(), ["ack 2 args", "ack 1 args", "ack 0 args"]);
}

fn server_acks_time_out(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (mut client, _) = Client::connect(server.addr);
    client.emit("ask", "100");
    assert_eq!(client.recv().text, r#"20["question",1,"two"]"#);
    assert_eq!(client.recv().text, r#"2["ack-error","operation has timed out"]"#);
    // A late answer is ignored: the callback already ran.
    client.send_sio(r#"30["late"]"#);
    assert_eq!(client.call("echo-ack", "1").args, ["1"]);
    client.assert_quiet(Duration::from_millis(50));
    assert_eq!(log.lines(), ["ack error: operation has timed out"]);
}

fn server_acks_fail_when_the_socket_leaves(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (mut client, _) = Client::connect(server.addr);
    client.emit("ask", "60000");
    client.emit("ask", "");
    client.recv();
    client.recv();
    client.close();
    let error = format!("ack error: {}", AckError::Disconnected);
    wait_until("both callbacks ran", || log.lines().len() == 2);
    assert_eq!(log.lines(), [error.clone(), error]);
}

fn binary_events_and_acks_from_the_client(io: IoChoice) {
    let server = start(io, &Log::default());
    let (mut client, _) = Client::connect(server.addr);
    client.send_sio(r#"51-["echo",{"_placeholder":true,"num":0},"x"]"#);
    client.send_binary(&[1, 2, 3]);
    let back = client.recv();
    assert_eq!(back.text, r#"51-["echo-back",{"_placeholder":true,"num":0},"x"]"#);
    assert_eq!(back.attachments, [vec![1u8, 2, 3]]);

    let placeholders = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
    client.send_sio(&format!(r#"52-789["echo-ack",{placeholders}]"#));
    client.send_binary(&[4]);
    client.send_binary(&[]);
    let ack = client.recv();
    assert_eq!(ack.text, format!("62-789[{placeholders}]"));
    assert_eq!(ack.attachments, [vec![4u8], vec![]]);
}

fn binary_nested_in_objects_is_relayed(io: IoChoice) {
    let server = start(io, &Log::default());
    let (mut client, _) = Client::connect(server.addr);
    // `socket.emit("echo", "a", { file: Buffer<01>, parts: [Buffer<02>, 7] }, Buffer<03>)`
    let args = r#""a",{"file":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1},7]},{"_placeholder":true,"num":2}"#;
    client.send_sio(&format!(r#"53-["echo",{args}]"#));
    for byte in 1..=3u8 {
        client.send_binary(&[byte]);
    }
    let back = client.recv();
    assert_eq!(back.text, format!(r#"53-["echo-back",{args}]"#));
    assert_eq!(back.attachments, [vec![1u8], vec![2], vec![3]]);
    // Numbering restarts per packet; with an attachment before the nested ones, they shift.
    let args = r#"{"_placeholder":true,"num":1},{"x":{"_placeholder":true,"num":0}}"#;
    client.send_sio(&format!(r#"52-9["echo-ack",{args}]"#));
    client.send_binary(&[10]);
    client.send_binary(&[11]);
    let ack = client.recv();
    let renumbered = r#"{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}"#;
    assert_eq!(ack.text, format!("62-9[{renumbered}]"));
    assert_eq!(ack.attachments, [vec![11u8], vec![10]]);
}

fn binary_from_the_server_and_binary_answers(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let mut clients = server.connect_spread(3);
    for (client, _, _) in &mut clients[..2] {
        assert_eq!(client.call("join", r#""files""#).args, [r#""ok""#]);
    }
    // A binary broadcast from one shard reaches the room's members on every shard.
    clients[2].0.emit("send-file", r#""files""#);
    for (client, sid, shard) in &mut clients[..2] {
        let file = client.expect_event("file");
        assert_eq!(file.text, r#"51-["file",{"_placeholder":true,"num":0},"x"]"#, "{sid} on {shard}");
        assert_eq!(file.attachments, [vec![1u8, 2, 3]]);
        client.expect_event("fence");
    }
    clients[2].0.expect_event("fence");

    // emit_with_ack with binary, answered with binary.
    let client = &mut clients[0].0;
    client.emit("ask-binary", "");
    let question = client.recv();
    assert_eq!(question.text, r#"51-0["file",{"_placeholder":true,"num":0},"x"]"#);
    assert_eq!(question.attachments, [vec![1u8, 2, 3]]);
    client.send_sio(r#"61-0[{"_placeholder":true,"num":0},"y"]"#);
    client.send_binary(&[9, 9]);
    let answered = client.recv();
    assert_eq!(answered.text, r#"51-["answered",{"_placeholder":true,"num":0},"y"]"#);
    assert_eq!(answered.attachments, [vec![9u8, 9]]);
}

on_both_backends!(
    client_acks_are_answered_with_the_same_id,
    server_acks_resolve_and_ignore_unknown_ids,
    server_acks_time_out,
    server_acks_fail_when_the_socket_leaves,
    binary_events_and_acks_from_the_client,
    binary_nested_in_objects_is_relayed,
    binary_from_the_server_and_binary_answers,
);
