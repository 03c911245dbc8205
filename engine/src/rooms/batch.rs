//! `SlotBatch`: turns the recipient words of a sparse walk into slot numbers without a mispredicted
//! branch per word (hot path).
//!
//! Popping the bits of a word one by one costs a loop whose trip count is the word's population —
//! 0 to 4 at random in a sparse union (a few percent of the slots), so the loop's exit mispredicts on
//! almost every word (~15–20 cycles, several times the rest of the per-recipient work). Here each
//! word is decoded with four unconditional pops (positions past the word's population are written
//! but not counted), plus a loop only for the rare word holding more, into a buffer of slots; the
//! caller drains the buffer a few hundred slots at a time, in one long, well-predicted loop.
//!
//! Used by the word walk over a sparse union only. Dense walks (tens of recipients per word) pop
//! directly: there the loop exit costs little per recipient. So do the summary and touched-word
//! walks, whose non-zero words mostly hold one recipient (measured on the summary walk: buffering
//! made 5 rooms of 10 on a 1M-slot shard ~20% slower).

use crate::ids::SocketId;

/// Buffer length; a power of two so that masking the index keeps every write in bounds.
const CAP: usize = 512;
/// Drain once this many slots are buffered: a word adds at most 64 (plus 4 uncounted writes), so
/// the buffer never overflows.
const DRAIN_AT: usize = CAP - 64 - 4;

/// Slots decoded from recipient words, in the order pushed. Kept in the planner's `Scratch` (2 KiB,
/// not re-initialised per plan).
#[derive(Debug)]
pub(crate) struct SlotBatch {
    slots: [u32; CAP],
    len: usize,
}

impl Default for SlotBatch {
    fn default() -> Self {
        SlotBatch { slots: [0; CAP], len: 0 }
    }
}

impl SlotBatch {
    /// Appends the slots of `bits` (bit `i` is slot `base + i`), ascending. Returns whether the
    /// caller should [`SlotBatch::take`] the buffered slots before pushing again.
    #[inline(always)]
    pub(crate) fn push_word(&mut self, base: u32, mut bits: u64) -> bool {
        let mut len = self.len;
        for _ in 0..4 {
            // With `bits` empty this writes a junk slot at `len` without counting it.
            self.slots[len & (CAP - 1)] = base.wrapping_add(bits.trailing_zeros());
            len += usize::from(bits != 0);
            bits &= bits.wrapping_sub(1);
        }
        while bits != 0 {
            self.slots[len & (CAP - 1)] = base + bits.trailing_zeros();
            len += 1;
            bits &= bits - 1;
        }
        self.len = len;
        len >= DRAIN_AT
    }

    /// The buffered slots, leaving the buffer empty (as every walk leaves it: it takes the rest at
    /// its end, and `len` is reset before the slots are handed out).
    #[inline(always)]
    pub(crate) fn take(&mut self) -> &[u32] {
        let len = std::mem::take(&mut self.len);
        self.slots.get(..len).unwrap_or(&[])
    }
}

/// Every slot of `bits` (bit `i` is slot `base + i`), ascending, through `f`. The word and its base
/// stay in registers (in `next` they live in the iterator, so popping a bit is a store and a reload).
#[inline(always)]
pub(crate) fn fold_word<B, F: FnMut(B, SocketId) -> B>(
    generations: &[u32],
    base: u32,
    mut bits: u64,
    mut acc: B,
    f: &mut F,
) -> B {
    while bits != 0 {
        let slot = base + bits.trailing_zeros();
        bits &= bits - 1;
        acc = f(acc, SocketId::new(slot, generations.get(slot as usize).copied().unwrap_or(0)));
    }
    acc
}

/// Every slot of `slots` through `f`.
#[inline(always)]
pub(crate) fn fold_slots<B, F: FnMut(B, SocketId) -> B>(
    generations: &[u32],
    slots: &[u32],
    mut acc: B,
    f: &mut F,
) -> B {
    for &slot in slots {
        acc = f(acc, SocketId::new(slot, generations.get(slot as usize).copied().unwrap_or(0)));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_every_population_come_back_as_their_slots_in_order() {
        let mut batch = SlotBatch::default();
        let words: [u64; 6] = [0, 1 << 63, 0b1011, 0xf0f0, u64::MAX, 0b1_0000_0001];
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for (k, &word) in words.iter().cycle().take(60).enumerate() {
            let base = 64 * k as u32;
            expected.extend((0..64).filter(|i| word >> i & 1 == 1).map(|i| base + i));
            if batch.push_word(base, word) {
                got.extend_from_slice(batch.take());
            }
        }
        got.extend_from_slice(batch.take());
        assert_eq!(got, expected);
        assert!(batch.take().is_empty());
    }
}
