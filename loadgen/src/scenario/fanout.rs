//! `fanout`: N receivers in R rooms (K each), P publishers emitting through the app's publish event at
//! a fixed rate or flat out with a window, every delivery's latency measured from its scheduled time
//! and every receipt checked.
//!
//! Message `seq` of publisher `p` goes to `--to-rooms` rooms except `--except-rooms` others, chosen
//! from `(seed, p, seq)` ([`targets`]); its expected deliveries are the target rooms'
//! members minus the excepted rooms' members minus the sender. Publishers are extra connections, in no
//! room unless `--publishers-join` (then they receive the others' messages, and their own must not come
//! back). Its `data` is the message token, then `_` and `x`s up to `--payload` bytes. Receivers find the
//! token in whatever the server delivers, record `receive time − scheduled time`, and pass the receipt
//! to the [`ReceiptChecker`] (exactly once, intended recipients only, per-publisher order).
//!
//! Flat out (`--window W`), a slot frees on the publish's ack or, with `--release delivered`, once the
//! message also reached its receivers ([`release`](super::release)).

use std::collections::HashMap;
use std::time::Duration;

use super::app::Fill;
use super::fanout_check::ReceiptChecker;
use super::plan::{room_name, targets, AudienceCounter, RoomPlan, TargetShape};
use super::release::{InFlight, ReleaseOn};
use super::setup::{connect_and_join, fail_on_notice, wait_for_start, Member};
use super::{pool_config, FanoutSpec, Link, RunOutcome, Slice, SliceTotals};
use crate::client::pool::Delivery;
use crate::client::{ConnId, Notice, Pool};
use crate::cpu::CpuMeter;
use crate::latency::token::StampCache;
use crate::latency::{FixedRate, MessageStamp, Recorder, RunMicros, Schedule, Window};
use crate::report::ProgressCounters;
use crate::{Error, PublisherId};

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
    if spec.to_rooms == 0 || spec.to_rooms.saturating_add(spec.except_rooms) > c.rooms {
        return Err(Error::Usage(format!(
            "--to-rooms ({}) must be at least 1 and --to-rooms + --except-rooms ({}) at most --rooms ({})",
            spec.to_rooms,
            spec.to_rooms.saturating_add(spec.except_rooms),
            c.rooms
        )));
    }
    if spec.window.is_some() && !c.app.acks {
        return Err(Error::Usage("--window frees a slot per ack; the app config says acks = false".into()));
    }
    if let ReleaseOn::Delivered { fraction } = spec.release {
        if spec.window.is_none() {
            return Err(Error::Usage("--release delivered frees window slots: it needs --window".into()));
        }
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(Error::Usage("--release-fraction must be above 0 and at most 1".into()));
        }
    }
    if spec.window.is_none() && !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(Error::Usage("--rate must be a positive number of messages per second".into()));
    }
    Ok(())
}

/// The targets' shape of `spec`'s messages.
pub fn shape(spec: &FanoutSpec) -> TargetShape {
    TargetShape { rooms: spec.common.rooms, to_rooms: spec.to_rooms, except_rooms: spec.except_rooms }
}

