//! When each message SHOULD be sent: the open-loop schedule that every latency is measured from.
//!
//! A publisher asks its schedule which messages are due ([`Schedule::poll_due`]) and stamps each
//! one with the returned scheduled time, never with the moment it actually got around to sending
//! it. If the sender stalls (a full socket buffer, a slow event loop, a saturated load generator),
//! the messages it owes pile up with their original times and are sent in a burst afterwards, so
//! the stall shows up in their latency instead of silently thinning out the samples (coordinated
//! omission).
//!
//! Two shapes:
//! - [`FixedRate`]: R messages per second from t0; message k is due at t0 + k/R. Use this for
//!   latency numbers.
//! - [`Window`]: flat out, at most W messages in flight; a message is due the moment a slot frees
//!   up, and that moment is its scheduled time. This finds the throughput ceiling. Its tail is
//!   still honest about the sender's own delays, but while the server stalls no new messages are
//!   released, so a server stall shows in at most W samples: quote fixed-rate runs for latency.

use std::collections::VecDeque;

use super::clock::RunMicros;
use crate::Error;

/// A message the schedule allows: its sequence number (from 0, consecutive per publisher) and the
/// time it was due, which is what its token must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Sequence number of this publisher's message, counting from 0.
    pub seq: u64,
    /// When the message was due; latency is measured from here.
    pub at: RunMicros,
}

/// R messages per second starting at t0, with no drift: message k is due at exactly t0 + k/R
/// (rounded down to the µs), however late earlier messages went out.
#[derive(Debug, Clone)]
pub struct FixedRate {
    start: RunMicros,
    micros_per_message: f64,
    next_seq: u64,
}

impl FixedRate {
    /// A schedule of `rate_per_sec` messages per second (fractions allowed: 0.5 is one message
    /// every 2 s), the first due at `start`. Fails unless the rate is finite and positive.
    pub fn new(start: RunMicros, rate_per_sec: f64) -> Result<Self, Error> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
            return Err(Error::Misuse("a fixed-rate schedule needs a finite rate above zero"));
        }
        Ok(FixedRate { start, micros_per_message: 1e6 / rate_per_sec, next_seq: 0 })
    }

    /// When message `seq` is due: t0 + seq/R. Pure; cost O(1).
    pub fn scheduled_time(&self, seq: u64) -> RunMicros {
        // f64 holds every µs count below 2^53 (285 years) exactly; `as` saturates beyond that.
        let offset = (seq as f64 * self.micros_per_message).floor() as u64;
        self.start.plus_micros(offset)
    }

    /// The next message if it is due at `now`, advancing the schedule. Call in a loop until `None`
    /// to send everything owed (after a stall that is a burst, by design).
    pub fn poll_due(&mut self, now: RunMicros) -> Option<Scheduled> {
        let at = self.scheduled_time(self.next_seq);
        if at > now {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        Some(Scheduled { seq, at })
    }

    /// When the next message is due (to arm a timer).
    pub fn next_due_at(&self) -> RunMicros {
        self.scheduled_time(self.next_seq)
    }

    /// How far behind the schedule the sender is at `now`, in µs (0 when nothing is overdue).
    /// A lag that keeps growing means the load generator cannot keep up with the rate it was given.
    pub fn lag_micros(&self, now: RunMicros) -> u64 {
        now.micros_since(self.next_due_at())
    }
}

/// Flat out with at most `capacity` messages in flight. A slot frees when the scenario calls
/// [`Window::release`] (for example when the publisher sees its own message come back); the next
/// message is then due at that moment, whenever the sender actually sends it.
///
/// Invariant: `in_flight + free_since.len() == capacity`, and `free_since` is in release order.
/// Memory: one `RunMicros` per slot, allocated once.
#[derive(Debug, Clone)]
pub struct Window {
    capacity: u32,
    in_flight: u32,
    free_since: VecDeque<RunMicros>,
    next_seq: u64,
}

impl Window {
    /// A window of `capacity` slots, all free since `start`. Fails when `capacity` is 0.
    pub fn new(start: RunMicros, capacity: u32) -> Result<Self, Error> {
        if capacity == 0 {
            return Err(Error::Misuse("a window schedule needs at least one slot"));
        }
        let slots = usize::try_from(capacity).unwrap_or(usize::MAX);
        let mut free_since = VecDeque::with_capacity(slots);
        free_since.extend(std::iter::repeat_n(start, slots));
        Ok(Window { capacity, in_flight: 0, free_since, next_seq: 0 })
    }

    /// The next message if a slot is free, taking the slot that has been free the longest; its
    /// scheduled time is when that slot freed (never later than `now`).
    pub fn poll_due(&mut self, now: RunMicros) -> Option<Scheduled> {
        let freed = self.free_since.pop_front()?;
        self.in_flight = self.in_flight.saturating_add(1);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        Some(Scheduled { seq, at: freed.min(now) })
    }

    /// One message left the window at `now`, freeing a slot. Returns `false` (and changes nothing)
    /// when no message was in flight, which is a bug in the caller.
    pub fn release(&mut self, now: RunMicros) -> bool {
        if self.in_flight == 0 {
            return false;
        }
        self.in_flight -= 1;
        self.free_since.push_back(now);
        true
    }

