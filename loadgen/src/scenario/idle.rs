//! `idle`: hold N connections, each in `--rooms-per-conn` rooms, for the duration, answering the
//! server's pings and nothing else, so the server's memory per connection can be read. With
//! `--server-pid`, the server's RSS is read before the first connection, when all are up, and at the
//! end of the hold. The latency histogram is the handshake latency of the setup.

use super::plan::{room_name, RoomPlan};
use super::setup::{connect_and_join, fail_on_notice, wait_for_start, Member};
use super::{pool_config, IdleSpec, Link, Reporter, RunOutcome, Slice, SliceTotals};
use crate::client::pool::Delivery;
use crate::client::Pool;
use crate::cpu::CpuMeter;
use crate::latency::{IntervalSnapshot, Recorder};
use crate::report::ProgressCounters;
use crate::Error;

/// Runs this process's slice of an idle run.
pub fn run_slice(spec: &IdleSpec, slice: Slice, link: &mut dyn Link) -> Result<SliceTotals, Error> {
    let c = &spec.common;
    let plan = RoomPlan::new(c.seed, c.conns, c.rooms.max(1), c.rooms_per_conn);
    let mut pool = Pool::new(pool_config(c, c.conns)?, link.epoch())?;
    let members: Vec<Member> = (0..c.conns)
        .filter(|i| slice.owns(*i))
        .map(|i| {
            let rooms = if c.rooms == 0 { Vec::new() } else { plan.rooms_of(i) };
            Member { tag: i, rooms: rooms.into_iter().map(room_name).collect() }
        })
        .collect();
    let set_up = connect_and_join(
        &mut pool,
        &c.app,
        &members,
        c.ramp_rate / f64::from(slice.count),
        link,
        u64::from(c.conns),
    )?;
    let start = wait_for_start(&mut pool, link)?;
    let meter = CpuMeter::start()?;
    let epoch = link.epoch();
    let counters = |pool: &Pool| ProgressCounters {
        connections_up: pool.ready() as u64,
        connections_target: members.len() as u64,
        ..ProgressCounters::default()
    };
    // The handshakes are this run's latencies: hand them over as the first interval.
    link.interval(IntervalSnapshot { start, end: start, histogram: set_up.handshakes }, counters(&pool))?;
    let end = start.plus_micros(u64::try_from(c.duration.as_micros()).unwrap_or(u64::MAX));
    let mut recorder = Recorder::new(start);
    let mut next_tick = start.plus_micros(1_000_000);
    loop {
        let now = epoch.now();
        if now >= end {
            break;
        }
        if now >= next_tick {
            link.interval(recorder.rotate(now), counters(&pool))?;
            next_tick = next_tick.plus_micros(1_000_000).max(now);
        }
        pool.turn(Some(next_tick.min(end)), &mut |_: Delivery<'_>| {})?;
        let at = epoch.now().micros_since(start) as f64 / 1e6;
        fail_on_notice(&mut pool, &format!("{at:.1} s into the idle hold"))?;
    }
    link.interval(recorder.rotate(epoch.now()), counters(&pool))?;
    Ok(SliceTotals {
        connections: pool.ready() as u64,
        cpu: Some(meter.finish(1)?),
        ..SliceTotals::default()
    })
}

/// Adds the server's RSS figures (when a server process was watched).
pub fn finish(spec: &IdleSpec, reporter: &Reporter, outcome: &mut RunOutcome) {
    let Some(pid) = spec.server_pid else { return };
    let rss = reporter.rss();
    let kib = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| format!("{v} KiB"));
    outcome.notes.push(format!(
        "server pid {pid} RSS: before {}, all connected {}, end of hold {}",
        kib(rss.before),
        kib(rss.ready),
        kib(rss.last)
    ));
    let conns = u64::from(spec.common.conns.max(1));
    if let (Some(before), Some(after)) = (rss.before, rss.last.or(rss.ready)) {
        let per_conn = after.saturating_sub(before) * 1024 / conns;
        outcome
            .notes
            .push(format!("server RSS per connection: {per_conn} bytes ({} connections)", spec.common.conns));
        outcome.extra.push(("server_rss_before_kib".into(), before.into()));
        outcome.extra.push(("server_rss_after_kib".into(), after.into()));
        outcome.extra.push(("server_rss_per_conn_bytes".into(), per_conn.into()));
    }
}
