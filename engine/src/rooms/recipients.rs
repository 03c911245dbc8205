//! The recipients iterator: the innermost loop of the hot path (see `NamespaceRooms::plan`).
//!
//! `next` has two fast paths — pop a bit of the current 64-slot word, or take the next slot of the
//! current chunk of the one sorted list being walked — and falls back to `refill` to compute the next
//! word or load the next chunk. `fold` (and so `for_each`, `count`) does the same walk with its state
//! in locals: a loop per word and per chunk instead of a state machine re-entered per recipient, and
//! sparse word walks decode in batches (`SlotBatch`). Both give the same recipients in the same order,
//! and `fold` may take over from wherever `next` stopped.

use crate::ids::SocketId;
use crate::rooms::batch::{fold_slots, fold_word, SlotBatch};
use crate::rooms::cursors::{contains_at, mask_in_word, Cursors};
use crate::rooms::namespace::NamespaceRooms;
use crate::rooms::plan::BroadcastSpec;
use crate::rooms::scatter::{ScatterBits, ScatterCursor};
use crate::rooms::set::{bit, SetView};

/// How the next recipients are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// A dense target (or everyone), or sparse targets with a candidate per few words: every word
    /// below `end_word`; the sparse targets were scattered into the `ScatterBits` (without summaries)
    /// if `scattered`, the sparse excepts into the except bitmap if `excepts_scattered`.
    EveryWord { end_word: usize, scattered: bool, excepts_scattered: bool },
    /// At most one non-empty sparse target and no dense one: a plain walk of that list, each member
    /// checked against the excepts.
    OneList,
    /// Several sparse targets, no dense one: their union, scattered into the `ScatterBits`, read back
    /// a non-zero word at a time.
    Scattered,
    /// Several sparse targets with few members in all, no dense one, no except needing a cursor: their
    /// union, scattered into the `ScatterBits` without summaries, read back word by touched word (in
    /// the order the words were first touched, not ascending). The sparse excepts were cleared from
    /// the bitmap; dense ones are checked per word.
    Touched,
}

/// `except` rooms whose sets are cached in the iterator; the others are looked up in the room table
/// at each use.
pub(crate) const EXCEPT_CACHE: usize = 4;

/// What `plan` has prepared for the iterator.
#[derive(Debug)]
pub(crate) struct Setup<'s> {
    pub(crate) walk: Walk,
    /// [`Walk::OneList`]'s list, as chunks.
    pub(crate) run: &'s [Vec<u32>],
    /// Bit `i`: the set of `except` room `i` (of the first [`EXCEPT_CACHE`]) is still to check;
    /// clear once `plan` has applied it to a bitmap (or it is empty).
    pub(crate) excepts_left: u32,
    /// Excepted own-room slots still to check (one chunk, or none).
    pub(crate) except_slots: &'s [Vec<u32>],
    /// Some except is still to check.
    pub(crate) has_except: bool,
}

/// The recipients of one broadcast, each once, in no promised order (mostly ascending by slot; see
/// [`NamespaceRooms::plan`]).
#[derive(Debug)]
pub struct Recipients<'s> {
    /// Recipients of the current word not yet yielded: bit `i` is slot `base + i`.
    bits: u64,
    base: u32,
    /// [`Walk::OneList`]: candidates of the current chunk not yet checked, and the chunks after it.
    run: &'s [u32],
    chunks: &'s [Vec<u32>],
    generations: &'s [u32],
    walk: Walk,
    has_except: bool,
    next_word: usize,
    /// [`Walk::EveryWord`]'s first two dense sources (the live bitset for everyone, dense `to`
    /// rooms; empty if fewer); with more (`dense_overflow`), each word looks them all up in the room
    /// table. Two fields rather than an array: an array filled in a loop was built on the stack and
    /// copied into the iterator with 16-byte loads over 8-byte stores — a failed store forward that
    /// was ~40% of a 10-recipient plan.
    dense: (&'s [u64], &'s [u64]),
    /// Some dense source exists (else [`Walk::EveryWord`] reads only the scattered sparse targets).
    has_dense: bool,
    dense_overflow: bool,
    /// The first [`EXCEPT_CACHE`] `except` rooms' sets.
    excepts: [SetView<'s>; EXCEPT_CACHE],
    scatter: &'s mut ScatterBits,
    except_bits: &'s mut ScatterBits,
    /// The decode buffer of sparse walks (kept in the `Scratch`: not re-initialised per plan); taken
    /// by `fold`.
    batch: Option<&'s mut SlotBatch>,
    scatter_cursor: ScatterCursor,
    ns: &'s NamespaceRooms,
    spec: &'s BroadcastSpec,
    except_slots: &'s [Vec<u32>],
    cursors: &'s mut Cursors,
}

