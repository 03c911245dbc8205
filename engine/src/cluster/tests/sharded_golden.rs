//! Golden vectors of the sharded adapter (`createShardedAdapter`, subscriptionMode `dynamic`, uid
//! `99fb7ac32675bdc5`) from `redis-adapter-wire-captures.txt`, and responses built by socket.io-adapter's
//! `ClusterAdapter` code run through notepack.io 3.0.1 / `JSON.stringify`.

use super::{assert_prefixes_rejected, data, hex, s, strings};
use crate::cluster::sharded::looks_like_socket_id;
use crate::cluster::*;

const UID: &str = "99fb7ac32675bdc5";
const SID: &str = "UX7azIbIY-c87ijNAAAA";

fn message(body: ShardedBody) -> ShardedMessage {
    ShardedMessage { uid: UID.into(), nsp: "/".into(), body }
}

fn opts(rooms: &[&str], except: &[&str], flags: BroadcastFlags) -> BroadcastOpts {
    BroadcastOpts { rooms: strings(rooms), except: strings(except), flags }
}

fn broadcast(event: Value, opts: BroadcastOpts, request_id: Option<&str>) -> ShardedMessage {
    message(ShardedBody::Broadcast {
        packet: AdapterPacket { packet_type: 2, data: event, nsp: None },
        opts,
        request_id: request_id.map(str::to_owned),
    })
}

/// (channel, JSON text or `hex:` msgpack, the message) as captured.
fn captured() -> Vec<(&'static str, String, ShardedMessage)> {
    let none = BroadcastFlags::default;
    let json = |text: &str| text.to_owned();
    vec![
        (
            "socket.io#/#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(data(&[s("hello"), s("world")]), opts(&[], &[], none()), None),
        ),
        (
            "socket.io#/#room1#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["a",1]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(data(&[s("a"), Value::Int(1)]), opts(&["room1"], &[], none()), None),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["b",{"x":true}]},"opts":{"rooms":["room1","room2"],"except":["room3"],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(data(&[s("b"), Value::map([("x", Value::Bool(true))])]), opts(&["room1", "room2"], &["room3"], none()), None),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["c"]},"opts":{"rooms":[],"except":["UX7azIbIY-c87ijNAAAA"],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(data(&[s("c")]), opts(&[], &[SID], none()), None),
        ),
        (
            "socket.io#/#room1#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["d"]},"opts":{"rooms":["room1"],"except":["UX7azIbIY-c87ijNAAAA"],"flags":{}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(data(&[s("d")]), opts(&["room1"], &[SID], none()), None),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["e"]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true,"compress":false}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(
                data(&[s("e")]),
                opts(&[], &[], BroadcastFlags { volatile: Some(true), compress: Some(false), ..none() }),
                None,
            ),
        ),
        (
            "socket.io#/#",
            "hex:84a47479706503a46461746182a67061636b657482a47479706502a46461746192a362696ec403010203a46f70747383a5726f6f6d7390a665786365707490a5666c61677380a3756964b039396662376163333236373562646335a36e7370a12f".into(),
            broadcast(data(&[s("bin"), Value::Bin(vec![1, 2, 3].into())]), opts(&[], &[], none()), None),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["room4"]},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            message(ShardedBody::SocketsJoin { opts: opts(&[], &[], none()), rooms: strings(&["room4"]) }),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":5,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room4"]},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            message(ShardedBody::SocketsLeave { opts: opts(&["room1"], &[], none()), rooms: strings(&["room4"]) }),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":9,"data":{"packet":["ping",1]},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            message(ShardedBody::ServerSideEmit { request_id: None, packet: data(&[s("ping"), Value::Int(1)]) }),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":3,"data":{"packet":{"type":2,"data":["g"]},"requestId":"2fab9df2621266d3","opts":{"rooms":[],"except":[],"flags":{"timeout":50}}},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            broadcast(
                data(&[s("g")]),
                opts(&[], &[], BroadcastFlags { timeout: Some(50), ..none() }),
                Some("2fab9df2621266d3"),
            ),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"9e8322e7b4b1777b"},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            message(ShardedBody::FetchSockets { opts: opts(&[], &[], none()), request_id: "9e8322e7b4b1777b".into() }),
        ),
        (
            "socket.io#/#",
            json(r#"{"type":6,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"close":false},"uid":"99fb7ac32675bdc5","nsp":"/"}"#),
            message(ShardedBody::DisconnectSockets { opts: opts(&["room1"], &[], none()), close: false }),
        ),
    ]
}

