//! When a flat-out publisher's window slot frees: on the server's ack (`--release ack`), or once the
//! message has also reached a fraction of its intended recipients (`--release delivered`), so that what
//! is in flight is bounded end to end and not only up to the server's queue.
//!
//! An ack says the server took the publish; an app that acks on queueing (all three peers do) lets a
//! window released on acks run ahead of the deliveries, and the server's queues then grow through the
//! run. Released on delivery, at most `window` messages per publisher are anywhere between the
//! publisher and their receivers, and the latency of a flat-out run stops measuring a queue the load
//! generator itself let grow.
//!
//! Only this process's receivers are seen: in a run split over worker processes a slot frees when the
//! fraction of the audience *in the publisher's own process* has the message (each process holds an
//! even share of every room, connection `c` going to process `c mod N`). In one process that is
//! exactly the fraction of the audience. A message that does not get there within the release timeout
//! frees its slot anyway and is counted (`window_timeouts`), so a server that loses deliveries slows
//! the run down but cannot stall it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::latency::RunMicros;

/// What frees a window slot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ReleaseOn {
    /// The server's ack of the publish.
    Ack,
    /// The ack and first receipts by `fraction` (0 < f ≤ 1) of the message's intended recipients in this
    /// process.
    Delivered {
        /// Share of the local audience that must have the message.
        fraction: f64,
    },
}

impl ReleaseOn {
    /// Receipts a message with `local_audience` intended recipients in this process must reach.
    pub fn needed(self, local_audience: u32) -> u32 {
        match self {
            ReleaseOn::Ack => 0,
            ReleaseOn::Delivered { fraction } => {
                let need = (f64::from(local_audience) * fraction.clamp(0.0, 1.0)).ceil();
                (need as u32).min(local_audience)
            }
        }
    }

    /// `ack` or `delivered` (the JSON value of `release`).
    pub fn name(self) -> &'static str {
        match self {
            ReleaseOn::Ack => "ack",
            ReleaseOn::Delivered { .. } => "delivered",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    ack_id: Option<u64>,
    sent_at: RunMicros,
    need: u32,
    got: u32,
    acked: bool,
    done: bool,
}

/// Messages in flight of this process's publishers. Cost: O(1) per receipt (index by sequence number),
/// O(window) per ack; memory: one entry per message in flight.
///
/// Invariant: after every call, no entry that is not `done` is ready (acked and `got ≥ need`). Each of
/// `sent`, `delivered` and `acked` changes one entry, so only that entry can have become ready.
#[derive(Debug)]
pub struct InFlight {
    /// By publisher id: this process's index of the publisher and its messages in flight, oldest
    /// first; `None` for a publisher of another process.
    lanes: Vec<Option<(usize, VecDeque<Entry>)>>,
    timeout_micros: u64,
    timeouts: u64,
    freed: Vec<(usize, RunMicros)>,
}

impl InFlight {
    /// Tracks the publishers listed in `local` (`(publisher id, local index)`) out of `publishers`;
    /// a message still short of its receipts `timeout_micros` after it was sent frees its slot anyway.
    pub fn new(publishers: u32, local: &[(u32, usize)], timeout_micros: u64) -> Self {
        let mut lanes = vec![None; publishers as usize];
        for &(p, i) in local {
            if let Some(lane) = lanes.get_mut(p as usize) {
                *lane = Some((i, VecDeque::new()));
            }
        }
        InFlight { lanes, timeout_micros, timeouts: 0, freed: Vec::new() }
    }

    /// Publisher `p` sent `seq` at `at`; it needs `need` local receipts (and the ack, if `ack_id`).
    pub fn sent(&mut self, p: u32, seq: u64, ack_id: Option<u64>, need: u32, at: RunMicros) {
        let Some(Some((_, entries))) = self.lanes.get_mut(p as usize) else { return };
        let acked = ack_id.is_none();
        entries.push_back(Entry { seq, ack_id, sent_at: at, need, got: 0, acked, done: false });
        let last = entries.len() - 1;
        self.settle(p, last, at);
    }

    /// A local intended recipient received `seq` of `p` for the first time, at `at`.
    pub fn delivered(&mut self, p: u32, seq: u64, at: RunMicros) {
        let Some(Some((_, entries))) = self.lanes.get_mut(p as usize) else { return };
        let Some(first) = entries.front().map(|e| e.seq) else { return };
        let Some(i) = seq.checked_sub(first).and_then(|i| usize::try_from(i).ok()) else { return };
        let Some(e) = entries.get_mut(i).filter(|e| e.seq == seq) else { return };
        e.got = e.got.saturating_add(1);
        self.settle(p, i, at);
    }

