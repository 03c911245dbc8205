//! `ChunkedList`: the sparse representation of a member set — a sorted list of slots cut into chunks
//! of bounded length, so that a join or leave moves at most one chunk's tail (O(chunk), not O(len)),
//! while planning still reads plain ascending `&[u32]` runs, one per chunk.
//!
//! Chunk capacity ([`chunk_capacity`]) scales with the universe: `universe / 64`, clamped to
//! `8..=256`. Measured on a 1M-slot shard's 10k-member room (A/B runs, min of 300): 2.1 M join+leave
//! pairs/s with one flat list; 4.2 M/s with chunks found by probing the chunks themselves (a
//! dependent cache miss per probe); with the contiguous `lasts` index 5.2 M/s at 128 and ~5.0 M/s at
//! 256 — what is left is the namespace's own cost (name hash, socket entry). 256 rather than 128
//! because each chunk switch costs a broadcast walking one room tens of nanoseconds (a 1k-member
//! room took 2.3 µs in 64-member chunks, 1.5 µs in 128-member ones). Small universes get small chunks
//! so that a set there, which turns dense past `universe / 32` members, still spans a few chunks —
//! the representation big shards use is then the one small tests exercise.

/// Fewest and most members per chunk; see [`chunk_capacity`].
const MIN_CHUNK: usize = 8;
pub const MAX_CHUNK: usize = 256;

/// Most members in one chunk of a set over `universe` slots: `universe / 64` within
/// `MIN_CHUNK..=MAX_CHUNK`. A chunk past it splits in two; one below a quarter of it merges with a
/// neighbour that has room.
pub(crate) fn chunk_capacity(universe: usize) -> usize {
    (universe / 64).clamp(MIN_CHUNK, MAX_CHUNK)
}

/// A set of slots as sorted chunks.
///
/// Invariant: every chunk is non-empty and strictly ascending, every slot of a chunk is below every
/// slot of the next one, `lasts` holds each chunk's last slot, and `len` is the total number of slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChunkedList {
    chunks: Vec<Vec<u32>>,
    /// `lasts[i]` is the last slot of `chunks[i]`: what joins and leaves binary-search, kept
    /// contiguous so that finding the chunk does not load every probed chunk (at 10k members that
    /// was a dependent cache miss per probe, half the cost of a join).
    lasts: Vec<u32>,
    len: usize,
}

impl ChunkedList {
    pub(crate) const fn new() -> Self {
        ChunkedList { chunks: Vec::new(), lasts: Vec::new(), len: 0 }
    }

    /// From strictly ascending slots, in chunks of half the capacity (room to grow before a split).
    pub(crate) fn from_sorted(slots: impl Iterator<Item = u32>, capacity: usize) -> Self {
        let mut list = ChunkedList::new();
        let fill = (capacity / 2).max(1);
        for slot in slots {
            match (list.chunks.last_mut(), list.lasts.last_mut()) {
                (Some(chunk), Some(last)) if chunk.len() < fill => {
                    chunk.push(slot);
                    *last = slot;
                }
                _ => {
                    let mut chunk = Vec::with_capacity(fill);
                    chunk.push(slot);
                    list.chunks.push(chunk);
                    list.lasts.push(slot);
                }
            }
            list.len += 1;
        }
        list
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The chunks, in order.
    pub(crate) fn chunks(&self) -> &[Vec<u32>] {
        &self.chunks
    }

    /// Index of the chunk that holds `slot` if anything does: the first whose last slot is `>= slot`.
    fn chunk_for(&self, slot: u32) -> usize {
        self.lasts.partition_point(|&last| last < slot)
    }

    /// O(log len).
    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.chunks.get(self.chunk_for(slot)).is_some_and(|chunk| chunk.binary_search(&slot).is_ok())
    }

