//! Room names and their interning into [`RoomId`]s (control path).
//!
//! Room names come from clients, so the interner's hash must resist collision flooding (HashDoS): it
//! is foldhash keyed with a per-process random seed ([`name_hash`]), not a fixed function. foldhash
//! rather than std's SipHash because a broadcast resolves every target name on every shard: SipHash
//! cost ~20 ns per short name, the bulk of a 10-recipient broadcast. The price: foldhash is only
//! "minimally DoS-resistant" (an attacker who infers the seed from long observation could craft
//! colliding names), where SipHash's keyed output is a PRF. Each [`RoomName`] carries its
//! hash, computed once when the name is made (once per broadcast, shared by every shard), so
//! `resolve` probes the table without hashing at all.

use crate::ids::{RoomId, Sid};
use crate::rooms::set::MemberSet;
use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

/// The room-name hasher: one random seed per process, so that a name's precomputed hash is valid in
/// every shard's table.
static NAME_HASHER: LazyLock<SeedableRandomState> = LazyLock::new(SeedableRandomState::random);

/// The keyed hash of a room name, as stored in [`RoomName`] and probed in [`RoomTable`]. A few ns for
/// a short name.
#[inline]
pub(crate) fn name_hash(name: &str) -> u64 {
    NAME_HASHER.hash_one(name)
}

/// A room name: any string, as in Socket.IO. Cheap to clone (one reference count), so one broadcast
/// target can be shared by every shard and events can carry names without copying them.
///
/// It carries the keyed hash of its text (computed once, at construction), so resolving it against a
/// shard's rooms hashes nothing. Equality, ordering and `Hash` are those of the text.
#[derive(Clone)]
pub struct RoomName {
    name: Arc<str>,
    /// `name_hash(&name)`.
    hash: u64,
}

impl RoomName {
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The precomputed keyed hash of the name.
    #[inline]
    pub(crate) fn precomputed_hash(&self) -> u64 {
        self.hash
    }
}

impl From<&str> for RoomName {
    fn from(name: &str) -> Self {
        RoomName { hash: name_hash(name), name: Arc::from(name) }
    }
}

impl From<String> for RoomName {
    fn from(name: String) -> Self {
        RoomName { hash: name_hash(&name), name: Arc::from(name) }
    }
}

impl PartialEq for RoomName {
    fn eq(&self, other: &Self) -> bool {
        // Equal texts have equal hashes (one hasher per process): the hash rejects most pairs first.
        self.hash == other.hash && self.name == other.name
    }
}

impl Eq for RoomName {}

impl PartialOrd for RoomName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RoomName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(&other.name)
    }
}

