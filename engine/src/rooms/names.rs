//! Room names and their interning into [`RoomId`]s (control path).

use crate::ids::RoomId;
use crate::rooms::set::MemberSet;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A room name: any string, as in Socket.IO. Cheap to clone (one reference count), so one broadcast
/// target can be shared by every shard and events can carry names without copying them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for RoomName {
    fn from(name: &str) -> Self {
        RoomName(Arc::from(name))
    }
}

impl From<String> for RoomName {
    fn from(name: String) -> Self {
        RoomName(Arc::from(name))
    }
}

// Hash and Eq are those of the `str`, so a `HashMap<RoomName, _>` can be looked up with a `&str`.
impl Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    ids: HashMap<RoomName, RoomId>,
    slots: Vec<RoomSlot>,
    free: Vec<RoomId>,
    epoch: u64,
}

#[derive(Debug, Default)]
struct RoomSlot {
    /// `None` while the id is free.
    name: Option<RoomName>,
    members: MemberSet,
}

static EMPTY: MemberSet = MemberSet::new();

impl RoomTable {
    /// The id of a live room. One string hash.
    pub(crate) fn lookup(&self, name: &str) -> Option<RoomId> {
        self.ids.get(name).copied()
    }

    /// Interns a name not in the table yet, with an empty set the caller fills at once.
    pub(crate) fn intern(&mut self, name: &str) -> RoomId {
        let name = RoomName::from(name);
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
        self.ids.insert(name, id);
        id
    }

    /// Takes an emptied room out of the table; its id may be handed out again.
    pub(crate) fn release(&mut self, id: RoomId) {
        let Some(slot) = self.slots.get_mut(id.0 as usize) else { return };
        if let Some(name) = slot.name.take() {
            self.ids.remove(name.as_str());
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
        self.ids.keys().map(RoomName::as_str)
    }

    /// Member sets of every live room.
    pub(crate) fn sets(&self) -> impl Iterator<Item = &MemberSet> + '_ {
        self.slots.iter().filter(|s| s.name.is_some()).map(|s| &s.members)
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
    fn room_name_is_looked_up_by_str() {
        let mut map = HashMap::new();
        map.insert(RoomName::from("news"), 1);
        assert_eq!(map.get("news"), Some(&1));
        assert_eq!(format!("{:?}", RoomName::from("x\"y")), "\"x\\\"y\"");
    }
}
