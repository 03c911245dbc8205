//! Worker processes: past `--conns-per-process` connections the load generator runs itself again as
//! N workers (the hidden `worker` subcommand), one slice each, and adds their reports up.
//!
//! Protocol, one JSON object per line:
//! - parent → worker stdin: first a [`WorkerTask`] (the spec, the slice, the run epoch), later one
//!   [`StartAt`] once every worker is ready. End of stdin means the parent is gone: the worker stops.
//! - worker stdout → parent: [`ToParent`] messages: setup progress, `Ready`, one `Interval` a second
//!   (latencies as a compressed HdrHistogram, cumulative counters), then `Done` or `Failed`.
//!
//! Worker stderr goes straight to the terminal.
//!
//! The parent kills every worker it started when one fails or the global deadline passes, and reaps
//! them all before returning.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{finish, Link, Reporter, RunOutcome, Slice, SliceTotals, Spec};
use crate::cpu::{available_cores, CpuTimes, CpuUsage};
use crate::latency::{IntervalSnapshot, RunEpoch, RunMicros};
use crate::report::ProgressCounters;
use crate::Error;

/// How long after the workers' one-second boundaries the parent closes its own interval.
const TICK_LAG_MICROS: u64 = 200_000;

/// The hidden subcommand a worker runs.
pub const WORKER_SUBCOMMAND: &str = "worker";

/// What a worker is given: its work and the run's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerTask {
    /// The scenario.
    pub spec: Spec,
    /// This worker's part.
    pub slice: Slice,
    /// `RunEpoch::monotonic_nanos` of the parent.
    pub epoch_nanos: u64,
}

/// The start of the measured phase, sent to every worker at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StartAt {
    /// Run time of the start.
    pub start: RunMicros,
}

/// Progress counters on the wire.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct WireCounters {
    up: u64,
    target: u64,
    sent: u64,
    received: u64,
    cpu_busy_micros: Option<u64>,
}

/// A worker's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToParent {
    /// Setup progress.
    Setup { up: u64, target: u64 },
    /// Set up; waiting for the start.
    Ready,
    /// One second of latencies and the counters so far.
    Interval { snapshot: IntervalSnapshot, counters: WireCounters },
    /// Finished.
    Done(SliceTotals),
    /// Failed; `kind` names the error variant so the parent can report it as its own.
    Failed { kind: String, message: String },
}

/// Runs the worker side: reads the task from stdin, runs the slice, reports on stdout. Returns the
/// error it also reported, for the exit status.
pub fn run_worker() -> Result<(), Error> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    input.read_until(b'\n', &mut line)?;
    let task: WorkerTask = serde_json::from_slice(&line)
        .map_err(|e| Error::Worker(format!("unreadable task from the parent: {e}")))?;
    crate::client::sys::set_nonblocking(0)?;
    super::spawn_watchdog(task.spec.global_deadline())?;
    let mut link = WorkerLink {
        epoch: RunEpoch::from_monotonic_nanos(task.epoch_nanos),
        input,
        pending: Vec::new(),
        start: None,
        out: std::io::stdout(),
        cpu_at_ready: Duration::ZERO,
    };
    let result = super::ensure_fd_limit(task.spec.common(), task.slice.share(task.spec.total_conns()))
        .and_then(|()| super::run_slice(&task.spec, task.slice, &mut link));
    let message = match &result {
        Ok(totals) => ToParent::Done(totals.clone()),
        Err(e) => ToParent::Failed { kind: kind_of(e).into(), message: e.to_string() },
    };
    link.send(&message)?;
    result.map(|_| ())
}

struct WorkerLink<'a> {
    epoch: RunEpoch,
    input: std::io::StdinLock<'a>,
    pending: Vec<u8>,
    start: Option<RunMicros>,
    out: std::io::Stdout,
    cpu_at_ready: Duration,
}

impl WorkerLink<'_> {
    fn send(&mut self, message: &ToParent) -> Result<(), Error> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        let mut out = self.out.lock();
        out.write_all(&line)?;
        out.flush()?;
        Ok(())
    }
}

