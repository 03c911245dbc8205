//! `MemberSet`: the members of one room, as slot numbers of the namespace's socket slab.
//!
//! Two representations, chosen per set by its size relative to the slab's slot count (the *universe*):
//! - **sparse**: a sorted list of `u32` cut into chunks of at most 256 members (`ChunkedList`) — 4
//!   bytes per member; membership is a binary search, insertion a `memmove` of one chunk's tail.
//! - **dense**: a plain `Vec<u64>` bitset — 1 bit per slot up to the highest member; membership and
//!   insertion are O(1), and planning walks it a word (64 slots) at a time.
//!
//! Switching rule, with hysteresis so that a set at the boundary does not flip on every join/leave:
//! sparse → dense after an insertion when `len * DENSE_FACTOR > universe`; dense → sparse after a
//! removal when `len * DENSE_FACTOR * 2 < universe`.
//!
//! Why 32 (measured: docs/BENCHMARKS.md, `rooms/set_iter`, `rooms/set_insert_remove`, `rooms/plan`):
//! - memory: 1 in 32 is where both take the same space (4 bytes per member = 1 bit per slot);
//! - planning: on random members a list is never slower to walk than a bitset at or below 1 in 32
//!   (the bitset is ~1.2× slower at 1 in 32, ~1.7× at 1 in 64, ~3× at 1 in 256: each sparse word
//!   costs a mispredicted branch), so turning dense earlier would cost the hot path;
//! - join/leave: a flat list's sorted insertion moved its tail — 0.6 µs per join+leave at 16k members,
//!   1.7 µs at 31k (1 in 32 of a 1M-slot shard). Capping lists at a few thousand members (dense past
//!   it) made a 1M-slot shard's broadcast to a 10k room 8× slower and its memory 3× larger; chunking
//!   the list bounds the move instead and keeps both.

/// Sparse → dense when `len * DENSE_FACTOR > universe`; dense → sparse when `len * DENSE_FACTOR * 2 <
/// universe`. 32 = where a sorted `u32` list and a bitset over the universe take the same memory.
pub const DENSE_FACTOR: usize = 32;

use crate::rooms::chunked::{chunk_capacity, ChunkedList};

/// The members of one room: a set of slot numbers, iterated in ascending order.
///
/// Invariant: sparse lists are strictly ascending (see `ChunkedList`); a dense bitset has no trailing
/// zero word and `len` is its population count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSet {
    repr: Repr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    Sparse(ChunkedList),
    Dense { words: Vec<u64>, len: usize },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Sparse(ChunkedList::new())
    }
}

