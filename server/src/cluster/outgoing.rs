//! Requests this server originates (`fetchSockets`, `allRooms`, `socketsJoin`/`Leave`,
//! `disconnectSockets`, `serverSideEmit` with or without ack, broadcast with acks), and the table of
//! those still waiting for answers.
//!
//! Transport-neutral on purpose: a [`Query`] is what is asked and an [`Answer`] what comes back; the
//! classic adapter's encoding is [`Query::classic`] and [`Answer::from_classic`], the sharded adapter's
//! (socket.io-adapter's `ClusterAdapter` messages) [`Query::sharded`] and [`Answer::from_sharded`].
//!
//! Life of a request with answers, never blocking a shard:
//! 1. the asking shard inserts a [`Pending`] entry (request id → what to gather, its deadline, the
//!    asking shard) and queues the query for the publisher ([`Outgoing::Request`]);
//! 2. the publisher `PUBLISH`es it on the request channel (sharded: `SPUBLISH` on the namespace's main
//!    channel); Redis replies with how many connections received it, which is every subscribed server
//!    including this one: the other servers expected to answer are that count minus one
//!    ([`PendingRequests::counted`]). That holds once this node's own subscription to the namespace is
//!    confirmed, so the publisher holds requests with answers until then
//!    ([`super::ClusterLink::is_subscribed`]). Node asks `PUBSUB NUMSUB` (sharded: `PUBSUB SHARDNUMSUB`) of the
//!    same channel just before publishing; the publish reply counts the same subscribers, atomically
//!    with the delivery, without a second round trip;
//! 3. answers arrive on the subscriber thread ([`on_response`]; sharded: on this node's own channel,
//!    `sharded_inbound`); answers to ids not pending here (other servers' requests share the classic
//!    response channel) are ignored;
//! 4. once every expected server (and, for a broadcast with acks, every client they counted) answered,
//!    or the deadline passed ([`PendingRequests::expire`], swept by the publisher thread), the entry is
//!    removed and the caller's callback is sent to the asking shard's inbox with the result.
//!
//! Control path: one mutex over the table, taken per request, per answer and per publisher turn while
//! something is pending (never on the broadcast path).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use roomcast_engine::cluster::transcode::EventArg;
use roomcast_engine::cluster::{
    AdapterPacket, BroadcastOpts, RemoteSocket, Request, RequestKind, Response, ShardedBody, ShardedMessage,
    Value,
};
use roomcast_engine::ids::ShardId;

use super::requests::{emit_with_acks, on_every_shard, Gather};
use super::sockets::arg_of;
use crate::api::cluster::{ClusterSockets, TimedOut};
use crate::api::socket::Ctx;
use crate::api::Arg;
use crate::shard::shared::{ShardMsg, Shared};

/// What this server asks the other servers of a namespace.
#[derive(Debug, Clone)]
pub(crate) enum Query {
    /// `fetchSockets`: describe the sockets `opts` selects.
    FetchSockets { opts: BroadcastOpts },
    /// `allRooms`: list every room.
    AllRooms,
    /// `socketsJoin`: the sockets `opts` selects join `rooms`. No answer.
    SocketsJoin { opts: BroadcastOpts, rooms: Vec<String> },
    /// `socketsLeave`. No answer.
    SocketsLeave { opts: BroadcastOpts, rooms: Vec<String> },
    /// `disconnectSockets(close)`. No answer.
    DisconnectSockets { opts: BroadcastOpts, close: bool },
    /// `serverSideEmit`: `[event, …args]`; answered (one ack per server) when sent with a request id.
    ServerSideEmit { data: Value },
    /// Broadcast with acks: every server answers its client count, then each client's ack.
    BroadcastWithAck { packet: AdapterPacket, opts: BroadcastOpts },
}

impl Query {
    /// The classic adapter's request for this query, from the server `uid`.
    pub(crate) fn classic(&self, uid: &str, request_id: Option<&str>) -> Request {
        let id = || request_id.unwrap_or_default().to_owned();
        let kind = match self.clone() {
            Query::FetchSockets { opts } => RequestKind::FetchSockets { request_id: id(), opts },
            Query::AllRooms => RequestKind::AllRooms { request_id: id() },
            Query::SocketsJoin { opts, rooms } => RequestKind::SocketsJoin { opts, rooms },
            Query::SocketsLeave { opts, rooms } => RequestKind::SocketsLeave { opts, rooms },
            Query::DisconnectSockets { opts, close } => RequestKind::DisconnectSockets { opts, close },
            Query::ServerSideEmit { data } => {
                RequestKind::ServerSideEmit { request_id: request_id.map(str::to_owned), data }
            }
            Query::BroadcastWithAck { packet, opts } => {
                RequestKind::BroadcastWithAck { request_id: id(), packet, opts }
            }
        };
        Request { uid: Some(uid.to_owned()), kind }
    }

