//! The `roomcast-loadgen` binary: scenario subcommands (their network engine is still to come) and
//! `report`, which reads interval logs and JSON summary lines back into one table and one plot.
//!
//! See docs/LOADGEN.md for the method and the outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use roomcast_loadgen::report::{self, PlotOptions};

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
}

/// Flags every scenario takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// Socket.IO server to load.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 1_000)]
    conns: u32,
    /// Rooms to spread the connections over.
    #[arg(long, default_value_t = 10)]
    rooms: u32,
    /// Measured duration: 30s, 2m, 500ms, 1h (a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed for room assignment and payloads, so a run can be repeated exactly.
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
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Publishing connections (each picks rooms to emit to).
    #[arg(long, default_value_t = 1)]
    publishers: u32,
    /// Total messages per second over all publishers (fixed-rate schedule; quote these runs for latency).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Instead of a rate: flat out with at most N messages in flight per publisher (throughput runs).
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    window: Option<u32>,
    /// Payload size in bytes, message token included.
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Publishing connections.
    #[arg(long, default_value_t = 4)]
    publishers: u32,
    /// Total messages per second over all publishers.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
}

#[derive(Debug, Args)]
struct ConnectArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// New connections per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    common: CommonArgs,
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
        Command::Fanout(_) => not_implemented("fanout"),
        Command::Verify(_) => not_implemented("verify"),
        Command::Connect(_) => not_implemented("connect"),
        Command::Idle(_) => not_implemented("idle"),
        Command::Report(args) => run_report(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn not_implemented(scenario: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "`{scenario}` is not implemented yet: the network client engine comes with a later change. \
         Measurement and `roomcast-loadgen report` work today."
    )
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
