//! Operations over the whole Socket.IO cluster (every server sharing the Redis adapter), as
//! `@socket.io/redis-adapter` 8.x offers them to a Node server: `fetchSockets`, `allRooms`,
//! `serverSideEmit` (with or without ack) and broadcast with acks. (`socketsJoin`, `socketsLeave` and
//! `disconnectSockets` reach the other servers through the [`Operator`] methods of those names.)
//!
//! Each call returns at once; its callback runs later on the calling shard, once every other server
//! answered or the request timed out (`RedisConfig::requests_timeout`, 5 s by default, or the
//! broadcast's own timeout). A server that never answers (gone, or its Redis link down) makes the
//! callback get [`TimedOut`] with what did arrive: a request never hangs. On a server without a
//! cluster, or with [`Operator::local`], only this server is asked.
//!
//! How many servers are expected: those that received the request on Redis (every server subscribed
//! to the namespace's request channel, or with `--redis-sharded` to its main channel), minus this one —
//! what Node's `PUBSUB NUMSUB` (`PUBSUB SHARDNUMSUB`) counts. Both adapter protocols carry every
//! request here except `allRooms`, which the sharded one lacks (as Node's sharded adapter does):
//! there [`Ctx::fetch_cluster_rooms`] lists this server's rooms only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roomcast_engine::cluster::transcode::event_data;
use roomcast_engine::cluster::{AdapterPacket, BroadcastFlags, BroadcastOpts, RemoteSocket};
use roomcast_engine::rooms::BroadcastTarget;

use super::args::Arg;
use super::operator::Operator;
use super::socket::Ctx;
use super::ServerHandle;
use crate::cluster::outgoing::{self, Query, Waiting};
use crate::cluster::sockets::out_arg;
use crate::shard::core::ShardCore;
use crate::shard::selection::SocketInfo;

/// The sockets a cluster-wide `fetchSockets` found.
#[derive(Debug, Clone, Default)]
pub struct ClusterSockets {
    /// This server's sockets, from every shard.
    pub local: Vec<SocketInfo>,
    /// Other servers' sockets, as they described them: id, rooms, and the JSON texts of `handshake`
    /// and `data`.
    pub remote: Vec<RemoteSocket>,
}

impl ClusterSockets {
    /// The ids of every socket found, this server's first.
    pub fn ids(&self) -> Vec<String> {
        self.local.iter().map(|s| s.id.clone()).chain(self.remote.iter().map(|s| s.id.clone())).collect()
    }
}

/// A cluster request ended at its deadline before every expected answer came: `partial` holds what
/// did (the answers of `answered` servers out of `expected`, `None` when the request never left this
/// server, e.g. while Redis is unreachable).
#[derive(Debug, Clone)]
pub struct TimedOut<T> {
    pub partial: T,
    pub answered: u64,
    pub expected: Option<u64>,
}

impl<T> std::fmt::Display for TimedOut<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.expected {
            Some(expected) => {
                write!(f, "timeout reached: {} of {expected} server(s) answered", self.answered)
            }
            None => write!(f, "timeout reached: the request was not published"),
        }
    }
}

impl<T: std::fmt::Debug> std::error::Error for TimedOut<T> {}

/// The result a cluster request's callback gets.
pub type ClusterResult<T> = Result<T, TimedOut<T>>;

/// The adapter's options for what `target` selects (rooms and exceptions; a request carries no
/// broadcast flags).
pub(crate) fn opts_of(target: &BroadcastTarget) -> BroadcastOpts {
    BroadcastOpts { flags: BroadcastFlags::default(), ..crate::cluster::broadcast_opts(target) }
}

fn requests_deadline(core: &ShardCore) -> Instant {
    let timeout = core.shared.cluster.as_ref().map_or(Duration::ZERO, |c| c.config.requests_timeout);
    Instant::now() + timeout
}

/// `[event, …args]` as the adapters carry it (`None`, logged, for arguments that are not valid JSON:
/// the API validates them, so this does not happen).
fn event_value(event: &str, args: &[Arg]) -> Option<roomcast_engine::cluster::Value> {
    let out: Vec<_> = args.iter().map(out_arg).collect();
    match event_data(event, &out) {
        Ok(data) => Some(data),
        Err(e) => {
            eprintln!("roomcast: cannot send {event:?} to the cluster: {e}");
            None
        }
    }
}

