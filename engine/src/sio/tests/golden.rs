//! Byte strings from socketio-protocol.md §2.2, §2.4, §2.5, §2.8 and §3.4: each decodes, re-encodes to
//! the same bytes, and the encoders rebuild the server's side of each exchange byte for byte.

use super::{decoded, reencoded, sio};
use crate::sio::{
    encode_ack, encode_connect, encode_connect_error, encode_disconnect, encode_event, event_message,
    PacketType,
};
use bytes::BytesMut;

/// Every vector as an Engine.IO message (`4` + Socket.IO packet), exactly as the notes print it.
const VECTORS: &[&str] = &[
    // §2.2 spec examples
    "40",
    r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
    r#"44{"message":"Not authorized"}"#,
    r#"42["foo"]"#,
    r#"42/admin,["bar"]"#,
    r#"4212["foo"]"#,
    r#"43/admin,13["bar"]"#,
    r#"451-["baz",{"_placeholder":true,"num":0}]"#,
    r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    r#"461-15["bar",{"_placeholder":true,"num":0}]"#,
    "41",
    "41/admin,",
    // §2.4 namespace connection
    r#"40{"token":"123"}"#,
    "40/custom,",
    r#"40/custom,{"token":"abc"}"#,
    r#"44/random,{"message":"Invalid namespace"}"#,
    r#"44/admin,{"message":"not authorized","data":{"content":"Please retry later"}}"#,
    r#"40{"sid":"zUB26IBWXYNfJ-0VAAAA"}"#,
    // §2.5 events and acks
    r#"42["message",1,"2",{"3":[true]}]"#,
    r#"42456["message-with-ack",1,"2",{"3":[false]}]"#,
    r#"43456[1,"2",{"3":[false]}]"#,
    r#"420["q",1]"#,
    // §2.8 captured polling session
    r#"40/admin,{"token":"x"}"#,
    r#"42["bin"]"#,
    r#"451-["bin",{"_placeholder":true,"num":0},"x"]"#,
    r#"42["ackme"]"#,
    "43/nope,0[1]",
    // §3.4 suite wire expectations
    r#"42["auth",{}]"#,
    r#"42["auth",{"token":"123"}]"#,
    r#"42/custom,["auth",{}]"#,
    r#"42/custom,["auth",{"token":"abc"}]"#,
    r#"42["message-back",1,"2",{"3":[true]}]"#,
    r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    r#"42["message","message to main namespace"]"#,
    r#"42["message-back","message to main namespace"]"#,
    // Pass-through: key order, number spelling, escapes, non-ASCII stay as sent.
    r#"42["x",{"b":1,"a":2},1.0e3,-0,1E+2,-0.5e-7,"\u00e9\ud83d\ude00\n","é😀"]"#,
];

#[test]
fn every_vector_decodes_and_reencodes_to_the_same_bytes() {
    for vector in VECTORS {
        let text = sio(vector);
        assert_eq!(reencoded(&decoded(text)), text, "{vector}");
    }
}

