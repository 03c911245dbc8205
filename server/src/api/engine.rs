//! Raw Engine.IO endpoints: Engine.IO sessions with no Socket.IO on top, for clients that speak plain
//! `engine.io-client` (and for the official Engine.IO test suite, which expects an echo server).
//!
//! ```no_run
//! use roomcast_server::api::Server;
//! use roomcast_server::config::Config;
//!
//! let mut server = Server::new();
//! // Echo every message back unchanged: text stays text, binary stays binary.
//! server.engine_io("/engine.io/").on_message(|socket, message| socket.send(message));
//! let running = server.start(Config::default()).unwrap();
//! running.wait().unwrap();
//! ```
//!
//! An endpoint lives at a path prefix beside the Socket.IO one (`config.path`) and shares the server's
//! Engine.IO settings (ping interval and timeout, `maxHttpBufferSize`, upgrade timeout, CORS). Each
//! session remembers the endpoint it was opened on: its requests must name that path (elsewhere its sid
//! is unknown, as with the reference's separate servers), and its messages go to that endpoint's
//! handlers. Polling requests and upgrades reach the session's home shard whichever shard accepted
//! them, as for Socket.IO.
//!
//! Thread contract: as for Socket.IO handlers (see [`crate::api::namespace`]), every handler runs on
//! the shard thread that owns the session, synchronously, in the middle of that shard's loop. It must
//! not block: while it runs, every other connection of its shard waits. Sends are queued and leave in
//! this turn's flush. Handlers are shared by all shards, hence `Send + Sync`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use roomcast_engine::eio::{CloseReason, InMessage, OutPacket};

use super::handshake::Handshake;
use super::socket::Ctx;
use crate::driver::Outbox;
use crate::shard::core::{SessionKey, ShardCore};
use crate::shard::shared::EndpointId;

