//! The HTTP side of a connection: request heads routed to Engine.IO handshakes, long-polls, POSTs and
//! WebSocket upgrades. Control path (allocates per request).
//!
//! Polling requests are served by the shard that owns the session. Until cross-shard routing lands
//! (the polling issue), a polling request that reaches another shard is answered "Session ID unknown",
//! which the client treats as a transport error and reconnects; with one shard everything works.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::BytesMut;
use roomcast_engine::eio::{self, EioSession};
use roomcast_engine::http::{
    self, query_pairs, write_empty, write_engine_error, write_head_error, write_polling, write_post_ok,
    write_preflight, write_switching_protocols, write_upgrade_rejection, ConnectionMode, EngineErrorCode,
    EngineQuery, HeadProgress, RequestHead, RequestHeadParser, ResponseContext, Route, Status,
};
use roomcast_engine::sio::AttachmentReassembler;
use roomcast_engine::ws::{CloseHandshake, FrameDecoder};

use super::core::{ConnState, HttpConn, PostBody, Session, SessionKey, ShardCore, WsConn};
use crate::api::handshake::Handshake;
use crate::driver::{ConnId, Outbox};

impl ShardCore {
    pub(crate) fn on_accepted(&mut self, conn: ConnId, peer: SocketAddr) {
        let _ = peer;
        let parser = RequestHeadParser::new(self.shared.head_limits);
        self.set_conn(conn, ConnState::Http(Box::new(HttpConn { parser, body: None, parked: None })));
        self.peers.insert(conn.slot(), peer);
    }

    /// Bytes arrived on a connection in HTTP mode.
    pub(crate) fn on_http_data(&mut self, out: &mut Outbox, conn: ConnId, mut input: &[u8]) {
        while !input.is_empty() {
            let Some(ConnState::Http(http)) = self.conn_mut(conn) else { return };
            if let Some(body) = http.body.as_mut() {
                let take = body.remaining.min(input.len());
                body.buf.extend_from_slice(&input[..take]);
                body.remaining -= take;
                input = &input[take..];
                if body.remaining == 0 {
                    if let Some(body) = http.body.take() {
                        self.finish_post(out, conn, body);
                    }
                }
                continue;
            }
            if http.parked.is_some() {
                // Pipelining behind a parked long-poll is not something clients do; refuse it.
                self.close_conn(out, conn);
                return;
            }
            match http.parser.handle_bytes(input) {
                Ok(HeadProgress::Incomplete) => return,
                Ok(HeadProgress::Complete { head, consumed }) => {
                    input = input.get(consumed..).unwrap_or_default();
                    if !self.on_request(out, conn, head) {
                        return;
                    }
                }
                Err(error) => {
                    self.stats.peer_errors += 1;
                    self.buf.clear();
                    write_head_error(&mut self.buf, &error);
                    self.send_buf(out, conn);
                    self.close_conn(out, conn);
                    return;
                }
            }
        }
    }

    /// Routes one request head. Returns whether the connection stays in HTTP mode for more requests.
    fn on_request(&mut self, out: &mut Outbox, conn: ConnId, head: RequestHead) -> bool {
        let query = EngineQuery::parse(head.raw_query());
        let shutting_down = self.shared.is_shutting_down();
        let route = self.shared.endpoint.classify(
            &head,
            &query,
            |sid| {
                let key = self.sessions_by_sid.get(&sid)?;
                let session = self.session(*key)?;
                Some(match session.eio.transport() {
                    eio::Transport::Polling => http::Transport::Polling,
                    eio::Transport::WebSocket => http::Transport::WebSocket,
                })
            },
            |_| !shutting_down,
        );
        let b64 = query.b64;
        let shared = self.shared.clone();
        let ctx = ResponseContext::for_request(&head, &shared.cors);
        let keep = head.connection() == ConnectionMode::KeepAlive;
        self.buf.clear();
        match route {
            Route::NotFound => {
                write_empty(&mut self.buf, &ResponseContext::plain(head.connection()), Status::NotFound)
            }
            Route::Preflight => write_preflight(&mut self.buf, &ctx),
            Route::UnsupportedMethod => write_empty(&mut self.buf, &ctx, Status::InternalServerError),
            Route::Reject(code) => write_engine_error(&mut self.buf, &ctx, code, None),
            Route::RejectUpgrade(rejection) => {
                write_upgrade_rejection(&mut self.buf, rejection);
                self.send_buf(out, conn);
                self.close_conn(out, conn);
                return false;
            }
            Route::UpgradeThenClose => {
                self.write_101(&head);
                self.send_buf(out, conn);
                self.close_conn(out, conn);
                return false;
            }
            Route::Handshake(transport) => return self.handshake(out, conn, head, transport, b64),
            Route::Poll(sid) => {
                let Some(key) = self.sessions_by_sid.get(&sid).copied() else {
                    write_engine_error(&mut self.buf, &ctx, EngineErrorCode::UnknownSid, None);
                    return self.finish_response(out, conn, keep);
                };
                return self.poll(out, conn, key, head);
            }
            Route::Send(sid) => {
                let Some(key) = self.sessions_by_sid.get(&sid).copied() else {
                    write_engine_error(&mut self.buf, &ctx, EngineErrorCode::UnknownSid, None);
                    return self.finish_response(out, conn, keep);
                };
                return self.begin_post(out, conn, key, head);
            }
            Route::Upgrade(sid) => {
                let Some(key) = self.sessions_by_sid.get(&sid).copied() else {
                    write_upgrade_rejection(
                        &mut self.buf,
                        http::UpgradeRejection::Engine(EngineErrorCode::UnknownSid),
                    );
                    self.send_buf(out, conn);
                    self.close_conn(out, conn);
                    return false;
                };
                return self.upgrade(out, conn, key, head);
            }
        }
        self.finish_response(out, conn, keep)
    }

