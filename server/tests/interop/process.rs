//! Child processes of the interop tests: a line-pumped process guard that is killed on drop, and client
//! scripts run against a deadline whose stdout lines are JSON facts.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{interop_dir, node_modules_ready, python_ready, START_PATIENCE};

/// Longest a client script may run before it is killed and its test fails.
pub const SCRIPT_PATIENCE: Duration = Duration::from_secs(30);

/// A child process whose stdout and stderr lines are read by two threads: each line is sent on a
/// channel and appended to a shared log. Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `command` with stdin closed and both output streams pumped.
    pub fn spawn(name: &str, mut command: Command) -> Proc {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = pump_lines(child.stdout.take().unwrap(), log.clone(), "");
        let stderr = pump_lines(child.stderr.take().unwrap(), log.clone(), "! ");
        Proc { name: name.to_owned(), child, stdout, stderr, log }
    }

    /// Everything the process printed so far, stderr lines prefixed with `! `.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the process exits or `deadline` passes (then kills it and returns `None`).
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL (if still running) and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Forwards each line of `stream` to the returned channel and appends it (after `prefix`) to `log`.
fn pump_lines(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    prefix: &'static str,
) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Ok(mut log) = log.lock() {
                log.push_str(prefix);
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(line);
        }
    });
    rx
}

/// Runs `command` to completion within `patience`; panics with its output if it fails.
pub fn run_to_completion(what: &str, command: Command, patience: Duration) {
    let mut proc = Proc::spawn(what, command);
    match proc.wait_until(Instant::now() + patience) {
        Some(status) if status.success() => {}
        Some(status) => panic!("{what} failed ({status}):\n{}", proc.log()),
        None => panic!("{what} did not finish within {patience:?}:\n{}", proc.log()),
    }
}

// ------------------------------------------------------------------ client scripts

/// A running client script. Its stdout lines are JSON facts; it must exit 0 within
/// [`SCRIPT_PATIENCE`] of its start. Killed on drop.
pub struct Script {
    proc: Proc,
    deadline: Instant,
}

impl Script {
    /// `node <script> <args…>` in server/tests/interop/.
    pub fn node(script: &str, args: &[&str]) -> Script {
        node_modules_ready();
        let mut node = Command::new("node");
        node.arg(script).args(args).current_dir(interop_dir());
        Script { proc: Proc::spawn(script, node), deadline: Instant::now() + SCRIPT_PATIENCE }
    }

    /// `<venv python> python_client.py <args…>`, or `None` where python3 is missing.
    pub fn python(args: &[&str]) -> Option<Script> {
        let python = python_ready()?;
        let mut command = Command::new(python);
        command.arg("python_client.py").args(args).current_dir(interop_dir());
        Some(Script {
            proc: Proc::spawn("python_client.py", command),
            deadline: Instant::now() + SCRIPT_PATIENCE,
        })
    }

    /// The next fact the script prints. Panics (with the script's output) if it ends or the deadline
    /// passes first.
    pub fn next_fact(&mut self) -> Value {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.proc.stdout.recv_timeout(left) {
            Ok(line) => parse_fact(&self.proc, &line),
            Err(e) => {
                self.proc.kill();
                panic!("{}: no further output ({e}):\n{}", self.proc.name, self.proc.log())
            }
        }
    }

    /// Waits for the script to exit 0 and returns the facts it printed that were not read yet.
    pub fn finish(mut self) -> Vec<Value> {
        let status = self.proc.wait_until(self.deadline);
        let name = &self.proc.name;
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!("{name} failed ({status}):\n{}", self.proc.log()),
            None => panic!("{name} was killed after {SCRIPT_PATIENCE:?}:\n{}", self.proc.log()),
        }
        // The pump thread sends every line before the pipe closes; wait for the close.
        let mut facts = Vec::new();
        while let Ok(line) = self.proc.stdout.recv_timeout(START_PATIENCE) {
            facts.push(parse_fact(&self.proc, &line));
        }
        facts
    }
}

fn parse_fact(proc: &Proc, line: &str) -> Value {
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{}: output line is not JSON ({e}): {line}\n{}", proc.name, proc.log()))
}

/// Runs `node <script> <args…>` to completion and returns its facts.
pub fn run_node(script: &str, args: &[&str]) -> Vec<Value> {
    Script::node(script, args).finish()
}
