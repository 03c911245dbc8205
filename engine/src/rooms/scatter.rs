//! `ScatterBits`: the planner's reusable bitmap over the shard's slots (hot path). The members of
//! several sorted lists are scattered into it, one bit each, and the union comes back in ascending
//! order, each slot once — the replacement for a k-way merge, which mispredicts a branch on almost
//! every member of interleaved lists.
//!
//! Two summary levels above the words (`mid`: one bit per word, `top`: one bit per `mid` word) let the
//! walk jump straight to the non-zero words: reading back costs O(non-zero words + recipients), not
//! O(universe / 64), so a few members spread over a 1M-slot shard cost as little as a few packed ones.
//! The walk zeroes every word it reads, so a fully consumed plan leaves the bitmap clean without a
//! reset; only a plan whose iterator was dropped early costs a full clear (of `universe / 8` bytes) at
//! the next [`ScatterBits::prepare`].

/// Words per `mid` word and `mid` words per `top` word.
const FAN: usize = 64;

/// A bitmap of slots with two summary levels, kept in the `Scratch` between plans.
///
/// Invariant between plans unless `dirty`: every word of every level is zero.
#[derive(Debug, Default)]
pub(crate) struct ScatterBits {
    /// Bit `s % 64` of `words[s / 64]` is set iff slot `s` was scattered and not yet read back.
    words: Vec<u64>,
    /// Bit `w % 64` of `mid[w / 64]` is set if `words[w]` may be non-zero.
    mid: Vec<u64>,
    /// Bit `m % 64` of `top[m / 64]` is set if `mid[m]` may be non-zero.
    top: Vec<u64>,
    /// A plan has used the bitmap and not read it back to the end.
    dirty: bool,
}

/// Where a summary walk over [`ScatterBits`] stands: the `top` word to load next, and the bits of the
/// current `top` and `mid` words not yet visited.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ScatterCursor {
    next_top: usize,
    top_bits: u64,
    top_base: usize,
    mid_bits: u64,
    mid_base: usize,
}

impl ScatterBits {
    /// Makes the bitmap clean and able to hold every slot below `end_word * 64`, then marks it in use.
    /// Allocates only to grow; clears everything (O(len / 8) bytes) only after an abandoned plan.
    pub(crate) fn prepare(&mut self, end_word: usize) {
        if self.dirty {
            self.words.fill(0);
            self.mid.fill(0);
            self.top.fill(0);
        }
        if self.words.len() < end_word {
            self.words.resize(end_word, 0);
            self.mid.resize(end_word.div_ceil(FAN), 0);
            self.top.resize(end_word.div_ceil(FAN * FAN), 0);
        }
        self.dirty = true;
    }

    /// Sets the bit of every slot of `list` and its summary bits, for [`ScatterBits::next_word`].
    /// Branch-free per member; slots past the prepared size are ignored (the caller sized it).
    #[inline]
    pub(crate) fn add_summarised(&mut self, list: &[u32]) {
        for &slot in list {
            let w = slot as usize / 64;
            if let Some(word) = self.words.get_mut(w) {
                *word |= 1 << (slot % 64);
            }
            if let Some(mid) = self.mid.get_mut(w / FAN) {
                *mid |= 1 << (w % FAN);
            }
            if let Some(top) = self.top.get_mut(w / (FAN * FAN)) {
                *top |= 1 << (w / FAN % FAN);
            }
        }
    }

    /// Sets the bit of every slot of `list`, without summaries: for a walk that reads every word
    /// with [`ScatterBits::take_word`]. Every slot must be below the prepared `end_word * 64` (else
    /// a bit could outlive the walk).
    #[inline]
    pub(crate) fn add_flat(&mut self, list: &[u32]) {
        for &slot in list {
            if let Some(word) = self.words.get_mut(slot as usize / 64) {
                *word |= 1 << (slot % 64);
            }
        }
    }

