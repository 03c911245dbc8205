//! Requests from other nodes and emitters (channel `<key>-request#<nsp>#`), applied on every shard.
//!
//! Each request becomes one `ShardMsg::Run` closure per shard, acting on that shard's sockets only.
//! Requests that need an answer gather the shards' parts in a [`Gather`]; the shard that reports last
//! publishes the one response (through the publisher queue, never waiting). A shard that is shutting down may never report: the requester then
//! times out, as it would with a dead Node server.
//!
//! Control path: allocations and a mutex per request are fine here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_engine::cluster::transcode::{arg_value, event_args};
use roomcast_engine::cluster::{
    AdapterPacket, BroadcastOpts, ClassicChannels, LegacyAction, Request, RequestKind, Response, Value,
};
use roomcast_engine::rooms::RoomName;
use roomcast_engine::sio::encode_event_with_binary;

use super::inbound::{encoded, log_dropped, target_of};
use super::{sockets, ClusterLink};
use crate::api::socket::Ctx;
use crate::api::{AckError, Arg};
use crate::broadcast::EncodedPacket;
use crate::shard::selection::SelectionOp;
use crate::shard::shared::{ShardMsg, Shared};
use crate::shard::timers::TimerKey;

/// Handles one request received for namespace `nsp`.
pub(super) fn on_request(shared: &Shared, link: &ClusterLink, nsp: &str, payload: &[u8]) {
    let request = match Request::decode(payload) {
        Ok(request) => request,
        Err(e) => return log_dropped("request", nsp, &e),
    };
    let own = request.uid.as_deref() == Some(link.uid.as_str());
    let channels = ClassicChannels::new(link.config.key_prefix.clone());
    let respond_on = channels.response(nsp);
    let nsp: Arc<str> = Arc::from(nsp);
    match request.kind {
        // This server never publishes these, so an own uid cannot occur; skipping it is the
        // ClusterAdapter's rule (apply locally, ignore the echo) should it ever publish them.
        RequestKind::SocketsJoin { .. }
        | RequestKind::SocketsLeave { .. }
        | RequestKind::DisconnectSockets { .. }
            if own => {}
        RequestKind::SocketsJoin { opts, rooms } => {
            let ops = rooms.iter().map(|room| SelectionOp::Join(RoomName::from(room.as_str()))).collect();
            apply_on_every_shard(shared, nsp, &opts, ops);
        }
        RequestKind::SocketsLeave { opts, rooms } => {
            let ops = rooms.iter().map(|room| SelectionOp::Leave(RoomName::from(room.as_str()))).collect();
            apply_on_every_shard(shared, nsp, &opts, ops);
        }
        RequestKind::DisconnectSockets { opts, close } => {
            apply_on_every_shard(shared, nsp, &opts, vec![SelectionOp::Disconnect { close }]);
        }
        _ if own => {}
        RequestKind::FetchSockets { request_id, opts } => {
            let gather = Gather::new(shared, move |parts: Vec<Vec<_>>, shared: &Shared| {
                let sockets = parts.into_iter().flatten().collect();
                respond(shared, &respond_on, Response::FetchSockets { request_id, sockets });
            });
            on_every_shard(shared, move |cx| {
                let part = sockets::fetch(cx, &nsp, &opts);
                gather.add(cx, part);
            });
        }
        RequestKind::Sockets { request_id, rooms } => {
            let gather = Gather::new(shared, move |parts: Vec<Vec<_>>, shared: &Shared| {
                let sockets = parts.into_iter().flatten().collect();
                respond(shared, &respond_on, Response::Sockets { request_id, sockets });
            });
            let opts = BroadcastOpts { rooms, ..BroadcastOpts::default() };
            on_every_shard(shared, move |cx| {
                let part = sockets::ids(cx, &nsp, &opts);
                gather.add(cx, part);
            });
        }
        RequestKind::AllRooms { request_id } => {
            let gather = Gather::new(shared, move |parts: Vec<Vec<String>>, shared: &Shared| {
                let mut seen = std::collections::HashSet::new();
                let rooms = parts.into_iter().flatten().filter(|r| seen.insert(r.clone())).collect();
                respond(shared, &respond_on, Response::AllRooms { request_id, rooms });
            });
            on_every_shard(shared, move |cx| {
                let part = sockets::all_rooms(cx, &nsp);
                gather.add(cx, part);
            });
        }
        RequestKind::Legacy { request_id, sid, action } => {
            let gather = Gather::new(shared, move |found: Vec<bool>, shared: &Shared| {
                if found.contains(&true) {
                    respond(shared, &respond_on, Response::Done { request_id });
                }
            });
            on_every_shard(shared, move |cx| {
                let opts = BroadcastOpts { rooms: vec![sid.clone()], ..BroadcastOpts::default() };
                let found = !sockets::ids(cx, &nsp, &opts).is_empty();
                if found {
                    let op = match &action {
                        LegacyAction::Join(room) => SelectionOp::Join(RoomName::from(room.as_str())),
                        LegacyAction::Leave(room) => SelectionOp::Leave(RoomName::from(room.as_str())),
                        LegacyAction::Disconnect { close } => SelectionOp::Disconnect { close: *close },
                    };
                    cx.core.apply_selection(cx.out, &nsp, &target_of(&opts), &op);
                }
                gather.add(cx, found);
            });
        }
        RequestKind::ServerSideEmit { request_id, data } => {
            server_side_emit(shared, link, &nsp, respond_on, request_id, &data);
        }
        RequestKind::BroadcastWithAck { request_id, packet, opts } => {
            let timeout = opts.flags.timeout.map_or(link.config.requests_timeout, Duration::from_millis);
            broadcast_with_ack(shared, link, nsp, respond_on, request_id, packet, opts, timeout);
        }
    }
}