impl Link for WorkerLink<'_> {
    fn epoch(&self) -> RunEpoch {
        self.epoch
    }

    fn setup_progress(&mut self, up: u64, target: u64) -> Result<(), Error> {
        self.send(&ToParent::Setup { up, target })
    }

    fn ready(&mut self) -> Result<(), Error> {
        self.cpu_at_ready = CpuTimes::of_self().map(|t| t.busy()).unwrap_or_default();
        self.send(&ToParent::Ready)
    }

    fn poll_start(&mut self) -> Result<Option<RunMicros>, Error> {
        if self.start.is_some() {
            return Ok(self.start);
        }
        match self.input.read_until(b'\n', &mut self.pending) {
            Ok(0) => return Err(Error::Worker("the parent process went away".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if self.pending.last() != Some(&b'\n') {
            return Ok(None);
        }
        let start: StartAt = serde_json::from_slice(&self.pending)
            .map_err(|e| Error::Worker(format!("unreadable start message from the parent: {e}")))?;
        self.start = Some(start.start);
        Ok(self.start)
    }

    fn interval(&mut self, snapshot: IntervalSnapshot, counters: ProgressCounters) -> Result<(), Error> {
        let cpu = CpuTimes::of_self().ok().map(|t| {
            u64::try_from(t.busy().saturating_sub(self.cpu_at_ready).as_micros()).unwrap_or(u64::MAX)
        });
        let counters = WireCounters {
            up: counters.connections_up,
            target: counters.connections_target,
            sent: counters.messages_sent,
            received: counters.deliveries_received,
            cpu_busy_micros: cpu,
        };
        self.send(&ToParent::Interval { snapshot, counters })?;
        // Once a second, make sure there is still a parent to report to.
        let mut probe = Vec::new();
        match self.input.read_until(b'\n', &mut probe) {
            Ok(0) => Err(Error::Worker("the parent process went away".into())),
            _ => Ok(()),
        }
    }
}

/// The variant name of `e`, for rebuilding it in the parent.
fn kind_of(e: &Error) -> &'static str {
    match e {
        Error::Usage(_) => "usage",
        Error::Connect(_) => "connect",
        Error::Refused(_) => "refused",
        Error::Dropped(_) => "dropped",
        Error::Protocol(_) => "protocol",
        Error::Timeout(_) => "timeout",
        _ => "worker",
    }
}

/// A worker's error as the parent's own: same variant, the worker's sentence.
fn rebuild(kind: &str, message: &str, index: usize) -> Error {
    let strip = |prefix: &str| message.strip_prefix(prefix).unwrap_or(message).to_string();
    match kind {
        "usage" => Error::Usage(message.to_string()),
        "connect" => Error::Connect(strip("cannot connect: ")),
        "refused" => Error::Refused(strip("server refused: ")),
        "dropped" => Error::Dropped(strip("server dropped a connection: ")),
        "protocol" => Error::Protocol(strip("server broke the protocol: ")),
        "timeout" => Error::Timeout(strip("timed out: ")),
        _ => Error::Worker(format!("worker {index}: {message}")),
    }
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    setup: (u64, u64),
    ready: bool,
    counters: WireCounters,
    done: Option<SliceTotals>,
}

/// Kills (by their own handles) and reaps every worker still running.
fn stop_all(workers: &mut [Worker]) {
    for w in workers.iter_mut() {
        w.stdin = None;
        if matches!(w.child.try_wait(), Ok(None)) {
            let _ = w.child.kill();
        }
        let _ = w.child.wait();
    }
}

/// Runs `spec` in `processes` workers and reports through `reporter`.
pub fn run_parent(spec: &Spec, processes: u32, reporter: &mut Reporter) -> Result<RunOutcome, Error> {
    let exe = std::env::current_exe()?;
    let own_start = CpuTimes::of_self()?;
    let deadline = Instant::now() + spec.global_deadline();
    let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
    let mut workers = Vec::new();
    for index in 0..processes {
        let spawned = Command::new(&exe)
            .arg(WORKER_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                stop_all(&mut workers);
                return Err(Error::Worker(format!("cannot start worker {index} ({}): {e}", exe.display())));
            }
        };
        let stdout = child.stdout.take();
        let mut stdin = child.stdin.take();
        let task = WorkerTask {
            spec: spec.clone(),
            slice: Slice { index, count: processes },
            epoch_nanos: reporter.epoch().monotonic_nanos(),
        };
        let mut line = serde_json::to_vec(&task)?;
        line.push(b'\n');
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&line).and_then(|()| stdin.flush());
        }
        let tx = tx.clone();
        let i = index as usize;
        std::thread::spawn(move || {
            if let Some(stdout) = stdout {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(line) => {
                            if tx.send((i, Some(line))).is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            let _ = tx.send((i, None));
        });
        workers.push(Worker {
            child,
            stdin,
            setup: (0, 0),
            ready: false,
            counters: WireCounters::default(),
            done: None,
        });
    }
    drop(tx);
    reporter.use_workers();
    let result = supervise(&mut workers, &rx, reporter, deadline);
    stop_all(&mut workers);
    result?;
    let mut totals = SliceTotals::default();
    let (mut user, mut system, mut wall, mut waited) = (0.0, 0.0, 0.0f64, 0.0);
    let mut saturated = Vec::new();
    let (mut any_saturated, mut any_starved) = (false, false);
    for (i, w) in workers.iter().enumerate() {
        let Some(t) = &w.done else { continue };
        totals.add(t);
        if let Some(cpu) = &t.cpu {
            user += cpu.user_secs;
            system += cpu.system_secs;
            wall = wall.max(cpu.wall_secs);
            waited += cpu.run_queue_wait_secs;
            if let Some(s) = cpu.saturated() {
                any_saturated = true;
                saturated.push(format!("warning: worker {i}: {s}"));
            }
            if let Some(s) = cpu.starved() {
                any_starved = true;
                saturated.push(format!("warning: worker {i}: {s}"));
            }
        }
    }
    let own = CpuTimes::of_self()?.since(own_start);
    let used = CpuTimes {
        user: Duration::from_secs_f64(user) + own.user,
        system: Duration::from_secs_f64(system) + own.system,
    };
    let cpu = CpuUsage::new(Duration::from_secs_f64(wall), used, processes, available_cores())
        .with_run_queue_wait(Duration::from_secs_f64(waited));
    let mut outcome = finish(spec, reporter, &totals, &cpu, processes)?;
    // One worker at its limit limits the run, even when the average over workers has slack: the JSON
    // line says so too, not only the worker's warning line.
    outcome.summary.cpu_saturated |= any_saturated;
    outcome.summary.cpu_starved |= any_starved && !outcome.summary.cpu_saturated;
    outcome.notes.extend(saturated);
    Ok(outcome)
}

