//! Broadcast planning — the hot path.
//!
//! Two steps per broadcast and shard. [`NamespaceRooms::resolve`] (the edge: hashes each room name
//! once) turns a [`BroadcastTarget`] of names into a [`BroadcastSpec`] of ids. [`NamespaceRooms::plan`]
//! turns the spec into the recipients — union of the `to` rooms minus the `except` rooms — without
//! locks, string hashing, or allocation once its [`Scratch`] is warm, and without building any
//! intermediate set: recipients are produced lazily, a 64-slot word at a time.

use crate::ids::{RoomId, Sid, SocketId};
use crate::rooms::batch::SlotBatch;
use crate::rooms::cursors::Cursors;
use crate::rooms::names::RoomName;
use crate::rooms::namespace::NamespaceRooms;
use crate::rooms::recipients::{Recipients, Setup, Walk, EXCEPT_CACHE};
use crate::rooms::scatter::ScatterBits;
use crate::rooms::set::SetView;

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
    /// `to` was empty: every socket.
    pub(super) everyone: bool,
    pub(super) to_rooms: Vec<RoomId>,
    /// Sockets whose own room (named by their `Sid`) is targeted.
    to_owners: Vec<SocketId>,
    pub(super) except_rooms: Vec<RoomId>,
    except_owners: Vec<SocketId>,
    flags: BroadcastFlags,
    /// The room table's epoch when resolved (room ids keep their meaning while it is unchanged).
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

/// Reusable working memory of [`NamespaceRooms::plan`]: except cursors, a bitmap over the slots,
/// own-room slot lists. Keep one per shard; after the first few broadcasts it has grown to fit (the
/// bitmap to one bit per slot) and planning allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    cursors: Cursors,
    scatter: ScatterBits,
    /// The sparse `except` members, for a walk over every word.
    except_bits: ScatterBits,
    /// The decode buffer of sparse walks.
    batch: SlotBatch,
    /// Slots of the targeted own rooms still valid, ascending.
    to_slots: Vec<u32>,
    /// Slots of the excepted own rooms still valid, ascending.
    except_slots: Vec<u32>,
}

/// An ascending slot list as the chunks of a sparse set view: none if empty, else itself.
fn as_chunks(slots: &Vec<u32>) -> &[Vec<u32>] {
    if slots.is_empty() {
        &[]
    } else {
        std::slice::from_ref(slots)
    }
}

/// Several sparse `to` lists are scattered without summaries and read back by a walk over every word
/// (sequential, no summary bookkeeping) when they hold at least one candidate per this many words.
/// The summaries cost a store-forwarded read-modify-write per member (sorted members share summary
/// words: a dependency chain), worth it only when most words are empty.
const FLAT_SCATTER_FACTOR: usize = 4;

/// Several sparse `to` lists holding at most this many members in all (and too few for the flat
/// scatter) are scattered without summaries, noting the words they touch, and read back in touched
/// order (`Walk::Touched`): for a few dozen members over a big shard the summaries' bookkeeping and
/// walk were two thirds of the plan.
const TOUCHED_MAX: usize = 256;

/// A sparse `except` list is cleared from the scattered targets (O(its members)) rather than checked
/// per non-zero word by a cursor (O(words), each a likely mispredicted branch) when it has at most this
/// many members per target candidate.
const SCATTER_EXCEPT_FACTOR: usize = 4;