/// A borrowed view of a set's representation, for the planner's word-at-a-time and merge loops.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SetView<'a> {
    /// Chunks of strictly ascending slots; each non-empty, each below the next.
    Sparse(&'a [Vec<u32>]),
    /// Bit `i % 64` of word `i / 64` is set iff slot `i` is a member; words past the end are zero.
    Dense(&'a [u64]),
}

impl MemberSet {
    /// An empty (sparse) set; allocates nothing.
    pub const fn new() -> Self {
        MemberSet { repr: Repr::Sparse(ChunkedList::new()) }
    }

    /// Number of members. O(1).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Sparse(list) => list.len(),
            Repr::Dense { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set currently uses the bitset representation.
    pub fn is_dense(&self) -> bool {
        matches!(self.repr, Repr::Dense { .. })
    }

    /// Number of chunks of a sparse set's list (1 or more once it holds over one chunk's worth, see
    /// `ChunkedList`); 0 for a dense set.
    pub fn chunk_count(&self) -> usize {
        match &self.repr {
            Repr::Sparse(list) => list.chunks().len(),
            Repr::Dense { .. } => 0,
        }
    }

    /// Whether `slot` is a member. O(log len) sparse, O(1) dense.
    pub fn contains(&self, slot: u32) -> bool {
        match &self.repr {
            Repr::Sparse(list) => list.contains(slot),
            Repr::Dense { words, .. } => bit(words, slot),
        }
    }

    /// Adds `slot`; returns whether it was absent. `universe` is the slab's slot count (every slot is
    /// below it), used only for the representation rules. Cost: O(log len + chunk) sparse (a chunk's
    /// tail move), O(1) dense (amortised; the bitset grows to the highest member), O(universe / 64)
    /// when the set turns dense.
    pub fn insert(&mut self, slot: u32, universe: usize) -> bool {
        match &mut self.repr {
            Repr::Sparse(list) => {
                if !list.insert(slot, chunk_capacity(universe)) {
                    return false;
                }
                if list.len() * DENSE_FACTOR > universe {
                    self.switch_to_dense();
                }
            }
            Repr::Dense { words, len } => {
                let (word, mask) = word_and_mask(slot);
                if words.len() <= word {
                    words.resize(word + 1, 0);
                }
                let Some(w) = words.get_mut(word) else { return false };
                if *w & mask != 0 {
                    return false;
                }
                *w |= mask;
                *len += 1;
            }
        }
        true
    }

    /// Removes `slot`; returns whether it was present. Same cost as [`MemberSet::insert`]; turning back
    /// to sparse costs O(words).
    pub fn remove(&mut self, slot: u32, universe: usize) -> bool {
        match &mut self.repr {
            Repr::Sparse(list) => return list.remove(slot, chunk_capacity(universe)),
            Repr::Dense { words, len } => {
                let (word, mask) = word_and_mask(slot);
                let Some(w) = words.get_mut(word) else { return false };
                if *w & mask == 0 {
                    return false;
                }
                *w &= !mask;
                *len -= 1;
                while words.last() == Some(&0) {
                    words.pop();
                }
                if *len * DENSE_FACTOR * 2 < universe {
                    self.switch_to_sparse(universe);
                }
            }
        }
        true
    }

    /// Members in ascending slot order.
    pub fn iter(&self) -> MemberIter<'_> {
        match &self.repr {
            Repr::Sparse(list) => MemberIter::Sparse(list.iter()),
            Repr::Dense { words, .. } => MemberIter::Dense(BitIter::new(words)),
        }
    }

    pub(crate) fn view(&self) -> SetView<'_> {
        match &self.repr {
            Repr::Sparse(list) => SetView::Sparse(list.chunks()),
            Repr::Dense { words, .. } => SetView::Dense(words),
        }
    }

    fn switch_to_dense(&mut self) {
        let Repr::Sparse(list) = &self.repr else { return };
        let mut words = Vec::new();
        for &slot in list.iter() {
            let (word, mask) = word_and_mask(slot);
            if words.len() <= word {
                words.resize(word + 1, 0);
            }
            if let Some(w) = words.get_mut(word) {
                *w |= mask;
            }
        }
        self.repr = Repr::Dense { len: list.len(), words };
    }

    fn switch_to_sparse(&mut self, universe: usize) {
        let Repr::Dense { words, .. } = &self.repr else { return };
        self.repr = Repr::Sparse(ChunkedList::from_sorted(BitIter::new(words), chunk_capacity(universe)));
    }
}

/// `(word index, bit mask)` of a slot in a bitset.
#[inline]
pub(crate) fn word_and_mask(slot: u32) -> (usize, u64) {
    (slot as usize / 64, 1u64 << (slot % 64))
}

/// Whether bit `slot` is set; bits past the end are clear.
#[inline]
pub(crate) fn bit(words: &[u64], slot: u32) -> bool {
    let (word, mask) = word_and_mask(slot);
    words.get(word).is_some_and(|w| w & mask != 0)
}

/// Iterator over a [`MemberSet`], ascending.
#[derive(Clone, Debug)]
pub enum MemberIter<'a> {
    #[doc(hidden)]
    Sparse(std::iter::Flatten<std::slice::Iter<'a, Vec<u32>>>),
    #[doc(hidden)]
    Dense(BitIter<'a>),
}

impl Iterator for MemberIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            MemberIter::Sparse(it) => it.next().copied(),
            MemberIter::Dense(it) => it.next(),
        }
    }
}

