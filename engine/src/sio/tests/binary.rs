//! Binary attachments: the suite's binary echo and binary ack, the reassembler's ordering rules and
//! limits, and the encoder's placeholders.

use super::sio;
use crate::sio::{
    encode_ack_with_binary, encode_event_with_binary, Arg, AttachmentReassembler, BinaryPacket, Limits,
    OutArg, PacketType, Received,
};
use crate::{Error, Limit, PeerMisbehaved};
use bytes::{Bytes, BytesMut};

/// Feeds the header, then each attachment one at a time, checking the countdown; returns the packet.
fn reassemble(header: &[u8], attachments: &[&[u8]]) -> BinaryPacket {
    let limits = Limits::default();
    let mut r = AttachmentReassembler::new();
    let mut result = r.handle_text(header, &limits).unwrap();
    for (i, data) in attachments.iter().enumerate() {
        assert_eq!(result, Received::AwaitingAttachments { remaining: attachments.len() - i });
        assert!(r.is_reassembling());
        result = r.handle_binary(Bytes::copy_from_slice(data), &limits).unwrap();
    }
    assert!(!r.is_reassembling());
    match result {
        Received::Binary(packet) => packet,
        other => panic!("expected a complete binary packet, got {other:?}"),
    }
}

fn to_out_args<'a>(packet: &'a BinaryPacket) -> Vec<OutArg<'a>> {
    packet
        .args()
        .map(|arg| match arg {
            Arg::Json(json) => OutArg::Json(json),
            Arg::Binary(data) => OutArg::Binary(data.clone()),
            Arg::JsonWithBinary(_) => panic!("not expected here"),
        })
        .collect()
}

#[test]
fn suite_binary_echo_rebuilds_header_and_frames() {
    let header = sio(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    let packet = reassemble(header, &[&[1, 2, 3], &[4, 5, 6]]);
    assert_eq!(packet.packet().event_name().as_deref(), Some("message"));
    let args: Vec<Arg<'_>> = packet.args().collect();
    assert_eq!(
        args,
        [Arg::Binary(&Bytes::from_static(&[1, 2, 3])), Arg::Binary(&Bytes::from_static(&[4, 5, 6]))]
    );

    let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
    encode_event_with_binary("/", None, "message-back", &to_out_args(&packet), &mut out, &mut attachments)
        .unwrap();
    assert_eq!(
        &out[..],
        sio(r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
    );
    assert_eq!(attachments, [Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4, 5, 6])]);
}