    fn finish_response(&mut self, out: &mut Outbox, conn: ConnId, keep_alive: bool) -> bool {
        self.send_buf(out, conn);
        if !keep_alive {
            self.close_conn(out, conn);
        }
        keep_alive
    }

    fn write_101(&mut self, head: &RequestHead) {
        let key = head.sec_websocket_key().unwrap_or_default();
        let protocol = http::selected_websocket_protocol(head);
        let cors = self.shared.cors.headers_for(head);
        write_switching_protocols(&mut self.buf, key, protocol, &cors);
    }

    fn handshake(
        &mut self,
        out: &mut Outbox,
        conn: ConnId,
        head: RequestHead,
        transport: http::Transport,
        b64: bool,
    ) -> bool {
        let Ok(sid) = self.ids.engine_sid(self.id) else {
            self.close_conn(out, conn);
            return false;
        };
        let eio_transport = match transport {
            http::Transport::Polling => eio::Transport::Polling,
            http::Transport::WebSocket => eio::Transport::WebSocket,
        };
        let session = Session {
            generation: 0,
            eio: EioSession::new(sid, eio_transport, self.shared.eio.clone(), self.now),
            ws: None,
            candidate: None,
            get: None,
            b64,
            handshake: Arc::new(self.handshake_info(conn, &head)),
            sockets: Vec::new(),
            reassembler: AttachmentReassembler::new(),
            connect_deadline: Some(self.now + self.shared.config.connect_timeout),
            armed: None,
            dirty: false,
        };
        let key = self.insert_session(session);
        match transport {
            http::Transport::WebSocket => {
                self.write_101(&head);
                self.send_buf(out, conn);
                self.become_websocket(conn, key, false);
                if let Some(s) = self.session_mut(key) {
                    s.ws = Some(conn);
                }
                self.mark_dirty(key);
                false
            }
            http::Transport::Polling => self.poll(out, conn, key, head),
        }
    }

    fn handshake_info(&self, conn: ConnId, head: &RequestHead) -> Handshake {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Handshake {
            headers: head.headers().map(|(n, v)| (n.to_ascii_lowercase(), text(v))).collect(),
            query: query_pairs(head.raw_query()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            url: head.target().to_owned(),
            address: self.peers.get(&conn.slot()).copied().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            time: SystemTime::now(),
            xdomain: head.origin().is_some(),
        }
    }

    pub(crate) fn become_websocket(&mut self, conn: ConnId, session: SessionKey, candidate: bool) {
        let decoder = FrameDecoder::new(self.shared.config.max_http_buffer_size);
        let ws = WsConn { decoder, close: CloseHandshake::default(), session, candidate };
        self.set_conn(conn, ConnState::WebSocket(Box::new(ws)));
    }

    fn poll(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, head: RequestHead) -> bool {
        let now = self.now;
        let Some(session) = self.session_mut(key) else { return false };
        match session.eio.handle_poll_get(now) {
            Ok(()) => {
                session.get = Some(conn);
                if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
                    http.parked = Some((key, head));
                }
                self.mark_dirty(key);
                true
            }
            Err(_) => {
                let ctx = ResponseContext::for_request(&head, &self.shared.cors).closing();
                self.buf.clear();
                write_empty(&mut self.buf, &ctx, Status::BadRequest);
                self.send_buf(out, conn);
                self.close_conn(out, conn);
                self.mark_dirty(key);
                false
            }
        }
    }

