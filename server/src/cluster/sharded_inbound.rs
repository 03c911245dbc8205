//! What the sharded subscriber does with one `ClusterAdapter` message `{type, data, uid, nsp}`, as a
//! Node server's `ClusterAdapter.onMessage` would:
//!
//! - its own uid, a namespace other than the channel's or one this node does not follow: ignored;
//! - a response (FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT_RESPONSE, BROADCAST_CLIENT_COUNT,
//!   BROADCAST_ACK), normally on this node's own channel `<prefix>#<nsp>#<uid>#`: handed to the table
//!   of this node's pending requests (`super::outgoing`), which ignores ids it does not hold; anything
//!   else on the own channel is ignored, as Node's `onResponse` does;
//! - BROADCAST: decoded once, its packet and frames encoded once, pushed to every shard's inbox as a
//!   broadcast with no origin (exactly like a local `ServerHandle::emit`); with a `requestId`, every
//!   shard sends it with an ack id, the last to count publishes one BROADCAST_CLIENT_COUNT and each
//!   client's ack becomes one BROADCAST_ACK;
//! - SOCKETS_JOIN / SOCKETS_LEAVE / DISCONNECT_SOCKETS: applied on every shard;
//! - FETCH_SOCKETS: one FETCH_SOCKETS_RESPONSE gathered from every shard;
//! - SERVER_SIDE_EMIT: the namespace's server-side listener, with an ack answering
//!   SERVER_SIDE_EMIT_RESPONSE when a `requestId` asks for one;
//! - heartbeats and ADAPTER_CLOSE: ignored.
//!
//! Answers go to the requester's channel `<prefix>#<nsp>#<requester uid>#` through the publisher.
//! Malformed messages are logged and dropped; nothing here can stop the subscriber.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use roomcast_engine::cluster::msgpack;
use roomcast_engine::cluster::transcode::{event_args, value_to_json};
use roomcast_engine::cluster::{
    AdapterPacket, BroadcastOpts, ShardedBody, ShardedChannels, ShardedMessage, Value,
};
use roomcast_engine::rooms::RoomName;

use super::inbound::{encoded, log_dropped, target_of};
use super::outgoing::Answer;
use super::requests::{apply_on_every_shard, emit_with_acks, on_every_shard, Gather};
use super::wire::AckFormat;
use super::{sockets, ClusterLink, Outgoing, ServerSideAck};
use crate::api::Arg;
use crate::broadcast::Broadcast;
use crate::shard::selection::SelectionOp;
use crate::shard::shared::{ShardMsg, Shared};

/// Handles one message received on `channel`.
pub(super) fn on_message(
    shared: &Shared,
    link: &ClusterLink,
    channels: &ShardedChannels,
    followed: &Followed,
    channel: &[u8],
    payload: &[u8],
) {
    let Some((nsp, named)) = channels.parse(channel) else { return };
    let Some(nsp) = followed.get(nsp) else { return };
    if followed.is_own_echo(&nsp, payload) {
        return;
    }
    let message = match ShardedMessage::decode(payload) {
        Ok(message) => message,
        Err(e) => return log_dropped("sharded message", &nsp, &e),
    };
    if message.uid == link.uid || *message.nsp != *nsp {
        return;
    }
    if message.body.is_response() {
        if let Some((request_id, answer)) = Answer::from_sharded(message.body) {
            shared.requests.answer(shared, &request_id, answer);
        }
        return;
    }
    if named == Some(link.uid.as_str()) {
        return;
    }
    let reply =
        || Reply { channel: channels.node(&nsp, &message.uid), uid: link.uid.clone(), nsp: nsp.clone() };
    match message.body {
        ShardedBody::Broadcast { packet, opts, request_id: None } => broadcast(shared, nsp, &packet, &opts),
        ShardedBody::Broadcast { packet, opts, request_id: Some(request_id) } => {
            let timeout = opts.flags.timeout.map_or(link.config.requests_timeout, Duration::from_millis);
            broadcast_with_ack(shared, link, reply(), request_id, packet, opts, timeout);
        }
        ShardedBody::SocketsJoin { opts, rooms } => {
            let ops = rooms.iter().map(|room| SelectionOp::Join(RoomName::from(room.as_str()))).collect();
            apply_on_every_shard(shared, nsp, &opts, ops);
        }
        ShardedBody::SocketsLeave { opts, rooms } => {
            let ops = rooms.iter().map(|room| SelectionOp::Leave(RoomName::from(room.as_str()))).collect();
            apply_on_every_shard(shared, nsp, &opts, ops);
        }
        ShardedBody::DisconnectSockets { opts, close } => {
            apply_on_every_shard(shared, nsp, &opts, vec![SelectionOp::Disconnect { close }]);
        }
        ShardedBody::FetchSockets { opts, request_id } => {
            let reply = reply();
            let gather = Gather::new(shared, move |parts: Vec<Vec<_>>, shared: &Shared| {
                let sockets = parts.into_iter().flatten().collect();
                reply.send(shared, ShardedBody::FetchSocketsResponse { request_id, sockets });
            });
            on_every_shard(shared, move |cx| {
                let part = sockets::fetch(cx, &nsp, &opts);
                gather.add(cx, part);
            });
        }
        ShardedBody::ServerSideEmit { request_id, packet } => {
            server_side_emit(shared, link, reply(), request_id, &packet);
        }
        // Responses were handled above.
        ShardedBody::InitialHeartbeat
        | ShardedBody::Heartbeat
        | ShardedBody::AdapterClose
        | ShardedBody::FetchSocketsResponse { .. }
        | ShardedBody::ServerSideEmitResponse { .. }
        | ShardedBody::BroadcastClientCount { .. }
        | ShardedBody::BroadcastAck { .. } => {}
    }
}

