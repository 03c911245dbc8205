//! Harness of the server integration tests: a real server on a loopback port, blocking test clients,
//! a macro running each test body on both I/O backends, and a thread-safe log handlers write into.
//! Every wait is bounded by [`PATIENCE`], so a broken server fails a test instead of hanging it.

#![allow(dead_code)] // each test file uses part of the harness

pub mod client;
pub mod http;
pub mod ws;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test file uses part of the harness
pub use client::{Client, Ending, Message, Packet, PATIENCE};
use roomcast_server::api::{Ctx, RunningServer, Server, ServerHandle};
use roomcast_server::config::{Config, IoChoice};

/// Runs each test body `fn name(io: IoChoice)` once per backend. The io_uring run is skipped, with a
/// note, only where the probe says io_uring cannot run here (e.g. under Docker's seccomp profile).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                if let Err(reason) = roomcast_server::driver::probe_io_uring() {
                    eprintln!("io_uring unavailable, run skipped: {reason}");
                    return;
                }
                super::$name(roomcast_server::config::IoChoice::Uring);
            }

            #[test]
            fn epoll() {
                super::$name(roomcast_server::config::IoChoice::Epoll);
            }
        }
    )*};
}

/// A test configuration: loopback, port 0, the given backend and shard count, a short drain time.
pub fn config(io: IoChoice, shards: usize) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        shards,
        io,
        drain_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// A started server; shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shards: usize,
    running: Option<RunningServer>,
}

impl TestServer {
    pub fn start(server: Server, config: Config) -> TestServer {
        let shards = config.shards;
        let running = server.start(config).unwrap();
        TestServer { addr: running.local_addr(), shards, running: Some(running) }
    }

    pub fn handle(&self) -> ServerHandle {
        self.running.as_ref().unwrap().handle()
    }

    /// Shuts down and waits for the shard threads; returns how long that took.
    pub fn shutdown(mut self) -> Duration {
        let started = Instant::now();
        self.running.take().unwrap().shutdown().unwrap();
        started.elapsed()
    }

    /// Runs `f` on every shard's thread (`ServerHandle::on_each_shard`) and waits until all have run.
    pub fn on_each_shard(&self, f: impl Fn(&mut Ctx<'_>) + Send + Sync + 'static) {
        let (tx, rx) = mpsc::channel();
        self.handle().on_each_shard(move |cx| {
            f(cx);
            let _ = tx.send(());
        });
        for _ in 0..self.shards {
            rx.recv_timeout(PATIENCE).expect("a shard did not run the closure");
        }
    }

    /// The socket ids of namespace `nsp` on each shard, indexed by shard number.
    pub fn sockets_by_shard(&self, nsp: &str) -> Vec<Vec<String>> {
        let (tx, rx) = mpsc::channel();
        let nsp = nsp.to_owned();
        self.handle().on_each_shard(move |cx| {
            let ids = cx.of(&nsp).map(|op| op.local_socket_ids()).unwrap_or_default();
            let _ = tx.send((cx.shard().0 as usize, ids));
        });
        let mut by_shard = vec![Vec::new(); self.shards];
        for _ in 0..self.shards {
            let (shard, ids) = rx.recv_timeout(PATIENCE).expect("a shard did not answer");
            by_shard[shard] = ids;
        }
        by_shard
    }

    /// The shard holding socket `sid` of namespace `nsp`.
    pub fn shard_of(&self, nsp: &str, sid: &str) -> usize {
        let by_shard = self.sockets_by_shard(nsp);
        by_shard.iter().position(|ids| ids.iter().any(|id| id == sid)).expect("socket on no shard")
    }

    /// `n` clients joined to `/`, at least one on every shard (the kernel spreads connections over the
    /// shards' listeners; this connects more until the spread covers all). Returns (client, sid, shard).
    pub fn connect_spread(&self, n: usize) -> Vec<(Client, String, usize)> {
        assert!(n >= self.shards, "cannot cover {} shards with {n} clients", self.shards);
        let mut clients: Vec<(Client, String, usize)> = Vec::new();
        for _ in 0..n + 100 {
            let (client, sid) = Client::connect(self.addr);
            let shard = self.shard_of("/", &sid);
            let on =
                |s: usize, clients: &[(Client, String, usize)]| clients.iter().filter(|c| c.2 == s).count();
            if clients.len() < n {
                clients.push((client, sid, shard));
            } else if on(shard, &clients) == 0 {
                let crowded = clients.iter().position(|c| on(c.2, &clients) > 1).unwrap();
                clients.remove(crowded);
                clients.push((client, sid, shard));
            }
            if clients.len() == n && (0..self.shards).all(|s| on(s, &clients) > 0) {
                return clients;
            }
        }
        panic!("the kernel never spread {n} connections over {} shards", self.shards);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown();
        }
    }
}

/// Polls `check` until it holds; fails the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines written by handlers on shard threads, read by the test thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until some line satisfies `want`; returns every line so far.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> Vec<String> {
        wait_until(what, || self.lines().iter().any(|l| want(l)));
        self.lines()
    }
}
