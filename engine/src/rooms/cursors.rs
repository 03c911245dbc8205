//! Cursors over sorted member lists for the recipients iterator (hot path): monotonic cursors into
//! the sparse `except` lists, and galloping search.
//!
//! Kept in the `Scratch` between broadcasts, so their vectors are reused, never reallocated once warm.

/// Cursors of one plan, kept in the `Scratch` so that planning reuses their memory.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    /// Cursor into each sparse `except` room.
    pub(super) except_pos: Vec<usize>,
    /// Cursor into the excepted own-room slots.
    pub(super) except_slots_pos: usize,
}

impl Cursors {
    pub(crate) fn reset(&mut self, except_rooms: usize) {
        self.except_pos.clear();
        self.except_pos.resize(except_rooms, 0);
        self.except_slots_pos = 0;
    }
}

/// Bits of the members of `list` within the word starting at slot `start`; advances `pos` past them.
#[inline]
pub(super) fn mask_in_word(list: &[u32], pos: &mut usize, start: u32) -> u64 {
    *pos = seek(list, *pos, start);
    let mut mask = 0;
    while let Some(&slot) = list.get(*pos) {
        if u64::from(slot) >= u64::from(start) + 64 {
            break;
        }
        mask |= 1 << (slot % 64);
        *pos += 1;
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
    use super::seek;

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
}
