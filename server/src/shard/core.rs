//! A shard's state: its connections, Engine.IO sessions, namespace sockets and deadlines.
//!
//! Everything here belongs to one shard thread; nothing is shared or locked. Other shards reach this
//! state only through the shard's [`super::shared::Inbox`]. The driver is kept apart (see
//! [`super::Shard`]) so that a driver callback can borrow this state and the driver's `Outbox` at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use roomcast_engine::eio::EioSession;
use roomcast_engine::http::RequestHead;
use roomcast_engine::http::RequestHeadParser;
use roomcast_engine::ids::{EngineSid, ShardId, Sid, SocketId};
use roomcast_engine::rooms::{BroadcastSpec, NamespaceRooms, Scratch};
use roomcast_engine::sio::AttachmentReassembler;
use roomcast_engine::ws::{CloseHandshake, FrameDecoder};

use super::random::IdSource;
use super::route::{Forwarded, Moving, Requester};
use super::shared::{EndpointId, Shared};
use super::timers::Timers;
use crate::api::handshake::Handshake;
use crate::api::namespace::Namespace;
use crate::driver::ConnId;

/// A session's place in the shard's session table: index plus generation (a reused slot never matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    pub index: u32,
    pub generation: u32,
}

/// What one TCP connection is doing.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Reading HTTP requests (keep-alive), possibly a POST body, possibly parked as a long-poll GET.
    Http(Box<HttpConn>),
    /// A WebSocket carrying (or offering to carry) an Engine.IO session.
    WebSocket(Box<WsConn>),
    /// An upgrade request for a session of another shard: the driver is detaching the connection, which
    /// then moves to that shard.
    Moving(Box<Moving>),
    /// Closing: further input is ignored until the driver reports `Closed`.
    Closing,
}

#[derive(Debug)]
pub(crate) struct HttpConn {
    pub parser: RequestHeadParser,
    /// A request body still arriving.
    pub body: Option<PostBody>,
    /// The response this connection waits for; no request may follow until it is written.
    pub pending: Option<Pending>,
}

/// What an HTTP connection waits for before it reads its next request.
#[derive(Debug)]
pub(crate) enum Pending {
    /// Its long-poll GET is parked on a session of this shard (see [`Session::get`]).
    Parked(SessionKey),
    /// Its request went to the session's home shard, which sends the response back.
    Forwarded(Forwarded),
}

/// A request body being read, and whom it is for once complete.
#[derive(Debug)]
pub(crate) struct PostBody {
    pub dest: BodyDest,
    pub head: RequestHead,
    pub remaining: usize,
    pub buf: BytesMut,
}

/// Whom a request body is read for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodyDest {
    /// A POST to a session of this shard (its `handle_poll_post_begin` already ran).
    Session(SessionKey),
    /// A request to forward, whole, to the session's home shard.
    Home(ShardId, EngineSid),
}

/// A long-poll GET waiting on a session for packets to answer with.
#[derive(Debug)]
pub(crate) struct ParkedGet {
    /// Where the response goes.
    pub to: Requester,
    /// The request, for the response's headers (CORS, keep-alive). Boxed: the session holds it only
    /// while a GET waits.
    pub head: Box<RequestHead>,
}

#[derive(Debug)]
pub(crate) struct WsConn {
    pub decoder: FrameDecoder,
    pub close: CloseHandshake,
    pub session: SessionKey,
    /// `true` while this WebSocket is only an upgrade candidate of a polling session.
    pub candidate: bool,
}

/// One Engine.IO session (one client connection, whatever its transport) and its Socket.IO client (the
/// Socket.IO fields stay empty on a raw Engine.IO endpoint).
#[derive(Debug)]
pub(crate) struct Session {
    pub generation: u32,
    pub eio: EioSession,
    /// The endpoint the session was opened on: its requests must name that endpoint's path, and its
    /// messages go to that endpoint's app (Socket.IO, or a raw Engine.IO handler).
    pub endpoint: EndpointId,
    /// The WebSocket carrying the session, once it is on WebSocket.
    pub ws: Option<ConnId>,
    /// The WebSocket offered as an upgrade, while the probe runs.
    pub candidate: Option<ConnId>,
    /// The long-poll GET parked on the session (on a connection of this shard or another).
    pub get: Option<ParkedGet>,
    /// `b64=1`: binary goes as base64 text even on WebSocket.
    pub b64: bool,
    pub handshake: Arc<Handshake>,
    /// The namespace sockets of this client: (namespace index, socket).
    pub sockets: Vec<(u32, SocketId)>,
    pub reassembler: AttachmentReassembler,
    /// Until a namespace is joined: when the connection is dropped (`connectTimeout`).
    pub connect_deadline: Option<Instant>,
    /// The earliest deadline with an entry in the shard's timer heap.
    pub armed: Option<Instant>,
    /// Already in the shard's dirty list.
    pub dirty: bool,
}

