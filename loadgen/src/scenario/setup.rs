//! Setup shared by `fanout`, `verify` and `idle`: open connections at the ramp rate, join each one's
//! rooms, and wait for the start of the measured phase. Any failure ends the run with the failing
//! connection's reason; the whole setup has a deadline.

use std::collections::HashMap;
use std::time::Duration;

use super::{AppConfig, Link};
use crate::client::pool::Delivery;
use crate::client::{ConnId, Notice, Pool};
use crate::latency::{FixedRate, LatencyHistogram, RunMicros};
use crate::Error;

/// Most connections handshaking at once. Servers accept from a listen backlog (511 in Node by default);
/// more SYNs than that in flight get dropped and retried a second later, which would read as latency.
pub const MAX_HANDSHAKING: usize = 256;

/// Without acks, joins count as done this long after the last one was sent.
const JOIN_SETTLE: Duration = Duration::from_millis(500);

/// One connection to set up.
#[derive(Debug, Clone)]
pub struct Member {
    /// The pool tag for it (the scenario's number for the connection).
    pub tag: u32,
    /// Rooms it joins.
    pub rooms: Vec<String>,
}

/// What setup leaves: the connections, in the order of the members, and their handshake latencies.
#[derive(Debug)]
pub struct SetUp {
    /// `conns[i]` is `members[i]`'s connection.
    pub conns: Vec<ConnId>,
    /// Handshake latency of each (from its scheduled open to the namespace CONNECT answer).
    pub handshakes: LatencyHistogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Joining { acks_left: usize },
    Done,
}