    /// Messages sent and not yet released.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The window's size.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// When the next message became due, or `None` while the window is full.
    pub fn next_due_at(&self) -> Option<RunMicros> {
        self.free_since.front().copied()
    }
}

/// Either schedule, so a scenario's send loop is written once.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// R messages per second (latency runs).
    FixedRate(FixedRate),
    /// Flat out with a bounded window (throughput runs).
    Window(Window),
}

impl Schedule {
    /// The next due message, if any; see [`FixedRate::poll_due`] and [`Window::poll_due`].
    pub fn poll_due(&mut self, now: RunMicros) -> Option<Scheduled> {
        match self {
            Schedule::FixedRate(s) => s.poll_due(now),
            Schedule::Window(s) => s.poll_due(now),
        }
    }

    /// A message left the window at `now`. A fixed-rate schedule ignores this and returns `true`;
    /// a window returns `false` when nothing was in flight.
    pub fn release(&mut self, now: RunMicros) -> bool {
        match self {
            Schedule::FixedRate(_) => true,
            Schedule::Window(s) => s.release(now),
        }
    }

    /// When the next message is or was due; `None` while a window is full.
    pub fn next_due_at(&self) -> Option<RunMicros> {
        match self {
            Schedule::FixedRate(s) => Some(s.next_due_at()),
            Schedule::Window(s) => s.next_due_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> RunMicros {
        RunMicros::from_millis(v)
    }

    #[test]
    fn fixed_rate_message_k_is_due_at_t0_plus_k_over_r() {
        let s = FixedRate::new(ms(100), 1_000.0).unwrap();
        assert_eq!(s.scheduled_time(0), ms(100));
        assert_eq!(s.scheduled_time(1), RunMicros::from_micros(101_000));
        assert_eq!(s.scheduled_time(2_500), ms(2_600));
        let third = FixedRate::new(RunMicros::ZERO, 3.0).unwrap();
        assert_eq!(third.scheduled_time(1), RunMicros::from_micros(333_333));
        assert_eq!(third.scheduled_time(3), RunMicros::from_micros(1_000_000));
    }

    #[test]
    fn fixed_rate_after_a_stall_releases_the_backlog_with_original_times() {
        let mut s = FixedRate::new(RunMicros::ZERO, 100.0).unwrap();
        assert_eq!(s.poll_due(ms(0)).map(|m| m.seq), Some(0));
        assert_eq!(s.poll_due(ms(5)), None);
        assert_eq!(s.lag_micros(ms(55)), 45_000);
        let burst: Vec<_> = std::iter::from_fn(|| s.poll_due(ms(55))).collect();
        assert_eq!(burst.iter().map(|m| m.at).collect::<Vec<_>>(), [10, 20, 30, 40, 50].map(ms));
        assert_eq!(s.next_due_at(), ms(60));
        assert_eq!(s.lag_micros(ms(55)), 0);
    }

    #[test]
    fn rates_that_are_not_positive_and_finite_are_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(FixedRate::new(RunMicros::ZERO, bad).is_err(), "{bad}");
        }
        assert!(Window::new(RunMicros::ZERO, 0).is_err());
    }

    #[test]
    fn window_schedules_each_message_when_its_slot_freed() {
        let mut w = Window::new(ms(0), 2).unwrap();
        assert_eq!(w.poll_due(ms(1)), Some(Scheduled { seq: 0, at: ms(0) }));
        assert_eq!(w.poll_due(ms(1)), Some(Scheduled { seq: 1, at: ms(0) }));
        assert_eq!(w.poll_due(ms(2)), None);
        assert_eq!(w.next_due_at(), None);
        assert!(w.release(ms(10)));
        assert!(w.release(ms(12)));
        // The sender only gets round to it at 40 ms: the 30 ms it sat on the slot counts.
        assert_eq!(w.poll_due(ms(40)), Some(Scheduled { seq: 2, at: ms(10) }));
        assert_eq!(w.poll_due(ms(40)), Some(Scheduled { seq: 3, at: ms(12) }));
        assert_eq!(w.in_flight(), 2);
    }

    #[test]
    fn window_release_without_a_message_in_flight_changes_nothing() {
        let mut w = Window::new(ms(0), 1).unwrap();
        assert!(!w.release(ms(1)));
        assert_eq!(w.in_flight(), 0);
        assert_eq!(w.poll_due(ms(2)).map(|m| m.at), Some(ms(0)));
        assert_eq!(w.poll_due(ms(2)), None);
    }

    #[test]
    fn schedule_enum_forwards_to_either_shape() {
        let mut fixed = Schedule::FixedRate(FixedRate::new(ms(0), 10.0).unwrap());
        assert!(fixed.release(ms(0)));
        assert_eq!(fixed.poll_due(ms(0)).map(|m| m.seq), Some(0));
        assert_eq!(fixed.next_due_at(), Some(ms(100)));
        let mut window = Schedule::Window(Window::new(ms(0), 1).unwrap());
        assert!(window.poll_due(ms(0)).is_some());
        assert_eq!(window.next_due_at(), None);
        assert!(window.release(ms(3)));
        assert_eq!(window.next_due_at(), Some(ms(3)));
    }
}
