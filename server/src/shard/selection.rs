//! Operations on a selection of sockets over every shard: `socketsJoin`, `socketsLeave`,
//! `disconnectSockets` (applied here at once and sent to the other shards), and `fetchSockets` /
//! all rooms (gathered from every shard, then handed to a callback on the asking shard).
//!
//! Control path. Remote shards act when they next drain their inbox, so a selection operation is
//! asynchronous beyond the calling shard, as it is across a Socket.IO cluster. Gathering takes one short
//! lock per shard answer (never on the broadcast path).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use roomcast_engine::ids::{ShardId, SocketId};
use roomcast_engine::rooms::{BroadcastTarget, RoomName};

use super::core::ShardCore;
use super::shared::{ShardMsg, Shared};
use crate::api::handshake::Handshake;
use crate::api::socket::Ctx;
use crate::driver::Outbox;

/// What to do to each selected socket.
#[derive(Debug, Clone)]
pub(crate) enum SelectionOp {
    Join(RoomName),
    Leave(RoomName),
    /// Disconnect from the namespace; with `close`, the whole client.
    Disconnect {
        close: bool,
    },
}

/// One socket as `fetchSockets` describes it.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// Its rooms, own id first.
    pub rooms: Vec<String>,
    /// Its connection's handshake.
    pub handshake: Arc<Handshake>,
    /// The shard that owns it.
    pub shard: ShardId,
}

/// One shard's share of a gather.
pub(crate) type GatherPart<T> = Arc<dyn Fn(&mut ShardCore) -> Vec<T> + Send + Sync>;
/// What runs on the asking shard with every shard's share.
pub(crate) type GatherDone<T> = Box<dyn FnOnce(&mut Ctx<'_>, Vec<T>) + Send>;

/// Room name → ids of its members, over every shard (sorted by room name).
pub type RoomsView = BTreeMap<String, Vec<String>>;

impl ShardCore {
    /// The sockets of namespace `nsp` on this shard that `target` selects.
    pub(crate) fn selected(&mut self, nsp: u32, target: &BroadcastTarget) -> Vec<SocketId> {
        let Some(namespace) = self.nsps.get(nsp as usize) else { return Vec::new() };
        namespace.rooms.resolve(target, &mut self.spec);
        namespace.rooms.plan(&self.spec, &mut self.scratch).collect()
    }

    /// Applies `op` to this shard's selected sockets.
    pub(crate) fn apply_selection(
        &mut self,
        out: &mut Outbox,
        nsp: &str,
        target: &BroadcastTarget,
        op: &SelectionOp,
    ) {
        let Some(index) = self.namespace_index(nsp, false) else { return };
        let ids = self.selected(index, target);
        match op {
            SelectionOp::Join(room) | SelectionOp::Leave(room) => {
                let join = matches!(op, SelectionOp::Join(_));
                let rooms = &mut self.nsps[index as usize].rooms;
                for id in ids {
                    let _ = if join { rooms.join(id, room.as_str()) } else { rooms.leave(id, room.as_str()) };
                }
                self.drain_adapter_events(index);
            }
            SelectionOp::Disconnect { close } => {
                for id in ids {
                    // A socket already gone left with an earlier one of its client (`close`).
                    let Some(key) = self.nsps[index as usize].socket(id).map(|s| s.session) else { continue };
                    if *close {
                        self.disconnect_client(out, key);
                    } else {
                        self.remove_socket(out, index, id, "server namespace disconnect", true);
                    }
                }
            }
        }
    }

    /// Applies `op` here now and on every other shard when it next drains its inbox.
    pub(crate) fn apply_selection_everywhere(
        &mut self,
        out: &mut Outbox,
        nsp: Arc<str>,
        target: BroadcastTarget,
        op: SelectionOp,
    ) {
        let (target, op) = (Arc::new(target), Arc::new(op));
        for (i, inbox) in self.shared.inboxes.iter().enumerate() {
            if i != self.id.0 as usize {
                let (nsp, target, op) = (nsp.clone(), target.clone(), op.clone());
                inbox.push(ShardMsg::Run(Box::new(move |cx: &mut Ctx<'_>| {
                    cx.core.apply_selection(cx.out, &nsp, &target, &op)
                })));
            }
        }
        self.apply_selection(out, &nsp, &target, &op);
    }

    /// This shard's selected sockets, described.
    pub(crate) fn socket_infos(&mut self, nsp: &str, target: &BroadcastTarget) -> Vec<SocketInfo> {
        let Some(index) = self.namespace_index(nsp, false) else { return Vec::new() };
        let ids = self.selected(index, target);
        let namespace = &self.nsps[index as usize];
        ids.into_iter()
            .filter_map(|id| {
                let socket = namespace.socket(id)?;
                let handshake = self.session(socket.session)?.handshake.clone();
                let rooms = namespace.rooms.rooms_of(id)?.map(str::to_owned).collect();
                Some(SocketInfo { id: socket.sid.to_string(), rooms, handshake, shard: self.id })
            })
            .collect()
    }

    /// This shard's rooms of `nsp` with their members.
    pub(crate) fn room_members(&mut self, nsp: &str) -> Vec<(String, Vec<String>)> {
        let Some(index) = self.namespace_index(nsp, false) else { return Vec::new() };
        let rooms = &self.nsps[index as usize].rooms;
        rooms
            .all_rooms()
            .map(|room| {
                let members =
                    rooms.members(room).filter_map(|id| rooms.sid(id)).map(|s| s.to_string()).collect();
                (room.to_owned(), members)
            })
            .collect()
    }

    /// Runs `part` on every shard and hands the concatenated results to `done` on this shard.
    pub(crate) fn gather<T: Send + 'static>(&mut self, part: GatherPart<T>, done: GatherDone<T>) {
        let shards = self.shared.shard_count();
        let gather = Arc::new(Gather {
            remaining: AtomicUsize::new(shards),
            results: Mutex::new(Vec::new()),
            done: Mutex::new(Some(done)),
            origin: self.id,
            shared: self.shared.clone(),
        });
        for (i, inbox) in self.shared.inboxes.iter().enumerate() {
            if i != self.id.0 as usize {
                let (gather, part) = (gather.clone(), part.clone());
                inbox.push(ShardMsg::Run(Box::new(move |cx: &mut Ctx<'_>| gather.contribute(part(cx.core)))));
            }
        }
        gather.contribute(part(self));
    }
}

/// Answers collected for one `gather`.
struct Gather<T> {
    remaining: AtomicUsize,
    results: Mutex<Vec<T>>,
    done: Mutex<Option<GatherDone<T>>>,
    origin: ShardId,
    shared: Arc<Shared>,
}

impl<T: Send + 'static> Gather<T> {
    /// Adds one shard's answer; the last one sends the whole to the asking shard.
    fn contribute(&self, mut part: Vec<T>) {
        self.results.lock().unwrap_or_else(PoisonError::into_inner).append(&mut part);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let results = std::mem::take(&mut *self.results.lock().unwrap_or_else(PoisonError::into_inner));
        let Some(done) = self.done.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        if let Some(inbox) = self.shared.inbox(self.origin) {
            inbox.push(ShardMsg::Run(Box::new(move |cx: &mut Ctx<'_>| done(cx, results))));
        }
    }
}