    /// Answers a parked GET with the session's queued payload, if it has one.
    pub(crate) fn answer_poll(&mut self, out: &mut Outbox, key: SessionKey) {
        let Some(session) = self.session_mut(key) else { return };
        let Some(conn) = session.get else { return };
        let mut body = BytesMut::new();
        if !session.eio.poll_poll_response(&mut body) {
            return;
        }
        session.get = None;
        let Some(ConnState::Http(http)) = self.conn_mut(conn) else { return };
        let Some((_, head)) = http.parked.take() else { return };
        let ctx = ResponseContext::for_request(&head, &self.shared.cors);
        let keep = head.connection() == ConnectionMode::KeepAlive;
        let mut response = BytesMut::with_capacity(body.len() + 256);
        write_polling(&mut response, &ctx, &body);
        out.send(conn, response.freeze());
        if !keep {
            self.close_conn(out, conn);
        }
    }

    fn begin_post(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, head: RequestHead) -> bool {
        let shared = self.shared.clone();
        let ctx = ResponseContext::for_request(&head, &shared.cors);
        let length = head.content_length().unwrap_or(0);
        let max = self.shared.config.max_http_buffer_size as u64;
        let binary_body = head.content_type().is_some_and(|t| t.starts_with(b"application/octet-stream"));
        let now = self.now;
        if length > max {
            self.buf.clear();
            write_empty(&mut self.buf, &ctx.closing(), Status::PayloadTooLarge);
            self.send_buf(out, conn);
            self.close_conn(out, conn);
            return false;
        }
        let Some(session) = self.session_mut(key) else { return false };
        let started = session.eio.handle_poll_post_begin(now);
        if started.is_err() || binary_body {
            if binary_body {
                session.eio.close(now, eio::CloseReason::TransportError);
            }
            self.buf.clear();
            write_empty(&mut self.buf, &ctx.closing(), Status::BadRequest);
            self.send_buf(out, conn);
            self.close_conn(out, conn);
            self.mark_dirty(key);
            return false;
        }
        let body = PostBody {
            session: key,
            head,
            remaining: length as usize,
            buf: BytesMut::with_capacity(length as usize),
        };
        if length == 0 {
            self.finish_post(out, conn, body);
        } else if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
            http.body = Some(body);
        }
        true
    }

    fn finish_post(&mut self, out: &mut Outbox, conn: ConnId, body: PostBody) {
        let now = self.now;
        let key = body.session;
        let ctx_head = body.head;
        let result = match self.session_mut(key) {
            Some(session) => session.eio.handle_poll_post(now, body.buf.freeze()),
            None => Err(roomcast_engine::Error::Misuse("session gone")),
        };
        let shared = self.shared.clone();
        let ctx = ResponseContext::for_request(&ctx_head, &shared.cors);
        self.buf.clear();
        match result {
            Ok(()) => write_post_ok(&mut self.buf, &ctx),
            Err(_) => write_empty(&mut self.buf, &ctx.closing(), Status::BadRequest),
        }
        let keep = result.is_ok() && ctx_head.connection() == ConnectionMode::KeepAlive;
        self.finish_response(out, conn, keep);
        self.mark_dirty(key);
    }

    fn upgrade(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, head: RequestHead) -> bool {
        let now = self.now;
        let accepted =
            self.session_mut(key).map(|s| s.eio.handle_upgrade_request(now).is_ok()).unwrap_or(false);
        self.buf.clear();
        self.write_101(&head);
        self.send_buf(out, conn);
        if !accepted {
            self.close_conn(out, conn);
            return false;
        }
        self.become_websocket(conn, key, true);
        if let Some(s) = self.session_mut(key) {
            s.candidate = Some(conn);
        }
        self.mark_dirty(key);
        false
    }

    /// Sends the scratch buffer's bytes on `conn` (one allocation for the response).
    pub(crate) fn send_buf(&mut self, out: &mut Outbox, conn: ConnId) {
        if !self.buf.is_empty() {
            out.send(conn, self.buf.split().freeze());
        }
    }

    /// Closes a connection after its queued bytes; later input on it is ignored.
    pub(crate) fn close_conn(&mut self, out: &mut Outbox, conn: ConnId) {
        if let Some(state) = self.conn_mut(conn) {
            *state = ConnState::Closing;
        }
        out.close_after_flush(conn);
    }
}
