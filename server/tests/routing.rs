//! Session routing across shards, end to end over loopback, on both backends: a two-shard server, and
//! raw HTTP/WebSocket clients that pick the shard their connection lands on. A request lands on the
//! session's home shard (served there) or on the other one (forwarded, or for an upgrade, moved).
//!
//! To put a connection on a chosen shard, [`conn_on_shard`] connects until the kernel's `SO_REUSEPORT`
//! hash gives that shard: a polling handshake on the connection reveals it (a handshake is always served
//! where it lands, and the new sid names that shard), then a POST `1` closes that probe session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use roomcast_engine::ids::{EngineSid, ShardId};
use roomcast_server::api::{Arg, RunningServer, Server};
use roomcast_server::config::{Config, IoChoice};
use support::http::HttpClient as Client;

/// A two-shard server whose `/` namespace answers `echo` with `echo-back`.
fn start(io: IoChoice) -> RunningServer {
    let mut server = Server::new();
    server.namespace("/").on("echo", |socket, event| socket.emit("echo-back", &event.to_args()));
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        shards: 2,
        io,
        drain_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    server.start(config).unwrap()
}

/// The sid of an open packet `0{"sid":"…",…}`.
fn open_sid(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let start = text.find("\"sid\":\"").expect("an open packet") + 7;
    let len = text[start..].find('"').unwrap();
    text[start..start + len].to_owned()
}

fn home_of(sid: &str) -> u16 {
    EngineSid::parse(sid).unwrap().shard().0
}

fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

/// A keep-alive connection that the kernel gave to `shard` (see the module docs).
fn conn_on_shard(addr: SocketAddr, shard: u16) -> Client {
    for _ in 0..500 {
        let mut client = Client::connect(addr);
        let open = client.request("GET", "EIO=4&transport=polling", b"");
        assert_eq!(open.status, 200);
        let sid = open_sid(&open.body);
        let closed = client.request("POST", &polling(&sid), b"1");
        assert_eq!((closed.status, closed.text()), (200, "ok"), "the probe session closes");
        if home_of(&sid) == shard {
            return client;
        }
    }
    panic!("the kernel never put a connection on shard {shard}");
}

/// A polling session connected to namespace `/`: its sid and home shard.
fn open_session(addr: SocketAddr) -> (String, u16) {
    let mut client = Client::connect(addr);
    let open = client.request("GET", "EIO=4&transport=polling", b"");
    let sid = open_sid(&open.body);
    assert_eq!(client.request("POST", &polling(&sid), b"40").status, 200);
    let connected = client.request("GET", &polling(&sid), b"");
    assert!(connected.text().starts_with("40{\"sid\":"), "{connected:?}");
    (sid.clone(), home_of(&sid))
}

fn emit_news(running: &RunningServer, value: &'static str) {
    running.handle().emit("/", &[], &[], "news", &[Arg::Json(Bytes::from_static(value.as_bytes()))]);
}

fn polling_round_trips_on_fresh_connections(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    let (sid, _) = open_session(addr);
    for i in 0..20u16 {
        let post_shard = i % 2;
        let mut post = conn_on_shard(addr, post_shard);
        let sent = post.request("POST", &polling(&sid), format!("42[\"echo\",{i}]").as_bytes());
        assert_eq!((sent.status, sent.text()), (200, "ok"), "round trip {i}");
        let mut get = conn_on_shard(addr, 1 - post_shard);
        let echoed = get.request("GET", &polling(&sid), b"");
        assert_eq!(
            (echoed.status, echoed.text()),
            (200, format!("42[\"echo-back\",{i}]").as_str()),
            "round trip {i}"
        );
    }
    running.shutdown().unwrap();
}

fn a_parked_forwarded_get_is_answered_when_home_queues_a_packet(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    let (sid, home) = open_session(addr);
    let mut front = conn_on_shard(addr, 1 - home);
    front.write_request("GET", &polling(&sid), b"");
    front.assert_silent(Duration::from_millis(200));
    emit_news(&running, "1");
    let answered = front.read_response();
    assert_eq!((answered.status, answered.text()), (200, "42[\"news\",1]"));
    // The connection is still usable: the next forwarded request on it works too.
    let sent = front.request("POST", &polling(&sid), b"42[\"echo\",\"again\"]");
    assert_eq!(sent.text(), "ok");
    assert_eq!(front.request("GET", &polling(&sid), b"").text(), "42[\"echo-back\",\"again\"]");
    running.shutdown().unwrap();
}

