//! The recipients iterator: the innermost loop of the hot path (see `NamespaceRooms::plan`).
//!
//! `next` has two fast paths — pop a bit of the current 64-slot word, or take the next slot of the
//! current run of one sorted member list — and falls back to `refill` to compute the next word or run.

use crate::ids::SocketId;
use crate::rooms::cursors::{mask_in_word, seek, Cursors};
use crate::rooms::namespace::NamespaceRooms;
use crate::rooms::plan::BroadcastSpec;
use crate::rooms::set::{bit, SetView};

/// Largest number of sparse `to` lists merged by [`Walk::SmallMerge`].
const SMALL_MERGE: usize = 4;

/// How the next recipients are found.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Walk {
    /// A dense target (or everyone): every word below `end_word`.
    EveryWord { end_word: usize },
    /// Sparse targets only, one list or more than [`SMALL_MERGE`]: runs of the merge heap's top list
    /// (one list is a single run: a plain slice walk).
    Merge,
    /// Sparse targets only, 2..=[`SMALL_MERGE`] lists: branch-free minimum of their heads per
    /// candidate. Interleaved lists make a heap mispredict on almost every member; this does not.
    SmallMerge,
}

impl Walk {
    /// The walk for a plan: `dense` if any target is dense or everyone, and the number of non-empty
    /// sparse lists.
    pub(crate) fn choose(dense: bool, end_word: usize, sparse_lists: usize) -> Walk {
        match (dense, sparse_lists) {
            (true, _) => Walk::EveryWord { end_word },
            (false, 2..=SMALL_MERGE) => Walk::SmallMerge,
            (false, _) => Walk::Merge,
        }
    }
}

/// Dense word sources cached by [`Walk::EveryWord`] (the live bitset for everyone, dense `to` rooms);
/// with more, each word looks them up in the room table.
const DENSE_CACHE: usize = 4;

/// State of [`Walk::SmallMerge`]: each list, its cursor, and its head (`u32::MAX` once exhausted;
/// no slot reaches it, see `Slab`).
#[derive(Debug, Default)]
struct SmallMerge<'s> {
    lists: [&'s [u32]; SMALL_MERGE],
    pos: [usize; SMALL_MERGE],
    heads: [u32; SMALL_MERGE],
}

/// The recipients of one broadcast, ascending by slot, each once; see [`NamespaceRooms::plan`].
#[derive(Debug)]
pub struct Recipients<'s> {
    /// Recipients of the current word not yet yielded: bit `i` is slot `base + i`.
    bits: u64,
    base: u32,
    /// Candidates of the current merge run, ascending (still to check against the excepts).
    run: &'s [u32],
    /// The last merge candidate (`u64::MAX`: none yet); equal heads of two lists arrive adjacent.
    last: u64,
    small: SmallMerge<'s>,
    /// [`Walk::EveryWord`]'s dense sources (unused entries are empty), unless `dense_overflow`.
    dense: [&'s [u64]; DENSE_CACHE],
    dense_overflow: bool,
    generations: &'s [u32],
    walk: Walk,
    next_word: usize,
    has_except: bool,
    ns: &'s NamespaceRooms,
    spec: &'s BroadcastSpec,
    to_slots: &'s [u32],
    except_slots: &'s [u32],
    cursors: &'s mut Cursors,
}

