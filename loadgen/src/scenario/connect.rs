//! `connect`: connection churn. New connections start at `--rate` per second (open loop) for the
//! duration; each connects, joins one room, stays `--hold`, leaves, disconnects. At most `--conns`
//! are open at once (a connection due while the cap is reached starts late, and its handshake
//! latency, counted from when it was due, shows that). The latency histogram is the handshake:
//! scheduled start → namespace CONNECT answer.
//!
//! Failures are counted, not fatal: a churn run reports how many failed and exits non-zero if any
//! did. If the very first connections fail before any succeeded (server down, wrong URL), the run
//! stops at once with that reason.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::plan::room_name;
use super::setup::{join, leave, wait_for_start};
use super::{pool_config, ConnectSpec, Link, RunOutcome, Slice, SliceTotals};
use crate::client::pool::Delivery;
use crate::client::{ConnId, Notice, Pool};
use crate::cpu::CpuMeter;
use crate::latency::{FixedRate, Recorder, RunMicros};
use crate::report::ProgressCounters;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Handshaking,
    Joining,
    Holding,
    Leaving,
    Closing,
}

/// Runs this process's slice of a connect run: `1/count` of the rate and of the cap.
pub fn run_slice(spec: &ConnectSpec, slice: Slice, link: &mut dyn Link) -> Result<SliceTotals, Error> {
    let c = &spec.common;
    if !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(Error::Usage("--rate must be a positive number of connections per second".into()));
    }
    let rooms = c.rooms.max(1);
    let cap = slice.share(c.conns.max(1)).max(1) as usize;
    // Closed connections hold their port for a minute (TIME_WAIT): size the source addresses for
    // a minute of churn, not just for the connections open at once.
    let churn = (spec.rate * 60.0).min(f64::from(u32::MAX)) as u32;
    let mut pool = Pool::new(pool_config(c, c.conns.max(churn))?, link.epoch())?;
    let start = wait_for_start(&mut pool, link)?;
    let meter = CpuMeter::start()?;
    let epoch = link.epoch();
    let end = start.plus_micros(micros(c.duration));
    let drain_end = end.plus_micros(micros(spec.hold + c.handshake_timeout * 2));
    let mut schedule = FixedRate::new(start, spec.rate / f64::from(slice.count.max(1)))?;
    let mut recorder = Recorder::new(start);
    let mut totals = SliceTotals::default();
    let mut steps: HashMap<ConnId, (Step, u32)> = HashMap::new();
    let mut holds: VecDeque<(RunMicros, ConnId)> = VecDeque::new();
    let mut ever_connected = false;
    let mut next_tick = start.plus_micros(1_000_000);
    let mut number = slice.index;
    loop {
        let now = epoch.now();
        while schedule.next_due_at() < end && schedule.next_due_at() <= now && steps.len() < cap {
            let Some(due) = schedule.poll_due(now) else { break };
            let id = pool.open(number, due.at);
            steps.insert(id, (Step::Handshaking, number));
            number = number.wrapping_add(slice.count.max(1));
            totals.opened += 1;
        }
        while let Some(&(_, id)) = holds.front().filter(|(at, _)| *at <= now) {
            holds.pop_front();
            if let Some((step, n)) = steps.get_mut(&id) {
                *step = Step::Leaving;
                leave(&mut pool, &c.app, id, &room_name(*n % rooms));
                if !c.app.acks {
                    *step = Step::Closing;
                    pool.close(id);
                }
            }
        }
        if now >= end && (steps.is_empty() || now >= drain_end) {
            break;
        }
        if now >= next_tick {
            link.interval(recorder.rotate(now), counters(&pool, cap, &totals))?;
            next_tick = next_tick.plus_micros(1_000_000).max(now);
        }
        let next_open = (schedule.next_due_at() < end && steps.len() < cap).then(|| schedule.next_due_at());
        let wake = [
            next_open,
            holds.front().map(|h| h.0),
            Some(next_tick),
            Some(if now < end { end } else { drain_end }),
        ]
        .into_iter()
        .flatten()
        .min();
        pool.turn(wake, &mut |_: Delivery<'_>| {})?;
        while let Some(notice) = pool.poll_notice() {
            match notice {
                Notice::Connected { conn, handshake_micros, tag } => {
                    ever_connected = true;
                    recorder.record_micros(handshake_micros);
                    join(&mut pool, &c.app, conn, &room_name(tag % rooms));
                    if let Some((step, _)) = steps.get_mut(&conn) {
                        *step = Step::Joining;
                    }
                    if !c.app.acks {
                        holds.push_back((epoch.now().plus_micros(micros(spec.hold)), conn));
                        if let Some((step, _)) = steps.get_mut(&conn) {
                            *step = Step::Holding;
                        }
                    }
                }
                Notice::Ack { conn, error, .. } => {
                    if error {
                        return Err(Error::Refused(format!(
                            "the server answered {:?} or {:?} with an error (check --app-config)",
                            c.app.join_event, c.app.leave_event
                        )));
                    }
                    match steps.get_mut(&conn) {
                        Some((step @ Step::Joining, _)) => {
                            *step = Step::Holding;
                            holds.push_back((epoch.now().plus_micros(micros(spec.hold)), conn));
                        }
                        Some((step @ Step::Leaving, _)) => {
                            *step = Step::Closing;
                            pool.close(conn);
                        }
                        _ => {}
                    }
                }
                Notice::Closed { conn, .. } => {
                    if steps.remove(&conn).is_some() {
                        totals.completed += 1;
                    }
                }
                Notice::Failed { conn, failure, .. } => {
                    steps.remove(&conn);
                    if !ever_connected {
                        return Err(failure.into_error(pool.target(), "on the first connections of the run"));
                    }
                    totals.failed += 1;
                    if totals.first_failure.is_none() {
                        let at = epoch.now().micros_since(start) as f64 / 1e6;
                        totals.first_failure = Some(format!("{failure} ({at:.1} s into the run)"));
                    }
                }
            }
        }
    }
    // Connections still open at the drain's end count as failed.
    if !steps.is_empty() {
        totals.failed += steps.len() as u64;
        totals.first_failure.get_or_insert_with(|| {
            format!("{} connections had not finished their cycle when the run ended", steps.len())
        });
    }
    let now = epoch.now();
    link.interval(recorder.rotate(now), counters(&pool, cap, &totals))?;
    totals.cpu = Some(meter.finish(1)?);
    Ok(totals)
}

