//! The four scenarios and what they share: their settings ([`Spec`]), the split of a run into slices
//! (one per process), the [`Link`] a slice reports through, and the end-of-run [`RunOutcome`].
//!
//! A run is one or more slices. Up to `conns_per_process` connections it is one slice in this process
//! ([`run`] → [`LocalLink`]); beyond, the load generator starts itself again as worker processes
//! ([`workers`]), one slice each, and adds their reports up. Every slice computes the same room plan
//! from the seed ([`plan`]) and counts time from the same run epoch, so workers need no coordination
//! beyond "ready" and "start at t0".
//!
//! Phases of a slice: setup (ramp connections at `ramp_rate`, join rooms; every failure ends the run),
//! wait for the start, the measured phase (`duration`), a drain (deliveries still in flight), report.

pub mod app;
pub mod connect;
pub mod fanout;
pub mod fanout_check;
pub mod fanout_relation;
pub mod idle;
pub mod plan;
pub mod release;
pub mod reporter;
pub mod setup;
pub mod verify;
pub mod workers;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{IoMode, PoolConfig, Target, Transport};
use crate::cpu::CpuUsage;
use crate::latency::{IntervalSnapshot, RunEpoch, RunMicros};
use crate::report::{ProgressCounters, RunSummary};
use crate::Error;
pub use app::AppConfig;
pub use release::ReleaseOn;
pub use reporter::Reporter;

/// Source addresses are spread so that no one of them carries more than this many TCP connections
/// (the ephemeral port range is ~28,000 ports per source and destination).
pub const CONNS_PER_SOURCE_ADDR: u32 = 20_000;

/// Most sockets one process holds: the open-files limit of a process here is 20,000, and a process
/// needs a few descriptors of its own.
pub const MAX_SOCKETS_PER_PROCESS: u32 = 19_000;

/// Default socket budget of a process (`--conns-per-process` over WebSocket): headroom below
/// [`MAX_SOCKETS_PER_PROCESS`] for one event loop.
pub const DEFAULT_SOCKETS_PER_PROCESS: u32 = 15_000;

/// Ceiling of `--conns-per-process` for `transport`: [`MAX_SOCKETS_PER_PROCESS`] over the sockets each
/// connection holds (19,000 over WebSocket, 9,500 over polling).
pub fn max_conns_per_process(transport: Transport) -> u32 {
    MAX_SOCKETS_PER_PROCESS / transport.sockets_per_conn()
}

/// Default `--conns-per-process` for `transport` (15,000 over WebSocket, 7,500 over polling).
pub fn default_conns_per_process(transport: Transport) -> u32 {
    DEFAULT_SOCKETS_PER_PROCESS / transport.sockets_per_conn()
}

/// Settings every scenario takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Common {
    /// Server URL (`http://host:port[/namespace]`).
    pub url: String,
    /// Engine.IO path.
    pub path: String,
    /// Connections (receivers; `connect`: most open at once).
    pub conns: u32,
    /// Rooms.
    pub rooms: u32,
    /// Rooms each connection joins.
    pub rooms_per_conn: u32,
    /// Measured duration.
    pub duration: Duration,
    /// Seed of the plan.
    pub seed: u64,
    /// Series label.
    pub label: String,
    /// New connections per second during setup.
    pub ramp_rate: f64,
    /// Source addresses 127.0.0.1..=N (0: one per 20,000 connections when the server is on loopback).
    pub source_addrs: u32,
    /// Connections per process before worker processes are used.
    pub conns_per_process: u32,
    /// Limit on each connection's handshake.
    pub handshake_timeout: Duration,
    /// How to drive the server's handlers.
    pub app: AppConfig,
    /// How connections carry their sessions.
    pub transport: Transport,
    /// How sockets are read.
    #[serde(default)]
    pub io: IoMode,
    /// No progress lines.
    pub quiet: bool,
}

impl Common {
    /// Sockets (file descriptors) `conns` connections hold at most.
    pub fn sockets_for(&self, conns: u32) -> u32 {
        conns.saturating_mul(self.transport.sockets_per_conn())
    }
}

/// `fanout` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutSpec {
    /// Shared settings.
    pub common: Common,
    /// Publishing connections (extra to `conns`).
    pub publishers: u32,
    /// Messages per second per publisher (fixed rate), unless `window` is set.
    pub rate: f64,
    /// Flat out with this many unacknowledged messages per publisher.
    pub window: Option<u32>,
    /// Size of each message's `data` string in bytes, token included.
    pub payload: usize,
    /// Longest wait after the measured phase for deliveries still in flight.
    pub drain: Duration,
    /// Target rooms per message.
    pub to_rooms: u32,
    /// Excepted rooms per message (never among its target rooms).
    pub except_rooms: u32,
    /// Publishers join rooms like receivers (and then receive the others' messages, never their own).
    pub publishers_join: bool,
    /// What frees a window slot (with `window`).
    pub release: ReleaseOn,
    /// A message in flight this long frees its slot whatever its receipts (with `window`).
    pub release_timeout: Duration,
}

