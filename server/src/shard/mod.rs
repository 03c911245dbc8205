//! A shard: one thread, one I/O driver, one engine instance per namespace, and the loop that drives them.
//!
//! One loop turn, in order (the shape of every turn):
//! 1. `driver.turn`: wait for I/O (or the next deadline, or a wake-up) and feed what arrived to the
//!    connections' state machines; handlers run here and queue work.
//! 2. the inbox: broadcasts from other shards (planned and queued here), closures, shutdown, and the
//!    session routing messages (requests forwarded here, responses to requests forwarded from here,
//!    connections moved here; see [`route`]).
//! 3. timers: heartbeats, timeouts, ack deadlines.
//! 4. dirty sessions: each is pumped once (events → Socket.IO, packets → transport queues).
//! 5. `driver.flush`: one submission batch for the first `flush_batch` connections with new bytes. If
//!    more wait, the next turn does not sleep: what arrived meanwhile (publishes, other shards'
//!    broadcasts) is planned first and its frames join the sends of every connection not flushed yet.

pub(crate) mod acks;
pub(crate) mod core;
pub(crate) mod deliver;
pub(crate) mod guard;
pub(crate) mod http_front;
pub(crate) mod metrics;
pub(crate) mod pump;
pub(crate) mod random;
pub(crate) mod route;
pub(crate) mod selection;
pub(crate) mod shared;
pub(crate) mod sio;
pub(crate) mod timers;
pub(crate) mod ws_conn;

use std::io;
use std::time::{Duration, Instant};

use roomcast_engine::eio::CloseReason;

use self::core::{ConnState, ShardCore};
use self::shared::ShardMsg;
use crate::api::socket::Ctx;
use crate::driver::{ConnId, Driver, DriverEvent, Outbox};

/// What one pass over the inbox left behind.
#[derive(Debug, Default, Clone, Copy)]
struct InboxTurn {
    /// A shutdown was requested.
    shutdown: bool,
    /// The work budget ran out with messages still queued.
    backlog: bool,
}

/// How often a draining shard checks whether its connections are gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);

pub(crate) struct Shard<D: Driver> {
    pub driver: D,
    pub core: ShardCore,
}

impl<D: Driver> Shard<D> {
    /// Runs until shutdown has drained (or its drain time ran out). Returns early only if the ring or
    /// poller itself fails.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut drain_deadline: Option<Instant> = None;
        let mut inbox_backlog = false;
        loop {
            let now = Instant::now();
            let mut timeout = self.core.timers.next_deadline().map(|d| d.saturating_duration_since(now));
            if inbox_backlog || self.driver.outbox().has_dirty() {
                // The last turn stopped at its work budget with messages left, or flushed one batch of
                // several: look at I/O and timers without waiting, then carry on.
                timeout = Some(Duration::ZERO);
            }
            if drain_deadline.is_some() {
                timeout = Some(timeout.map_or(DRAIN_POLL, |t| t.min(DRAIN_POLL)));
            }
            let core = &mut self.core;
            self.driver.turn(timeout, &mut |event, out| {
                core.now = Instant::now();
                core.on_driver_event(out, event);
            })?;
            self.core.now = Instant::now();
            let inbox = self.core.drain_inbox(&mut self.driver);
            inbox_backlog = inbox.backlog;
            if inbox.shutdown && drain_deadline.is_none() {
                drain_deadline = Some(self.core.now + self.core.shared.config.drain_timeout);
            }
            let out = self.driver.outbox();
            self.core.fire_timers(out);
            self.core.process_dirty(out);
            let live = out.live_connections();
            self.core.publish_metrics(live);
            self.driver.flush()?;
            if let Some(deadline) = drain_deadline {
                if live == 0 || Instant::now() >= deadline {
                    return Ok(());
                }
            }
        }
    }
}

impl ShardCore {
    fn on_driver_event(&mut self, out: &mut Outbox, event: DriverEvent<'_>) {
        match event {
            DriverEvent::Accepted { conn, peer } => {
                if self.shared.is_shutting_down() {
                    out.abort(conn);
                } else {
                    self.on_accepted(conn, peer);
                }
            }
            DriverEvent::Data { conn, bytes } => self.on_data(out, conn, bytes),
            DriverEvent::Closed { conn, cause } => self.on_closed(conn, cause),
            DriverEvent::Detached { conn, fd } => self.on_detached(conn, fd),
            DriverEvent::Woken => {}
        }
    }

    /// Bytes arrived on a connection: they go to whatever the connection is now.
    pub(crate) fn on_data(&mut self, out: &mut Outbox, conn: ConnId, bytes: &[u8]) {
        match self.conn_mut(conn) {
            Some(ConnState::Http(_)) => self.on_http_data(out, conn, bytes),
            Some(ConnState::WebSocket(_)) => self.on_ws_data(out, conn, bytes),
            Some(ConnState::Moving(_)) => self.on_moving_data(out, conn, bytes),
            Some(ConnState::Closing) | None => {}
        }
    }

    /// Handles queued messages until the inbox is empty or this turn's work budget
    /// (`Config::turn_budget` deliveries) is spent, so that a burst of broadcasts to huge rooms cannot
    /// starve accepts, reads and timers. A single broadcast is always planned and queued whole.
    fn drain_inbox<D: Driver>(&mut self, driver: &mut D) -> InboxTurn {
        let shared = self.shared.clone();
        let mut turn = InboxTurn::default();
        let Some(inbox) = shared.inbox(self.id) else { return turn };
        let budget_end = self.stats.deliveries.saturating_add(shared.config.turn_budget as u64);
        loop {
            if self.stats.deliveries >= budget_end {
                turn.backlog = !inbox.is_empty();
                break;
            }
            let Some(msg) = inbox.pop() else { break };
            let out = driver.outbox();
            match msg {
                ShardMsg::Broadcast(broadcast) => self.deliver(out, &broadcast),
                ShardMsg::Run(f) => guard::guarded(|| f(&mut Ctx { core: self, out })),
                ShardMsg::Shutdown => {
                    turn.shutdown = true;
                    self.begin_shutdown(out);
                }
                ShardMsg::Forward(request) => self.on_forwarded_request(out, *request),
                ShardMsg::Response { conn, bytes, close } => {
                    self.on_forwarded_response(out, conn, bytes, close)
                }
                ShardMsg::PollAborted { sid, from } => self.on_poll_aborted(sid, from),
                ShardMsg::PostAborted { sid } => self.on_post_aborted(sid),
                ShardMsg::Adopt(adoption) => self.on_adoption(driver, *adoption),
            }
        }
        turn
    }

    /// Closes every session ("server shutting down") and every idle HTTP connection. Connections waiting
    /// for a response get it (a closing session answers its GET) and close after it.
    fn begin_shutdown(&mut self, out: &mut Outbox) {
        let keys: Vec<_> = self.sessions_by_sid.values().copied().collect();
        for key in keys {
            self.close_session(out, key, CloseReason::ServerShuttingDown, "server shutting down");
        }
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .flatten()
            .filter(|(_, state)| matches!(state, ConnState::Http(http) if http.pending.is_none()))
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            self.close_conn(out, conn);
        }
    }
}
