//! Plumbing of the interop tests: installing the real clients (npm, a Python venv) and starting servers
//! (the `roomcast` binary, the reference socket.io server, an in-process echo server); the child
//! processes and client scripts are in `process.rs`.
//!
//! Every wait is bounded: a script is killed after `SCRIPT_PATIENCE`, a server that does not print
//! its address within [`START_PATIENCE`] fails the test, and every child process is killed when its
//! guard drops, also when the test panics (the server's log is then printed to help the reader).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use roomcast_server::api::{RunningServer, Server};
use roomcast_server::config::{Config, IoChoice};
use serde_json::Value;

use crate::process::{run_to_completion, Proc};

/// Longest a server may take to print the address it listens on.
pub const START_PATIENCE: Duration = Duration::from_secs(10);
/// Longest `npm ci` or `pip install` may take (first run only, when the registry is slow).
const INSTALL_PATIENCE: Duration = Duration::from_secs(300);

/// `server/tests/interop/`: the scripts, package.json and requirements.txt.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

/// An I/O backend to start a server with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    Uring,
    Epoll,
}

impl Io {
    /// The value of `--io`, also the word the server's start line names its backend with.
    pub fn flag(self) -> &'static str {
        match self {
            Io::Uring => "uring",
            Io::Epoll => "epoll",
        }
    }

    /// Whether this backend can run here; io_uring may be refused (e.g. by a container's seccomp).
    pub fn usable(self) -> bool {
        match self {
            Io::Epoll => true,
            Io::Uring => match roomcast_server::driver::probe_io_uring() {
                Ok(()) => true,
                Err(why) => {
                    eprintln!("io_uring unavailable, run skipped: {why}");
                    false
                }
            },
        }
    }
}
// ------------------------------------------------------------------ client installs

/// Installs `server/tests/interop/node_modules` from package-lock.json with `npm ci`, once per test
/// process, unless npm's own record of the installed tree (`node_modules/.package-lock.json`) already
/// lists exactly the locked packages.
pub fn node_modules_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = interop_dir();
        if installed_tree_matches_lock(&dir) {
            return;
        }
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir);
        run_to_completion("npm ci", npm, INSTALL_PATIENCE);
        assert!(installed_tree_matches_lock(&dir), "npm ci left a tree that differs from package-lock.json");
    });
}

fn installed_tree_matches_lock(dir: &Path) -> bool {
    let packages = |path: PathBuf| -> Option<Value> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut packages = serde_json::from_str::<Value>(&text).ok()?.get_mut("packages")?.take();
        packages.as_object_mut()?.remove(""); // the root project, which only the lockfile lists
        Some(packages)
    };
    match (packages(dir.join("package-lock.json")), packages(dir.join("node_modules/.package-lock.json"))) {
        (Some(locked), Some(installed)) => locked == installed,
        _ => false,
    }
}

/// The Python of a venv holding requirements.txt (under the target dir), created once per test process
/// and reused while requirements.txt is unchanged. `None`, with a note, if there is no `python3`.
pub fn python_ready() -> Option<&'static Path> {
    static READY: OnceLock<Option<PathBuf>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
            if !found {
                eprintln!("python3 not found: the python-socketio scenario is skipped");
                return None;
            }
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
            let python = venv.join("bin").join("python");
            let requirements = std::fs::read_to_string(interop_dir().join("requirements.txt")).unwrap();
            let stamp = venv.join("requirements.installed");
            if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == requirements) {
                return Some(python);
            }
            let mut create = Command::new("python3");
            create.args(["-m", "venv", "--clear"]).arg(&venv);
            run_to_completion("python3 -m venv", create, INSTALL_PATIENCE);
            let mut pip = Command::new(&python);
            pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(interop_dir().join("requirements.txt"));
            run_to_completion("pip install -r requirements.txt", pip, INSTALL_PATIENCE);
            std::fs::write(&stamp, requirements).unwrap();
            Some(python)
        })
        .as_deref()
}

// ------------------------------------------------------------------ servers

/// The `roomcast` binary (the built-in push app) on 127.0.0.1. Killed on drop; its log is printed if
/// the test is failing.
pub struct Roomcast {
    proc: Option<Proc>,
    io: Io,
    shards: usize,
    port: u16,
}