#[test]
fn suite_binary_ack_rebuilds_header_and_frames() {
    let header =
        sio(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    let packet = reassemble(header, &[&[1, 2, 3], &[4, 5, 6]]);
    assert_eq!(packet.packet().ack_id(), Some(789));
    let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
    encode_ack_with_binary("/", 789, &to_out_args(&packet), &mut out, &mut attachments).unwrap();
    assert_eq!(&out[..], sio(r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#));
    assert_eq!(attachments.len(), 2);
}

#[test]
fn server_binary_emit_matches_the_captured_session() {
    // §2.8: io.to("r1").emit("bin", Buffer<01 02 03>, "x")
    let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
    let args = [OutArg::Binary(Bytes::from_static(&[1, 2, 3])), OutArg::Json(b"\"x\"")];
    encode_event_with_binary("/", None, "bin", &args, &mut out, &mut attachments).unwrap();
    assert_eq!(&out[..], sio(r#"451-["bin",{"_placeholder":true,"num":0},"x"]"#));
    assert_eq!(attachments, [Bytes::from_static(&[1, 2, 3])]);
}

#[test]
fn placeholder_numbers_start_at_zero_even_when_the_attachment_list_is_reused() {
    let (mut out, mut attachments) = (BytesMut::new(), vec![Bytes::from_static(b"earlier packet")]);
    let args = [OutArg::Binary(Bytes::from_static(b"a")), OutArg::Binary(Bytes::from_static(b"b"))];
    encode_ack_with_binary("/", 1, &args, &mut out, &mut attachments).unwrap();
    assert_eq!(&out[..], br#"62-1[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    assert_eq!(attachments.len(), 3);
}

#[test]
fn without_binary_the_encoder_writes_plain_event_and_ack() {
    let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
    encode_event_with_binary("/a", Some(3), "ev", &[OutArg::Json(b"1")], &mut out, &mut attachments).unwrap();
    assert_eq!(&out[..], br#"2/a,3["ev",1]"#);
    out.clear();
    encode_ack_with_binary("/", 4, &[], &mut out, &mut attachments).unwrap();
    assert_eq!(&out[..], b"34[]");
    assert!(attachments.is_empty());
}

#[test]
fn nested_binary_is_renumbered_into_the_packet_sequence() {
    let (a, b, c) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"), Bytes::from_static(b"c"));
    let nested = [b.clone(), c.clone()];
    let json = br#"{"f":{"_placeholder":true,"num":1},"g":[{"_placeholder":true,"num":0}]}"#;
    let args = [OutArg::Binary(a.clone()), OutArg::JsonWithBinary { json, attachments: &nested }];
    let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
    encode_event_with_binary("/", None, "up", &args, &mut out, &mut attachments).unwrap();
    let expected = r#"53-["up",{"_placeholder":true,"num":0},{"f":{"_placeholder":true,"num":2},"g":[{"_placeholder":true,"num":1}]}]"#;
    assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
    assert_eq!(attachments, [a, b, c]);

    // Received back, the nested argument is described rather than resolved.
    let packet = reassemble(expected.as_bytes(), &[b"a", b"b", b"c"]);
    let args: Vec<Arg<'_>> = packet.args().collect();
    assert!(matches!(args[0], Arg::Binary(data) if &data[..] == b"a"));
    let Arg::JsonWithBinary(json) = args[1] else { panic!("{:?}", args[1]) };
    let mut nums = Vec::new();
    crate::sio::json::placeholders(json, 32, |p| nums.push(p.num.unwrap())).unwrap();
    assert_eq!(nums.iter().map(|&n| &packet.attachment(n).unwrap()[..]).collect::<Vec<_>>(), [b"c", b"b"]);
}

#[test]
fn bad_nested_binary_is_misuse_and_writes_nothing() {
    let nested = [Bytes::from_static(b"b")];
    for json in [&br#"{"_placeholder":true,"num":1}"#[..], br#"{"_placeholder":true}"#, b"[1,", b" 1"] {
        let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
        let args = [OutArg::JsonWithBinary { json, attachments: &nested }];
        let result = encode_event_with_binary("/", None, "ev", &args, &mut out, &mut attachments);
        assert!(matches!(result, Err(Error::Misuse(_))), "{:?}", String::from_utf8_lossy(json));
        assert!(out.is_empty() && attachments.is_empty());
    }
}

#[test]
fn plain_packets_pass_straight_through() {
    let mut r = AttachmentReassembler::new();
    let text = br#"2["x",1]"#;
    match r.handle_text(text, &Limits::default()).unwrap() {
        Received::Packet(p) => assert_eq!(p.event_name().as_deref(), Some("x")),
        other => panic!("{other:?}"),
    }
    assert!(!r.is_reassembling());
}

#[test]
fn zero_attachments_complete_at_once_and_leave_the_reassembler_idle() {
    let limits = Limits::default();
    let mut r = AttachmentReassembler::new();
    let Received::Binary(packet) = r.handle_text(br#"50-["x",1]"#, &limits).unwrap() else { panic!() };
    assert_eq!((packet.packet().kind(), packet.attachments().len()), (PacketType::BinaryEvent, 0));
    assert!(matches!(r.handle_text(br#"2["y"]"#, &limits), Ok(Received::Packet(_))));
}

#[test]
fn ordering_violations_are_parse_errors_and_reset_the_state() {
    let limits = Limits::default();
    let mut r = AttachmentReassembler::new();
    let err = r.handle_binary(Bytes::from_static(b"x"), &limits).unwrap_err();
    assert_eq!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::SioParse("binary message while no packet awaits one"))
    );

    r.handle_text(br#"51-["x",{"_placeholder":true,"num":0}]"#, &limits).unwrap();
    let err = r.handle_text(br#"2["y"]"#, &limits).unwrap_err();
    assert_eq!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::SioParse("text packet while waiting for binary attachments"))
    );
    assert!(!r.is_reassembling());
}

#[test]
fn buffered_bytes_are_capped() {
    let limits = Limits { max_buffered_bytes: 100, ..Limits::default() };
    let header = br#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    let mut r = AttachmentReassembler::new();
    r.handle_text(header, &limits).unwrap();
    r.handle_binary(Bytes::from(vec![0; 100 - header.len()]), &limits).unwrap();
    let err = r.handle_binary(Bytes::from_static(b"x"), &limits).unwrap_err();
    assert_eq!(err, Error::LimitExceeded(Limit::SioAttachmentBytes { max: 100 }));
    assert_eq!(err.ws_close_code(), 1009);
    assert!(!r.is_reassembling());
    let tiny = Limits { max_buffered_bytes: 10, ..Limits::default() };
    assert!(r.handle_text(header, &tiny).is_err());
}

#[test]
fn forwarding_a_binary_packet_reuses_its_text_and_buffers() {
    let header = sio(r#"461-15["bar",{"_placeholder":true,"num":0}]"#);
    let packet = reassemble(header, &[b"payload"]);
    let (text, attachments) = packet.clone().into_parts();
    assert_eq!(&text[..], header);
    assert_eq!(attachments, [Bytes::from_static(b"payload")]);
    let mut out = BytesMut::new();
    packet.packet().encode(&mut out);
    assert_eq!(&out[..], header);
}