fn supervise(
    workers: &mut [Worker],
    rx: &mpsc::Receiver<(usize, Option<String>)>,
    reporter: &mut Reporter,
    deadline: Instant,
) -> Result<(), Error> {
    let epoch = reporter.epoch();
    let mut started: Option<RunMicros> = None;
    let mut next_tick = RunMicros::ZERO;
    loop {
        if workers.iter().all(|w| w.done.is_some()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(
                "the worker processes did not finish within the run's global deadline".into(),
            ));
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((i, Some(line))) => {
                let message: ToParent = serde_json::from_str(&line).map_err(|e| {
                    Error::Worker(format!("worker {i} sent an unreadable line ({e}): {line:.80}"))
                })?;
                let Some(w) = workers.get_mut(i) else { continue };
                match message {
                    ToParent::Setup { up, target } => {
                        w.setup = (up, target);
                        let up = workers.iter().map(|w| w.setup.0).sum();
                        let target = workers.iter().map(|w| w.setup.1).max().unwrap_or(0);
                        reporter.setup_line(up, target);
                    }
                    ToParent::Ready => w.ready = true,
                    ToParent::Interval { snapshot, counters } => {
                        reporter.add(&snapshot.histogram);
                        w.counters = counters;
                    }
                    ToParent::Done(totals) => w.done = Some(totals),
                    ToParent::Failed { kind, message } => return Err(rebuild(&kind, &message, i)),
                }
            }
            Ok((i, None)) => {
                if workers.get(i).is_some_and(|w| w.done.is_none()) {
                    return Err(Error::Worker(format!(
                        "worker {i} exited without a result (its error, if any, is printed above)"
                    )));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Worker("every worker's output closed before the run ended".into()));
            }
        }
        if started.is_none() && workers.iter().all(|w| w.ready) {
            let start = epoch.now().plus_micros(50_000);
            let mut line = serde_json::to_vec(&StartAt { start })?;
            line.push(b'\n');
            for (i, w) in workers.iter_mut().enumerate() {
                let sent = w.stdin.as_mut().map(|s| s.write_all(&line).and_then(|()| s.flush()));
                if !matches!(sent, Some(Ok(()))) {
                    return Err(Error::Worker(format!("cannot reach worker {i} to start it")));
                }
            }
            reporter.mark_ready(start);
            started = Some(start);
            // Tick a little after the workers close each second, so that second's intervals are in.
            next_tick = start.plus_micros(1_000_000 + TICK_LAG_MICROS);
        }
        let now = epoch.now();
        if started.is_some() && now >= next_tick {
            let sum = |f: fn(&WireCounters) -> u64| workers.iter().map(|w| f(&w.counters)).sum::<u64>();
            let cpu = workers.iter().filter_map(|w| w.counters.cpu_busy_micros).sum::<u64>();
            let counters = ProgressCounters {
                connections_up: sum(|c| c.up),
                connections_target: sum(|c| c.target)
                    .max(workers.iter().map(|w| w.setup.1).max().unwrap_or(0)),
                messages_sent: sum(|c| c.sent),
                deliveries_received: sum(|c| c.received),
                cpu_busy: Some(Duration::from_micros(cpu)),
            };
            reporter.tick(now, counters)?;
            next_tick = next_tick.plus_micros(1_000_000).max(now);
        }
    }
}
