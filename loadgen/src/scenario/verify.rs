//! `verify`: does the server deliver each message to exactly the connections it should?
//!
//! Every connection joins `--rooms-per-conn` rooms (overlapping by design). The first `--publishers`
//! connections also publish: message `seq` of publisher `p` goes to 1–3 rooms with 0–1 rooms in its
//! `except` list, all drawn from `(seed, p, seq)`. Its intended recipients are the members of the
//! target rooms, minus the members of the excepted rooms, minus the sender; the excepted members and
//! the sender are "excluded". The delivery ledger checks every receipt: each intended recipient
//! exactly once, nobody else, each publisher's messages in order. One process only (the ledger must
//! see every receipt).

use std::collections::HashMap;
use std::time::Duration;

use super::app::Fill;
use super::plan::{room_name, PlanRng, RoomPlan};
use super::setup::{connect_and_join, fail_on_notice, wait_for_start, Member};
use super::{pool_config, LocalLink, Reporter, RunOutcome, SliceTotals, VerifySpec};
use crate::client::pool::Delivery;
use crate::client::{Notice, Pool};
use crate::cpu::CpuMeter;
use crate::delivery::{AudienceId, DeliveryLedger, DeliveryReport, Violation};
use crate::latency::{FixedRate, MessageStamp, Recorder, RunMicros};
use crate::report::ProgressCounters;
use crate::{Error, PublisherId, RecipientIdx};

/// The drain ends once every publish was acked and no delivery arrived for this long, so late
/// duplicates and strays still get counted.
const QUIET: Duration = Duration::from_millis(500);

/// One message's targets: rooms to send to and rooms to leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Targets {
    /// Target rooms.
    pub to: Vec<u32>,
    /// Excepted rooms.
    pub except: Vec<u32>,
}

/// The targets of message `seq` of publisher `p`: a pure function of the seed.
pub fn targets(seed: u64, rooms: u32, p: u32, seq: u64) -> Targets {
    let mut rng = PlanRng::new(seed, 1_000 + u64::from(p), seq);
    let to_count = 1 + rng.below(rooms.min(3));
    let to = rng.distinct(to_count, rooms);
    let except_count = rng.below(2);
    let except = rng.distinct(except_count, rooms);
    Targets { to, except }
}

/// Intended and excluded connections of a message from `sender` to `targets`.
pub fn audience(plan: &RoomPlan, targets: &Targets, sender: u32) -> (Vec<u32>, Vec<u32>) {
    let mut excluded: Vec<u32> =
        targets.except.iter().flat_map(|r| plan.members(*r).iter().copied()).collect();
    excluded.push(sender);
    excluded.sort_unstable();
    excluded.dedup();
    let mut intended: Vec<u32> = targets.to.iter().flat_map(|r| plan.members(*r).iter().copied()).collect();
    intended.sort_unstable();
    intended.dedup();
    intended.retain(|c| excluded.binary_search(c).is_err());
    (intended, excluded)
}

struct Checking {
    ledger: DeliveryLedger,
    recorder: Recorder,
    received: u64,
    malformed: u64,
    malformed_example: Option<String>,
    last: RunMicros,
}

impl Checking {
    fn on_delivery(&mut self, d: Delivery<'_>) {
        self.last = d.at;
        self.received += 1;
        match MessageStamp::find_in(d.text) {
            Ok(stamp) => {
                self.recorder.record_delivery(stamp.scheduled, d.at);
                // The tag is a connection number below the ledger's size: cannot fail.
                let _ = self.ledger.record_receipt(RecipientIdx::new(d.tag), stamp.publisher, stamp.seq);
            }
            Err(e) => {
                self.malformed += 1;
                if self.malformed_example.is_none() {
                    let text: String = String::from_utf8_lossy(d.text).chars().take(80).collect();
                    self.malformed_example = Some(format!("connection {} got {text:?}: {e}", d.tag));
                }
            }
        }
    }
}