    /// Clears the bit of every slot of `list` (summaries stay: a word they point at may be zero).
    #[inline]
    pub(crate) fn remove_all(&mut self, list: &[u32]) {
        for &slot in list {
            if let Some(word) = self.words.get_mut(slot as usize / 64) {
                *word &= !(1 << (slot % 64));
            }
        }
    }

    /// Word `w`, zeroed as it is read.
    #[inline]
    pub(crate) fn take_word(&mut self, w: usize) -> u64 {
        self.words.get_mut(w).map_or(0, std::mem::take)
    }

    /// The next non-zero word after the cursor, as `(index, bits)`, zeroing what it reads; `None`
    /// once every summarised word has been read, which leaves the bitmap clean.
    #[inline]
    pub(crate) fn next_word(&mut self, cursor: &mut ScatterCursor) -> Option<(usize, u64)> {
        loop {
            if cursor.mid_bits != 0 {
                let w = cursor.mid_base + cursor.mid_bits.trailing_zeros() as usize;
                cursor.mid_bits &= cursor.mid_bits - 1;
                let bits = self.take_word(w);
                if bits != 0 {
                    return Some((w, bits));
                }
            } else if cursor.top_bits != 0 {
                let m = cursor.top_base + cursor.top_bits.trailing_zeros() as usize;
                cursor.top_bits &= cursor.top_bits - 1;
                cursor.mid_bits = self.mid.get_mut(m).map_or(0, std::mem::take);
                cursor.mid_base = m * FAN;
            } else {
                let Some(top) = self.top.get_mut(cursor.next_top) else {
                    self.dirty = false;
                    return None;
                };
                cursor.top_bits = std::mem::take(top);
                cursor.top_base = cursor.next_top * FAN;
                cursor.next_top += 1;
            }
        }
    }

    /// Declares the bitmap clean: a word walk has read (and zeroed) every word set by `add_flat`.
    pub(crate) fn mark_read(&mut self) {
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bits: &mut ScatterBits) -> Vec<u32> {
        let mut cursor = ScatterCursor::default();
        let mut out = Vec::new();
        while let Some((w, mut word)) = bits.next_word(&mut cursor) {
            while word != 0 {
                out.push((w * 64) as u32 + word.trailing_zeros());
                word &= word - 1;
            }
        }
        out
    }

    #[test]
    fn union_of_lists_comes_back_ascending_once_and_leaves_the_bitmap_clean() {
        let mut bits = ScatterBits::default();
        let a = [3u32, 64, 4095, 4096, 300_000];
        let b = [3u32, 65, 262_143, 262_144];
        bits.prepare(300_001 / 64 + 1);
        bits.add_summarised(&a);
        bits.add_summarised(&b);
        assert_eq!(read_back(&mut bits), [3, 64, 65, 4095, 4096, 262_143, 262_144, 300_000]);
        assert!(!bits.dirty);
        assert!(bits.words.iter().chain(&bits.mid).chain(&bits.top).all(|&w| w == 0));
        bits.prepare(10);
        bits.add_summarised(&[7]);
        assert_eq!(read_back(&mut bits), [7], "reused without a reset");
    }

    #[test]
    fn an_abandoned_walk_is_cleared_by_the_next_prepare() {
        let mut bits = ScatterBits::default();
        bits.prepare(100);
        bits.add_summarised(&[1, 700, 6000]);
        let mut cursor = ScatterCursor::default();
        assert_eq!(bits.next_word(&mut cursor), Some((0, 2)));
        bits.prepare(100);
        bits.add_summarised(&[5]);
        assert_eq!(read_back(&mut bits), [5]);
        bits.prepare(100);
        bits.add_summarised(&[5, 6, 700]);
        bits.remove_all(&[6, 700, 701]);
        assert_eq!(read_back(&mut bits), [5]);
        bits.prepare(100);
        bits.add_flat(&[9, 6399]);
        assert_eq!((bits.take_word(0), bits.take_word(99)), (1 << 9, 1 << 63));
        bits.mark_read();
        assert_eq!(read_back(&mut bits), []);
    }
}
