//! `fanout`: N receivers in R rooms (K each), P publishers emitting through the app's publish event at
//! a fixed rate or flat out with a window, every delivery's latency measured from its scheduled time.
//!
//! Message `seq` of publisher `p` goes to one room, chosen from `(seed, p, seq)`; its expected
//! deliveries are that room's members (publishers join no room, so none is excluded). Its `data` is the
//! message token, then `_` and `x`s up to `--payload` bytes. Receivers find the token in whatever the server
//! delivers and record `receive time − scheduled time`.

use std::collections::HashMap;
use std::time::Duration;

use super::app::Fill;
use super::plan::{room_name, PlanRng, RoomPlan};
use super::setup::{connect_and_join, fail_on_notice, wait_for_start, Member};
use super::{pool_config, FanoutSpec, Link, RunOutcome, Slice, SliceTotals};
use crate::client::pool::Delivery;
use crate::client::{ConnId, Notice, Pool};
use crate::cpu::CpuMeter;
use crate::latency::{FixedRate, MessageStamp, Recorder, RunMicros, Schedule, Window};
use crate::report::ProgressCounters;
use crate::{Error, PublisherId};

/// Stand-in for `$data` in the prebuilt publish arguments; replaced per message.
const DATA_MARKER: &str = "@@rc-data@@";
/// The drain ends early once no delivery arrived for this long and every publish was acked.
const QUIET: Duration = Duration::from_millis(500);

struct Publisher {
    conn: ConnId,
    id: PublisherId,
    schedule: Schedule,
    unacked: u64,
}

/// Checks the settings a fanout run cannot work without.
pub fn check(spec: &FanoutSpec) -> Result<(), Error> {
    let c = &spec.common;
    if c.rooms == 0 || c.rooms_per_conn == 0 {
        return Err(Error::Usage("fanout needs --rooms and --rooms-per-conn of at least 1".into()));
    }
    if spec.publishers == 0 {
        return Err(Error::Usage("fanout needs at least one publisher (--publishers)".into()));
    }
    if spec.window.is_some() && !c.app.acks {
        return Err(Error::Usage("--window frees a slot per ack; the app config says acks = false".into()));
    }
    if spec.window.is_none() && !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(Error::Usage("--rate must be a positive number of messages per second".into()));
    }
    Ok(())
}

