//! Each scenario end to end against Roomcast, small: counts add up, outputs are written, and a run
//! bigger than `--conns-per-process` is split over worker processes whose results add up the same.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use servers::{json_line, loadgen, roomcast};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn fanout_in_worker_processes_delivers_everything_and_writes_every_output() {
    let server = roomcast(2);
    let (hlog, plot) = (scratch("fanout.hlog"), scratch("fanout.svg"));
    let args = [
        "fanout",
        "--url",
        &server.url,
        "--conns",
        "150",
        "--rooms",
        "5",
        "--publishers",
        "2",
        "--rate",
        "50",
        "--payload",
        "200",
        "--duration",
        "2s",
        "--conns-per-process",
        "60",
        "--json",
        "--quiet",
        "--hlog",
        hlog.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ];
    let (out, _) = loadgen(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = json_line(&out);
    assert_eq!(json["messages_sent"], 200, "2 publishers × 50/s × 2 s: {json}");
    assert_eq!(json["deliveries_received"], json["deliveries_expected"]);
    assert_eq!(json["latency_samples"], json["deliveries_received"]);
    assert_eq!(json["bad_tokens"], 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran in 3 worker processes"));
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.lines().filter(|l| l.starts_with("Tag=fanout,")).count() >= 2, "{log}");
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
}

#[test]
fn fanout_flat_out_with_a_window_keeps_every_message() {
    let server = roomcast(1);
    let args = [
        "fanout",
        "--url",
        &server.url,
        "--conns",
        "40",
        "--rooms",
        "4",
        "--publishers",
        "2",
        "--window",
        "8",
        "--duration",
        "1s",
        "--json",
        "--quiet",
    ];
    let (out, _) = loadgen(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = json_line(&out);
    assert!(json["messages_sent"].as_u64().unwrap() > 50, "{json}");
    assert_eq!(json["deliveries_received"], json["deliveries_expected"]);
    assert_eq!(json["window"], 8);
}

#[test]
fn connect_churns_through_join_leave_and_disconnect() {
    let server = roomcast(1);
    let args = [
        "connect",
        "--url",
        &server.url,
        "--conns",
        "50",
        "--rate",
        "100",
        "--duration",
        "2s",
        "--json",
        "-q",
    ];
    let (out, _) = loadgen(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = json_line(&out);
    assert_eq!(json["connections_opened"], 200);
    assert_eq!(json["connections_completed"], 200);
    assert_eq!(json["connections_failed"], 0);
    assert_eq!(json["latency_samples"], 200, "one handshake latency per connection");
}

#[test]
fn idle_reads_the_servers_rss_per_connection() {
    let server = roomcast(1);
    let pid = server.pid().to_string();
    let args = [
        "idle",
        "--url",
        &server.url,
        "--conns",
        "300",
        "--rooms",
        "10",
        "--rooms-per-conn",
        "2",
        "--duration",
        "1s",
        "--server-pid",
        &pid,
        "--json",
        "-q",
    ];
    let (out, _) = loadgen(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = json_line(&out);
    assert_eq!(json["latency_samples"], 300);
    assert!(
        json["server_rss_after_kib"].as_u64().unwrap() >= json["server_rss_before_kib"].as_u64().unwrap()
    );
    assert!(json["server_rss_per_conn_bytes"].is_u64(), "{json}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("server RSS per connection:"));
}
