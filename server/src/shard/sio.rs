//! The Socket.IO layer of a session: CONNECT, events, acks, DISCONNECT, and the rules for rejecting a
//! client (reference notes §2.4–2.7). Control path: one decode per received message, then handlers.

use bytes::{Bytes, BytesMut};
use roomcast_engine::eio::{CloseReason, InMessage};
use roomcast_engine::ids::SocketId;
use roomcast_engine::sio::{self, Arg as SioArg, PacketType, Received};

use super::core::{NspSocket, SessionKey, ShardCore};
use super::guard::guarded;
use crate::api::args::{ArgRef, Event};
use crate::api::handshake::ConnectRequest;
use crate::api::socket::Socket;
use crate::broadcast::EncodedPacket;
use crate::driver::Outbox;

impl ShardCore {
    pub(crate) fn on_sio_message(&mut self, out: &mut Outbox, key: SessionKey, message: InMessage) {
        let limits = self.shared.sio_limits;
        let Some(session) = self.session_mut(key) else { return };
        let received = match &message {
            InMessage::Text(text) => session.reassembler.handle_text(text, &limits),
            InMessage::Binary(data) => session.reassembler.handle_binary(data.clone(), &limits),
        };
        let result = match received {
            Ok(Received::Packet(packet)) => self.on_packet(out, key, &packet, None),
            Ok(Received::AwaitingAttachments { .. }) => Ok(()),
            Ok(Received::Binary(binary)) => {
                let packet = binary.packet();
                let attachments = binary.attachments();
                let args: Vec<ArgRef<'_>> = binary
                    .args()
                    .map(|a| match a {
                        SioArg::Json(t) => ArgRef::Json(t),
                        SioArg::JsonWithBinary(json) => ArgRef::JsonWithBinary { json, attachments },
                        SioArg::Binary(b) => ArgRef::Binary(b),
                    })
                    .collect();
                self.on_packet(out, key, &packet, Some(args))
            }
            Err(error) => Err(error.disconnect_reason()),
        };
        if let Err(reason) = result {
            self.stats.peer_errors += 1;
            let eio_reason =
                if reason == "parse error" { CloseReason::ParseError } else { CloseReason::ForcedClose };
            self.close_session(out, key, eio_reason, reason);
        }
    }