fn counters(pool: &Pool, cap: usize, totals: &SliceTotals) -> ProgressCounters {
    ProgressCounters {
        connections_up: pool.ready() as u64,
        connections_target: cap as u64,
        messages_sent: totals.opened,
        deliveries_received: totals.completed,
        cpu_busy: None,
    }
}

/// Adds connect's lines and JSON keys; a run with failed connections fails.
pub fn finish(spec: &ConnectSpec, totals: &SliceTotals, outcome: &mut RunOutcome) {
    let secs = spec.common.duration.as_secs_f64().max(1e-9);
    let per_s = totals.completed as f64 / secs;
    outcome.notes.push(format!(
        "connect: {} opened, {} completed connect/join/leave/disconnect ({per_s:.1}/s), {} failed",
        totals.opened, totals.completed, totals.failed
    ));
    if let Some(first) = &totals.first_failure {
        outcome.notes.push(format!("first failure: {first}"));
    }
    if totals.failed > 0 {
        outcome.failure = Some(format!("{} of {} connections failed", totals.failed, totals.opened));
    }
    outcome.extra.push(("connections_opened".into(), totals.opened.into()));
    outcome.extra.push(("connections_completed".into(), totals.completed.into()));
    outcome.extra.push(("connections_failed".into(), totals.failed.into()));
    outcome.extra.push(("connections_per_s".into(), ((per_s * 10.0).round() / 10.0).into()));
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
