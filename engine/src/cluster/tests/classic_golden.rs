//! Golden vectors of the classic adapter and the emitter, from `redis-adapter-wire-captures.txt`
//! (@socket.io/redis-adapter 8.3.0 uid `rcTSZ1`, @socket.io/redis-emitter 5.1.0) and, for responses,
//! from the adapter's code run through notepack.io 3.0.1 / `JSON.stringify`.

use super::{assert_prefixes_rejected, data, hex, s, strings};
use crate::cluster::classic::broadcast_sender;
use crate::cluster::*;

const SID: &str = "Rv7W8BWkuOp3bp9JAAAA";

fn opts(rooms: &[&str], except: &[&str], flags: BroadcastFlags) -> BroadcastOpts {
    BroadcastOpts { rooms: strings(rooms), except: strings(except), flags }
}

fn broadcast(uid: &str, nsp: &str, event: Value, opts: BroadcastOpts) -> Broadcast {
    Broadcast {
        uid: uid.to_owned(),
        packet: AdapterPacket { packet_type: 2, data: event, nsp: Some(nsp.into()) },
        opts,
    }
}

fn volatile_uncompressed() -> BroadcastFlags {
    BroadcastFlags { volatile: Some(true), compress: Some(false), ..BroadcastFlags::default() }
}

/// (channel, msgpack hex, the message) of every broadcast the adapter published.
fn adapter_broadcasts() -> Vec<(&'static str, &'static str, Broadcast)> {
    let none = BroadcastFlags::default;
    vec![
        (
            "socket.io#/#",
            "93a6726354535a3183a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
            broadcast("rcTSZ1", "/", data(&[s("hello"), s("world")]), opts(&[], &[], none())),
        ),
        (
            "socket.io#/#room1#",
            "93a6726354535a3183a47479706502a46461746192a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
            broadcast("rcTSZ1", "/", data(&[s("a"), Value::Int(1)]), opts(&["room1"], &[], none())),
        ),
        (
            "socket.io#/#",
            "93a6726354535a3183a47479706502a46461746192a16281a178c3a36e7370a12f83a5726f6f6d7392a5726f6f6d31a5726f6f6d32a665786365707491a5726f6f6d33a5666c61677380",
            broadcast(
                "rcTSZ1",
                "/",
                data(&[s("b"), Value::map([("x", Value::Bool(true))])]),
                opts(&["room1", "room2"], &["room3"], none()),
            ),
        ),
        (
            "socket.io#/#",
            "93a6726354535a3183a47479706502a46461746191a163a36e7370a12f83a5726f6f6d7390a665786365707491b4527637573842576b754f70336270394a41414141a5666c61677380",
            broadcast("rcTSZ1", "/", data(&[s("c")]), opts(&[], &[SID], none())),
        ),
        (
            "socket.io#/#room1#",
            "93a6726354535a3183a47479706502a46461746191a164a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707491b4527637573842576b754f70336270394a41414141a5666c61677380",
            broadcast("rcTSZ1", "/", data(&[s("d")]), opts(&["room1"], &[SID], none())),
        ),
        (
            "socket.io#/#",
            "93a6726354535a3183a47479706502a46461746191a165a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2",
            broadcast("rcTSZ1", "/", data(&[s("e")]), opts(&[], &[], volatile_uncompressed())),
        ),
        (
            "socket.io#/#",
            "93a6726354535a3183a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
            broadcast("rcTSZ1", "/", data(&[s("bin"), Value::Bin(vec![1, 2, 3].into())]), opts(&[], &[], none())),
        ),
    ]
}

#[test]
fn adapter_broadcasts_decode_and_reencode_to_the_captured_bytes() {
    let channels = ClassicChannels::default();
    for (channel, bytes, expected) in adapter_broadcasts() {
        let bytes = hex(bytes);
        assert_eq!(Broadcast::decode(&bytes).unwrap(), expected, "{channel}");
        assert_eq!(expected.encode(), bytes, "{channel}");
        assert_eq!(channels.for_broadcast("/", &expected.opts), channel);
        assert_eq!(broadcast_sender(&bytes), Some("rcTSZ1"));
        assert_prefixes_rejected(&bytes, Broadcast::decode);
    }
}

