//! `fanout`'s delivery check: a streaming check of every receipt (exactly once, only to intended
//! recipients, in per-publisher order) that each worker process runs on its own receivers. Where each
//! message goes and how many should get it are in [`super::plan`].
//!
//! Why streaming rather than [`crate::delivery::DeliveryLedger`]: fanout runs flat out and may span
//! worker processes. The targets of message `seq` of publisher `p` are a pure function of the seed
//! ([`super::plan::targets`]), so a process can judge a receipt without hearing from the publisher's process, and
//! it only keeps, per (receiver, publisher), the next sequence number it expects and the intended
//! messages it skipped ("holes"). Memory: O(local receivers × publishers) cursors plus the targets of
//! each publisher's last 4,096 messages (as room bits, [`super::fanout_relation`]); no per-message
//! state, so it is bounded however long the run.
//!
//! Per receipt of `(p, seq)` at receiver `r` (cursor `next`, holes `H`):
//! - `r` is the sender, or in an excepted room → **excluded**; in no target room → **not targeted**;
//! - intended and `seq ≥ next`: a first receipt; every intended `q` in `next..seq` becomes a hole;
//!   `next = seq + 1`;
//! - intended and `seq < next`: if `seq ∈ H` it is a first receipt that came late (**reordered**,
//!   removed from `H`), else a **duplicate**.
//!
//! **Missing** is counted globally at the end: deliveries expected (summed by the publishers'
//! processes) minus first receipts (summed by every process). Remaining holes give examples.
//! Limit: at most [`HOLE_CAP`] holes are kept per (receiver, publisher); a receipt of a message skipped
//! beyond that is counted as a duplicate.

use super::fanout_relation::{Relation, Relations};
use super::plan::TargetShape;

/// Holes kept per (receiver, publisher). A correct server leaves none; a server that loses messages
/// leaves one per lost message until this cap, past which examples stop and late arrivals of forgotten
/// holes read as duplicates.
pub const HOLE_CAP: usize = 256;

/// A receipt this far past what the receiver has seen (or the publisher has sent) is not a message
/// this run published: a guard against computing targets for absurd sequence numbers.
const MAX_SEQ_JUMP: u64 = 1 << 22;

/// Examples kept of each kind of violation.
const EXAMPLES_PER_KIND: usize = 5;

/// What one receipt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// An intended recipient's first receipt, in order.
    First,
    /// An intended recipient's first receipt, after a later message of the same publisher.
    Reordered,
    /// The recipient had it already.
    Duplicated,
    /// The recipient was the sender or in an excepted room.
    Excluded,
    /// The recipient is in none of the target rooms.
    NotTargeted,
    /// No such message was published (unknown publisher, or a sequence number far ahead).
    Unknown,
}

impl Receipt {
    /// Whether this receipt counts as the delivery of the message to an intended recipient.
    pub fn is_first(self) -> bool {
        matches!(self, Receipt::First | Receipt::Reordered)
    }
}

/// Counts of a slice's receipts by kind; added up over slices by the parent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckCounts {
    /// First receipts by intended recipients (in order or not).
    pub first: u64,
    /// Of those, the ones that came after a later message of their publisher.
    pub reordered: u64,
    /// Receipts of a message the recipient already had.
    pub duplicated: u64,
    /// Receipts by the sender or a member of an excepted room.
    pub excluded: u64,
    /// Receipts by a connection in none of the target rooms.
    pub not_targeted: u64,
    /// Receipts of messages never published.
    pub unknown_message: u64,
    /// A few examples of each kind, as sentences.
    pub examples: Vec<String>,
}

impl CheckCounts {
    /// Adds `other` into `self`, keeping at most a few examples of each kind.
    pub fn add(&mut self, other: &CheckCounts) {
        self.first += other.first;
        self.reordered += other.reordered;
        self.duplicated += other.duplicated;
        self.excluded += other.excluded;
        self.not_targeted += other.not_targeted;
        self.unknown_message += other.unknown_message;
        for e in &other.examples {
            let kind = e.split(':').next().unwrap_or_default();
            if self.examples.iter().filter(|x| x.split(':').next() == Some(kind)).count() < EXAMPLES_PER_KIND
            {
                self.examples.push(e.clone());
            }
        }
    }
}

