//! What the server must reject (socketio-protocol.md §2.7, checklist 21), and the error each gives.

use super::sio;
use crate::sio::{decode, Limits};
use crate::{Error, Limit, PeerMisbehaved};

fn rejection(text: &[u8]) -> Error {
    match decode(text, &Limits::default()) {
        Ok(p) => panic!("{:?} accepted as {p:?}", String::from_utf8_lossy(text)),
        Err(e) => e,
    }
}

fn parse_error(text: &[u8]) -> &'static str {
    match rejection(text) {
        Error::PeerMisbehaved(PeerMisbehaved::SioParse(what)) => what,
        other => panic!("{:?}: expected a parse error, got {other:?}", String::from_utf8_lossy(text)),
    }
}

#[test]
fn suite_malformed_packets_are_parse_errors() {
    // `4abc` is Engine.IO message `abc`: unknown Socket.IO type.
    assert_eq!(parse_error(sio("4abc")), "unknown packet type");
    assert!(parse_error(sio("42{}")).starts_with("invalid payload"));
    assert!(parse_error(sio(r#"42abc["x"]"#)).starts_with("JSON"));
    for text in [&b"7"[..], b"9[]", b"", b" 2[\"x\"]", b"-1"] {
        assert_eq!(parse_error(text), if text.is_empty() { "empty packet" } else { "unknown packet type" });
    }
    // Every parse error reads as "parse error" to handlers and closes only this peer.
    assert_eq!(rejection(b"2{}").disconnect_reason(), "parse error");
    assert!(rejection(b"2{}").is_peer_fault());
}

#[test]
fn reserved_event_names_are_rejected_even_when_escaped() {
    for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"] {
        let text = format!(r#"2["{name}",1]"#);
        assert_eq!(parse_error(text.as_bytes()), "invalid payload: reserved event name", "{name}");
    }
    assert_eq!(parse_error(br#"2/admin,["conn\u0065ct"]"#), "invalid payload: reserved event name");
    assert_eq!(
        parse_error(br#"51-["disconnect",{"_placeholder":true,"num":0}]"#),
        "invalid payload: reserved event name"
    );
    // Close relatives are ordinary names.
    assert!(decode(br#"2["Connect"]"#, &Limits::default()).is_ok());
    assert!(decode(br#"2["connect "]"#, &Limits::default()).is_ok());
}

#[test]
fn payload_shapes_follow_is_payload_valid() {
    let cases: &[(&[u8], &str)] = &[
        (b"2[]", "invalid payload: EVENT needs a string or number name"),
        (b"2[{}]", "invalid payload: EVENT needs a string or number name"),
        (b"2[null,1]", "invalid payload: EVENT needs a string or number name"),
        (b"2\"x\"", "invalid payload: EVENT needs an array"),
        (b"0[]", "invalid payload: CONNECT needs an object"),
        (b"0\"x\"", "invalid payload: CONNECT needs an object"),
        (b"0null", "invalid payload: CONNECT needs an object"),
        (b"0/admin,[1]", "invalid payload: CONNECT needs an object"),
        (b"1{}", "invalid payload: DISCONNECT takes none"),
        (b"1/admin,{}", "invalid payload: DISCONNECT takes none"),
        (b"4[]", "invalid payload: CONNECT_ERROR needs a string or object"),
        (b"4null", "invalid payload: CONNECT_ERROR needs a string or object"),
        (b"31{}", "invalid payload: ACK needs an array"),
        (b"61-1{}", "invalid payload: ACK needs an array"),
    ];
    for (text, what) in cases {
        assert_eq!(parse_error(text), *what, "{:?}", String::from_utf8_lossy(text));
    }
    assert!(decode(b"4\"Not authorized\"", &Limits::default()).is_ok());
}

#[test]
fn invalid_json_and_trailing_garbage_are_rejected() {
    for text in [
        &br#"2["x",]"#[..],
        br#"2["x""#,
        b"2[\"x\",01]",
        br#"2["\x"]"#,
        b"2[\"a\x01\"]",
        b"2[\"\xff\"]",
        br#"2["x"]]"#,
        br#"2["x"] x"#,
        br#"2["x"]["y"]"#,
        br#"0{"a":1}{}"#,
        br#"2/admin,["x"],"#,
    ] {
        assert!(parse_error(text).starts_with("JSON"), "{:?}", String::from_utf8_lossy(text));
    }
    // JS would read the space as ack id 0; we refuse the ambiguity.
    assert_eq!(parse_error(br#"2 ["x"]"#), "whitespace between the header and the payload");
    assert_eq!(parse_error(b"2/\xff,[\"x\"]"), "namespace is not valid UTF-8");
}

#[test]
fn attachment_counts_are_checked() {
    let eleven = sio(r#"4511-["x"]"#);
    assert_eq!(rejection(eleven), Error::LimitExceeded(Limit::SioAttachments { max: 10 }));
    let huge = b"599999999999999999999999999-[\"x\"]";
    assert_eq!(rejection(huge), Error::LimitExceeded(Limit::SioAttachments { max: 10 }));
    assert!(decode(br#"510-["x"]"#, &Limits::default()).is_ok());
    let strict = Limits { max_attachments: 1, ..Limits::default() };
    assert_eq!(decode(br#"52-["x"]"#, &strict), Err(Error::LimitExceeded(Limit::SioAttachments { max: 1 })));
    for text in [
        &br#"5-["x"]"#[..],
        br#"5a-["x"]"#,
        br#"5 1-["x"]"#,
        br#"51["x"]"#,
        b"5",
        br#"5+1-["x"]"#,
        br#"60x1-0[]"#,
    ] {
        assert_eq!(parse_error(text), "illegal attachments", "{:?}", String::from_utf8_lossy(text));
    }
}

#[test]
fn placeholders_must_name_an_announced_attachment() {
    for num in ["1", "-1", "\"0\"", "1.0", "null", "99999999999999999999"] {
        let text = format!(r#"51-["x",{{"_placeholder":true,"num":{num}}}]"#);
        assert_eq!(parse_error(text.as_bytes()), "illegal attachments", "{text}");
    }
    assert_eq!(parse_error(br#"51-["x",{"_placeholder":true}]"#), "illegal attachments");
    assert_eq!(parse_error(br#"50-["x",{"a":[{"_placeholder":true,"num":0}]}]"#), "illegal attachments");
    assert!(decode(
        br#"52-["x",{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]"#,
        &Limits::default()
    )
    .is_ok());
    // In a plain EVENT a placeholder-shaped object is just data (the reference never resolves it).
    assert!(decode(br#"2["x",{"_placeholder":true,"num":5}]"#, &Limits::default()).is_ok());
}

#[test]
fn deep_nesting_is_a_limit_not_a_crash() {
    let depth = |n: usize| format!("2[\"x\",{}{}]", "[".repeat(n), "]".repeat(n));
    // The event array itself is one level: 31 more fit in the default 32.
    assert!(decode(depth(31).as_bytes(), &Limits::default()).is_ok());
    assert_eq!(rejection(depth(32).as_bytes()), Error::LimitExceeded(Limit::SioJsonDepth { max: 32 }));
    let bomb = format!("2[\"x\",{}", "[".repeat(2_000_000));
    assert_eq!(rejection(bomb.as_bytes()), Error::LimitExceeded(Limit::SioJsonDepth { max: 32 }));
    let binary_bomb = format!("51-[\"x\",{}", "{\"a\":".repeat(100_000));
    assert_eq!(rejection(binary_bomb.as_bytes()), Error::LimitExceeded(Limit::SioJsonDepth { max: 32 }));
}

#[test]
fn ack_ids_beyond_64_bits_are_rejected() {
    assert_eq!(parse_error(br#"218446744073709551616["x"]"#), "ack id does not fit 64 bits");
    assert_eq!(parse_error(b"399999999999999999999999999[]"), "ack id does not fit 64 bits");
}
