//! `fanout-matrix`: the end-to-end fan-out benchmark of issue 7, in one command.
//!
//! ```sh
//! cargo run --release -p roomcast-benches --bin fanout-matrix -- [--quick] [--scenarios 1,2,3,5] [--servers roomcast,node]
//! ```
//!
//! It builds Roomcast, the load generator and the ceiling in release, installs the peers (`npm ci` for
//! Node, a release build of the socketioxide crate), then runs every selected case of the matrix
//! (`cases.rs`) with `roomcast-loadgen`, one server at a time, each case `--runs` times with a freshly
//! started server. It prints Markdown tables of absolute figures and ratios (Roomcast ÷ peer), writes
//! them between markers into `docs/BENCHMARKS.md` (not with `--quick` unless `--write-docs`), and
//! writes one latency plot per table into `docs/bench/`. Raw outputs (JSON lines, server and load
//! generator logs) go to `--out`. Method: `docs/BENCHMARKS.md`.

mod cases;
mod run;
mod servers;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;

use crate::cases::Sizes;
use crate::servers::{Kind, Programs};
use crate::table::Row;

#[derive(Debug, Parser)]
#[command(
    name = "fanout-matrix",
    about = "End-to-end fan-out benchmark: Roomcast against Node socket.io, socketioxide and a ceiling"
)]
struct Args {
    /// Small sizes and short durations: a smoke test of the harness (about 3 minutes).
    #[arg(long)]
    quick: bool,
    /// Scenarios of issue 7 to run (1–7).
    #[arg(long, value_delimiter = ',', default_values_t = [1u8, 2, 3, 4, 5, 6, 7])]
    scenarios: Vec<u8>,
    /// Servers to run: roomcast, node, socketioxide, ceiling.
    #[arg(long, value_delimiter = ',', default_value = "roomcast,node,socketioxide,ceiling")]
    servers: Vec<String>,
    /// Runs of each case (each with a fresh server).
    #[arg(long, default_value_t = 2)]
    runs: u32,
    /// Measured phase of each loaded run, seconds. [default: 8, --quick 2]
    #[arg(long)]
    duration: Option<f64>,
    /// Receivers of scenarios 1, 2, 6 and connections of 4. [default: 10000, --quick 1000]
    #[arg(long)]
    conns: Option<u32>,
    /// Connection counts of scenario 5. [default: 10000,19000, --quick 1000]
    #[arg(long, value_delimiter = ',')]
    idle_conns: Option<Vec<u32>>,
    /// Messages in flight per publisher in the flat-out scenarios.
    #[arg(long)]
    window: Option<u32>,
    /// What frees a window slot in the flat-out scenarios (1, 3, 4, 6): `delivered` (the message
    /// reached all its receivers, so in-flight messages are bounded end to end) or `ack` (the server
    /// acked the publish, which the apps do on queueing).
    #[arg(long, value_parser = ["delivered", "ack"], default_value = "delivered")]
    release: String,
    /// Load generator processes per `fanout` run (scenarios 1–4, 6, 7): more event loops, so that on a
    /// busy machine the client is less likely to be the starved side (it then releases windows on the
    /// deliveries its own process sees; docs/LOADGEN.md).
    #[arg(long, default_value_t = 1)]
    loadgen_procs: u32,
    /// First server port; each run gets the next one (no waiting for TIME_WAIT).
    #[arg(long, default_value_t = 3200)]
    base_port: u16,
    /// Directory for raw outputs. [default: bench-out/<UTC time>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip building and installing (use what is there).
    #[arg(long)]
    no_build: bool,
    /// Write docs/BENCHMARKS.md and docs/bench/ even with --quick.
    #[arg(long)]
    write_docs: bool,
    /// Never write docs/BENCHMARKS.md or docs/bench/.
    #[arg(long, conflicts_with = "write_docs")]
    no_docs: bool,
}

fn run_step(what: &str, command: &mut Command) -> anyhow::Result<()> {
    eprintln!("fanout-matrix: {what}");
    let status = command.status().with_context(|| format!("{what}: cannot start"))?;
    if !status.success() {
        bail!("{what}: failed ({status})");
    }
    Ok(())
}

fn build(programs: &Programs, servers: &[Kind]) -> anyhow::Result<()> {
    run_step(
        "building roomcast, roomcast-loadgen and ceiling (release)",
        Command::new("cargo").current_dir(&programs.root).args([
            "build",
            "--release",
            "-p",
            "roomcast-server",
            "-p",
            "roomcast-loadgen",
            "-p",
            "roomcast-benches",
            "--bins",
        ]),
    )?;
    if servers.contains(&Kind::Node) {
        run_step(
            "installing the Node peer (npm ci)",
            Command::new("npm").current_dir(programs.root.join("benches/peers/node")).args([
                "ci",
                "--no-audit",
                "--no-fund",
            ]),
        )?;
    }
    if servers.contains(&Kind::Socketioxide) {
        let target =
            programs.socketioxide.parent().and_then(Path::parent).context("socketioxide target dir")?;
        run_step(
            "building the socketioxide peer (release)",
            Command::new("cargo")
                .current_dir(&programs.root)
                .args([
                    "build",
                    "--release",
                    "--manifest-path",
                    "benches/peers/socketioxide/Cargo.toml",
                    "--target-dir",
                ])
                .arg(target),
        )?;
    }
    Ok(())
}

