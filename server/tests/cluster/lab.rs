#![allow(dead_code)] // each test file uses part of it
//! The test servers' handlers, shared by the Redis cluster tests.

use roomcast_server::api::{Arg, Server};
use serde_json::Value;

/// Handlers driven by the clients:
/// - `join` (rooms…) → joins, acks `"ok"`;
/// - `op` `{"via":"io"|"socket","to":[…],"except":[…],"local":bool}` → emits `hit` (the sender's id)
///   to that target, then `fence` to every socket of the cluster, then acks `"ok"`;
/// - `bin` → `socket.broadcast.emit("bin", <01 02 03>, {"n":1})`, then the fence.
///
/// `/admin` exists, without handlers.
pub fn lab() -> Server {
    let mut server = Server::new();
    server.namespace("/admin");
    server
        .namespace("/")
        .on("join", |socket, event| {
            for room in event.args().iter().filter_map(|a| a.as_str()) {
                socket.join(&room);
            }
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        })
        .on("op", |socket, event| {
            let spec: Value = serde_json::from_slice(event.args()[0].json().unwrap()).unwrap();
            let names = |key: &str| -> Vec<String> {
                spec[key].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
            };
            let me = socket.id();
            let mut op = if spec["via"] == "socket" { socket.broadcast() } else { socket.nsp() };
            for room in names("to") {
                op = op.to(&room);
            }
            for room in names("except") {
                op = op.except(&room);
            }
            if spec["local"] == true {
                op = op.local();
            }
            op.emit("hit", &[Arg::str(&me)]);
            socket.nsp().emit("fence", &[]);
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        })
        .on("bin", |socket, event| {
            socket.broadcast().emit("bin", &[Arg::binary(vec![1u8, 2, 3]), Arg::json(r#"{"n":1}"#).unwrap()]);
            socket.nsp().emit("fence", &[]);
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        });
    server
}
