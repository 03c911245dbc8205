//! The `roomcast-loadgen` binary: the scenario subcommands (fanout, verify, connect, idle), `report`,
//! which reads interval logs and JSON summary lines back into one table and one plot, and the hidden
//! `worker` subcommand the load generator starts itself as.
//!
//! See docs/LOADGEN.md for the method and the outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use roomcast_loadgen::client::{IoMode, Transport};
use roomcast_loadgen::report::{self, PlotOptions};
use roomcast_loadgen::scenario::{
    self, AppConfig, Common, ConnectSpec, FanoutSpec, IdleSpec, ReleaseOn, Reporter, Spec, VerifySpec,
};

/// Load generator for Socket.IO servers. Latency is open loop: measured from each message's
/// scheduled send time, so a stall anywhere shows in the tail. The load generator reports its own
/// CPU use and warns when it, not the server, was the bottleneck.
#[derive(Debug, Parser)]
#[command(name = "roomcast-loadgen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publishers emit to rooms on an open-loop schedule; every member records the latency of every
    /// delivery from the message's scheduled send time.
    Fanout(FanoutArgs),
    /// Check delivery: each intended recipient gets each message exactly once and in order, and no
    /// excluded or untargeted connection gets it.
    Verify(VerifyArgs),
    /// Connection churn: open (and close) connections at a rate; measure handshake latency and
    /// failures.
    Connect(ConnectArgs),
    /// Hold idle connections for the duration, for measuring what an idle connection costs the server.
    Idle(IdleArgs),
    /// Merge `.hlog` interval logs and JSON summary lines into one table (stdout) and one overlay plot.
    Report(ReportArgs),
    /// Internal: one worker process of a run (started by the load generator itself).
    #[command(name = "worker", hide = true)]
    Worker,
}

/// Flags every scenario takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// Socket.IO server to load: http://host:port, with a path to use a namespace (http://host:port/admin).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Engine.IO path on the server.
    #[arg(long, default_value = "/socket.io/")]
    path: String,
    /// Connections to open (fanout: receivers, publishers come on top; connect: most open at once).
    #[arg(long, default_value_t = 1_000)]
    conns: u32,
    /// Rooms to spread the connections over.
    #[arg(long, default_value_t = 10)]
    rooms: u32,
    /// Rooms each connection joins, chosen from --seed [default: 1; verify: 3].
    #[arg(long)]
    rooms_per_conn: Option<u32>,
    /// Measured duration: 30s, 2m, 500ms, 1h (a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed for room assignment and message targets, so a run can be repeated exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Name of this run in tables and plots (default: the scenario name).
    #[arg(long)]
    label: Option<String>,
    /// Also print the end-of-run summary as one JSON line on stdout.
    #[arg(long)]
    json: bool,
    /// Write an HdrHistogram interval log (one latency histogram per second) to FILE.
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Write the latency-by-percentile plot (self-contained SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// New connections per second while setting up.
    #[arg(long, default_value_t = 2_000.0)]
    ramp_rate: f64,
    /// Spread connections over source addresses 127.0.0.1..=N (0: one per 20,000 connections on loopback).
    #[arg(long, default_value_t = 0)]
    source_addrs: u32,
    /// Connections per process; beyond, the load generator starts worker processes [default: 15000,
    /// polling: 7500; at most 19000, polling: 9500].
    #[arg(long)]
    conns_per_process: Option<u32>,
    /// How connections carry their sessions: a WebSocket from the start; HTTP long-polling only (two
    /// TCP connections each); or socket.io-client's default, polling then an upgrade to WebSocket.
    #[arg(long, value_enum, default_value_t = Transport::WebSocket)]
    transport: Transport,
    /// Limit on each connection's handshake (TCP, upgrade, Engine.IO and Socket.IO opens).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// How sockets are read: edge-triggered epoll; a multishot io_uring receive per socket into a ring
    /// of provided buffers (Linux 6.0+; Docker's default seccomp profile forbids io_uring); or uring
    /// when this process may use it, else epoll (saying why on stderr).
    #[arg(long, value_enum, default_value_t = IoMode::Epoll)]
    io: IoMode,
    /// TOML file naming the server's join/leave/publish events and argument shapes (see docs/LOADGEN.md);
    /// default: Roomcast's built-in app.
    #[arg(long, value_name = "FILE")]
    app_config: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Publishing connections (extra to --conns; they join no room).
    #[arg(long, default_value_t = 1)]
    publishers: u32,
    /// Messages per second per publisher (fixed-rate schedule; quote these runs for latency).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Instead of a rate: flat out with at most N messages in flight per publisher (throughput runs; what
    /// frees a slot: --release).
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    window: Option<u32>,
    /// Payload size in bytes (the `data` string), message token included.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Longest wait after the last send for deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    drain: Duration,
    /// Rooms each message goes to (drawn from --seed per message).
    #[arg(long, default_value_t = 1)]
    to_rooms: u32,
    /// Rooms each message excepts (other than its target rooms): their members must not get it.
    #[arg(long, default_value_t = 0)]
    except_rooms: u32,
    /// Publishers join --rooms-per-conn rooms too: they receive the others' messages, and their own
    /// must not come back (checks that the server leaves the sender out).
    #[arg(long)]
    publishers_join: bool,
    /// With --window, what frees a slot: the server's ack of the publish, or the ack and the delivery
    /// to --release-fraction of the message's receivers (in-flight messages bounded end to end).
    #[arg(long, value_enum, default_value_t = ReleaseArg::Ack, requires = "window")]
    release: ReleaseArg,
    /// With --release delivered: the share of a message's receivers (in the publisher's process) that
    /// must have it before its slot frees.
    #[arg(long, default_value_t = 1.0)]
    release_fraction: f64,
    /// With --window: a message still in flight after this long frees its slot anyway (counted as a
    /// window timeout), so lost deliveries slow a run down but cannot stall it. Keep it well above the
    /// server's round trip under load: a slot freed while its message is still coming lets the
    /// server's backlog grow again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    release_timeout: Duration,
}