#[test]
fn emitter_broadcasts_decode_whatever_the_options_order() {
    let none = BroadcastFlags::default;
    let cases = [
        (
            "socket.io#/#",
            "93a7656d697474657283a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490",
            broadcast(EMITTER_UID, "/", data(&[s("hello"), s("world")]), opts(&[], &[], none())),
        ),
        (
            "socket.io#/#room1#",
            "93a7656d697474657283a47479706502a46461746192a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490",
            broadcast(EMITTER_UID, "/", data(&[s("a"), Value::Int(1)]), opts(&["room1"], &[], none())),
        ),
        (
            "socket.io#/#",
            "93a7656d697474657283a47479706502a46461746192a16281a178c3a36e7370a12f83a5726f6f6d7392a5726f6f6d31a5726f6f6d32a5666c61677380a665786365707491a5726f6f6d33",
            broadcast(
                EMITTER_UID,
                "/",
                data(&[s("b"), Value::map([("x", Value::Bool(true))])]),
                opts(&["room1", "room2"], &["room3"], none()),
            ),
        ),
        (
            "socket.io#/admin#r#",
            "93a7656d697474657283a47479706502a46461746191a163a36e7370a62f61646d696e83a5726f6f6d7391a172a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2a665786365707490",
            broadcast(EMITTER_UID, "/admin", data(&[s("c")]), opts(&["r"], &[], volatile_uncompressed())),
        ),
        (
            "socket.io#/#",
            "93a7656d697474657283a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490",
            broadcast(EMITTER_UID, "/", data(&[s("bin"), Value::Bin(vec![1, 2, 3].into())]), opts(&[], &[], none())),
        ),
    ];
    let channels = ClassicChannels::default();
    for (channel, bytes, expected) in cases {
        let decoded = Broadcast::decode(&hex(bytes)).unwrap();
        assert_eq!(decoded, expected, "{channel}");
        assert_eq!(channels.for_broadcast(decoded.packet.nsp_or_root(), &decoded.opts), channel);
        // Our encoder writes the adapter's order (`rooms, except, flags`); it decodes to the same.
        assert_eq!(Broadcast::decode(&decoded.encode()).unwrap(), expected);
    }
}

fn request(uid: Option<&str>, kind: RequestKind) -> Request {
    Request { uid: uid.map(str::to_owned), kind }
}

#[test]
fn json_requests_of_the_adapter_and_the_emitter_round_trip_byte_for_byte() {
    let no_flags = |rooms: &[&str]| opts(rooms, &[], BroadcastFlags::default());
    let cases = [
        (
            r#"{"uid":"rcTSZ1","type":2,"opts":{"rooms":[],"except":[]},"rooms":["room4"]}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::SocketsJoin { opts: no_flags(&[]), rooms: strings(&["room4"]) },
            ),
        ),
        (
            r#"{"uid":"rcTSZ1","type":3,"opts":{"rooms":["room1"],"except":[]},"rooms":["room4"]}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::SocketsLeave { opts: no_flags(&["room1"]), rooms: strings(&["room4"]) },
            ),
        ),
        (
            r#"{"uid":"rcTSZ1","type":6,"data":["ping",1]}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::ServerSideEmit { request_id: None, data: data(&[s("ping"), Value::Int(1)]) },
            ),
        ),
        (
            r#"{"uid":"rcTSZ1","requestId":"ZMgAKj","type":5,"opts":{"rooms":[],"except":[]}}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::FetchSockets { request_id: "ZMgAKj".into(), opts: no_flags(&[]) },
            ),
        ),
        (
            r#"{"uid":"rcTSZ1","type":4,"opts":{"rooms":["room1"],"except":[]},"close":false}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::DisconnectSockets { opts: no_flags(&["room1"]), close: false },
            ),
        ),
        // The emitter: no uid for join/leave/disconnect, "emitter" for serverSideEmit.
        (
            r#"{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["room4"]}"#,
            request(None, RequestKind::SocketsJoin { opts: no_flags(&[]), rooms: strings(&["room4"]) }),
        ),
        (
            r#"{"type":3,"opts":{"rooms":["room1"],"except":[]},"rooms":["room4"]}"#,
            request(
                None,
                RequestKind::SocketsLeave { opts: no_flags(&["room1"]), rooms: strings(&["room4"]) },
            ),
        ),
        (
            r#"{"type":4,"opts":{"rooms":["room1"],"except":[]},"close":true}"#,
            request(None, RequestKind::DisconnectSockets { opts: no_flags(&["room1"]), close: true }),
        ),
        (
            r#"{"uid":"emitter","type":6,"data":["ping",1]}"#,
            request(
                Some(EMITTER_UID),
                RequestKind::ServerSideEmit { request_id: None, data: data(&[s("ping"), Value::Int(1)]) },
            ),
        ),
        // Shapes from the adapter's code (not in the capture run).
        (
            r#"{"uid":"rcTSZ1","requestId":"abcdef","type":1}"#,
            request(Some("rcTSZ1"), RequestKind::AllRooms { request_id: "abcdef".into() }),
        ),
        (
            r#"{"uid":"rcTSZ1","requestId":"abcdef","type":0,"rooms":["room1"]}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::Sockets { request_id: "abcdef".into(), rooms: strings(&["room1"]) },
            ),
        ),
        (
            r#"{"uid":"rcTSZ1","requestId":"abcdef","type":6,"data":["ping",{"n":2.5}]}"#,
            request(
                Some("rcTSZ1"),
                RequestKind::ServerSideEmit {
                    request_id: Some("abcdef".into()),
                    data: data(&[s("ping"), Value::map([("n", Value::Float(2.5))])]),
                },
            ),
        ),
        (
            r#"{"uid":"old","requestId":"abcdef","type":2,"sid":"Rv7W8BWkuOp3bp9JAAAA","room":"room9"}"#,
            request(
                Some("old"),
                RequestKind::Legacy {
                    request_id: "abcdef".into(),
                    sid: SID.into(),
                    action: LegacyAction::Join("room9".into()),
                },
            ),
        ),
        (
            r#"{"uid":"old","requestId":"abcdef","type":4,"sid":"Rv7W8BWkuOp3bp9JAAAA","close":true}"#,
            request(
                Some("old"),
                RequestKind::Legacy {
                    request_id: "abcdef".into(),
                    sid: SID.into(),
                    action: LegacyAction::Disconnect { close: true },
                },
            ),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(Request::decode(json.as_bytes()).unwrap(), expected, "{json}");
        assert_eq!(String::from_utf8(expected.encode().to_vec()).unwrap(), json);
        assert_prefixes_rejected(json.as_bytes(), Request::decode);
    }
}

