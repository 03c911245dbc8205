//! Cursors over sorted member lists for the recipients iterator (hot path): monotonic cursors into
//! the sparse `except` lists (chunked, see `ChunkedList`), and galloping search.
//!
//! Kept in the `Scratch` between broadcasts, so their vectors are reused, never reallocated once warm.

/// Cursors of one plan, kept in the `Scratch` so that planning reuses their memory.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    /// Cursor into each sparse `except` room.
    pub(super) except_pos: Vec<ChunkPos>,
    /// Cursor into the excepted own-room slots.
    pub(super) except_slots_pos: ChunkPos,
}

impl Cursors {
    pub(crate) fn reset(&mut self, except_rooms: usize) {
        self.except_pos.clear();
        self.except_pos.resize(except_rooms, ChunkPos::default());
        self.except_slots_pos = ChunkPos::default();
    }
}

/// A monotonic cursor into a chunked sorted list: a chunk and a position in it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChunkPos {
    chunk: usize,
    pos: usize,
}

/// Moves `at` to the first slot `>= target` (targets ascend across calls) and returns that slot;
/// `None` past the end. O(chunks skipped + log of the distance).
#[inline]
pub(super) fn seek_chunks(chunks: &[Vec<u32>], at: &mut ChunkPos, target: u32) -> Option<u32> {
    loop {
        let chunk = chunks.get(at.chunk)?;
        if at.pos < chunk.len() && chunk.last().is_some_and(|&last| last >= target) {
            at.pos = seek(chunk, at.pos, target);
            return chunk.get(at.pos).copied();
        }
        at.chunk += 1;
        at.pos = 0;
    }
}

/// Whether `slot` (ascending across calls) is in the list.
#[inline]
pub(super) fn contains_at(chunks: &[Vec<u32>], at: &mut ChunkPos, slot: u32) -> bool {
    seek_chunks(chunks, at, slot) == Some(slot)
}

/// Bits of the members of `chunks` within the word starting at slot `start` (ascending across calls);
/// advances `at` past them.
#[inline]
pub(super) fn mask_in_word(chunks: &[Vec<u32>], at: &mut ChunkPos, start: u32) -> u64 {
    let mut mask = 0;
    while let Some(slot) = seek_chunks(chunks, at, start) {
        if u64::from(slot) >= u64::from(start) + 64 {
            break;
        }
        mask |= 1 << (slot % 64);
        at.pos += 1;
    }
    mask
}

/// The first index `>= pos` whose value is `>= target` (or `list.len()`): a short linear probe (the
/// common case when two lists interleave), then galloping — O(log d) for a jump of d elements, so a
/// cursor walked over a whole list costs O(len) in total and a few far jumps stay cheap.
#[inline]
pub(super) fn seek(list: &[u32], pos: usize, target: u32) -> usize {
    let rest = list.get(pos..).unwrap_or(&[]);
    match rest {
        [] => return pos,
        [a, ..] if *a >= target => return pos,
        [_, b, ..] if *b >= target => return pos + 1,
        [_] => return pos + 1,
        _ => {}
    }
    // Invariant: rest[lo] < target; find hi with rest[hi] >= target or hi >= len.
    let (mut lo, mut hi) = (0, 1);
    while rest.get(hi).is_some_and(|&v| v < target) {
        lo = hi;
        hi *= 2;
    }
    let hi = hi.min(rest.len());
    pos + lo + 1 + rest.get(lo + 1..hi).map_or(0, |window| window.partition_point(|&v| v < target))
}

#[cfg(test)]
mod tests {
    use super::{mask_in_word, seek, seek_chunks, ChunkPos};

    #[test]
    fn seek_finds_the_first_value_not_below_the_target() {
        let list: Vec<u32> = (0..100).map(|v| v * 3).collect();
        for pos in [0, 1, 17, 99, 100] {
            for target in [0, 1, 3, 50, 51, 150, 296, 297, 298, 1000] {
                let expected = pos + list[pos..].iter().take_while(|&&v| v < target).count();
                assert_eq!(seek(&list, pos, target), expected, "pos {pos} target {target}");
            }
        }
        assert_eq!(seek(&[], 0, 5), 0);
    }

    #[test]
    fn chunk_cursor_walks_across_chunk_boundaries() {
        let chunks = vec![vec![1, 5, 63], vec![64, 70], vec![200]];
        let mut at = ChunkPos::default();
        assert_eq!(mask_in_word(&chunks, &mut at, 0), (1 << 1) | (1 << 5) | (1 << 63));
        assert_eq!(mask_in_word(&chunks, &mut at, 64), 1 | (1 << 6));
        assert_eq!(seek_chunks(&chunks, &mut at, 150), Some(200));
        assert_eq!(seek_chunks(&chunks, &mut at, 201), None);
        let mut at = ChunkPos::default();
        assert_eq!(seek_chunks(&chunks, &mut at, 64), Some(64), "a chunk's first slot");
        assert_eq!(mask_in_word(&[], &mut ChunkPos::default(), 0), 0);
    }
}
