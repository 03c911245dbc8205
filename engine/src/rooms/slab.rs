//! The generational socket slab of one namespace on one shard.
//!
//! Slots are dense `u32` indexes; a [`SocketId`] is a slot plus the generation the slot had when the
//! socket took it. Freeing a slot bumps its generation, so every stale id fails the generation check.
//! A slot whose generation reaches `u32::MAX` is retired (never reused), so a generation never wraps
//! and no stale id can ever match again.
//!
//! Reuse policy: **lowest free slot first**. It keeps the slot space compact, which keeps room bitsets
//! and the live bitset short (fewer words to walk when planning). Finding it costs O(words scanned);
//! a hint (the lowest word that may hold a free slot) makes a run of allocations amortised O(1).

use crate::ids::{Sid, SocketId};
use crate::rooms::set::{bit, word_and_mask};
use crate::Error;

/// Control-path data of one socket. The planner reads only `in_own_room` (for sockets named in
/// `to`/`except`) — the per-recipient hot data (generation, liveness) lives in separate dense arrays.
#[derive(Debug)]
pub(crate) struct SocketEntry {
    /// Rooms joined other than the socket's own, in join order (sorted by nothing else).
    pub(crate) rooms: Vec<crate::ids::RoomId>,
    /// The socket's public id, also the name of its own room.
    pub(crate) sid: Sid,
    /// Where the own room sits in the join order: it comes before `rooms[own_pos]`.
    pub(crate) own_pos: u32,
    /// Whether the socket is in the room named by its own `Sid` (true from `connect` until it leaves it).
    pub(crate) in_own_room: bool,
}

// 24 (Vec) + 20 (Sid) + 4 + 1, padded to 56 bytes on 64-bit targets. Budget: 64 (STYLE.md §9).
const _: () = assert!(std::mem::size_of::<SocketEntry>() <= 64);

/// Socket slots of one namespace: generations, a live bitset and the per-socket entries.
///
/// Invariants: `generations.len() == entries.len()`; bit `i` of `live` is set iff slot `i` holds a
/// connected socket; `live_count` is the population count of `live`.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    generations: Vec<u32>,
    entries: Vec<SocketEntry>,
    live: Vec<u64>,
    live_count: usize,
    /// No free slot lives in a word below this one.
    free_hint: usize,
}

impl Slab {
    /// Takes the lowest free slot (or a new one) for a socket. O(1) amortised.
    pub(crate) fn alloc(&mut self, sid: Sid) -> SocketId {
        let slot = self.find_free().unwrap_or(self.generations.len());
        let entry = SocketEntry { rooms: Vec::new(), sid, own_pos: 0, in_own_room: false };
        if slot == self.generations.len() {
            self.generations.push(0);
            self.entries.push(entry);
        } else if let Some(e) = self.entries.get_mut(slot) {
            *e = entry;
        }
        let (word, mask) = word_and_mask(slot as u32);
        if self.live.len() <= word {
            self.live.resize(word + 1, 0);
        }
        if let Some(w) = self.live.get_mut(word) {
            *w |= mask;
        }
        self.live_count += 1;
        SocketId::new(slot as u32, self.generations.get(slot).copied().unwrap_or(0))
    }

    /// Frees a live slot: clears its live bit and bumps its generation. The caller has already taken
    /// the socket out of every room.
    pub(crate) fn free(&mut self, s: SocketId) -> Result<(), Error> {
        self.check(s)?;
        let slot = s.slot() as usize;
        if let Some(g) = self.generations.get_mut(slot) {
            *g += 1; // `check` passed, so *g < u32::MAX (retired slots are never live).
        }
        if let Some(e) = self.entries.get_mut(slot) {
            e.rooms = Vec::new();
            e.in_own_room = false;
        }
        let (word, mask) = word_and_mask(s.slot());
        if let Some(w) = self.live.get_mut(word) {
            *w &= !mask;
        }
        self.live_count -= 1;
        self.free_hint = self.free_hint.min(word);
        Ok(())
    }

    fn find_free(&mut self) -> Option<usize> {
        let limit = self.generations.len();
        while let Some(&w) = self.live.get(self.free_hint) {
            let mut free = !w;
            while free != 0 {
                let slot = self.free_hint * 64 + free.trailing_zeros() as usize;
                if slot >= limit {
                    return None;
                }
                if self.generations.get(slot).is_some_and(|&g| g < u32::MAX) {
                    return Some(slot);
                }
                free &= free - 1; // retired slot: skip it
            }
            self.free_hint += 1;
        }
        None
    }

    /// `Ok` iff `s` names the socket now in its slot.
    pub(crate) fn check(&self, s: SocketId) -> Result<(), Error> {
        if self.is_current(s) {
            Ok(())
        } else {
            Err(Error::Misuse("stale or unknown SocketId"))
        }
    }