/// The streaming check of one process's receivers; see the module docs. Thread: the slice's loop.
#[derive(Debug)]
pub struct ReceiptChecker {
    publishers: u32,
    /// Tag of publisher 0; publisher `p` is member `first_publisher + p`.
    first_publisher: u32,
    /// Local index of each tag (`u32::MAX`: not in this process).
    local_of: Vec<u32>,
    /// The next sequence number each (receiver, publisher) expects: `next[local × publishers + p]`.
    /// Apart from `holes` because an in-order receipt reads only this (8 bytes, so one receiver's
    /// cursors share a cache line or two).
    next: Vec<u64>,
    /// Intended messages each (receiver, publisher) skipped, same index; touched only when there are.
    holes: Vec<Vec<u64>>,
    /// How each local member stands to each message.
    relations: Relations,
    counts: CheckCounts,
}

impl ReceiptChecker {
    /// A checker for `members` (tag and rooms of each local connection), `publishers` publishers whose
    /// member tags start at `first_publisher`, and messages shaped by `shape` from `seed`.
    pub fn new(
        seed: u64,
        shape: TargetShape,
        publishers: u32,
        first_publisher: u32,
        members: &[(u32, Vec<u32>)],
    ) -> Self {
        let tags = first_publisher.saturating_add(publishers) as usize;
        let mut local_of = vec![u32::MAX; tags];
        for (i, (tag, _)) in members.iter().enumerate() {
            if let Some(slot) = local_of.get_mut(*tag as usize) {
                *slot = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
        let rooms = members.iter().map(|(_, rooms)| rooms.clone()).collect();
        ReceiptChecker {
            publishers,
            first_publisher,
            local_of,
            next: vec![0; members.len() * publishers as usize],
            holes: vec![Vec::new(); members.len() * publishers as usize],
            relations: Relations::new(seed, shape, publishers, rooms),
            counts: CheckCounts::default(),
        }
    }

    /// Judges one receipt of message `seq` of publisher `p` by the connection tagged `tag`.
    /// Cost: O(1) for an in-order receipt (a few room comparisons), O(gap) when messages were skipped.
    pub fn on_receipt(&mut self, tag: u32, p: u32, seq: u64) -> Receipt {
        let local = self.local_of.get(tag as usize).copied().unwrap_or(u32::MAX);
        let kind = if p >= self.publishers || local == u32::MAX {
            Receipt::Unknown
        } else {
            self.judge(tag, local, p, seq)
        };
        self.count(kind, tag, p, seq);
        kind
    }

    fn judge(&mut self, tag: u32, local: u32, p: u32, seq: u64) -> Receipt {
        let at = local as usize * self.publishers as usize + p as usize;
        let next = self.next.get(at).copied().unwrap_or(0);
        if seq > next.saturating_add(MAX_SEQ_JUMP) {
            return Receipt::Unknown;
        }
        if tag == self.first_publisher.saturating_add(p) {
            return Receipt::Excluded;
        }
        match self.relations.relation(local, p, seq) {
            Relation::Intended => {}
            Relation::Excluded => return Receipt::Excluded,
            Relation::NotTargeted => return Receipt::NotTargeted,
        }
        let (Some(cursor), Some(holes)) = (self.next.get_mut(at), self.holes.get_mut(at)) else {
            return Receipt::Unknown;
        };
        if seq >= next {
            // Every intended message in next..seq is a hole.
            self.relations.push_intended(local, p, next..seq, holes, HOLE_CAP);
            *cursor = seq + 1;
            return Receipt::First;
        }
        match holes.iter().position(|q| *q == seq) {
            Some(i) => {
                holes.swap_remove(i);
                Receipt::Reordered
            }
            None => Receipt::Duplicated,
        }
    }

    fn count(&mut self, kind: Receipt, tag: u32, p: u32, seq: u64) {
        let c = &mut self.counts;
        let (counter, word) = match kind {
            Receipt::First => {
                c.first += 1;
                return;
            }
            Receipt::Reordered => {
                c.first += 1;
                (&mut c.reordered, "reordered: connection {tag} got {msg} after a later one of its publisher")
            }
            Receipt::Duplicated => {
                (&mut c.duplicated, "duplicated: connection {tag} got {msg} more than once")
            }
            Receipt::Excluded => (
                &mut c.excluded,
                "excluded: connection {tag} got {msg} although it was excluded (except list or sender)",
            ),
            Receipt::NotTargeted => {
                (&mut c.not_targeted, "not targeted: connection {tag} got {msg} but is in none of its rooms")
            }
            Receipt::Unknown => {
                (&mut c.unknown_message, "unknown message: connection {tag} got {msg}, which was never sent")
            }
        };
        *counter += 1;
        let kind_word = word.split(':').next().unwrap_or_default();
        if c.examples.iter().filter(|e| e.split(':').next() == Some(kind_word)).count() < EXAMPLES_PER_KIND {
            let msg = format!("message {seq} of publisher {p}");
            c.examples.push(word.replace("{tag}", &tag.to_string()).replace("{msg}", &msg));
        }
    }

    /// The counts so far, with examples of messages still missing (holes) appended.
    pub fn counts(&self) -> CheckCounts {
        let mut out = self.counts.clone();
        let mut missing = 0;
        'outer: for (tag, local) in self.local_of.iter().enumerate() {
            let Some(base) = (*local as usize).checked_mul(self.publishers as usize) else { continue };
            for p in 0..self.publishers {
                let Some(holes) = self.holes.get(base + p as usize) else { continue };
                for q in holes {
                    if missing == EXAMPLES_PER_KIND {
                        break 'outer;
                    }
                    missing += 1;
                    out.examples.push(format!(
                        "missing: message {q} of publisher {p} never reached connection {tag}"
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{fanout_relation::TARGET_CACHE, plan::targets};

    /// Four connections: 0 and 1 in room 0, 2 in room 1, 3 in room 2; publisher 0 is tag 4 (in room 0).
    fn checker() -> ReceiptChecker {
        let members = vec![(0, vec![0]), (1, vec![0]), (2, vec![1]), (3, vec![2]), (4, vec![0])];
        ReceiptChecker::new(9, TargetShape { rooms: 3, to_rooms: 1, except_rooms: 0 }, 1, 4, &members)
    }

    fn room_of(seq: u64) -> u32 {
        targets(9, TargetShape { rooms: 3, to_rooms: 1, except_rooms: 0 }, 0, seq).to[0]
    }

    #[test]
    fn in_order_receipts_are_first_and_everything_else_is_named() {
        let mut c = checker();
        let seq = (0..).find(|s| room_of(*s) == 0).unwrap();
        assert_eq!(c.on_receipt(0, 0, seq), Receipt::First);
        assert_eq!(c.on_receipt(0, 0, seq), Receipt::Duplicated);
        assert_eq!(c.on_receipt(2, 0, seq), Receipt::NotTargeted);
        assert_eq!(c.on_receipt(4, 0, seq), Receipt::Excluded, "the sender");
        assert_eq!(c.on_receipt(0, 1, 0), Receipt::Unknown, "no publisher 1");
        let counts = c.counts();
        assert_eq!((counts.first, counts.duplicated, counts.not_targeted, counts.excluded), (1, 1, 1, 1));
        assert_eq!(counts.unknown_message, 1);
        assert!(counts.examples.iter().any(|e| e.starts_with("duplicated: connection 0 got message")));
    }

    #[test]
    fn a_skipped_message_is_a_hole_until_it_comes_late_as_a_reorder() {
        let mut c = checker();
        let mine: Vec<u64> = (0..40).filter(|s| room_of(*s) == 0).take(3).collect();
        assert_eq!(c.on_receipt(1, 0, mine[0]), Receipt::First);
        assert_eq!(c.on_receipt(1, 0, mine[2]), Receipt::First);
        let counts = c.counts();
        assert!(counts.examples.iter().any(|e| e.starts_with(&format!("missing: message {} ", mine[1]))));
        assert_eq!(c.on_receipt(1, 0, mine[1]), Receipt::Reordered);
        assert_eq!(c.on_receipt(1, 0, mine[1]), Receipt::Duplicated);
        let counts = c.counts();
        assert_eq!((counts.first, counts.reordered, counts.duplicated), (3, 1, 1));
        assert!(!counts.examples.iter().any(|e| e.starts_with("missing:")));
    }

    #[test]
    fn a_message_older_than_the_target_cache_is_still_judged_right() {
        let mut c = checker();
        let mine: Vec<u64> = (0..3 * TARGET_CACHE).filter(|s| room_of(*s) == 0).collect();
        let first = mine[0];
        let far = *mine.iter().find(|s| **s > first + TARGET_CACHE).unwrap();
        let other = (0..).find(|s| room_of(*s) != 0).unwrap();
        assert_eq!(c.on_receipt(0, 0, far), Receipt::First, "skips every intended message before it");
        assert_eq!(c.on_receipt(0, 0, first), Receipt::Reordered, "its targets were recomputed");
        assert_eq!(c.on_receipt(0, 0, other), Receipt::NotTargeted);
    }

    #[test]
    fn absurd_sequence_numbers_are_unknown_not_computed() {
        let mut c = checker();
        assert_eq!(c.on_receipt(0, 0, u64::MAX), Receipt::Unknown);
    }
}
