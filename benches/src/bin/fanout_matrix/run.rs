//! One run of one case: start the server, run `roomcast-loadgen` against it, sample the server's CPU
//! time and memory while the load generator reports progress, stop the server.
//!
//! Server CPU is counted over the measured phase only: from the load generator's first progress line
//! of that phase to its last, and the deliveries over the same span are summed from those lines. Set-up
//! (handshakes, joins) and the drain are left out, so the figure per delivery is the steady state.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cases::Case;
use crate::servers::{self, Programs};

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// The load generator's JSON line, when it finished.
    pub json: Option<Value>,
    /// Why the run failed (server did not start, load generator error or timeout).
    pub error: Option<String>,
    /// What the load generator complained about in a run that still measured (verify's violations).
    pub note: Option<String>,
    /// Server CPU seconds over the measured phase.
    pub server_cpu_s: Option<f64>,
    /// Wall seconds of the measured phase span that `server_cpu_s` covers.
    pub span_s: Option<f64>,
    /// Deliveries the load generator counted over that span.
    pub span_deliveries: Option<f64>,
    /// CPU seconds the whole machine was busy over that span (every process).
    pub machine_busy_s: Option<f64>,
    /// Server RSS at the end of the measured phase, KiB.
    pub server_rss_kib: Option<u64>,
    /// File with the JSON line (for `roomcast-loadgen report`).
    pub json_file: Option<std::path::PathBuf>,
}

impl RunResult {
    pub fn num(&self, key: &str) -> Option<f64> {
        self.json.as_ref()?.get(key)?.as_f64()
    }

    /// Server CPU microseconds per delivery over the measured phase.
    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        let d = self.span_deliveries?;
        let cpu = self.server_cpu_s?;
        (d > 0.0).then(|| cpu / d * 1e6)
    }

    /// Whether the load generator said it was the bottleneck of this run, and how: `saturated` (busy
    /// on all its cores) or `starved` (runnable nearly all the time, but other processes had the cores).
    pub fn loadgen_limit(&self) -> Option<&'static str> {
        let flag = |key: &str| self.json.as_ref()?.get(key)?.as_bool();
        if flag("cpu_saturated") == Some(true) {
            Some("saturated")
        } else if flag("cpu_starved") == Some(true) {
            Some("starved")
        } else {
            None
        }
    }

    /// CPU that processes other than the server and the load generator took over the measured phase,
    /// in % of one core: other builds and benchmarks sharing the machine. The load generator's share is
    /// its whole-run average, so this is an estimate.
    pub fn others_cpu_percent(&self) -> Option<f64> {
        let s = self.span_s.filter(|s| *s > 0.0)?;
        let loadgen = self.num("cpu_percent_one_core")? / 100.0 * s;
        Some(((self.machine_busy_s? - self.server_cpu_s? - loadgen) / s * 100.0).max(0.0))
    }

    /// Server CPU as % of one core over the measured phase.
    pub fn server_cpu_percent(&self) -> Option<f64> {
        let s = self.span_s?;
        let cpu = self.server_cpu_s?;
        (s > 0.0).then(|| cpu / s * 100.0)
    }
}

/// A measured-phase progress line: `[  12.0s] conns … delivered 99.8k/s …`.
fn progress(line: &str) -> Option<(f64, f64)> {
    let rest = line.strip_prefix('[')?;
    let (elapsed, rest) = rest.split_once("s]")?;
    let elapsed: f64 = elapsed.trim().parse().ok()?;
    let rate = rest.split_once("delivered ")?.1.split_once("/s")?.0;
    Some((elapsed, si_number(rate)?))
}

/// `99.8k` → 99800; `1.00M` → 1e6.
fn si_number(text: &str) -> Option<f64> {
    let (digits, scale) = match text.chars().last()? {
        'k' => (text.get(..text.len() - 1)?, 1e3),
        'M' => (text.get(..text.len() - 1)?, 1e6),
        'G' => (text.get(..text.len() - 1)?, 1e9),
        _ => (text, 1.0),
    };
    Some(digits.parse::<f64>().ok()? * scale)
}

struct Sample {
    elapsed: f64,
    rate: f64,
    cpu: Option<f64>,
    machine: Option<f64>,
    rss: Option<u64>,
}