/// Runs this process's slice of a fanout run.
pub fn run_slice(spec: &FanoutSpec, slice: Slice, link: &mut dyn Link) -> Result<SliceTotals, Error> {
    check(spec)?;
    let c = &spec.common;
    let plan = RoomPlan::new(c.seed, c.conns, c.rooms, c.rooms_per_conn);
    let mut pool = Pool::new(pool_config(c, c.conns.saturating_add(spec.publishers))?, link.epoch())?;
    let receivers = (0..c.conns)
        .filter(|i| slice.owns(*i))
        .map(|i| Member { tag: i, rooms: plan.rooms_of(i).into_iter().map(room_name).collect() });
    let publishers = (0..spec.publishers)
        .filter(|p| slice.owns(*p))
        .map(|p| Member { tag: c.conns.saturating_add(p), rooms: Vec::new() });
    let members: Vec<Member> = receivers.chain(publishers).collect();
    let total = u64::from(c.conns) + u64::from(spec.publishers);
    let set_up =
        connect_and_join(&mut pool, &c.app, &members, c.ramp_rate / f64::from(slice.count), link, total)?;
    let start = wait_for_start(&mut pool, link)?;
    let meter = CpuMeter::start()?;

    let mut publishers = Vec::new();
    let mut by_tag = HashMap::new();
    for (member, conn) in members.iter().zip(&set_up.conns).filter(|(m, _)| m.tag >= c.conns) {
        let schedule = match spec.window {
            Some(w) => Schedule::Window(Window::new(start, w)?),
            None => Schedule::FixedRate(FixedRate::new(start, spec.rate)?),
        };
        by_tag.insert(member.tag, publishers.len());
        publishers.push(Publisher {
            conn: *conn,
            id: PublisherId::new(member.tag - c.conns),
            schedule,
            unacked: 0,
        });
    }
    let templates: Vec<Vec<String>> = (0..c.rooms)
        .map(|r| {
            let to = [room_name(r)];
            let fill = Fill { to: &to, except: &[], data: DATA_MARKER };
            super::AppConfig::split_args(&c.app.expand(&c.app.publish_args, &fill))
        })
        .collect();

    let epoch = link.epoch();
    let end = start.plus_micros(micros(c.duration));
    let mut rx = Receiving::new(start);
    let mut totals = SliceTotals { connections: pool.ready() as u64, ..SliceTotals::default() };
    let mut next_tick = start.plus_micros(1_000_000);
    let mut data = String::with_capacity(spec.payload.max(64));
    let drain_end = end.plus_micros(micros(spec.drain));
    loop {
        let now = epoch.now();
        // Messages due before the end are sent even if a slow turn carried `now` past it (late, with
        // their scheduled times), so a run sends what its schedule says.
        let owed = publishers.iter().any(|p| p.schedule.next_due_at().is_some_and(|t| t < end));
        let publishing = now < end || owed;
        if publishing {
            for p in &mut publishers {
                while p.schedule.next_due_at().is_some_and(|t| t < end && t <= now) {
                    let Some(m) = p.schedule.poll_due(now) else { break };
                    let room = PlanRng::new(c.seed, 2 + u64::from(p.id.get()), m.seq).below(c.rooms);
                    data.clear();
                    MessageStamp { publisher: p.id, seq: m.seq, scheduled: m.at }.write_token(&mut data);
                    // `_` ends the token (a token reader stops at the first byte outside base 62 and `.`).
                    if data.len() < spec.payload {
                        data.push('_');
                    }
                    while data.len() < spec.payload {
                        data.push('x');
                    }
                    let args: Vec<String> = templates
                        .get(room as usize)
                        .map(|t| t.iter().map(|a| a.replacen(DATA_MARKER, &data, 1)).collect())
                        .unwrap_or_default();
                    let args: Vec<&[u8]> = args.iter().map(String::as_bytes).collect();
                    if pool.emit(p.conn, &c.app.publish_event, &args, c.app.acks).is_none() {
                        return Err(Error::Dropped(format!(
                            "publisher {} is no longer connected",
                            p.id.get()
                        )));
                    }
                    if c.app.acks {
                        p.unacked += 1;
                    }
                    totals.messages_sent += 1;
                    totals.deliveries_expected += plan.members(room).len() as u64;
                }
            }
        } else {
            let acked = publishers.iter().all(|p| p.unacked == 0);
            let quiet = now.micros_since(rx.last.max(end)) >= micros(QUIET);
            let all_in = slice.count == 1 && rx.received + rx.bad >= totals.deliveries_expected;
            if now >= drain_end || (acked && (quiet || all_in)) {
                break;
            }
        }
        if now >= next_tick {
            let counters = counters(&pool, members.len(), &totals, rx.received);
            link.interval(rx.recorder.rotate(now), counters)?;
            next_tick = next_tick.plus_micros(1_000_000).max(now);
        }
        let next_send = publishers.iter().filter_map(|p| p.schedule.next_due_at()).filter(|t| *t < end).min();
        let wake = [next_send, Some(next_tick), Some(if publishing { end } else { drain_end })]
            .into_iter()
            .flatten()
            .min();
        pool.turn(wake, &mut |d| rx.on_delivery(d))?;
        while let Some(notice) = pool.poll_notice() {
            match notice {
                Notice::Ack { tag, error, .. } => {
                    let Some(p) = by_tag.get(&tag).and_then(|&i| publishers.get_mut(i)) else { continue };
                    if error {
                        return Err(Error::Refused(format!(
                            "the server answered {:?} with an error (check --app-config and the rooms it allows)",
                            c.app.publish_event
                        )));
                    }
                    p.unacked = p.unacked.saturating_sub(1);
                    p.schedule.release(epoch.now());
                }
                Notice::Failed { failure, .. } => {
                    let at = epoch.now().micros_since(start) as f64 / 1e6;
                    return Err(failure.into_error(pool.target(), &format!("{at:.1} s into the run")));
                }
                Notice::Connected { .. } | Notice::Closed { .. } => {}
            }
        }
    }
    fail_on_notice(&mut pool, "at the end of the run")?;
    totals.deliveries_received = rx.received;
    totals.bad_tokens = rx.bad;
    let now = epoch.now();
    let counters = counters(&pool, members.len(), &totals, rx.received);
    link.interval(rx.recorder.rotate(now), counters)?;
    totals.cpu = Some(meter.finish(1)?);
    Ok(totals)
}

/// What receivers have seen: latencies, counts, and the time of the last delivery.
#[derive(Debug)]
pub struct Receiving {
    /// Latencies from the scheduled time.
    pub recorder: Recorder,
    /// Deliveries with a valid token.
    pub received: u64,
    /// Deliveries without one.
    pub bad: u64,
    /// When the last delivery arrived.
    pub last: RunMicros,
}

impl Receiving {
    /// Nothing received yet; intervals start at `start`.
    pub fn new(start: RunMicros) -> Self {
        Receiving { recorder: Recorder::new(start), received: 0, bad: 0, last: start }
    }

    /// Records one delivery. Hot path: one token scan, two histogram increments.
    pub fn on_delivery(&mut self, d: Delivery<'_>) {
        match MessageStamp::find_in(d.text) {
            Ok(stamp) => {
                self.recorder.record_delivery(stamp.scheduled, d.at);
                self.received += 1;
            }
            Err(_) => self.bad += 1,
        }
        self.last = d.at;
    }
}

fn counters(pool: &Pool, target: usize, totals: &SliceTotals, received: u64) -> ProgressCounters {
    ProgressCounters {
        connections_up: pool.ready() as u64,
        connections_target: target as u64,
        messages_sent: totals.messages_sent,
        deliveries_received: received,
        cpu_busy: None,
    }
}

/// Adds fanout's lines and JSON keys to the outcome.
pub fn finish(spec: &FanoutSpec, totals: &SliceTotals, outcome: &mut RunOutcome) {
    let missing = totals.deliveries_expected.saturating_sub(totals.deliveries_received);
    if missing > 0 {
        outcome.notes.push(format!(
            "{missing} of {} expected deliveries did not arrive within the drain ({:.1} s after the last send)",
            totals.deliveries_expected,
            spec.drain.as_secs_f64()
        ));
    }
    outcome.extra.push(("publishers".into(), spec.publishers.into()));
    outcome.extra.push(("payload_bytes".into(), (spec.payload as u64).into()));
    match spec.window {
        Some(w) => outcome.extra.push(("window".into(), w.into())),
        None => outcome.extra.push(("rate_per_publisher".into(), spec.rate.into())),
    }
    outcome.extra.push(("bad_tokens".into(), totals.bad_tokens.into()));
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
