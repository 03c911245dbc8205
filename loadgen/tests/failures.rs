//! Clean failures: an unreachable server, a refused handshake, a server that never answers, and one
//! that goes away mid-run each end the run within seconds with one clear line and a failure status.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod servers;

use std::net::TcpListener;
use std::time::Duration;

use servers::{loadgen, roomcast};

fn assert_fails(args: &[&str], says: &str, within: Duration) {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn an_unreachable_server_fails_fast_in_every_scenario() {
    let url = format!("http://127.0.0.1:{}", free_port());
    for scenario in ["fanout", "verify", "connect", "idle"] {
        let args = [scenario, "--url", &url, "--conns", "5", "--duration", "1s", "--quiet"];
        assert_fails(&args, "cannot connect: 127.0.0.1", Duration::from_secs(5));
    }
}

#[test]
fn a_refused_handshake_names_the_http_status() {
    let server = roomcast(1);
    let args =
        ["fanout", "--url", &server.url, "--path", "/wrong/", "--conns", "5", "--duration", "1s", "-q"];
    assert_fails(&args, "server refused: WebSocket handshake answered HTTP 404", Duration::from_secs(5));
    let namespace = format!("{}/nope", server.url);
    let args = ["idle", "--url", &namespace, "--conns", "5", "--duration", "1s", "-q"];
    assert_fails(&args, "CONNECT_ERROR for namespace /nope", Duration::from_secs(5));
}

#[test]
fn a_server_that_never_answers_times_out_instead_of_hanging() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let args =
        ["verify", "--url", &url, "--conns", "5", "--handshake-timeout", "1s", "--duration", "1s", "-q"];
    assert_fails(&args, "timed out: no reply", Duration::from_secs(5));
}

#[test]
fn a_server_that_goes_away_mid_run_ends_the_run() {
    let mut server = roomcast(1);
    let url = server.url.clone();
    let run = std::thread::spawn(move || {
        let args = ["fanout", "--url", &url, "--conns", "50", "--duration", "20s", "-q"];
        loadgen(&args)
    });
    std::thread::sleep(Duration::from_secs(2));
    server.kill();
    let (out, took) = run.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("roomcast-loadgen: error: server dropped a connection"), "{stderr}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}
