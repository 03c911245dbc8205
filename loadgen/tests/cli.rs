//! The binary: every scenario refuses a wrong URL at once; `report` overlays runs from files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::SystemTime;

use roomcast_loadgen::latency::{Recorder, RunMicros};
use roomcast_loadgen::report::HlogWriter;

use common::{check_xml, histogram, summary};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roomcast-loadgen")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("loadgen-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_scenario_refuses_a_wrong_url_with_one_line_and_a_failure_status() {
    for scenario in ["fanout", "verify", "connect", "idle"] {
        for (url, says) in
            [("ftp://127.0.0.1:3000", "scheme"), ("http://127.0.0.1:99999", "port"), ("localhost", "http://")]
        {
            let out = loadgen(&[scenario, "--url", url, "--conns", "10"]);
            assert!(!out.status.success(), "{scenario} {url} must exit non-zero");
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with("roomcast-loadgen: error: bad --url") && err.contains(says), "{err}");
        }
    }
}

#[test]
fn fanout_refuses_targets_that_cannot_exist_and_a_delivered_release_without_a_window() {
    for (args, says) in [
        (&["--rooms", "4", "--to-rooms", "4", "--except-rooms", "1"][..], "at most --rooms (4)"),
        (&["--to-rooms", "0"][..], "--to-rooms (0) must be at least 1"),
        (&["--window", "4", "--release", "delivered", "--release-fraction", "1.5"][..], "--release-fraction"),
        (&["--release", "delivered"][..], "--window"),
    ] {
        let mut all = vec!["fanout", "--url", "http://127.0.0.1:9", "--conns", "10"];
        all.extend(args);
        let out = loadgen(&all);
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("cannot connect"), "refused before connecting: {err}");
    }
}

#[test]
fn every_scenario_documents_the_common_flags() {
    for scenario in ["fanout", "verify", "connect", "idle"] {
        let out = loadgen(&[scenario, "--help"]);
        assert!(out.status.success());
        let help = text(&out.stdout);
        for flag in [
            "--url",
            "--conns",
            "--rooms",
            "--duration",
            "--seed",
            "--json",
            "--hlog <FILE>",
            "--plot <FILE>",
            "--ramp-rate",
            "--source-addrs",
            "--conns-per-process",
            "--transport <TRANSPORT>",
            "--app-config <FILE>",
        ] {
            assert!(help.contains(flag), "{scenario} --help lacks {flag}:\n{help}");
        }
    }
    let fanout = text(&loadgen(&["fanout", "--help"]).stdout);
    for flag in ["--window <N>", "--release <RELEASE>", "--to-rooms", "--except-rooms", "--publishers-join"] {
        assert!(fanout.contains(flag), "fanout --help lacks {flag}");
    }
    assert!(text(&loadgen(&["idle", "--help"]).stdout).contains("--server-pid"));
    assert!(!text(&loadgen(&["--help"]).stdout).contains("worker"), "the worker subcommand is hidden");
    let bad = loadgen(&["fanout", "--rate", "10", "--window", "4"]);
    assert!(!bad.status.success(), "rate and window are exclusive");
    assert!(!loadgen(&["idle", "--duration", "soon"]).status.success());
    let help = text(&loadgen(&["verify", "--help"]).stdout);
    for value in ["- websocket:", "- polling:", "- polling-upgrade:", "[default: websocket]"] {
        assert!(help.contains(value), "verify --help lacks {value}:\n{help}");
    }
    // Two sockets per connection over polling: half the connections fit in a process.
    let bad = loadgen(&["idle", "--transport", "polling", "--conns-per-process", "10000"]);
    assert!(
        text(&bad.stderr).contains("--conns-per-process must be 1 to 9500 over polling"),
        "{}",
        text(&bad.stderr)
    );
    assert!(!loadgen(&["idle", "--transport", "carrier-pigeon"]).status.success());
}

#[test]
fn report_overlays_json_lines_and_interval_logs() {
    let dir = scratch_dir("report");
    let jsonl = dir.join("runs.jsonl");
    let lines = [
        summary("roomcast", &histogram(800, 12_000, 50_000), 6).to_json_line().unwrap(),
        summary("node", &histogram(9_000, 480_000, 50_000), 29).to_json_line().unwrap(),
    ];
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();

    let hlog = dir.join("worker.hlog");
    let mut writer = HlogWriter::begin(Vec::new(), SystemTime::now(), "worker").unwrap();
    let mut recorder = Recorder::new(RunMicros::ZERO);
    for i in 0..1_000 {
        recorder.record_micros(2_000 + i);
    }
    writer.append(&recorder.rotate(RunMicros::from_millis(1_000)), None).unwrap();
    std::fs::write(&hlog, writer.finish().unwrap()).unwrap();

    let svg = dir.join("compare.svg");
    let out = loadgen(&[
        "report",
        jsonl.to_str().unwrap(),
        &format!("uws={}", hlog.display()),
        "--plot",
        svg.to_str().unwrap(),
        "--title",
        "Roomcast vs Node",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("label"), "{table}");
    assert!(rows[1].starts_with("roomcast ") && rows[2].starts_with("node ") && rows[3].starts_with("uws "));
    assert!(rows[4].starts_with("warning: node: load generator saturated"), "{table}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    check_xml(&plot).unwrap();
    assert_eq!(plot.matches("<path class=\"series\"").count(), 3);
    assert!(plot.contains(">Roomcast vs Node<"));

    let merged = loadgen(&["report", "--merge", "all", jsonl.to_str().unwrap(), hlog.to_str().unwrap()]);
    let table = text(&merged.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("all ") && table.contains(" 101000 "), "{table}");

    let missing = loadgen(&["report", dir.join("nope.hlog").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("nope.hlog"));
}