pub(crate) type EngineOpenHandler = Arc<dyn Fn(&mut EngineSocket<'_>) + Send + Sync>;
pub(crate) type EngineMessageHandler = Arc<dyn Fn(&mut EngineSocket<'_>, &InMessage) + Send + Sync>;
pub(crate) type EngineCloseHandler = Arc<dyn Fn(&mut EngineSocket<'_>, &str) + Send + Sync>;

/// A raw Engine.IO endpoint's handlers. Build it with [`crate::api::Server::engine_io`].
#[derive(Default, Clone)]
pub struct EngineEndpoint {
    on_open: Vec<EngineOpenHandler>,
    on_message: Vec<EngineMessageHandler>,
    on_close: Vec<EngineCloseHandler>,
}

impl std::fmt::Debug for EngineEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineEndpoint")
            .field("on_open", &self.on_open.len())
            .field("on_message", &self.on_message.len())
            .field("on_close", &self.on_close.len())
            .finish()
    }
}

impl EngineEndpoint {
    /// Runs when a session opens (engine.io's `connection`), after its open packet is queued: what it
    /// sends follows the open packet.
    pub fn on_open(&mut self, f: impl Fn(&mut EngineSocket<'_>) + Send + Sync + 'static) -> &mut Self {
        self.on_open.push(Arc::new(f));
        self
    }

    /// Runs for every message the client sends (engine.io's `message`), in arrival order. The messages
    /// of one POST are all handled before the response to the session's next GET is built, so replies
    /// to a batch leave as one batch.
    pub fn on_message(
        &mut self,
        f: impl Fn(&mut EngineSocket<'_>, &InMessage) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_message.push(Arc::new(f));
        self
    }

    /// Runs once when the session is over (engine.io's `close`), with the reference's reason
    /// (`"transport close"`, `"ping timeout"`, `"forced close"`, ...). The session can no longer send.
    pub fn on_close(&mut self, f: impl Fn(&mut EngineSocket<'_>, &str) + Send + Sync + 'static) -> &mut Self {
        self.on_close.push(Arc::new(f));
        self
    }
}

/// One session of a raw Engine.IO endpoint, lent to a handler for the duration of the call.
pub struct EngineSocket<'a> {
    cx: Ctx<'a>,
    session: SessionKey,
}

impl std::fmt::Debug for EngineSocket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSocket").field("shard", &self.cx.core.id).finish_non_exhaustive()
    }
}

impl<'a> EngineSocket<'a> {
    /// The session's handshake request (headers, query, address, time). `None` once it is dropped.
    pub fn handshake(&self) -> Option<Arc<Handshake>> {
        self.cx.core.session(self.session).map(|s| s.handshake.clone())
    }

    /// Whether the session is still open (it can send).
    pub fn is_open(&self) -> bool {
        self.cx.core.session(self.session).is_some_and(|s| !s.eio.is_closed())
    }

    /// Sends a text message. Cost: one allocation of `text.len() + 1` bytes.
    pub fn send_text(&mut self, text: &str) {
        let mut packet = BytesMut::with_capacity(text.len() + 1);
        packet.extend_from_slice(b"4");
        packet.extend_from_slice(text.as_bytes());
        self.queue(OutPacket::text(packet.freeze()));
    }

    /// Sends a binary message: a binary frame on WebSocket, `b<base64>` on polling. The bytes are shared,
    /// not copied, until a transport writes them.
    pub fn send_binary(&mut self, data: Bytes) {
        self.queue(OutPacket::binary(data));
    }

    /// Sends a message as received: text as text, binary as binary (an echo).
    pub fn send(&mut self, message: &InMessage) {
        match message {
            InMessage::Text(text) => {
                let mut packet = BytesMut::with_capacity(text.len() + 1);
                packet.extend_from_slice(b"4");
                packet.extend_from_slice(text);
                // `InMessage::Text` is valid UTF-8 (checked on the way in), as a text packet must be.
                self.queue(OutPacket::text(packet.freeze()));
            }
            InMessage::Binary(data) => self.send_binary(data.clone()),
        }
    }

    /// Closes the session from the server side (engine.io's `socket.close()`): what is queued goes out
    /// first, then a polling client gets `1` and a WebSocket is closed. The close handlers run with
    /// `"forced close"`.
    pub fn close(&mut self) {
        let now = self.cx.core.now;
        if let Some(s) = self.cx.core.session_mut(self.session) {
            s.eio.close(now, CloseReason::ForcedClose);
        }
        self.cx.core.mark_dirty(self.session);
    }

    /// The server-wide context: Socket.IO broadcasts (`ctx().of("/")`), the shard's id.
    pub fn ctx(&mut self) -> &mut Ctx<'a> {
        &mut self.cx
    }

    /// Queues a packet; dropped once the session is closing. Like a Socket.IO direct emit, it is not
    /// checked against the outbound budgets: a handler that sends without bound grows the queue.
    fn queue(&mut self, packet: OutPacket) {
        if let Some(s) = self.cx.core.session_mut(self.session) {
            s.eio.send(packet);
        }
        self.cx.core.mark_dirty(self.session);
    }
}

impl ShardCore {
    fn engine_handlers(&self, endpoint: EndpointId) -> Option<Arc<EngineEndpoint>> {
        self.shared.engine_app(endpoint).cloned()
    }

    /// A session just opened: its endpoint's open handlers run (none for Socket.IO sessions).
    pub(crate) fn on_engine_open(&mut self, out: &mut Outbox, key: SessionKey) {
        let Some(endpoint) = self.session(key).map(|s| s.endpoint) else { return };
        let Some(def) = self.engine_handlers(endpoint) else { return };
        for handler in &def.on_open {
            handler(&mut EngineSocket { cx: Ctx { core: self, out }, session: key });
        }
    }

    /// A message for a session of a raw endpoint: its message handlers run.
    pub(crate) fn on_engine_message(
        &mut self,
        out: &mut Outbox,
        key: SessionKey,
        endpoint: EndpointId,
        message: &InMessage,
    ) {
        let Some(def) = self.engine_handlers(endpoint) else { return };
        for handler in &def.on_message {
            handler(&mut EngineSocket { cx: Ctx { core: self, out }, session: key }, message);
        }
    }

    /// A session is over: its endpoint's close handlers run (none for Socket.IO sessions).
    pub(crate) fn on_engine_close(&mut self, out: &mut Outbox, key: SessionKey, reason: &str) {
        let Some(endpoint) = self.session(key).map(|s| s.endpoint) else { return };
        let Some(def) = self.engine_handlers(endpoint) else { return };
        for handler in &def.on_close {
            handler(&mut EngineSocket { cx: Ctx { core: self, out }, session: key }, reason);
        }
    }
}