    /// The server acked request `ack_id` of publisher `p` at `at`.
    pub fn acked(&mut self, p: u32, ack_id: u64, at: RunMicros) {
        let Some(Some((_, entries))) = self.lanes.get_mut(p as usize) else { return };
        let Some(i) = entries.iter().position(|e| e.ack_id == Some(ack_id)) else { return };
        if let Some(e) = entries.get_mut(i) {
            e.acked = true;
        }
        self.settle(p, i, at);
    }

    /// Frees the slots of messages sent more than the timeout before `now`.
    pub fn expire(&mut self, now: RunMicros) {
        for lane in self.lanes.iter_mut().flatten() {
            let (local, entries) = lane;
            for e in entries.iter_mut().filter(|e| !e.done) {
                if now.micros_since(e.sent_at) >= self.timeout_micros {
                    e.done = true;
                    self.timeouts += 1;
                    self.freed.push((*local, now));
                }
            }
            while entries.front().is_some_and(|e| e.done) {
                entries.pop_front();
            }
        }
    }

    /// When the oldest unfinished message times out.
    pub fn next_expiry(&self) -> Option<RunMicros> {
        self.lanes
            .iter()
            .flatten()
            .filter_map(|(_, entries)| entries.iter().find(|e| !e.done))
            .map(|e| e.sent_at.plus_micros(self.timeout_micros))
            .min()
    }

    /// Slots freed since the last call: `(local publisher index, when)`.
    pub fn take_freed(&mut self) -> Vec<(usize, RunMicros)> {
        std::mem::take(&mut self.freed)
    }

    /// Messages still in flight.
    pub fn len(&self) -> usize {
        self.lanes.iter().flatten().map(|(_, e)| e.iter().filter(|e| !e.done).count()).sum()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots freed by the timeout rather than by their receipts.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Frees entry `i` of `p` if it has just become ready, then drops finished entries from the front.
    /// Cost: O(1) plus the entries dropped.
    fn settle(&mut self, p: u32, i: usize, at: RunMicros) {
        let Some(Some((local, entries))) = self.lanes.get_mut(p as usize) else { return };
        if let Some(e) = entries.get_mut(i).filter(|e| !e.done && e.acked && e.got >= e.need) {
            e.done = true;
            self.freed.push((*local, at));
        }
        while entries.front().is_some_and(|e| e.done) {
            entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> RunMicros {
        RunMicros::from_millis(ms)
    }

    #[test]
    fn a_slot_frees_when_both_the_ack_and_enough_receipts_are_in() {
        let mut f = InFlight::new(2, &[(1, 0)], 1_000_000);
        let need = ReleaseOn::Delivered { fraction: 0.5 }.needed(3);
        assert_eq!(need, 2);
        f.sent(1, 0, Some(7), need, t(0));
        f.sent(1, 1, Some(8), need, t(1));
        f.delivered(1, 0, t(2));
        f.acked(1, 7, t(3));
        assert!(f.take_freed().is_empty(), "one receipt of two");
        f.delivered(1, 1, t(4));
        f.delivered(1, 1, t(5));
        f.acked(1, 8, t(6));
        assert_eq!(f.take_freed(), [(0, t(6))], "message 1 finished first: slots free out of order");
        f.delivered(1, 0, t(9));
        assert_eq!(f.take_freed(), [(0, t(9))]);
        assert!(f.is_empty());
        f.delivered(0, 0, t(9));
        assert!(f.take_freed().is_empty(), "publisher 0 belongs to another process");
    }

    #[test]
    fn ack_release_needs_no_receipt_and_a_lost_message_times_out() {
        let mut f = InFlight::new(1, &[(0, 3)], 500_000);
        f.sent(0, 0, Some(1), ReleaseOn::Ack.needed(100), t(0));
        f.acked(0, 1, t(2));
        assert_eq!(f.take_freed(), [(3, t(2))]);
        f.sent(0, 1, Some(2), 5, t(10));
        f.acked(0, 2, t(11));
        assert_eq!(f.next_expiry(), Some(t(510)));
        f.expire(t(509));
        assert!(f.take_freed().is_empty());
        f.expire(t(510));
        assert_eq!((f.take_freed(), f.timeouts()), (vec![(3, t(510))], 1));
        assert_eq!(ReleaseOn::Delivered { fraction: 1.0 }.needed(0), 0);
    }
}