    /// Whether `s` names the socket now in its slot (live and same generation). O(1).
    #[inline]
    pub(crate) fn is_current(&self, s: SocketId) -> bool {
        self.generations.get(s.slot() as usize) == Some(&s.generation()) && bit(&self.live, s.slot())
    }

    pub(crate) fn entry(&self, s: SocketId) -> Option<&SocketEntry> {
        if self.is_current(s) {
            self.entries.get(s.slot() as usize)
        } else {
            None
        }
    }

    pub(crate) fn entry_mut(&mut self, s: SocketId) -> Result<&mut SocketEntry, Error> {
        self.check(s)?;
        self.entries.get_mut(s.slot() as usize).ok_or(Error::Misuse("stale or unknown SocketId"))
    }

    /// The id of the socket now in `slot`. The caller knows the slot is live (it came from a room set
    /// or the live bitset), so a missing slot cannot happen; it maps to generation 0 rather than panic.
    #[inline]
    pub(crate) fn id_of(&self, slot: u32) -> SocketId {
        SocketId::new(slot, self.generations.get(slot as usize).copied().unwrap_or(0))
    }

    /// Slots ever used (live, free or retired); every slot number is below it. The universe of the
    /// room sets' representation rule.
    pub(crate) fn universe(&self) -> usize {
        self.generations.len()
    }

    pub(crate) fn live_count(&self) -> usize {
        self.live_count
    }

    /// Generation of every slot, indexed by slot: the planner's one per-recipient read.
    pub(crate) fn generations(&self) -> &[u32] {
        &self.generations
    }

    /// The live bitset: bit `i` set iff slot `i` holds a connected socket.
    pub(crate) fn live_words(&self) -> &[u64] {
        &self.live
    }

    /// Every connected socket's entry, in slot order.
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = &SocketEntry> + '_ {
        crate::rooms::set::BitIter::new(&self.live).filter_map(|slot| self.entries.get(slot as usize))
    }

    #[cfg(test)]
    pub(crate) fn set_generation_for_test(&mut self, slot: u32, generation: u32) {
        if let Some(g) = self.generations.get_mut(slot as usize) {
            *g = generation;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> Sid {
        Sid::from_random([n; 15])
    }

    #[test]
    fn freed_slot_is_reused_lowest_first_with_a_new_generation() {
        let mut slab = Slab::default();
        let ids: Vec<SocketId> = (0..5).map(|n| slab.alloc(sid(n))).collect();
        assert_eq!(ids.iter().map(|s| s.slot()).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        slab.free(ids[3]).unwrap();
        slab.free(ids[1]).unwrap();
        let a = slab.alloc(sid(10));
        let b = slab.alloc(sid(11));
        let c = slab.alloc(sid(12));
        assert_eq!((a.slot(), a.generation()), (1, 1));
        assert_eq!((b.slot(), b.generation()), (3, 1));
        assert_eq!((c.slot(), c.generation()), (5, 0));
        assert_eq!(slab.live_count(), 6);
    }

    #[test]
    fn stale_id_is_misuse_and_never_reaches_the_new_socket() {
        let mut slab = Slab::default();
        let old = slab.alloc(sid(1));
        slab.free(old).unwrap();
        assert!(matches!(slab.free(old), Err(Error::Misuse(_))), "double free");
        let new = slab.alloc(sid(2));
        assert_eq!(new.slot(), old.slot());
        assert!(slab.entry(old).is_none());
        assert!(slab.entry_mut(old).is_err());
        assert_eq!(slab.entry(new).map(|e| e.sid), Some(sid(2)));
    }

    #[test]
    fn slot_at_the_last_generation_is_retired_not_wrapped() {
        let mut slab = Slab::default();
        let a = slab.alloc(sid(1));
        slab.set_generation_for_test(a.slot(), u32::MAX - 1);
        let a = slab.id_of(a.slot());
        slab.free(a).unwrap();
        let b = slab.alloc(sid(2));
        assert_eq!(b.slot(), 1, "slot 0 reached generation u32::MAX and is retired");
        assert!(slab.entry(SocketId::new(0, u32::MAX)).is_none());
        assert_eq!(slab.universe(), 2);
    }

    #[test]
    fn live_bitset_tracks_connected_sockets_across_words() {
        let mut slab = Slab::default();
        let ids: Vec<SocketId> = (0..130).map(|n| slab.alloc(sid(n as u8))).collect();
        slab.free(ids[64]).unwrap();
        assert_eq!(slab.live_words().len(), 3);
        assert!(!bit(slab.live_words(), 64) && bit(slab.live_words(), 129));
        assert_eq!(slab.live_entries().count(), 129);
        assert_eq!(slab.alloc(sid(200)).slot(), 64);
    }
}