/// Opens every member's connection at `ramp_rate` per second (at most [`MAX_HANDSHAKING`] at once),
/// joins its rooms with `app`'s join event, and returns once all are in. `total` is the run's target
/// for the progress line. Fails on the first connection failure, refused join, or the deadline
/// (the ramp's length plus the handshake limit plus 10 s).
pub fn connect_and_join(
    pool: &mut Pool,
    app: &AppConfig,
    members: &[Member],
    ramp_rate: f64,
    link: &mut dyn Link,
    total: u64,
) -> Result<SetUp, Error> {
    let epoch = link.epoch();
    let start = epoch.now();
    let mut schedule = FixedRate::new(start, ramp_rate.max(0.001))
        .map_err(|_| Error::Usage("--ramp-rate must be a positive number".into()))?;
    let ramp_secs = members.len() as f64 / ramp_rate.max(0.001);
    let limit = Duration::from_secs_f64(ramp_secs) + pool_handshake_timeout(pool) + Duration::from_secs(10);
    let deadline = start.plus_micros(u64::try_from(limit.as_micros()).unwrap_or(u64::MAX));
    let mut conns = Vec::with_capacity(members.len());
    let mut index: HashMap<ConnId, usize> = HashMap::with_capacity(members.len());
    let mut states = Vec::with_capacity(members.len());
    let mut handshakes = LatencyHistogram::new();
    let (mut handshaking, mut done, mut last_join) = (0usize, 0usize, start);
    loop {
        let now = epoch.now();
        while conns.len() < members.len() && handshaking < MAX_HANDSHAKING && schedule.next_due_at() <= now {
            let Some(due) = schedule.poll_due(now) else { break };
            let Some(member) = members.get(conns.len()) else { break };
            let id = pool.open(member.tag, due.at);
            index.insert(id, conns.len());
            conns.push(id);
            states.push(State::Handshaking);
            handshaking += 1;
        }
        let settled = app.acks || now.micros_since(last_join) >= JOIN_SETTLE.as_micros() as u64;
        if done == members.len() && settled {
            return Ok(SetUp { conns, handshakes });
        }
        if now > deadline {
            return Err(Error::Timeout(format!(
                "setup: only {done} of {} connections were up and in their rooms after {:.1} s \
                 (server {}; is it overloaded, or is --ramp-rate too high?)",
                members.len(),
                limit.as_secs_f64(),
                pool.target().addr
            )));
        }
        let next_open =
            (conns.len() < members.len() && handshaking < MAX_HANDSHAKING).then(|| schedule.next_due_at());
        let wake = [next_open, Some(now.plus_micros(100_000))].into_iter().flatten().min();
        pool.turn(wake, &mut |_: Delivery<'_>| {})?;
        while let Some(notice) = pool.poll_notice() {
            let position = match &notice {
                Notice::Connected { conn, .. }
                | Notice::Ack { conn, .. }
                | Notice::Failed { conn, .. }
                | Notice::Closed { conn, .. } => index.get(conn).copied(),
            };
            let (Some(i), Some(member)) = (position, position.and_then(|i| members.get(i))) else { continue };
            match notice {
                Notice::Connected { conn, handshake_micros, .. } => {
                    handshaking = handshaking.saturating_sub(1);
                    handshakes.record(handshake_micros);
                    for room in &member.rooms {
                        join(pool, app, conn, room);
                    }
                    last_join = epoch.now();
                    let state = if app.acks && !member.rooms.is_empty() {
                        State::Joining { acks_left: member.rooms.len() }
                    } else {
                        done += 1;
                        State::Done
                    };
                    if let Some(s) = states.get_mut(i) {
                        *s = state;
                    }
                }
                Notice::Ack { error, .. } => {
                    if error {
                        return Err(Error::Refused(format!(
                            "the server answered {:?} to {:?} with an error (check --app-config)",
                            app.join_event, member.rooms
                        )));
                    }
                    if let Some(s @ State::Joining { .. }) = states.get_mut(i) {
                        if let State::Joining { acks_left } = *s {
                            *s = if acks_left <= 1 {
                                done += 1;
                                State::Done
                            } else {
                                State::Joining { acks_left: acks_left - 1 }
                            };
                        }
                    }
                }
                Notice::Failed { failure, .. } => {
                    let up = done;
                    return Err(failure.into_error(
                        pool.target(),
                        &format!("while connecting ({up} of {} connections were up)", members.len()),
                    ));
                }
                Notice::Closed { .. } => {}
            }
        }
        link.setup_progress(done as u64, total)?;
    }
}

/// Sends `app`'s join for `room` on `conn`.
pub fn join(pool: &mut Pool, app: &AppConfig, conn: ConnId, room: &str) {
    emit_room_event(pool, app, conn, &app.join_event, &app.join_args, room);
}

/// Sends `app`'s leave for `room` on `conn`.
pub fn leave(pool: &mut Pool, app: &AppConfig, conn: ConnId, room: &str) {
    emit_room_event(pool, app, conn, &app.leave_event, &app.leave_args, room);
}

fn emit_room_event(pool: &mut Pool, app: &AppConfig, conn: ConnId, event: &str, template: &str, room: &str) {
    let to = [room.to_string()];
    let expanded = app.expand(template, &super::app::Fill { to: &to, except: &[], data: "" });
    let args = AppConfig::split_args(&expanded);
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    pool.emit(conn, event, &args, app.acks);
}

/// Tells the link this slice is ready and keeps the connections served (pings answered) until the
/// start time arrives. Any connection failure while waiting ends the run.
pub fn wait_for_start(pool: &mut Pool, link: &mut dyn Link) -> Result<RunMicros, Error> {
    link.ready()?;
    loop {
        if let Some(start) = link.poll_start()? {
            return Ok(start);
        }
        let wake = link.epoch().now().plus_micros(20_000);
        pool.turn(Some(wake), &mut |_: Delivery<'_>| {})?;
        fail_on_notice(pool, "while waiting for the other workers")?;
    }
}

/// Ends the run if any connection failed (drains the notices; acks and closes are dropped).
pub fn fail_on_notice(pool: &mut Pool, context: &str) -> Result<(), Error> {
    while let Some(notice) = pool.poll_notice() {
        if let Notice::Failed { failure, .. } = notice {
            return Err(failure.into_error(pool.target(), context));
        }
    }
    Ok(())
}

fn pool_handshake_timeout(pool: &Pool) -> Duration {
    pool.handshake_timeout()
}