/// Runs a verify scenario in this process and reports through `reporter`.
pub fn run(spec: &VerifySpec, reporter: &mut Reporter) -> Result<RunOutcome, Error> {
    let c = &spec.common;
    if c.rooms == 0 || c.rooms_per_conn == 0 || c.conns == 0 {
        return Err(Error::Usage("verify needs --conns, --rooms and --rooms-per-conn of at least 1".into()));
    }
    if spec.publishers == 0 || spec.publishers > c.conns {
        return Err(Error::Usage("verify needs 1 to --conns publishers (taken from the connections)".into()));
    }
    if !(spec.rate.is_finite() && spec.rate > 0.0) {
        return Err(Error::Usage("--rate must be a positive number of messages per second".into()));
    }
    super::ensure_fd_limit(c, c.conns)?;
    let plan = RoomPlan::new(c.seed, c.conns, c.rooms, c.rooms_per_conn);
    let mut link = LocalLink::new(reporter);
    let link = &mut link;
    let mut pool = Pool::new(pool_config(c, c.conns)?, super::Link::epoch(link))?;
    let members: Vec<Member> = (0..c.conns)
        .map(|i| Member { tag: i, rooms: plan.rooms_of(i).into_iter().map(room_name).collect() })
        .collect();
    let set_up = connect_and_join(&mut pool, &c.app, &members, c.ramp_rate, link, u64::from(c.conns))?;
    let start = wait_for_start(&mut pool, link)?;
    let meter = CpuMeter::start()?;
    let epoch = super::Link::epoch(link);
    let end = start.plus_micros(micros(c.duration));
    let drain_end = end.plus_micros(micros(spec.drain));
    let mut schedules: Vec<FixedRate> =
        (0..spec.publishers).map(|_| FixedRate::new(start, spec.rate)).collect::<Result<_, _>>()?;
    let mut unacked = vec![0u64; spec.publishers as usize];
    let mut check = Checking {
        ledger: DeliveryLedger::new(c.conns).with_example_limit(spec.max_examples),
        recorder: Recorder::new(start),
        received: 0,
        malformed: 0,
        malformed_example: None,
        last: start,
    };
    let mut audiences: HashMap<(Targets, u32), AudienceId> = HashMap::new();
    let mut sent = 0u64;
    let mut next_tick = start.plus_micros(1_000_000);
    let mut data = String::new();
    loop {
        let now = epoch.now();
        for (p, schedule) in (0u32..).zip(schedules.iter_mut()) {
            while schedule.next_due_at() < end && schedule.next_due_at() <= now {
                let Some(m) = schedule.poll_due(now) else { break };
                let t = targets(c.seed, c.rooms, p, m.seq);
                let audience_id = match audiences.get(&(t.clone(), p)) {
                    Some(a) => *a,
                    None => {
                        let (intended, excluded) = audience(&plan, &t, p);
                        let a = check.ledger.add_audience(
                            intended.into_iter().map(RecipientIdx::new),
                            excluded.into_iter().map(RecipientIdx::new),
                        )?;
                        audiences.insert((t.clone(), p), a);
                        a
                    }
                };
                let publisher = PublisherId::new(p);
                check.ledger.expect(publisher, m.seq, audience_id)?;
                data.clear();
                MessageStamp { publisher, seq: m.seq, scheduled: m.at }.write_token(&mut data);
                let to: Vec<String> = t.to.iter().map(|r| room_name(*r)).collect();
                let except: Vec<String> = t.except.iter().map(|r| room_name(*r)).collect();
                let expanded =
                    c.app.expand(&c.app.publish_args, &Fill { to: &to, except: &except, data: &data });
                let args = super::AppConfig::split_args(&expanded);
                let args: Vec<&[u8]> = args.iter().map(String::as_bytes).collect();
                let conn = set_up.conns.get(p as usize).copied();
                if conn.and_then(|conn| pool.emit(conn, &c.app.publish_event, &args, c.app.acks)).is_none() {
                    return Err(Error::Dropped(format!("publisher {p} is no longer connected")));
                }
                sent += 1;
                if let (true, Some(u)) = (c.app.acks, unacked.get_mut(p as usize)) {
                    *u += 1;
                }
            }
        }
        if now >= end {
            let acked = unacked.iter().all(|u| *u == 0);
            if now >= drain_end || (acked && now.micros_since(check.last.max(end)) >= micros(QUIET)) {
                break;
            }
        }
        if now >= next_tick {
            let counters = ProgressCounters {
                connections_up: pool.ready() as u64,
                connections_target: u64::from(c.conns),
                messages_sent: sent,
                deliveries_received: check.received,
                cpu_busy: None,
            };
            super::Link::interval(link, check.recorder.rotate(now), counters)?;
            next_tick = next_tick.plus_micros(1_000_000).max(now);
        }
        let next_send = schedules.iter().map(FixedRate::next_due_at).filter(|t| *t < end).min();
        let wake = [next_send, Some(next_tick), Some(if now < end { end } else { drain_end })]
            .into_iter()
            .flatten()
            .min();
        pool.turn(wake, &mut |d| check.on_delivery(d))?;
        while let Some(notice) = pool.poll_notice() {
            match notice {
                Notice::Ack { tag, error, .. } => {
                    if error {
                        return Err(Error::Refused(format!(
                            "the server answered {:?} with an error (check --app-config)",
                            c.app.publish_event
                        )));
                    }
                    if let Some(u) = unacked.get_mut(tag as usize) {
                        *u = u.saturating_sub(1);
                    }
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
    let now = epoch.now();
    let counters = ProgressCounters {
        connections_up: pool.ready() as u64,
        connections_target: u64::from(c.conns),
        messages_sent: sent,
        deliveries_received: check.received,
        cpu_busy: None,
    };
    super::Link::interval(link, check.recorder.rotate(now), counters)?;
    let cpu = meter.finish(1)?;
    drop(pool);
    let report = check.ledger.report();
    let totals = SliceTotals {
        connections: u64::from(c.conns),
        messages_sent: sent,
        deliveries_expected: report.deliveries_expected,
        deliveries_received: report.deliveries_received,
        bad_tokens: check.malformed,
        ..SliceTotals::default()
    };
    let spec_any = super::Spec::Verify(spec.clone());
    let mut outcome = super::finish(&spec_any, reporter, &totals, &cpu, 1)?;
    let violations = report.violations() + check.malformed;
    outcome.summary.violations = violations;
    outcome.notes.extend(describe(&report, check.malformed, check.malformed_example.as_deref()));
    for (key, value) in [
        ("missing", report.missing),
        ("duplicated", report.duplicated),
        ("excluded", report.excluded),
        ("not_targeted", report.not_targeted),
        ("unknown_message", report.unknown_message),
        ("reordered", report.reordered),
        ("malformed", check.malformed),
    ] {
        outcome.extra.push((format!("violations_{key}"), value.into()));
    }
    if violations > 0 {
        outcome.failure = Some(format!("verify found {violations} delivery violation(s)"));
    }
    Ok(outcome)
}

/// The report's lines: a summary, the count of each kind, and the examples.
pub fn describe(report: &DeliveryReport, malformed: u64, malformed_example: Option<&str>) -> Vec<String> {
    let mut lines = vec![format!(
        "verify: {} messages, {} deliveries expected, {} received, {} violations",
        report.messages,
        report.deliveries_expected,
        report.deliveries_received,
        report.violations() + malformed
    )];
    if report.is_clean() && malformed == 0 {
        lines.push(
            "verify: every intended recipient got each message exactly once, in order; nobody else got it"
                .into(),
        );
        return lines;
    }
    lines.push(format!(
        "violations: missing {}, duplicated {}, excluded {}, not targeted {}, unknown message {}, reordered {}, malformed {}",
        report.missing,
        report.duplicated,
        report.excluded,
        report.not_targeted,
        report.unknown_message,
        report.reordered,
        malformed
    ));
    for v in &report.examples {
        lines.push(format!("  {}", describe_violation(v)));
    }
    if let Some(example) = malformed_example {
        lines.push(format!("  malformed: {example}"));
    }
    lines
}

fn describe_violation(v: &Violation) -> String {
    let msg = |p: &PublisherId, seq: &u64| format!("message {seq} of publisher {}", p.get());
    match v {
        Violation::Missing { publisher, seq, recipient } => {
            format!("missing: {} never reached connection {}", msg(publisher, seq), recipient.get())
        }
        Violation::Duplicated { publisher, seq, recipient } => {
            format!("duplicated: connection {} got {} more than once", recipient.get(), msg(publisher, seq))
        }
        Violation::Excluded { publisher, seq, recipient } => format!(
            "excluded: connection {} got {} although it was excluded (except list or sender)",
            recipient.get(),
            msg(publisher, seq)
        ),
        Violation::NotTargeted { publisher, seq, recipient } => format!(
            "not targeted: connection {} got {} but is in none of its rooms",
            recipient.get(),
            msg(publisher, seq)
        ),
        Violation::UnknownMessage { publisher, seq, recipient } => {
            format!(
                "unknown message: connection {} got {} which was never sent",
                recipient.get(),
                msg(publisher, seq)
            )
        }
        Violation::Reordered { publisher, seq, recipient, after_seq } => format!(
            "reordered: connection {} got {} after message {after_seq}",
            recipient.get(),
            msg(publisher, seq)
        ),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_targets_minus_excepted_minus_sender() {
        let plan = RoomPlan::new(3, 40, 5, 2);
        for seq in 0..50 {
            let t = targets(3, 5, 1, seq);
            assert!(!t.to.is_empty() && t.to.len() <= 3 && t.except.len() <= 1);
            assert_eq!(t, targets(3, 5, 1, seq), "a pure function of the seed");
            let (intended, excluded) = audience(&plan, &t, 1);
            assert!(excluded.contains(&1) && !intended.contains(&1));
            for c in 0..40u32 {
                let rooms = plan.rooms_of(c);
                let targeted = rooms.iter().any(|r| t.to.contains(r));
                let excepted = rooms.iter().any(|r| t.except.contains(r)) || c == 1;
                assert_eq!(intended.contains(&c), targeted && !excepted, "conn {c} seq {seq}");
            }
        }
    }
}
