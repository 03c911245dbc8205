//! Property tests: random packets encode → decode → encode to identical bytes, with every field and raw
//! argument read back as written; arbitrary bytes never panic the decoder.

use super::reencoded;
use crate::sio::{
    decode, encode_ack, encode_connect_error, encode_event, encode_event_with_binary, Arg,
    AttachmentReassembler, Limits, OutArg, PacketType, Received, RESERVED_EVENTS,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

/// Compact JSON string tokens, escapes included, as `JSON.stringify` could write them.
fn json_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _/é😀-]{1,4}",
        Just(r"\n".to_string()),
        Just(r#"\""#.to_string()),
        Just(r"\\".to_string()),
        Just(r"\u00e9".to_string()),
        Just(r"\ud83d\ude00".to_string()),
        Just(r"\u001f".to_string()),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|parts| format!("\"{}\"", parts.concat()))
}

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        prop::sample::select(vec!["-0", "1.0e3", "1E+2", "-0.5e-7", "0.0"]).prop_map(String::from),
    ]
}

/// Random compact JSON values, nesting a few levels.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["null", "true", "false"]).prop_map(String::from),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((json_string(), inner), 0..5).prop_map(|members| {
                let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_string()), "/[a-z0-9_é-]{0,8}"]
}

fn event_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

proptest! {
    #[test]
    fn events_round_trip(nsp in namespace(), ack in any::<Option<u64>>(), name in event_name(),
                         args in prop::collection::vec(json_value(), 0..5)) {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut out = BytesMut::new();
        encode_event(&nsp, ack, &name, &raw, &mut out);
        let packet = decode(&out, &Limits::default()).unwrap();
        prop_assert_eq!(packet.kind(), PacketType::Event);
        prop_assert_eq!(packet.nsp(), nsp.as_str());
        prop_assert_eq!(packet.ack_id(), ack);
        let got_name = packet.event_name();
        prop_assert_eq!(got_name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(packet.args().collect::<Vec<_>>(), raw);
        prop_assert_eq!(reencoded(&packet), &out[..]);
    }

    #[test]
    fn acks_and_connect_errors_round_trip(nsp in namespace(), id in any::<u64>(),
                                          args in prop::collection::vec(json_value(), 0..5),
                                          message in any::<String>(), data in prop::option::of(json_value())) {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut out = BytesMut::new();
        encode_ack(&nsp, id, &raw, &mut out);
        let packet = decode(&out, &Limits::default()).unwrap();
        prop_assert_eq!((packet.kind(), packet.ack_id()), (PacketType::Ack, Some(id)));
        prop_assert_eq!(packet.args().collect::<Vec<_>>(), raw);
        prop_assert_eq!(reencoded(&packet), &out[..]);

        out.clear();
        encode_connect_error(&nsp, &message, data.as_deref().map(str::as_bytes), &mut out);
        let packet = decode(&out, &Limits::default()).unwrap();
        prop_assert_eq!(packet.kind(), PacketType::ConnectError);
        prop_assert_eq!(reencoded(&packet), &out[..]);
    }

    #[test]
    fn binary_events_round_trip_with_attachments_fed_one_at_a_time(
        nsp in namespace(), ack in any::<Option<u64>>(), name in event_name(),
        args in prop::collection::vec(prop_oneof![
            json_value().prop_map(Ok),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Err),
        ], 0..6),
    ) {
        let out_args: Vec<OutArg<'_>> = args.iter().map(|a| match a {
            Ok(json) => OutArg::Json(json.as_bytes()),
            Err(data) => OutArg::Binary(Bytes::copy_from_slice(data)),
        }).collect();
        let (mut out, mut attachments) = (BytesMut::new(), Vec::new());
        encode_event_with_binary(&nsp, ack, &name, &out_args, &mut out, &mut attachments).unwrap();

        let limits = Limits::default();
        let mut reassembler = AttachmentReassembler::new();
        let mut received = reassembler.handle_text(&out, &limits).unwrap();
        for data in &attachments {
            let awaiting = matches!(received, Received::AwaitingAttachments { .. });
            prop_assert!(awaiting, "attachment fed to a packet not awaiting one");
            received = reassembler.handle_binary(data.clone(), &limits).unwrap();
        }
        let got: Vec<Result<Vec<u8>, Vec<u8>>> = match &received {
            Received::Packet(p) => p.args().map(|a| Ok(a.to_vec())).collect(),
            Received::Binary(b) => b.args().map(|a| match a {
                Arg::Json(json) | Arg::JsonWithBinary(json) => Ok(json.to_vec()),
                Arg::Binary(data) => Err(data.to_vec()),
            }).collect(),
            Received::AwaitingAttachments { .. } => unreachable!("all attachments were fed"),
        };
        let want: Vec<Result<Vec<u8>, Vec<u8>>> =
            args.iter().map(|a| a.clone().map(String::into_bytes)).collect();
        prop_assert_eq!(got, want);
        let packet = match &received {
            Received::Packet(p) => *p,
            Received::Binary(b) => b.packet(),
            Received::AwaitingAttachments { .. } => unreachable!(),
        };
        let got_name = packet.event_name();
        prop_assert_eq!(got_name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(reencoded(&packet), &out[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decoding_is_canonical(bytes in prop::collection::vec(any::<u8>(), 0..64),
                                                              prefix in prop::sample::select(vec![
                                                                  "", "2[", "0", "51-", "3/a,", "2[\"x\",{"])) {
        let text = [prefix.as_bytes(), &bytes].concat();
        if let Ok(packet) = decode(&text, &Limits::default()) {
            let again = reencoded(&packet);
            prop_assert_eq!(decode(&again, &Limits::default()).unwrap(), packet);
        }
    }
}
