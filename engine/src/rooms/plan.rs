//! Broadcast planning — the hot path.
//!
//! Two steps per broadcast and shard. [`NamespaceRooms::resolve`] (the edge: hashes each room name
//! once) turns a [`BroadcastTarget`] of names into a [`BroadcastSpec`] of ids. [`NamespaceRooms::plan`]
//! turns the spec into the recipients — union of the `to` rooms minus the `except` rooms — without
//! locks, string hashing, or allocation once its [`Scratch`] is warm, and without building any
//! intermediate set: recipients are produced lazily, a 64-slot word (dense path) or one member
//! (merge path) at a time.

use crate::ids::{RoomId, Sid, SocketId};
use crate::rooms::names::RoomName;
use crate::rooms::namespace::NamespaceRooms;
use crate::rooms::set::{bit, SetView};

/// Socket.IO broadcast flags (`BroadcastFlags`), carried from the target to the spec untouched; the
/// planner does not look at them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// Drop the packet for a recipient that cannot take it right now.
    pub volatile: bool,
    /// Deliver on this server only (cluster adapters do not publish it).
    pub local: bool,
    /// Allow compression; socket.io's default is `true`.
    pub compress: bool,
    /// Ack timeout in milliseconds, for broadcasts with an ack.
    pub timeout: Option<u32>,
}

impl Default for BroadcastFlags {
    fn default() -> Self {
        BroadcastFlags { volatile: false, local: false, compress: true, timeout: None }
    }
}

/// Who a broadcast is for, by name, as `io.to(..).except(..)` / `socket.to(..)` build it. Built once per
/// broadcast and shared by every shard (names are refcounted).
#[derive(Clone, Debug, Default)]
pub struct BroadcastTarget {
    /// Union of these rooms; **empty means every socket of the namespace**.
    pub to: Vec<RoomName>,
    /// Minus every member of these rooms.
    pub except: Vec<RoomName>,
    /// Minus these sockets — the sender of `socket.to(..)` / `socket.broadcast`. As in socket.io, a sid
    /// here means the room named by it (`except: {socket.id}`).
    pub except_sids: Vec<Sid>,
    pub flags: BroadcastFlags,
}

/// A [`BroadcastTarget`] resolved against one `NamespaceRooms`: ids only. Reusable: resolving again
/// clears its vectors without giving back their memory.
///
/// Valid until the next control call on the `NamespaceRooms` that resolved it; resolve and plan in one
/// go. (A socket that left meanwhile is skipped; a room deleted meanwhile is a caller bug, caught by a
/// debug assertion.)
#[derive(Clone, Debug, Default)]
pub struct BroadcastSpec {
    everyone: bool,
    to_rooms: Vec<RoomId>,
    /// Sockets whose own room (named by their `Sid`) is targeted.
    to_owners: Vec<SocketId>,
    except_rooms: Vec<RoomId>,
    except_owners: Vec<SocketId>,
    flags: BroadcastFlags,
    epoch: u64,
}

impl BroadcastSpec {
    pub fn new() -> Self {
        Self::default()
    }

    /// The flags of the target this spec was resolved from.
    pub fn flags(&self) -> BroadcastFlags {
        self.flags
    }
}

/// Reusable working memory of [`NamespaceRooms::plan`]: merge heap and cursors. Keep one per shard;
/// after the first few broadcasts it has grown to fit and planning allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Min-heap of the next member of every sparse `to` source.
    heap: Vec<Head>,
    /// Cursor into each `to` source; index `to_rooms.len()` is `to_slots`.
    to_pos: Vec<usize>,
    /// Cursor into each sparse `except` room.
    except_pos: Vec<usize>,
    /// Slots of the targeted own rooms still valid, ascending.
    to_slots: Vec<u32>,
    /// Slots of the excepted own rooms still valid, ascending.
    except_slots: Vec<u32>,
    except_slots_pos: usize,
}

#[derive(Clone, Copy, Debug)]
struct Head {
    slot: u32,
    source: u32,
}

impl NamespaceRooms {
    /// Resolves room names to ids for [`NamespaceRooms::plan`]. Cost: one string hash per name (two for
    /// a name shaped like a `Sid`); allocates only to grow `spec`. Names of rooms that do not exist here
    /// resolve to nothing: a `to` of only unknown rooms reaches nobody (not everybody).
    pub fn resolve(&self, target: &BroadcastTarget, spec: &mut BroadcastSpec) {
        spec.to_rooms.clear();
        spec.to_owners.clear();
        spec.except_rooms.clear();
        spec.except_owners.clear();
        spec.everyone = target.to.is_empty();
        spec.flags = target.flags;
        spec.epoch = self.rooms.epoch();
        for name in &target.to {
            self.resolve_name(name.as_str(), &mut spec.to_rooms, &mut spec.to_owners);
        }
        for name in &target.except {
            self.resolve_name(name.as_str(), &mut spec.except_rooms, &mut spec.except_owners);
        }
        for sid in &target.except_sids {
            self.resolve_name(sid.as_str(), &mut spec.except_rooms, &mut spec.except_owners);
        }
    }

