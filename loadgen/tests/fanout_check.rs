//! `fanout`'s receipt check over real loopback sockets: flat out to several rooms except one, with the
//! window released on delivery, Roomcast is clean in one process and across worker processes; each
//! kind of wrong server behaviour (duplicates, lost deliveries, broken order, excepted or sending
//! connections served) is caught, counted by kind and fails the run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use servers::{faulty_peer, json_line, loadgen, roomcast};

/// Scenario 4 of issue 7 in small: rooms overlap (3 per connection), 5 target rooms except 1, the
/// publishers in rooms too, flat out with the window freed on delivery.
const FLAT_OUT: &[&str] = &[
    "fanout",
    "--rooms",
    "20",
    "--rooms-per-conn",
    "3",
    "--publishers",
    "4",
    "--publishers-join",
    "--to-rooms",
    "5",
    "--except-rooms",
    "1",
    "--window",
    "4",
    "--release",
    "delivered",
    "--duration",
    "2s",
    "--seed",
    "11",
    "--json",
    "--quiet",
];

fn run(url: &str, more: &[&str]) -> (std::process::Output, serde_json::Value) {
    run_with(url, "240", more)
}

fn run_with(url: &str, conns: &str, more: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut args = FLAT_OUT.to_vec();
    args.extend(["--url", url, "--conns", conns]);
    args.extend(more);
    let (out, _) = loadgen(&args);
    let json = json_line(&out);
    (out, json)
}

const KINDS: [&str; 7] =
    ["missing", "duplicated", "excluded", "not_targeted", "unknown_message", "reordered", "malformed"];

fn assert_clean(out: &std::process::Output, json: &serde_json::Value) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json["violations"], 0, "{json}");
    for kind in KINDS {
        assert_eq!(json[format!("violations_{kind}")], 0, "{kind}: {json}");
    }
    assert_eq!(json["deliveries_received"], json["deliveries_expected"]);
    assert_eq!((json["release"].as_str(), json["window_timeouts"].as_u64()), (Some("delivered"), Some(0)));
    assert_eq!((json["to_rooms"].as_u64(), json["except_rooms"].as_u64()), (Some(5), Some(1)));
    assert!(json["messages_sent"].as_u64().unwrap() > 40, "flat out sends more than a trickle: {json}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("every intended recipient got each message exactly once, in order"), "{stdout}");
}

#[test]
fn flat_out_to_five_rooms_except_one_is_clean_on_roomcast_in_one_process_and_in_workers() {
    let server = roomcast(2);
    let (out, json) = run(&server.url, &[]);
    assert_clean(&out, &json);
    // The sender's own messages: with --publishers-join they are in rooms, so some message of each
    // publisher targets a room it is in; the server leaving them out is part of "clean".
    // 241 receivers: publisher p (member 241 + p) lives in process p mod 3, not (241 + p) mod 3, and a
    // slot waits only for the receivers its own process holds (a wrong count would show as timeouts).
    let (out, json) = run_with(&server.url, "241", &["--conns-per-process", "100"]);
    assert_clean(&out, &json);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran in 3 worker processes"));
}

#[test]
fn a_window_released_on_delivery_waits_for_the_receivers_not_the_ack() {
    // A server that acks every publish but delivers nothing (drop-room with one target room): released
    // on acks the publisher runs flat out; released on delivery each slot waits for the release
    // timeout, so at most window × (duration / timeout + 1) messages go out, each counted as a timeout.
    let server = faulty_peer("drop-room");
    let base = [
        "fanout",
        "--url",
        &server.url,
        "--conns",
        "20",
        "--rooms",
        "2",
        "--publishers",
        "1",
        "--window",
        "2",
        "--duration",
        "2s",
        "--drain",
        "1s",
        "--json",
        "--quiet",
    ];
    let (acked, _) = loadgen(&base);
    let acked = json_line(&acked);
    let mut on_delivery = base.to_vec();
    on_delivery.extend(["--release", "delivered", "--release-timeout", "500ms"]);
    let (out, _) = loadgen(&on_delivery);
    let delivered = json_line(&out);
    let sent = delivered["messages_sent"].as_u64().unwrap();
    assert!((2..=10).contains(&sent), "{delivered}");
    assert!(delivered["window_timeouts"].as_u64().unwrap() >= sent - 2, "{delivered}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("freed by the 0.5 s release timeout"));
    assert!(acked["messages_sent"].as_u64().unwrap() > 5 * sent, "acked: {acked}");
    assert_eq!(delivered["violations_missing"], delivered["deliveries_expected"]);
}

fn assert_caught(mode: &str, kind: &str, example: &str) {
    let server = faulty_peer(mode);
    let (out, json) = run(&server.url, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{mode}: a faulty server must fail fanout:\n{stdout}");
    assert!(json[format!("violations_{kind}")].as_u64().unwrap() > 0, "{mode}: {json}");
    assert!(json["violations"].as_u64().unwrap() > 0, "{json}");
    assert!(stdout.contains(example), "{mode}: no {example:?} example in:\n{stdout}");
    assert!(stderr.contains("fanout found"), "{stderr}");
}

#[test]
fn fanout_catches_duplicates_lost_deliveries_reordering_and_wrong_recipients() {
    assert_caught("double", "duplicated", "duplicated: connection");
    assert_caught("drop-room", "missing", "missing: message");
    assert_caught("delay", "reordered", "reordered: connection");
    assert_caught("ignore-except", "excluded", "although it was excluded");
    assert_caught("include-sender", "excluded", "although it was excluded");
}
