//! Broadcast planning — the hot path.
//!
//! Two steps per broadcast and shard. [`NamespaceRooms::resolve`] (the edge: hashes each room name
//! once) turns a [`BroadcastTarget`] of names into a [`BroadcastSpec`] of ids. [`NamespaceRooms::plan`]
//! turns the spec into the recipients — union of the `to` rooms minus the `except` rooms — without
//! locks, string hashing, or allocation once its [`Scratch`] is warm, and without building any
//! intermediate set: recipients are produced lazily, a 64-slot word at a time.

use crate::ids::{RoomId, Sid, SocketId};
use crate::rooms::cursors::Cursors;
use crate::rooms::names::RoomName;
use crate::rooms::namespace::NamespaceRooms;
use crate::rooms::recipients::{Recipients, Walk};
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

/// Reusable working memory of [`NamespaceRooms::plan`]: merge heap, cursors, own-room slot lists. Keep
/// one per shard; after the first few broadcasts it has grown to fit and planning allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    cursors: Cursors,
    /// Slots of the targeted own rooms still valid, ascending.
    to_slots: Vec<u32>,
    /// Slots of the excepted own rooms still valid, ascending.
    except_slots: Vec<u32>,
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
    /// Hot path: no lock, no string hashing, no allocation once `scratch` is warm, no intermediate
    /// set. Two strategies, picked per broadcast:
    /// - some `to` room is dense, or `to` is everyone: walk every 64-slot word up to the highest target
    ///   slot; OR the dense `to` words and the sparse `to` members of the word, AND-NOT the `except`
    ///   members. Cost O((to + except rooms) × words + recipients).
    /// - every `to` room is sparse: k-way merge of the sorted member lists, each candidate checked
    ///   against the `except` rooms (a bit test, or a galloping cursor). One list is walked as a
    ///   slice; 2–4 lists by a branch-free minimum of their heads; more through a min-heap, taking
    ///   whole runs of one list between two heads of the others. Cost O(to members × min(k, log k) +
    ///   candidates × except rooms), independent of the shard's size.
    ///
    /// Sparse `except` rooms are read through monotonic cursors, so each member list is read at most
    /// once per broadcast.
    ///
    /// Recipients come in slot order. The reference delivers rooms in the order given and members in
    /// join order; the order across different recipients is not observable by clients.
    pub fn plan<'s>(&'s self, spec: &'s BroadcastSpec, scratch: &'s mut Scratch) -> Recipients<'s> {
        debug_assert_eq!(spec.epoch, self.rooms.epoch(), "BroadcastSpec planned after a room was deleted");
        let Scratch { cursors, to_slots, except_slots } = scratch;
        let owner_slots = |owners: &[SocketId], out: &mut Vec<u32>| {
            out.clear();
            out.extend(owners.iter().filter(|&&s| self.is_in_own_room(s)).map(|s| s.slot()));
            out.sort_unstable();
            out.dedup();
        };
        owner_slots(&spec.to_owners, to_slots);
        owner_slots(&spec.except_owners, except_slots);
        cursors.reset(spec.to_rooms.len() + 1, spec.except_rooms.len());

        let mut every_word = spec.everyone;
        let mut end_word = if spec.everyone { self.slab.live_words().len() } else { 0 };
        for (source, &id) in spec.to_rooms.iter().enumerate() {
            let set = self.rooms.members(id);
            end_word = end_word.max(set.word_span());
            match set.view() {
                SetView::Dense(_) => every_word = true,
                SetView::Sparse(list) => cursors.push_source(list.first().copied(), source),
            }
        }
        if let Some(&last) = to_slots.last() {
            end_word = end_word.max(last as usize / 64 + 1);
        }
        cursors.push_source(to_slots.first().copied(), spec.to_rooms.len());
        cursors.heapify();
        let walk = Walk::choose(every_word, end_word, cursors.sources());
        Recipients::new(self, spec, cursors, to_slots, except_slots, walk)
    }

    fn is_in_own_room(&self, s: SocketId) -> bool {
        self.slab.entry(s).is_some_and(|e| e.in_own_room)
    }
}