    /// The sharded adapter's message for this query in namespace `nsp`, from the server `uid`, as
    /// socket.io-adapter's `ClusterAdapter` writes its own: FETCH_SOCKETS, SOCKETS_JOIN/LEAVE,
    /// DISCONNECT_SOCKETS, SERVER_SIDE_EMIT, and a BROADCAST with a `requestId` for a broadcast with
    /// acks (its packet without `nsp`: Node publishes it before the in-memory adapter sets one). `None`
    /// for [`Query::AllRooms`], which that protocol does not have.
    pub(crate) fn sharded(&self, uid: &str, nsp: &str, request_id: Option<&str>) -> Option<ShardedMessage> {
        let id = || request_id.unwrap_or_default().to_owned();
        let body = match self.clone() {
            Query::FetchSockets { opts } => ShardedBody::FetchSockets { opts, request_id: id() },
            Query::AllRooms => return None,
            Query::SocketsJoin { opts, rooms } => ShardedBody::SocketsJoin { opts, rooms },
            Query::SocketsLeave { opts, rooms } => ShardedBody::SocketsLeave { opts, rooms },
            Query::DisconnectSockets { opts, close } => ShardedBody::DisconnectSockets { opts, close },
            Query::ServerSideEmit { data } => {
                ShardedBody::ServerSideEmit { request_id: request_id.map(str::to_owned), packet: data }
            }
            Query::BroadcastWithAck { packet, opts } => ShardedBody::Broadcast {
                packet: AdapterPacket { nsp: None, ..packet },
                opts,
                request_id: Some(id()),
            },
        };
        Some(ShardedMessage { uid: uid.to_owned(), nsp: nsp.to_owned(), body })
    }
}

/// One answer from another server to a request of this one.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// Its sockets, for [`Query::FetchSockets`].
    Sockets(Vec<RemoteSocket>),
    /// Its rooms, for [`Query::AllRooms`].
    Rooms(Vec<String>),
    /// Its listener's ack (first argument), for [`Query::ServerSideEmit`].
    ServerAck(Option<Value>),
    /// How many of its clients a [`Query::BroadcastWithAck`] reached.
    ClientCount(u64),
    /// One client's ack (first argument) of a [`Query::BroadcastWithAck`].
    ClientAck(Option<Value>),
}

impl Answer {
    /// The request id and answer of a classic response (`None` for legacy answers this server never
    /// asks for).
    pub(crate) fn from_classic(response: Response) -> Option<(String, Answer)> {
        Some(match response {
            Response::FetchSockets { request_id, sockets } => (request_id, Answer::Sockets(sockets)),
            Response::AllRooms { request_id, rooms } => (request_id, Answer::Rooms(rooms)),
            Response::ServerSideEmit { request_id, data } => (request_id, Answer::ServerAck(data)),
            Response::BroadcastClientCount { request_id, client_count } => {
                (request_id, Answer::ClientCount(client_count))
            }
            Response::BroadcastAck { request_id, packet } => (request_id, Answer::ClientAck(packet)),
            Response::Sockets { .. } | Response::Done { .. } => return None,
        })
    }

    /// The request id and answer of a sharded response (`None` for a message that is not one).
    pub(crate) fn from_sharded(body: ShardedBody) -> Option<(String, Answer)> {
        Some(match body {
            ShardedBody::FetchSocketsResponse { request_id, sockets } => {
                (request_id, Answer::Sockets(sockets))
            }
            ShardedBody::ServerSideEmitResponse { request_id, packet } => {
                (request_id, Answer::ServerAck(packet))
            }
            ShardedBody::BroadcastClientCount { request_id, client_count } => {
                (request_id, Answer::ClientCount(client_count))
            }
            ShardedBody::BroadcastAck { request_id, packet } => (request_id, Answer::ClientAck(packet)),
            _ => return None,
        })
    }