impl Roomcast {
    /// Starts on a port the kernel picks (read back from the server's start line).
    pub fn start(io: Io, shards: usize) -> Roomcast {
        let mut server = Roomcast { proc: None, io, shards, port: 0 };
        server.restart();
        server
    }

    /// `http://127.0.0.1:<port>`, what the client scripts take.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: clients see their connections drop, nothing else).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Starts the server again with the same options, on the same port once it has one. A port still
    /// held by the killed process is retried for up to [`START_PATIENCE`].
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            let mut command = Command::new(env!("CARGO_BIN_EXE_roomcast"));
            command.args(["--host", "127.0.0.1", "--port", &self.port.to_string()]).args([
                "--shards",
                &self.shards.to_string(),
                "--io",
                self.io.flag(),
            ]);
            let mut proc = Proc::spawn("roomcast", command);
            match wait_for_start_line(&mut proc, deadline) {
                Ok(line) => {
                    let want = format!("{} shard(s), {} backend", self.shards, self.io.flag());
                    assert!(line.contains(&want), "roomcast started otherwise than asked ({want}): {line}");
                    let port = line
                        .split("127.0.0.1:")
                        .nth(1)
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_else(|| panic!("no port in roomcast's start line: {line}"));
                    assert!(self.port == 0 || self.port == port, "restarted on {port}, not {}", self.port);
                    self.port = port;
                    self.proc = Some(proc);
                    return;
                }
                Err(why) if Instant::now() < deadline && self.port != 0 => {
                    eprintln!("roomcast did not start ({why}); retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => panic!("roomcast did not start: {why}\n{}", proc.log()),
            }
        }
    }
}

/// Reads roomcast's stderr until its `listening on …` line; `Err` if it exits or `deadline` passes.
fn wait_for_start_line(proc: &mut Proc, deadline: Instant) -> Result<String, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match proc.stderr.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(line) if line.contains("listening on") => return Ok(line),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(10)),
        }
        if let Some(status) = proc.child.try_wait().unwrap() {
            return Err(format!("exited with {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("no start line within {START_PATIENCE:?}"));
        }
    }
}

impl Drop for Roomcast {
    fn drop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
            if std::thread::panicking() {
                eprintln!("--- roomcast log ---\n{}", proc.log());
            }
        }
    }
}

/// The reference: socket.io 4.8 on Node running the same push app and echo (reference-server.mjs).
pub struct Reference {
    proc: Proc,
    port: u16,
}

impl Reference {
    /// Starts `node reference-server.mjs` on a port the kernel picks.
    pub fn start() -> Reference {
        node_modules_ready();
        let mut node = Command::new("node");
        node.arg("reference-server.mjs").current_dir(interop_dir());
        let proc = Proc::spawn("reference server", node);
        let line = proc
            .stdout
            .recv_timeout(START_PATIENCE)
            .unwrap_or_else(|e| panic!("reference server did not start ({e}):\n{}", proc.log()));
        let fact: Value = serde_json::from_str(&line).unwrap();
        let port = fact["listening"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap();
        Reference { proc, port }
    }

    /// `http://127.0.0.1:<port>`, what the client scripts take.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- reference server log ---\n{}", self.proc.log());
        }
    }
}

/// An in-process roomcast server with the conformance echo on `/`: `message` → `message-back` with the
/// same arguments, `message-with-ack` acked with its arguments. The push app's `publish` carries only
/// JSON, so binary attachments are tested through this echo. Shut down on drop.
pub struct EchoServer {
    running: Option<RunningServer>,
    port: u16,
}

impl EchoServer {
    /// Starts the echo on 127.0.0.1, a port the kernel picks, with `shards` shards on `io`.
    pub fn start(io: Io, shards: usize) -> EchoServer {
        let mut server = Server::new();
        server
            .namespace("/")
            .on("message", |socket, event| socket.emit("message-back", &event.to_args()))
            .on("message-with-ack", |socket, event| socket.ack(event.ack_id(), &event.to_args()));
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            shards,
            io: match io {
                Io::Uring => IoChoice::Uring,
                Io::Epoll => IoChoice::Epoll,
            },
            drain_timeout: Duration::from_millis(500),
            ..Config::default()
        };
        let running = server.start(config).unwrap();
        let port = running.local_addr().port();
        EchoServer { running: Some(running), port }
    }

    /// `http://127.0.0.1:<port>`, what the client scripts take.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown();
        }
    }
}
