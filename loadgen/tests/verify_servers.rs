//! `verify` against real servers: Roomcast and the Node reference peer agree on every count for the
//! same seed with zero violations, and deliberately wrong servers are caught.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use servers::{faulty_peer, json_line, loadgen, node_peer, roomcast};

const VERIFY: &[&str] = &[
    "verify",
    "--conns",
    "200",
    "--rooms",
    "8",
    "--rooms-per-conn",
    "3",
    "--publishers",
    "4",
    "--rate",
    "20",
    "--duration",
    "2s",
    "--seed",
    "7",
    "--json",
    "--quiet",
];

fn verify(url: &str) -> (std::process::Output, serde_json::Value) {
    let mut args = VERIFY.to_vec();
    args.extend(["--url", url]);
    let (out, _) = loadgen(&args);
    let json = json_line(&out);
    (out, json)
}

#[test]
fn roomcast_and_the_node_peer_report_the_same_counts_and_no_violations() {
    let roomcast = roomcast(2);
    let node = node_peer();
    let (rc_out, rc) = verify(&roomcast.url);
    let (node_out, node) = verify(&node.url);
    for (name, out, json) in [("roomcast", &rc_out, &rc), ("node", &node_out, &node)] {
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json["violations"], 0, "{name}");
        assert_eq!(json["deliveries_received"], json["deliveries_expected"], "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("every intended recipient got each message exactly once"), "{stdout}");
    }
    // 4 publishers × 20/s × 2 s, and the audiences follow from the seed alone.
    assert_eq!(rc["messages_sent"], 160);
    for key in ["messages_sent", "deliveries_expected", "deliveries_received", "connections", "rooms"] {
        assert_eq!(rc[key], node[key], "{key} differs between Roomcast and Node");
    }
    assert!(rc["deliveries_expected"].as_u64().unwrap() > 1_000, "the run must deliver something: {rc}");
}

fn assert_caught(mode: &str, kind: &str, example: &str) {
    let server = faulty_peer(mode);
    let (out, json) = verify(&server.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a faulty server must fail verify:\n{stdout}");
    assert!(json["violations"].as_u64().unwrap() > 0, "{json}");
    assert!(json[format!("violations_{kind}")].as_u64().unwrap() > 0, "{json}");
    assert!(stdout.contains(example), "no {example:?} example in:\n{stdout}");
    assert!(stderr.contains("delivery violation"), "{stderr}");
}

#[test]
fn verify_catches_a_server_that_delivers_twice_on_overlapping_rooms() {
    assert_caught("double", "duplicated", "duplicated: connection");
}

#[test]
fn verify_catches_a_server_that_ignores_except() {
    assert_caught("ignore-except", "excluded", "although it was excluded");
}