    /// Whether this answer is one server's whole answer (acks of a broadcast are not).
    fn is_server_answer(&self) -> bool {
        !matches!(self, Answer::ClientAck(_))
    }
}

/// What runs on the asking shard once a request is over.
type Job = Box<dyn FnOnce(&mut Ctx<'_>) + Send>;
/// A caller's callback.
pub(crate) type Done<T> = Box<dyn FnOnce(&mut Ctx<'_>, Result<T, TimedOut<T>>) + Send>;

/// What a pending request gathers, with the caller's callback.
pub(crate) enum Waiting {
    /// `fetchSockets`: this server's sockets (gathered before asking) and the others'.
    Sockets { found: ClusterSockets, done: Done<ClusterSockets> },
    /// `allRooms`: every room seen, this server's first.
    Rooms { rooms: Vec<String>, done: Done<Vec<String>> },
    /// `serverSideEmitWithAck`: one ack per other server.
    ServerAcks { acks: Vec<Arg>, done: Done<Vec<Arg>> },
    /// Broadcast with acks: clients counted (this server's once its shards reported), and their acks.
    ClientAcks { local_counted: bool, clients: u64, acks: Vec<Arg>, done: Done<Vec<Arg>> },
}

impl Waiting {
    fn record(&mut self, answer: Answer) {
        match (self, answer) {
            (Waiting::Sockets { found, .. }, Answer::Sockets(sockets)) => found.remote.extend(sockets),
            (Waiting::Rooms { rooms, .. }, Answer::Rooms(more)) => {
                for room in more {
                    if !rooms.contains(&room) {
                        rooms.push(room);
                    }
                }
            }
            (Waiting::ServerAcks { acks, .. }, Answer::ServerAck(value)) => acks.push(arg_from(value)),
            (Waiting::ClientAcks { clients, .. }, Answer::ClientCount(n)) => *clients += n,
            (Waiting::ClientAcks { acks, .. }, Answer::ClientAck(value)) => acks.push(arg_from(value)),
            _ => {}
        }
    }

    /// Complete once `answered` servers answered out of `expected` (and every counted client acked).
    fn is_complete(&self, answered: u64, expected: u64) -> bool {
        match self {
            Waiting::ClientAcks { local_counted, clients, acks, .. } => {
                *local_counted && answered >= expected && acks.len() as u64 >= *clients
            }
            _ => answered >= expected,
        }
    }

    /// The callback run with what was gathered (`Err` when the deadline passed first).
    fn finish(self, timed_out: Option<(u64, Option<u64>)>) -> Job {
        fn job<T: Send + 'static>(done: Done<T>, value: T, timed_out: Option<(u64, Option<u64>)>) -> Job {
            let result = match timed_out {
                None => Ok(value),
                Some((answered, expected)) => Err(TimedOut { partial: value, answered, expected }),
            };
            Box::new(move |cx: &mut Ctx<'_>| crate::shard::guard::guarded(|| done(cx, result)))
        }
        match self {
            Waiting::Sockets { found, done } => job(done, found, timed_out),
            Waiting::Rooms { rooms, done } => job(done, rooms, timed_out),
            Waiting::ServerAcks { acks, done } | Waiting::ClientAcks { acks, done, .. } => {
                job(done, acks, timed_out)
            }
        }
    }
}

/// An answer's value as the server API hands it out (`null` when the peer sent none).
fn arg_from(value: Option<Value>) -> Arg {
    match value {
        Some(value) => arg_of(EventArg::from_value(&value)),
        None => Arg::Json(bytes::Bytes::from_static(b"null")),
    }
}

/// One request waiting for answers.
struct Pending {
    origin: ShardId,
    deadline: Instant,
    /// Other servers expected to answer: `None` until the publisher learned how many received it.
    expected: Option<u64>,
    /// Servers that answered so far.
    answered: u64,
    waiting: Waiting,
}

/// This server's requests still waiting for answers, by request id.
#[derive(Default)]
pub(crate) struct PendingRequests {
    table: Mutex<HashMap<String, Pending>>,
    /// Entries in `table`, read without the lock by the publisher's sweep.
    len: AtomicUsize,
}

impl std::fmt::Debug for PendingRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequests").field("len", &self.len.load(Ordering::Relaxed)).finish()
    }
}