fn machine_note() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}, loopback only", kernel.trim())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn utc_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output();
    out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()?;
    let release = std::env::current_exe()?.parent().context("harness has no directory")?.to_path_buf();
    let target = release.parent().context("release dir has no parent")?.to_path_buf();
    let programs = Programs {
        root: root.clone(),
        release,
        socketioxide: target.join("peers/socketioxide/release/socketioxide-peer"),
    };
    let servers: Vec<Kind> = args
        .servers
        .iter()
        .map(|s| Kind::parse(s).with_context(|| format!("unknown server {s:?}")))
        .collect::<Result<_, _>>()?;
    let mut sizes = if args.quick { Sizes::quick() } else { Sizes::full() };
    if let Some(d) = args.duration {
        sizes.duration_s = d;
    }
    if let Some(c) = args.conns {
        sizes.conns = c;
    }
    if let Some(i) = args.idle_conns.clone() {
        sizes.idle_conns = i;
    }
    if let Some(w) = args.window {
        sizes.window = w;
    }
    sizes.release.clone_from(&args.release);
    sizes.loadgen_procs = args.loadgen_procs.max(1);
    let stamp = Command::new("date")
        .args(["-u", "+%Y%m%d-%H%M%S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let out = args.out.clone().unwrap_or_else(|| root.join("bench-out").join(stamp));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if !args.no_build {
        build(&programs, &servers)?;
    }
    let started = Instant::now();
    let date = utc_now();
    let load_before = load_average();
    let cases = cases::matrix(&sizes, &args.scenarios, &servers);
    eprintln!("fanout-matrix: {} cases × {} runs; raw outputs in {}", cases.len(), args.runs, out.display());
    let mut port = args.base_port;
    let mut rows = Vec::new();
    for case in cases {
        let mut runs = Vec::new();
        for n in 1..=args.runs {
            let stem = format!("{}-{}-r{n}", case.table, case.row_name().replace([' ', '(', ')'], "_"));
            let label = format!("{} r{n}", case.row_name());
            eprintln!(
                "fanout-matrix: [{:>5.0}s] scenario {} {} run {n}",
                started.elapsed().as_secs_f64(),
                case.table,
                case.row_name()
            );
            let result = run::run_once(&case, &programs, port, &label, &out, &stem);
            port = port.checked_add(1).unwrap_or(args.base_port);
            if let Some(e) = &result.error {
                eprintln!("fanout-matrix:   failed: {e}");
            } else {
                eprintln!(
                    "fanout-matrix:   {:.0} deliveries/s, p99 {:.2} ms, server {:.3} µs CPU per delivery, {} violations",
                    result.num("deliveries_per_s").unwrap_or(0.0),
                    result.num("latency_p99_ms").unwrap_or(0.0),
                    result.cpu_us_per_delivery().unwrap_or(f64::NAN),
                    result.num("violations").unwrap_or(0.0)
                );
                if let Some(limit) = result.loadgen_limit() {
                    eprintln!(
                        "fanout-matrix:   warning: the load generator was {limit} ({:.0}% of one core busy): this run measured the client",
                        result.num("cpu_percent_one_core").unwrap_or(0.0)
                    );
                }
            }
            runs.push(result);
        }
        rows.push(Row { case, runs });
    }
    let write_docs = !args.no_docs && (!args.quick || args.write_docs);
    let plot_dir = if write_docs { root.join("docs/bench") } else { out.clone() };
    std::fs::create_dir_all(&plot_dir)?;
    let plots = plot(&programs, &rows, &plot_dir, &root);
    let mut command_line = vec!["cargo run --release -p roomcast-benches --bin fanout-matrix --".to_string()];
    command_line.extend(std::env::args().skip(1));
    let section = format!(
        "### End-to-end results ({date})\n\nCommand: `{}`. Machine: {}; server and load generator share the cores, \
         other builds ran at the same time (load average {} at the start, {} at the end), so read the ratios \
         within one table, not absolute figures. Each figure is the mean of {} run(s), each against a freshly \
         started server; took {:.0} s.\n\n{}",
        command_line.join(" "),
        machine_note(),
        load_before,
        load_average(),
        args.runs,
        started.elapsed().as_secs_f64(),
        table::render(&rows, &plots)
    );
    println!("{section}");
    if write_docs {
        let path = root.join("docs/BENCHMARKS.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, table::splice(&doc, &section))?;
        eprintln!("fanout-matrix: wrote {} and plots in {}", path.display(), plot_dir.display());
    }
    Ok(())
}

/// One SVG per table via `roomcast-loadgen report`; returns (table, path relative to docs/).
fn plot(programs: &Programs, rows: &[Row], dir: &Path, root: &Path) -> Vec<(String, String)> {
    let mut plots = Vec::new();
    let mut tables: Vec<&str> = Vec::new();
    for row in rows {
        if !tables.contains(&row.case.table.as_str()) {
            tables.push(&row.case.table);
        }
    }
    for table in tables {
        let inputs: Vec<String> = rows
            .iter()
            .filter(|r| r.case.table == table && !r.case.idle)
            .flat_map(|r| {
                r.runs.iter().enumerate().filter_map(move |(i, run)| {
                    run.json_file
                        .as_ref()
                        .map(|f| format!("{} r{}={}", r.case.row_name(), i + 1, f.display()))
                })
            })
            .collect();
        if inputs.is_empty() {
            continue;
        }
        let file = dir.join(format!("{table}.svg"));
        let title =
            rows.iter().find(|r| r.case.table == table).map(|r| r.case.title.clone()).unwrap_or_default();
        let ok = Command::new(programs.release.join("roomcast-loadgen"))
            .arg("report")
            .args(&inputs)
            .args(["--log-y", "--title", &format!("Scenario {title}"), "--plot"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let shown = file
                .strip_prefix(root.join("docs"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| file.display().to_string());
            plots.push((table.to_string(), shown));
        }
    }
    plots
}