/// The namespaces the sharded subscriber follows: those defined at start, then each dynamic one once a
/// shard created it. With each, the last bytes that mark this node's own messages, which Redis hands
/// back on every channel this node follows, so they are dropped without decoding. This node's encoder
/// writes `uid` then `nsp` last (as Node's does): in JSON `,"uid":"<uid>","nsp":"<nsp>"}`, in msgpack
/// the map entries `uid`, `nsp`. A JSON message ending so has these as its last top-level members
/// (nothing can follow the closing brace); the decoded check on `uid` stays for whatever this misses.
pub(super) struct Followed {
    uid: String,
    /// Per namespace: the JSON and the msgpack ending.
    endings: Vec<(Arc<str>, Bytes, Bytes)>,
}

impl Followed {
    pub(super) fn new(uid: &str, namespaces: &[Arc<str>]) -> Followed {
        let mut followed = Followed { uid: uid.to_owned(), endings: Vec::new() };
        for nsp in namespaces {
            followed.add(nsp.clone());
        }
        followed
    }

    /// Follows `nsp` too; `false` if it already did.
    pub(super) fn add(&mut self, nsp: Arc<str>) -> bool {
        if self.get(&nsp).is_some() {
            return false;
        }
        let tail = Value::Map(vec![
            ("uid".to_owned(), Value::str(&self.uid)),
            ("nsp".to_owned(), Value::str(&*nsp)),
        ]);
        let mut json = value_to_json(&tail).to_vec();
        if let Some(open) = json.first_mut() {
            *open = b',';
        }
        // A two-entry map is one byte of header (fixmap 0x82), then the entries.
        let msgpack = msgpack::to_bytes(&tail).slice(1..);
        self.endings.push((nsp, Bytes::from(json), msgpack));
        true
    }

    /// Every namespace followed, in the order they were added.
    pub(super) fn names(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.endings.iter().map(|(name, ..)| name)
    }

    fn get(&self, nsp: &str) -> Option<Arc<str>> {
        self.endings.iter().find(|(name, ..)| &**name == nsp).map(|(name, ..)| name.clone())
    }

    fn is_own_echo(&self, nsp: &str, payload: &[u8]) -> bool {
        let Some((_, json, msgpack)) = self.endings.iter().find(|(name, ..)| &**name == nsp) else {
            return false;
        };
        let ending: &[u8] = if payload.first() == Some(&b'{') { json } else { msgpack };
        payload.ends_with(ending)
    }
}

/// Where and as whom to answer a request: the requester's node channel, this node's uid.
struct Reply {
    channel: String,
    uid: String,
    nsp: Arc<str>,
}

impl Reply {
    fn message(&self, body: ShardedBody) -> bytes::Bytes {
        ShardedMessage { uid: self.uid.clone(), nsp: self.nsp.to_string(), body }.encode()
    }

    /// Publishes an answer (never blocks).
    fn send(&self, shared: &Shared, body: ShardedBody) {
        if let Some(link) = super::link(shared) {
            link.publish(self.channel.clone(), self.message(body));
        }
    }
}

/// A broadcast from another node: one encoding for every shard.
fn broadcast(shared: &Shared, nsp: Arc<str>, packet: &AdapterPacket, opts: &BroadcastOpts) {
    let event = match packet.event_message(&nsp) {
        Ok(event) => event,
        Err(e) => return log_dropped("broadcast", &nsp, &e),
    };
    let broadcast =
        Arc::new(Broadcast { nsp, target: target_of(opts), packet: encoded(event), origin: None });
    for inbox in &shared.inboxes {
        inbox.push(ShardMsg::Broadcast(broadcast.clone()));
    }
}

