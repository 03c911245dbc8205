//! Property tests: JSON arguments survive the trip through msgpack (and the sharded JSON framing) byte
//! for byte when they are in JavaScript's canonical form; msgpack values round-trip; arbitrary bytes
//! never panic a decoder, and whatever decodes re-encodes to a fixpoint.

use bytes::Bytes;
use proptest::prelude::*;

use crate::cluster::msgpack::{self, Value};
use crate::cluster::*;
use crate::sio::{self, OutArg};

/// A JSON value in `JSON.stringify`'s canonical form, generated as text.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Significant digits (no leading/trailing zero, at most 15: exactly one double has them as its
    /// shortest spelling) and the decimal point position `n` (value = 0.digits × 10^n).
    Num {
        negative: bool,
        digits: String,
        n: i32,
    },
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript Number::toString for `0.digits × 10^n`, written independently of the code under test.
fn number_text(negative: bool, digits: &str, n: i32, out: &mut String) {
    let k = digits.len() as i32;
    if negative {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(digits);
        out.push_str(&"0".repeat((n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-n) as usize));
        out.push_str(digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!("e{}{}", if n - 1 < 0 { '-' } else { '+' }, (n - 1).abs()));
    }
}

impl Json {
    fn text(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Num { negative, digits, n } => number_text(*negative, digits, *n, out),
            Json::Str(s) => escape(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.text(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (key, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape(key, out);
                    out.push(':');
                    item.text(out);
                }
                out.push('}');
            }
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        self.text(&mut out);
        out
    }
}

fn json_strategy() -> impl Strategy<Value = Json> {
    let safe = (1i64 << 53) - 1;
    let digits = ("[1-9]", "[0-9]{0,13}", "[1-9]").prop_map(|(a, mid, z)| format!("{a}{mid}{z}"));
    let num = prop_oneof![
        (any::<bool>(), digits, -12i32..30).prop_map(|(negative, digits, n)| Json::Num {
            negative,
            digits,
            n
        }),
        (any::<bool>(), "[1-9]", -12i32..30).prop_map(|(negative, digits, n)| Json::Num {
            negative,
            digits,
            n
        }),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-safe..=safe).prop_map(Json::Int),
        num,
        any::<String>().prop_map(Json::Str),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Arr),
            prop::collection::vec((any::<String>(), inner), 0..5).prop_map(|members| {
                let mut seen = std::collections::HashSet::new();
                Json::Obj(members.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect())
            }),
        ]
    })
}

/// A msgpack value that survives encode → decode unchanged (no integral floats within ±2^53, which
/// become integers; no `undefined`, which becomes nil; no ext type 0, which is notepack's legacy).
fn value_strategy() -> impl Strategy<Value = Value> {
    let float = any::<f64>().prop_filter("round-trips as a float", |x| {
        x.is_finite() && (x.fract() != 0.0 || x.abs() > 9_007_199_254_740_991.0)
    });
    let bytes = || prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        float.prop_map(Value::Float),
        any::<String>().prop_map(Value::Str),
        bytes().prop_map(Value::Bin),
        (any::<i8>().prop_filter("not legacy", |k| *k != 0), bytes()).prop_map(|(k, b)| Value::Ext(k, b)),
    ];
    leaf.prop_recursive(4, 48, 20, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..20).prop_map(Value::Map),
        ]
    })
}

/// Re-decodes `once` (the encoding of something that decoded) and checks that it encodes to itself.
/// The one allowed failure is the depth limit: JSON spells a buffer `{"type":"Buffer","data":[…]}`,
/// two levels deeper than the msgpack `bin` it came from.
fn assert_fixpoint<T>(
    once: &Bytes,
    decode: impl Fn(&[u8]) -> Result<T, crate::Error>,
    encode: impl Fn(&T) -> Bytes,
) {
    match decode(once) {
        Ok(again) => assert_eq!(&encode(&again), once),
        Err(crate::Error::LimitExceeded(crate::Limit::ClusterDepth { .. })) => {}
        Err(e) => panic!("{once:?} re-decodes with {e:?}"),
    }
}