/// Runs this process's slice of a fanout run.
pub fn run_slice(spec: &FanoutSpec, slice: Slice, link: &mut dyn Link) -> Result<SliceTotals, Error> {
    check(spec)?;
    let c = &spec.common;
    let shape = shape(spec);
    let joined = if spec.publishers_join { spec.publishers } else { 0 };
    let plan = RoomPlan::new(c.seed, c.conns.saturating_add(joined), c.rooms, c.rooms_per_conn);
    let mut pool = Pool::new(pool_config(c, c.conns.saturating_add(spec.publishers))?, link.epoch())?;
    let rooms_of =
        |tag: u32| if tag < c.conns || spec.publishers_join { plan.rooms_of(tag) } else { Vec::new() };
    let tags = (0..c.conns)
        .filter(|i| slice.owns(*i))
        .chain((0..spec.publishers).filter(|p| slice.owns(*p)).map(|p| c.conns.saturating_add(p)));
    let member_rooms: Vec<(u32, Vec<u32>)> = tags.map(|tag| (tag, rooms_of(tag))).collect();
    let members: Vec<Member> = member_rooms
        .iter()
        .map(|(tag, rooms)| Member { tag: *tag, rooms: rooms.iter().map(|r| room_name(*r)).collect() })
        .collect();
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
    let local: Vec<(u32, usize)> = publishers.iter().enumerate().map(|(i, p)| (p.id.get(), i)).collect();
    let mut rx = Receiving {
        recorder: Recorder::new(start),
        stamps: StampCache::default(),
        checker: ReceiptChecker::new(c.seed, shape, spec.publishers, c.conns, &member_rooms),
        in_flight: InFlight::new(spec.publishers, &local, micros(spec.release_timeout)),
        received: 0,
        bad: 0,
        last: start,
    };
    drop(member_rooms);
    let mut audience = AudienceCounter::new(c.conns.saturating_add(joined), c.conns);

    let epoch = link.epoch();
    let end = start.plus_micros(micros(c.duration));
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
                    let t = targets(c.seed, shape, p.id.get(), m.seq);
                    let sender = c.conns.saturating_add(p.id.get());
                    let (expected, local_audience) = audience.count(&plan, &t, sender, slice);
                    data.clear();
                    MessageStamp { publisher: p.id, seq: m.seq, scheduled: m.at }.write_token(&mut data);
                    // `_` ends the token (a token reader stops at the first byte outside base 62 and `.`).
                    if data.len() < spec.payload {
                        data.push('_');
                    }
                    while data.len() < spec.payload {
                        data.push('x');
                    }
                    let to: Vec<String> = t.to.iter().map(|r| room_name(*r)).collect();
                    let except: Vec<String> = t.except.iter().map(|r| room_name(*r)).collect();
                    let expanded =
                        c.app.expand(&c.app.publish_args, &Fill { to: &to, except: &except, data: &data });
                    let args = super::AppConfig::split_args(&expanded);
                    let args: Vec<&[u8]> = args.iter().map(String::as_bytes).collect();
                    let Some(ack_id) = pool.emit(p.conn, &c.app.publish_event, &args, c.app.acks) else {
                        return Err(Error::Dropped(format!(
                            "publisher {} is no longer connected",
                            p.id.get()
                        )));
                    };
                    if c.app.acks {
                        p.unacked += 1;
                    }
                    if spec.window.is_some() {
                        let need = spec.release.needed(local_audience);
                        rx.in_flight.sent(p.id.get(), m.seq, ack_id, need, now);
                    }
                    totals.messages_sent += 1;
                    totals.deliveries_expected += expected;
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
        let expiry = if publishing { rx.in_flight.next_expiry() } else { None };
        let wake = [next_send, expiry, Some(next_tick), Some(if publishing { end } else { drain_end })]
            .into_iter()
            .flatten()
            .min();
        pool.turn(wake, &mut |d| rx.on_delivery(d))?;
        while let Some(notice) = pool.poll_notice() {
            match notice {
                Notice::Ack { tag, id, error, .. } => {
                    let Some(p) = by_tag.get(&tag).and_then(|&i| publishers.get_mut(i)) else { continue };
                    if error {
                        return Err(Error::Refused(format!(
                            "the server answered {:?} with an error (check --app-config and the rooms it allows)",
                            c.app.publish_event
                        )));
                    }
                    p.unacked = p.unacked.saturating_sub(1);
                    rx.in_flight.acked(p.id.get(), id, epoch.now());
                }
                Notice::Failed { failure, .. } => {
                    let at = epoch.now().micros_since(start) as f64 / 1e6;
                    return Err(failure.into_error(pool.target(), &format!("{at:.1} s into the run")));
                }
                Notice::Connected { .. } | Notice::Closed { .. } => {}
            }
        }
        rx.in_flight.expire(epoch.now());
        for (i, at) in rx.in_flight.take_freed() {
            if let Some(p) = publishers.get_mut(i) {
                p.schedule.release(at);
            }
        }
    }
    fail_on_notice(&mut pool, "at the end of the run")?;
    totals.deliveries_received = rx.received;
    totals.bad_tokens = rx.bad;
    totals.check = rx.checker.counts();
    totals.window_timeouts = rx.in_flight.timeouts();
    let now = epoch.now();
    let counters = counters(&pool, members.len(), &totals, rx.received);
    link.interval(rx.recorder.rotate(now), counters)?;
    totals.cpu = Some(meter.finish(1)?);
    Ok(totals)
}

