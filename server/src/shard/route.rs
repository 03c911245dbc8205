//! Session routing across shards: every request for an Engine.IO session is served by the session's
//! home shard (the one [`EngineSid::shard`] names), whichever shard the kernel gave the connection to.
//!
//! Two mechanisms, chosen by what the connection will carry (`docs/design/why-session-routing.md`):
//! - **Polling requests are forwarded.** The front shard (the one holding the connection) reads the head
//!   and, for a bounded body, the whole body, then sends them to the home shard ([`ShardMsg::Forward`]).
//!   The home shard serves the request exactly as a local one ([`ShardCore::serve_request`]): a GET may
//!   stay parked there. Whenever the response is ready, its bytes come back ([`ShardMsg::Response`]) and
//!   the front shard writes them. One request per connection is in flight; a connection that closes
//!   while its GET is parked tells the home shard ([`ShardMsg::PollAborted`]).
//! - **A WebSocket upgrade moves the connection.** The front shard detaches the socket from its driver
//!   and sends it, with the parsed head, to the home shard ([`ShardMsg::Adopt`]), which adopts it into its
//!   own driver and serves the upgrade as if it had accepted the connection. From then on every byte of
//!   the session, broadcasts included, is on one shard.
//!
//! Control path: a forwarded request costs one allocation for the message plus the body it carries; a
//! moved connection costs a detach, a message and an adopt. No shard ever waits for another.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use roomcast_engine::http::{
    write_polling, ConnectionMode, EngineQuery, Method, RequestHead, ResponseContext,
};
use roomcast_engine::ids::{EngineSid, ShardId};

use super::core::{BodyDest, ConnState, HttpConn, ParkedGet, Pending, PostBody, ShardCore};
use super::shared::ShardMsg;
use crate::driver::{ConnId, Driver, Outbox};

/// Bytes a moving connection may receive between its upgrade request and the hand-over. A WebSocket
/// client sends nothing before the 101 (RFC 6455 §4.1), so this only bounds a misbehaving peer.
const MAX_MOVING_LEFTOVER: usize = 64 * 1024;

/// A forwarded GET the front received at most this long after its client closed the session (by a POST
/// `1` served at home) is taken as sent together with that close. Two requests a client sends at once on
/// two connections are read by two shard threads at instants that differ by scheduling noise: well
/// under a millisecond when idle, tens of milliseconds on an overloaded machine. A client never sends a
/// GET after its own close, so the tolerance only decides races.
const CONCURRENT_WITH_CLOSE: Duration = Duration::from_millis(100);
/// How long a client close is remembered: the tolerance plus the time a forwarded GET may wait in the
/// home shard's inbox.
const CLIENT_CLOSE_MEMORY: Duration = Duration::from_secs(1);
/// At most this many client closes are remembered (the oldest are forgotten first): bounded memory
/// even under a storm of closes, at 40 bytes each.
const MAX_CLIENT_CLOSES: usize = 4096;

/// A connection on another shard of this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RemoteConn {
    pub shard: ShardId,
    pub conn: ConnId,
}

/// Where the response to a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requester {
    /// A connection of this shard: written on it.
    Local(ConnId),
    /// A connection of another shard, which forwarded the request: sent back to that shard.
    Remote(RemoteConn),
}

/// A polling request on its way to the home shard of its session.
#[derive(Debug)]
pub(crate) struct ForwardedRequest {
    pub from: RemoteConn,
    /// When the front shard had the complete request: its place in arrival order at the edge.
    pub received: Instant,
    pub head: RequestHead,
    /// The complete body; `None` when the request announced none, or more than `maxHttpBufferSize` (it
    /// was not read, and the response closes the connection).
    pub body: Option<Bytes>,
}

/// A connection on its way to the home shard of the session it asks to upgrade.
#[derive(Debug)]
pub(crate) struct Adoption {
    /// The socket, still open, no longer registered with any driver.
    pub fd: OwnedFd,
    pub peer: SocketAddr,
    /// The upgrade request, already parsed.
    pub head: RequestHead,
    /// Bytes that arrived after the head, to be read before the socket's next bytes.
    pub leftover: Vec<u8>,
}

/// A connection whose driver is detaching it, to move to `home`.
#[derive(Debug)]
pub(crate) struct Moving {
    pub home: ShardId,
    pub head: RequestHead,
    pub leftover: Vec<u8>,
}

/// A request this shard forwarded and whose response it waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarded {
    pub home: ShardId,
    pub sid: EngineSid,
    /// A GET (which may stay parked at home), rather than a POST (answered at once).
    pub get: bool,
}

impl ShardCore {
    /// The other shard of this server that owns the session `query` names, if any. A sid naming this
    /// shard, no shard of this server, or nothing valid is served here (and answered "Session ID
    /// unknown" if no session has it).
    pub(crate) fn home_elsewhere(
        &self,
        head: &RequestHead,
        query: &EngineQuery<'_>,
    ) -> Option<(ShardId, EngineSid)> {
        self.shared.endpoint_for(head.target())?;
        let sid = EngineSid::parse(query.sid.as_deref()?)?;
        let home = sid.shard();
        (home != self.id && usize::from(home.0) < self.shared.shard_count()).then_some((home, sid))
    }

