//! `GET /metrics` on the server's port: every shard's figures in the Prometheus text format, and they
//! move with what clients do. Both backends, 2 shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use roomcast_server::api::{Arg, Server};
use roomcast_server::config::IoChoice;
use support::*;

fn get_metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The sum over shards of one metric.
fn total(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn metrics_follow_sessions_and_deliveries(io: IoChoice) {
    let server = TestServer::start(Server::new(), config(io, 2));
    let mut a = Client::connect(server.addr).0;
    let mut b = Client::connect(server.addr).0;
    server.handle().emit("/", &[], &[], "tick", &[Arg::str("x")]);
    a.expect_event("tick");
    b.expect_event("tick");
    let mut text = String::new();
    wait_until("both shards published the broadcast", || {
        text = get_metrics(server.addr);
        total(&text, "roomcast_deliveries_total") == 2
    });
    assert_eq!(total(&text, "roomcast_sessions"), 2, "{text}");
    assert!(text.contains("roomcast_deliveries_total{shard=\"1\"}"), "{text}");
    assert!(text.contains("# TYPE roomcast_handler_panics_total counter"), "{text}");
}

on_both_backends!(metrics_follow_sessions_and_deliveries,);
