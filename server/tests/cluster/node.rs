#![allow(dead_code)] // each test file uses part of it
//! Running the Node.js peers of the Redis cluster tests (`tests/cluster/*.mjs`): installing their
//! locked packages once, then either a scenario run to its end whose JSON fact lines are returned by
//! step name ([`run_scenario`]), or a long-running one whose facts are read as they come
//! ([`NodeScenario`]). Every fact is one JSON object per stdout line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn cluster_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("cluster")
}

/// `npm ci` in tests/cluster once, unless the locked packages are installed.
pub fn node_modules_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = cluster_dir();
        let installed = |dir: &Path| {
            let read = |p: PathBuf| {
                std::fs::read_to_string(p).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok())
            };
            let locked = read(dir.join("package-lock.json")).map(|mut v| {
                v["packages"].as_object_mut().map(|p| p.remove(""));
                v["packages"].take()
            });
            let present = read(dir.join("node_modules/.package-lock.json")).map(|mut v| v["packages"].take());
            locked.is_some() && locked == present
        };
        if !installed(&dir) {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
    });
}

/// Runs `node <script> <args…>` in tests/cluster to its end (killed after 40 s); returns its facts by
/// their `step` name. Fails the test if the script fails.
pub fn run_scenario(script: &str, args: &[&str]) -> HashMap<String, Value> {
    node_modules_ready();
    let out = Command::new("timeout")
        .args(["40", "node", script])
        .args(args)
        .current_dir(cluster_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", out.status);
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .map(|fact| (fact["step"].as_str().unwrap().to_owned(), fact))
        .collect()
}

/// A Node.js scenario running beside the test: its stdout's JSON lines arrive on a channel; closing
/// its stdin (on drop) ends it, and it is killed (by its own handle) if it lingers.
pub struct NodeScenario {
    child: Child,
    stdin: Option<ChildStdin>,
    facts: Receiver<Value>,
}

impl NodeScenario {
    pub fn start(script: &str, args: &[&str]) -> NodeScenario {
        node_modules_ready();
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(cluster_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, facts) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let fact = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if tx.send(fact).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        NodeScenario { child, stdin, facts }
    }

    /// The next fact `want` accepts (earlier ones are dropped), within `patience`.
    pub fn fact(&self, patience: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let fact =
                self.facts.recv_timeout(left).unwrap_or_else(|_| panic!("no such fact within {patience:?}"));
            assert!(fact.get("error").is_none(), "the scenario failed: {fact}");
            if want(&fact) {
                return fact;
            }
        }
    }
}

impl Drop for NodeScenario {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