    /// Forwards a polling request whose session lives on `home`, after reading its body (if it has one
    /// no larger than `maxHttpBufferSize`).
    pub(crate) fn forward_request(&mut self, conn: ConnId, home: ShardId, sid: EngineSid, head: RequestHead) {
        let length = head.content_length().unwrap_or(0);
        let max = self.shared.config.max_http_buffer_size as u64;
        if length > 0 && length <= max {
            if let Some(ConnState::Http(http)) = self.conn_mut(conn) {
                let remaining = length as usize;
                let buf = BytesMut::with_capacity(remaining);
                http.body = Some(PostBody { dest: BodyDest::Home(home, sid), head, remaining, buf });
            }
            return;
        }
        self.send_forward(conn, home, sid, head, None);
    }

    /// Sends a complete request to `home`; the connection waits for the response.
    pub(crate) fn send_forward(
        &mut self,
        conn: ConnId,
        home: ShardId,
        sid: EngineSid,
        head: RequestHead,
        body: Option<Bytes>,
    ) {
        let get = head.method() == Method::Get;
        let Some(ConnState::Http(http)) = self.conn_mut(conn) else { return };
        http.pending = Some(Pending::Forwarded(Forwarded { home, sid, get }));
        self.stats.requests_forwarded += 1;
        let from = RemoteConn { shard: self.id, conn };
        let received = self.now;
        if let Some(inbox) = self.shared.inbox(home) {
            inbox.push(ShardMsg::Forward(Box::new(ForwardedRequest { from, received, head, body })));
        }
    }

    /// Home side: serves a forwarded request as a local one, answering to the shard that sent it.
    ///
    /// One exception undoes the hop's delay: a client closing over polling sends its POST `1` while its
    /// GET is pending, and a POST served here directly can overtake a GET forwarded at the same time.
    /// Such a GET ([`CONCURRENT_WITH_CLOSE`]) gets `6`, the answer it would have had parked, not
    /// "Session ID unknown"; any later GET gets the 400.
    pub(crate) fn on_forwarded_request(&mut self, out: &mut Outbox, request: ForwardedRequest) {
        let ForwardedRequest { from, received, head, body } = request;
        if head.method() == Method::Get && self.raced_a_client_close(&head, received) {
            let ctx = ResponseContext::for_request(&head, &self.shared.cors);
            let mut response = BytesMut::new();
            write_polling(&mut response, &ctx, b"6");
            let close = head.connection() != ConnectionMode::KeepAlive;
            self.reply(out, Requester::Remote(from), response.freeze(), close);
            return;
        }
        self.serve_request(out, Requester::Remote(from), head, body);
    }

    /// Remembers that the client closed session `sid` by a POST `1` while no GET was parked.
    pub(crate) fn note_client_close(&mut self, sid: EngineSid) {
        let now = self.now;
        self.forget_old_client_closes(now);
        if self.client_closes.len() == MAX_CLIENT_CLOSES {
            self.client_closes.pop_front();
        }
        self.client_closes.push_back((sid, now));
    }

    /// Whether a GET the front received at `received` for the session `head` names raced with its
    /// client's close (see [`ShardCore::on_forwarded_request`]). Forgets that close: only one GET can
    /// have been pending.
    fn raced_a_client_close(&mut self, head: &RequestHead, received: Instant) -> bool {
        self.forget_old_client_closes(self.now);
        if self.client_closes.is_empty() {
            return false; // the common case: no close in the last second
        }
        let query = EngineQuery::parse(head.raw_query());
        let Some(sid) = query.sid.as_deref().and_then(EngineSid::parse) else { return false };
        let raced =
            |at: &Instant| at.checked_add(CONCURRENT_WITH_CLOSE).is_some_and(|limit| received <= limit);
        let found = self.client_closes.iter().position(|(closed, at)| *closed == sid && raced(at));
        found.and_then(|at| self.client_closes.remove(at)).is_some()
    }