/// `verify` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifySpec {
    /// Shared settings.
    pub common: Common,
    /// Publishers, taken from the connections (so they are in rooms too).
    pub publishers: u32,
    /// Messages per second per publisher.
    pub rate: f64,
    /// Longest wait after the measured phase for deliveries still in flight.
    pub drain: Duration,
    /// Most violations printed.
    pub max_examples: usize,
}

/// `connect` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectSpec {
    /// Shared settings (`conns` caps connections open at once).
    pub common: Common,
    /// New connections per second.
    pub rate: f64,
    /// How long each connection stays after joining, before leaving and disconnecting.
    pub hold: Duration,
}

/// `idle` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleSpec {
    /// Shared settings.
    pub common: Common,
    /// Server process whose RSS to read before and after.
    pub server_pid: Option<u32>,
}

/// A scenario and its settings: what the parent hands each worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Spec {
    /// Fan-out throughput and latency.
    Fanout(FanoutSpec),
    /// Delivery correctness.
    Verify(VerifySpec),
    /// Connection churn.
    Connect(ConnectSpec),
    /// Idle connections.
    Idle(IdleSpec),
}

impl Spec {
    /// The shared settings.
    pub fn common(&self) -> &Common {
        match self {
            Spec::Fanout(s) => &s.common,
            Spec::Verify(s) => &s.common,
            Spec::Connect(s) => &s.common,
            Spec::Idle(s) => &s.common,
        }
    }

    /// The scenario's name.
    pub fn name(&self) -> &'static str {
        match self {
            Spec::Fanout(_) => "fanout",
            Spec::Verify(_) => "verify",
            Spec::Connect(_) => "connect",
            Spec::Idle(_) => "idle",
        }
    }

    /// Connections this run holds at once, publishers included.
    pub fn total_conns(&self) -> u32 {
        match self {
            Spec::Fanout(s) => s.common.conns.saturating_add(s.publishers),
            _ => self.common().conns,
        }
    }

    /// Processes the run needs.
    pub fn processes(&self) -> u32 {
        let c = self.common();
        let per = c.conns_per_process.clamp(1, max_conns_per_process(c.transport));
        self.total_conns().div_ceil(per).max(1)
    }

    /// Upper bound on the whole run: setup at the ramp rate, the handshake limit, the duration, the
    /// drain, and 30 s of slack. The watchdog ends a run that is still going past it.
    pub fn global_deadline(&self) -> Duration {
        let c = self.common();
        let ramp = Duration::from_secs_f64(f64::from(self.total_conns()) / c.ramp_rate.max(1.0));
        let drain = match self {
            Spec::Fanout(s) => s.drain,
            Spec::Verify(s) => s.drain,
            Spec::Connect(s) => s.hold + c.handshake_timeout,
            Spec::Idle(_) => Duration::ZERO,
        };
        ramp + c.handshake_timeout * 2 + c.duration + drain + Duration::from_secs(30)
    }
}

/// Which part of a run a process does: slice `index` of `count`. Connection `c` (and publisher `p`)
/// belongs to slice `c % count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// This slice's number, `0..count`.
    pub index: u32,
    /// Number of slices.
    pub count: u32,
}

impl Slice {
    /// The whole run in one slice.
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// Whether item `n` (a connection or publisher number) is this slice's.
    pub fn owns(&self, n: u32) -> bool {
        n % self.count.max(1) == self.index
    }

    /// This slice's share of `total` (an even split; the first slices take the remainder).
    pub fn share(&self, total: u32) -> u32 {
        let count = self.count.max(1);
        total / count + u32::from(self.index < total % count)
    }
}

/// What a slice counted, added up over slices by the parent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceTotals {
    /// Connections up when the measured phase started.
    pub connections: u64,
    /// Messages published.
    pub messages_sent: u64,
    /// Deliveries those messages should cause.
    pub deliveries_expected: u64,
    /// Deliveries received.
    pub deliveries_received: u64,
    /// Deliveries whose payload had no valid token.
    pub bad_tokens: u64,
    /// `connect`: connections started.
    pub opened: u64,
    /// `connect`: connections that completed connect, join, leave and disconnect.
    pub completed: u64,
    /// `connect`: connections that failed.
    pub failed: u64,
    /// `connect`: the first failure, as a sentence.
    pub first_failure: Option<String>,
    /// CPU the slice's process used from the start of the measured phase to the end.
    pub cpu: Option<CpuUsage>,
    /// `fanout`: what the receipt check counted on this slice's receivers.
    pub check: fanout_check::CheckCounts,
    /// `fanout`: window slots freed by the release timeout.
    pub window_timeouts: u64,
}

