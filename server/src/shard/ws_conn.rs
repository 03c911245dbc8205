//! The WebSocket side of a connection: frames in, Engine.IO packets to the session; control frames.
//! Inbound is the control path (one copy per message into `Bytes`); outbound frames are queued by
//! [`ShardCore::flush_session`].

use bytes::Bytes;
use roomcast_engine::ws::{encode_close, encode_pong, PeerCloseOutcome, WsEvent};

use super::core::{BodyDest, ConnState, Pending, PostBody, SessionKey, ShardCore};
use super::route::Requester;
use crate::driver::{CloseCause, ConnId, Outbox};

/// A decoded inbound frame, owned so the session table can be borrowed while handling it.
enum WsIn {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Close(Option<u16>),
}

impl ShardCore {
    /// Bytes arrived on a WebSocket connection.
    pub(crate) fn on_ws_data(&mut self, out: &mut Outbox, conn: ConnId, input: &[u8]) {
        // The decoder unmasks in place, and the driver lends its buffer read-only: copy once.
        self.inbound.clear();
        self.inbound.extend_from_slice(input);
        let mut frames: Vec<WsIn> = Vec::new();
        let ShardCore { conns, inbound, .. } = self;
        let Some(Some((id, ConnState::WebSocket(ws)))) = conns.get_mut(conn.slot() as usize) else { return };
        if *id != conn {
            return;
        }
        let session = ws.session;
        let decoded = ws.decoder.handle_bytes(inbound, |event| {
            frames.push(match event {
                WsEvent::Text(text) => WsIn::Text(Bytes::copy_from_slice(text.as_bytes())),
                WsEvent::Binary(data) => WsIn::Binary(Bytes::copy_from_slice(data)),
                WsEvent::Ping(data) => WsIn::Ping(Bytes::copy_from_slice(data)),
                WsEvent::Pong(_) => return Ok(()),
                WsEvent::Close { code, .. } => WsIn::Close(code),
            });
            Ok(())
        });
        for frame in frames {
            if !self.on_ws_frame(out, conn, session, frame) {
                return;
            }
        }
        // The upgrade may have completed on a frame of this read.
        let candidate = matches!(self.conn_mut(conn), Some(ConnState::WebSocket(ws)) if ws.candidate);
        if let Err(error) = decoded {
            self.stats.peer_errors += 1;
            self.buf.clear();
            if let Some(ConnState::WebSocket(ws)) = self.conn_mut(conn) {
                let mut frame = bytes::BytesMut::new();
                ws.close.start_error_close(&error, &mut frame);
                out.send(conn, frame.freeze());
            }
            self.ws_gone(out, conn, session, candidate, true);
        }
    }

    /// Handles one frame; returns false once the connection is closing.
    fn on_ws_frame(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, frame: WsIn) -> bool {
        let now = self.now;
        // Re-read per frame: the upgrade packet `5` turns the candidate into the session's transport,
        // and the client sends its held-back packets right behind it, often in the same read.
        let candidate = matches!(self.conn_mut(conn), Some(ConnState::WebSocket(ws)) if ws.candidate);
        let result = match frame {
            WsIn::Ping(data) => {
                self.buf.clear();
                let _ = encode_pong(&data, &mut self.buf);
                self.send_buf(out, conn);
                return true;
            }
            WsIn::Close(code) => {
                if let Some(ConnState::WebSocket(ws)) = self.conn_mut(conn) {
                    let mut reply = bytes::BytesMut::new();
                    if ws.close.handle_peer_close(code, &mut reply) == PeerCloseOutcome::Replied {
                        out.send(conn, reply.freeze());
                    }
                }
                self.ws_gone(out, conn, key, candidate, false);
                return false;
            }
            WsIn::Text(text) => match self.session_mut(key) {
                Some(s) if candidate => {
                    let result = s.eio.handle_candidate_text(now, &text);
                    if s.eio.is_upgraded() {
                        self.on_upgraded(key);
                    }
                    result
                }
                Some(s) => s.eio.handle_ws_text(now, text),
                None => Err(roomcast_engine::Error::Misuse("session gone")),
            },
            WsIn::Binary(data) => match self.session_mut(key) {
                Some(s) if candidate => s.eio.handle_candidate_binary(now, &data),
                Some(s) => s.eio.handle_ws_binary(now, data),
                None => Err(roomcast_engine::Error::Misuse("session gone")),
            },
        };
        self.mark_dirty(key);
        match result {
            Ok(()) => true,
            Err(error) => {
                if error.is_peer_fault() {
                    self.stats.peer_errors += 1;
                }
                if let Some(ConnState::WebSocket(ws)) = self.conn_mut(conn) {
                    let mut frame = bytes::BytesMut::new();
                    ws.close.start_error_close(&error, &mut frame);
                    out.send(conn, frame.freeze());
                }
                self.close_conn(out, conn);
                false
            }
        }
    }

