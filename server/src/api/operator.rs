//! Broadcast operators: `to`/`in`/`except` chains with flags, then `emit` (reference notes §4.4).

use std::sync::Arc;

use roomcast_engine::rooms::{BroadcastTarget, RoomName};

use super::args::Arg;
use super::socket::Ctx;
use crate::broadcast::{Broadcast, EncodedPacket};
use crate::cluster::outgoing::{self, Query};
use crate::shard::core::ShardCore;
use crate::shard::selection::{SelectionOp, SocketInfo};

/// A broadcast being described. Each call adds to it; [`Operator::emit`] sends it.
pub struct Operator<'c, 'a> {
    pub(super) cx: &'c mut Ctx<'a>,
    nsp: u32,
    pub(super) target: BroadcastTarget,
}

impl std::fmt::Debug for Operator<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator").field("target", &self.target).finish()
    }
}

impl<'c, 'a> Operator<'c, 'a> {
    pub(crate) fn new(cx: &'c mut Ctx<'a>, nsp: u32, target: BroadcastTarget) -> Self {
        Operator { cx, nsp, target }
    }

    /// Adds a room to the union of targets (several `to` calls reach each socket once).
    pub fn to(mut self, room: &str) -> Self {
        if !self.target.to.iter().any(|r| r.as_str() == room) {
            self.target.to.push(RoomName::from(room));
        }
        self
    }

    /// Alias of [`Operator::to`] (`in` is a Rust keyword).
    pub fn within(self, room: &str) -> Self {
        self.to(room)
    }

    /// Excludes every member of `room`.
    pub fn except(mut self, room: &str) -> Self {
        if !self.target.except.iter().any(|r| r.as_str() == room) {
            self.target.except.push(RoomName::from(room));
        }
        self
    }

    /// Drops the packet for recipients that cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.target.flags.volatile = true;
        self
    }

    /// Delivers on this server only (no cluster adapter publishes it); also keeps `sockets_join`,
    /// `sockets_leave`, `disconnect_sockets`, `fetch_cluster_sockets` and `emit_with_ack` to this server.
    pub fn local(mut self) -> Self {
        self.target.flags.local = true;
        self
    }

    /// Sets the compress flag (carried along; Roomcast negotiates no compression).
    pub fn compress(mut self, compress: bool) -> Self {
        self.target.flags.compress = compress;
        self
    }

    /// Encodes the event once and delivers it to every target on every shard.
    pub fn emit(self, event: &str, args: &[Arg]) {
        let Some(name) = self.cx.core.nsps.get(self.nsp as usize).map(|n| n.name.clone()) else { return };
        let packet = EncodedPacket::event(&name, None, event, args);
        let broadcast =
            Arc::new(Broadcast { nsp: name, target: self.target, packet, origin: Some(self.cx.core.id) });
        self.cx.core.broadcast(self.cx.out, broadcast);
    }

    /// The ids of this shard's sockets that the broadcast would reach (shard-local; see
    /// [`Operator::fetch_sockets`] for every shard).
    pub fn local_socket_ids(self) -> Vec<String> {
        let (nsp, target) = (self.name(), self.target);
        self.cx.core.socket_infos(&nsp, &target).into_iter().map(|s| s.id).collect()
    }

    /// `fetchSockets` on this server: describes every selected socket on every shard, then calls `done`
    /// with them on this shard (at a later loop turn; the handler calling this has returned by then).
    /// [`Operator::fetch_cluster_sockets`] asks the other servers of a cluster too.
    pub fn fetch_sockets(self, done: impl FnOnce(&mut Ctx<'_>, Vec<SocketInfo>) + Send + 'static) {
        let (nsp, target) = (self.name(), Arc::new(self.target));
        let part = Arc::new(move |core: &mut ShardCore| core.socket_infos(&nsp, &target));
        self.cx.core.gather(part, Box::new(done));
    }

    /// `socketsJoin`: every selected socket, on every shard, joins `room` (here at once, elsewhere when
    /// those shards next turn), and on the other servers of the cluster unless `local`.
    pub fn sockets_join(self, room: &str) {
        self.everywhere(SelectionOp::Join(RoomName::from(room)));
    }

    /// `socketsLeave`: every selected socket, on every shard, leaves `room` (and on the other servers
    /// of the cluster unless `local`).
    pub fn sockets_leave(self, room: &str) {
        self.everywhere(SelectionOp::Leave(RoomName::from(room)));
    }

    /// `disconnectSockets`: every selected socket, on every shard, leaves the namespace; with `close`,
    /// their whole clients, as [`crate::api::Socket::disconnect`] does. Reaches the other servers of
    /// the cluster too, unless `local`.
    pub fn disconnect_sockets(self, close: bool) {
        self.everywhere(SelectionOp::Disconnect { close });
    }

    pub(super) fn name(&self) -> Arc<str> {
        self.cx.core.nsps.get(self.nsp as usize).map(|n| n.name.clone()).unwrap_or_else(|| Arc::from("/"))
    }

    /// Applies `op` on every shard of this server and, unless `local`, asks the other servers of the
    /// cluster to apply it too (REMOTE_JOIN / REMOTE_LEAVE / REMOTE_DISCONNECT, no answer; this server
    /// ignores its own request when Redis echoes it).
    fn everywhere(self, op: SelectionOp) {
        let nsp = self.name();
        if !self.target.flags.local {
            let opts = crate::api::cluster::opts_of(&self.target);
            let query = match &op {
                SelectionOp::Join(room) => Query::SocketsJoin { opts, rooms: vec![room.as_str().to_owned()] },
                SelectionOp::Leave(room) => {
                    Query::SocketsLeave { opts, rooms: vec![room.as_str().to_owned()] }
                }
                SelectionOp::Disconnect { close } => Query::DisconnectSockets { opts, close: *close },
            };
            outgoing::send(&self.cx.core.shared, nsp.clone(), query, true, None);
        }
        let Ctx { core, out } = self.cx;
        core.apply_selection_everywhere(out, nsp, self.target, op);
    }
}