/// Publishes a response on the namespace's response channel.
fn respond(shared: &Shared, channel: &str, response: Response) {
    if let Some(link) = super::link(shared) {
        link.publish(channel.to_owned(), response.encode());
    }
}

/// Runs `f` on every shard.
pub(super) fn on_every_shard(shared: &Shared, f: impl Fn(&mut Ctx<'_>) + Send + Sync + 'static) {
    let f = Arc::new(f);
    for inbox in &shared.inboxes {
        let f = f.clone();
        inbox.push(ShardMsg::Run(Box::new(move |cx: &mut Ctx<'_>| f(cx))));
    }
}

/// Applies `ops` to what `opts` selects in `nsp`, each shard to its own sockets (never published again).
pub(super) fn apply_on_every_shard(
    shared: &Shared,
    nsp: Arc<str>,
    opts: &BroadcastOpts,
    ops: Vec<SelectionOp>,
) {
    let target = target_of(opts);
    on_every_shard(shared, move |cx| {
        for op in &ops {
            cx.core.apply_selection(cx.out, &nsp, &target, op);
        }
    });
}

/// Collects one part per shard; the last shard to report runs `finish` with all of them.
pub(super) struct Gather<T> {
    left: AtomicUsize,
    parts: Mutex<Vec<T>>,
    #[allow(clippy::type_complexity)]
    finish: Mutex<Option<Box<dyn FnOnce(Vec<T>, &Shared) + Send>>>,
}

impl<T: Send + 'static> Gather<T> {
    pub(super) fn new(
        shared: &Shared,
        finish: impl FnOnce(Vec<T>, &Shared) + Send + 'static,
    ) -> Arc<Gather<T>> {
        Arc::new(Gather {
            left: AtomicUsize::new(shared.shard_count()),
            parts: Mutex::new(Vec::with_capacity(shared.shard_count())),
            finish: Mutex::new(Some(Box::new(finish))),
        })
    }

    pub(super) fn add(&self, cx: &mut Ctx<'_>, part: T) {
        if let Ok(mut parts) = self.parts.lock() {
            parts.push(part);
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let finish = self.finish.lock().ok().and_then(|mut f| f.take());
            let parts = self.parts.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
            if let Some(finish) = finish {
                finish(parts, &cx.core.shared);
            }
        }
    }
}

/// SERVER_SIDE_EMIT: the namespace's `on_server_side_emit` listener runs here, on the subscriber
/// thread; with a request id it gets an ack that answers on the response channel.
fn server_side_emit(
    shared: &Shared,
    link: &ClusterLink,
    nsp: &str,
    respond_on: String,
    request_id: Option<String>,
    data: &Value,
) {
    let defined = shared.namespaces.iter().find(|(name, _)| &**name == nsp).map(|(_, def)| def);
    let dynamic = || shared.dynamic.iter().find(|(matches, _)| matches(nsp)).map(|(_, def)| def);
    let Some(def) = defined.or_else(dynamic) else { return };
    let Some(listener) = def.server_side_listener.clone() else { return };
    let (event, args) = match event_args(data) {
        Ok(parts) => parts,
        Err(e) => return log_dropped("server-side emit", nsp, &e),
    };
    let args: Vec<Arg> = args.into_iter().map(sockets::arg_of).collect();
    let ack = request_id.map(|request_id| super::ServerSideAck {
        tx: link.sender(),
        channel: respond_on,
        request_id,
        format: super::wire::AckFormat::Classic,
    });
    crate::shard::guard::guarded(|| listener(event, &args, ack));
}

/// BROADCAST (emit with ack): every shard sends the packet with its own ack id to its targets and
/// reports how many; the last publishes BROADCAST_CLIENT_COUNT, and each client's ack becomes one
/// BROADCAST_ACK. Acks that do not come within `timeout` are dropped (the requester times out).
#[allow(clippy::too_many_arguments)]
fn broadcast_with_ack(
    shared: &Shared,
    link: &ClusterLink,
    nsp: Arc<str>,
    respond_on: String,
    request_id: String,
    packet: AdapterPacket,
    opts: BroadcastOpts,
    timeout: Duration,
) {
    if event_args(&packet.data).is_err() {
        return log_dropped("broadcast request", &nsp, &"data is not [event, …args]");
    }
    let counted = {
        let (request_id, respond_on) = (request_id.clone(), respond_on.clone());
        Gather::new(shared, move |counts: Vec<u64>, shared: &Shared| {
            let client_count = counts.iter().sum();
            respond(shared, &respond_on, Response::BroadcastClientCount { request_id, client_count });
        })
    };
    let tx = link.sender();
    on_every_shard(shared, move |cx| {
        let on_ack = {
            let (tx, channel, request_id) = (tx.clone(), respond_on.clone(), request_id.clone());
            move |answer: Result<Option<Value>, AckError>| {
                let Ok(first) = answer else { return };
                let response = Response::BroadcastAck { request_id: request_id.clone(), packet: first };
                let _ = tx.try_send(super::Outgoing::Publish {
                    channel: channel.clone(),
                    payload: response.encode(),
                });
            }
        };
        let count = emit_with_acks(cx, &nsp, &packet.data, &opts, timeout, Arc::new(on_ack));
        counted.add(cx, count);
    });
}

/// Sends `data` to the sockets `opts` selects on this shard, with one fresh ack id, and calls
/// `on_ack` once per socket: with its first ack argument, or why it will never come. Returns how many
/// sockets it was sent to.
pub(super) fn emit_with_acks(
    cx: &mut Ctx<'_>,
    nsp: &str,
    data: &Value,
    opts: &BroadcastOpts,
    timeout: Duration,
    on_ack: Arc<dyn Fn(Result<Option<Value>, AckError>) + Send + Sync>,
) -> u64 {
    let Some(index) = cx.core.namespace_index(nsp, false) else { return 0 };
    let ids = sockets::selected(cx, index, opts);
    let Ok((event, args)) = event_args(data) else { return 0 };
    let Some(namespace) = cx.core.nsps.get_mut(index as usize) else { return 0 };
    let ack_id = namespace.next_ack_id;
    namespace.next_ack_id += 1;
    let out_args: Vec<_> = args.iter().map(|a| a.as_out_arg()).collect();
    let mut text = bytes::BytesMut::new();
    text.extend_from_slice(b"4");
    let mut attachments = Vec::new();
    if encode_event_with_binary(nsp, Some(ack_id), event, &out_args, &mut text, &mut attachments).is_err() {
        return 0;
    }
    let packet: EncodedPacket =
        encoded(roomcast_engine::cluster::EventMessage { text: text.freeze(), attachments });
    let deadline = cx.core.now + timeout;
    let mut count = 0;
    for id in ids {
        let Some(socket) = cx.core.nsps.get_mut(index as usize).and_then(|n| n.socket_mut(id)) else {
            continue;
        };
        let key = socket.session;
        let on_ack = on_ack.clone();
        let callback: crate::api::AckCallback = Box::new(move |_, answer| {
            on_ack(answer.map(|args| args.first().and_then(|a| arg_value(&sockets::out_arg(a)).ok())));
        });
        socket.acks.get_or_insert_with(Default::default).insert(ack_id, callback);
        cx.core.timers.arm(deadline, TimerKey::Ack { nsp: index, socket: id, ack_id });
        cx.core.send_to_session(key, &packet);
        count += 1;
    }
    count
}
