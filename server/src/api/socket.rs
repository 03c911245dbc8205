//! The handle a handler gets: one socket of one namespace on the shard that owns it.
//!
//! A `Socket` borrows the shard for the duration of the handler call; it cannot be kept. Everything it
//! does is immediate on this shard (join, leave, rooms) or queued for this turn's flush (emits).

use std::sync::Arc;
use std::time::Duration;

use roomcast_engine::ids::{ShardId, Sid, SocketId};
use roomcast_engine::rooms::BroadcastTarget;

use super::args::{Arg, ArgRef, Event};
use super::handshake::Handshake;
use super::operator::Operator;
use crate::broadcast::EncodedPacket;
use crate::driver::Outbox;
use crate::shard::core::ShardCore;
use crate::shard::selection::RoomsView;
use crate::shard::timers::TimerKey;

/// Why a server-to-client ack did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("operation has timed out")]
    Timeout,
    #[error("socket disconnected before acknowledging")]
    Disconnected,
}

/// Called once with the client's ack arguments (or why there were none), on the socket's shard.
pub type AckCallback = Box<dyn FnOnce(&mut Socket<'_>, Result<Vec<Arg>, AckError>) + Send>;

/// A shard's state and send side, lent to API calls for the duration of one callback.
pub struct Ctx<'a> {
    pub(crate) core: &'a mut ShardCore,
    pub(crate) out: &'a mut Outbox,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("shard", &self.core.id).finish()
    }
}

impl<'a> Ctx<'a> {
    /// The shard (thread) this context belongs to: where the handler runs and its sockets live.
    pub fn shard(&self) -> ShardId {
        self.core.id
    }

    /// Room name → member ids of namespace `nsp` over every shard (the adapter's rooms view, own-id
    /// rooms included), handed to `done` on this shard at a later loop turn.
    pub fn fetch_rooms(&mut self, nsp: &str, done: impl FnOnce(&mut Ctx<'_>, RoomsView) + Send + 'static) {
        let nsp: Arc<str> = Arc::from(nsp);
        let part = Arc::new(move |core: &mut ShardCore| core.room_members(&nsp));
        self.core.gather(
            part,
            Box::new(move |cx: &mut Ctx<'_>, parts: Vec<(String, Vec<String>)>| {
                let mut view = RoomsView::new();
                for (room, members) in parts {
                    view.entry(room).or_default().extend(members);
                }
                done(cx, view)
            }),
        );
    }

    /// A broadcast operator on a namespace of this server (`io.of(nsp)`): a defined one, or one a
    /// dynamic definition accepts (set up on this shard if none of its sockets joined it yet, so that
    /// the broadcast still reaches the other shards). `None` for any other name.
    pub fn of(&mut self, nsp: &str) -> Option<Operator<'_, 'a>> {
        let index = self.core.namespace_index(nsp, true)?;
        Some(Operator::new(self, index, BroadcastTarget::default()))
    }
}

/// One namespace socket, lent to a handler.
pub struct Socket<'a> {
    pub(crate) cx: Ctx<'a>,
    pub(crate) nsp: u32,
    pub(crate) id: SocketId,
    /// The socket has left its namespace (in `disconnect` handlers and abandoned-ack callbacks): it
    /// can no longer join rooms or await acks.
    left: bool,
}

impl std::fmt::Debug for Socket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("id", &self.sid()).finish()
    }
}

impl<'a> Socket<'a> {
    pub(crate) fn new(core: &'a mut ShardCore, out: &'a mut Outbox, nsp: u32, id: SocketId) -> Self {
        Socket { cx: Ctx { core, out }, nsp, id, left: false }
    }

    /// A socket that has left its namespace but is still addressable (its id, handshake, `auth`).
    pub(crate) fn leaving(core: &'a mut ShardCore, out: &'a mut Outbox, nsp: u32, id: SocketId) -> Self {
        Socket { cx: Ctx { core, out }, nsp, id, left: true }
    }

    fn state(&self) -> Option<&crate::shard::core::NspSocket> {
        self.cx.core.nsps.get(self.nsp as usize)?.socket(self.id)
    }

    /// The socket's public id (`socket.id`), also the name of its own room. `None` once it has left.
    pub fn sid(&self) -> Option<Sid> {
        self.state().map(|s| s.sid)
    }

    /// The socket's id as a string (empty once it has left).
    pub fn id(&self) -> String {
        self.sid().map(|s| s.to_string()).unwrap_or_default()
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        self.cx.core.nsps.get(self.nsp as usize).map(|n| &*n.name).unwrap_or("")
    }

    /// The connection's handshake (headers, query, address, time).
    pub fn handshake(&self) -> Option<Arc<Handshake>> {
        let key = self.state()?.session;
        self.cx.core.session(key).map(|s| s.handshake.clone())
    }

    /// This namespace's CONNECT payload (`socket.handshake.auth`), as JSON text.
    pub fn auth(&self) -> &[u8] {
        self.state().map(|s| &s.auth[..]).unwrap_or(b"{}")
    }

    /// The rooms the socket is in (its own id first), as names. Empty in `disconnect` handlers.
    pub fn rooms(&self) -> Vec<String> {
        let rooms = &self.cx.core.nsps[self.nsp as usize].rooms;
        rooms.rooms_of(self.id).map(|r| r.map(str::to_owned).collect()).unwrap_or_default()
    }