#[test]
fn broadcast_with_ack_request_is_msgpack_and_round_trips() {
    let bytes = hex(
        "85a3756964a6726354535a31a9726571756573744964a659774b506f33a47479706507a67061636b657483a47479706502a46461746191a167a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f757432",
    );
    let expected = request(
        Some("rcTSZ1"),
        RequestKind::BroadcastWithAck {
            request_id: "YwKPo3".into(),
            packet: AdapterPacket { packet_type: 2, data: data(&[s("g")]), nsp: Some("/".into()) },
            opts: opts(&[], &[], BroadcastFlags { timeout: Some(50), ..BroadcastFlags::default() }),
        },
    );
    assert_eq!(Request::decode(&bytes).unwrap(), expected);
    assert_eq!(expected.encode(), bytes);
    assert_prefixes_rejected(&bytes, Request::decode);
}

#[test]
fn responses_round_trip_in_the_adapters_framing() {
    let handshake = r#"{"headers":{"host":"localhost:3000","user-agent":"node"},"time":"Tue Jun 18 2024 16:10:00 GMT+0000 (Coordinated Universal Time)","address":"::1","xdomain":false,"secure":false,"issued":1718727000123,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{}}"#;
    let fetch = format!(
        r#"{{"requestId":"ZMgAKj","sockets":[{{"id":"Rv7W8BWkuOp3bp9JAAAA","handshake":{handshake},"rooms":["Rv7W8BWkuOp3bp9JAAAA","room1"],"data":{{"user":"ann"}}}}]}}"#
    );
    let id = || "ZMgAKj".to_owned();
    let json_cases = [
        (
            fetch,
            Response::FetchSockets {
                request_id: id(),
                sockets: vec![RemoteSocket {
                    id: SID.into(),
                    handshake: handshake.as_bytes().to_vec().into(),
                    rooms: strings(&[SID, "room1"]),
                    data: Some(br#"{"user":"ann"}"#.to_vec().into()),
                }],
            },
        ),
        (
            r#"{"requestId":"ZMgAKj","sockets":[]}"#.into(),
            Response::FetchSockets { request_id: id(), sockets: vec![] },
        ),
        (
            r#"{"requestId":"ZMgAKj","sockets":["a","b"]}"#.into(),
            Response::Sockets { request_id: id(), sockets: strings(&["a", "b"]) },
        ),
        (
            r#"{"requestId":"ZMgAKj","rooms":["a","room1"]}"#.into(),
            Response::AllRooms { request_id: id(), rooms: strings(&["a", "room1"]) },
        ),
        (r#"{"requestId":"ZMgAKj"}"#.into(), Response::Done { request_id: id() }),
        (
            r#"{"type":6,"requestId":"ZMgAKj","data":"pong"}"#.into(),
            Response::ServerSideEmit { request_id: id(), data: Some(s("pong")) },
        ),
        (
            r#"{"type":6,"requestId":"ZMgAKj"}"#.into(),
            Response::ServerSideEmit { request_id: id(), data: None },
        ),
        (
            r#"{"type":8,"requestId":"ZMgAKj","clientCount":3}"#.into(),
            Response::BroadcastClientCount { request_id: id(), client_count: 3 },
        ),
    ];
    for (json, expected) in json_cases {
        assert_eq!(Response::decode(json.as_bytes()).unwrap(), expected, "{json}");
        assert_eq!(String::from_utf8(expected.encode().to_vec()).unwrap(), json);
        assert_eq!(expected.request_id(), "ZMgAKj");
    }
    // BROADCAST_ACK, notepack-encoded `{type: 9, requestId, packet}` with and without an argument.
    let acks = [
        ("83a47479706509a9726571756573744964a659774b506f33a67061636b6574a26f6b", Some(s("ok"))),
        ("82a47479706509a9726571756573744964a659774b506f33", None),
    ];
    for (bytes, packet) in acks {
        let expected = Response::BroadcastAck { request_id: "YwKPo3".into(), packet };
        assert_eq!(Response::decode(&hex(bytes)).unwrap(), expected);
        assert_eq!(expected.encode(), hex(bytes));
    }
}

#[test]
fn channels_are_named_and_parsed_as_the_adapter_names_them() {
    let channels = ClassicChannels::default();
    assert_eq!(channels.broadcast("/"), "socket.io#/#");
    assert_eq!(channels.broadcast_pattern("/"), "socket.io#/#*");
    assert_eq!(channels.room("/admin", "r"), "socket.io#/admin#r#");
    assert_eq!(channels.request("/"), "socket.io-request#/#");
    assert_eq!(channels.response("/"), "socket.io-response#/#");
    assert_eq!(channels.specific_response("/", "rcTSZ1"), "socket.io-response#/#rcTSZ1#");

    let parse = |c: &'static str| channels.parse(c.as_bytes());
    assert_eq!(parse("socket.io#/#"), Some(ClassicChannel::Broadcast { nsp: "/", room: None }));
    assert_eq!(
        parse("socket.io#/admin#r#"),
        Some(ClassicChannel::Broadcast { nsp: "/admin", room: Some("r") })
    );
    assert_eq!(parse("socket.io#/#a#b#"), Some(ClassicChannel::Broadcast { nsp: "/", room: Some("a#b") }));
    assert_eq!(parse("socket.io-request#/#"), Some(ClassicChannel::Request { nsp: "/" }));
    assert_eq!(parse("socket.io-response#/#"), Some(ClassicChannel::Response { nsp: "/", uid: None }));
    assert_eq!(
        parse("socket.io-response#/#rcTSZ1#"),
        Some(ClassicChannel::Response { nsp: "/", uid: Some("rcTSZ1") })
    );
    for other in ["socket.io#/#room", "socket.io-request#/#x#", "other#/#", "socket.io#/", "socket.io#/##"] {
        assert_eq!(parse(other), None, "{other}");
    }

    let custom = ClassicChannels::new("app");
    assert_eq!(custom.room("/", "r"), "app#/#r#");
    assert_eq!(custom.parse(b"app-request#/chat#"), Some(ClassicChannel::Request { nsp: "/chat" }));
    assert_eq!(custom.parse(b"socket.io#/#"), None);
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let broadcasts: &[&[u8]] =
        &[b"", b"\x90", b"\x92\xa1a\x80", b"\x93\x01\x80\x80", b"\x93\xa1a\x80\x80", b"{\"a\":1}"];
    for bytes in broadcasts {
        assert!(Broadcast::decode(bytes).is_err(), "{bytes:?}");
    }
    let requests: &[&str] = &[
        r#"{"uid":"x"}"#,
        r#"{"uid":"x","type":99}"#,
        r#"{"uid":1,"type":1,"requestId":"r"}"#,
        r#"{"uid":"x","type":1}"#,
        r#"{"uid":"x","type":2,"opts":{"rooms":[{}]},"rooms":[]}"#,
        r#"{"uid":"x","type":6}"#,
        r#"{"uid":"x","type":7,"requestId":"r"}"#,
        r#"["not an object"]"#,
    ];
    for json in requests {
        assert!(Request::decode(json.as_bytes()).is_err(), "{json}");
    }
    for json in [
        r#"{"sockets":[]}"#,
        r#"{"type":7,"requestId":"r"}"#,
        r#"{"type":8,"requestId":"r","clientCount":-1}"#,
    ] {
        assert!(Response::decode(json.as_bytes()).is_err(), "{json}");
    }
}