impl Operator<'_, '_> {
    /// `fetchSockets` over the cluster: this server's selected sockets (every shard) and those of every
    /// other server, handed to `done` on this shard. Other servers are asked only when this server's
    /// shards have answered; with [`Operator::local`], or without a cluster, only this server is.
    pub fn fetch_cluster_sockets(
        self,
        done: impl FnOnce(&mut Ctx<'_>, ClusterResult<ClusterSockets>) + Send + 'static,
    ) {
        let publish = !self.target.flags.local;
        let (nsp, opts) = (self.name(), opts_of(&self.target));
        self.fetch_sockets(move |cx, local| {
            let found = ClusterSockets { local, remote: Vec::new() };
            let (origin, deadline) = (cx.core.id, requests_deadline(cx.core));
            let waiting = Waiting::Sockets { found, done: Box::new(done) };
            let shared = cx.core.shared.clone();
            let query = Query::FetchSockets { opts };
            outgoing::send(&shared, nsp, query, publish, Some((origin, deadline, waiting)));
        });
    }

    /// Emits to every selected socket of the cluster and collects each client's acknowledgement (its
    /// first argument; `null` if it sent none), as `io.timeout(t).emit(event, …args, callback)`:
    /// `done` gets them all once every server reported how many clients it reached and each of those
    /// acked, or [`TimedOut`] with the acks so far once `timeout` passed (or as soon as a client of this
    /// server can no longer answer: its ack timed out, or it disconnected).
    pub fn emit_with_ack(
        self,
        event: &str,
        args: &[Arg],
        timeout: Duration,
        done: impl FnOnce(&mut Ctx<'_>, ClusterResult<Vec<Arg>>) + Send + 'static,
    ) {
        let nsp = self.name();
        let Some(data) = event_value(event, args) else { return };
        let mut opts = opts_of(&self.target);
        opts.flags.timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let publish = !self.target.flags.local;
        let core = &mut *self.cx.core;
        let waiting =
            Waiting::ClientAcks { local_counted: false, clients: 0, acks: Vec::new(), done: Box::new(done) };
        let packet = AdapterPacket { packet_type: 2, data: data.clone(), nsp: Some(nsp.to_string()) };
        let query = Query::BroadcastWithAck { packet, opts: opts.clone() };
        let answers = Some((core.id, Instant::now() + timeout, waiting));
        let Some(request_id) = outgoing::send(&core.shared, nsp.clone(), query, publish, answers) else {
            return;
        };
        outgoing::emit_with_acks_everywhere(&core.shared, nsp, data, opts, timeout, request_id);
    }
}

impl Ctx<'_> {
    /// `io.of(nsp).serverSideEmit(event, …args)`: the other servers of the cluster receive it (their
    /// `io.on(event)` listeners, or [`crate::api::Namespace::on_server_side_emit`]); this one does not.
    /// Nothing happens without a cluster.
    pub fn server_side_emit(&mut self, nsp: &str, event: &str, args: &[Arg]) {
        server_side_emit(&self.core.shared, nsp, event, args);
    }

    /// `serverSideEmitWithAck`: as [`Ctx::server_side_emit`], and `done` gets one answer per other
    /// server (the first argument of its ack), or [`TimedOut`] with those that came in time. Without
    /// other servers, `done` gets an empty list.
    pub fn server_side_emit_with_ack(
        &mut self,
        nsp: &str,
        event: &str,
        args: &[Arg],
        done: impl FnOnce(&mut Ctx<'_>, ClusterResult<Vec<Arg>>) + Send + 'static,
    ) {
        let Some(data) = event_value(event, args) else { return };
        let waiting = Waiting::ServerAcks { acks: Vec::new(), done: Box::new(done) };
        let answers = Some((self.core.id, requests_deadline(self.core), waiting));
        let shared = self.core.shared.clone();
        outgoing::send(&shared, Arc::from(nsp), Query::ServerSideEmit { data }, true, answers);
    }

    /// `adapter.allRooms()`: the names of every room of namespace `nsp` on every server of the cluster
    /// (socket-id rooms included), this server's first, each once. With `--redis-sharded`, whose
    /// protocol has no such request, this server's rooms only (at once).
    pub fn fetch_cluster_rooms(
        &mut self,
        nsp: &str,
        done: impl FnOnce(&mut Ctx<'_>, ClusterResult<Vec<String>>) + Send + 'static,
    ) {
        let nsp: Arc<str> = Arc::from(nsp);
        self.fetch_rooms(&nsp.clone(), move |cx, view| {
            let rooms = view.into_keys().collect();
            let waiting = Waiting::Rooms { rooms, done: Box::new(done) };
            let answers = Some((cx.core.id, requests_deadline(cx.core), waiting));
            let shared = cx.core.shared.clone();
            outgoing::send(&shared, nsp, Query::AllRooms, true, answers);
        });
    }
}

impl ServerHandle {
    /// [`Ctx::server_side_emit`] from any thread.
    pub fn server_side_emit(&self, nsp: &str, event: &str, args: &[Arg]) {
        server_side_emit(&self.shared, nsp, event, args);
    }
}

fn server_side_emit(shared: &crate::shard::shared::Shared, nsp: &str, event: &str, args: &[Arg]) {
    if let Some(data) = event_value(event, args) {
        outgoing::send(shared, Arc::from(nsp), Query::ServerSideEmit { data }, true, None);
    }
}
