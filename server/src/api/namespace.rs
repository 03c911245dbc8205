//! Namespace definitions: the handlers a Rust program registers before the server starts.
//!
//! Thread contract: every handler runs on the shard thread that owns the socket, synchronously, in the
//! middle of that shard's event loop. A handler must not block (no sleeping, no blocking I/O, no waiting
//! on locks held elsewhere): while it runs, every other socket of its shard waits. Hand slow work to
//! another thread and come back through a [`crate::api::ServerHandle`]. Handlers are shared by all
//! shards, hence `Send + Sync`.

use std::collections::HashMap;
use std::sync::Arc;

use roomcast_engine::rooms::AdapterEvent;

use super::args::Event;
use super::handshake::{ConnectError, ConnectRequest};
use super::socket::Socket;

pub(crate) type ConnectionHandler = Arc<dyn Fn(&mut Socket<'_>) + Send + Sync>;
pub type EventHandler = Arc<dyn Fn(&mut Socket<'_>, &Event<'_>) + Send + Sync>;
pub(crate) type DisconnectHandler = Arc<dyn Fn(&mut Socket<'_>, &str) + Send + Sync>;
pub(crate) type Middleware = Arc<dyn Fn(&ConnectRequest) -> Result<(), ConnectError> + Send + Sync>;
pub(crate) type AdapterListener = Arc<dyn Fn(&AdapterEvent) + Send + Sync>;
pub(crate) type ServerSideListener =
    Arc<dyn Fn(&str, &[super::Arg], Option<crate::cluster::ServerSideAck>) + Send + Sync>;
pub(crate) type NamespaceMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A namespace's handlers. Build it with [`crate::api::Server::namespace`].
#[derive(Default, Clone)]
pub struct Namespace {
    pub(crate) middlewares: Vec<Middleware>,
    pub(crate) on_connection: Vec<ConnectionHandler>,
    pub(crate) events: HashMap<Box<str>, EventHandler>,
    pub(crate) any_event: Option<EventHandler>,
    pub(crate) on_disconnecting: Vec<DisconnectHandler>,
    pub(crate) on_disconnect: Vec<DisconnectHandler>,
    pub(crate) adapter_listener: Option<AdapterListener>,
    pub(crate) server_side_listener: Option<ServerSideListener>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("middlewares", &self.middlewares.len())
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Namespace {
    /// Runs before a socket joins (`io.use` / `nsp.use`); an `Err` refuses it with CONNECT_ERROR.
    pub fn middleware(
        &mut self,
        f: impl Fn(&ConnectRequest) -> Result<(), ConnectError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.middlewares.push(Arc::new(f));
        self
    }

    /// Runs when a socket has joined (`io.on("connection")`); the socket is in its own room already.
    pub fn on_connection(&mut self, f: impl Fn(&mut Socket<'_>) + Send + Sync + 'static) -> &mut Self {
        self.on_connection.push(Arc::new(f));
        self
    }

    /// Handles one event name (`socket.on(name)`) for every socket of the namespace.
    pub fn on(
        &mut self,
        event: &str,
        f: impl Fn(&mut Socket<'_>, &Event<'_>) + Send + Sync + 'static,
    ) -> &mut Self {
        self.events.insert(event.into(), Arc::new(f));
        self
    }

    /// Sees every event, before the event's own handler (`socket.onAny`).
    pub fn on_any(&mut self, f: impl Fn(&mut Socket<'_>, &Event<'_>) + Send + Sync + 'static) -> &mut Self {
        self.any_event = Some(Arc::new(f));
        self
    }

    /// Runs first when a socket leaves, with the reason; the socket still sees its rooms.
    pub fn on_disconnecting(
        &mut self,
        f: impl Fn(&mut Socket<'_>, &str) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_disconnecting.push(Arc::new(f));
        self
    }

    /// Runs last when a socket leaves, with the reason; it is in no room any more.
    pub fn on_disconnect(&mut self, f: impl Fn(&mut Socket<'_>, &str) + Send + Sync + 'static) -> &mut Self {
        self.on_disconnect.push(Arc::new(f));
        self
    }

    /// Receives the adapter's `create-room`, `delete-room`, `join-room`, `leave-room` events, on the
    /// shard where they happen. Without a listener the engine records no events at all.
    pub fn on_adapter_event(&mut self, f: impl Fn(&AdapterEvent) + Send + Sync + 'static) -> &mut Self {
        self.adapter_listener = Some(Arc::new(f));
        self
    }

    /// Receives other servers' `serverSideEmit(event, …args)` for this namespace (Redis cluster only;
    /// `io.on(event)` on a Node server). With `serverSideEmitWithAck` the last argument is an ack to
    /// answer once. Runs on the Redis subscriber thread: it must not block, and it reaches sockets
    /// through a [`crate::api::ServerHandle`].
    pub fn on_server_side_emit(
        &mut self,
        f: impl Fn(&str, &[super::Arg], Option<crate::cluster::ServerSideAck>) + Send + Sync + 'static,
    ) -> &mut Self {
        self.server_side_listener = Some(Arc::new(f));
        self
    }
}
