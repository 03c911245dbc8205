#![no_main]
//! Cluster adapter messages on arbitrary bytes: the input is decoded as a msgpack value, a classic
//! broadcast, request and response, a sharded message, and a channel name. Nothing may panic; whatever
//! decodes must re-encode to a fixpoint (encode → decode → encode gives the same bytes; the one allowed
//! failure is the depth limit, as JSON spells a buffer two levels deeper than msgpack does), and every
//! decoded broadcast or server-side emit is transcoded to the Socket.IO packet clients would receive.
use libfuzzer_sys::fuzz_target;
use roomcast_engine::cluster::{
    msgpack, transcode, Broadcast, ClassicChannels, Request, RequestKind, Response, ShardedBody,
    ShardedChannels, ShardedMessage, SubscriptionMode,
};
use roomcast_engine::{Error, Limit};

fn fixpoint<T, B: AsRef<[u8]> + PartialEq + std::fmt::Debug>(
    once: B,
    decode: impl Fn(&[u8]) -> Result<T, Error>,
    encode: impl Fn(&T) -> B,
) {
    match decode(once.as_ref()) {
        Ok(again) => assert_eq!(encode(&again), once, "re-encoding is not a fixpoint"),
        Err(Error::LimitExceeded(Limit::ClusterDepth { .. })) => {}
        Err(e) => panic!("our own encoding does not decode: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = msgpack::decode(data) {
        fixpoint(msgpack::to_bytes(&value), msgpack::decode, msgpack::to_bytes);
        let _ = transcode::event_message("/", &value);
        let json = transcode::value_to_json(&value);
        if let Ok(again) = transcode::json_to_value(&json) {
            assert_eq!(transcode::value_to_json(&again), json);
        }
    }
    if let Ok(broadcast) = Broadcast::decode(data) {
        if let Ok(message) = broadcast.packet.event_message(broadcast.packet.nsp_or_root()) {
            assert!(message.text.starts_with(b"4"));
        }
        let _ = ClassicChannels::default().for_broadcast(broadcast.packet.nsp_or_root(), &broadcast.opts);
        fixpoint(broadcast.encode(), Broadcast::decode, Broadcast::encode);
    }
    if let Ok(request) = Request::decode(data) {
        match &request.kind {
            RequestKind::ServerSideEmit { data, .. } => drop(transcode::event_args(data)),
            RequestKind::BroadcastWithAck { packet, .. } => drop(packet.event_message("/")),
            _ => {}
        }
        fixpoint(request.encode(), Request::decode, Request::encode);
    }
    if let Ok(response) = Response::decode(data) {
        fixpoint(response.encode(), Response::decode, Response::encode);
    }
    if let Ok(message) = ShardedMessage::decode(data) {
        match &message.body {
            ShardedBody::Broadcast { packet, .. } => drop(packet.event_message(&message.nsp)),
            ShardedBody::ServerSideEmit { packet, .. } => drop(transcode::event_args(packet)),
            _ => {}
        }
        let _ = message.publish_channel(&ShardedChannels::default(), SubscriptionMode::DynamicPrivate);
        fixpoint(message.encode(), ShardedMessage::decode, ShardedMessage::encode);
    }
    let _ = ClassicChannels::default().parse(data);
    let _ = ShardedChannels::default().parse(data);
});