/// The set bits of a bitset, ascending.
#[derive(Clone, Debug)]
pub struct BitIter<'a> {
    words: std::slice::Iter<'a, u64>,
    base: u32,
    bits: u64,
}

impl<'a> BitIter<'a> {
    pub(crate) fn new(words: &'a [u64]) -> Self {
        // `base` of the first word is 0 after the first refill's `+ 64`.
        BitIter { words: words.iter(), base: 0u32.wrapping_sub(64), bits: 0 }
    }
}

impl Iterator for BitIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.bits == 0 {
            self.bits = *self.words.next()?;
            self.base = self.base.wrapping_add(64);
        }
        let tz = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(self.base + tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(set: &MemberSet) -> Vec<u32> {
        set.iter().collect()
    }

    #[test]
    fn sparse_set_keeps_members_sorted_and_unique() {
        let mut set = MemberSet::new();
        for slot in [9, 3, 7, 3] {
            set.insert(slot, 1_000_000);
        }
        assert!(!set.is_dense());
        assert_eq!(members(&set), [3, 7, 9]);
        assert!(set.contains(7) && !set.contains(8));
        assert!(!set.remove(8, 1_000_000));
        assert!(set.remove(7, 1_000_000));
        assert_eq!(members(&set), [3, 9]);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn set_turns_dense_past_one_member_per_thirty_two_slots() {
        let universe = 64 * 32; // 2048 slots: dense past 64 members
        let mut set = MemberSet::new();
        for slot in 0..64 {
            set.insert(slot * 31, universe);
        }
        assert!(!set.is_dense(), "64 * 32 == universe is not yet past the threshold");
        set.insert(2047, universe);
        assert!(set.is_dense());
        assert_eq!(set.len(), 65);
        let expected: Vec<u32> = (0..64).map(|s| s * 31).chain([2047]).collect();
        assert_eq!(members(&set), expected);
        assert!(set.contains(2047) && set.contains(31) && !set.contains(30));
    }

    #[test]
    fn dense_set_turns_sparse_only_below_half_the_threshold() {
        let universe = 64 * 32;
        let mut set = MemberSet::new();
        for slot in 0..65 {
            set.insert(slot, universe);
        }
        assert!(set.is_dense());
        // Down to 32 members (32 * 64 == universe, not below): still dense — the hysteresis band.
        for slot in 32..65 {
            assert!(set.remove(slot, universe));
        }
        assert!(set.is_dense());
        assert!(!set.insert(5, universe), "double insert reports already present");
        assert!(set.remove(31, universe));
        assert!(!set.is_dense());
        assert_eq!(members(&set), (0..31).collect::<Vec<_>>());
    }

    #[test]
    fn dense_set_trims_trailing_words() {
        let span = |set: &MemberSet| match set.view() {
            SetView::Dense(words) => words.len(),
            SetView::Sparse(_) => usize::MAX,
        };
        let universe = 256;
        let mut set = MemberSet::new();
        for slot in [1, 2, 3, 4, 5, 6, 7, 8, 9, 200] {
            set.insert(slot, universe);
        }
        assert!(set.is_dense());
        assert_eq!(span(&set), 4);
        set.remove(200, universe);
        assert_eq!(span(&set), 1);
        assert!(!set.contains(200) && !set.contains(100_000));
        assert!(!set.remove(100_000, universe), "removing past the end is a no-op");
    }

    #[test]
    fn bit_iterator_yields_every_set_bit_across_words() {
        let words = [0b101u64, 0, 1 << 63, u64::MAX];
        let got: Vec<u32> = BitIter::new(&words).collect();
        let mut expected = vec![0, 2, 191];
        expected.extend(192..256);
        assert_eq!(got, expected);
        assert_eq!(BitIter::new(&[]).count(), 0);
    }
}