fn wire(text: &str) -> Vec<u8> {
    match text.strip_prefix("hex:") {
        Some(h) => hex(h),
        None => text.as_bytes().to_vec(),
    }
}

#[test]
fn captured_messages_decode_reencode_and_route_as_the_adapter_does() {
    let channels = ShardedChannels::default();
    for (channel, text, expected) in captured() {
        let bytes = wire(&text);
        assert_eq!(ShardedMessage::decode(&bytes).unwrap(), expected, "{text}");
        assert_eq!(expected.encode(), bytes, "{text}");
        assert_eq!(expected.publish_channel(&channels, SubscriptionMode::Dynamic), channel, "{text}");
        assert_eq!(expected.publish_channel(&channels, SubscriptionMode::Static), "socket.io#/#");
        assert_prefixes_rejected(&bytes, ShardedMessage::decode);
    }
}

#[test]
fn responses_and_heartbeats_round_trip() {
    let fetch = r#"{"type":8,"data":{"requestId":"9e8322e7b4b1777b","sockets":[{"id":"UX7azIbIY-c87ijNAAAA","handshake":{"headers":{"host":"localhost:3000","user-agent":"node"},"time":"Tue Jun 18 2024 16:10:00 GMT+0000 (Coordinated Universal Time)","address":"::1","xdomain":false,"secure":false,"issued":1718727000123,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{}},"rooms":["UX7azIbIY-c87ijNAAAA"],"data":{}}]},"uid":"0123456789abcdef","nsp":"/"}"#;
    let handshake_start = fetch.find(r#"{"headers""#).unwrap();
    let handshake_end = fetch.find(r#","rooms""#).unwrap();
    let fetch_message = ShardedMessage {
        uid: "0123456789abcdef".into(),
        nsp: "/".into(),
        body: ShardedBody::FetchSocketsResponse {
            request_id: "9e8322e7b4b1777b".into(),
            sockets: vec![RemoteSocket {
                id: SID.into(),
                handshake: fetch.as_bytes()[handshake_start..handshake_end].to_vec().into(),
                rooms: strings(&[SID]),
                data: Some(b"{}".to_vec().into()),
            }],
        },
    };
    let rid = || "2fab9df2621266d3".to_owned();
    let cases = [
        (fetch.to_owned(), fetch_message),
        (
            // BROADCAST_ACK with a buffer: msgpack (notepack.io).
            "hex:84a4747970650ca46461746182a9726571756573744964b032666162396466323632313236366433a67061636b6574c40107a3756964b039396662376163333236373562646335a36e7370a12f".into(),
            message(ShardedBody::BroadcastAck { request_id: rid(), packet: Some(Value::Bin(vec![7].into())) }),
        ),
        (
            // SERVER_SIDE_EMIT with a buffer and an ack: msgpack.
            "hex:84a47479706509a46461746182a9726571756573744964b032666162396466323632313236366433a67061636b657492a362696ec403010203a3756964b039396662376163333236373562646335a36e7370a12f".into(),
            message(ShardedBody::ServerSideEmit {
                request_id: Some(rid()),
                packet: data(&[s("bin"), Value::Bin(vec![1, 2, 3].into())]),
            }),
        ),
        (
            r#"{"type":12,"data":{"requestId":"2fab9df2621266d3","packet":"ok"},"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(),
            message(ShardedBody::BroadcastAck { request_id: rid(), packet: Some(s("ok")) }),
        ),
        (
            r#"{"type":11,"data":{"requestId":"2fab9df2621266d3","clientCount":2},"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(),
            message(ShardedBody::BroadcastClientCount { request_id: rid(), client_count: 2 }),
        ),
        (
            r#"{"type":10,"data":{"requestId":"2fab9df2621266d3"},"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(),
            message(ShardedBody::ServerSideEmitResponse { request_id: rid(), packet: None }),
        ),
        (r#"{"type":1,"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(), message(ShardedBody::InitialHeartbeat)),
        (r#"{"type":2,"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(), message(ShardedBody::Heartbeat)),
        (r#"{"type":13,"uid":"99fb7ac32675bdc5","nsp":"/"}"#.into(), message(ShardedBody::AdapterClose)),
    ];
    for (text, expected) in cases {
        let bytes = wire(&text);
        assert_eq!(ShardedMessage::decode(&bytes).unwrap(), expected, "{text}");
        assert_eq!(expected.encode(), bytes, "{text}");
    }
}

#[test]
fn dynamic_room_channels_follow_compute_channel() {
    let channels = ShardedChannels::default();
    let to = |room: &str, request_id: Option<&str>| {
        broadcast(data(&[s("x")]), opts(&[room], &[], BroadcastFlags::default()), request_id)
    };
    let route = |m: &ShardedMessage, mode| m.publish_channel(&channels, mode);
    // A socket-id-like room (20 UTF-16 units) stays on the main channel unless private rooms have channels.
    assert_eq!(route(&to(SID, None), SubscriptionMode::Dynamic), "socket.io#/#");
    assert_eq!(route(&to(SID, None), SubscriptionMode::DynamicPrivate), "socket.io#/#UX7azIbIY-c87ijNAAAA#");
    // Broadcasts with acks always use the main channel (every server must count its clients).
    assert_eq!(route(&to("room1", Some("r")), SubscriptionMode::Dynamic), "socket.io#/#");
    assert!(looks_like_socket_id("ééééééééééééééééééé€"));
    assert!(!looks_like_socket_id("😀😀😀😀😀")); // 20 bytes, 10 UTF-16 units
    assert!(SubscriptionMode::Dynamic.subscribes_room(false));
    assert!(!SubscriptionMode::Dynamic.subscribes_room(true));
    assert!(SubscriptionMode::DynamicPrivate.subscribes_room(true));
    assert!(!SubscriptionMode::Static.subscribes_room(false));

    assert_eq!(channels.node("/", UID), "socket.io#/#99fb7ac32675bdc5#");
    assert_eq!(channels.parse(b"socket.io#/#"), Some(("/", None)));
    assert_eq!(channels.parse(b"socket.io#/chat#room1#"), Some(("/chat", Some("room1"))));
    assert_eq!(channels.parse(b"socket.io#/#room1"), None);
    assert_eq!(channels.parse(b"socket.io-request#/#"), None);
}

#[test]
fn malformed_messages_are_errors() {
    let cases = [
        r#"{"type":3,"uid":"u","nsp":"/"}"#,
        r#"{"type":3,"data":{"opts":{}},"uid":"u","nsp":"/"}"#,
        r#"{"type":4,"data":{},"nsp":"/"}"#,
        r#"{"type":4,"data":{},"uid":"u"}"#,
        r#"{"type":14,"data":{},"uid":"u","nsp":"/"}"#,
        r#"{"type":8,"data":{"requestId":"r","sockets":[{"id":"x"}]},"uid":"u","nsp":"/"}"#,
        r#"{"type":7,"data":{"opts":{}},"uid":"u","nsp":"/"}"#,
    ];
    for json in cases {
        assert!(ShardedMessage::decode(json.as_bytes()).is_err(), "{json}");
    }
}
