//! How a receiver stands to a message in `fanout`'s receipt check ([`super::fanout_check`]): intended,
//! excluded, or not targeted. Asked once per receipt and once per sequence number a receipt skips, so
//! it is the check's hot path.
//!
//! Representation: rooms as bits of a `u128`, room `r` being bit `r % 128`. Each local member has the
//! bits of its rooms; each of a publisher's recent messages has the bits of its target and excepted
//! rooms, cached by sequence number. With at most 128 rooms a bit names one room, so the relation is
//! two ANDs. With more rooms the bits are a filter: no common bit proves no common room (most messages
//! miss most receivers), and a common bit is settled by the room lists, kept only in that case.

use std::ops::Range;

use super::plan::{targets, TargetShape};
use super::verify::Targets;

/// Targets cached per publisher, by sequence number modulo this: receipts come for recent messages,
/// and an older one's targets are recomputed from the seed (a few hundred ns), so memory stays bounded
/// however long the run (48 bytes a slot, plus the room lists above 128 rooms).
pub const TARGET_CACHE: u64 = 4096;

/// Rooms folded into bits: room `r` is bit `r % ROOM_BITS` (the default fold).
const ROOM_BITS: u32 = u128::BITS;

/// How a member stands to a message (the sender aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// In a target room and in no excepted room.
    Intended,
    /// In an excepted room.
    Excluded,
    /// In none of the target rooms.
    NotTargeted,
}

/// The bits of one cached message. A slot's `seq` is always one that maps to the slot
/// (`seq % TARGET_CACHE`), except in a fresh slot, which holds one that does not, so it never matches.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    to: u128,
    except: u128,
}

/// The relation of each local member to each publisher's messages. Thread: the slice's loop.
#[derive(Debug)]
pub struct Relations {
    seed: u64,
    shape: TargetShape,
    /// Room `r` is bit `r % fold`; [`ROOM_BITS`] except in tests, which fold harder to force collisions.
    fold: u32,
    /// Whether a bit names one room (`shape.rooms ≤ fold`), so the bits alone decide.
    exact: bool,
    /// Room bits of each local member.
    member_bits: Vec<u128>,
    /// Rooms of each local member; read only when not `exact`.
    member_rooms: Vec<Vec<u32>>,
    /// Per publisher, [`TARGET_CACHE`] slots (allocated on the publisher's first message).
    slots: Vec<Vec<Slot>>,
    /// Per publisher, the room lists of the messages in `slots`, same indices; only when not `exact`.
    lists: Vec<Vec<Targets>>,
}

impl Relations {
    /// Relations of the local members, whose rooms are `member_rooms` (local index order), to the
    /// messages of `publishers` publishers shaped by `shape` from `seed`.
    pub fn new(seed: u64, shape: TargetShape, publishers: u32, member_rooms: Vec<Vec<u32>>) -> Self {
        Self::with_fold(seed, shape, publishers, member_rooms, ROOM_BITS)
    }

    fn with_fold(
        seed: u64,
        shape: TargetShape,
        publishers: u32,
        member_rooms: Vec<Vec<u32>>,
        fold: u32,
    ) -> Self {
        let fold = fold.clamp(1, ROOM_BITS);
        let member_bits = member_rooms.iter().map(|rooms| bits(rooms, fold)).collect();
        Relations {
            seed,
            shape,
            fold,
            exact: shape.rooms <= fold,
            member_bits,
            member_rooms,
            slots: vec![Vec::new(); publishers as usize],
            lists: vec![Vec::new(); publishers as usize],
        }
    }

