#![allow(dead_code)] // each test file uses part of it
//! Running a Node.js scenario of the Redis cluster tests: `npm ci` once, then `node <script>`, whose
//! stdout is one JSON fact per line, each with a `step` name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn cluster_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("cluster")
}

/// `npm ci` in tests/cluster once, unless the locked packages are installed.
fn node_modules_ready() {
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

/// Runs `node <script> <roomcast> <redis>` in tests/cluster; returns its facts by step name.
pub fn run_scenario(script: &str, roomcast: &str, redis: &str) -> HashMap<String, Value> {
    node_modules_ready();
    let out = Command::new("timeout")
        .args(["40", "node", script, roomcast, redis])
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
