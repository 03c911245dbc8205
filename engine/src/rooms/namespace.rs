//! `NamespaceRooms`: socket membership of one namespace on one shard — the control path.
//!
//! Everything here may allocate and hash strings: connect, join, leave, interning, adapter events and
//! read-only views. The hot path (planning a broadcast) is in `plan.rs` and only reads this state.

use crate::ids::{RoomId, Sid, SocketId};
use crate::rooms::names::{RoomName, RoomTable};
use crate::rooms::set::MemberSet;
use crate::rooms::slab::Slab;
use crate::Error;
use std::collections::{HashMap, VecDeque};

/// An event of Socket.IO's in-memory adapter (`io.of(nsp).adapter.on(..)`), in the order the reference
/// emits them: `CreateRoom` before the first `JoinRoom` of a room; `LeaveRoom` then `DeleteRoom` when
/// its last member leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterEvent {
    /// `create-room(room)`
    CreateRoom(RoomName),
    /// `delete-room(room)`
    DeleteRoom(RoomName),
    /// `join-room(room, id)`
    JoinRoom(RoomName, Sid),
    /// `leave-room(room, id)`
    LeaveRoom(RoomName, Sid),
}

/// Rooms of one namespace on one shard: the socket slab, the named rooms' member sets, the implicit
/// own room of every socket, and the adapter event queue.
///
/// Semantics are those of socket.io-adapter 2.5's in-memory adapter (protocol notes §4), including a
/// room whose name is a connected socket's `Sid`: its members are that socket (while it is in its own
/// room) plus whoever joined the name; it exists while either remains. Two deliberate differences,
/// neither observable through socket.io's own API:
/// - [`NamespaceRooms::leave_all`] keeps the socket in the namespace, so a broadcast to everyone still
///   reaches it until [`NamespaceRooms::remove`]; socket.io only calls `delAll` while disconnecting.
/// - [`NamespaceRooms::connect`] refuses a `Sid` already connected (socket.io ids never collide).
///
/// Ownership: one shard thread owns it; nothing here is shared or locked.
#[derive(Debug)]
pub struct NamespaceRooms {
    pub(super) slab: Slab,
    pub(super) rooms: RoomTable,
    /// Keyed by server-made random `Sid`s, so a fast seeded hash (foldhash) is safe here too.
    by_sid: HashMap<Sid, SocketId, foldhash::fast::RandomState>,
    events: VecDeque<AdapterEvent>,
    events_enabled: bool,
    room_count: usize,
}

const STALE: Error = Error::Misuse("stale or unknown SocketId");

/// Whether `room` is the own room of the socket with `sid`. Checks the length first: most room
/// names are not `Sid`-shaped, and this runs on every join and leave.
fn is_own_room(sid: Sid, room: &str) -> bool {
    room.len() == Sid::LEN && sid.as_str() == room
}

impl Default for NamespaceRooms {
    fn default() -> Self {
        Self::new()
    }
}

impl NamespaceRooms {
    /// An empty namespace with event recording on.
    pub fn new() -> Self {
        NamespaceRooms {
            slab: Slab::default(),
            rooms: RoomTable::default(),
            by_sid: HashMap::default(),
            events: VecDeque::new(),
            events_enabled: true,
            room_count: 0,
        }
    }

    /// Turns adapter event recording on or off (default on). Off, no event is built or queued, so a
    /// server without listeners pays nothing; events already queued stay queued.
    pub fn set_events_enabled(&mut self, enabled: bool) {
        self.events_enabled = enabled;
    }

    /// The oldest queued adapter event. While recording is on, every join/leave queues events until
    /// polled: drain after each control call.
    pub fn poll_event(&mut self) -> Option<AdapterEvent> {
        self.events.pop_front()
    }

    /// A socket connects to the namespace: takes a slot and joins the room named by its `Sid`
    /// (`create-room(sid)` then `join-room(sid, sid)`, as the reference `_onconnect`). The own room
    /// has no member set: it is a flag in the socket's entry.
    ///
    /// Errors: `Misuse` if a socket with this `Sid` is already connected here.
    pub fn connect(&mut self, sid: Sid) -> Result<SocketId, Error> {
        if self.by_sid.contains_key(&sid) {
            return Err(Error::Misuse("Sid already connected in this namespace"));
        }
        let s = self.slab.alloc(sid);
        self.by_sid.insert(sid, s);
        self.join_own(s)?;
        Ok(s)
    }

