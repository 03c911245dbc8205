//! The `roomcast` binary as an operator runs it: SIGTERM and SIGINT make it close every client with a
//! close frame and exit 0 within the drain time; nothing hangs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Client, Ending};

/// Starts the binary on a free port and returns it with its address (read from its start line).
fn start(io: &str) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["--host", "127.0.0.1", "--port", "0", "--shards", "2", "--io", io, "--drain-timeout", "3000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("roomcast exited before listening").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn a_signal_closes_clients_and_exits_cleanly(io: &str, signal: i32) {
    let (mut child, addr) = start(io);
    let (mut client, _) = Client::connect(addr);
    let started = Instant::now();
    // SAFETY: kill(2) on our own child's pid with a standard signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let (ending, _) = client.wait_closed();
    assert!(matches!(ending, Ending::CloseFrame(_) | Ending::Eof), "client saw {ending:?}");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("roomcast did not exit within 10 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "roomcast exited with {status}");
}

#[test]
fn sigterm_on_epoll() {
    a_signal_closes_clients_and_exits_cleanly("epoll", libc::SIGTERM);
}

#[test]
fn sigint_on_uring() {
    if roomcast_server::driver::probe_io_uring().is_ok() {
        a_signal_closes_clients_and_exits_cleanly("uring", libc::SIGINT);
    }
}
