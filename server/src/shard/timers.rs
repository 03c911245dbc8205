//! Per-shard deadlines: one min-heap of `(deadline, key)` with lazy deletion.
//!
//! Contract: the owner of a key keeps its own "armed" deadline; [`Timers::arm`] pushes an entry only when
//! the new deadline is earlier than the one already armed, and a popped entry whose key has since moved
//! its deadline later is simply re-armed by the owner. So the heap holds at most a few entries per key
//! and never needs a decrease-key or a removal. Cost: O(log n) per arm/pop; no allocation once warm.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline belongs to. Generations make entries of a freed and reused slot harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// An Engine.IO session's next deadline (heartbeat, upgrade, close) or its connect timeout.
    Session { index: u32, generation: u32 },
    /// A server-to-client ack waiting for its answer.
    Ack { nsp: u32, socket: roomcast_engine::ids::SocketId, ack_id: u64 },
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    pub(crate) fn arm(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry that is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, key))| key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_entries_come_out_in_deadline_order_and_later_ones_wait() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let key = |i| TimerKey::Session { index: i, generation: 0 };
        timers.arm(t0 + Duration::from_millis(30), key(3));
        timers.arm(t0 + Duration::from_millis(10), key(1));
        timers.arm(t0 + Duration::from_millis(20), key(2));
        let now = t0 + Duration::from_millis(25);
        assert_eq!(timers.pop_due(now), Some(key(1)));
        assert_eq!(timers.pop_due(now), Some(key(2)));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(30)));
    }
}