impl PendingRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts waiting for answers to `request_id`, until `deadline`, for the shard `origin`.
    pub(crate) fn insert(&self, request_id: String, origin: ShardId, deadline: Instant, waiting: Waiting) {
        let pending = Pending { origin, deadline, expected: None, answered: 0, waiting };
        let mut table = self.lock();
        table.insert(request_id, pending);
        self.len.store(table.len(), Ordering::Release);
    }

    /// The publisher learned that `others` other servers received the request: finishes it if they all
    /// answered already (or there are none).
    pub(crate) fn counted(&self, shared: &Shared, request_id: &str, others: u64) {
        self.update(shared, request_id, |pending| pending.expected = Some(others));
    }

    /// Records an answer (from another server, or this server's own part of a broadcast with acks).
    pub(crate) fn answer(&self, shared: &Shared, request_id: &str, answer: Answer) {
        self.update(shared, request_id, |pending| {
            if answer.is_server_answer() {
                pending.answered += 1;
            }
            pending.waiting.record(answer);
        });
    }

    /// This server's shards reported how many of its clients a broadcast with acks reached.
    pub(crate) fn local_count(&self, shared: &Shared, request_id: &str, count: u64) {
        self.update(shared, request_id, |pending| {
            if let Waiting::ClientAcks { local_counted, clients, .. } = &mut pending.waiting {
                *local_counted = true;
                *clients += count;
            }
        });
    }

    fn update(&self, shared: &Shared, request_id: &str, f: impl FnOnce(&mut Pending)) {
        let done = {
            let mut table = self.lock();
            let Some(pending) = table.get_mut(request_id) else { return };
            f(pending);
            let complete = pending
                .expected
                .is_some_and(|expected| pending.waiting.is_complete(pending.answered, expected));
            let done = if complete { table.remove(request_id) } else { None };
            self.len.store(table.len(), Ordering::Release);
            done
        };
        if let Some(pending) = done {
            dispatch(shared, pending.origin, pending.waiting.finish(None));
        }
    }

    /// A client of this server will never ack a broadcast with acks (its ack timed out, or it left):
    /// the request ends now with a timeout, as it would at its deadline.
    pub(crate) fn local_ack_missed(&self, shared: &Shared, request_id: &str) {
        let pending = {
            let mut table = self.lock();
            let pending = table.remove(request_id);
            self.len.store(table.len(), Ordering::Release);
            pending
        };
        if let Some(pending) = pending {
            let job = pending.waiting.finish(Some((pending.answered, pending.expected)));
            dispatch(shared, pending.origin, job);
        }
    }

    /// Ends every request whose deadline passed: its callback gets a timeout with what came so far.
    /// Called by the publisher thread each turn; without pending requests it takes no lock.
    pub(crate) fn expire(&self, shared: &Shared, now: Instant) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let expired: Vec<Pending> = {
            let mut table = self.lock();
            let ids: Vec<String> =
                table.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| id.clone()).collect();
            let expired = ids.iter().filter_map(|id| table.remove(id)).collect();
            self.len.store(table.len(), Ordering::Release);
            expired
        };
        for pending in expired {
            let job = pending.waiting.finish(Some((pending.answered, pending.expected)));
            dispatch(shared, pending.origin, job);
        }
    }

    /// Whether `request_id` still waits for answers (not ended, e.g. at its deadline).
    pub(crate) fn is_pending(&self, request_id: &str) -> bool {
        self.lock().contains_key(request_id)
    }

    /// The earliest deadline of a pending request, for the publisher's wait.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.lock().values().map(|p| p.deadline).min()
    }
}

fn dispatch(shared: &Shared, origin: ShardId, job: Job) {
    if let Some(inbox) = shared.inbox(origin) {
        inbox.push(ShardMsg::Run(job));
    }
}

/// A response received on the subscriber thread (classic adapter).
pub(super) fn on_response(shared: &Shared, payload: &[u8]) {
    let response = match Response::decode(payload) {
        Ok(response) => response,
        Err(e) => return super::inbound::log_dropped("response", "?", &e),
    };
    if let Some((request_id, answer)) = Answer::from_classic(response) {
        shared.requests.answer(shared, &request_id, answer);
    }
}

