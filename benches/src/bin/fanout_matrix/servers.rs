//! The servers under test: how to start each one, wait until it listens, read its CPU time and memory
//! from `/proc`, and stop it.
//!
//! Every server runs as one process the harness starts itself (no shell, no npm wrapper), so the pid it
//! holds is the server's, and `/proc/<pid>/stat` counts all of its threads.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The four servers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Roomcast,
    Node,
    Socketioxide,
    Ceiling,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Roomcast, Kind::Node, Kind::Socketioxide, Kind::Ceiling];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Roomcast => "roomcast",
            Kind::Node => "node",
            Kind::Socketioxide => "socketioxide",
            Kind::Ceiling => "ceiling",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The workspace root (for `benches/peers/node/server.js`).
    pub root: PathBuf,
    /// `target/release` of the workspace: `roomcast`, `roomcast-loadgen`, `ceiling`.
    pub release: PathBuf,
    /// The socketioxide peer's binary.
    pub socketioxide: PathBuf,
}

/// A running server. Dropping it kills the process (by pid) if [`Server::stop`] was not called.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub pid: u32,
}

/// Starts `kind` on 127.0.0.1:`port` with `extra` flags (Roomcast and the ceiling only) and waits up to
/// 30 s for its "listening" line. Its output goes to `log`.
pub fn start(
    kind: Kind,
    programs: &Programs,
    port: u16,
    extra: &[String],
    log: &Path,
) -> anyhow::Result<Server> {
    let port_arg = port.to_string();
    let mut command = match kind {
        Kind::Roomcast => {
            let mut c = Command::new(programs.release.join("roomcast"));
            c.args(["--host", "127.0.0.1", "--port", &port_arg, "--drain-timeout", "500"]);
            c
        }
        Kind::Node => {
            let mut c = Command::new("node");
            c.arg(programs.root.join("benches/peers/node/server.js")).arg(&port_arg);
            c
        }
        Kind::Socketioxide => {
            let mut c = Command::new(&programs.socketioxide);
            c.arg(&port_arg);
            c
        }
        Kind::Ceiling => {
            let mut c = Command::new(programs.release.join("ceiling"));
            c.args(["--port", &port_arg]);
            c
        }
    };
    command.args(extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| format!("starting {}", kind.name()))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<String>();
    let mut log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let log_tx = tx.clone();
    // Both streams go to the log; lines also go to `rx` so the start-up line can be seen.
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = log_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    drop(log_tx);
    let server = Server { child, pid };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                use std::io::Write;
                let _ = writeln!(log_file, "{line}");
                if line.contains("listening on") {
                    break;
                }
            }
            Err(_) => bail!("{} did not start listening within 30 s (see {})", kind.name(), log.display()),
        }
    }
    // Keep draining the server's output into the log so its pipes never fill.
    std::thread::spawn(move || {
        use std::io::Write;
        for line in rx {
            let _ = writeln!(log_file, "{line}");
        }
    });
    Ok(server)
}

impl Server {
    /// Sends SIGTERM, waits up to 3 s, then SIGKILL; always reaps the process.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill(2) with a pid this harness spawned and has not reaped yet, so it cannot
            // name another process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// User + system CPU seconds of process `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after "pid (comm) ".
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

/// CPU seconds the whole machine has been busy since boot, every process and the kernel (the `cpu`
/// line of `/proc/stat`: everything but idle and iowait).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<f64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = [0usize, 1, 2, 5, 6, 7].iter().filter_map(|i| fields.get(*i)).sum();
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| busy / ticks as f64)
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