/// What frees a window slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReleaseArg {
    /// The server's ack of the publish (it may still be queued in the server).
    Ack,
    /// The ack and the delivery to --release-fraction of its receivers.
    Delivered,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Publishing connections, taken from the first --conns connections.
    #[arg(long, default_value_t = 4)]
    publishers: u32,
    /// Messages per second per publisher.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Longest wait after the last send for deliveries still in flight.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    drain: Duration,
    /// Examples printed per kind of violation.
    #[arg(long, default_value_t = 10)]
    max_examples: usize,
}

#[derive(Debug, Args)]
struct ConnectArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// New connections per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long each connection stays in its room before leaving and disconnecting.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    hold: Duration,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The server's process id: print its RSS (VmRSS) before, when all are connected, and at the end,
    /// and the RSS per connection.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Input files: `.hlog` interval logs and/or files of JSON summary lines. Write LABEL=FILE to
    /// name a file's series.
    #[arg(required = true, value_name = "[LABEL=]FILE")]
    inputs: Vec<String>,
    /// Write the overlay plot (SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Plot title.
    #[arg(long, default_value = "Latency by percentile")]
    title: String,
    /// Logarithmic latency axis, for series that differ by orders of magnitude.
    #[arg(long)]
    log_y: bool,
    /// Add all inputs up into one series with this label (e.g. the logs of several workers).
    #[arg(long, value_name = "LABEL")]
    merge: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fanout(args) => fanout_spec(args).and_then(|(s, o)| run_scenario(&s, &o)),
        Command::Verify(args) => verify_spec(args).and_then(|(s, o)| run_scenario(&s, &o)),
        Command::Connect(args) => connect_spec(args).and_then(|(s, o)| run_scenario(&s, &o)),
        Command::Idle(args) => idle_spec(args).and_then(|(s, o)| run_scenario(&s, &o)),
        Command::Report(args) => run_report(&args),
        Command::Worker => scenario::workers::run_worker().map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where a scenario's outputs go.
#[derive(Debug)]
struct Outputs {
    json: bool,
    hlog: Option<PathBuf>,
    plot: Option<PathBuf>,
    server_pid: Option<u32>,
}

fn common(
    args: CommonArgs,
    scenario: &str,
    default_rooms_per_conn: u32,
) -> anyhow::Result<(Common, Outputs)> {
    let app = match &args.app_config {
        Some(path) => AppConfig::load(path)?,
        None => AppConfig::default(),
    };
    let max_per_process = scenario::max_conns_per_process(args.transport);
    let conns_per_process =
        args.conns_per_process.unwrap_or_else(|| scenario::default_conns_per_process(args.transport));
    anyhow::ensure!(
        (1..=max_per_process).contains(&conns_per_process),
        "--conns-per-process must be 1 to {max_per_process} over {} ({} socket(s) per connection)",
        args.transport.name(),
        args.transport.sockets_per_conn()
    );
    anyhow::ensure!(
        args.ramp_rate.is_finite() && args.ramp_rate > 0.0,
        "--ramp-rate must be a positive number"
    );
    // Fail on a wrong URL before anything starts.
    roomcast_loadgen::client::Target::parse(&args.url, &args.path)?;
    let (io, why_not) = args.io.resolve();
    if let Some(why) = why_not {
        eprintln!("roomcast-loadgen: --io auto: {why}; reading sockets through epoll");
    }
    let common = Common {
        url: args.url,
        path: args.path,
        conns: args.conns,
        rooms: args.rooms,
        rooms_per_conn: args.rooms_per_conn.unwrap_or(default_rooms_per_conn),
        duration: args.duration,
        seed: args.seed,
        label: args.label.unwrap_or_else(|| scenario.to_string()),
        ramp_rate: args.ramp_rate,
        source_addrs: args.source_addrs,
        conns_per_process,
        handshake_timeout: args.handshake_timeout,
        app,
        transport: args.transport,
        io,
        quiet: args.quiet,
    };
    Ok((common, Outputs { json: args.json, hlog: args.hlog, plot: args.plot, server_pid: None }))
}