    /// How local member `local` stands to message `seq` of publisher `p`. Hot path. Cost: two ANDs
    /// and one cache probe; on a cache miss, the message's targets from the seed; above 128 rooms, a
    /// scan of the room lists when the bits overlap. No allocation once the publisher's slots exist.
    #[inline]
    pub fn relation(&mut self, local: u32, p: u32, seq: u64) -> Relation {
        let Some(&member) = self.member_bits.get(local as usize) else { return Relation::NotTargeted };
        let Some(slots) = self.slots.get(p as usize) else { return Relation::NotTargeted };
        let i = (seq % TARGET_CACHE) as usize;
        let slot = match slots.get(i) {
            Some(slot) if slot.seq == seq => *slot,
            _ => self.fill(p, i, seq),
        };
        let (in_except, in_to) = (member & slot.except != 0, member & slot.to != 0);
        if self.exact || !(in_except || in_to) {
            return if in_except {
                Relation::Excluded
            } else if in_to {
                Relation::Intended
            } else {
                Relation::NotTargeted
            };
        }
        let (Some(rooms), Some(t)) =
            (self.member_rooms.get(local as usize), self.lists.get(p as usize).and_then(|l| l.get(i)))
        else {
            return Relation::NotTargeted;
        };
        by_lists(rooms, t)
    }

    /// Pushes onto `holes`, while it holds fewer than `cap`, every `q` in `range` that `local` was meant
    /// to get from `p`, in increasing order. Hot path: the gap before each in-order receipt, which holds
    /// no intended message when nothing was lost. Cost per `q`: one cache probe and two ANDs while the
    /// bits are cached and decide alone, else [`Self::relation`].
    pub fn push_intended(&mut self, local: u32, p: u32, range: Range<u64>, holes: &mut Vec<u64>, cap: usize) {
        let member = self.member_bits.get(local as usize).copied().unwrap_or(0);
        let mut q = range.start;
        while q < range.end {
            if let (true, Some(slots)) = (self.exact, self.slots.get(p as usize)) {
                // Borrows the slots until a message whose bits are not cached yet.
                while q < range.end {
                    let Some(s) = slots.get((q % TARGET_CACHE) as usize).filter(|s| s.seq == q) else {
                        break;
                    };
                    if member & s.to != 0 && member & s.except == 0 {
                        if holes.len() >= cap {
                            return;
                        }
                        holes.push(q);
                    }
                    q += 1;
                }
                if q == range.end {
                    return;
                }
            }
            if self.relation(local, p, q) == Relation::Intended {
                if holes.len() >= cap {
                    return;
                }
                holes.push(q);
            }
            q += 1;
        }
    }

    /// Computes message `seq` of `p` into slot `i` (`p` known, `i = seq % TARGET_CACHE`) and returns it.
    #[cold]
    #[inline(never)]
    fn fill(&mut self, p: u32, i: usize, seq: u64) -> Slot {
        let t = targets(self.seed, self.shape, p, seq);
        let slot = Slot { seq, to: bits(&t.to, self.fold), except: bits(&t.except, self.fold) };
        let Some(slots) = self.slots.get_mut(p as usize) else { return slot };
        if slots.is_empty() {
            // A fresh slot j holds j + 1, which maps to slot j + 1 (mod TARGET_CACHE), never to j.
            slots.extend((1..=TARGET_CACHE).map(|seq| Slot { seq, to: 0, except: 0 }));
        }
        if let Some(s) = slots.get_mut(i) {
            *s = slot;
        }
        if !self.exact {
            if let Some(lists) = self.lists.get_mut(p as usize) {
                if lists.is_empty() {
                    lists.resize_with(TARGET_CACHE as usize, Targets::default);
                }
                if let Some(l) = lists.get_mut(i) {
                    *l = t;
                }
            }
        }
        slot
    }
}

/// The bits of `rooms` folded by `fold`.
fn bits(rooms: &[u32], fold: u32) -> u128 {
    rooms.iter().fold(0, |acc, r| acc | 1u128 << (r % fold))
}