// Per-connection budgets (issue 7, scenario 5: ≤ 2 KB of RSS per idle connection in all). The session
// slot is stored inline in the shard's table; handshake data lives out of line behind its `Arc`.
const _: () = assert!(size_of::<Session>() <= 320);
const _: () = assert!(size_of::<NspSocket>() <= 88);

/// A Socket.IO socket's per-shard state beside its membership (which lives in `NamespaceRooms`).
pub(crate) struct NspSocket {
    pub id: SocketId,
    pub sid: Sid,
    pub session: SessionKey,
    pub auth: bytes::Bytes,
    /// Server-to-client acks waiting for an answer (cold; most sockets never have one). Boxed so the
    /// field costs every socket 8 bytes instead of a 48-byte empty map.
    #[allow(clippy::box_collection)]
    pub acks: Option<Box<HashMap<u64, crate::api::socket::AckCallback>>>,
    /// Handlers registered on this socket alone (`socket.on`); cold, boxed for the same reason.
    #[allow(clippy::box_collection)]
    pub handlers: Option<Box<HashMap<Box<str>, crate::api::namespace::EventHandler>>>,
}

impl std::fmt::Debug for NspSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NspSocket").field("id", &self.id).field("sid", &self.sid).finish_non_exhaustive()
    }
}

/// A namespace on this shard.
pub(crate) struct NspShard {
    pub name: Arc<str>,
    pub def: Arc<Namespace>,
    pub rooms: NamespaceRooms,
    /// Indexed by `SocketId::slot`.
    pub sockets: Vec<Option<NspSocket>>,
    /// Next server-to-client ack id (`nsp._ids`).
    pub next_ack_id: u64,
    /// The rooms this shard reported to the sharded Redis adapter (`dynamic` modes), which subscribes
    /// to a room's channel while any shard has it; `None` when there is nothing to report.
    pub cluster_rooms: Option<std::collections::HashSet<roomcast_engine::rooms::RoomName>>,
}

impl std::fmt::Debug for NspShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NspShard")
            .field("name", &self.name)
            .field("sockets", &self.rooms.socket_count())
            .finish()
    }
}

impl NspShard {
    pub(crate) fn new(name: Arc<str>, def: Arc<Namespace>) -> Self {
        let mut rooms = NamespaceRooms::new();
        rooms.set_events_enabled(def.adapter_listener.is_some());
        NspShard { name, def, rooms, sockets: Vec::new(), next_ack_id: 0, cluster_rooms: None }
    }

    pub(crate) fn socket(&self, id: SocketId) -> Option<&NspSocket> {
        self.sockets.get(id.slot() as usize)?.as_ref().filter(|s| s.id == id)
    }

    pub(crate) fn socket_mut(&mut self, id: SocketId) -> Option<&mut NspSocket> {
        self.sockets.get_mut(id.slot() as usize)?.as_mut().filter(|s| s.id == id)
    }
}

/// The shard's whole state except its driver.
#[derive(Debug)]
pub(crate) struct ShardCore {
    pub id: ShardId,
    pub shared: Arc<Shared>,
    /// The loop turn's clock reading; handlers and the engine use it instead of reading the clock.
    pub now: Instant,
    /// Indexed by `ConnId::slot`; the stored id guards against stale ids.
    pub conns: Vec<Option<(ConnId, ConnState)>>,
    /// Peer address of each connection, by slot (for `handshake.address`).
    pub peers: HashMap<u32, std::net::SocketAddr>,
    pub sessions: Vec<Option<Session>>,
    pub free_sessions: Vec<u32>,
    pub session_generations: Vec<u32>,
    pub sessions_by_sid: HashMap<EngineSid, SessionKey>,
    pub nsps: Vec<NspShard>,
    pub nsp_index: HashMap<Arc<str>, u32>,
    pub timers: Timers,
    /// Sessions with new input or output to process before the turn's flush.
    pub dirty: Vec<SessionKey>,
    pub ids: IdSource,
    pub spec: BroadcastSpec,
    pub scratch: Scratch,
    /// Inbound bytes copied for in-place WebSocket unmasking.
    pub inbound: Vec<u8>,
    /// Scratch for building responses and frames.
    pub buf: BytesMut,
    /// Sessions the client closed by a POST `1` while no GET was parked, with when, oldest first,
    /// briefly remembered for forwarded GETs that arrived before the close ([`super::route`]).
    pub client_closes: VecDeque<(EngineSid, Instant)>,
    pub stats: ShardStats,
}

/// Counters a person can read (exported as metrics).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardStats {
    pub sessions_opened: u64,
    pub broadcasts: u64,
    pub deliveries: u64,
    pub volatile_dropped: u64,
    pub slow_consumers_closed: u64,
    pub peer_errors: u64,
    /// Polling requests sent to their session's home shard.
    pub requests_forwarded: u64,
    /// Connections handed to their session's home shard for a WebSocket upgrade.
    pub connections_moved: u64,
}

