//! Servers the network tests run the load generator against, each killed (by its own process
//! handle) when its guard drops: the `roomcast` binary (built once with cargo), the Node reference
//! peer (`benches/peers/node`, installed once with `npm ci`) and the deliberately faulty Node peer.
#![allow(dead_code)]
// Test support: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// A running server; killed and reaped on drop.
pub struct Running {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Running {
    /// Its process id (for `idle --server-pid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now (the guard then only reaps).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Starts `command` and waits (up to 20 s) for a line containing `listening on <host>:<port>` on
/// stdout or stderr.
fn start(mut command: Command) -> Running {
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let (tx, rx) = mpsc::channel();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("  [server] {line}");
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut port = None;
    while port.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                port = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|addr| addr.split_whitespace().next())
                    .and_then(|addr| addr.rsplit(':').next())
                    .map(str::to_string);
            }
            Err(_) if !matches!(child.try_wait(), Ok(None)) => break,
            Err(_) => {}
        }
    }
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{command:?} did not start listening within 20 s");
    };
    Running { child, url: format!("http://127.0.0.1:{port}") }
}

/// The `roomcast` binary next to this test's target directory, built once per test process.
pub fn roomcast_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // This test binary lives in <target>/<profile dir>/deps/: build roomcast into the same place.
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "roomcast-server", "--bin", "roomcast", "--profile", profile])
                .current_dir(workspace())
                .status()
                .expect("running cargo build for roomcast");
            assert!(status.success(), "building roomcast failed");
            let binary = profile_dir.join("roomcast");
            assert!(binary.exists(), "no roomcast binary at {}", binary.display());
            binary
        })
        .clone()
}

/// Roomcast with the built-in app on a free loopback port, `shards` shards.
pub fn roomcast(shards: u32) -> Running {
    let mut command = Command::new(roomcast_binary());
    command.args(["--host", "127.0.0.1", "--port", "0", "--shards", &shards.to_string()]);
    start(command)
}

/// The Node peer's directory, with its dependencies installed once per test process (`npm ci`).
pub fn node_peer_dir() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = workspace().join("benches/peers/node");
            if !dir.join("node_modules/socket.io/package.json").exists() {
                let status = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .status()
                    .expect("running npm ci in benches/peers/node (are node and npm installed?)");
                assert!(status.success(), "npm ci in benches/peers/node failed");
            }
            dir
        })
        .clone()
}

/// The Node reference peer (socket.io 4.8, same app as Roomcast's built-in one).
pub fn node_peer() -> Running {
    let dir = node_peer_dir();
    let mut command = Command::new("node");
    command.arg(dir.join("server.js")).arg("0");
    start(command)
}

/// The faulty Node peer in `mode` (see `tests/fixtures/faulty_peer.js` for the modes).
pub fn faulty_peer(mode: &str) -> Running {
    let dir = node_peer_dir();
    let mut command = Command::new("node");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faulty_peer.js"))
        .arg(mode)
        .arg(dir);
    start(command)
}

/// Runs the load generator with `args`; returns its output and how long it took.
pub fn loadgen(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_roomcast-loadgen")).args(args).output().unwrap();
    eprintln!("  [loadgen {}] {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    (out, started.elapsed())
}

/// The JSON summary line of a `--json` run's stdout.
pub fn json_line(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON line in:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}
