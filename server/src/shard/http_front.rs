//! The HTTP side of a connection: request heads routed to Engine.IO handshakes, long-polls, POSTs and
//! WebSocket upgrades. Control path (allocates per request).
//!
//! A session lives on one shard, its home, named by its sid ([`EngineSid::shard`]); the kernel spreads
//! connections over shards (`SO_REUSEPORT`), so a client's requests land anywhere. A request without a
//! sid (a handshake) or whose sid names this shard is served here. One whose sid names another shard
//! goes there ([`super::route`]): a polling GET or POST is forwarded and served at home by the same
//! [`ShardCore::serve_request`] as a local one, its response bytes coming back to be written here; a
//! WebSocket upgrade moves the connection itself home. A sid naming this shard but no live session,
//! or no shard of this server, gets 400 `{"code":1,"message":"Session ID unknown"}`.
//!
//! Every response leaves through [`ShardCore::reply`], which writes it on a local connection or sends
//! it to the shard holding the connection, so local and forwarded requests share one code path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use roomcast_engine::eio::{self, EioSession};
use roomcast_engine::http::{
    self, query_pairs, write_empty, write_engine_error, write_head_error, write_polling, write_post_ok,
    write_preflight, write_switching_protocols, write_upgrade_rejection, ConnectionMode, EngineErrorCode,
    EngineQuery, HeadProgress, RequestHead, RequestHeadParser, ResponseContext, Route, Status,
};
use roomcast_engine::ids::EngineSid;
use roomcast_engine::sio::AttachmentReassembler;
use roomcast_engine::ws::{CloseHandshake, FrameDecoder};

use super::core::{
    BodyDest, ConnState, HttpConn, ParkedGet, Pending, PostBody, Session, SessionKey, ShardCore, WsConn,
};
use super::route::Requester;
use super::shared::EndpointId;
use crate::api::handshake::Handshake;
use crate::driver::{ConnId, Outbox};

impl ShardCore {
    pub(crate) fn on_accepted(&mut self, conn: ConnId, peer: SocketAddr) {
        let parser = RequestHeadParser::new(self.shared.head_limits);
        self.set_conn(conn, ConnState::Http(Box::new(HttpConn { parser, body: None, pending: None })));
        self.peers.insert(conn.slot(), peer);
    }

