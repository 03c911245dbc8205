//! Transcoding between adapter values and Socket.IO packets, against what a Node.js server sends its
//! own clients for the same cluster message (notepack.io 3.0.1 decode, then socket.io-parser 4.2.7
//! `Encoder.encode`).

use bytes::{Bytes, BytesMut};

use super::{hex, s};
use crate::cluster::msgpack::{self, Value};
use crate::cluster::transcode::{
    event_args, event_data, event_message, json_to_value, value_to_json, EventArg,
};
use crate::cluster::*;
use crate::sio::{encode_event_with_binary, OutArg};

fn text(message: &EventMessage) -> &str {
    std::str::from_utf8(&message.text).unwrap()
}

#[test]
fn captured_binary_broadcast_becomes_a_binary_event_and_back() {
    let captured = hex(
        "93a6726354535a3183a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
    );
    let broadcast = Broadcast::decode(&captured).unwrap();
    let message = broadcast.packet.event_message("/").unwrap();
    assert_eq!(text(&message), r#"451-["bin",{"_placeholder":true,"num":0}]"#);
    assert_eq!(message.attachments, vec![Bytes::from_static(&[1, 2, 3])]);

    // Back: what the server holds for that emit (`io.emit("bin", Buffer<010203>)`) encodes to the same bytes.
    let packet =
        AdapterPacket::event(Some("/"), "bin", &[OutArg::Binary(Bytes::from_static(&[1, 2, 3]))]).unwrap();
    let ours = Broadcast { uid: "rcTSZ1".into(), packet, opts: BroadcastOpts::default() };
    assert_eq!(ours.encode(), captured);
}

#[test]
fn member_order_is_kept_both_ways() {
    let args = [OutArg::Json(br#"{"b":1,"a":2.5}"#)];
    let data = event_data("ev", &args).unwrap();
    let packet = AdapterPacket { packet_type: 2, data, nsp: Some("/".into()) };
    let wire = Broadcast { uid: "u".into(), packet, opts: BroadcastOpts::default() }.encode();
    // In msgpack: fixmap(2) "b" 1 "a" float64 2.5.
    let expected_map = hex("82a16201a161cb4004000000000000");
    assert!(wire.windows(expected_map.len()).any(|w| w == expected_map.as_slice()));
    let back = Broadcast::decode(&wire).unwrap().packet.event_message("/").unwrap();
    assert_eq!(text(&back), r#"42["ev",{"b":1,"a":2.5}]"#);
}

/// (notepack bytes of `packet.data`, namespace, what socket.io-parser sends, attachments in hex).
const NODE_PARSER_OUTPUT: &[(&str, &str, &str, &[&str])] = &[
    (
        // ["ev", {a: Buffer<0102>, b: [Date(2000-06-13), "x"]}, 1.5, undefined, Buffer<ff>,
        //  {u: undefined, n: null, big: 2**60, f: 1e-7}]
        "96a2657682a161c4020102a16292d6ff39457980a178cb3ff8000000000000c0c401ff83a16ec0a3626967cf1000000000000000a166cb3e7ad7f29abcaf48",
        "/",
        r#"452-["ev",{"a":{"_placeholder":true,"num":0},"b":["2000-06-13T00:00:00.000Z","x"]},1.5,null,{"_placeholder":true,"num":1},{"n":null,"big":1152921504606847000,"f":1e-7}]"#,
        &["0102", "ff"],
    ),
    (
        "96a2657682a161c4020102a16292d6ff39457980a178cb3ff8000000000000c0c401ff83a16ec0a3626967cf1000000000000000a166cb3e7ad7f29abcaf48",
        "/admin",
        r#"452-/admin,["ev",{"a":{"_placeholder":true,"num":0},"b":["2000-06-13T00:00:00.000Z","x"]},1.5,null,{"_placeholder":true,"num":1},{"n":null,"big":1152921504606847000,"f":1e-7}]"#,
        &["0102", "ff"],
    ),
    (
        // ["ev", ext 5 <0102>, {x: undefined (legacy fixext 1)}, float32 0.1]
        "94a26576d505010281a178d40000ca3dcccccd",
        "/",
        r#"451-["ev",[5,{"_placeholder":true,"num":0}],{},0.10000000149011612]"#,
        &["0102"],
    ),
    ("93a26576cfffffffffffffffffd3ffffffffffffffff", "/", r#"42["ev",18446744073709552000,-1]"#, &[]),
];

#[test]
fn values_print_as_socket_io_parser_prints_them() {
    for &(data, nsp, expected, attachments) in NODE_PARSER_OUTPUT {
        let value = msgpack::decode(&hex(data)).unwrap();
        let message = event_message(nsp, &value).unwrap();
        assert_eq!(text(&message), expected);
        let expected_attachments: Vec<Bytes> = attachments.iter().map(|a| Bytes::from(hex(a))).collect();
        assert_eq!(message.attachments, expected_attachments);
    }
}

#[test]
fn event_message_is_what_the_local_binary_encoder_writes() {
    let data = msgpack::decode(&hex(NODE_PARSER_OUTPUT[0].0)).unwrap();
    let (event, args) = event_args(&data).unwrap();
    assert_eq!(event, "ev");
    assert!(matches!(&args[0], EventArg::JsonWithBinary { attachments, .. } if attachments.len() == 1));
    assert_eq!(args[1], EventArg::Json(Bytes::from_static(b"1.5")));
    assert_eq!(args[2], EventArg::Json(Bytes::from_static(b"null")));
    assert_eq!(args[3], EventArg::Binary(Bytes::from_static(&[0xff])));
    let out_args: Vec<OutArg<'_>> = args.iter().map(EventArg::as_out_arg).collect();
    let mut out = BytesMut::from(&b"4"[..]);
    let mut attachments = Vec::new();
    encode_event_with_binary("/", None, event, &out_args, &mut out, &mut attachments).unwrap();
    let ours = event_message("/", &data).unwrap();
    assert_eq!(ours.text, out.freeze());
    assert_eq!(ours.attachments, attachments);
}

#[test]
fn placeholders_of_received_binary_arguments_become_buffers() {
    let attachments = [Bytes::from_static(b"A"), Bytes::from_static(b"B")];
    let args = [
        OutArg::JsonWithBinary {
            json: br#"{"k":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]}"#,
            attachments: &attachments,
        },
        OutArg::Binary(Bytes::from_static(b"C")),
        OutArg::Json(br#"{"_placeholder":true,"num":0}"#),
    ];
    let data = event_data("up", &args).unwrap();
    let expected = Value::Array(vec![
        s("up"),
        Value::map([(
            "k",
            Value::Array(vec![Value::Bin(attachments[1].clone()), Value::Bin(attachments[0].clone())]),
        )]),
        Value::Bin(Bytes::from_static(b"C")),
        // Plain JSON is not reconstructed: a look-alike object stays an object.
        Value::map([("_placeholder", Value::Bool(true)), ("num", Value::Int(0))]),
    ]);
    assert_eq!(data, expected);
    let message = event_message("/", &data).unwrap();
    assert_eq!(
        text(&message),
        r#"453-["up",{"k":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":2},{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(
        message.attachments,
        vec![attachments[1].clone(), attachments[0].clone(), Bytes::from_static(b"C")]
    );

    let bad =
        [OutArg::JsonWithBinary { json: br#"{"_placeholder":true,"num":2}"#, attachments: &attachments }];
    assert!(matches!(event_data("up", &bad), Err(crate::Error::Misuse(_))));
    assert!(matches!(event_data("up", &[OutArg::Json(b"{oops")]), Err(crate::Error::Misuse(_))));
}

#[test]
fn json_numbers_become_the_numbers_notepack_writes() {
    let value =
        json_to_value(br#"[1,-0,1.0,1e3,2.5,9007199254740991,9007199254740992,1e400,-1.5e-7]"#).unwrap();
    assert_eq!(
        value,
        Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            Value::Int(1),
            Value::Int(1000),
            Value::Float(2.5),
            Value::Int(9_007_199_254_740_991),
            Value::Float(9_007_199_254_740_992.0),
            Value::Float(f64::INFINITY),
            Value::Float(-1.5e-7),
        ])
    );
    assert_eq!(
        &value_to_json(&value)[..],
        br#"[1,0,1,1000,2.5,9007199254740991,9007199254740992,null,-1.5e-7]"#
    );
}

#[test]
fn json_texts_keep_strings_escapes_and_buffers_as_node_writes_them() {
    let value =
        json_to_value(" {\"s\":\"a\\u0041\\n\\u2028\u{e9}\\\"\",\"e\":{},\"l\":[]} ".as_bytes()).unwrap();
    assert_eq!(
        &value_to_json(&value)[..],
        "{\"s\":\"aA\\n\u{2028}\u{e9}\\\"\",\"e\":{},\"l\":[]}".as_bytes()
    );
    // A buffer in a JSON-framed message is written as `JSON.stringify` writes a Node Buffer.
    assert_eq!(
        &value_to_json(&Value::Bin(Bytes::from_static(&[1, 2])))[..],
        br#"{"type":"Buffer","data":[1,2]}"#
    );
    for bad in [&b"[1,]"[..], b"{\"a\":1} x", b"", b"\"\xff\""] {
        assert!(json_to_value(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn malformed_event_data_and_namespaces_are_rejected() {
    assert!(event_message("/", &Value::Array(vec![])).is_err());
    assert!(event_message("/", &Value::Array(vec![Value::Int(1)])).is_err());
    assert!(event_message("/", &s("ev")).is_err());
    let data = Value::Array(vec![s("ev")]);
    assert!(event_message("/a,b", &data).is_err());
    assert!(event_message("admin", &data).is_err());
    assert_eq!(text(&event_message("/a", &data).unwrap()), r#"42/a,["ev"]"#);
    let ack = AdapterPacket { packet_type: 3, data, nsp: None };
    assert!(ack.event_message("/").is_err());
}

#[test]
fn a_peers_placeholder_look_alike_next_to_buffers_is_a_parse_error() {
    let data = Value::Array(vec![
        s("ev"),
        Value::Array(vec![
            Value::Bin(Bytes::from_static(b"x")),
            Value::map([("_placeholder", Value::Bool(true)), ("num", s("nope"))]),
        ]),
    ]);
    assert!(matches!(
        event_message("/", &data),
        Err(crate::Error::PeerMisbehaved(crate::PeerMisbehaved::ClusterParse(_)))
    ));
}

#[test]
fn ack_arguments_convert_both_ways() {
    let attachments = [Bytes::from_static(b"Z")];
    let arg = OutArg::JsonWithBinary {
        json: br#"{"ok":true,"file":{"_placeholder":true,"num":0}}"#,
        attachments: &attachments,
    };
    let value = transcode::arg_value(&arg).unwrap();
    let wire = Response::BroadcastAck { request_id: "r".into(), packet: Some(value) }.encode();
    let Response::BroadcastAck { packet: Some(back), .. } = Response::decode(&wire).unwrap() else {
        panic!()
    };
    assert_eq!(
        EventArg::from_value(&back),
        EventArg::JsonWithBinary {
            json: Bytes::from_static(br#"{"ok":true,"file":{"_placeholder":true,"num":0}}"#),
            attachments: attachments.to_vec(),
        }
    );
}
