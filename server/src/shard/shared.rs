//! What all shards of one server share, read-only once started: configuration, namespace definitions
//! and each shard's inbox. No lock is ever taken on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_queue::SegQueue;
use roomcast_engine::eio::EioConfig;
use roomcast_engine::http::{AllowedOrigins, CorsConfig, Endpoint, HeadLimits};
use roomcast_engine::ids::{EngineSid, ShardId};
use roomcast_engine::sio::Limits;

use super::route::{Adoption, ForwardedRequest, RemoteConn};
use crate::api::engine::EngineEndpoint;
use crate::api::namespace::{Namespace, NamespaceMatcher};
use crate::broadcast::Broadcast;
use crate::config::Config;
use crate::driver::{ConnId, Waker};

/// Work sent to a shard by another thread. Fire and forget: no sender ever waits for an answer.
pub(crate) enum ShardMsg {
    /// A broadcast encoded once on another shard (or another thread): plan and deliver it here.
    Broadcast(Arc<Broadcast>),
    /// Run a closure on this shard (control path: `ServerHandle` calls).
    Run(Box<dyn FnOnce(&mut crate::api::socket::Ctx<'_>) + Send>),
    /// Stop accepting, close every client, exit once drained.
    Shutdown,
    /// To the home shard of a session: serve this polling request and send the response to `from`.
    Forward(Box<ForwardedRequest>),
    /// From a home shard: the response to a request this shard forwarded for `conn`, to write on it
    /// (then close it if `close`). Exactly one per forwarded request, unless its connection closed first.
    Response { conn: ConnId, bytes: Bytes, close: bool },
    /// To a home shard: the connection of a forwarded GET closed; if that GET is still parked on the
    /// session, the session closes (a cancelled long-poll, as on a local connection).
    PollAborted { sid: EngineSid, from: RemoteConn },
    /// To a home shard: a connection closed while the body of a POST for the session was arriving.
    PostAborted { sid: EngineSid },
    /// To the home shard of a session: a connection asking to upgrade it to WebSocket, moved here.
    Adopt(Box<Adoption>),
}

impl std::fmt::Debug for ShardMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardMsg::Broadcast(_) => f.write_str("Broadcast"),
            ShardMsg::Run(_) => f.write_str("Run"),
            ShardMsg::Shutdown => f.write_str("Shutdown"),
            ShardMsg::Forward(request) => f.debug_tuple("Forward").field(&request.from).finish(),
            ShardMsg::Response { conn, close, .. } => {
                f.debug_struct("Response").field("conn", conn).field("close", close).finish_non_exhaustive()
            }
            ShardMsg::PollAborted { from, .. } => f.debug_struct("PollAborted").field("from", from).finish(),
            ShardMsg::PostAborted { .. } => f.write_str("PostAborted"),
            ShardMsg::Adopt(_) => f.write_str("Adopt"),
        }
    }
}

/// A shard's mailbox: a lock-free MPSC queue plus the waker of the shard's driver.
///
/// Ordering: messages pushed by one thread are popped in push order, so one sender's broadcasts reach
/// each receiver in the order they were sent, and a shard's `Forward` of a GET always precedes its
/// `PollAborted` for that GET.
#[derive(Debug)]
pub(crate) struct Inbox {
    queue: SegQueue<ShardMsg>,
    waker: Waker,
}

impl Inbox {
    pub(crate) fn new(waker: Waker) -> Self {
        Inbox { queue: SegQueue::new(), waker }
    }

    /// Queues `msg` and wakes the shard. Never blocks.
    pub(crate) fn push(&self, msg: ShardMsg) {
        self.queue.push(msg);
        // A failed eventfd write leaves the message for the shard's next turn (bounded by its timers).
        let _ = self.waker.wake();
    }

