//! Which of the two adapter protocols this node speaks, for what the publisher and the answers to
//! server-side emits write: the classic adapter (`PUBLISH`, `[uid, packet, opts]` messages) or the
//! sharded one (`SPUBLISH`, socket.io-adapter's `ClusterAdapter` messages `{type, data, uid, nsp}`).
//!
//! Control path: runs on the publisher thread (or wherever an ack is answered), never on a shard.

use bytes::Bytes;
use roomcast_engine::cluster::{
    AdapterPacket, ClassicChannels, Response, ShardedBody, ShardedChannels, ShardedMessage, SubscriptionMode,
    Value,
};

use super::outgoing::Query;
use super::publisher::{broadcast_opts, encode_broadcast, event_data};
use crate::broadcast::Broadcast;
use crate::config::RedisConfig;

/// The protocol, with its channel names.
#[derive(Debug, Clone)]
pub(crate) enum Wire {
    Classic(ClassicChannels),
    Sharded { channels: ShardedChannels, mode: SubscriptionMode },
}

impl Wire {
    pub(crate) fn new(config: &RedisConfig) -> Wire {
        if config.sharded {
            Wire::Sharded {
                channels: ShardedChannels::new(config.key_prefix.clone()),
                mode: config.subscription_mode,
            }
        } else {
            Wire::Classic(ClassicChannels::new(config.key_prefix.clone()))
        }
    }

    /// The Redis command that publishes a message.
    pub(crate) fn publish_command(&self) -> &'static [u8] {
        match self {
            Wire::Classic(_) => b"PUBLISH",
            Wire::Sharded { .. } => b"SPUBLISH",
        }
    }

    /// The message for a broadcast made on this server, and the channel to publish it on. `None`
    /// (logged) if the packet is not an event this server encoded.
    pub(crate) fn encode_broadcast(&self, uid: &str, broadcast: &Broadcast) -> Option<(String, Bytes)> {
        match self {
            Wire::Classic(channels) => encode_broadcast(uid, channels, broadcast),
            Wire::Sharded { channels, mode } => encode_sharded_broadcast(uid, channels, *mode, broadcast),
        }
    }

    /// The message for a request of this server (`uid`) to the other servers of `nsp`, and its channel:
    /// the classic request channel, or the sharded main channel. `None` if this protocol does not carry
    /// it (`allRooms` in the sharded one).
    pub(crate) fn encode_request(
        &self,
        uid: &str,
        nsp: &str,
        request_id: Option<&str>,
        query: &Query,
    ) -> Option<(String, Bytes)> {
        match self {
            Wire::Classic(channels) => Some((channels.request(nsp), query.classic(uid, request_id).encode())),
            Wire::Sharded { channels, mode } => {
                let message = query.sharded(uid, nsp, request_id)?;
                Some((message.publish_channel(channels, *mode), message.encode()))
            }
        }
    }
}

/// BROADCAST (3) `{packet: {type: 2, data}, opts: {rooms, except, flags}}`, on the namespace's main
/// channel, or on the room's channel when exactly one room is targeted and `mode` gives it one — as
/// the Node sharded adapter's `computeChannel` decides. JSON unless an argument is binary (msgpack).
fn encode_sharded_broadcast(
    uid: &str,
    channels: &ShardedChannels,
    mode: SubscriptionMode,
    broadcast: &Broadcast,
) -> Option<(String, Bytes)> {
    let Some(data) = event_data(&broadcast.packet) else {
        eprintln!("roomcast: cannot transcode a broadcast for redis; not published");
        return None;
    };
    let message = ShardedMessage {
        uid: uid.to_owned(),
        nsp: broadcast.nsp.to_string(),
        body: ShardedBody::Broadcast {
            packet: AdapterPacket { packet_type: 2, data, nsp: None },
            opts: broadcast_opts(&broadcast.target),
            request_id: None,
        },
    };
    Some((message.publish_channel(channels, mode), message.encode()))
}

/// How the answer to a server-side emit is written.
#[derive(Debug)]
pub(crate) enum AckFormat {
    /// The classic adapter's response (on the response channel the ack holds).
    Classic,
    /// SERVER_SIDE_EMIT_RESPONSE (10) from this node (`uid`) in namespace `nsp`.
    Sharded { uid: String, nsp: String },
}

impl AckFormat {
    pub(crate) fn encode(&self, request_id: String, data: Option<Value>) -> Bytes {
        match self {
            AckFormat::Classic => Response::ServerSideEmit { request_id, data }.encode(),
            AckFormat::Sharded { uid, nsp } => ShardedMessage {
                uid: uid.clone(),
                nsp: nsp.clone(),
                body: ShardedBody::ServerSideEmitResponse { request_id, packet: data },
            }
            .encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::Arg;
    use crate::broadcast::EncodedPacket;
    use roomcast_engine::rooms::BroadcastTarget;

    fn sharded(mode: SubscriptionMode) -> Wire {
        Wire::Sharded { channels: ShardedChannels::default(), mode }
    }

    fn broadcast(to: &[&str], args: &[Arg]) -> Broadcast {
        let target = BroadcastTarget { to: to.iter().map(|r| (*r).into()).collect(), ..Default::default() };
        Broadcast {
            nsp: "/".into(),
            target,
            packet: EncodedPacket::event("/", None, "a", args),
            origin: None,
        }
    }

    #[test]
    fn a_one_room_broadcast_goes_to_the_room_channel_as_node_sends_it() {
        let one = broadcast(&["room1"], &[Arg::json("1").unwrap()]);
        let (channel, bytes) =
            sharded(SubscriptionMode::Dynamic).encode_broadcast("99fb7ac32675bdc5", &one).unwrap();
        assert_eq!(channel, "socket.io#/#room1#");
        // Byte for byte what Node's sharded adapter publishes for `io.to("room1").emit("a", 1)`.
        assert_eq!(
            &bytes[..],
            br#"{"type":3,"data":{"packet":{"type":2,"data":["a",1]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#
        );
        let (channel, _) = sharded(SubscriptionMode::Static).encode_broadcast("u", &one).unwrap();
        assert_eq!(channel, "socket.io#/#");
        let two = broadcast(&["room1", "room2"], &[]);
        let (channel, _) = sharded(SubscriptionMode::Dynamic).encode_broadcast("u", &two).unwrap();
        assert_eq!(channel, "socket.io#/#");
        assert_eq!(sharded(SubscriptionMode::Dynamic).publish_command(), b"SPUBLISH");
    }

    #[test]
    fn binary_arguments_make_a_msgpack_message() {
        let bin = broadcast(&[], &[Arg::binary(vec![1u8, 2, 3])]);
        let (channel, bytes) = sharded(SubscriptionMode::Dynamic).encode_broadcast("u", &bin).unwrap();
        assert_eq!(channel, "socket.io#/#");
        assert_ne!(bytes.first(), Some(&b'{'));
        let decoded = ShardedMessage::decode(&bytes).unwrap();
        let ShardedBody::Broadcast { packet, .. } = decoded.body else { panic!("{decoded:?}") };
        assert_eq!(
            packet.data,
            Value::Array(vec![Value::str("a"), Value::Bin(Bytes::from_static(&[1, 2, 3]))])
        );
    }
}