/// Sends `query` for namespace `nsp` to the other servers (unless `publish` is false or the server
/// runs no cluster: then no other server is expected to answer). With `answers`, gathers what comes
/// back until the deadline and hands it to the callback in [`Waiting`] on the shard given. Never
/// blocks. Returns the request id, if it has one.
pub(crate) fn send(
    shared: &Shared,
    nsp: Arc<str>,
    query: Query,
    publish: bool,
    answers: Option<(ShardId, Instant, Waiting)>,
) -> Option<String> {
    let link = super::link(shared).filter(|_| publish);
    // Ids shaped as each adapter makes its own: 6 URL-safe characters (classic), 16 hex digits (sharded).
    let sharded = shared.cluster.as_ref().is_some_and(|c| c.config.sharded);
    let request_id = answers.map(|(origin, deadline, waiting)| {
        let id = if sharded { super::random_hex(16) } else { super::random_uid(6) };
        shared.requests.insert(id.clone(), origin, deadline, waiting);
        id
    });
    match link {
        Some(link) => link.send(super::Outgoing::Request { nsp, request_id: request_id.clone(), query }),
        None => {
            if let Some(id) = &request_id {
                shared.requests.counted(shared, id, 0);
            }
        }
    }
    request_id
}

/// This server's part of a broadcast with acks (request `request_id`): every shard emits to its
/// selected sockets with an ack each; the shards' counts add up to this server's client count, and each
/// ack (or the news that one will never come) goes to the pending request.
pub(crate) fn emit_with_acks_everywhere(
    shared: &Shared,
    nsp: Arc<str>,
    data: Value,
    opts: BroadcastOpts,
    timeout: std::time::Duration,
    request_id: String,
) {
    let counted = {
        let request_id = request_id.clone();
        Gather::new(shared, move |counts: Vec<u64>, shared: &Shared| {
            shared.requests.local_count(shared, &request_id, counts.iter().sum());
        })
    };
    on_every_shard(shared, move |cx| {
        let on_ack = {
            let (shared, request_id) = (cx.core.shared.clone(), request_id.clone());
            move |answer: Result<Option<Value>, crate::api::AckError>| match answer {
                Ok(first) => shared.requests.answer(&shared, &request_id, Answer::ClientAck(first)),
                Err(_) => shared.requests.local_ack_missed(&shared, &request_id),
            }
        };
        let count = emit_with_acks(cx, &nsp, &data, &opts, timeout, Arc::new(on_ack));
        counted.add(cx, count);
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts(rooms: &[&str]) -> BroadcastOpts {
        BroadcastOpts { rooms: rooms.iter().map(|r| (*r).to_owned()).collect(), ..BroadcastOpts::default() }
    }

    #[test]
    fn queries_are_written_as_the_node_adapter_writes_its_requests() {
        let join = Query::SocketsJoin { opts: opts(&[]), rooms: vec!["room4".into()] };
        assert_eq!(
            &join.classic("rcTSZ1", None).encode()[..],
            br#"{"uid":"rcTSZ1","type":2,"opts":{"rooms":[],"except":[]},"rooms":["room4"]}"#
        );
        let fetch = Query::FetchSockets { opts: opts(&["r"]) };
        assert_eq!(
            &fetch.classic("rcTSZ1", Some("YwKPo3")).encode()[..],
            br#"{"uid":"rcTSZ1","requestId":"YwKPo3","type":5,"opts":{"rooms":["r"],"except":[]}}"#
        );
        let emit = Query::ServerSideEmit { data: Value::Array(vec![Value::str("ping")]) };
        assert_eq!(&emit.classic("u", None).encode()[..], br#"{"uid":"u","type":6,"data":["ping"]}"#);
        assert_eq!(
            &emit.classic("u", Some("id")).encode()[..],
            br#"{"uid":"u","requestId":"id","type":6,"data":["ping"]}"#
        );
    }

    #[test]
    fn sharded_queries_are_written_as_the_cluster_adapter_writes_its_messages() {
        let uid = "99fb7ac32675bdc5";
        let encoded = |query: &Query, id: Option<&str>| query.sharded(uid, "/", id).unwrap().encode();
        let fetch = Query::FetchSockets { opts: opts(&["r"]) };
        assert_eq!(
            &encoded(&fetch, Some("5a1b"))[..],
            br#"{"type":7,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},"requestId":"5a1b"},"uid":"99fb7ac32675bdc5","nsp":"/"}"#
        );
        let join = Query::SocketsJoin { opts: opts(&[]), rooms: vec!["room4".into()] };
        assert_eq!(
            &encoded(&join, None)[..],
            br#"{"type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["room4"]},"uid":"99fb7ac32675bdc5","nsp":"/"}"#
        );
        let emit = Query::ServerSideEmit { data: Value::Array(vec![Value::str("ping")]) };
        assert_eq!(
            &encoded(&emit, Some("5a1b"))[..],
            br#"{"type":9,"data":{"requestId":"5a1b","packet":["ping"]},"uid":"99fb7ac32675bdc5","nsp":"/"}"#
        );
        // A broadcast with acks: the packet goes without `nsp`, and on the main channel even for one room.
        let packet = AdapterPacket {
            packet_type: 2,
            data: Value::Array(vec![Value::str("q")]),
            nsp: Some("/".into()),
        };
        let ack = Query::BroadcastWithAck { packet, opts: opts(&["r"]) };
        let message = ack.sharded(uid, "/", Some("5a1b")).unwrap();
        assert_eq!(
            &message.encode()[..],
            br#"{"type":3,"data":{"packet":{"type":2,"data":["q"]},"requestId":"5a1b","opts":{"rooms":["r"],"except":[],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#
        );
        let channels = roomcast_engine::cluster::ShardedChannels::default();
        let mode = roomcast_engine::cluster::SubscriptionMode::Dynamic;
        assert_eq!(message.publish_channel(&channels, mode), "socket.io#/#");
        assert!(Query::AllRooms.sharded(uid, "/", Some("5a1b")).is_none());
    }

    #[test]
    fn sharded_responses_become_answers_and_requests_do_not() {
        let (id, answer) = Answer::from_sharded(ShardedBody::BroadcastClientCount {
            request_id: "x".into(),
            client_count: 2,
        })
        .unwrap();
        assert_eq!(id, "x");
        assert!(matches!(answer, Answer::ClientCount(2)));
        let ack = ShardedBody::ServerSideEmitResponse { request_id: "y".into(), packet: Some(Value::Int(4)) };
        assert!(
            matches!(Answer::from_sharded(ack), Some((id, Answer::ServerAck(Some(Value::Int(4))))) if id == "y")
        );
        let request = ShardedBody::FetchSockets { opts: opts(&[]), request_id: "z".into() };
        assert!(Answer::from_sharded(request).is_none());
    }

    #[test]
    fn answers_to_unknown_kinds_are_not_ours() {
        assert!(Answer::from_classic(Response::Done { request_id: "x".into() }).is_none());
        let (id, answer) =
            Answer::from_classic(Response::BroadcastClientCount { request_id: "x".into(), client_count: 3 })
                .unwrap();
        assert_eq!(id, "x");
        assert!(matches!(answer, Answer::ClientCount(3)) && answer.is_server_answer());
        assert!(!Answer::ClientAck(None).is_server_answer());
    }

    #[test]
    fn a_broadcast_with_acks_waits_for_its_own_count_every_server_and_every_counted_client() {
        let mut waiting = Waiting::ClientAcks {
            local_counted: false,
            clients: 0,
            acks: Vec::new(),
            done: Box::new(|_, _| {}),
        };
        // No other server, but this server's shards have not counted yet.
        assert!(!waiting.is_complete(0, 0));
        if let Waiting::ClientAcks { local_counted, clients, .. } = &mut waiting {
            *local_counted = true;
            *clients = 1;
        }
        waiting.record(Answer::ClientCount(2));
        assert!(!waiting.is_complete(1, 1), "3 clients counted, none acked");
        for _ in 0..3 {
            waiting.record(Answer::ClientAck(Some(Value::str("ok"))));
        }
        assert!(waiting.is_complete(1, 1));
        assert!(!waiting.is_complete(1, 2), "a second server has not reported");
    }

    #[test]
    fn rooms_from_several_servers_are_listed_once() {
        let mut waiting = Waiting::Rooms { rooms: vec!["a".into()], done: Box::new(|_, _| {}) };
        waiting.record(Answer::Rooms(vec!["a".into(), "b".into()]));
        waiting.record(Answer::Rooms(vec!["b".into(), "c".into()]));
        let Waiting::Rooms { rooms, .. } = &waiting else { unreachable!() };
        assert_eq!(rooms, &["a", "b", "c"]);
        assert!(waiting.is_complete(2, 2) && !waiting.is_complete(1, 2));
    }
}
