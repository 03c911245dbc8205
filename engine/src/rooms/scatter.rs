//! `ScatterBits`: the planner's reusable bitmap over the shard's slots (hot path). The members of
//! several sorted lists are scattered into it, one bit each, and the union comes back in ascending
//! order, each slot once — the replacement for a k-way merge, which mispredicts a branch on almost
//! every member of interleaved lists.
//!
//! Two summary levels above the words (`mid`: one bit per word, `top`: one byte per `mid` word) let
//! the walk jump straight to the non-zero words: reading back costs O(non-zero words + recipients), not
//! O(universe / 64), so a few members spread over a 1M-slot shard cost as little as a few packed ones.
//! The walk zeroes every word it reads, so a fully consumed plan leaves the bitmap clean without a
//! reset; only a plan whose iterator was dropped early costs a full clear (of `universe / 8` bytes) at
//! the next [`ScatterBits::prepare`].
//!
//! For a few candidates in all (tens to hundreds over a big shard) the summaries cost more than they
//! save: [`ScatterBits::add_touched`] skips them and instead notes each word it turns non-zero in a
//! short list, and [`ScatterBits::next_touched`] reads back exactly those words — no summary
//! bookkeeping, no branch per member, but the union comes back in the order its words were first
//! touched, not ascending.

/// Words summarised by one `mid` word.
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
    /// `top[m]` is 1 if `mid[m]` may be non-zero, else 0; the length is a multiple of 8 (read back 8
    /// bytes at a time). A byte, not a bit: setting it is a plain store, where a bit is a
    /// read-modify-write that consecutive members (sorted lists: all in a few `top` words) chain
    /// through memory — ~5 cycles per member.
    top: Vec<u8>,
    /// `touched[..touched_len]`: indexes of the words [`ScatterBits::add_touched`] turned non-zero
    /// since the last `prepare`, each once, in the order they were first set (the members cleared
    /// since may have left some zero again). The vector only grows (its tail is scratch space for
    /// the notes of the next list), so noting costs no `memset` per list.
    touched: Vec<u32>,
    touched_len: usize,
    /// A plan has used the bitmap and not read it back to the end.
    dirty: bool,
}

/// Where a summary walk over [`ScatterBits`] stands: the 8 `top` bytes to load next, and the set
/// bytes (as their lowest bits) of the current 8 and bits of the current `mid` word not yet visited.
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
        self.touched_len = 0;
        if self.words.len() < end_word {
            self.words.resize(end_word, 0);
            self.mid.resize(end_word.div_ceil(FAN), 0);
            self.top.resize(end_word.div_ceil(FAN).div_ceil(8) * 8, 0);
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
            if let Some(top) = self.top.get_mut(w / FAN) {
                *top = 1;
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

    /// Sets the bit of every slot of `list`, without summaries, and notes each word it turns from
    /// zero to non-zero, for [`ScatterBits::next_touched`]. Branch-free per member (the note is
    /// written every time and kept only for a word that was zero); slots past the prepared size are
    /// ignored (the caller sized it).
    #[inline]
    pub(crate) fn add_touched(&mut self, list: &[u32]) {
        let start = self.touched_len;
        // Room for a note per member. Allocates only to grow.
        if self.touched.len() < start + list.len() {
            self.touched.resize(start + list.len(), 0);
        }
        // Plain slices, so the loop keeps their addresses and lengths in registers.
        let words: &mut [u64] = &mut self.words;
        let notes = self.touched.get_mut(start..).unwrap_or_default();
        let mut len = 0;
        for &slot in list {
            let w = slot as usize / 64;
            if let Some(word) = words.get_mut(w) {
                let old = *word;
                *word = old | 1 << (slot % 64);
                if let Some(note) = notes.get_mut(len) {
                    *note = w as u32;
                }
                len += usize::from(old == 0);
            }
        }
        self.touched_len = start + len;
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
                // Set bytes are 1: bit 8k of `top_bits` stands for `mid[top_base + k]`.
                let m = cursor.top_base + cursor.top_bits.trailing_zeros() as usize / 8;
                cursor.top_bits &= cursor.top_bits - 1;
                cursor.mid_bits = self.mid.get_mut(m).map_or(0, std::mem::take);
                cursor.mid_base = m * FAN;
            } else {
                let Some(bytes) = self.top.get_mut(cursor.next_top..cursor.next_top + 8) else {
                    self.dirty = false;
                    return None;
                };
                let mut eight = [0u8; 8];
                eight.copy_from_slice(bytes);
                bytes.fill(0);
                cursor.top_bits = u64::from_le_bytes(eight);
                cursor.top_base = cursor.next_top;
                cursor.next_top += 8;
            }
        }
    }

    /// The touched word at `*pos` (see [`ScatterBits::add_touched`]), as `(index, bits)`, zeroed as it
    /// is read (`bits` may be 0: its members were cleared since), and `*pos` moved past it; `None`
    /// past the last, which leaves the bitmap clean.
    #[inline]
    pub(crate) fn next_touched(&mut self, pos: &mut usize) -> Option<(usize, u64)> {
        let Some(&w) = self.touched.get(..self.touched_len).and_then(|t| t.get(*pos)) else {
            self.dirty = false;
            return None;
        };
        *pos += 1;
        let w = w as usize;
        Some((w, self.words.get_mut(w).map_or(0, std::mem::take)))
    }

    /// The words and the touched list from `pos` on, for a walk that reads (and zeroes) each of those
    /// words, then calls [`ScatterBits::mark_read`].
    #[inline]
    pub(crate) fn touched_from(&mut self, pos: usize) -> (&mut [u64], &[u32]) {
        (&mut self.words, self.touched.get(pos..self.touched_len).unwrap_or_default())
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
        assert!(bits.words.iter().chain(&bits.mid).all(|&w| w == 0) && bits.top.iter().all(|&b| b == 0));
        bits.prepare(10);
        bits.add_summarised(&[7]);
        assert_eq!(read_back(&mut bits), [7], "reused without a reset");
    }

    #[test]
    fn touched_words_come_back_once_each_in_first_touch_order_and_leave_the_bitmap_clean() {
        let mut bits = ScatterBits::default();
        bits.prepare(300_001 / 64 + 1);
        bits.add_touched(&[70, 300_000, 3]);
        bits.add_touched(&[3, 4, 71, 200]);
        bits.remove_all(&[200, 300_000, 5000]);
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some(word) = bits.next_touched(&mut pos) {
            got.push(word);
        }
        assert_eq!(got, [(1, 0b1100_0000), (4687, 0), (0, 0b11000), (3, 0)]);
        assert!(!bits.dirty);
        assert!(bits.words.iter().all(|&w| w == 0));
        bits.prepare(10);
        bits.add_touched(&[9]);
        let mut pos = 0;
        assert_eq!((bits.next_touched(&mut pos), bits.next_touched(&mut pos)), (Some((0, 1 << 9)), None));
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