fn an_aborted_forwarded_get_closes_the_session(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    let (sid, home) = open_session(addr);
    let mut front = conn_on_shard(addr, 1 - home);
    front.write_request("GET", &polling(&sid), b"");
    front.assert_silent(Duration::from_millis(100));
    drop(front);
    std::thread::sleep(Duration::from_millis(300));
    for shard in [home, 1 - home] {
        let gone = conn_on_shard(addr, shard).request("GET", &polling(&sid), b"");
        assert_eq!((gone.status, gone.text()), (400, "{\"code\":1,\"message\":\"Session ID unknown\"}"));
    }
    running.shutdown().unwrap();
}

fn a_forwarded_get_racing_a_client_close_gets_noop(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    let (sid, home) = open_session(addr);
    let mut front = conn_on_shard(addr, 1 - home);
    // A closing client sends its POST `1` while its GET is pending; served at home, the POST can
    // overtake a GET forwarded at the same time. Here it does, every time: it is sent first.
    let closed = conn_on_shard(addr, home).request("POST", &polling(&sid), b"1");
    assert_eq!((closed.status, closed.text()), (200, "ok"));
    let raced = front.request("GET", &polling(&sid), b"");
    assert_eq!((raced.status, raced.text()), (200, "6"), "released as if it had been parked first");
    let after = front.request("GET", &polling(&sid), b"");
    assert_eq!((after.status, after.text()), (400, "{\"code\":1,\"message\":\"Session ID unknown\"}"));
    running.shutdown().unwrap();
}

fn an_upgrade_from_the_other_shard_moves_the_session_there(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    let (sid, home) = open_session(addr);
    let other = 1 - home;
    // The client's pending long-poll, forwarded from the other shard, as a real client has during the probe.
    let mut poll = conn_on_shard(addr, other);
    poll.write_request("GET", &polling(&sid), b"");
    poll.assert_silent(Duration::from_millis(50));

    let mut ws = conn_on_shard(addr, other);
    assert_eq!(ws.upgrade(&sid).status, 101);
    ws.send_text("2probe");
    assert_eq!(ws.read_text(), "3probe");
    assert_eq!(poll.read_response().text(), "6", "the pending GET is released by a noop");
    ws.send_text("5");
    ws.send_text("42[\"echo\",\"over ws\"]");
    assert_eq!(ws.read_text(), "42[\"echo-back\",\"over ws\"]");
    emit_news(&running, "2");
    assert_eq!(ws.read_text(), "42[\"news\",2]", "broadcasts reach the moved WebSocket");

    for shard in [home, other] {
        let late = conn_on_shard(addr, shard).request("GET", &polling(&sid), b"");
        assert_eq!((late.status, late.text()), (400, "{\"code\":3,\"message\":\"Bad request\"}"));
    }
    let mut second = conn_on_shard(addr, other);
    assert_eq!(second.upgrade(&sid).status, 101, "a second WebSocket is accepted, then closed");
    second.read_until_closed(); // the server ends it
    emit_news(&running, "3");
    assert_eq!(ws.read_text(), "42[\"news\",3]", "the first WebSocket still carries the session");
    running.shutdown().unwrap();
}

fn unknown_sids_are_refused_on_every_shard(io: IoChoice) {
    let running = start(io);
    let addr = running.local_addr();
    for named in [0u16, 1, 7] {
        let sid = EngineSid::new(ShardId(named), [0x5a; 16]);
        for landed in [0u16, 1] {
            let what = format!("sid naming shard {named}, landed on {landed}");
            let mut client = conn_on_shard(addr, landed);
            let get = client.request("GET", &polling(sid.as_str()), b"");
            assert_eq!(
                (get.status, get.text()),
                (400, "{\"code\":1,\"message\":\"Session ID unknown\"}"),
                "{what}"
            );
            let post = conn_on_shard(addr, landed).request("POST", &polling(sid.as_str()), b"40");
            assert_eq!(
                (post.status, post.text()),
                (400, "{\"code\":1,\"message\":\"Session ID unknown\"}"),
                "{what}"
            );
            let upgrade = conn_on_shard(addr, landed).upgrade(sid.as_str());
            assert_eq!((upgrade.status, upgrade.text()), (400, "Session ID unknown"), "{what}");
        }
    }
    running.shutdown().unwrap();
}

on_both_backends!(
    polling_round_trips_on_fresh_connections,
    a_parked_forwarded_get_is_answered_when_home_queues_a_packet,
    an_aborted_forwarded_get_closes_the_session,
    a_forwarded_get_racing_a_client_close_gets_noop,
    an_upgrade_from_the_other_shard_moves_the_session_there,
    unknown_sids_are_refused_on_every_shard,
);