    /// Bytes arrived on a connection in HTTP mode.
    pub(crate) fn on_http_data(&mut self, out: &mut Outbox, conn: ConnId, mut input: &[u8]) {
        while !input.is_empty() {
            let Some(ConnState::Http(http)) = self.conn_mut(conn) else {
                // The connection stopped being HTTP mid-buffer (an upgrade, a move to another shard):
                // the rest of the bytes are for what it became.
                self.on_data(out, conn, input);
                return;
            };
            if let Some(body) = http.body.as_mut() {
                let (chunk, rest) = input.split_at_checked(body.remaining).unwrap_or((input, &[]));
                body.buf.extend_from_slice(chunk);
                body.remaining -= chunk.len();
                input = rest;
                if body.remaining == 0 {
                    if let Some(body) = http.body.take() {
                        self.finish_body(out, conn, body);
                    }
                }
                continue;
            }
            if http.pending.is_some() {
                // Pipelining behind a pending response is not something clients do; refuse it.
                self.close_conn(out, conn);
                return;
            }
            match http.parser.handle_bytes(input) {
                Ok(HeadProgress::Incomplete) => return,
                Ok(HeadProgress::Complete { head, consumed }) => {
                    input = input.get(consumed..).unwrap_or_default();
                    self.on_request(out, conn, head);
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

    /// A request body is complete: the POST goes to its session, here or at its home shard.
    fn finish_body(&mut self, out: &mut Outbox, conn: ConnId, body: PostBody) {
        let PostBody { dest, head, buf, .. } = body;
        match dest {
            BodyDest::Session(key) => self.finish_post(out, Requester::Local(conn), key, &head, buf.freeze()),
            BodyDest::Home(home, sid) => self.send_forward(conn, home, sid, head, Some(buf.freeze())),
        }
    }

    /// Routes one request head that arrived on a local connection: served here, forwarded to the
    /// session's home shard, or (an upgrade) moved there with its connection.
    pub(crate) fn on_request(&mut self, out: &mut Outbox, conn: ConnId, head: RequestHead) {
        let elsewhere = self.home_elsewhere(&head, &EngineQuery::parse(head.raw_query()));
        match elsewhere {
            Some((home, _)) if head.upgrade_websocket() => self.move_to_home(out, conn, home, head),
            Some((home, sid)) => self.forward_request(conn, home, sid, head),
            None => self.serve_request(out, Requester::Local(conn), head, None),
        }
    }

    /// Serves one request for this shard, local or forwarded; the response goes to `to`. `body` is the
    /// complete body when it was read before (forwarded requests); `None` means none was read yet, so a
    /// local POST reads it next and any other request announcing a body closes its connection after
    /// the response (the unread body would be taken for the next request).
    pub(crate) fn serve_request(
        &mut self,
        out: &mut Outbox,
        to: Requester,
        head: RequestHead,
        body: Option<Bytes>,
    ) {
        let query = EngineQuery::parse(head.raw_query());
        self.apply_due_deadlines(&query);
        let shutting_down = self.shared.is_shutting_down();
        let shared = self.shared.clone();
        // A target outside every endpoint is classified by the Socket.IO one, which answers 404.
        let endpoint = shared.endpoint_for(head.target()).unwrap_or(EndpointId::SOCKET_IO);
        let Some(entry) = shared.endpoint(endpoint) else {
            return self.reply(out, to, Bytes::new(), true); // unreachable: the Socket.IO one always exists
        };
        let route = entry.endpoint.classify(
            &head,
            &query,
            |sid| {
                let key = self.sessions_by_sid.get(&sid)?;
                // A closed session is only waiting to be dropped at the end of the turn. A session of
                // another endpoint is unknown here, as with the reference's separate servers.
                let session = self.session(*key).filter(|s| !s.eio.is_closed() && s.endpoint == endpoint)?;
                Some(match session.eio.transport() {
                    eio::Transport::Polling => http::Transport::Polling,
                    eio::Transport::WebSocket => http::Transport::WebSocket,
                })
            },
            |_| !shutting_down,
        );
        let b64 = query.b64;
        let mut ctx = ResponseContext::for_request(&head, &shared.cors);
        if body.is_none() && head.content_length().unwrap_or(0) > 0 {
            ctx = ctx.closing(); // unless a POST to a session reads it (`begin_post` has its own context)
        }
        let keep = ctx.connection == ConnectionMode::KeepAlive;
        let local = match to {
            Requester::Local(conn) => Some(conn),
            Requester::Remote(_) => None,
        };
        self.buf.clear();
        match route {
            Route::NotFound if head.method() == http::Method::Get && head.path() == "/metrics" => {
                let body = super::metrics::render(&shared.gauges);
                write_polling(&mut self.buf, &ResponseContext::plain(ctx.connection), body.as_bytes())
            }
            Route::NotFound => {
                write_empty(&mut self.buf, &ResponseContext::plain(ctx.connection), Status::NotFound)
            }
            Route::Preflight => write_preflight(&mut self.buf, &ctx),
            Route::UnsupportedMethod => write_empty(&mut self.buf, &ctx, Status::InternalServerError),
            Route::Reject(code) => write_engine_error(&mut self.buf, &ctx, code, None),
            Route::RejectUpgrade(rejection) => {
                write_upgrade_rejection(&mut self.buf, rejection);
                return self.reply_buf(out, to, true);
            }
            Route::UpgradeThenClose => {
                self.write_101(&head);
                return self.reply_buf(out, to, true);
            }
            Route::Handshake(transport) => match local {
                Some(conn) => return self.handshake(out, conn, endpoint, head, transport, b64),
                // Unreachable: only requests naming a session are forwarded.
                None => write_engine_error(&mut self.buf, &ctx.closing(), EngineErrorCode::BadRequest, None),
            },
            Route::Poll(sid) => match self.sessions_by_sid.get(&sid).copied() {
                Some(key) => return self.poll(out, to, key, head),
                None => write_engine_error(&mut self.buf, &ctx, EngineErrorCode::UnknownSid, None),
            },
            Route::Send(sid) => match self.sessions_by_sid.get(&sid).copied() {
                Some(key) => return self.begin_post(out, to, key, head, body),
                None => write_engine_error(&mut self.buf, &ctx, EngineErrorCode::UnknownSid, None),
            },
            Route::Upgrade(sid) => match (self.sessions_by_sid.get(&sid).copied(), local) {
                (Some(key), Some(conn)) => return self.upgrade(out, conn, key, head),
                (None, _) => {
                    let rejection = http::UpgradeRejection::Engine(EngineErrorCode::UnknownSid);
                    write_upgrade_rejection(&mut self.buf, rejection);
                    return self.reply_buf(out, to, true);
                }
                // Unreachable: upgrades move their connection instead of being forwarded.
                (Some(_), None) => {
                    let rejection = http::UpgradeRejection::Engine(EngineErrorCode::BadRequest);
                    write_upgrade_rejection(&mut self.buf, rejection);
                    return self.reply_buf(out, to, true);
                }
            },
        }
        self.reply_buf(out, to, !keep);
    }

    /// Applies the due deadlines of the session a request names before the request reads its state. A
    /// turn handles I/O and messages before timers, so on a loaded shard a request arriving just after a
    /// deadline (an overdue pong) would otherwise still find the session open. Cost: a sid parse and a
    /// map lookup.
    fn apply_due_deadlines(&mut self, query: &EngineQuery<'_>) {
        let Some(sid) = query.sid.as_deref().and_then(EngineSid::parse) else { return };
        let Some(key) = self.sessions_by_sid.get(&sid).copied() else { return };
        let now = self.now;
        let Some(session) = self.session_mut(key) else { return };
        if session.eio.poll_timeout().is_some_and(|deadline| deadline <= now) {
            session.eio.handle_timeout(now);
            self.mark_dirty(key);
        }
    }

    /// Sends the response built in the scratch buffer to `to` (see [`ShardCore::reply`]).
    fn reply_buf(&mut self, out: &mut Outbox, to: Requester, close: bool) {
        let bytes = self.buf.split().freeze();
        self.reply(out, to, bytes, close);
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
        endpoint: EndpointId,
        head: RequestHead,
        transport: http::Transport,
        b64: bool,
    ) {
        let Ok(sid) = self.ids.engine_sid(self.id) else {
            self.close_conn(out, conn);
            return;
        };
        let eio_transport = match transport {
            http::Transport::Polling => eio::Transport::Polling,
            http::Transport::WebSocket => eio::Transport::WebSocket,
        };
        // Only Socket.IO clients must join a namespace in time.
        let connect_deadline =
            (endpoint == EndpointId::SOCKET_IO).then(|| self.now + self.shared.config.connect_timeout);
        let session = Session {
            generation: 0,
            eio: EioSession::new(sid, eio_transport, self.shared.eio.clone(), self.now),
            endpoint,
            ws: None,
            candidate: None,
            get: None,
            b64,
            handshake: Arc::new(self.handshake_info(conn, &head)),
            sockets: Vec::new(),
            reassembler: AttachmentReassembler::new(),
            connect_deadline,
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
            }
            http::Transport::Polling => self.poll(out, Requester::Local(conn), key, head),
        }
        self.on_engine_open(out, key);
    }

    fn handshake_info(&self, conn: ConnId, head: &RequestHead) -> Handshake {
        let values: Vec<(&str, std::borrow::Cow<'_, str>)> =
            head.headers().map(|(n, v)| (n, String::from_utf8_lossy(v))).collect();
        Handshake::new(
            values.iter().map(|(n, v)| (*n, v.as_ref())),
            query_pairs(head.raw_query()),
            head.target(),
            self.peers.get(&conn.slot()).copied().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            SystemTime::now(),
            head.origin().is_some(),
        )
    }

    pub(crate) fn become_websocket(&mut self, conn: ConnId, session: SessionKey, candidate: bool) {
        let decoder = FrameDecoder::new(self.shared.config.max_http_buffer_size);
        let ws = WsConn { decoder, close: CloseHandshake::default(), session, candidate };
        self.set_conn(conn, ConnState::WebSocket(Box::new(ws)));
    }

    /// A long-poll GET: parked on the session until [`ShardCore::answer_poll`] has a payload for it, or
    /// refused (400, connection closed) when the session cannot take it (an overlapping GET).
    fn poll(&mut self, out: &mut Outbox, to: Requester, key: SessionKey, head: RequestHead) {
        let now = self.now;
        let Some(session) = self.session_mut(key) else { return };
        match session.eio.handle_poll_get(now) {
            Ok(()) => {
                session.get = Some(ParkedGet { to, head: Box::new(head) });
                if let Requester::Local(conn) = to {
                    if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
                        http.pending = Some(Pending::Parked(key));
                    }
                }
                self.mark_dirty(key);
            }
            Err(_) => {
                let ctx = ResponseContext::for_request(&head, &self.shared.cors).closing();
                self.buf.clear();
                write_empty(&mut self.buf, &ctx, Status::BadRequest);
                self.reply_buf(out, to, true);
                self.mark_dirty(key);
            }
        }
    }

    /// Answers a parked GET with the session's queued payload, if it has one, wherever the GET's
    /// connection is.
    pub(crate) fn answer_poll(&mut self, out: &mut Outbox, key: SessionKey) {
        let Some(session) = self.session_mut(key) else { return };
        if session.get.is_none() {
            return;
        }
        let mut body = BytesMut::new();
        if !session.eio.poll_poll_response(&mut body) {
            return;
        }
        let Some(get) = session.get.take() else { return };
        if session.eio.is_closed() {
            // The answer finished a closing session (`6\x1e1`): its `Closed` event is still to be
            // pumped, which drops it.
            self.mark_dirty(key);
        }
        if let Requester::Local(conn) = get.to {
            if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
                http.pending = None;
            }
        }
        let ctx = ResponseContext::for_request(&get.head, &self.shared.cors);
        let keep = get.head.connection() == ConnectionMode::KeepAlive;
        let mut response = BytesMut::with_capacity(body.len() + 256);
        write_polling(&mut response, &ctx, &body);
        self.reply(out, get.to, response.freeze(), !keep);
    }

    /// A POST to a session of this shard: refused (413, 400), or its body read (a local connection
    /// whose body is still to come) or handled at once (a body already read, or none).
    fn begin_post(
        &mut self,
        out: &mut Outbox,
        to: Requester,
        key: SessionKey,
        head: RequestHead,
        body: Option<Bytes>,
    ) {
        let shared = self.shared.clone();
        let ctx = ResponseContext::for_request(&head, &shared.cors);
        let length = head.content_length().unwrap_or(0);
        let max = self.shared.config.max_http_buffer_size as u64;
        let binary_body = head.content_type().is_some_and(|t| t.starts_with(b"application/octet-stream"));
        let now = self.now;
        if length > max {
            self.buf.clear();
            write_empty(&mut self.buf, &ctx.closing(), Status::PayloadTooLarge);
            return self.reply_buf(out, to, true);
        }
        let Some(session) = self.session_mut(key) else { return };
        let started = session.eio.handle_poll_post_begin(now);
        if started.is_err() || binary_body {
            if binary_body {
                // As the reference ("invalid content"): closed now, not after one more GET.
                session.eio.handle_transport_error(now);
            }
            self.buf.clear();
            write_empty(&mut self.buf, &ctx.closing(), Status::BadRequest);
            self.reply_buf(out, to, true);
            self.mark_dirty(key);
            return;
        }
        match (to, body) {
            (_, Some(body)) => self.finish_post(out, to, key, &head, body),
            (Requester::Local(conn), None) if length > 0 => {
                if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
                    let remaining = length as usize;
                    let buf = BytesMut::with_capacity(remaining);
                    http.body = Some(PostBody { dest: BodyDest::Session(key), head, remaining, buf });
                }
            }
            (_, None) => self.finish_post(out, to, key, &head, Bytes::new()),
        }
    }

    fn finish_post(
        &mut self,
        out: &mut Outbox,
        to: Requester,
        key: SessionKey,
        head: &RequestHead,
        body: Bytes,
    ) {
        let now = self.now;
        let result = match self.session_mut(key) {
            Some(session) => {
                let open_without_get = !session.eio.is_closed() && session.get.is_none();
                let result = session.eio.handle_poll_post(now, body);
                // Only a close packet ends a session in a POST that succeeds.
                if open_without_get && result.is_ok() && session.eio.is_closed() {
                    let sid = *session.eio.sid();
                    self.note_client_close(sid);
                }
                result
            }
            None => Err(roomcast_engine::Error::Misuse("session gone")),
        };
        let shared = self.shared.clone();
        let ctx = ResponseContext::for_request(head, &shared.cors);
        self.buf.clear();
        match result {
            Ok(()) => write_post_ok(&mut self.buf, &ctx),
            Err(_) => write_empty(&mut self.buf, &ctx.closing(), Status::BadRequest),
        }
        let keep = result.is_ok() && head.connection() == ConnectionMode::KeepAlive;
        self.reply_buf(out, to, !keep);
        self.mark_dirty(key);
    }

    /// An upgrade request on a local connection for a session of this shard: 101, then the connection
    /// is the session's upgrade candidate (or closed at once if the session refuses the upgrade).
    fn upgrade(&mut self, out: &mut Outbox, conn: ConnId, key: SessionKey, head: RequestHead) {
        let now = self.now;
        let accepted =
            self.session_mut(key).map(|s| s.eio.handle_upgrade_request(now).is_ok()).unwrap_or(false);
        self.buf.clear();
        self.write_101(&head);
        self.send_buf(out, conn);
        if !accepted {
            self.close_conn(out, conn);
            return;
        }
        self.become_websocket(conn, key, true);
        if let Some(s) = self.session_mut(key) {
            s.candidate = Some(conn);
        }
        self.mark_dirty(key);
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
