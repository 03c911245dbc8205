#![allow(dead_code)] // each test file uses part of it
//! A private `redis-server` per test: on a free loopback port, no persistence, killed (by its pid) when
//! dropped. `redis-cli` inspects it (`PUBSUB NUMSUB`) and publishes raw messages.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a redis-server may take to accept connections.
const START_PATIENCE: Duration = Duration::from_secs(10);

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a port the kernel picks.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { port, child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: every connection drops, nothing is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after a kill) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed");
        self.child = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli -p <port> <args…>` and returns its output lines.
    pub fn cli(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// `PUBSUB NUMSUB <channel>`: how many connections subscribe to it (the adapters' server count).
    pub fn numsub(&self, channel: &str) -> u64 {
        self.cli(&["PUBSUB", "NUMSUB", channel]).get(1).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    /// Waits until `n` servers subscribe to the request channel of `/`.
    pub fn wait_for_servers(&self, n: u64) {
        let deadline = Instant::now() + START_PATIENCE;
        while self.numsub("socket.io-request#/#") != n {
            assert!(Instant::now() < deadline, "never saw {n} servers on redis {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
