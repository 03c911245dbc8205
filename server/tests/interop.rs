//! Interop: the real npm `socket.io-client` 4.8 (and python-socketio) against the `roomcast` binary,
//! each scenario on both I/O backends; WebSocket scenarios with 2 shards, polling ones with 1. The
//! same scripts also run against the reference socket.io 4.8 server, which checks the scripts and shows
//! where roomcast deliberately differs (JSON is forwarded byte for byte, not re-serialized).
//!
//! The scripts live in `tests/interop/` (see `lib.mjs` for their conventions); node_modules and a
//! Python venv are installed on first use (`interop/harness.rs`; child processes in
//! `interop/process.rs`). Binary attachments are tested through an in-process echo server, because the
//! push app's `publish` carries JSON data only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "interop/harness.rs"]
mod harness;
#[path = "interop/process.rs"]
mod process;

use harness::{EchoServer, Io, Reference, Roomcast};
use process::{run_node, Script};
use serde_json::{json, Value};

/// Runs each `fn name(io: Io)` once per backend, as `name::uring` and `name::epoll`; attributes (e.g.
/// `#[ignore = "…"]`) apply to both.
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {$(
        mod $name {
            $(#[$attr])*
            #[test]
            fn uring() {
                if super::Io::Uring.usable() {
                    super::$name(super::Io::Uring);
                }
            }

            $(#[$attr])*
            #[test]
            fn epoll() {
                super::$name(super::Io::Epoll);
            }
        }
    )*};
}

on_both_backends!(
    rooms_over_websocket_across_two_shards,
    rooms_over_polling,
    rooms_over_default_transports_after_the_upgrade,
    json_is_forwarded_byte_for_byte,
    acks_resolve_within_the_client_timeout,
    binary_attachments_echo_over_websocket,
    binary_attachments_echo_over_polling,
    clients_reconnect_after_a_server_restart,
    storm_during_an_upgrade_started_mid_storm,
    python_socketio_joins_receives_and_acks,
    python_socketio_binary_round_trips,
    python_socketio_reconnects_after_a_server_restart,
    rooms_over_default_transports_while_upgrading,
    storm_with_the_join_racing_the_upgrade,
    packets_queued_behind_the_upgrade_packet,
    nested_binary_echo,
);

// ------------------------------------------------------------------ rooms, transports

fn rooms_over_websocket_across_two_shards(io: Io) {
    let server = Roomcast::start(io, 2);
    assert_rooms(&run_node("rooms.mjs", &[&server.url(), "websocket"]), "websocket");
}

fn rooms_over_polling(io: Io) {
    let server = Roomcast::start(io, 1);
    assert_rooms(&run_node("rooms.mjs", &[&server.url(), "polling"]), "polling");
}

/// The clients upgrade (and wait 100 ms more) before they join, so no packet follows their upgrade
/// packet closely enough to share a server read with it.
fn rooms_over_default_transports_after_the_upgrade(io: Io) {
    let server = Roomcast::start(io, 1);
    let facts = run_node("rooms.mjs", &[&server.url(), "default", "upgrade-first"]);
    assert_rooms(&facts, "websocket");
}

/// The clients join while they upgrade, so their packets often ride behind the upgrade packet `5`.
fn rooms_over_default_transports_while_upgrading(io: Io) {
    let server = Roomcast::start(io, 1);
    assert_rooms(&run_node("rooms.mjs", &[&server.url(), "default"]), "websocket");
}

/// Who got each step's `news` (see rooms.mjs): union of `to` rooms, `except`, the sender never, each
/// recipient once; then the transport every client ended on.
fn assert_rooms(facts: &[Value], final_transport: &str) {
    let ids: Vec<&str> = facts[0]["ids"].as_object().unwrap().values().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5, "{facts:?}");
    for id in &ids {
        assert_eq!(id.len(), 20, "socket id {id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "socket id {id}");
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "socket ids repeat: {ids:?}");
    let expected = [
        ("union", json!(["a", "b", "c"])),
        ("except", json!(["a", "b"])),
        ("everyone", json!(["a", "b", "c", "d"])),
        ("own_room", json!(["c"])),
        ("one_room_as_string", json!(["c", "d"])),
        ("after_leave", json!(["a"])),
    ];
    let steps: Vec<(&str, &Value)> =
        facts[1..facts.len() - 1].iter().map(|f| (f["step"].as_str().unwrap(), &f["recipients"])).collect();
    let expected: Vec<(&str, &Value)> = expected.iter().map(|(s, r)| (*s, r)).collect();
    assert_eq!(steps, expected);
    let finals = facts.last().unwrap()["final_transports"].as_object().unwrap();
    assert!(finals.values().all(|t| t == final_transport), "expected all on {final_transport}: {finals:?}");
}

// ------------------------------------------------------------------ JSON, acks, binary

/// Sent as `publish` data; roomcast must deliver these exact bytes.
const JSON_TEXT: &str = r#"{"b":1,"a":2.50,"e":1E3,"z":-0,"s":"\u00e9\n","l":[true,null,{}]}"#;
/// The same value as `JSON.stringify` writes it: what the reference server sends.
const JSON_AS_JS_WRITES_IT: &str =
    "{\"b\":1,\"a\":2.5,\"e\":1000,\"z\":0,\"s\":\"é\\n\",\"l\":[true,null,{}]}";

fn json_is_forwarded_byte_for_byte(io: Io) {
    let server = Roomcast::start(io, 2);
    let facts = run_node("json-exact.mjs", &[&server.url(), "websocket", JSON_TEXT]);
    assert_eq!(facts[0]["raw"], format!("2[\"exact\",{JSON_TEXT}]"));
    assert_eq!(facts[0]["parsed"], serde_json::from_str::<Value>(JSON_AS_JS_WRITES_IT).unwrap());
}

fn acks_resolve_within_the_client_timeout(io: Io) {
    let server = Roomcast::start(io, 2);
    assert_acks(&run_node("acks.mjs", &[&server.url(), "websocket"]));
}

fn assert_acks(facts: &[Value]) {
    let publish_refusal = "expected {\"to\":[…],\"except\":[…],\"event\":…,\"data\":…}";
    assert_eq!(
        facts,
        [
            json!({"case": "join", "ack": "ok"}),
            json!({"case": "publish", "ack": "ok"}),
            json!({"case": "leave", "ack": "ok"}),
            json!({"case": "join_without_room", "ack": {"error": "expected a room name"}}),
            json!({"case": "publish_without_event", "ack": {"error": publish_refusal}}),
            // No handler, no ack: the client's timeout fires, as with the reference server.
            json!({"case": "unknown_event", "error": "operation has timed out"}),
            json!({"case": "fifty_in_flight", "ack": 50}),
        ]
    );
}

const BINARY_CASES: [&str; 3] = ["one_buffer", "mixed", "big_ack"];

fn binary_attachments_echo_over_websocket(io: Io) {
    let server = EchoServer::start(io, 2);
    let facts = run_node("binary.mjs", &[&[server.url().as_str(), "websocket"][..], &BINARY_CASES].concat());
    assert_binary(&facts, &BINARY_CASES);
}

fn binary_attachments_echo_over_polling(io: Io) {
    let server = EchoServer::start(io, 1);
    let facts = run_node("binary.mjs", &[&[server.url().as_str(), "polling"][..], &BINARY_CASES].concat());
    assert_binary(&facts, &BINARY_CASES);
}

/// Server bug: an argument with binary nested inside (`{file: Buffer}`) reaches handlers as plain JSON
/// still holding its placeholders (`shard/sio.rs` maps the engine's `JsonWithBinary` to `ArgRef::Json`
/// and drops the attachments), so the echo sends `{"_placeholder":true,"num":0}` and no attachment.
/// The reference echoes the Buffers.
fn nested_binary_echo(io: Io) {
    let server = EchoServer::start(io, 1);
    assert_binary(&run_node("binary.mjs", &[&server.url(), "websocket", "nested"]), &["nested"]);
}

/// The echoed arguments of each case of binary.mjs, Buffers shown as hex.
fn assert_binary(facts: &[Value], cases: &[&str]) {
    let expected = |case: &str| match case {
        "one_buffer" => json!([{"hex": "000102fdfeff"}]),
        "mixed" => json!(["text", {"hex": "62696e"}, {"n": 1}, {"hex": ""}]),
        "nested" => json!([{"file": {"hex": "0708"}, "list": [{"hex": "09"}]}]),
        "big_ack" => json!([{"len": 200_000, "same": true}, 42]),
        other => panic!("unknown case {other}"),
    };
    let got: Vec<(&str, &Value)> = facts.iter().map(|f| (f["case"].as_str().unwrap(), &f["args"])).collect();
    let want: Vec<(&str, Value)> = cases.iter().map(|c| (*c, expected(c))).collect();
    let want: Vec<(&str, &Value)> = want.iter().map(|(c, v)| (*c, v)).collect();
    assert_eq!(got, want);
}

// ------------------------------------------------------------------ reconnection

fn clients_reconnect_after_a_server_restart(io: Io) {
    let mut server = Roomcast::start(io, 2);
    let mut script = Script::node("reconnect.mjs", &[&server.url(), "websocket"]);
    assert_eq!(script.next_fact()["phase"], "ready");
    server.kill();
    let dropped = script.next_fact();
    assert_eq!(dropped["reasons"], json!({"a": "transport close", "b": "transport close"}), "{dropped}");
    // Let a reconnection attempt or two fail against the closed port before the server is back.
    std::thread::sleep(std::time::Duration::from_millis(250));
    server.restart();
    let facts = script.finish();
    let back = &facts[0];
    assert_eq!(back["phase"], "reconnected", "{facts:?}");
    assert_eq!(back["got"], "after restart");
    assert_eq!(back["new_ids"], true, "a restarted server cannot know the old socket ids");
    assert!(back["attempts"]["a"].as_u64().unwrap() >= 1 && back["attempts"]["b"].as_u64().unwrap() >= 1);
}

// ------------------------------------------------------------------ upgrade under load

const STORM: usize = 500;

fn storm_during_an_upgrade_started_mid_storm(io: Io) {
    let server = Roomcast::start(io, 1);
    let facts = run_node("storm.mjs", &[&server.url(), &STORM.to_string(), "midstorm"]);
    assert_storm(&facts[0], true);
}

fn storm_with_the_join_racing_the_upgrade(io: Io) {
    let server = Roomcast::start(io, 1);
    let facts = run_node("storm.mjs", &[&server.url(), &STORM.to_string(), "natural"]);
    assert_storm(&facts[0], false);
}

/// The storm client got one unbroken, ordered run ending at the last message, starting no later than the
/// first message published after its join ack; `midstorm`: the upgrade completed while the storm went on.
fn assert_storm(fact: &Value, midstorm: bool) {
    let received: Vec<u64> =
        fact["received"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
    let first = *received.first().unwrap_or_else(|| panic!("nothing received: {fact}"));
    let expected: Vec<u64> = (first..STORM as u64).collect();
    assert!(received == expected, "gaps, repeats or disorder: {received:?}");
    let issued_at_join = fact["issued_at_join"].as_u64().unwrap();
    assert!(first <= issued_at_join, "messages {issued_at_join}..{first} published after the join were lost");
    assert_eq!(fact["transport"], "websocket");
    if midstorm {
        let (probe, upgrade) =
            (fact["sent_at_probe"].as_u64().unwrap(), fact["sent_at_upgrade"].as_u64().unwrap());
        assert!(issued_at_join <= probe && probe <= upgrade, "{fact}");
        assert!(upgrade < STORM as u64, "the upgrade completed only after the storm: {fact}");
    }
}

/// Server bug: packets the client queued during the upgrade follow its `5` packet closely, often in the
/// same read. `ShardCore::on_ws_data` (`shard/ws_conn.rs`) reads `ws.candidate` once per read, so the
/// frames after `5` still go to `handle_candidate_text`, which answers `Misuse("candidate frame without
/// an upgrade in progress")`: the client is closed with 1011 and sees `transport close`. The script
/// corks the client's socket so the frames always share one read; the reference passes it. The same
/// happens to a client that emits right as its upgrade completes (`upgrade` fires as `5` is written).
fn packets_queued_behind_the_upgrade_packet(io: Io) {
    let server = Roomcast::start(io, 1);
    assert_upgrade_queued(&run_node("upgrade-queued.mjs", &[&server.url(), "3"]));
}

fn assert_upgrade_queued(facts: &[Value]) {
    let round = json!({"acks": ["ok", "ok", "ok"], "closed": null, "transport": "websocket"});
    assert_eq!(facts[0]["rounds"], json!([round, round, round]));
}

// ------------------------------------------------------------------ python-socketio

fn python_socketio_joins_receives_and_acks(io: Io) {
    let server = Roomcast::start(io, 2);
    let Some(script) = Script::python(&[&server.url()]) else { return };
    let facts = script.finish();
    assert_eq!(
        facts,
        [json!({
            "join_ack": "ok",
            "publish_ack": "ok",
            "got": {"from": "python", "n": [1, 2.5, null]},
            "sids_differ": true,
        })]
    );
}

fn python_socketio_binary_round_trips(io: Io) {
    let server = EchoServer::start(io, 2);
    let Some(script) = Script::python(&[&server.url(), "binary"]) else { return };
    let facts = script.finish();
    assert_eq!(facts, [json!({"ack": ["010203", "x"], "back": ["0405", {"k": 1}]})]);
}

fn python_socketio_reconnects_after_a_server_restart(io: Io) {
    let mut server = Roomcast::start(io, 2);
    let Some(mut script) = Script::python(&[&server.url(), "reconnect"]) else { return };
    assert_eq!(script.next_fact()["phase"], "ready");
    server.kill();
    std::thread::sleep(std::time::Duration::from_millis(250));
    server.restart();
    let facts = script.finish();
    assert_eq!(facts[0]["phase"], "reconnected", "{facts:?}");
    assert_eq!(facts[0]["got"], "after restart");
    assert!(facts[0]["drops"].as_u64().unwrap() >= 1, "{facts:?}");
}

// ------------------------------------------------------------------ the reference, same scripts

#[test]
fn reference_agrees_on_rooms_acks_and_binary() {
    let reference = Reference::start();
    assert_rooms(&run_node("rooms.mjs", &[&reference.url(), "websocket"]), "websocket");
    assert_acks(&run_node("acks.mjs", &[&reference.url(), "websocket"]));
    let all = ["one_buffer", "mixed", "nested", "big_ack"];
    assert_binary(&run_node("binary.mjs", &[&reference.url(), "polling"]), &all);
}

#[test]
fn reference_reserializes_json() {
    let reference = Reference::start();
    let facts = run_node("json-exact.mjs", &[&reference.url(), "websocket", JSON_TEXT]);
    assert_eq!(facts[0]["raw"], format!("2[\"exact\",{JSON_AS_JS_WRITES_IT}]"));
    assert_eq!(facts[0]["parsed"], serde_json::from_str::<Value>(JSON_AS_JS_WRITES_IT).unwrap());
}

#[test]
fn reference_agrees_on_upgrades() {
    let reference = Reference::start();
    assert_upgrade_queued(&run_node("upgrade-queued.mjs", &[&reference.url(), "3"]));
    assert_rooms(&run_node("rooms.mjs", &[&reference.url(), "default"]), "websocket");
    assert_rooms(&run_node("rooms.mjs", &[&reference.url(), "default", "upgrade-first"]), "websocket");
    assert_storm(&run_node("storm.mjs", &[&reference.url(), &STORM.to_string(), "midstorm"])[0], true);
    assert_storm(&run_node("storm.mjs", &[&reference.url(), &STORM.to_string(), "natural"])[0], false);
}