impl ShardCore {
    pub(crate) fn new(id: ShardId, shared: Arc<Shared>) -> Self {
        let mut core = ShardCore {
            id,
            now: Instant::now(),
            conns: Vec::new(),
            peers: HashMap::new(),
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            session_generations: Vec::new(),
            sessions_by_sid: HashMap::new(),
            nsps: Vec::new(),
            nsp_index: HashMap::new(),
            timers: Timers::default(),
            dirty: Vec::new(),
            ids: IdSource::new(),
            spec: BroadcastSpec::new(),
            scratch: Scratch::default(),
            inbound: Vec::new(),
            buf: BytesMut::with_capacity(16 * 1024),
            client_closes: VecDeque::new(),
            stats: ShardStats::default(),
            shared: shared.clone(),
        };
        for (name, def) in &shared.namespaces {
            core.add_namespace(name.clone(), def.clone());
        }
        core
    }

    pub(crate) fn add_namespace(&mut self, name: Arc<str>, def: Arc<Namespace>) -> u32 {
        let index = self.nsps.len() as u32;
        self.nsp_index.insert(name.clone(), index);
        let mut namespace = NspShard::new(name, def);
        // The sharded subscriber follows every namespace (dynamic ones once created) and their rooms.
        if self.shared.cluster.as_ref().is_some_and(|c| c.rooms.is_some()) {
            namespace.rooms.set_events_enabled(true);
            namespace.cluster_rooms = Some(Default::default());
        }
        self.nsps.push(namespace);
        index
    }

    /// The namespace of that name on this shard, creating a dynamic one if a matcher accepts the name.
    pub(crate) fn namespace_index(&mut self, name: &str, create: bool) -> Option<u32> {
        if let Some(i) = self.nsp_index.get(name) {
            return Some(*i);
        }
        if !create {
            return None;
        }
        let def =
            self.shared.dynamic.iter().find(|(matches, _)| matches(name)).map(|(_, def)| def.clone())?;
        let name: Arc<str> = Arc::from(name);
        if let Some(cluster) = &self.shared.cluster {
            cluster.namespace_created(&name);
        }
        Some(self.add_namespace(name, def))
    }

    pub(crate) fn session(&self, key: SessionKey) -> Option<&Session> {
        self.sessions.get(key.index as usize)?.as_ref().filter(|s| s.generation == key.generation)
    }

    pub(crate) fn session_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        self.sessions.get_mut(key.index as usize)?.as_mut().filter(|s| s.generation == key.generation)
    }

    pub(crate) fn conn_mut(&mut self, conn: ConnId) -> Option<&mut ConnState> {
        match self.conns.get_mut(conn.slot() as usize) {
            Some(Some((id, state))) if *id == conn => Some(state),
            _ => None,
        }
    }

    pub(crate) fn set_conn(&mut self, conn: ConnId, state: ConnState) {
        let slot = conn.slot() as usize;
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some((conn, state));
    }

    pub(crate) fn take_conn(&mut self, conn: ConnId) -> Option<ConnState> {
        let entry = self.conns.get_mut(conn.slot() as usize)?;
        match entry {
            Some((id, _)) if *id == conn => entry.take().map(|(_, state)| state),
            _ => None,
        }
    }

    /// Stores a new session and returns its key.
    pub(crate) fn insert_session(&mut self, mut session: Session) -> SessionKey {
        let index = match self.free_sessions.pop() {
            Some(index) => index,
            None => {
                self.sessions.push(None);
                self.session_generations.push(0);
                (self.sessions.len() - 1) as u32
            }
        };
        let generation = self.session_generations[index as usize];
        session.generation = generation;
        let key = SessionKey { index, generation };
        self.sessions_by_sid.insert(*session.eio.sid(), key);
        self.sessions[index as usize] = Some(session);
        self.stats.sessions_opened += 1;
        key
    }

    /// Drops a session (its sockets must be gone already).
    pub(crate) fn remove_session(&mut self, key: SessionKey) -> Option<Session> {
        let slot = self.sessions.get_mut(key.index as usize)?;
        if slot.as_ref().map(|s| s.generation) != Some(key.generation) {
            return None;
        }
        let session = slot.take()?;
        self.sessions_by_sid.remove(session.eio.sid());
        self.session_generations[key.index as usize] = key.generation.wrapping_add(1);
        self.free_sessions.push(key.index);
        Some(session)
    }

    /// Queues a session for processing before this turn's flush (once).
    pub(crate) fn mark_dirty(&mut self, key: SessionKey) {
        if let Some(session) = self.session_mut(key) {
            if !session.dirty {
                session.dirty = true;
                self.dirty.push(key);
            }
        }
    }
}