    fn resolve_name(&self, name: &str, rooms: &mut Vec<RoomId>, owners: &mut Vec<SocketId>) {
        if let Some(id) = self.rooms.lookup(name) {
            rooms.push(id);
        }
        if let Some(owner) = self.owner_in_own_room(name) {
            owners.push(owner);
        }
    }

    /// Recipients of one broadcast on this shard: union(`to` rooms) − union(`except` rooms), each
    /// socket once; every socket of the namespace when the target's `to` was empty.
    ///
    /// Hot path: no lock, no string hashing, no allocation once `scratch` is warm. Two strategies:
    /// - some `to` room is dense, or `to` is everyone: walk 64-slot words — OR the dense `to` words,
    ///   merge in sparse `to` members, AND-NOT the `except` words (sparse except rooms via monotonic
    ///   cursors). Cost O((to + except rooms) × words + recipients).
    /// - every `to` room is sparse: k-way merge of the sorted member lists through a heap, each
    ///   candidate checked against the except rooms (bit test, or galloping cursor).
    ///   Cost O(to members × log k + candidates × except rooms), independent of the slot space.
    ///
    /// Recipients come in slot order. The reference delivers rooms in order and members in join
    /// order; the order across different recipients is not observable by clients.
    pub fn plan<'s>(&'s self, spec: &'s BroadcastSpec, scratch: &'s mut Scratch) -> Recipients<'s> {
        debug_assert_eq!(spec.epoch, self.rooms.epoch(), "BroadcastSpec planned after a room was deleted");
        let owner_slots = |owners: &[SocketId], out: &mut Vec<u32>| {
            out.clear();
            out.extend(owners.iter().filter(|&&s| self.is_in_own_room(s)).map(|s| s.slot()));
            out.sort_unstable();
            out.dedup();
        };
        owner_slots(&spec.to_owners, &mut scratch.to_slots);
        owner_slots(&spec.except_owners, &mut scratch.except_slots);
        scratch.except_slots_pos = 0;
        scratch.except_pos.clear();
        scratch.except_pos.resize(spec.except_rooms.len(), 0);
        scratch.to_pos.clear();
        scratch.to_pos.resize(spec.to_rooms.len() + 1, 0);
        scratch.heap.clear();

        let mut dense = spec.everyone;
        let mut end_word = if spec.everyone { self.slab.live_words().len() } else { 0 };
        for (source, &id) in spec.to_rooms.iter().enumerate() {
            let set = self.rooms.members(id);
            end_word = end_word.max(set.word_span());
            match set.view() {
                SetView::Dense(_) => dense = true,
                SetView::Sparse(list) => {
                    if let Some(&slot) = list.first() {
                        scratch.heap.push(Head { slot, source: source as u32 });
                    }
                }
            }
        }
        if let Some(&slot) = scratch.to_slots.first() {
            end_word = end_word.max(slot as usize / 64 + 1);
            if let Some(&last) = scratch.to_slots.last() {
                end_word = end_word.max(last as usize / 64 + 1);
            }
            scratch.heap.push(Head { slot, source: spec.to_rooms.len() as u32 });
        }
        heapify(&mut scratch.heap);
        let state = if dense {
            State::Words { next_word: 0, end_word, base: 0, bits: 0 }
        } else {
            State::Merge { last: None }
        };
        Recipients { ns: self, spec, scratch, state }
    }

    fn is_in_own_room(&self, s: SocketId) -> bool {
        self.slab.entry(s).is_some_and(|e| e.in_own_room)
    }
}

/// The recipients of one broadcast, ascending by slot; see [`NamespaceRooms::plan`].
#[derive(Debug)]
pub struct Recipients<'s> {
    ns: &'s NamespaceRooms,
    spec: &'s BroadcastSpec,
    scratch: &'s mut Scratch,
    state: State,
}

#[derive(Debug)]
enum State {
    /// k-way merge; `last` is the previous candidate (the union's duplicates arrive adjacent).
    Merge { last: Option<u32> },
    /// Word walk; `bits` are the recipients of the word at `base` not yet yielded.
    Words { next_word: usize, end_word: usize, base: u32, bits: u64 },
}

impl Iterator for Recipients<'_> {
    type Item = SocketId;

    #[inline]
    fn next(&mut self) -> Option<SocketId> {
        match self.state {
            State::Words { ref mut next_word, end_word, ref mut base, ref mut bits } => {
                while *bits == 0 {
                    if *next_word >= end_word {
                        return None;
                    }
                    let w = *next_word;
                    *next_word += 1;
                    *base = (w * 64) as u32;
                    *bits = word_of(self.ns, self.spec, self.scratch, w);
                }
                let slot = *base + bits.trailing_zeros();
                *bits &= *bits - 1;
                Some(self.ns.slab.id_of(slot))
            }
            State::Merge { ref mut last } => loop {
                let slot = pop_min(self.ns, self.spec, self.scratch)?;
                if *last == Some(slot) {
                    continue;
                }
                *last = Some(slot);
                if !is_excepted(self.ns, self.spec, self.scratch, slot) {
                    return Some(self.ns.slab.id_of(slot));
                }
            },
        }
    }
}

