//! How connections end, over real sockets on both backends: graceful shutdown (every client closed with
//! reason "server shutting down", bounded by the drain time, the port closed), server-side disconnects
//! of one socket or the whole client (checklist 34), the heartbeat, and the connect timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpStream;
use std::time::Duration;

use roomcast_server::api::{Arg, Server};
use roomcast_server::config::{Config, IoChoice};
use support::*;

const DRAIN: Duration = Duration::from_millis(1500);

/// On `/` and `/custom`: disconnects are logged as `<id> <reason>`; `kick` (bool) runs
/// `socket.disconnect(close)`; `echo` emits `echo-back`. On `/`, `flood` queues ~10 MB on everyone.
fn server(log: &Log) -> Server {
    let mut server = Server::new();
    for name in ["/", "/custom"] {
        let log = log.clone();
        server
            .namespace(name)
            .on_disconnect(move |socket, reason| log.push(format!("{} {reason}", socket.id())))
            .on("kick", |socket, event| {
                socket.disconnect(event.arg(0).and_then(|a| a.json()) == Some(b"true"))
            })
            .on("echo", |socket, event| socket.emit("echo-back", &event.to_args()));
    }
    server.namespace("/").on("flood", |socket, _| {
        let big = [Arg::str(&"x".repeat(60_000))];
        for _ in 0..160 {
            socket.nsp().emit("big", &big);
        }
        socket.emit("flooded", &[]);
    });
    server
}

fn start(io: IoChoice, log: &Log) -> TestServer {
    let config = Config { drain_timeout: DRAIN, outbound_hard_limit: 64 * 1024 * 1024, ..config(io, 2) };
    TestServer::start(server(log), config)
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

fn a_server_side_disconnect_leaves_one_namespace(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (mut client, _) = Client::connect(server.addr);
    let custom = client.join_nsp("/custom", None).unwrap();
    client.emit_nsp("/custom", "kick", "false");
    assert_eq!(client.recv().text, "1/custom,");
    assert_eq!(
        log.wait_for("the socket left", |l| l.starts_with(&custom)),
        [format!("{custom} server namespace disconnect")]
    );
    // The connection and its other namespace are unaffected; the namespace can be joined again.
    client.emit("echo", "1");
    assert_eq!(client.recv().text, r#"2["echo-back",1]"#);
    let again = client.join_nsp("/custom", None).unwrap();
    assert_ne!(again, custom);
    client.emit_nsp("/custom", "echo", "2");
    assert_eq!(client.recv().text, r#"2/custom,["echo-back",2]"#);
}

fn disconnect_with_close_leaves_every_namespace_then_closes(io: IoChoice) {
    let log = Log::default();
    let server = start(io, &log);
    let (mut client, main) = Client::connect(server.addr);
    let custom = client.join_nsp("/custom", None).unwrap();
    client.emit("kick", "true");
    let (ending, texts) = client.wait_closed();
    // As socket.io's `client._disconnect()`: DISCONNECT for each namespace, then the engine closes.
    assert_eq!(texts, ["41", "41/custom,"]);
    assert_eq!(ending, Ending::CloseFrame(Some(1000)));
    wait_until("both sockets left", || log.lines().len() == 2);
    let mut lines = log.lines();
    lines.sort();
    let mut expected =
        [format!("{main} server namespace disconnect"), format!("{custom} server namespace disconnect")];
    expected.sort();
    assert_eq!(lines, expected);
}

fn a_client_that_stops_answering_pings_times_out(io: IoChoice) {
    let log = Log::default();
    let config = Config {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(300),
        ..config(io, 2)
    };
    let server = TestServer::start(server(&log), config);
    let (mut alive, alive_sid) = Client::connect(server.addr);
    let (mut silent, silent_sid) = Client::connect(server.addr);
    // `alive` answers every ping while it waits; `silent` reads nothing meanwhile.
    alive.assert_quiet(Duration::from_millis(1200));
    assert_eq!(log.lines(), [format!("{silent_sid} ping timeout")]);
    let (ending, _) = silent.wait_closed();
    assert_ne!(ending, Ending::Reset);
    alive.emit("echo", "1");
    assert_eq!(alive.recv().text, r#"2["echo-back",1]"#);
    assert!(!log.lines().iter().any(|l| l.starts_with(&alive_sid)));
}

fn a_client_that_joins_no_namespace_is_closed_after_the_connect_timeout(io: IoChoice) {
    let config = Config { connect_timeout: Duration::from_millis(200), ..config(io, 2) };
    let server = TestServer::start(server(&Log::default()), config);
    let mut idle = Client::open(server.addr);
    let (mut joined, _) = Client::connect(server.addr);
    let started = std::time::Instant::now();
    let (ending, texts) = idle.wait_closed();
    assert_eq!((ending, texts), (Ending::CloseFrame(Some(1000)), vec![]));
    assert!(started.elapsed() < Duration::from_secs(2), "closed only after {:?}", started.elapsed());
    // Joining a namespace cleared the timer for good.
    joined.assert_quiet(Duration::from_millis(300));
    joined.emit("echo", "1");
    assert_eq!(joined.recv().text, r#"2["echo-back",1]"#);
}

/// A handler that panics costs its own event only: the same client and the others on its shard carry on.
fn a_panicking_handler_does_not_take_the_shard_down(io: IoChoice) {
    let mut server = Server::new();
    server
        .namespace("/")
        .on("boom", |_, _| panic!("deliberate panic in a test handler"))
        .on("echo", |socket, event| socket.emit("echo-back", &event.to_args()));
    let server = TestServer::start(server, config(io, 1));
    let (mut a, _) = Client::connect(server.addr);
    let (mut b, _) = Client::connect(server.addr);
    a.emit("boom", "");
    a.emit("echo", "1");
    assert_eq!(a.expect_event("echo-back").text, r#"2["echo-back",1]"#);
    b.emit("echo", "2");
    assert_eq!(b.expect_event("echo-back").text, r#"2["echo-back",2]"#);
}

on_both_backends!(
    a_panicking_handler_does_not_take_the_shard_down,
    a_client_that_joins_no_namespace_is_closed_after_the_connect_timeout,
    a_client_that_stops_answering_pings_times_out,
    shutdown_closes_every_client_and_stops_accepting,
    shutdown_is_bounded_by_the_drain_time,
    a_server_side_disconnect_leaves_one_namespace,
    disconnect_with_close_leaves_every_namespace_then_closes,
);