impl<'s> Recipients<'s> {
    pub(crate) fn new(
        ns: &'s NamespaceRooms,
        spec: &'s BroadcastSpec,
        cursors: &'s mut Cursors,
        to_slots: &'s [u32],
        except_slots: &'s [u32],
        walk: Walk,
    ) -> Self {
        let mut small = SmallMerge { heads: [u32::MAX; SMALL_MERGE], ..SmallMerge::default() };
        if let Walk::SmallMerge = walk {
            for (i, head) in cursors.heap.iter().take(SMALL_MERGE).enumerate() {
                let list = source_list(ns, spec, to_slots, head.source as usize);
                if let (Some(l), Some(h)) = (small.lists.get_mut(i), small.heads.get_mut(i)) {
                    (*l, *h) = (list, head.slot);
                }
            }
        }
        let mut dense: [&'s [u64]; DENSE_CACHE] = [&[]; DENSE_CACHE];
        let mut dense_count = 0;
        let everyone = spec.everyone.then(|| ns.slab.live_words());
        let dense_rooms = spec.to_rooms.iter().filter_map(|&id| match ns.rooms.members(id).view() {
            SetView::Dense(words) => Some(words),
            SetView::Sparse(_) => None,
        });
        for words in everyone.into_iter().chain(dense_rooms) {
            if let Some(slot) = dense.get_mut(dense_count) {
                *slot = words;
            }
            dense_count += 1;
        }
        Recipients {
            dense,
            dense_overflow: dense_count > DENSE_CACHE,
            bits: 0,
            base: 0,
            run: &[],
            last: u64::MAX,
            small,
            generations: ns.slab.generations(),
            walk,
            next_word: 0,
            has_except: !spec.except_rooms.is_empty() || !except_slots.is_empty(),
            ns,
            spec,
            to_slots,
            except_slots,
            cursors,
        }
    }

    #[inline]
    fn id(&self, slot: u32) -> SocketId {
        SocketId::new(slot, self.generations.get(slot as usize).copied().unwrap_or(0))
    }

    /// Loads the next word (`bits`) or run (`run`); `false` when no recipient is left.
    fn refill(&mut self) -> bool {
        match self.walk {
            Walk::EveryWord { end_word } => {
                while self.next_word < end_word {
                    let w = self.next_word;
                    self.next_word += 1;
                    let bits = self.word(w);
                    if bits != 0 {
                        self.bits = bits;
                        self.base = (w * 64) as u32;
                        return true;
                    }
                }
                false
            }
            Walk::SmallMerge => false,
            Walk::Merge => {
                let Some(&top) = self.cursors.heap.first() else { return false };
                // The run: the top list's members below every other list's head (at least one).
                let heap = &self.cursors.heap;
                let bound =
                    [1, 2].iter().filter_map(|&i| heap.get(i)).map(|h| h.slot).min().unwrap_or(u32::MAX);
                let list = source_list(self.ns, self.spec, self.to_slots, top.source as usize);
                let pos = self.cursors.to_pos.get(top.source as usize).copied().unwrap_or(usize::MAX);
                let end = seek(list, pos, bound).max(pos + 1).min(list.len());
                self.run = list.get(pos..end).unwrap_or(&[]);
                self.cursors.advance_top(list, end);
                true
            }
        }
    }

    /// Recipients among slots `64w .. 64w+64`, as a bit mask. Words are asked for in ascending order.
    #[inline]
    fn word(&mut self, w: usize) -> u64 {
        let (ns, spec) = (self.ns, self.spec);
        let mut acc = 0;
        if !self.dense_overflow {
            for words in self.dense {
                acc |= words.get(w).copied().unwrap_or(0);
            }
        } else {
            if spec.everyone {
                acc = ns.slab.live_words().get(w).copied().unwrap_or(0);
            }
            for &id in &spec.to_rooms {
                if let SetView::Dense(words) = ns.rooms.members(id).view() {
                    acc |= words.get(w).copied().unwrap_or(0);
                }
            }
        }
        // Sparse sources with members in this word: take their whole run in the word, then re-key.
        let end = (w as u64 + 1) * 64;
        while let Some(&top) = self.cursors.heap.first() {
            if u64::from(top.slot) >= end {
                break;
            }
            let list = source_list(ns, spec, self.to_slots, top.source as usize);
            let mut pos = self.cursors.to_pos.get(top.source as usize).copied().unwrap_or(usize::MAX);
            while let Some(&slot) = list.get(pos) {
                if u64::from(slot) >= end {
                    break;
                }
                acc |= 1 << (slot % 64);
                pos += 1;
            }
            self.cursors.advance_top(list, pos);
        }
        if acc == 0 || !self.has_except {
            return acc;
        }
        let start = (w * 64) as u32;
        for (&id, pos) in spec.except_rooms.iter().zip(self.cursors.except_pos.iter_mut()) {
            match ns.rooms.members(id).view() {
                SetView::Dense(words) => acc &= !words.get(w).copied().unwrap_or(0),
                SetView::Sparse(list) => acc &= !mask_in_word(list, pos, start),
            }
        }
        acc & !mask_in_word(self.except_slots, &mut self.cursors.except_slots_pos, start)
    }

    /// Whether merge candidate `slot` (ascending across calls) is in an `except` room.
    fn is_excepted(&mut self, slot: u32) -> bool {
        for (&id, pos) in self.spec.except_rooms.iter().zip(self.cursors.except_pos.iter_mut()) {
            let hit = match self.ns.rooms.members(id).view() {
                SetView::Dense(words) => bit(words, slot),
                SetView::Sparse(list) => {
                    *pos = seek(list, *pos, slot);
                    list.get(*pos) == Some(&slot)
                }
            };
            if hit {
                return true;
            }
        }
        let pos = &mut self.cursors.except_slots_pos;
        *pos = seek(self.except_slots, *pos, slot);
        self.except_slots.get(*pos) == Some(&slot)
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
                if u64::from(slot) == self.last {
                    continue;
                }
                self.last = u64::from(slot);
                if self.has_except && self.is_excepted(slot) {
                    continue;
                }
                return Some(self.id(slot));
            }
            if let Walk::SmallMerge = self.walk {
                return self.next_small_merge();
            }
            if !self.refill() {
                return None;
            }
        }
    }
}

impl Recipients<'_> {
    /// [`Walk::SmallMerge`]: the smallest head is the candidate; every list whose head equals it
    /// advances (which also drops duplicates). Branch-free but for the except checks. Kept out of
    /// line so that `next`'s fast paths stay small enough to inline into the caller's loop.
    #[inline(never)]
    fn next_small_merge(&mut self) -> Option<SocketId> {
        loop {
            let s = &mut self.small;
            let min = s.heads.iter().fold(u32::MAX, |a, &h| a.min(h));
            if min == u32::MAX {
                return None;
            }
            for ((head, pos), list) in s.heads.iter_mut().zip(s.pos.iter_mut()).zip(s.lists.iter()) {
                let hit = *head == min;
                *pos += usize::from(hit);
                let next = list.get(*pos).copied().unwrap_or(u32::MAX);
                *head = if hit { next } else { *head };
            }
            if self.has_except && self.is_excepted(min) {
                continue;
            }
            return Some(self.id(min));
        }
    }
}

impl std::iter::FusedIterator for Recipients<'_> {}

/// The sparse member list of merge source `source`: a `to` room, or the own-room slots.
#[inline]
fn source_list<'a>(
    ns: &'a NamespaceRooms,
    spec: &BroadcastSpec,
    to_slots: &'a [u32],
    source: usize,
) -> &'a [u32] {
    match spec.to_rooms.get(source) {
        Some(&id) => match ns.rooms.members(id).view() {
            SetView::Sparse(list) => list,
            SetView::Dense(_) => &[],
        },
        None => to_slots,
    }
}
