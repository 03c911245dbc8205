//! Processing a session after input: its Engine.IO events, its outbound packets, its deadlines. A
//! message goes to its endpoint's app: Socket.IO ([`super::sio`]) or a raw Engine.IO handler
//! ([`crate::api::engine`]).
//!
//! Each turn the shard drains its dirty list once; a session is pumped at most once per pass, and a
//! pump that queues more work (a handler emitting to itself) marks the session dirty again. Outbound:
//! each packet's shared WebSocket frame is queued as is (a refcount, no copy); only packets without a
//! pre-built frame (control packets, `b64` clients) are framed here.

use bytes::BytesMut;
use roomcast_engine::eio::{CloseReason, EioEvent, OutPacket};
use roomcast_engine::ws::{encode_binary, encode_frame, Opcode};

use super::core::{ConnState, SessionKey, ShardCore};
use super::shared::EndpointId;
use super::timers::TimerKey;
use crate::driver::{ConnId, Outbox};

impl ShardCore {
    /// Pumps every dirty session until none is left (handlers may dirty more).
    pub(crate) fn process_dirty(&mut self, out: &mut Outbox) {
        let mut i = 0;
        while i < self.dirty.len() {
            let key = self.dirty[i];
            i += 1;
            if let Some(s) = self.session_mut(key) {
                s.dirty = false;
                self.pump(out, key);
            }
        }
        self.dirty.clear();
    }

    fn pump(&mut self, out: &mut Outbox, key: SessionKey) {
        while let Some(event) = self.session_mut(key).and_then(|s| s.eio.poll_event()) {
            match event {
                EioEvent::Message(message) => match self.session(key).map(|s| s.endpoint) {
                    Some(endpoint) if endpoint != EndpointId::SOCKET_IO => {
                        self.on_engine_message(out, key, endpoint, &message)
                    }
                    _ => self.on_sio_message(out, key, message),
                },
                EioEvent::Upgraded => self.on_upgraded(key),
                EioEvent::UpgradeAborted => {
                    if let Some(conn) = self.session_mut(key).and_then(|s| s.candidate.take()) {
                        self.close_ws(out, conn, 1000, "");
                    }
                }
                EioEvent::Closed { reason } => {
                    self.end_session(out, key, reason.as_str());
                    return;
                }
            }
        }
        self.flush_session(out, key);
        self.arm_timer(key);
    }

    /// The candidate WebSocket became the session's transport (idempotent).
    pub(crate) fn on_upgraded(&mut self, key: SessionKey) {
        let Some(s) = self.session_mut(key) else { return };
        let Some(conn) = s.candidate.take() else { return };
        s.ws = Some(conn);
        if let Some(ConnState::WebSocket(ws)) = self.conn_mut(conn) {
            ws.candidate = false;
        }
    }

    /// Moves the session's queued packets to its transport: frames on the WebSocket, the payload to a
    /// parked GET, `3probe` to an upgrade candidate.
    pub(crate) fn flush_session(&mut self, out: &mut Outbox, key: SessionKey) {
        let Some(s) = self.session_mut(key) else { return };
        let (ws, candidate, b64) = (s.ws, s.candidate, s.b64);
        if let Some(conn) = ws {
            while let Some(packet) = self.session_mut(key).and_then(|s| s.eio.poll_ws_transmit()) {
                self.send_packet(out, conn, packet, b64);
            }
        }
        if let Some(conn) = candidate {
            while let Some(packet) = self.session_mut(key).and_then(|s| s.eio.poll_candidate_transmit()) {
                self.send_packet(out, conn, packet, b64);
            }
        }
        self.answer_poll(out, key);
    }

    /// Writes one packet to a WebSocket: its pre-built frame moved into the driver's queue (no refcount
    /// traffic), or a frame built here (control packets, binary for `b64` clients).
    fn send_packet(&mut self, out: &mut Outbox, conn: ConnId, packet: OutPacket, b64: bool) {
        let packet = if b64 && packet.is_binary() {
            packet
        } else {
            match packet.into_ws_frame() {
                Ok(frame) => {
                    out.send(conn, frame);
                    return;
                }
                Err(packet) => packet,
            }
        };
        let mut frame = BytesMut::new();
        if packet.is_binary() && !b64 {
            encode_binary(packet.packet(), &mut frame);
        } else {
            let mut text = BytesMut::new();
            packet.encode_text(&mut text);
            let _ = encode_frame(Opcode::Text, true, &text, &mut frame);
        }
        out.send(conn, frame.freeze());
    }

    /// The session is over: a raw endpoint's close handlers run, or its sockets leave, with `reason`;
    /// its last packets go out, its transports close, and it is dropped.
    pub(crate) fn end_session(&mut self, out: &mut Outbox, key: SessionKey, reason: &str) {
        self.on_engine_close(out, key, reason);
        let sockets = self.session(key).map(|s| s.sockets.clone()).unwrap_or_default();
        for (nsp, id) in sockets.into_iter().rev() {
            self.remove_socket(out, nsp, id, reason, false);
        }
        self.flush_session(out, key);
        if let Some(session) = self.remove_session(key) {
            if let Some(conn) = session.ws {
                self.close_ws(out, conn, 1000, "");
            }
            if let Some(conn) = session.candidate {
                self.close_ws(out, conn, 1000, "");
            }
            if let Some(get) = session.get {
                // A GET the session did not answer (it always answers on close; belt and braces).
                self.drop_parked_get(out, get);
            }
        }
    }

    /// Closes a session from the server side (`disconnect(true)`, connect timeout, shutdown).
    pub(crate) fn close_session(
        &mut self,
        out: &mut Outbox,
        key: SessionKey,
        reason: CloseReason,
        sio_reason: &str,
    ) {
        let sockets = self.session(key).map(|s| s.sockets.clone()).unwrap_or_default();
        for (nsp, id) in sockets.into_iter().rev() {
            self.remove_socket(out, nsp, id, sio_reason, false);
        }
        let now = self.now;
        if let Some(s) = self.session_mut(key) {
            s.eio.close(now, reason);
        }
        self.mark_dirty(key);
    }

    /// Arms the shard timer for the session's earliest deadline, if it is earlier than the armed one.
    fn arm_timer(&mut self, key: SessionKey) {
        let Some(s) = self.session_mut(key) else { return };
        let deadline = match (s.eio.poll_timeout(), s.connect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(deadline) = deadline else { return };
        if s.armed.is_some_and(|armed| armed <= deadline) {
            return;
        }
        s.armed = Some(deadline);
        self.timers.arm(deadline, TimerKey::Session { index: key.index, generation: key.generation });
    }

    /// Fires every due deadline.
    pub(crate) fn fire_timers(&mut self, out: &mut Outbox) {
        let now = self.now;
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Session { index, generation } => {
                    let key = SessionKey { index, generation };
                    let Some(s) = self.session_mut(key) else { continue };
                    s.armed = None;
                    if s.connect_deadline.is_some_and(|d| d <= now) && s.sockets.is_empty() {
                        s.connect_deadline = None;
                        self.close_session(out, key, CloseReason::ForcedClose, "forced close");
                        continue;
                    }
                    s.eio.handle_timeout(now);
                    self.mark_dirty(key);
                }
                TimerKey::Ack { nsp, socket, ack_id } => self.ack_timed_out(out, nsp, socket, ack_id),
            }
        }
    }
}