    /// Joins a room (no-op if already in it, or once the socket has left: in `disconnect` handlers).
    pub fn join(&mut self, room: &str) {
        if self.left {
            return;
        }
        let nsp = &mut self.cx.core.nsps[self.nsp as usize];
        if nsp.socket(self.id).is_some() && nsp.rooms.join(self.id, room).is_ok() {
            self.cx.core.drain_adapter_events(self.nsp);
        }
    }

    /// Leaves a room (no-op if not in it).
    pub fn leave(&mut self, room: &str) {
        let nsp = &mut self.cx.core.nsps[self.nsp as usize];
        if nsp.rooms.leave(self.id, room).is_ok() {
            self.cx.core.drain_adapter_events(self.nsp);
        }
    }

    /// Sends an event to this socket only.
    pub fn emit(&mut self, event: &str, args: &[Arg]) {
        let Some(key) = self.state().map(|s| s.session) else { return };
        let packet = EncodedPacket::event(self.namespace(), None, event, args);
        self.cx.core.send_to_session(key, &packet);
    }

    /// Sends an event asking for an acknowledgement; `callback` runs once: with the client's answer, with
    /// [`AckError::Timeout`] after `timeout`, or with [`AckError::Disconnected`] when the socket leaves
    /// first (right after its `disconnect` handlers). On a socket that has left (in `disconnect`
    /// handlers too), nothing is sent and `callback` is dropped uncalled.
    pub fn emit_with_ack(&mut self, event: &str, args: &[Arg], timeout: Duration, callback: AckCallback) {
        let Some(key) = self.state().map(|s| s.session).filter(|_| !self.left) else { return };
        let namespace = &mut self.cx.core.nsps[self.nsp as usize];
        let ack_id = namespace.next_ack_id;
        namespace.next_ack_id += 1;
        if let Some(socket) = namespace.socket_mut(self.id) {
            socket.acks.get_or_insert_with(Default::default).insert(ack_id, callback);
        }
        let at = self.cx.core.now + timeout;
        self.cx.core.timers.arm(at, TimerKey::Ack { nsp: self.nsp, socket: self.id, ack_id });
        let packet = EncodedPacket::event(self.namespace(), Some(ack_id), event, args);
        self.cx.core.send_to_session(key, &packet);
    }

    /// Handles `event` for this socket only (`socket.on`), instead of the namespace's handler for it.
    /// Registered typically in a connection handler; dropped when the socket leaves.
    pub fn on(&mut self, event: &str, handler: impl Fn(&mut Socket<'_>, &Event<'_>) + Send + Sync + 'static) {
        let Some(socket) = self.cx.core.nsps.get_mut(self.nsp as usize).and_then(|n| n.socket_mut(self.id))
        else {
            return;
        };
        socket
            .handlers
            .get_or_insert_with(Default::default)
            .insert(event.into(), std::sync::Arc::new(handler));
    }

    /// Answers the client's event with an acknowledgement (no-op if it asked for none).
    pub fn ack(&mut self, ack_id: Option<u64>, args: &[Arg]) {
        let (Some(ack_id), Some(key)) = (ack_id, self.state().map(|s| s.session)) else { return };
        let packet = EncodedPacket::ack(self.namespace(), ack_id, args);
        self.cx.core.send_to_session(key, &packet);
    }

    /// Echo helper: the received arguments as owned [`Arg`]s.
    pub fn args_of(args: &[ArgRef<'_>]) -> Vec<Arg> {
        args.iter().map(|a| a.to_arg()).collect()
    }

    fn operator(&mut self) -> Operator<'_, 'a> {
        let except_sids = self.sid().into_iter().collect();
        let target = BroadcastTarget { except_sids, ..BroadcastTarget::default() };
        Operator::new(&mut self.cx, self.nsp, target)
    }

    /// `socket.to(room)`: every socket in `room` except this one.
    pub fn to(&mut self, room: &str) -> Operator<'_, 'a> {
        self.operator().to(room)
    }

    /// `socket.in(room)`: alias of [`Socket::to`].
    pub fn within(&mut self, room: &str) -> Operator<'_, 'a> {
        self.to(room)
    }

    /// `socket.except(room)`: every socket of the namespace except those in `room` and this one.
    pub fn except(&mut self, room: &str) -> Operator<'_, 'a> {
        self.operator().except(room)
    }

    /// `socket.broadcast`: every socket of the namespace except this one.
    pub fn broadcast(&mut self) -> Operator<'_, 'a> {
        self.operator()
    }

    /// `io.of(this namespace)`: broadcasts that do not exclude this socket.
    pub fn nsp(&mut self) -> Operator<'_, 'a> {
        Operator::new(&mut self.cx, self.nsp, BroadcastTarget::default())
    }

    /// The server-wide context (other namespaces).
    pub fn ctx(&mut self) -> &mut Ctx<'a> {
        &mut self.cx
    }

    /// Disconnects this socket from its namespace (`socket.disconnect()`), sending DISCONNECT; with
    /// `close`, every namespace socket of the client does so (in the order they joined), then the
    /// connection closes (`socket.disconnect(true)`).
    pub fn disconnect(&mut self, close: bool) {
        let Some(key) = self.state().map(|s| s.session) else { return };
        if close {
            self.cx.core.disconnect_client(self.cx.out, key);
        } else {
            self.cx.core.remove_socket(self.cx.out, self.nsp, self.id, "server namespace disconnect", true);
        }
    }
}
