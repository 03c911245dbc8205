//! Graceful shutdown over real sockets, on both backends: `RunningServer::shutdown` closes every client
//! with a close frame and reason "server shutting down", returns within the drain time even when a client
//! cannot drain, and the port stops accepting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpStream;
use std::time::Duration;

use roomcast_server::api::{Arg, Server};
use roomcast_server::config::{Config, IoChoice};
use support::*;

const DRAIN: Duration = Duration::from_millis(1500);

fn start(io: IoChoice, log: &Log) -> TestServer {
    let mut server = Server::new();
    let log = log.clone();
    server
        .namespace("/")
        .on_disconnect(move |socket, reason| log.push(format!("{} {reason}", socket.id())))
        .on("flood", |socket, _| {
            let big = [Arg::str(&"x".repeat(60_000))];
            for _ in 0..160 {
                socket.nsp().emit("big", &big);
            }
            socket.emit("flooded", &[]);
        });
    let config = Config { drain_timeout: DRAIN, outbound_hard_limit: 64 * 1024 * 1024, ..config(io, 2) };
    TestServer::start(server, config)
}

fn shutdown_closes_every_client_and_stops_accepting(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let addr = server.addr;
    let mut clients = server.connect_spread(3);
    let took = server.shutdown();
    assert!(took < DRAIN, "clients that read promptly drain at once, yet shutdown took {took:?}");
    for (client, sid, shard) in &mut clients {
        let (ending, texts) = client.wait_closed();
        assert_eq!(ending, Ending::CloseFrame(Some(1000)), "{sid} on shard {shard}: saw {texts:?}");
        assert!(log.lines().contains(&format!("{sid} server shutting down")), "{:?}", log.lines());
    }
    assert!(TcpStream::connect(addr).is_err(), "the port still accepts after shutdown");
}

fn shutdown_is_bounded_by_the_drain_time(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (_stalled, stalled_sid) = Client::connect(server.addr);
    let (mut reader, _) = Client::connect(server.addr);
    // ~5 MB stay queued for the client that never reads: its close frame can never go out.
    reader.emit("flood", "");
    for _ in 0..160 {
        reader.expect_event("big");
    }
    reader.expect_event("flooded");
    let took = server.shutdown();
    assert!(took < DRAIN + Duration::from_secs(1), "shutdown took {took:?} with a {DRAIN:?} drain time");
    assert!(log.lines().contains(&format!("{stalled_sid} server shutting down")));
    let (ending, _) = reader.wait_closed();
    assert_eq!(ending, Ending::CloseFrame(Some(1000)));
}

on_both_backends!(shutdown_closes_every_client_and_stops_accepting, shutdown_is_bounded_by_the_drain_time);