fn fanout_spec(args: FanoutArgs) -> anyhow::Result<(Spec, Outputs)> {
    let (common, outputs) = common(args.common, "fanout", 1)?;
    let spec = FanoutSpec {
        common,
        publishers: args.publishers,
        rate: args.rate,
        window: args.window,
        payload: args.payload,
        drain: args.drain,
        to_rooms: args.to_rooms,
        except_rooms: args.except_rooms,
        publishers_join: args.publishers_join,
        release: match args.release {
            ReleaseArg::Ack => ReleaseOn::Ack,
            ReleaseArg::Delivered => ReleaseOn::Delivered { fraction: args.release_fraction },
        },
        release_timeout: args.release_timeout,
    };
    scenario::fanout::check(&spec)?;
    Ok((Spec::Fanout(spec), outputs))
}

fn verify_spec(args: VerifyArgs) -> anyhow::Result<(Spec, Outputs)> {
    let (common, outputs) = common(args.common, "verify", 3)?;
    let spec = VerifySpec {
        common,
        publishers: args.publishers,
        rate: args.rate,
        drain: args.drain,
        max_examples: args.max_examples,
    };
    Ok((Spec::Verify(spec), outputs))
}

fn connect_spec(args: ConnectArgs) -> anyhow::Result<(Spec, Outputs)> {
    let (common, outputs) = common(args.common, "connect", 1)?;
    Ok((Spec::Connect(ConnectSpec { common, rate: args.rate, hold: args.hold }), outputs))
}

fn idle_spec(args: IdleArgs) -> anyhow::Result<(Spec, Outputs)> {
    let (common, mut outputs) = common(args.common, "idle", 1)?;
    outputs.server_pid = args.server_pid;
    Ok((Spec::Idle(IdleSpec { common, server_pid: args.server_pid }), outputs))
}

/// Runs a scenario with a watchdog, then prints the table, the notes, the JSON line and the plot.
fn run_scenario(spec: &Spec, outputs: &Outputs) -> anyhow::Result<()> {
    scenario::spawn_watchdog(spec.global_deadline())?;
    let common = spec.common();
    let mut reporter =
        Reporter::new(&common.label, common.quiet, outputs.hlog.as_deref(), outputs.server_pid)?;
    let outcome = scenario::run(spec, &mut reporter)?;
    let series = report::Series::from_run(outcome.summary.clone());
    print!("{}", report::render_table(std::slice::from_ref(&series)));
    for note in &outcome.notes {
        println!("{note}");
    }
    if outputs.json {
        let mut value = serde_json::to_value(&outcome.summary).context("encoding the JSON line")?;
        if let Some(map) = value.as_object_mut() {
            for (key, extra) in &outcome.extra {
                map.insert(key.clone(), extra.clone());
            }
        }
        println!("{value}");
    }
    if let Some(plot) = &outputs.plot {
        let svg = report::render_svg(
            &[series],
            &PlotOptions { title: format!("{} latency by percentile", spec.name()), log_y: false },
        );
        std::fs::write(plot, svg).with_context(|| format!("writing {}", plot.display()))?;
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    match &outcome.failure {
        Some(why) => anyhow::bail!("{why}"),
        None => Ok(()),
    }
}

fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let mut series = Vec::new();
    for input in &args.inputs {
        let (label, path) = split_label(input);
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = label.map_or_else(|| file_stem(path), str::to_string);
        let mut found =
            report::load_series(&name, &bytes).with_context(|| format!("reading {}", path.display()))?;
        if let Some(label) = label {
            let many = found.len() > 1;
            for s in &mut found {
                s.label = if many { format!("{label}/{}", s.label) } else { label.to_string() };
                if let Some(run) = &mut s.run {
                    run.label.clone_from(&s.label);
                }
            }
        }
        series.extend(found);
    }
    if let Some(label) = &args.merge {
        series = vec![report::merge_series(label, &series)];
    }
    print!("{}", report::render_table(&series));
    if let Some(plot) = &args.plot {
        let svg = report::render_svg(&series, &PlotOptions { title: args.title.clone(), log_y: args.log_y });
        std::fs::write(plot, svg).with_context(|| format!("writing {}", plot.display()))?;
    }
    Ok(())
}

/// `LABEL=FILE` → (Some(LABEL), FILE), unless the whole argument names an existing file.
fn split_label(input: &str) -> (Option<&str>, &Path) {
    match input.split_once('=') {
        Some((label, path)) if !label.is_empty() && !Path::new(input).exists() => {
            (Some(label), Path::new(path))
        }
        _ => (None, Path::new(input)),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// `30s`, `2m`, `500ms`, `1h`, or a bare number of seconds (fractions allowed).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration such as 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" | "min" => value * 60.0,
        "h" => value * 3_600.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1_500)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn labels_split_off_unless_the_whole_argument_is_a_file() {
        assert_eq!(split_label("node=runs/node.hlog"), (Some("node"), Path::new("runs/node.hlog")));
        assert_eq!(split_label("runs/plain.hlog"), (None, Path::new("runs/plain.hlog")));
        assert_eq!(split_label("=x.hlog"), (None, Path::new("=x.hlog")));
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