/// Decodes `bytes` every way a receiver might and checks that what decodes re-encodes to a fixpoint.
pub(crate) fn decode_every_way(bytes: &[u8]) {
    if let Ok(value) = msgpack::decode(bytes) {
        assert_fixpoint(&msgpack::to_bytes(&value), msgpack::decode, msgpack::to_bytes);
    }
    if let Ok(broadcast) = Broadcast::decode(bytes) {
        let _ = broadcast.packet.event_message(broadcast.packet.nsp_or_root());
        assert_fixpoint(&broadcast.encode(), Broadcast::decode, Broadcast::encode);
    }
    if let Ok(request) = Request::decode(bytes) {
        assert_fixpoint(&request.encode(), Request::decode, Request::encode);
    }
    if let Ok(response) = Response::decode(bytes) {
        assert_fixpoint(&response.encode(), Response::decode, Response::encode);
    }
    if let Ok(message) = ShardedMessage::decode(bytes) {
        assert_fixpoint(&message.encode(), ShardedMessage::decode, ShardedMessage::encode);
    }
}

proptest! {
    #[test]
    fn canonical_json_arguments_survive_msgpack_byte_for_byte(args in prop::collection::vec(json_strategy(), 0..4)) {
        let texts: Vec<String> = args.iter().map(Json::to_text).collect();
        let raw: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let out_args: Vec<OutArg<'_>> = raw.iter().map(|t| OutArg::Json(t)).collect();
        let expected = sio::event_message("/chat", None, "ev", &raw);

        let packet = AdapterPacket::event(Some("/chat"), "ev", &out_args).unwrap();
        let classic = Broadcast { uid: "u".into(), packet: packet.clone(), opts: BroadcastOpts::default() }.encode();
        let received = Broadcast::decode(&classic).unwrap().packet.event_message("/chat").unwrap();
        prop_assert_eq!(&received.text, &expected);
        prop_assert!(received.attachments.is_empty());

        let sharded = ShardedMessage {
            uid: "u".into(),
            nsp: "/chat".into(),
            body: ShardedBody::Broadcast { packet: AdapterPacket { nsp: None, ..packet }, opts: BroadcastOpts::default(), request_id: None },
        }
        .encode();
        prop_assert_eq!(sharded.first(), Some(&b'{'));
        let ShardedBody::Broadcast { packet, .. } = ShardedMessage::decode(&sharded).unwrap().body else {
            panic!("not a broadcast");
        };
        prop_assert_eq!(packet.event_message("/chat").unwrap().text, expected);
    }

    #[test]
    fn msgpack_values_round_trip(value in value_strategy()) {
        let bytes = msgpack::to_bytes(&value);
        prop_assert_eq!(msgpack::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_every_way(&bytes);
    }

    #[test]
    fn arbitrary_json_like_text_never_panics_a_decoder(text in r#"\{("(uid|type|data|requestId|opts|rooms|nsp|packet|sockets)"|[:,\[\]{}0-9a-z"]){0,40}"#) {
        decode_every_way(text.as_bytes());
    }

    #[test]
    fn encoded_values_decode_in_every_message_shape(value in value_strategy(), uid in "[a-z0-9]{0,8}") {
        let packet = AdapterPacket { packet_type: 2, data: Value::Array(vec![Value::str("ev"), value.clone()]), nsp: Some("/".into()) };
        decode_every_way(&Broadcast { uid: uid.clone(), packet: packet.clone(), opts: BroadcastOpts::default() }.encode());
        decode_every_way(&Request { uid: Some(uid.clone()), kind: RequestKind::ServerSideEmit { request_id: None, data: value.clone() } }.encode());
        decode_every_way(&Response::BroadcastAck { request_id: uid.clone(), packet: Some(value.clone()) }.encode());
        let body = ShardedBody::ServerSideEmitResponse { request_id: uid.clone(), packet: Some(value) };
        decode_every_way(&ShardedMessage { uid, nsp: "/".into(), body }.encode());
    }
}