/// The relation from the room lists: exact whatever the number of rooms.
fn by_lists(rooms: &[u32], t: &Targets) -> Relation {
    if rooms.iter().any(|r| t.except.contains(r)) {
        Relation::Excluded
    } else if rooms.iter().any(|r| t.to.contains(r)) {
        Relation::Intended
    } else {
        Relation::NotTargeted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::PlanRng;
    use proptest::prelude::*;

    /// Members with random rooms of `0..rooms`, 1 to 4 each.
    fn members(seed: u64, count: u32, rooms: u32) -> Vec<Vec<u32>> {
        (0..count)
            .map(|m| {
                let mut rng = PlanRng::new(seed, 7, u64::from(m));
                let k = 1 + rng.below(4);
                rng.distinct(k, rooms)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Exact bits (rooms ≤ 128), bits as a filter with collisions (fold 1 to 16), and the plain
        /// room lists all agree, on messages in and out of the cache, whatever the shape; so do the holes
        /// pushed for a gap, up to the cap.
        #[test]
        fn bits_and_filtered_bits_agree_with_the_room_lists(
            seed in any::<u64>(),
            rooms in 1u32..300,
            to_rooms in 1u32..6,
            except_rooms in 0u32..3,
            fold in 1u32..16,
            seqs in proptest::collection::vec(0u64..3 * TARGET_CACHE, 1..24),
        ) {
            let shape = TargetShape { rooms, to_rooms, except_rooms };
            let m = members(seed, 12, rooms);
            let mut default = Relations::new(seed, shape, 2, m.clone());
            let mut filtered = Relations::with_fold(seed, shape, 2, m.clone(), fold);
            prop_assert_eq!(default.exact, rooms <= 128);
            prop_assert!(!filtered.exact || rooms <= fold);
            for &seq in &seqs {
                for p in 0..2 {
                    let gap = seq.saturating_sub(16)..seq;
                    let gap_targets: Vec<Targets> = gap.clone().map(|q| targets(seed, shape, p, q)).collect();
                    for (local, member_rooms) in m.iter().enumerate() {
                        let want: Vec<u64> = gap
                            .clone()
                            .zip(&gap_targets)
                            .filter(|(_, t)| by_lists(member_rooms, t) == Relation::Intended)
                            .map(|(q, _)| q)
                            .collect();
                        let (local, mut got) = (local as u32, (Vec::new(), Vec::new()));
                        default.push_intended(local, p, gap.clone(), &mut got.0, 256);
                        filtered.push_intended(local, p, gap.clone(), &mut got.1, 256);
                        prop_assert_eq!(&got.0, &want);
                        prop_assert_eq!(&got.1, &want);
                        let mut capped = vec![u64::MAX; 254];
                        default.push_intended(local, p, gap.clone(), &mut capped, 256);
                        prop_assert_eq!(&capped[254..], &want[..want.len().min(2)], "stops at the cap");
                    }
                    let t = targets(seed, shape, p, seq);
                    for (local, member_rooms) in m.iter().enumerate() {
                        let want = by_lists(member_rooms, &t);
                        let local = local as u32;
                        prop_assert_eq!(default.relation(local, p, seq), want);
                        prop_assert_eq!(filtered.relation(local, p, seq), want);
                    }
                }
            }
        }
    }

    #[test]
    fn a_fresh_cache_never_answers_for_a_message_it_has_not_computed() {
        // Slot 0 of a fresh cache holds seq 1; seq 1's own slot holds seq 2. Ask for seq 0 after the
        // slots exist (publisher 0 has computed some other message).
        let shape = TargetShape { rooms: 3, to_rooms: 1, except_rooms: 0 };
        let m = vec![vec![0], vec![1], vec![2]];
        let mut r = Relations::new(5, shape, 1, m.clone());
        let _ = r.relation(0, 0, 77);
        let room = targets(5, shape, 0, 0).to[0] as usize;
        assert_eq!(r.relation(room as u32, 0, 0), Relation::Intended);
        assert_eq!(r.relation(((room + 1) % 3) as u32, 0, 0), Relation::NotTargeted);
    }

    #[test]
    fn unknown_members_and_publishers_are_not_targeted() {
        let shape = TargetShape { rooms: 1, to_rooms: 1, except_rooms: 0 };
        let mut r = Relations::new(5, shape, 1, vec![vec![0]]);
        assert_eq!(r.relation(0, 0, 3), Relation::Intended);
        assert_eq!(r.relation(1, 0, 3), Relation::NotTargeted, "no member 1");
        assert_eq!(r.relation(0, 1, 3), Relation::NotTargeted, "no publisher 1");
    }
}