impl std::iter::FusedIterator for Recipients<'_> {}

/// Recipients among slots `64w .. 64w+64`, as a bit mask.
fn word_of(ns: &NamespaceRooms, spec: &BroadcastSpec, scratch: &mut Scratch, w: usize) -> u64 {
    let mut acc = if spec.everyone { ns.slab.live_words().get(w).copied().unwrap_or(0) } else { 0 };
    for &id in &spec.to_rooms {
        if let SetView::Dense(words) = ns.rooms.members(id).view() {
            acc |= words.get(w).copied().unwrap_or(0);
        }
    }
    let end = (w as u64 + 1) * 64;
    while let Some(head) = scratch.heap.first() {
        if u64::from(head.slot) >= end {
            break;
        }
        acc |= 1 << (head.slot % 64);
        pop_min(ns, spec, scratch);
    }
    if acc == 0 {
        return 0;
    }
    let start = (w * 64) as u32;
    for (&id, pos) in spec.except_rooms.iter().zip(scratch.except_pos.iter_mut()) {
        match ns.rooms.members(id).view() {
            SetView::Dense(words) => acc &= !words.get(w).copied().unwrap_or(0),
            SetView::Sparse(list) => acc &= !mask_in_word(list, pos, start),
        }
    }
    acc & !mask_in_word(&scratch.except_slots, &mut scratch.except_slots_pos, start)
}

/// Bits of the members of `list` within the word starting at slot `start`; advances `pos` past them.
#[inline]
fn mask_in_word(list: &[u32], pos: &mut usize, start: u32) -> u64 {
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

/// Whether `slot` (the merge's next candidate, ascending across calls) is in an `except` room.
#[inline]
fn is_excepted(ns: &NamespaceRooms, spec: &BroadcastSpec, scratch: &mut Scratch, slot: u32) -> bool {
    for (&id, pos) in spec.except_rooms.iter().zip(scratch.except_pos.iter_mut()) {
        let hit = match ns.rooms.members(id).view() {
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
    scratch.except_slots_pos = seek(&scratch.except_slots, scratch.except_slots_pos, slot);
    scratch.except_slots.get(scratch.except_slots_pos) == Some(&slot)
}

/// The first index `>= pos` whose value is `>= target` (or `list.len()`), by galloping: O(log d) for a
/// jump of d elements, so a cursor walked over a long list costs O(len) in total but a few
/// far jumps stay cheap.
#[inline]
fn seek(list: &[u32], pos: usize, target: u32) -> usize {
    let rest = list.get(pos..).unwrap_or(&[]);
    if rest.first().is_none_or(|&v| v >= target) {
        return pos;
    }
    // rest[lo] < target; find hi with rest[hi] >= target or hi == len.
    let (mut lo, mut hi) = (0, 1);
    while rest.get(hi).is_some_and(|&v| v < target) {
        lo = hi;
        hi *= 2;
    }
    let hi = hi.min(rest.len());
    pos + lo + 1 + rest.get(lo + 1..hi).map_or(0, |window| window.partition_point(|&v| v < target))
}

/// The sparse member list feeding heap source `source`: a `to` room, or the own-room slots.
#[inline]
fn source_list<'a>(
    ns: &'a NamespaceRooms,
    spec: &BroadcastSpec,
    scratch: &'a Scratch,
    source: usize,
) -> &'a [u32] {
    match spec.to_rooms.get(source) {
        Some(&id) => match ns.rooms.members(id).view() {
            SetView::Sparse(list) => list,
            SetView::Dense(_) => &[],
        },
        None => &scratch.to_slots,
    }
}

/// Takes the smallest head off the merge heap and refills it from its source.
#[inline]
fn pop_min(ns: &NamespaceRooms, spec: &BroadcastSpec, scratch: &mut Scratch) -> Option<u32> {
    let top = *scratch.heap.first()?;
    let source = top.source as usize;
    let pos = scratch.to_pos.get(source).map_or(usize::MAX, |p| p + 1);
    let next = source_list(ns, spec, scratch, source).get(pos).copied();
    if let Some(p) = scratch.to_pos.get_mut(source) {
        *p = pos;
    }
    match next {
        Some(slot) => {
            if let Some(head) = scratch.heap.first_mut() {
                head.slot = slot;
            }
        }
        None => {
            let last = scratch.heap.len() - 1;
            scratch.heap.swap(0, last);
            scratch.heap.pop();
        }
    }
    sift_down(&mut scratch.heap, 0);
    Some(top.slot)
}

fn heapify(heap: &mut [Head]) {
    for i in (0..heap.len() / 2).rev() {
        sift_down(heap, i);
    }
}

#[inline]
fn sift_down(heap: &mut [Head], mut i: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut min = i;
        let slot_at = |k: usize| heap.get(k).map_or(u32::MAX, |h| h.slot);
        if l < heap.len() && slot_at(l) < slot_at(min) {
            min = l;
        }
        if r < heap.len() && slot_at(r) < slot_at(min) {
            min = r;
        }
        if min == i {
            return;
        }
        heap.swap(i, min);
        i = min;
    }
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
