#![allow(dead_code)] // each test file uses part of it
//! A private `redis-server` per test: on a free loopback port, no persistence, killed (by its pid) when
//! dropped. `redis-cli` inspects it (`PUBSUB NUMSUB`) and publishes raw messages. Also the adapter
//! protocol a test's nodes speak ([`Protocol`]), to run one test body in both.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a redis-server may take to accept connections.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// Ports tried before giving up when each was taken before redis-server could bind it.
const START_ATTEMPTS: usize = 5;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a port the kernel picks. The port is free when picked but not reserved:
    /// anything on the machine (another test's redis-server, listener or outgoing connection) may take
    /// it before redis-server binds it, which then exits. A test must never go on with someone else's
    /// server there (it would share its channels, and lose its Redis when that test ends), so the port
    /// is only kept once the server answering on it is this child; otherwise another port is tried.
    pub fn start() -> RedisServer {
        for _ in 0..START_ATTEMPTS {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if let Some(server) = RedisServer::on_port(port) {
                return server;
            }
            eprintln!("port {port} was taken before redis-server could bind it; trying another");
        }
        panic!("no free port kept long enough for redis-server in {START_ATTEMPTS} attempts");
    }

    /// Starts `redis-server` on `port`: `None` if the server answering there is not this child (its
    /// bind failed because the port is taken).
    pub fn on_port(port: u16) -> Option<RedisServer> {
        let mut server = RedisServer { port, child: None };
        server.spawn().then_some(server)
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

    /// Starts it again on the same port (after a kill) and waits until it accepts connections. Fails
    /// the test if the port was taken meanwhile: the nodes' URL names it, so no other port will do.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "port {} was taken while redis-server was down", self.port);
    }

    /// The process id of this server's child, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process id the server answering on this port reports (`None` if none answers as Redis).
    pub fn serving_pid(&self) -> Option<u32> {
        server_pid(self.port)
    }

    /// Spawns redis-server on `self.port` and waits until it serves there: `true` once the server
    /// answering on the port reports this child's process id, `false` if the child exited first.
    fn spawn(&mut self) -> bool {
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
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().ok().flatten().is_some() {
                    self.child = None;
                    return false;
                }
            }
            if server_pid(self.port) == Some(pid) {
                return true;
            }
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

    /// `PUBSUB SHARDNUMSUB <channel>`: how many connections subscribe to a sharded channel (the sharded
    /// adapter's server count, for a namespace's main channel).
    pub fn shardnumsub(&self, channel: &str) -> u64 {
        self.cli(&["PUBSUB", "SHARDNUMSUB", channel]).get(1).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
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

/// The `process_id` the server listening on `port` reports to `INFO server`: `None` if nothing listens,
/// or what listens does not answer as Redis within a second.
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        if let Some(rest) = text.split("process_id:").nth(1) {
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid.trim().parse().ok();
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
        if reply.len() > 64 * 1024 {
            return None;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which adapter protocol the nodes speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Classic,
    Sharded,
}

impl Protocol {
    /// The channel whose subscribers are the servers of `nsp`, as the adapter counts them (`PUBSUB
    /// NUMSUB` of the request channel, `PUBSUB SHARDNUMSUB` of the main channel).
    pub fn servers_channel(self, nsp: &str) -> String {
        match self {
            Protocol::Classic => format!("socket.io-request#{nsp}#"),
            Protocol::Sharded => format!("socket.io#{nsp}#"),
        }
    }

    pub fn servers(self, redis: &RedisServer, nsp: &str) -> u64 {
        match self {
            Protocol::Classic => redis.numsub(&self.servers_channel(nsp)),
            Protocol::Sharded => redis.shardnumsub(&self.servers_channel(nsp)),
        }
    }

    /// Waits until `n` servers follow `room` of `nsp`: in the sharded protocol, a one-room broadcast
    /// goes on the room's channel, which a node subscribes to shortly after one of its shards created
    /// the room (the classic adapter's pattern subscription covers every room at once).
    pub fn wait_for_room(self, redis: &RedisServer, nsp: &str, room: &str, n: u64) {
        let channel = format!("socket.io#{nsp}#{room}#");
        let deadline = Instant::now() + START_PATIENCE;
        while self == Protocol::Sharded && redis.shardnumsub(&channel) != n {
            assert!(Instant::now() < deadline, "never saw {n} server(s) following {channel}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` servers follow `nsp`.
    pub fn wait_for_servers(self, redis: &RedisServer, nsp: &str, n: u64) {
        let deadline = Instant::now() + START_PATIENCE;
        while self.servers(redis, nsp) != n {
            assert!(Instant::now() < deadline, "never saw {n} {self:?} server(s) of {nsp}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs each test body `fn name(io, protocol)` in both adapter protocols, each on both I/O backends.
#[macro_export]
macro_rules! in_both_protocols {
    ($($name:ident),* $(,)?) => {
        mod classic {
            use roomcast_server::config::IoChoice;
            $(fn $name(io: IoChoice) {
                super::$name(io, $crate::redis_server::Protocol::Classic)
            })*
            $crate::on_both_backends!($($name),*);
        }
        mod sharded {
            use roomcast_server::config::IoChoice;
            $(fn $name(io: IoChoice) {
                super::$name(io, $crate::redis_server::Protocol::Sharded)
            })*
            $crate::on_both_backends!($($name),*);
        }
    };
}