/// Runs `case` once; `label` names the series, `port` is the server's, files go under `dir` as
/// `<stem>.*`.
pub fn run_once(
    case: &Case,
    programs: &Programs,
    port: u16,
    label: &str,
    dir: &Path,
    stem: &str,
) -> RunResult {
    let mut result = RunResult::default();
    let server = match servers::start(
        case.kind,
        programs,
        port,
        &case.server_args,
        &dir.join(format!("{stem}.server.log")),
    ) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(format!("{e:#}"));
            return result;
        }
    };
    let pid = server.pid;
    let mut command = Command::new(programs.release.join("roomcast-loadgen"));
    command
        .args(&case.loadgen)
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--label", label, "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if case.idle {
        command.args(["--server-pid", &pid.to_string()]);
    }
    let mut loadgen = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("starting roomcast-loadgen: {e}"));
            server.stop();
            return result;
        }
    };
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(stderr) = loadgen.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let stdout = loadgen.stdout.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stdout {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs_f64(case.timeout_s);
    let mut samples: Vec<Sample> = Vec::new();
    let mut stderr_log = String::new();
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some((elapsed, rate)) = progress(&line) {
                    samples.push(Sample {
                        elapsed,
                        rate,
                        cpu: servers::cpu_seconds(pid),
                        machine: servers::machine_busy_seconds(),
                        rss: servers::rss_kib(pid),
                    });
                }
                stderr_log.push_str(&line);
                stderr_log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            timed_out = true;
            // Our own child: its pid cannot name another process until we reap it below.
            let _ = loadgen.kill();
            break;
        }
    }
    let status = loadgen.wait();
    let stdout_text = stdout_reader.join().unwrap_or_default();
    let _ = std::fs::write(
        dir.join(format!("{stem}.loadgen.log")),
        format!("{stderr_log}\n--- stdout ---\n{stdout_text}"),
    );
    let server_died = !server_alive_then_stop(server);
    let json_line = stdout_text.lines().find(|l| l.starts_with('{') && l.contains("roomcast-loadgen/"));
    if let Some(line) = json_line {
        let path = dir.join(format!("{stem}.jsonl"));
        let _ = std::fs::write(&path, format!("{line}\n"));
        result.json_file = Some(path);
        result.json = serde_json::from_str(line).ok();
    }
    let error_line = stderr_log.lines().rev().find(|l| l.contains("error:")).map(str::to_string);
    let succeeded = status.map(|s| s.success()).unwrap_or(false);
    result.error = match (timed_out, succeeded, server_died) {
        (true, _, _) => Some(format!("timed out after {:.0} s", case.timeout_s)),
        // verify exits 1 on violations but still measured the run: keep its figures, note why.
        (_, false, _) if result.json.is_some() => {
            result.note = error_line;
            None
        }
        (_, false, _) => Some(error_line.unwrap_or_else(|| "roomcast-loadgen failed".into())),
        (_, true, true) => Some("the server exited during the run".into()),
        _ => None,
    };
    // The measured phase: first to last progress line (the first one's own interval is left out).
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        if samples.len() >= 2 {
            result.server_cpu_s = last.cpu.zip(first.cpu).map(|(b, a)| b - a);
            result.machine_busy_s = last.machine.zip(first.machine).map(|(b, a)| b - a);
            result.span_s = Some(last.elapsed - first.elapsed);
            let mut deliveries = 0.0;
            for pair in samples.windows(2) {
                if let [a, b] = pair {
                    deliveries += b.rate * (b.elapsed - a.elapsed);
                }
            }
            result.span_deliveries = Some(deliveries);
        }
        result.server_rss_kib = last.rss;
    }
    result
}

/// Stops the server; returns whether it was still running before we stopped it.
fn server_alive_then_stop(mut server: servers::Server) -> bool {
    let alive = server.alive();
    server.stop();
    alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_give_elapsed_and_delivery_rate() {
        let line =
            "[  12.0s] conns 9998/10000  sent 1.00k/s  delivered 99.8k/s  p99 3.21 ms (99.8k)  cpu 45%";
        assert_eq!(progress(line), Some((12.0, 99_800.0)));
        assert_eq!(
            progress("[   2.0s] conns 1/1  sent 5/s  delivered 1.25M/s  p99 - (0)").map(|p| p.1),
            Some(1_250_000.0)
        );
        assert_eq!(progress("[setup 1.0s] conns 2004/3004"), None);
    }
}