    fn forget_old_client_closes(&mut self, now: Instant) {
        while self
            .client_closes
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > CLIENT_CLOSE_MEMORY)
        {
            self.client_closes.pop_front();
        }
    }

    /// Front side: the response to a forwarded request. Ignored if the connection is gone (its id is
    /// stale) or waits for nothing.
    pub(crate) fn on_forwarded_response(
        &mut self,
        out: &mut Outbox,
        conn: ConnId,
        bytes: Bytes,
        close: bool,
    ) {
        let Some(ConnState::Http(http)) = self.conn_mut(conn) else { return };
        if !matches!(http.pending, Some(Pending::Forwarded(_))) {
            return;
        }
        http.pending = None;
        out.send(conn, bytes);
        if close || self.shared.is_shutting_down() {
            self.close_conn(out, conn);
        }
    }

    /// Front side: an HTTP connection closed; tell the home shard if that cancels a request it knows
    /// of (a parked GET) or one it should have seen (a POST whose body was still arriving).
    pub(crate) fn on_http_conn_closed(&mut self, conn: ConnId, http: &HttpConn) {
        if let Some(Pending::Forwarded(Forwarded { home, sid, get: true })) = http.pending {
            let from = RemoteConn { shard: self.id, conn };
            if let Some(inbox) = self.shared.inbox(home) {
                inbox.push(ShardMsg::PollAborted { sid, from });
            }
        }
        if let Some(PostBody { dest: BodyDest::Home(home, sid), head, .. }) = &http.body {
            if head.method() == Method::Post {
                if let Some(inbox) = self.shared.inbox(*home) {
                    inbox.push(ShardMsg::PostAborted { sid: *sid });
                }
            }
        }
    }

    /// Home side: the connection of a forwarded GET closed. Aborts the session's parked GET if it is
    /// still that one (not a later GET, nor one already answered).
    pub(crate) fn on_poll_aborted(&mut self, sid: EngineSid, from: RemoteConn) {
        let Some(key) = self.sessions_by_sid.get(&sid).copied() else { return };
        let now = self.now;
        let Some(session) = self.session_mut(key) else { return };
        if session.get.as_ref().is_some_and(|get| get.to == Requester::Remote(from)) {
            session.get = None;
            let _ = session.eio.handle_poll_aborted(now);
            self.mark_dirty(key);
        }
    }

    /// Home side: a POST for the session was cut off before its body was complete; on polling, the
    /// session closes as it would for a local POST ("data request connection closed prematurely").
    pub(crate) fn on_post_aborted(&mut self, sid: EngineSid) {
        let Some(key) = self.sessions_by_sid.get(&sid).copied() else { return };
        let now = self.now;
        let Some(session) = self.session_mut(key) else { return };
        if session.eio.transport() == roomcast_engine::eio::Transport::Polling {
            session.eio.handle_transport_error(now);
            self.mark_dirty(key);
        }
    }

    /// Gives up a parked GET without answering it (its session is gone): its connection closes.
    pub(crate) fn drop_parked_get(&mut self, out: &mut Outbox, get: ParkedGet) {
        self.reply(out, get.to, Bytes::new(), true);
    }

    /// Writes a response to whoever asked: on a local connection (closing it after the response if
    /// `close`), or back to the shard holding the connection. The one way out of every HTTP response.
    pub(crate) fn reply(&mut self, out: &mut Outbox, to: Requester, bytes: Bytes, close: bool) {
        match to {
            Requester::Local(conn) => {
                if !bytes.is_empty() {
                    out.send(conn, bytes);
                }
                if close || self.shared.is_shutting_down() {
                    self.close_conn(out, conn);
                }
            }
            Requester::Remote(RemoteConn { shard, conn }) => {
                if let Some(inbox) = self.shared.inbox(shard) {
                    inbox.push(ShardMsg::Response { conn, bytes, close });
                }
            }
        }
    }

    /// Front side: an upgrade request for a session of `home`; the connection goes there.
    pub(crate) fn move_to_home(&mut self, out: &mut Outbox, conn: ConnId, home: ShardId, head: RequestHead) {
        if !out.detach(conn) {
            self.close_conn(out, conn);
            return;
        }
        self.stats.connections_moved += 1;
        self.set_conn(conn, ConnState::Moving(Box::new(Moving { home, head, leftover: Vec::new() })));
    }

    /// Front side: bytes that arrived on a moving connection; they travel with it.
    pub(crate) fn on_moving_data(&mut self, out: &mut Outbox, conn: ConnId, bytes: &[u8]) {
        let Some(ConnState::Moving(moving)) = self.conn_mut(conn) else { return };
        if moving.leftover.len() + bytes.len() > MAX_MOVING_LEFTOVER {
            self.stats.peer_errors += 1;
            out.abort(conn);
            if let Some(state) = self.conn_mut(conn) {
                *state = ConnState::Closing;
            }
            return;
        }
        moving.leftover.extend_from_slice(bytes);
    }

    /// Front side: the driver gave the socket back; send it home. A socket this shard did not ask for is
    /// closed (dropped).
    pub(crate) fn on_detached(&mut self, conn: ConnId, fd: OwnedFd) {
        let peer = self.peers.remove(&conn.slot()).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let Some(ConnState::Moving(moving)) = self.take_conn(conn) else { return };
        let Moving { home, head, leftover } = *moving;
        if let Some(inbox) = self.shared.inbox(home) {
            inbox.push(ShardMsg::Adopt(Box::new(Adoption { fd, peer, head, leftover })));
        }
    }

    /// Home side: takes in a moved connection and serves its upgrade request as if it had been
    /// accepted here. During shutdown, or if the driver refuses it, the connection is closed.
    pub(crate) fn on_adoption<D: Driver>(&mut self, driver: &mut D, adoption: Adoption) {
        let Adoption { fd, peer, head, leftover } = adoption;
        if self.shared.is_shutting_down() {
            return;
        }
        let Ok(conn) = driver.adopt(fd) else { return };
        let out = driver.outbox();
        self.on_accepted(conn, peer);
        self.on_request(out, conn, head);
        if !leftover.is_empty() {
            self.on_data(out, conn, &leftover);
        }
    }
}