    /// Adds `slot`; returns whether it was absent. O(log len + capacity).
    pub(crate) fn insert(&mut self, slot: u32, capacity: usize) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![slot]);
            self.lasts.push(slot);
            self.len = 1;
            return true;
        }
        // Past every chunk: append to the last one.
        let c = self.chunk_for(slot).min(self.chunks.len() - 1);
        let (Some(chunk), Some(last)) = (self.chunks.get_mut(c), self.lasts.get_mut(c)) else { return false };
        let Err(at) = chunk.binary_search(&slot) else { return false };
        chunk.insert(at, slot);
        *last = (*last).max(slot);
        self.len += 1;
        if chunk.len() > capacity {
            let upper = chunk.split_off(chunk.len() / 2);
            // Both halves are non-empty: capacity >= 1, so the chunk held at least 2.
            *last = chunk.last().copied().unwrap_or(*last);
            let upper_last = upper.last().copied().unwrap_or(*last);
            self.chunks.insert(c + 1, upper);
            self.lasts.insert(c + 1, upper_last);
        }
        true
    }

    /// Removes `slot`; returns whether it was present. O(log len + capacity).
    pub(crate) fn remove(&mut self, slot: u32, capacity: usize) -> bool {
        let c = self.chunk_for(slot);
        let (Some(chunk), Some(last)) = (self.chunks.get_mut(c), self.lasts.get_mut(c)) else { return false };
        let Ok(at) = chunk.binary_search(&slot) else { return false };
        chunk.remove(at);
        self.len -= 1;
        if let Some(&new_last) = chunk.last() {
            *last = new_last;
        }
        if chunk.len() < capacity / 4 {
            self.merge_small(c, capacity);
        }
        if self.len == 0 {
            // An emptied room is usually deleted; do not keep its buffers alive meanwhile.
            *self = ChunkedList::new();
        }
        true
    }

    /// Chunk `c` (which exists) has shrunk: drop it if empty, else merge it into a neighbour when
    /// both fit in one. The merged chunk keeps the later chunk's last slot, so the earlier `lasts`
    /// entry is the one that goes.
    fn merge_small(&mut self, c: usize, capacity: usize) {
        let len_of = |chunks: &[Vec<u32>], i: usize| chunks.get(i).map_or(usize::MAX, Vec::len);
        let here = len_of(&self.chunks, c);
        if here == 0 && c < self.chunks.len() {
            self.chunks.remove(c);
            self.lasts.remove(c);
        } else if c + 1 < self.chunks.len() && len_of(&self.chunks, c + 1) + here <= capacity {
            let next = self.chunks.remove(c + 1);
            self.lasts.remove(c);
            if let Some(chunk) = self.chunks.get_mut(c) {
                chunk.extend(next);
            }
        } else if c > 0 && c < self.chunks.len() && len_of(&self.chunks, c - 1) + here <= capacity {
            let chunk = self.chunks.remove(c);
            self.lasts.remove(c - 1);
            if let Some(prev) = self.chunks.get_mut(c - 1) {
                prev.extend(chunk);
            }
        }
    }

    /// The slots, ascending.
    pub(crate) fn iter(&self) -> std::iter::Flatten<std::slice::Iter<'_, Vec<u32>>> {
        self.chunks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &ChunkedList, expected: &[u32], capacity: usize) {
        let got: Vec<u32> = list.iter().copied().collect();
        assert_eq!(got, expected);
        assert_eq!(list.len(), expected.len());
        assert!(list.chunks().iter().all(|c| !c.is_empty() && c.len() <= capacity));
        let lasts: Vec<u32> = list.chunks().iter().filter_map(|c| c.last().copied()).collect();
        assert_eq!(list.lasts, lasts);
    }

    #[test]
    fn inserts_split_full_chunks_and_keep_order() {
        let mut list = ChunkedList::new();
        let mut expected = Vec::new();
        for k in 0..100u32 {
            let slot = (k * 37) % 101;
            assert!(list.insert(slot, 8));
            expected.push(slot);
        }
        assert!(!list.insert(37, 8), "already present");
        expected.sort_unstable();
        check(&list, &expected, 8);
        assert!(list.chunks().len() >= 100 / 8);
        assert!(list.contains(36) && list.contains(100) && !list.contains(64) && !list.contains(1000));
    }

    #[test]
    fn removals_merge_small_chunks_and_free_an_emptied_list() {
        let mut list = ChunkedList::from_sorted(0..64, 8);
        assert_eq!(list.chunks().len(), 16, "built half full");
        for slot in (0..64).filter(|s| s % 4 != 0) {
            assert!(list.remove(slot, 8));
        }
        assert!(!list.remove(1, 8), "already gone");
        let expected: Vec<u32> = (0..64).filter(|s| s % 4 == 0).collect();
        check(&list, &expected, 8);
        assert!(list.chunks().len() <= 8, "chunks down to one member were merged into a neighbour");
        for slot in expected {
            assert!(list.remove(slot, 8));
        }
        assert_eq!(list, ChunkedList::new());
    }

    #[test]
    fn capacity_scales_with_the_universe_within_bounds() {
        assert_eq!(chunk_capacity(100), 8);
        assert_eq!(chunk_capacity(64 * 100), 100);
        assert_eq!(chunk_capacity(1 << 20), MAX_CHUNK);
        assert_eq!(chunk_capacity(usize::MAX), MAX_CHUNK);
    }
}