impl SliceTotals {
    /// Adds `other` into `self` (CPU is kept per slice by the caller).
    pub fn add(&mut self, other: &SliceTotals) {
        self.connections += other.connections;
        self.messages_sent += other.messages_sent;
        self.deliveries_expected += other.deliveries_expected;
        self.deliveries_received += other.deliveries_received;
        self.bad_tokens += other.bad_tokens;
        self.opened += other.opened;
        self.completed += other.completed;
        self.failed += other.failed;
        self.check.add(&other.check);
        self.window_timeouts += other.window_timeouts;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
    }
}

/// How a slice reports to whoever runs it: the parent process (through pipes) or this process's
/// reporter. Called from the slice's event loop only.
pub trait Link {
    /// The run's clock.
    fn epoch(&self) -> RunEpoch;
    /// Setup progress: `up` of `target` connections ready (about once a second).
    fn setup_progress(&mut self, up: u64, target: u64) -> Result<(), Error>;
    /// This slice is set up; [`Link::poll_start`] will say when to begin.
    fn ready(&mut self) -> Result<(), Error>;
    /// The start of the measured phase, once known. Fails if the parent went away.
    fn poll_start(&mut self) -> Result<Option<RunMicros>, Error>;
    /// One closed interval of this slice's latencies, with its cumulative counters.
    fn interval(&mut self, snapshot: IntervalSnapshot, counters: ProgressCounters) -> Result<(), Error>;
}

/// The [`Link`] of a run done in this process: straight to the reporter.
#[derive(Debug)]
pub struct LocalLink<'r> {
    reporter: &'r mut Reporter,
    ready_at: Option<RunMicros>,
}

impl<'r> LocalLink<'r> {
    /// A link reporting to `reporter`.
    pub fn new(reporter: &'r mut Reporter) -> Self {
        LocalLink { reporter, ready_at: None }
    }
}

impl Link for LocalLink<'_> {
    fn epoch(&self) -> RunEpoch {
        self.reporter.epoch()
    }

    fn setup_progress(&mut self, up: u64, target: u64) -> Result<(), Error> {
        self.reporter.setup_line(up, target);
        Ok(())
    }

    fn ready(&mut self) -> Result<(), Error> {
        let now = self.epoch().now();
        self.reporter.mark_ready(now);
        self.ready_at = Some(now);
        Ok(())
    }

    fn poll_start(&mut self) -> Result<Option<RunMicros>, Error> {
        Ok(self.ready_at)
    }

    fn interval(&mut self, snapshot: IntervalSnapshot, counters: ProgressCounters) -> Result<(), Error> {
        self.reporter.add(&snapshot.histogram);
        self.reporter.tick(snapshot.end, counters)
    }
}

/// The pool settings a scenario's slice uses, `total_conns` being the connections of the whole run
/// (for the automatic source addresses: one per [`CONNS_PER_SOURCE_ADDR`] sockets).
pub fn pool_config(common: &Common, total_conns: u32) -> Result<PoolConfig, Error> {
    let target = Target::parse(&common.url, &common.path)?;
    let sources = match common.source_addrs {
        0 if target.is_loopback() && target.addr.is_ipv4() => {
            common.sockets_for(total_conns).div_ceil(CONNS_PER_SOURCE_ADDR).max(1)
        }
        0 => 0,
        n if !(target.is_loopback() && target.addr.is_ipv4()) => {
            return Err(Error::Usage(format!(
                "--source-addrs {n} needs a server on IPv4 loopback (127.x.x.x), not {}",
                target.addr
            )))
        }
        n => n.min(254),
    };
    // With one source, let the kernel choose (it picks 127.0.0.1 for a loopback server anyway).
    let source_addrs = if sources <= 1 {
        Vec::new()
    } else {
        (1..=sources).map(|i| std::net::Ipv4Addr::new(127, 0, 0, i as u8)).collect()
    };
    Ok(PoolConfig {
        target,
        source_addrs,
        handshake_timeout: common.handshake_timeout,
        seed: common.seed,
        transport: common.transport,
        io: common.io,
    })
}

/// Raises the open-files limit for `conns` connections of `common`'s transport (two sockets each over
/// polling) plus a margin; fails with a clear message when the hard limit is too low.
pub fn ensure_fd_limit(common: &Common, conns: u32) -> Result<(), Error> {
    let want = u64::from(common.sockets_for(conns)) + 64;
    let got = crate::client::sys::raise_fd_limit(want)?;
    if got < want {
        return Err(Error::Usage(format!(
            "{conns} connections over {} need {want} open files but this process may only have {got}; \
             lower --conns-per-process",
            common.transport.name()
        )));
    }
    Ok(())
}