    /// `socket.join(room)`. Joining a room the socket is in is a silent no-op.
    /// Errors: `Misuse` for a stale `SocketId`.
    pub fn join(&mut self, s: SocketId, room: &str) -> Result<(), Error> {
        // The socket's entry (a likely cache miss in a big shard) is read only for a `Sid`-shaped
        // name, and otherwise not before the set update, so the two overlap.
        self.slab.check(s)?;
        if room.len() == Sid::LEN && is_own_room(self.slab.entry(s).ok_or(STALE)?.sid, room) {
            return self.join_own(s);
        }
        let id = match self.rooms.lookup(room) {
            Some(id) => id,
            None => {
                let id = self.rooms.intern(room);
                if self.owner_in_own_room(room).is_none() {
                    self.room_count += 1;
                    self.push_event(|| AdapterEvent::CreateRoom(RoomName::from(room)));
                }
                id
            }
        };
        let universe = self.slab.universe();
        // A new room's set is empty, so a `false` here means the socket already was a member.
        if !self.rooms.members_mut(id).is_some_and(|set| set.insert(s.slot(), universe)) {
            return Ok(());
        }
        let entry = self.slab.entry_mut(s)?;
        entry.rooms.push(id);
        if self.events_enabled {
            let sid = entry.sid;
            let name = self.rooms.name_handle(id).cloned().unwrap_or_else(|| RoomName::from(room));
            self.events.push_back(AdapterEvent::JoinRoom(name, sid));
        }
        Ok(())
    }

    /// `socket.join([rooms])`: joins each room in order, exactly as repeated [`NamespaceRooms::join`].
    pub fn join_many<I>(&mut self, s: SocketId, rooms: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.slab.check(s)?;
        rooms.into_iter().try_for_each(|room| self.join(s, room.as_ref()))
    }

    /// `socket.leave(room)`. Leaving a room the socket is not in, or an unknown room, is a silent no-op.
    /// Errors: `Misuse` for a stale `SocketId`.
    pub fn leave(&mut self, s: SocketId, room: &str) -> Result<(), Error> {
        let sid = self.slab.entry(s).ok_or(STALE)?.sid;
        if is_own_room(sid, room) {
            return self.leave_own(s);
        }
        let Some(id) = self.rooms.lookup(room) else { return Ok(()) };
        if !self.leave_room(s.slot(), sid, id) {
            return Ok(());
        }
        let entry = self.slab.entry_mut(s)?;
        if let Some(at) = entry.rooms.iter().position(|&r| r == id) {
            entry.rooms.remove(at);
            if (at as u32) < entry.own_pos {
                entry.own_pos -= 1;
            }
        }
        Ok(())
    }

    /// Leaves every room in the socket's join order (own room first unless it left and rejoined it),
    /// with the events of the reference `delAll`. The socket stays connected.
    /// Errors: `Misuse` for a stale `SocketId`.
    pub fn leave_all(&mut self, s: SocketId) -> Result<(), Error> {
        let entry = self.slab.entry_mut(s)?;
        let mut joined = std::mem::take(&mut entry.rooms);
        let own = entry.in_own_room.then_some(entry.own_pos as usize);
        let sid = entry.sid;
        for (at, &id) in joined.iter().enumerate() {
            if own == Some(at) {
                self.leave_own(s)?;
            }
            self.leave_room(s.slot(), sid, id);
        }
        if own.is_some_and(|at| at >= joined.len()) {
            self.leave_own(s)?;
        }
        joined.clear();
        let entry = self.slab.entry_mut(s)?;
        entry.rooms = joined;
        entry.own_pos = 0;
        Ok(())
    }

    /// The socket disconnects: [`NamespaceRooms::leave_all`], then its slot is freed and every copy of
    /// `s` becomes stale. Errors: `Misuse` for a stale `SocketId`.
    pub fn remove(&mut self, s: SocketId) -> Result<(), Error> {
        self.leave_all(s)?;
        let sid = self.slab.entry(s).ok_or(STALE)?.sid;
        self.by_sid.remove(&sid);
        self.slab.free(s)
    }