impl<'s> Recipients<'s> {
    #[inline]
    pub(crate) fn new(
        ns: &'s NamespaceRooms,
        spec: &'s BroadcastSpec,
        cursors: &'s mut Cursors,
        scatter: &'s mut ScatterBits,
        except_bits: &'s mut ScatterBits,
        batch: &'s mut SlotBatch,
        setup: Setup<'s>,
    ) -> Self {
        let Setup { walk, run, excepts_left, except_slots, has_except } = setup;
        let mut excepts = [SetView::Sparse(&[]); EXCEPT_CACHE];
        if excepts_left != 0 {
            for (i, (view, &id)) in excepts.iter_mut().zip(&spec.except_rooms).enumerate() {
                if excepts_left & (1 << i) != 0 {
                    *view = ns.rooms.members(id).view();
                }
            }
        }
        let (mut first, mut second, mut more): (Option<&'s [u64]>, Option<&'s [u64]>, bool) =
            (None, None, false);
        if let Walk::EveryWord { .. } = walk {
            let everyone = spec.everyone.then(|| ns.slab.live_words());
            let dense_rooms = spec.to_rooms.iter().filter_map(|&id| match ns.rooms.members(id).view() {
                SetView::Dense(words) => Some(words),
                SetView::Sparse(_) => None,
            });
            let mut sources = everyone.into_iter().chain(dense_rooms);
            (first, second) = (sources.next(), sources.next());
            more = sources.next().is_some();
        }
        Recipients {
            bits: 0,
            base: 0,
            run: &[],
            chunks: run,
            generations: ns.slab.generations(),
            walk,
            has_except,
            next_word: 0,
            dense: (first.unwrap_or(&[]), second.unwrap_or(&[])),
            has_dense: first.is_some(),
            dense_overflow: more,
            excepts,
            scatter,
            except_bits,
            batch: Some(batch),
            scatter_cursor: ScatterCursor::default(),
            ns,
            spec,
            except_slots,
            cursors,
        }
    }

    #[inline]
    fn id(&self, slot: u32) -> SocketId {
        SocketId::new(slot, self.generations.get(slot as usize).copied().unwrap_or(0))
    }