    /// One complete packet. `Err(reason)` closes the whole client, as the reference does.
    fn on_packet(
        &mut self,
        out: &mut Outbox,
        key: SessionKey,
        packet: &sio::Packet<'_>,
        binary_args: Option<Vec<ArgRef<'_>>>,
    ) -> Result<(), &'static str> {
        let nsp_name = packet.nsp();
        let connected = self.socket_of(key, nsp_name);
        match packet.kind() {
            PacketType::Connect => {
                if connected.is_some() {
                    return Err("forced server close");
                }
                let auth =
                    packet.auth().map(Bytes::copy_from_slice).unwrap_or_else(|| Bytes::from_static(b"{}"));
                self.connect_socket(out, key, nsp_name, auth);
                Ok(())
            }
            PacketType::ConnectError => Err("forced server close"),
            PacketType::Disconnect => {
                let (nsp, id) = connected.ok_or("forced server close")?;
                self.remove_socket(out, nsp, id, "client namespace disconnect", false);
                Ok(())
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let (nsp, id) = connected.ok_or("forced server close")?;
                let Some(name) = packet.event_name() else { return Ok(()) };
                let args = binary_args.unwrap_or_else(|| packet.args().map(ArgRef::Json).collect());
                let event = Event { name: &name, args, ack_id: packet.ack_id() };
                self.dispatch_event(out, nsp, id, &event);
                Ok(())
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let (nsp, id) = connected.ok_or("forced server close")?;
                let Some(ack_id) = packet.ack_id() else { return Ok(()) };
                let args = binary_args.unwrap_or_else(|| packet.args().map(ArgRef::Json).collect());
                self.ack_received(out, nsp, id, ack_id, &args);
                Ok(())
            }
        }
    }

    fn socket_of(&self, key: SessionKey, nsp_name: &str) -> Option<(u32, SocketId)> {
        let nsp = *self.nsp_index.get(nsp_name)?;
        self.session(key)?.sockets.iter().find(|(n, _)| *n == nsp).copied()
    }

    fn connect_socket(&mut self, out: &mut Outbox, key: SessionKey, nsp_name: &str, auth: Bytes) {
        let Some(nsp) = self.namespace_index(nsp_name, true) else {
            let mut text = BytesMut::from(&b"4"[..]);
            sio::encode_connect_error(nsp_name, "Invalid namespace", None, &mut text);
            self.send_to_session(key, &EncodedPacket::from_text(text.freeze()));
            return;
        };
        let Some(session) = self.session(key) else { return };
        let def = self.nsps[nsp as usize].def.clone();
        let request = ConnectRequest {
            handshake: session.handshake.clone(),
            auth: auth.clone(),
            namespace: self.nsps[nsp as usize].name.clone(),
        };
        for middleware in &def.middlewares {
            if let Err(refusal) = middleware(&request) {
                let mut text = BytesMut::from(&b"4"[..]);
                sio::encode_connect_error(nsp_name, &refusal.message, refusal.data.as_deref(), &mut text);
                self.send_to_session(key, &EncodedPacket::from_text(text.freeze()));
                return;
            }
        }
        let Ok(sid) = self.ids.socket_sid() else { return };
        let namespace = &mut self.nsps[nsp as usize];
        let Ok(id) = namespace.rooms.connect(sid) else { return };
        let slot = id.slot() as usize;
        if namespace.sockets.len() <= slot {
            namespace.sockets.resize_with(slot + 1, || None);
        }
        namespace.sockets[slot] = Some(NspSocket { id, sid, session: key, auth, acks: None, handlers: None });
        if let Some(s) = self.session_mut(key) {
            s.sockets.push((nsp, id));
            s.connect_deadline = None;
        }
        self.drain_adapter_events(nsp);
        let mut text = BytesMut::from(&b"4"[..]);
        sio::encode_connect(nsp_name, sid.as_str(), None, &mut text);
        self.send_to_session(key, &EncodedPacket::from_text(text.freeze()));
        for handler in &def.on_connection {
            guarded(|| handler(&mut Socket::new(self, out, nsp, id)));
        }
    }

    fn dispatch_event(&mut self, out: &mut Outbox, nsp: u32, id: SocketId, event: &Event<'_>) {
        let def = self.nsps[nsp as usize].def.clone();
        // As socket.io's `onAny`: the catch-all sees every event, before the event's own handler.
        if let Some(any) = &def.any_event {
            guarded(|| any(&mut Socket::new(self, out, nsp, id), event));
        }
        // The socket's own handler (`socket.on`), else the namespace's.
        let own = self.nsps[nsp as usize]
            .socket(id)
            .and_then(|s| s.handlers.as_ref())
            .and_then(|h| h.get(event.name()))
            .cloned();
        if let Some(handler) = own.as_ref().or_else(|| def.events.get(event.name())) {
            guarded(|| handler(&mut Socket::new(self, out, nsp, id), event));
        }
    }

    /// Takes a socket out of its namespace: `disconnecting` (rooms still visible), leave every room and
    /// the namespace, `disconnect` (no rooms; no broadcast reaches the socket any more, as in socket.io
    /// where it has left `nsp.sockets`), then pending acks fail. `notify` sends DISCONNECT to the
    /// client (a server-side disconnect).
    pub(crate) fn remove_socket(
        &mut self,
        out: &mut Outbox,
        nsp: u32,
        id: SocketId,
        reason: &str,
        notify: bool,
    ) {
        let Some(socket) = self.nsps.get(nsp as usize).and_then(|n| n.socket(id)) else { return };
        let key = socket.session;
        let def = self.nsps[nsp as usize].def.clone();
        for handler in &def.on_disconnecting {
            guarded(|| handler(&mut Socket::new(self, out, nsp, id), reason));
        }
        // Leaves every room (adapter events in the reference order) and the rooms' slab; the socket's
        // own state stays until the end so that the handlers below still see its id.
        let _ = self.nsps[nsp as usize].rooms.remove(id);
        self.drain_adapter_events(nsp);
        for handler in &def.on_disconnect {
            guarded(|| handler(&mut Socket::leaving(self, out, nsp, id), reason));
        }
        self.acks_abandoned(out, nsp, id);
        let namespace = &mut self.nsps[nsp as usize];
        let name = namespace.name.clone();
        if let Some(entry) = namespace.sockets.get_mut(id.slot() as usize) {
            *entry = None;
        }
        if let Some(s) = self.session_mut(key) {
            s.sockets.retain(|(n, sock)| !(*n == nsp && *sock == id));
        }
        if notify {
            let mut text = BytesMut::from(&b"4"[..]);
            sio::encode_disconnect(&name, &mut text);
            self.send_to_session(key, &EncodedPacket::from_text(text.freeze()));
        }
    }

    /// `socket.disconnect(true)` (socket.io's `client._disconnect()`): every namespace socket of the
    /// client leaves with reason "server namespace disconnect" and a DISCONNECT packet, in the order
    /// they joined, then the session closes.
    pub(crate) fn disconnect_client(&mut self, out: &mut Outbox, key: SessionKey) {
        let sockets = self.session(key).map(|s| s.sockets.clone()).unwrap_or_default();
        for (nsp, id) in sockets {
            self.remove_socket(out, nsp, id, "server namespace disconnect", true);
        }
        self.close_session(out, key, CloseReason::ForcedClose, "forced server close");
    }

    /// Hands the namespace's queued adapter events to its listener, and room creations and deletions to
    /// the sharded Redis adapter when it follows rooms.
    pub(crate) fn drain_adapter_events(&mut self, nsp: u32) {
        let Some(namespace) = self.nsps.get_mut(nsp as usize) else { return };
        let listener = namespace.def.adapter_listener.clone();
        let room_link = self.shared.cluster.as_ref().and_then(|c| c.rooms.as_ref());
        while let Some(event) = namespace.rooms.poll_event() {
            if let (Some(link), Some(reported)) = (room_link, namespace.cluster_rooms.as_mut()) {
                link.on_adapter_event(&namespace.name, reported, &namespace.rooms, &event);
            }
            if let Some(listener) = &listener {
                guarded(|| listener(&event));
            }
        }
    }

    /// Queues an encoded packet on one session (a direct emit). Cost: refcount clones only.
    pub(crate) fn send_to_session(&mut self, key: SessionKey, packet: &EncodedPacket) {
        let Some(s) = self.session_mut(key) else { return };
        for p in packet.out_packets() {
            s.eio.send(p);
        }
        self.mark_dirty(key);
    }
}