    /// The rooms a socket is in, in join order (its own `Sid` first unless it left and rejoined it);
    /// `None` for a stale id. Like `socket.rooms`.
    pub fn rooms_of(&self, s: SocketId) -> Option<impl Iterator<Item = &str> + '_> {
        let entry = self.slab.entry(s)?;
        let own_at = if entry.in_own_room { entry.own_pos as usize } else { entry.rooms.len() };
        let (before, after) = entry.rooms.split_at(own_at.min(entry.rooms.len()));
        let own = entry.in_own_room.then_some(entry.sid.as_str());
        let name = |id: &RoomId| self.rooms.name(*id);
        Some(before.iter().map(name).chain(own).chain(after.iter().map(name)))
    }

    /// Members of a room in slot order (the reference iterates in join order; nothing observable
    /// depends on it). Empty for an unknown room. Cost O(members) (dense sets: O(words)).
    pub fn members(&self, room: &str) -> impl Iterator<Item = SocketId> + '_ {
        static EMPTY: MemberSet = MemberSet::new();
        let set = self.rooms.lookup(room).map_or(&EMPTY, |id| self.rooms.members(id));
        let owner = self.owner_in_own_room(room).map(SocketId::slot);
        // The owner is never in the set (joining one's own Sid sets the flag instead), so splitting the
        // ascending walk around it keeps slot order without a merge.
        let at = owner.unwrap_or(u32::MAX);
        let below = set.iter().take_while(move |&slot| slot < at);
        let above = set.iter().skip_while(move |&slot| slot <= at);
        below.chain(owner).chain(above).map(|slot| self.slab.id_of(slot))
    }

    /// Number of members of a room; 0 if it does not exist.
    pub fn member_count(&self, room: &str) -> usize {
        let named = self.rooms.lookup(room).map_or(0, |id| self.rooms.members(id).len());
        named + usize::from(self.owner_in_own_room(room).is_some())
    }

    /// Number of rooms, own rooms included (`adapter.rooms.size`).
    pub fn room_count(&self) -> usize {
        self.room_count
    }

    /// Number of connected sockets.
    pub fn socket_count(&self) -> usize {
        self.slab.live_count()
    }

    /// The public id of a connected socket; `None` for a stale id.
    pub fn sid(&self, s: SocketId) -> Option<Sid> {
        self.slab.entry(s).map(|e| e.sid)
    }

    /// The connected socket with this public id.
    pub fn socket_by_sid(&self, sid: &Sid) -> Option<SocketId> {
        self.by_sid.get(sid).copied()
    }

    /// Names of every room, own rooms included, each once, in no particular order.
    pub fn all_rooms(&self) -> impl Iterator<Item = &str> + '_ {
        let own = self.slab.live_entries().filter(|e| e.in_own_room).map(|e| e.sid.as_str());
        self.rooms.names().chain(own.filter(|name| self.rooms.lookup(name).is_none()))
    }

    /// How many rooms currently use the bitset representation (a metric; own rooms are never sets).
    /// Cost O(rooms).
    pub fn dense_room_count(&self) -> usize {
        self.rooms.sets().filter(|set| set.is_dense()).count()
    }

    /// How many rooms keep a sparse member list of more than one chunk (a metric). Cost O(rooms).
    pub fn chunked_room_count(&self) -> usize {
        self.rooms.sets().filter(|set| set.chunk_count() > 1).count()
    }

    /// The socket whose own room is named `room`, if it is connected and in that room.
    pub(super) fn owner_in_own_room(&self, room: &str) -> Option<SocketId> {
        if room.len() != Sid::LEN {
            return None;
        }
        self.owner_of(Sid::parse(room)?)
    }

    /// The socket with this `Sid`, if it is connected and in its own room.
    pub(super) fn owner_of(&self, sid: Sid) -> Option<SocketId> {
        let s = *self.by_sid.get(&sid)?;
        self.slab.entry(s).is_some_and(|e| e.in_own_room).then_some(s)
    }

    fn join_own(&mut self, s: SocketId) -> Result<(), Error> {
        let entry = self.slab.entry_mut(s)?;
        if entry.in_own_room {
            return Ok(());
        }
        entry.in_own_room = true;
        entry.own_pos = entry.rooms.len() as u32;
        let sid = entry.sid;
        if self.rooms.lookup(sid.as_str()).is_none() {
            self.room_count += 1;
            self.push_event(|| AdapterEvent::CreateRoom(RoomName::from(sid.as_str())));
        }
        self.push_event(|| AdapterEvent::JoinRoom(RoomName::from(sid.as_str()), sid));
        Ok(())
    }

    fn leave_own(&mut self, s: SocketId) -> Result<(), Error> {
        let entry = self.slab.entry_mut(s)?;
        if !entry.in_own_room {
            return Ok(());
        }
        entry.in_own_room = false;
        let sid = entry.sid;
        self.push_event(|| AdapterEvent::LeaveRoom(RoomName::from(sid.as_str()), sid));
        if self.rooms.lookup(sid.as_str()).is_none() {
            self.room_count -= 1;
            self.push_event(|| AdapterEvent::DeleteRoom(RoomName::from(sid.as_str())));
        }
        Ok(())
    }

    /// Takes `slot` out of a named room (the caller updates the socket's join list), deleting the
    /// room when nobody is left in it. Returns whether `slot` was a member.
    fn leave_room(&mut self, slot: u32, sid: Sid, id: RoomId) -> bool {
        let universe = self.slab.universe();
        let Some(set) = self.rooms.members_mut(id) else { return false };
        if !set.remove(slot, universe) {
            return false;
        }
        let now_empty = set.is_empty();
        if self.events_enabled {
            if let Some(name) = self.rooms.name_handle(id).cloned() {
                self.events.push_back(AdapterEvent::LeaveRoom(name, sid));
            }
        }
        if now_empty {
            let Some(name) = self.rooms.name_handle(id).cloned() else { return true };
            self.rooms.release(id);
            if self.owner_in_own_room(name.as_str()).is_none() {
                self.room_count -= 1;
                self.push_event(|| AdapterEvent::DeleteRoom(name));
            }
        }
        true
    }

    fn push_event(&mut self, event: impl FnOnce() -> AdapterEvent) {
        if self.events_enabled {
            self.events.push_back(event());
        }
    }
}