/// What receivers have seen: latencies, the receipt check, the window's messages in flight, counts,
/// and the time of the last delivery.
struct Receiving {
    recorder: Recorder,
    /// Decoded tokens: a message's recipients all get the same one.
    stamps: StampCache,
    checker: ReceiptChecker,
    in_flight: InFlight,
    received: u64,
    bad: u64,
    last: RunMicros,
}

impl Receiving {
    /// Records one delivery. Hot path: one token scan (a cache probe; a decode on a miss), one
    /// histogram increment, one receipt check.
    fn on_delivery(&mut self, d: Delivery<'_>) {
        match self.stamps.find_in(d.text) {
            Ok(stamp) => {
                self.recorder.record_delivery(stamp.scheduled, d.at);
                self.received += 1;
                let p = stamp.publisher.get();
                if self.checker.on_receipt(d.tag, p, stamp.seq).is_first() {
                    self.in_flight.delivered(p, stamp.seq, d.at);
                }
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

/// The violations of a fanout run: missing (expected − first receipts) and what the checks counted.
pub fn violations(totals: &SliceTotals) -> [(&'static str, u64); 7] {
    let k = &totals.check;
    [
        ("missing", totals.deliveries_expected.saturating_sub(k.first)),
        ("duplicated", k.duplicated),
        ("excluded", k.excluded),
        ("not_targeted", k.not_targeted),
        ("unknown_message", k.unknown_message),
        ("reordered", k.reordered),
        ("malformed", totals.bad_tokens),
    ]
}

/// Adds fanout's lines and JSON keys to the outcome; any violation fails the run (exit status 1).
pub fn finish(spec: &FanoutSpec, totals: &SliceTotals, outcome: &mut RunOutcome) {
    let kinds = violations(totals);
    let count: u64 = kinds.iter().map(|(_, n)| n).sum();
    outcome.summary.violations = count;
    let missing = kinds[0].1;
    if missing > 0 {
        outcome.notes.push(format!(
            "{missing} of {} expected deliveries did not arrive within the drain ({:.1} s after the last send)",
            totals.deliveries_expected,
            spec.drain.as_secs_f64()
        ));
    }
    if count == 0 {
        outcome.notes.push(
            "fanout: every intended recipient got each message exactly once, in order; nobody else got it"
                .into(),
        );
    } else {
        let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{} {n}", k.replace('_', " "))).collect();
        outcome.notes.push(format!("violations: {}", list.join(", ")));
        outcome.notes.extend(totals.check.examples.iter().map(|e| format!("  {e}")));
        outcome.failure = Some(format!("fanout found {count} delivery violation(s)"));
    }
    if totals.window_timeouts > 0 {
        outcome.notes.push(format!(
            "{} window slots were freed by the {:.1} s release timeout, not by their deliveries",
            totals.window_timeouts,
            spec.release_timeout.as_secs_f64()
        ));
    }
    let extra = &mut outcome.extra;
    extra.push(("publishers".into(), spec.publishers.into()));
    extra.push(("payload_bytes".into(), (spec.payload as u64).into()));
    match spec.window {
        Some(w) => extra.push(("window".into(), w.into())),
        None => extra.push(("rate_per_publisher".into(), spec.rate.into())),
    }
    extra.push(("bad_tokens".into(), totals.bad_tokens.into()));
    extra.push(("to_rooms".into(), spec.to_rooms.into()));
    extra.push(("except_rooms".into(), spec.except_rooms.into()));
    extra.push(("publishers_join".into(), spec.publishers_join.into()));
    if spec.window.is_some() {
        extra.push(("release".into(), spec.release.name().into()));
        if let ReleaseOn::Delivered { fraction } = spec.release {
            extra.push(("release_fraction".into(), fraction.into()));
        }
        extra.push(("window_timeouts".into(), totals.window_timeouts.into()));
    }
    for (key, n) in kinds {
        extra.push((format!("violations_{key}"), n.into()));
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