/// Ends this process with a one-line error if it is still running `deadline` from now: the last
/// guard against a hang, whatever the phase. Exit status 2.
pub fn spawn_watchdog(deadline: Duration) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            eprintln!(
                "roomcast-loadgen: error: timed out: the run did not end within its global deadline of {:.0} s",
                deadline.as_secs_f64()
            );
            std::process::exit(2);
        })
        .map(drop)
        .map_err(Error::Io)
}

/// The end of a run, ready to print: the summary (table and JSON line), keys appended to the JSON
/// line, lines to print under the table, and why the run failed (non-zero exit) if it did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Figures of the run.
    pub summary: RunSummary,
    /// Scenario-specific keys appended to the JSON line.
    pub extra: Vec<(String, serde_json::Value)>,
    /// Lines printed after the table.
    pub notes: Vec<String>,
    /// Set when the run found a problem (verify violations, failed connections): exit non-zero.
    pub failure: Option<String>,
}

/// Runs `spec` in this process or in worker processes, as its size requires.
pub fn run(spec: &Spec, reporter: &mut Reporter) -> Result<RunOutcome, Error> {
    let processes = spec.processes();
    if let Spec::Verify(v) = spec {
        if processes > 1 {
            return Err(Error::Usage(format!(
                "verify runs in one process (its ledger sees every receipt): use at most --conns-per-process \
                 ({}) connections",
                spec.common().conns_per_process
            )));
        }
        return verify::run(v, reporter);
    }
    if processes > 1 {
        return workers::run_parent(spec, processes, reporter);
    }
    ensure_fd_limit(spec.common(), spec.total_conns())?;
    let meter = crate::cpu::CpuMeter::start()?;
    let mut link = LocalLink::new(reporter);
    let totals = run_slice(spec, Slice::WHOLE, &mut link)?;
    let cpu = totals.cpu.map_or_else(|| meter.finish(1), Ok)?;
    finish(spec, reporter, &totals, &cpu, 1)
}

/// Runs one slice of `spec`, reporting through `link`. Verify runs whole, through [`run`] only.
pub fn run_slice(spec: &Spec, slice: Slice, link: &mut dyn Link) -> Result<SliceTotals, Error> {
    match spec {
        Spec::Fanout(s) => fanout::run_slice(s, slice, link),
        Spec::Verify(_) => Err(Error::Usage("verify cannot run in a worker process".into())),
        Spec::Connect(s) => connect::run_slice(s, slice, link),
        Spec::Idle(s) => idle::run_slice(s, slice, link),
    }
}

/// Builds the outcome of a run from its added-up totals and CPU use.
pub fn finish(
    spec: &Spec,
    reporter: &mut Reporter,
    totals: &SliceTotals,
    cpu: &CpuUsage,
    processes: u32,
) -> Result<RunOutcome, Error> {
    reporter.close()?;
    let c = spec.common();
    let facts = crate::report::RunFacts {
        label: c.label.clone(),
        scenario: spec.name().into(),
        url: c.url.clone(),
        connections: u64::from(spec.total_conns()),
        rooms: u64::from(c.rooms),
        duration: c.duration,
        messages_sent: totals.messages_sent,
        deliveries_expected: totals.deliveries_expected,
        deliveries_received: totals.deliveries_received,
        violations: 0,
    };
    let summary = RunSummary::new(facts, &reporter.overall(), cpu);
    let mut outcome = RunOutcome { summary, extra: Vec::new(), notes: Vec::new(), failure: None };
    outcome.extra.push(("transport".into(), c.transport.name().into()));
    outcome.extra.push(("io".into(), c.io.name().into()));
    if c.transport != Transport::WebSocket {
        outcome.notes.push(format!(
            "transport: {} (up to {} TCP connections per Socket.IO connection)",
            c.transport.name(),
            c.transport.sockets_per_conn()
        ));
    }
    if processes > 1 {
        outcome.notes.push(format!("ran in {processes} worker processes"));
    }
    if totals.bad_tokens > 0 {
        outcome.notes.push(format!(
            "{} deliveries carried no valid message token (the server altered or mixed up payloads)",
            totals.bad_tokens
        ));
    }
    match spec {
        Spec::Fanout(s) => fanout::finish(s, totals, &mut outcome),
        Spec::Verify(_) => {}
        Spec::Connect(s) => connect::finish(s, totals, &mut outcome),
        Spec::Idle(s) => idle::finish(s, reporter, &mut outcome),
    }
    Ok(outcome)
}
