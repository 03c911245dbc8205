//! Broadcast operators: `to`/`in`/`except` chains with flags, then `emit` (reference notes §4.4).

use std::sync::Arc;

use roomcast_engine::rooms::{BroadcastTarget, RoomName};

use super::args::Arg;
use super::socket::Ctx;
use crate::broadcast::{Broadcast, EncodedPacket};

/// A broadcast being described. Each call adds to it; [`Operator::emit`] sends it.
pub struct Operator<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    nsp: u32,
    target: BroadcastTarget,
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

    /// Delivers on this server only (no cluster adapter publishes it).
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

    /// The ids of this shard's sockets that the broadcast would reach (`fetchSockets`, shard-local).
    pub fn local_socket_ids(self) -> Vec<String> {
        let core = &mut *self.cx.core;
        let Some(namespace) = core.nsps.get(self.nsp as usize) else { return Vec::new() };
        namespace.rooms.resolve(&self.target, &mut core.spec);
        namespace
            .rooms
            .plan(&core.spec, &mut core.scratch)
            .filter_map(|id| namespace.rooms.sid(id))
            .map(|sid| sid.to_string())
            .collect()
    }

    /// Makes every targeted socket of this shard join `room` (`socketsJoin`, shard-local).
    pub fn sockets_join(mut self, room: &str) {
        let ids = self.local_ids();
        let nsp = self.nsp;
        let core = &mut *self.cx.core;
        for id in ids {
            let _ = core.nsps[nsp as usize].rooms.join(id, room);
        }
        core.drain_adapter_events(nsp);
    }

    /// Makes every targeted socket of this shard leave `room` (`socketsLeave`, shard-local).
    pub fn sockets_leave(mut self, room: &str) {
        let ids = self.local_ids();
        let nsp = self.nsp;
        let core = &mut *self.cx.core;
        for id in ids {
            let _ = core.nsps[nsp as usize].rooms.leave(id, room);
        }
        core.drain_adapter_events(nsp);
    }

    /// Disconnects every targeted socket of this shard (`disconnectSockets`); with `close`, their whole
    /// clients, as [`crate::api::Socket::disconnect`] does.
    pub fn disconnect_sockets(mut self, close: bool) {
        let ids = self.local_ids();
        let nsp = self.nsp;
        let Ctx { core, out } = self.cx;
        for id in ids {
            // A socket already gone left with an earlier one of its client (`close`).
            let Some(key) = core.nsps[nsp as usize].socket(id).map(|s| s.session) else { continue };
            if close {
                core.disconnect_client(out, key);
            } else {
                core.remove_socket(out, nsp, id, "server namespace disconnect", true);
            }
        }
    }

    fn local_ids(&mut self) -> Vec<roomcast_engine::ids::SocketId> {
        let core = &mut *self.cx.core;
        let Some(namespace) = core.nsps.get(self.nsp as usize) else { return Vec::new() };
        namespace.rooms.resolve(&self.target, &mut core.spec);
        namespace.rooms.plan(&core.spec, &mut core.scratch).collect()
    }
}
