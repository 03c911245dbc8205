//! The WebSocket transport of a session, fed whole and in any chunking.

use super::*;
use roomcast_engine::ws::{encode_text, WsEvent};

fn key() -> WebSocketKey {
    WebSocketKey::from_bits(42)
}

fn target() -> Target {
    Target::parse("http://127.0.0.1:3000", "/socket.io/").unwrap()
}

fn upgraded(target: &Target) -> (Session, Vec<u8>) {
    let mut s = Session::new(Transport::WebSocket);
    assert_eq!(s.poll_action(), Some(StreamAction::Connect(Stream::Primary)));
    assert_eq!(s.poll_action(), None);
    let mut mask = 3;
    s.handle_connected(Stream::Primary, &mut Context { target, key: key(), mask_state: &mut mask });
    assert_eq!(s.phase(), Phase::Upgrading);
    let accept = String::from_utf8(key().expected_accept().to_vec()).unwrap();
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    (s, head.into_bytes())
}

fn frames(texts: &[&str]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for t in texts {
        encode_text(t, &mut out);
    }
    out.to_vec()
}

/// Runs `input` through a fresh upgraded session in chunks of `chunk` bytes; returns the events (as
/// text), the failure and the session.
fn feed(input: &[u8], chunk: usize) -> (Vec<String>, Option<Failure>, Session) {
    let target = target();
    let (mut s, _) = upgraded(&target);
    let mut mask = 7;
    let mut seen = Vec::new();
    let mut failure = None;
    for piece in input.chunks(chunk) {
        let mut cx = Context { target: &target, key: key(), mask_state: &mut mask };
        let mut piece = piece.to_vec();
        if let Err(f) = s.handle_bytes(Stream::Primary, &mut piece, &mut cx, |e| {
            seen.push(match e {
                SessionEvent::Event(t) => String::from_utf8_lossy(t).into_owned(),
                other => format!("{other:?}"),
            })
        }) {
            failure = Some(f);
            break;
        }
    }
    (seen, failure, s)
}

#[test]
fn a_whole_session_connects_answers_pings_and_delivers_events_in_any_chunking() {
    let (_, mut input) = upgraded(&target());
    input.extend(frames(&[
        r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        "2",
        r#"40{"sid":"abc"}"#,
        r#"42["m","rc1.1.2.3.x"]"#,
        r#"430["ok"]"#,
        r#"431[{"error":"room not allowed"}]"#,
    ]));
    for chunk in [input.len(), 1, 7] {
        let (seen, failure, mut s) = feed(&input, chunk);
        assert_eq!(failure, None);
        assert_eq!(
            seen,
            [
                "Connected",
                r#"2["m","rc1.1.2.3.x"]"#,
                "Ack { id: 0, error: false }",
                "Ack { id: 1, error: true }"
            ]
        );
        assert_eq!(s.phase(), Phase::Ready);
        assert_eq!(s.poll_action(), None);
        // Sent: the request, CONNECT `40` and the pong `3`, each a masked text frame.
        let sent = s.out_mut(Stream::Primary).unwrap().to_vec();
        assert!(sent.starts_with(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"));
        let head_end = sent.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut server_side = FrameDecoder::new(1 << 20);
        let mut texts = Vec::new();
        server_side
            .handle_bytes(&mut sent[head_end..].to_vec(), |e| {
                if let WsEvent::Text(t) = e {
                    texts.push(t.to_string());
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(texts, ["40", "3"]);
        assert!(s.out_mut(Stream::Secondary).is_none(), "a WebSocket session has one stream");
    }
}

#[test]
fn refusals_and_server_closes_are_failures_that_say_why() {
    let target = target();
    let (mut s, _) = upgraded(&target);
    let mut mask = 1;
    let mut cx = Context { target: &target, key: key(), mask_state: &mut mask };
    let mut refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 40\r\n\r\n{\"code\":0,\"message\":\"Transport unknown\"}".to_vec();
    let f = s.handle_bytes(Stream::Primary, &mut refused, &mut cx, |_| {}).unwrap_err();
    assert_eq!(
        f.to_string(),
        r#"WebSocket handshake answered HTTP 400 Bad Request: {"code":0,"message":"Transport unknown"}"#
    );

    let (_, mut input) = upgraded(&target);
    input.extend(frames(&["0{}", r#"44{"message":"Invalid namespace"}"#]));
    let (_, failure, _) = feed(&input, 3);
    assert!(
        matches!(failure, Some(Failure::Refused(ref m)) if m.contains("Invalid namespace")),
        "{failure:?}"
    );

    let (_, mut input) = upgraded(&target);
    input.extend(frames(&["0{}", r#"40{"sid":"a"}"#, "41"]));
    let (_, failure, _) = feed(&input, 1);
    assert!(matches!(failure, Some(Failure::Closed(_))), "{failure:?}");

    let (_, mut input) = upgraded(&target);
    input.extend(frames(&["hello"]));
    let (_, failure, _) = feed(&input, 1);
    assert!(matches!(failure, Some(Failure::Protocol(_))), "{failure:?}");

    let (mut s, _) = upgraded(&target);
    let mut cx = Context { target: &target, key: key(), mask_state: &mut mask };
    let eof = s.handle_eof(Stream::Primary, &mut cx, |_| {});
    assert_eq!(eof, Err(Failure::Closed("the server closed the TCP connection".into())));
}

#[test]
fn actions_come_out_drops_first_then_the_promotion_then_connects() {
    let mut actions = Actions::default();
    actions.push(StreamAction::Connect(Stream::Secondary));
    actions.push(StreamAction::Promote);
    actions.push(StreamAction::Drop(Stream::Primary));
    actions.push(StreamAction::Connect(Stream::Secondary));
    let mut got = Vec::new();
    while let Some(a) = actions.pop() {
        got.push(a);
    }
    assert_eq!(
        got,
        [
            StreamAction::Drop(Stream::Primary),
            StreamAction::Promote,
            StreamAction::Connect(Stream::Secondary)
        ]
    );
}