// Hash and Eq are those of the `str`, so a `HashMap<RoomName, _>` can be looked up with a `&str`.
impl Hash for RoomName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.name, f)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The named rooms of one namespace on one shard (every room but the implicit own room of each
/// socket, which needs no set): name ↔ [`RoomId`] and each room's [`MemberSet`].
///
/// Invariant: a room is in the table iff its set is non-empty (it is interned on its first join and
/// released when its last member leaves). Ids of released rooms are reused, last released first;
/// `epoch` counts releases, so a [`crate::rooms::BroadcastSpec`] can tell it was resolved before an id
/// changed meaning.
#[derive(Debug, Default)]
pub(crate) struct RoomTable {
    /// Every live room's name and id, probed with the name's keyed hash.
    ids: HashTable<(RoomName, RoomId)>,
    slots: Vec<RoomSlot>,
    free: Vec<RoomId>,
    epoch: u64,
    /// Live rooms whose name is as long as a `Sid` (so resolving a sender's `Sid` as a room name can
    /// skip the lookup while there is none).
    sid_shaped: usize,
}

#[derive(Debug, Default)]
struct RoomSlot {
    /// `None` while the id is free.
    name: Option<RoomName>,
    members: MemberSet,
}

static EMPTY: MemberSet = MemberSet::new();

impl RoomTable {
    /// The id of a live room. One keyed string hash (a few ns for a short name) and a probe.
    #[inline]
    pub(crate) fn lookup(&self, name: &str) -> Option<RoomId> {
        self.find(name_hash(name), name)
    }

    /// The id of a live room, probed with the name's precomputed hash: no hashing.
    #[inline]
    pub(crate) fn lookup_name(&self, name: &RoomName) -> Option<RoomId> {
        self.find(name.precomputed_hash(), name.as_str())
    }

    #[inline]
    fn find(&self, hash: u64, name: &str) -> Option<RoomId> {
        self.ids.find(hash, |(known, _)| known.hash == hash && known.as_str() == name).map(|&(_, id)| id)
    }

    /// Interns a name not in the table yet, with an empty set the caller fills at once.
    pub(crate) fn intern(&mut self, name: &str) -> RoomId {
        let name = RoomName::from(name);
        self.sid_shaped += usize::from(name.as_str().len() == Sid::LEN);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(RoomSlot::default());
                RoomId(self.slots.len() as u32 - 1)
            }
        };
        if let Some(slot) = self.slots.get_mut(id.0 as usize) {
            slot.name = Some(name.clone());
        }
        self.ids.insert_unique(name.hash, (name, id), |(known, _)| known.hash);
        id
    }

    /// Takes an emptied room out of the table; its id may be handed out again.
    pub(crate) fn release(&mut self, id: RoomId) {
        let Some(slot) = self.slots.get_mut(id.0 as usize) else { return };
        if let Some(name) = slot.name.take() {
            if let Ok(entry) = self.ids.find_entry(name.hash, |(known, _)| known == &name) {
                entry.remove();
            }
            self.sid_shaped -= usize::from(name.as_str().len() == Sid::LEN);
            slot.members = MemberSet::new();
            self.free.push(id);
            self.epoch += 1;
        }
    }

    /// The name of a live room; `""` for a free id (which a live caller never holds).
    pub(crate) fn name(&self, id: RoomId) -> &str {
        self.name_handle(id).map_or("", RoomName::as_str)
    }

    pub(crate) fn name_handle(&self, id: RoomId) -> Option<&RoomName> {
        self.slots.get(id.0 as usize).and_then(|s| s.name.as_ref())
    }

    /// The members of a room; empty for a free id.
    #[inline]
    pub(crate) fn members(&self, id: RoomId) -> &MemberSet {
        self.slots.get(id.0 as usize).map_or(&EMPTY, |s| &s.members)
    }

    pub(crate) fn members_mut(&mut self, id: RoomId) -> Option<&mut MemberSet> {
        self.slots.get_mut(id.0 as usize).map(|s| &mut s.members)
    }

    /// Names of every live room, in no particular order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.ids.iter().map(|(name, _)| name.as_str())
    }

    /// Member sets of every live room.
    pub(crate) fn sets(&self) -> impl Iterator<Item = &MemberSet> + '_ {
        self.slots.iter().filter(|s| s.name.is_some()).map(|s| &s.members)
    }

    /// Whether some live room's name has the length of a `Sid` (and so could be one).
    #[inline]
    pub(crate) fn has_sid_shaped_names(&self) -> bool {
        self.sid_shaped > 0
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_ids_are_recycled_and_bump_the_epoch() {
        let mut table = RoomTable::default();
        let a = table.intern("a");
        let b = table.intern("b");
        assert_ne!(a, b);
        assert_eq!(table.lookup("b"), Some(b));
        table.release(a);
        assert_eq!(table.lookup("a"), None);
        assert_eq!(table.epoch(), 1);
        let c = table.intern("c");
        assert_eq!(c, a, "the freed id is reused");
        assert_eq!(table.name(c), "c");
        assert_eq!(table.names().count(), 2);
        table.release(a);
        table.release(a);
        assert_eq!(table.epoch(), 2, "releasing a free id changes nothing");
    }

    #[test]
    fn a_target_name_resolves_by_its_precomputed_hash() {
        let mut table = RoomTable::default();
        let ids: Vec<RoomId> = (0..100).map(|k| table.intern(&format!("room {k}"))).collect();
        assert_eq!(table.lookup_name(&RoomName::from("room 42")), Some(ids[42]));
        assert_eq!(table.lookup_name(&RoomName::from(String::from("room 7"))), Some(ids[7]));
        assert_eq!(table.lookup_name(&RoomName::from("room 100")), None);
        table.release(ids[42]);
        assert_eq!(table.lookup_name(&RoomName::from("room 42")), None);
        assert_eq!(table.lookup("room 43"), Some(ids[43]));
        assert!(!table.has_sid_shaped_names());
        let sid_like = table.intern("01234567890123456789");
        assert!(table.has_sid_shaped_names());
        table.release(sid_like);
        assert!(!table.has_sid_shaped_names());
    }

    #[test]
    fn room_name_is_looked_up_by_str() {
        let mut map = std::collections::HashMap::new();
        map.insert(RoomName::from("news"), 1);
        assert_eq!(map.get("news"), Some(&1));
        assert_eq!(format!("{:?}", RoomName::from("x\"y")), "\"x\\\"y\"");
    }
}
