//! Outbound budgets over real sockets, on both backends: a client that stops reading is closed as a
//! slow consumer past `outbound_hard_limit` while the others keep receiving, and volatile broadcasts skip
//! a client backed up past `outbound_soft_limit` (checklist 33).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use roomcast_server::api::{Arg, Server};
use roomcast_server::config::{Config, IoChoice};
use support::*;

/// 60 kB events: a few hundred of them exceed what the kernel buffers for a client that never reads
/// (its receive window stays small, the server's send buffer grows to `tcp_wmem` max, 4 MiB by default).
fn big_payload() -> Arg {
    Arg::str(&"x".repeat(60_000))
}

/// `/` logs `disconnect <id> <reason>`; `flood` (n) emits n big events to everyone; `volatile` emits a
/// volatile `v` to everyone, then a `fence`.
fn server(log: &Log) -> Server {
    let mut server = Server::new();
    let log = log.clone();
    server
        .namespace("/")
        .on_disconnect(move |socket, reason| log.push(format!("disconnect {} {reason}", socket.id())))
        .on("flood", |socket, event| {
            let n: usize =
                std::str::from_utf8(event.arg(0).unwrap().json().unwrap()).unwrap().parse().unwrap();
            let big = [big_payload()];
            for _ in 0..n {
                socket.nsp().emit("big", &big);
            }
        })
        .on("volatile", |socket, _| {
            socket.nsp().volatile().emit("v", &[]);
            socket.nsp().emit("fence", &[]);
        });
    server
}

fn limits(io: IoChoice, soft: usize, hard: usize) -> Config {
    Config { outbound_soft_limit: soft, outbound_hard_limit: hard, ..config(io, 2) }
}

fn a_client_that_stops_reading_is_closed_and_others_keep_receiving(io: IoChoice) {
    const BATCH: usize = 8; // 480 kB: below the hard limit, so one batch never closes a reader.
    let log = Log::default();
    let server = TestServer::start(server(&log), limits(io, 64 * 1024, 1024 * 1024));
    let (mut stalled, stalled_sid) = Client::connect(server.addr);
    let (mut reader, _) = Client::connect(server.addr);
    let handle = server.handle();
    let closed = format!("disconnect {stalled_sid} transport error");
    let mut sent = 0;
    while !log.lines().contains(&closed) {
        assert!(sent < 400, "the stalled client was never closed (log: {:?})", log.lines());
        for _ in 0..BATCH {
            handle.emit("/", &[], &[], "big", &[big_payload()]);
        }
        sent += BATCH;
        for _ in 0..BATCH {
            assert_eq!(reader.expect_event("big").str_arg(0).len(), 60_000);
        }
    }
    // The reader is unaffected and keeps receiving; the stalled client finds its connection gone once
    // it reads again (reset, or end of stream after what the kernel had buffered).
    handle.emit("/", &[], &[], "after", &[]);
    reader.expect_event("after");
    let (ending, _) = stalled.wait_closed();
    assert_ne!(ending, Ending::CloseFrame(Some(1000)), "a slow consumer is not closed politely");
    assert!(!log.lines().iter().any(|l| l.contains("transport error") && !l.contains(&stalled_sid)));
}

fn volatile_broadcasts_skip_a_backed_up_client(io: IoChoice) {
    const FLOOD: usize = 160; // 9.6 MB, well beyond the kernel buffers of a client that never reads.
    let server = TestServer::start(server(&Log::default()), limits(io, 64 * 1024, 64 * 1024 * 1024));
    let (mut stalled, _) = Client::connect(server.addr);
    let (mut reader, _) = Client::connect(server.addr);
    reader.emit("flood", &FLOOD.to_string());
    for _ in 0..FLOOD {
        reader.expect_event("big");
    }
    // The reader has drained everything: it can take the volatile event; the stalled client cannot.
    reader.emit("volatile", "");
    reader.expect_event("v");
    reader.expect_event("fence");
    assert_eq!(
        stalled.events_until("big", "fence").len(),
        FLOOD,
        "the volatile `v` reached a stalled client"
    );
}

/// With a work budget of one delivery per turn, a burst of 50 broadcasts to 6 clients is spread over
/// hundreds of turns: every client still gets every broadcast, once and in order.
fn a_tiny_turn_budget_spreads_work_without_losing_or_reordering(io: IoChoice) {
    let server = TestServer::start(Server::new(), Config { turn_budget: 1, ..config(io, 2) });
    let mut clients: Vec<Client> = (0..6).map(|_| Client::connect(server.addr).0).collect();
    let handle = server.handle();
    for i in 0..50 {
        handle.emit("/", &[], &[], "n", &[Arg::json(i.to_string()).unwrap()]);
    }
    handle.emit("/", &[], &[], "fence", &[]);
    for client in &mut clients {
        let seen: Vec<String> = client.events_until("n", "fence").iter().map(|p| p.text.clone()).collect();
        let want: Vec<String> = (0..50).map(|i| format!("2[\"n\",{i}]")).collect();
        assert_eq!(seen, want);
    }
}

on_both_backends!(
    a_client_that_stops_reading_is_closed_and_others_keep_receiving,
    volatile_broadcasts_skip_a_backed_up_client,
    a_tiny_turn_budget_spreads_work_without_losing_or_reordering,
);
