//! What the subscriber does with one message: a broadcast from another node (or an emitter) becomes a
//! local broadcast on every shard; a request goes to [`super::requests`]; a response to
//! [`super::outgoing`], which keeps this server's own requests.
//!
//! Malformed messages are logged and dropped; nothing here can stop the subscriber.

use std::sync::Arc;

use roomcast_engine::cluster::classic::broadcast_sender;
use roomcast_engine::cluster::{BroadcastOpts, ClassicChannel, ClassicChannels, EventMessage};
use roomcast_engine::rooms::{BroadcastFlags, BroadcastTarget, RoomName};
use roomcast_engine::ws::{prebuilt_binary_frame, prebuilt_text_frame};

use super::{requests, ClusterLink};
use crate::broadcast::{Attachment, Broadcast, EncodedPacket};
use crate::shard::shared::{ShardMsg, Shared};

/// Handles one message received on `channel`.
pub(super) fn on_message(
    shared: &Shared,
    link: &ClusterLink,
    channels: &ClassicChannels,
    channel: &[u8],
    payload: &[u8],
) {
    match channels.parse(channel) {
        Some(ClassicChannel::Broadcast { nsp, .. }) => on_broadcast(shared, link, nsp, payload),
        Some(ClassicChannel::Request { nsp }) => requests::on_request(shared, link, nsp, payload),
        Some(ClassicChannel::Response { .. }) => super::outgoing::on_response(shared, payload),
        None => {}
    }
}

/// A broadcast from another server or an emitter: decoded once, encoded once for clients, handed to
/// every shard as a broadcast with no origin. Its own echo is dropped from the uid alone, before
/// decoding. A room channel is not checked against local rooms here: the shards' plans skip unknown
/// rooms at the cost of one name lookup each.
fn on_broadcast(shared: &Shared, link: &ClusterLink, nsp: &str, payload: &[u8]) {
    if broadcast_sender(payload) == Some(link.uid.as_str()) {
        return;
    }
    let message = match roomcast_engine::cluster::Broadcast::decode(payload) {
        Ok(message) => message,
        Err(e) => return log_dropped("broadcast", nsp, &e),
    };
    if message.packet.nsp_or_root() != nsp {
        return;
    }
    let event = match message.packet.event_message(nsp) {
        Ok(event) => event,
        Err(e) => return log_dropped("broadcast", nsp, &e),
    };
    let broadcast = Arc::new(Broadcast {
        nsp: Arc::from(nsp),
        target: target_of(&message.opts),
        packet: encoded(event),
        origin: None,
    });
    for inbox in &shared.inboxes {
        inbox.push(ShardMsg::Broadcast(broadcast.clone()));
    }
}

/// The local target of a peer's options: rooms, except rooms and the flags clients notice.
pub(super) fn target_of(opts: &BroadcastOpts) -> BroadcastTarget {
    BroadcastTarget {
        to: opts.rooms.iter().map(|r| RoomName::from(r.as_str())).collect(),
        except: opts.except.iter().map(|r| RoomName::from(r.as_str())).collect(),
        except_sids: Vec::new(),
        flags: BroadcastFlags {
            volatile: opts.flags.volatile == Some(true),
            // Already off the cluster: never published again, whatever the sender's flag.
            local: true,
            compress: opts.flags.compress != Some(false),
            timeout: opts.flags.timeout.and_then(|t| u32::try_from(t).ok()),
        },
    }
}

/// The packet clients receive, with its WebSocket frames built once.
pub(super) fn encoded(event: EventMessage) -> EncodedPacket {
    let frame = prebuilt_text_frame(&[&event.text]);
    let attachments = event
        .attachments
        .into_iter()
        .map(|data| Attachment { frame: prebuilt_binary_frame(&[&data]), data })
        .collect();
    EncodedPacket { text: event.text, frame, attachments }
}

pub(super) fn log_dropped(what: &str, nsp: &str, error: &dyn std::fmt::Display) {
    eprintln!("roomcast: dropped a malformed redis {what} for namespace {nsp}: {error}");
}