    /// The WebSocket ended (peer close frame, protocol error): tell the session, close the connection.
    fn ws_gone(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, candidate: bool, error: bool) {
        let now = self.now;
        if let Some(s) = self.session_mut(key) {
            if candidate {
                s.eio.handle_candidate_closed(now);
                s.candidate = None;
            } else if s.ws == Some(conn) {
                if error {
                    s.eio.handle_transport_error(now);
                } else {
                    let _ = s.eio.handle_ws_closed(now);
                }
                s.ws = None;
            }
        }
        self.mark_dirty(key);
        self.close_conn(out, conn);
    }

    /// The driver reports a connection gone: whatever it carried learns of it.
    pub(crate) fn on_closed(&mut self, conn: ConnId, cause: CloseCause) {
        let _ = cause;
        self.peers.remove(&conn.slot());
        let now = self.now;
        match self.take_conn(conn) {
            Some(ConnState::Http(http)) => {
                if let Some(Pending::Parked(key)) = http.pending {
                    if let Some(s) = self.session_mut(key) {
                        if s.get.as_ref().is_some_and(|get| get.to == Requester::Local(conn)) {
                            s.get = None;
                            let _ = s.eio.handle_poll_aborted(now);
                        }
                    }
                    self.mark_dirty(key);
                }
                if let Some(PostBody { dest: BodyDest::Session(key), .. }) = http.body {
                    if let Some(s) = self.session_mut(key) {
                        s.eio.handle_poll_post_aborted(now);
                    }
                    self.mark_dirty(key);
                }
                self.on_http_conn_closed(conn, &http);
            }
            Some(ConnState::WebSocket(ws)) => {
                if let Some(s) = self.session_mut(ws.session) {
                    if ws.candidate && s.candidate == Some(conn) {
                        s.eio.handle_candidate_closed(now);
                        s.candidate = None;
                    } else if s.ws == Some(conn) {
                        let _ = s.eio.handle_ws_closed(now);
                        s.ws = None;
                    }
                }
                self.mark_dirty(ws.session);
            }
            // A moving connection closed before its hand-over: its home shard never heard of it.
            Some(ConnState::Closing | ConnState::Moving(_)) | None => {}
        }
    }

    /// Queues a WebSocket close frame (code 1000 or the given one) and closes after flushing.
    pub(crate) fn close_ws(&mut self, out: &mut Outbox, conn: ConnId, code: u16, reason: &str) {
        if let Some(ConnState::WebSocket(ws)) = self.conn_mut(conn) {
            let mut frame = bytes::BytesMut::new();
            match ws.close.start_close(code, reason, &mut frame) {
                Ok(true) => {
                    out.send(conn, frame.freeze());
                }
                Ok(false) => {}
                Err(_) => {
                    frame.clear();
                    if encode_close(Some(code), "", &mut frame).is_ok() {
                        out.send(conn, frame.freeze());
                    }
                }
            }
        }
        self.close_conn(out, conn);
    }
}