    /// The set of `except` room number `i`.
    #[inline]
    fn except_set(&self, i: usize) -> SetView<'s> {
        match self.excepts.get(i) {
            Some(&view) => view,
            None => self
                .spec
                .except_rooms
                .get(i)
                .map_or(SetView::Sparse(&[]), |&id| self.ns.rooms.members(id).view()),
        }
    }

    /// Loads the next non-empty word into `bits`; `false` when no recipient is left.
    fn refill(&mut self) -> bool {
        match self.walk {
            Walk::EveryWord { end_word, scattered, excepts_scattered } => {
                while self.next_word < end_word {
                    let w = self.next_word;
                    self.next_word += 1;
                    let acc = self.word_of_every_word(w, scattered, excepts_scattered);
                    if acc != 0 {
                        self.bits = acc;
                        self.base = (w * 64) as u32;
                        return true;
                    }
                }
                self.every_word_done(scattered, excepts_scattered);
                false
            }
            Walk::OneList => false,
            Walk::Touched => loop {
                let Some((w, mut acc)) = self.scatter.next_touched(&mut self.next_word) else {
                    return false;
                };
                if self.has_except {
                    acc = self.except_word(w, acc);
                }
                if acc != 0 {
                    self.bits = acc;
                    self.base = (w * 64) as u32;
                    return true;
                }
            },
            Walk::Scattered => loop {
                let Some((w, mut acc)) = self.scatter.next_word(&mut self.scatter_cursor) else {
                    return false;
                };
                if self.has_except {
                    acc = self.except_word(w, acc);
                }
                if acc != 0 {
                    self.bits = acc;
                    self.base = (w * 64) as u32;
                    return true;
                }
            },
        }
    }

    /// [`Walk::EveryWord`]'s recipients in word `w`. Every word is asked for once, ascending.
    #[inline(always)]
    fn word_of_every_word(&mut self, w: usize, scattered: bool, excepts_scattered: bool) -> u64 {
        let mut acc = if self.has_dense { self.dense_word(w) } else { 0 };
        if scattered {
            acc |= self.scatter.take_word(w);
        }
        if excepts_scattered {
            // Taken even when `acc` is 0: the bitmap must end clean.
            acc &= !self.except_bits.take_word(w);
        }
        if acc != 0 && self.has_except {
            acc = self.except_word(w, acc);
        }
        acc
    }

    /// [`Walk::EveryWord`] has read every word: the bitmaps it took words from are clean.
    fn every_word_done(&mut self, scattered: bool, excepts_scattered: bool) {
        if scattered {
            self.scatter.mark_read();
        }
        if excepts_scattered {
            self.except_bits.mark_read();
        }
    }

    /// Every member of `list` not excepted, through `f`.
    #[inline(always)]
    fn fold_list<B, F: FnMut(B, SocketId) -> B>(&mut self, list: &[u32], mut acc: B, f: &mut F) -> B {
        if self.has_except {
            for &slot in list {
                if !self.is_excepted(slot) {
                    acc = f(acc, self.id(slot));
                }
            }
        } else {
            for &slot in list {
                acc = f(acc, self.id(slot));
            }
        }
        acc
    }

    /// The OR of the dense sources' word `w`.
    #[inline]
    fn dense_word(&self, w: usize) -> u64 {
        if !self.dense_overflow {
            let word = |words: &[u64]| words.get(w).copied().unwrap_or(0);
            return word(self.dense.0) | word(self.dense.1);
        }
        let (ns, spec) = (self.ns, self.spec);
        let mut acc = 0;
        if spec.everyone {
            acc = ns.slab.live_words().get(w).copied().unwrap_or(0);
        }
        for &id in &spec.to_rooms {
            if let SetView::Dense(words) = ns.rooms.members(id).view() {
                acc |= words.get(w).copied().unwrap_or(0);
            }
        }
        acc
    }

    /// `acc` (candidates of word `w`) minus the excepted slots. Words are asked for in ascending order.
    #[inline]
    fn except_word(&mut self, w: usize, mut acc: u64) -> u64 {
        let start = (w * 64) as u32;
        for i in 0..self.spec.except_rooms.len() {
            let set = self.except_set(i);
            let Some(pos) = self.cursors.except_pos.get_mut(i) else { break };
            match set {
                SetView::Dense(words) => acc &= !words.get(w).copied().unwrap_or(0),
                SetView::Sparse(chunks) => acc &= !mask_in_word(chunks, pos, start),
            }
        }
        acc & !mask_in_word(self.except_slots, &mut self.cursors.except_slots_pos, start)
    }

    /// Whether candidate `slot` (ascending across calls) is in an `except` room or socket.
    fn is_excepted(&mut self, slot: u32) -> bool {
        for i in 0..self.spec.except_rooms.len() {
            let set = self.except_set(i);
            let Some(pos) = self.cursors.except_pos.get_mut(i) else { break };
            let hit = match set {
                SetView::Dense(words) => bit(words, slot),
                SetView::Sparse(chunks) => contains_at(chunks, pos, slot),
            };
            if hit {
                return true;
            }
        }
        contains_at(self.except_slots, &mut self.cursors.except_slots_pos, slot)
    }
}