impl NamespaceRooms {
    /// Resolves room names to ids for [`NamespaceRooms::plan`]. Cost: one table probe per name with the
    /// name's precomputed hash (no hashing; a `Sid`-shaped name, or an `except_sids` entry, also
    /// hashes the `Sid`, with foldhash); allocates only to grow `spec`. Names of rooms that do not exist here
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
            self.resolve_name(name, &mut spec.to_rooms, &mut spec.to_owners);
        }
        for name in &target.except {
            self.resolve_name(name, &mut spec.except_rooms, &mut spec.except_owners);
        }
        for sid in &target.except_sids {
            // A room named by a Sid exists only if someone joined that name (rare): hash it only then.
            if self.rooms.has_sid_shaped_names() {
                if let Some(id) = self.rooms.lookup(sid.as_str()) {
                    spec.except_rooms.push(id);
                }
            }
            if let Some(owner) = self.owner_of(*sid) {
                spec.except_owners.push(owner);
            }
        }
    }

    #[inline]
    fn resolve_name(&self, name: &RoomName, rooms: &mut Vec<RoomId>, owners: &mut Vec<SocketId>) {
        if let Some(id) = self.rooms.lookup_name(name) {
            rooms.push(id);
        }
        if let Some(owner) = self.owner_in_own_room(name.as_str()) {
            owners.push(owner);
        }
    }

    /// Recipients of one broadcast on this shard: union(`to` rooms) − union(`except` rooms), each
    /// socket once; every socket of the namespace when the target's `to` was empty.
    ///
    /// Hot path: no lock, no string hashing, no allocation once `scratch` is warm, no intermediate
    /// set. Three strategies, picked per broadcast:
    /// - some `to` room is dense, or `to` is everyone: walk every 64-slot word up to the highest target
    ///   slot; OR the dense `to` words (and the sparse `to` members, scattered into the scratch bitmap
    ///   beforehand), AND-NOT the `except` members. Cost O((to + except rooms) × words + recipients).
    /// - one sparse `to` list (a room, or own rooms): walk it, each member checked against the
    ///   `except` rooms (a bit test, or a galloping cursor). Cost O(members × except rooms).
    /// - several sparse `to` lists: scatter their members into the scratch bitmap (one bit each plus
    ///   two summary marks), then read back its non-zero words in order, AND-NOT the `except` members
    ///   of each. Cost O(to members + non-zero words × except rooms), independent of the shard's size.
    ///   When the lists hold at least one member per `FLAT_SCATTER_FACTOR` words, they are scattered
    ///   without summaries and every word is read (the first strategy without dense sources). When
    ///   they hold at most `TOUCHED_MAX` members in all and every except can be cleared from the
    ///   bitmap, they are scattered without summaries too, noting each word turned non-zero, and only
    ///   those words are read back, in the order they were first touched. Cost O(to members + except
    ///   members).
    ///
    /// Iterate with `for_each`/`fold` where possible: `Recipients` overrides `fold` to walk with its
    /// state in registers (`next` keeps it in the iterator: a store and a reload per recipient).
    ///
    /// Sparse `except` rooms are read through monotonic cursors, so each member list is read at most
    /// once per broadcast.
    ///
    /// **Order: none promised.** Each recipient comes once; the walks over words and over one list
    /// yield slot order, the touched-words walk (a few members of several sparse rooms) yields the
    /// slots of each word in order but the words in the order the target lists first touched them.
    /// `next` and `fold` give the same sequence. The reference delivers rooms in the order given and
    /// members in join order; the order across different recipients is not observable by clients (each
    /// is delivered to independently), so callers that need one sort.
    pub fn plan<'s>(&'s self, spec: &'s BroadcastSpec, scratch: &'s mut Scratch) -> Recipients<'s> {
        debug_assert_eq!(spec.epoch, self.rooms.epoch(), "BroadcastSpec planned after a room was deleted");
        let Scratch { cursors, scatter, except_bits, batch, to_slots, except_slots } = scratch;
        if !spec.to_owners.is_empty() || !to_slots.is_empty() {
            self.owner_slots(&spec.to_owners, to_slots);
        }
        if !spec.except_owners.is_empty() || !except_slots.is_empty() {
            self.owner_slots(&spec.except_owners, except_slots);
        }
        cursors.reset(spec.except_rooms.len());

        let (to_slots, except_slots) = (as_chunks(to_slots), as_chunks(except_slots));
        let mut dense = spec.everyone;
        let mut end_word = if spec.everyone { self.slab.live_words().len() } else { 0 };
        let mut lists = 0;
        let mut one_list: &'s [Vec<u32>] = &[];
        let mut note_list = |chunks: &'s [Vec<u32>], end_word: &mut usize| {
            if let Some(&last) = chunks.last().and_then(|chunk| chunk.last()) {
                *end_word = (*end_word).max(last as usize / 64 + 1);
                lists += 1;
                one_list = chunks;
            }
        };
        // Members of the sparse targets, duplicates included.
        let mut candidates = to_slots.first().map_or(0, Vec::len);
        for &id in &spec.to_rooms {
            let set = self.rooms.members(id);
            match set.view() {
                SetView::Dense(words) => {
                    dense = true;
                    end_word = end_word.max(words.len());
                }
                SetView::Sparse(chunks) => {
                    note_list(chunks, &mut end_word);
                    candidates += set.len();
                }
            }
        }
        note_list(to_slots, &mut end_word);
        let mut walk = match (dense, lists) {
            (true, _) => Walk::EveryWord { end_word, scattered: lists > 0, excepts_scattered: false },
            (false, 0 | 1) => Walk::OneList,
            (false, _) if candidates * FLAT_SCATTER_FACTOR >= end_word => {
                Walk::EveryWord { end_word, scattered: true, excepts_scattered: false }
            }
            (false, _) if candidates <= TOUCHED_MAX && self.excepts_clearable(spec, candidates) => {
                Walk::Touched
            }
            (false, _) => Walk::Scattered,
        };
        if lists > 0 && walk != Walk::OneList {
            one_list = &[];
            scatter.prepare(end_word);
            for chunk in self.sparse_to_lists(spec).chain([to_slots]).flatten() {
                match walk {
                    Walk::Scattered => scatter.add_summarised(chunk),
                    Walk::Touched => scatter.add_touched(chunk),
                    _ => scatter.add_flat(chunk),
                }
            }
        }

        // Sparse excepts: cleared from the scattered targets, or scattered for the word walk, when
        // that is cheaper than a cursor per word; the others stay for the iterator to check. Only
        // slots below `end_word * 64` matter (and only those may be set in a bitmap).
        // Bit `i`: the `i`th except room (of the first `EXCEPT_CACHE`) is still to check per candidate.
        let mut excepts_left = 0u32;
        let mut sparse_excepts: [&'s [Vec<u32>]; EXCEPT_CACHE] = [&[]; EXCEPT_CACHE];
        for (i, &id) in spec.except_rooms.iter().take(EXCEPT_CACHE).enumerate() {
            match self.rooms.members(id).view() {
                SetView::Dense(_) => excepts_left |= 1 << i,
                SetView::Sparse([]) => {}
                SetView::Sparse(chunks) => {
                    excepts_left |= 1 << i;
                    if let Some(slot) = sparse_excepts.get_mut(i) {
                        *slot = chunks;
                    }
                }
            }
        }
        let mut except_left = except_slots;
        let end_slot = end_word * 64;
        let below_end = move |chunks: &'s [Vec<u32>]| {
            chunks
                .iter()
                .take_while(move |c| c.first().is_some_and(|&s| (s as usize) < end_slot))
                .map(move |c| c.get(..c.partition_point(|&s| (s as usize) < end_slot)).unwrap_or(c))
        };
        let sparse_excepts = sparse_excepts.into_iter().enumerate().filter(|(_, chunks)| !chunks.is_empty());
        match &mut walk {
            // A few candidates, read back in touched order (the iterator's cursors need ascending
            // words): every sparse except is cleared (`excepts_clearable` checked they are small);
            // only dense ones stay, checked per word by index.
            Walk::Touched => {
                for (i, chunks) in sparse_excepts {
                    chunks.iter().for_each(|chunk| scatter.remove_all(chunk));
                    excepts_left &= !(1 << i);
                }
                except_left.iter().for_each(|chunk| scatter.remove_all(chunk));
                except_left = &[];
            }
            // Only sparse targets, all scattered: the excepts can be cleared from them.
            Walk::Scattered | Walk::EveryWord { .. } if !dense => {
                for (i, chunks) in sparse_excepts {
                    if below_end(chunks).map(<[u32]>::len).sum::<usize>()
                        <= SCATTER_EXCEPT_FACTOR * candidates
                    {
                        below_end(chunks).for_each(|chunk| scatter.remove_all(chunk));
                        excepts_left &= !(1 << i);
                    }
                }
                below_end(except_left).for_each(|chunk| scatter.remove_all(chunk));
                except_left = &[];
            }
            Walk::EveryWord { excepts_scattered, .. } => {
                let mut sparse_excepts = sparse_excepts.peekable();
                if sparse_excepts.peek().is_some() || !except_left.is_empty() {
                    except_bits.prepare(end_word);
                    *excepts_scattered = true;
                    for (i, chunks) in sparse_excepts {
                        below_end(chunks).for_each(|chunk| except_bits.add_flat(chunk));
                        excepts_left &= !(1 << i);
                    }
                    below_end(except_left).for_each(|chunk| except_bits.add_flat(chunk));
                    except_left = &[];
                }
            }
            // (`Scattered` is only chosen without a dense target.)
            Walk::OneList | Walk::Scattered => {}
        }
        let has_except =
            spec.except_rooms.len() > EXCEPT_CACHE || !except_left.is_empty() || excepts_left != 0;
        let setup = Setup { walk, run: one_list, excepts_left, except_slots: except_left, has_except };
        Recipients::new(self, spec, cursors, scatter, except_bits, batch, setup)
    }

    /// Whether every `except` room of `spec` can be applied without a cursor (which needs ascending
    /// words): at most [`EXCEPT_CACHE`] of them, each dense or a list of at most
    /// `SCATTER_EXCEPT_FACTOR * candidates` members (cleared from the scattered targets).
    fn excepts_clearable(&self, spec: &BroadcastSpec, candidates: usize) -> bool {
        spec.except_rooms.len() <= EXCEPT_CACHE
            && spec.except_rooms.iter().all(|&id| {
                let set = self.rooms.members(id);
                set.is_dense() || set.len() <= SCATTER_EXCEPT_FACTOR * candidates
            })
    }

    /// The member lists of the sparse `to` rooms.
    fn sparse_to_lists<'s>(&'s self, spec: &'s BroadcastSpec) -> impl Iterator<Item = &'s [Vec<u32>]> + 's {
        spec.to_rooms.iter().filter_map(|&id| match self.rooms.members(id).view() {
            SetView::Sparse(chunks) => Some(chunks),
            SetView::Dense(_) => None,
        })
    }

    /// The slots of `owners` still in their own room, ascending, each once.
    fn owner_slots(&self, owners: &[SocketId], out: &mut Vec<u32>) {
        out.clear();
        out.extend(owners.iter().filter(|&&s| self.is_in_own_room(s)).map(|s| s.slot()));
        out.sort_unstable();
        out.dedup();
    }

    fn is_in_own_room(&self, s: SocketId) -> bool {
        self.slab.entry(s).is_some_and(|e| e.in_own_room)
    }
}