    pub(crate) fn pop(&self) -> Option<ShardMsg> {
        self.queue.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Which of the server's Engine.IO endpoints a session belongs to: an index into
/// [`Shared::endpoints`]. [`EndpointId::SOCKET_IO`] is the Socket.IO endpoint (`config.path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EndpointId(pub u16);

impl EndpointId {
    /// The Socket.IO endpoint, always the first.
    pub const SOCKET_IO: EndpointId = EndpointId(0);
}

/// What serves the messages of an endpoint's sessions.
pub(crate) enum EndpointApp {
    /// Socket.IO packets ([`super::sio`]).
    SocketIo,
    /// A raw Engine.IO endpoint: each message goes to its handlers.
    Engine(Arc<EngineEndpoint>),
}

/// One Engine.IO endpoint: where it is (path prefix, transports, CORS) and what it serves.
pub(crate) struct EndpointEntry {
    pub endpoint: Endpoint,
    pub app: EndpointApp,
}

/// Server-wide, read-only state.
pub(crate) struct Shared {
    pub config: Config,
    pub eio: Arc<EioConfig>,
    /// Indexed by [`EndpointId`]; the Socket.IO endpoint first. Paths are distinct.
    pub endpoints: Vec<EndpointEntry>,
    pub cors: CorsConfig,
    pub head_limits: HeadLimits,
    pub sio_limits: Limits,
    pub namespaces: Vec<(Arc<str>, Arc<Namespace>)>,
    pub dynamic: Vec<(NamespaceMatcher, Arc<Namespace>)>,
    /// Indexed by shard number.
    pub inboxes: Vec<Inbox>,
    pub shutting_down: AtomicBool,
    /// Each shard's published figures, by shard number (`GET /metrics`).
    pub gauges: Vec<super::metrics::ShardGauges>,
    /// The Redis adapter's link, when the server is one node of a cluster.
    pub cluster: Option<crate::cluster::ClusterLink>,
    /// Requests of this server waiting for answers (other servers', or its clients' acks of a
    /// broadcast with acks).
    pub requests: crate::cluster::outgoing::PendingRequests,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("shards", &self.inboxes.len())
            .field("endpoints", &self.endpoints.iter().map(|e| e.endpoint.path()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        namespaces: Vec<(Arc<str>, Arc<Namespace>)>,
        dynamic: Vec<(NamespaceMatcher, Arc<Namespace>)>,
        engines: Vec<(String, Arc<EngineEndpoint>)>,
        wakers: Vec<Waker>,
        cluster: Option<crate::cluster::ClusterLink>,
    ) -> Shared {
        let eio = EioConfig {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            max_payload: config.max_http_buffer_size,
            upgrade_timeout: config.upgrade_timeout,
            ..EioConfig::default()
        };
        let cors = match config.cors_origins.as_slice() {
            [] => CorsConfig::default(),
            [any] if any == "*" => {
                CorsConfig { credentials: config.cors_credentials, ..CorsConfig::allow_any() }
            }
            list => CorsConfig {
                origins: AllowedOrigins::List(list.to_vec()),
                credentials: config.cors_credentials,
                ..CorsConfig::default()
            },
        };
        let socket_io = EndpointEntry {
            endpoint: Endpoint::new(&config.path).with_cors(cors.is_enabled()),
            app: EndpointApp::SocketIo,
        };
        let raw = engines.into_iter().map(|(path, def)| EndpointEntry {
            endpoint: Endpoint::new(&path).with_cors(cors.is_enabled()),
            app: EndpointApp::Engine(def),
        });
        Shared {
            eio: Arc::new(eio),
            endpoints: std::iter::once(socket_io).chain(raw).collect(),
            cors,
            head_limits: HeadLimits::default(),
            sio_limits: Limits::default(),
            namespaces,
            dynamic,
            gauges: wakers.iter().map(|_| Default::default()).collect(),
            inboxes: wakers.into_iter().map(Inbox::new).collect(),
            shutting_down: AtomicBool::new(false),
            cluster,
            requests: Default::default(),
            config,
        }
    }

    /// The endpoint serving a request target: the one with the longest path prefix of it (so a raw
    /// endpoint at `/socket.io/raw/` takes its requests from the Socket.IO one at `/socket.io/`), or
    /// `None` for a target outside every endpoint. Cost: one prefix test per endpoint.
    pub(crate) fn endpoint_for(&self, target: &str) -> Option<EndpointId> {
        let matching = self.endpoints.iter().enumerate().filter(|(_, e)| e.endpoint.matches(target));
        let (index, _) = matching.max_by_key(|(_, e)| e.endpoint.path().len())?;
        u16::try_from(index).ok().map(EndpointId)
    }

    /// The endpoint of that id (`None` only for an id this server never gave out).
    pub(crate) fn endpoint(&self, id: EndpointId) -> Option<&EndpointEntry> {
        self.endpoints.get(usize::from(id.0))
    }

    /// The raw Engine.IO handlers of an endpoint; `None` for the Socket.IO endpoint.
    pub(crate) fn engine_app(&self, id: EndpointId) -> Option<&Arc<EngineEndpoint>> {
        match &self.endpoint(id)?.app {
            EndpointApp::Engine(def) => Some(def),
            EndpointApp::SocketIo => None,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.inboxes.len()
    }

    pub(crate) fn inbox(&self, shard: ShardId) -> Option<&Inbox> {
        self.inboxes.get(shard.0 as usize)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}