impl Iterator for Recipients<'_> {
    type Item = SocketId;

    #[inline]
    fn next(&mut self) -> Option<SocketId> {
        loop {
            if self.bits != 0 {
                let slot = self.base + self.bits.trailing_zeros();
                self.bits &= self.bits - 1;
                return Some(self.id(slot));
            }
            if let Some((&slot, rest)) = self.run.split_first() {
                self.run = rest;
                if self.has_except && self.is_excepted(slot) {
                    continue;
                }
                return Some(self.id(slot));
            }
            if let Some((chunk, rest)) = self.chunks.split_first() {
                (self.run, self.chunks) = (chunk, rest);
                continue;
            }
            if !self.refill() {
                return None;
            }
        }
    }

    #[inline]
    fn fold<B, F: FnMut(B, SocketId) -> B>(mut self, init: B, mut f: F) -> B {
        self.fold_rest(init, &mut f)
    }
}

impl Recipients<'_> {
    /// The internal iteration behind [`Iterator::fold`] (and so `for_each`, `count`, `sum`): the same
    /// recipients as repeated `next`, from wherever `next` left off, with the walk's state in locals.
    fn fold_rest<B, F: FnMut(B, SocketId) -> B>(&mut self, mut acc: B, f: &mut F) -> B {
        let generations = self.generations;
        acc = fold_word(generations, self.base, std::mem::take(&mut self.bits), acc, f);
        let run = std::mem::take(&mut self.run);
        acc = self.fold_list(run, acc, f);
        for chunk in std::mem::take(&mut self.chunks) {
            acc = self.fold_list(chunk, acc, f);
        }
        match self.walk {
            Walk::EveryWord { end_word, scattered, excepts_scattered } if self.has_dense => {
                for w in std::mem::replace(&mut self.next_word, end_word)..end_word {
                    let bits = self.word_of_every_word(w, scattered, excepts_scattered);
                    acc = fold_word(generations, (w * 64) as u32, bits, acc, f);
                }
                self.every_word_done(scattered, excepts_scattered);
            }
            // Sparse unions: a few recipients per word, decoded in batches (see `SlotBatch`).
            Walk::EveryWord { end_word, scattered, excepts_scattered } => {
                // `batch` is always there (`fold` runs once); the fallback is built only if not.
                let mut local = None;
                let batch = match self.batch.take() {
                    Some(batch) => batch,
                    None => local.insert(SlotBatch::default()),
                };
                for w in std::mem::replace(&mut self.next_word, end_word)..end_word {
                    let bits = self.word_of_every_word(w, scattered, excepts_scattered);
                    if batch.push_word((w * 64) as u32, bits) {
                        acc = fold_slots(generations, batch.take(), acc, f);
                    }
                }
                acc = fold_slots(generations, batch.take(), acc, f);
                self.every_word_done(scattered, excepts_scattered);
            }
            Walk::OneList => {}
            Walk::Scattered => {
                let mut cursor = self.scatter_cursor;
                while let Some((w, mut bits)) = self.scatter.next_word(&mut cursor) {
                    if self.has_except {
                        bits = self.except_word(w, bits);
                    }
                    acc = fold_word(generations, (w * 64) as u32, bits, acc, f);
                }
                self.scatter_cursor = cursor;
            }
            Walk::Touched => acc = self.fold_touched(acc, f),
        }
        acc
    }
}

impl Recipients<'_> {
    /// [`Walk::Touched`]'s part of `fold_rest`: each touched word from where `next` left off. Out of
    /// line, so that `fold_rest`'s other walks keep the code (and registers) they had without it.
    #[inline(never)]
    fn fold_touched<B, F: FnMut(B, SocketId) -> B>(&mut self, mut acc: B, f: &mut F) -> B {
        let generations = self.generations;
        if !self.has_except {
            // The common case, no dense except: slices in registers, no check per word.
            let (words, touched) = self.scatter.touched_from(self.next_word);
            self.next_word += touched.len();
            for &w in touched {
                let bits = words.get_mut(w as usize).map_or(0, std::mem::take);
                acc = fold_word(generations, w * 64, bits, acc, f);
            }
            self.scatter.mark_read();
            return acc;
        }
        let mut pos = self.next_word;
        while let Some((w, mut bits)) = self.scatter.next_touched(&mut pos) {
            bits = self.except_word(w, bits);
            acc = fold_word(generations, (w * 64) as u32, bits, acc, f);
        }
        self.next_word = pos;
        acc
    }
}

impl std::iter::FusedIterator for Recipients<'_> {}
