//! The polling transports end to end against Roomcast (2 shards, so requests and upgrades cross
//! shards): `verify` over `polling` and `polling-upgrade` finds nothing wrong and counts exactly what
//! it counts over WebSocket for the same seed; the other scenarios run over them (fan-out in worker
//! processes); a polling handshake answered with an error fails at once with that error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use servers::{json_line, loadgen, roomcast};

const VERIFY: &[&str] = &[
    "verify",
    "--conns",
    "150",
    "--rooms",
    "8",
    "--rooms-per-conn",
    "3",
    "--publishers",
    "4",
    "--rate",
    "20",
    "--duration",
    "1500ms",
    "--seed",
    "11",
    "--json",
    "--quiet",
];

#[test]
fn verify_over_polling_and_polling_upgrade_counts_what_websocket_counts_with_no_violations() {
    // One server per run (rooms are shared by name), the runs in parallel.
    let runs: Vec<_> = ["websocket", "polling", "polling-upgrade"]
        .map(|transport| {
            std::thread::spawn(move || {
                let server = roomcast(2);
                let url = server.url.clone();
                let mut args = VERIFY.to_vec();
                args.extend(["--url", &url, "--transport", transport]);
                let (out, _) = loadgen(&args);
                (transport, out)
            })
        })
        .into_iter()
        .map(|run| run.join().unwrap())
        .collect();
    let mut counts = Vec::new();
    for (transport, out) in &runs {
        assert!(out.status.success(), "{transport}: {}", String::from_utf8_lossy(&out.stderr));
        let json = json_line(out);
        assert_eq!(json["transport"], *transport);
        assert_eq!(json["violations"], 0, "{transport}: {json}");
        assert_eq!(json["deliveries_received"], json["deliveries_expected"], "{transport}");
        counts.push(
            ["messages_sent", "deliveries_expected", "deliveries_received", "connections"]
                .map(|key| json[key].as_u64().unwrap()),
        );
    }
    // 4 publishers × 20/s × 1.5 s; the audiences follow from the seed alone, whatever the transport.
    assert_eq!(counts[0][0], 120);
    assert!(counts[0][1] > 1_000, "the run must deliver something: {counts:?}");
    assert_eq!(counts[1], counts[0], "polling differs from websocket");
    assert_eq!(counts[2], counts[0], "polling-upgrade differs from websocket");
    let polling_stdout = String::from_utf8_lossy(&runs[1].1.stdout);
    assert!(polling_stdout.contains("transport: polling (up to 2 TCP connections"), "{polling_stdout}");
}

#[test]
fn fanout_connect_and_idle_run_over_the_polling_transports() {
    let server = roomcast(2);
    let url = server.url.as_str();
    let fanout = [
        "fanout",
        "--url",
        url,
        "--transport",
        "polling",
        "--conns",
        "60",
        "--rooms",
        "4",
        "--publishers",
        "2",
        "--rate",
        "40",
        "--duration",
        "1s",
        "--conns-per-process",
        "40",
        "--json",
        "-q",
    ];
    let connect = [
        "connect",
        "--url",
        url,
        "--transport",
        "polling-upgrade",
        "--conns",
        "20",
        "--rate",
        "60",
        "--duration",
        "1s",
        "--json",
        "-q",
    ];
    let idle =
        ["idle", "--url", url, "--transport", "polling", "--conns", "50", "--duration", "1s", "--json", "-q"];
    std::thread::scope(|scope| {
        let runs = [&fanout[..], &connect[..], &idle[..]].map(|args| scope.spawn(move || loadgen(args).0));
        let [fanout, connect, idle] = runs.map(|run| run.join().unwrap());
        for out in [&fanout, &connect, &idle] {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let json = json_line(&fanout);
        assert_eq!(json["messages_sent"], 80, "2 publishers × 40/s × 1 s: {json}");
        assert_eq!(json["deliveries_received"], json["deliveries_expected"]);
        assert!(String::from_utf8_lossy(&fanout.stdout).contains("ran in 2 worker processes"));
        let json = json_line(&connect);
        assert_eq!(json["connections_opened"], 60);
        assert_eq!(json["connections_completed"], 60, "{json}");
        assert_eq!(json_line(&idle)["latency_samples"], 50);
    });
}

/// A server that answers every request on every connection with `response` and closes.
fn scripted_server(response: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

fn assert_fails_within(args: &[&str], says: &str, within: Duration) {
    let (out, took) = loadgen(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} must fail");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("roomcast-loadgen: error:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(error.contains(says), "{args:?}: expected {says:?} in {error}");
    assert!(took < within, "{args:?} took {took:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_polling_handshake_answered_with_an_error_fails_at_once_and_says_so() {
    let body = r#"{"code":4,"message":"Forbidden"}"#;
    let forbidden = scripted_server(format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    ));
    for (scenario, transport) in
        [("verify", "polling"), ("fanout", "polling-upgrade"), ("connect", "polling")]
    {
        let args = [
            scenario,
            "--url",
            &forbidden,
            "--transport",
            transport,
            "--conns",
            "5",
            "--duration",
            "1s",
            "-q",
        ];
        assert_fails_within(
            &args,
            r#"server refused: polling handshake answered HTTP 403 Forbidden: {"code":4,"message":"Forbidden"}"#,
            Duration::from_secs(5),
        );
    }
    let server = roomcast(1);
    let args =
        ["idle", "--url", &server.url, "--path", "/wrong/", "--transport", "polling", "--conns", "5", "-q"];
    assert_fails_within(&args, "server refused: polling handshake answered HTTP 404", Duration::from_secs(5));
    let garbage = scripted_server("SSH-2.0-OpenSSH_9.6\r\n\r\n".into());
    let args = ["idle", "--url", &garbage, "--transport", "polling-upgrade", "--conns", "5", "-q"];
    assert_fails_within(&args, "bad HTTP response: not an HTTP/1.x response", Duration::from_secs(5));
}