#[test]
fn header_fields_are_read_as_the_reference_reads_them() {
    let p = decoded(sio(r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#));
    assert_eq!(
        (p.kind(), p.nsp(), p.attachments(), p.ack_id()),
        (PacketType::BinaryEvent, "/admin", 2, None)
    );
    let p = decoded(sio(r#"43/admin,13["bar"]"#));
    assert_eq!((p.kind(), p.nsp(), p.ack_id()), (PacketType::Ack, "/admin", Some(13)));
    assert_eq!(p.args().collect::<Vec<_>>(), [br#""bar""#]);
    let p = decoded(sio(r#"461-15["bar",{"_placeholder":true,"num":0}]"#));
    assert_eq!((p.kind(), p.attachments(), p.ack_id()), (PacketType::BinaryAck, 1, Some(15)));
    let p = decoded(sio("40"));
    assert_eq!((p.kind(), p.nsp(), p.auth()), (PacketType::Connect, "/", None));
    let p = decoded(sio(r#"40/custom,{"token":"abc"}"#));
    assert_eq!((p.nsp(), p.auth()), ("/custom", Some(&br#"{"token":"abc"}"#[..])));
    let p = decoded(sio("41/admin,"));
    assert_eq!((p.kind(), p.nsp(), p.payload()), (PacketType::Disconnect, "/admin", None));
}

#[test]
fn namespace_without_a_comma_runs_to_the_end() {
    // The suite sends `40/random` with no comma; the reference reads the namespace to the end.
    let p = decoded(sio("40/random"));
    assert_eq!((p.nsp(), p.payload()), ("/random", None));
    assert_eq!(reencoded(&p), b"0/random,");
    assert_eq!(decoded(sio("41/custom")).nsp(), "/custom");
    // `/` named explicitly is the main namespace, written implicitly on the way out.
    assert_eq!(reencoded(&decoded(b"2/,[\"x\"]")), br#"2["x"]"#);
}

#[test]
fn suite_echo_rebuilds_the_exact_event_bytes() {
    let incoming = decoded(sio(r#"42["message",1,"2",{"3":[true]}]"#));
    assert_eq!(incoming.event_name().as_deref(), Some("message"));
    let args: Vec<&[u8]> = incoming.args().collect();
    let mut out = BytesMut::new();
    encode_event(incoming.nsp(), None, "message-back", &args, &mut out);
    assert_eq!(&out[..], sio(r#"42["message-back",1,"2",{"3":[true]}]"#));
    // The Engine.IO message a broadcast frames once: `4` + packet in one buffer.
    let message = event_message(incoming.nsp(), None, "message-back", &args);
    assert_eq!(&message[..], br#"42["message-back",1,"2",{"3":[true]}]"#);
    assert_eq!(message.len(), crate::sio::event_len("/", None, "message-back", &args) + 1);
}

#[test]
fn suite_ack_rebuilds_the_exact_ack_bytes() {
    let incoming = decoded(sio(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#));
    assert_eq!(incoming.ack_id(), Some(456));
    let args: Vec<&[u8]> = incoming.args().collect();
    let mut out = BytesMut::new();
    encode_ack(incoming.nsp(), 456, &args, &mut out);
    assert_eq!(&out[..], sio(r#"43456[1,"2",{"3":[false]}]"#));
    out.clear();
    encode_ack("/", 7, &[], &mut out);
    assert_eq!(&out[..], b"37[]");
    out.clear();
    encode_event("/", Some(0), "q", &[b"1"], &mut out);
    assert_eq!(&out[..], sio(r#"420["q",1]"#));
}

#[test]
fn connect_replies_match_the_reference() {
    let mut out = BytesMut::new();
    encode_connect("/", "zUB26IBWXYNfJ-0VAAAA", None, &mut out);
    assert_eq!(&out[..], sio(r#"40{"sid":"zUB26IBWXYNfJ-0VAAAA"}"#));
    out.clear();
    encode_connect("/admin", "oSO0OpakMV_3jnilAAAA", None, &mut out);
    assert_eq!(&out[..], sio(r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#));
    out.clear();
    encode_connect("/", "s", Some("p"), &mut out);
    assert_eq!(&out[..], br#"0{"sid":"s","pid":"p"}"#);
    // Both forms decode as valid CONNECT packets (what the client's parser checks).
    assert_eq!(decoded(&out).kind(), PacketType::Connect);
}

#[test]
fn connect_errors_match_the_reference() {
    let mut out = BytesMut::new();
    encode_connect_error("/random", "Invalid namespace", None, &mut out);
    assert_eq!(&out[..], sio(r#"44/random,{"message":"Invalid namespace"}"#));
    out.clear();
    encode_connect_error("/admin", "not authorized", Some(br#"{"content":"Please retry later"}"#), &mut out);
    assert_eq!(
        &out[..],
        sio(r#"44/admin,{"message":"not authorized","data":{"content":"Please retry later"}}"#)
    );
    out.clear();
    encode_connect_error("/", "say \"hi\"\\\n\u{1}\u{1f}/é", None, &mut out);
    assert_eq!(&out[..], "4{\"message\":\"say \\\"hi\\\"\\\\\\n\\u0001\\u001f/é\"}".as_bytes());
}

#[test]
fn disconnects_match_the_reference() {
    let mut out = BytesMut::new();
    encode_disconnect("/", &mut out);
    assert_eq!(&out[..], b"1");
    out.clear();
    encode_disconnect("/admin", &mut out);
    assert_eq!(&out[..], b"1/admin,");
}

#[test]
fn event_names_are_unescaped_and_escaped_like_json_stringify() {
    let p = decoded(br#"2["a\"b\u00e9\ud83d\ude00",1]"#);
    assert_eq!(p.event_name().as_deref(), Some("a\"bé😀"));
    let mut out = BytesMut::new();
    encode_event("/", None, "a\"bé😀\u{8}\u{c}\t\r\u{7f}", &[], &mut out);
    assert_eq!(&out[..], "2[\"a\\\"bé😀\\b\\f\\t\\r\u{7f}\"]".as_bytes());
    // A numeric event name is allowed by the reference and read as its literal text.
    assert_eq!(decoded(b"2[42,\"x\"]").event_name().as_deref(), Some("42"));
    assert_eq!(decoded(b"2[42,\"x\"]").args().collect::<Vec<_>>(), [b"\"x\""]);
}

#[test]
fn payload_whitespace_around_the_value_is_trimmed() {
    let p = decoded(b"2[\"x\", 1 ]\n");
    assert_eq!(p.payload(), Some(&b"[\"x\", 1 ]"[..]));
    assert_eq!(p.args().collect::<Vec<_>>(), [b"1"]);
}

#[test]
fn packets_without_payload_decode_as_in_the_reference() {
    // An ACK without payload acknowledges with no arguments; an EVENT without one has no name.
    let p = decoded(b"3/admin,13");
    assert_eq!((p.ack_id(), p.args().count()), (Some(13), 0));
    let p = decoded(b"2");
    assert_eq!((p.event_name(), p.args().count()), (None, 0));
    assert_eq!(decoded(b"2007[\"x\"]").ack_id(), Some(7));
    assert_eq!(decoded(b"218446744073709551615[\"x\"]").ack_id(), Some(u64::MAX));
}

#[test]
fn a_decoded_packet_forwards_as_one_engine_io_message() {
    let text = sio(r#"42/admin,7["ev",{"b":1,"a":2}]"#);
    assert_eq!(&decoded(text).to_eio_message()[..], br#"42/admin,7["ev",{"b":1,"a":2}]"#);
}