/// BROADCAST with a `requestId`: as the classic adapter's BROADCAST request, answered in the sharded
/// format. Acks that do not come within `timeout` are dropped (the requester times out).
fn broadcast_with_ack(
    shared: &Shared,
    link: &ClusterLink,
    reply: Reply,
    request_id: String,
    packet: AdapterPacket,
    opts: BroadcastOpts,
    timeout: Duration,
) {
    if event_args(&packet.data).is_err() {
        return log_dropped("broadcast request", &reply.nsp, &"data is not [event, …args]");
    }
    let reply = Arc::new(reply);
    let counted = {
        let (reply, request_id) = (reply.clone(), request_id.clone());
        Gather::new(shared, move |counts: Vec<u64>, shared: &Shared| {
            let client_count = counts.iter().sum();
            reply.send(shared, ShardedBody::BroadcastClientCount { request_id, client_count });
        })
    };
    let tx = link.sender();
    on_every_shard(shared, move |cx| {
        let on_ack = {
            let (tx, reply, request_id) = (tx.clone(), reply.clone(), request_id.clone());
            move |answer: Result<Option<Value>, crate::api::AckError>| {
                let Ok(first) = answer else { return };
                let body = ShardedBody::BroadcastAck { request_id: request_id.clone(), packet: first };
                let _ = tx.try_send(Outgoing::Publish {
                    channel: reply.channel.clone(),
                    payload: reply.message(body),
                });
            }
        };
        let count = emit_with_acks(cx, &reply.nsp, &packet.data, &opts, timeout, Arc::new(on_ack));
        counted.add(cx, count);
    });
}

/// SERVER_SIDE_EMIT: the namespace's `on_server_side_emit` listener runs here, on the subscriber
/// thread; with a request id it gets an ack that answers SERVER_SIDE_EMIT_RESPONSE.
fn server_side_emit(
    shared: &Shared,
    link: &ClusterLink,
    reply: Reply,
    request_id: Option<String>,
    data: &Value,
) {
    let nsp = &*reply.nsp;
    let defined = shared.namespaces.iter().find(|(name, _)| &**name == nsp).map(|(_, def)| def);
    let dynamic = || shared.dynamic.iter().find(|(matches, _)| matches(nsp)).map(|(_, def)| def);
    let Some(def) = defined.or_else(dynamic) else { return };
    let Some(listener) = def.server_side_listener.clone() else { return };
    let (event, args) = match event_args(data) {
        Ok(parts) => parts,
        Err(e) => return log_dropped("server-side emit", &reply.nsp, &e),
    };
    let args: Vec<Arg> = args.into_iter().map(sockets::arg_of).collect();
    let ack = request_id.map(|request_id| ServerSideAck {
        tx: link.sender(),
        channel: reply.channel,
        request_id,
        format: AckFormat::Sharded { uid: reply.uid, nsp: reply.nsp.to_string() },
    });
    crate::shard::guard::guarded(|| listener(event, &args, ack));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn own_messages_are_known_by_their_ending_in_json_and_msgpack() {
        let mut echo = Followed::new("99fb7ac32675bdc5", &[Arc::from("/")]);
        assert!(echo.add(Arc::from("/admin")) && !echo.add(Arc::from("/admin")));
        let message = |uid: &str, nsp: &str, data: Value| {
            let packet = AdapterPacket { packet_type: 2, data, nsp: None };
            let body = ShardedBody::Broadcast { packet, opts: BroadcastOpts::default(), request_id: None };
            ShardedMessage { uid: uid.to_owned(), nsp: nsp.to_owned(), body }.encode()
        };
        let text = Value::Array(vec![Value::str("a")]);
        let binary = Value::Array(vec![Value::str("a"), Value::Bin(Bytes::from_static(&[1, 2]))]);
        for data in [text, binary] {
            assert!(echo.is_own_echo("/", &message("99fb7ac32675bdc5", "/", data.clone())));
            assert!(echo.is_own_echo("/admin", &message("99fb7ac32675bdc5", "/admin", data.clone())));
            assert!(!echo.is_own_echo("/", &message("0123456789abcdef", "/", data.clone())));
            assert!(!echo.is_own_echo("/", &message("99fb7ac32675bdc5", "/admin", data.clone())));
            assert!(!echo.is_own_echo("/other", &message("99fb7ac32675bdc5", "/other", data)));
        }
    }
}
