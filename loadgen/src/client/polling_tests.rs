//! The polling transport against scripted server answers: what goes out on each stream, what the
//! session reports, and which sockets it asks for. Server bytes are fed whole and one byte at a time.

use super::*;
use crate::client::session::{Context, Session};
use crate::client::upgrade::WebSocketKey;
use crate::client::Transport;
use roomcast_engine::ws::encode_text;

const OPEN: &str = r#"0{"sid":"AAB+cd/ef","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const SID: &str = "AAB%2Bcd%2Fef";

/// A session with the sockets simulated: connects complete at once, writes are taken by the test.
struct Harness {
    s: Session,
    target: Target,
    mask: u64,
    actions: Vec<StreamAction>,
    events: Vec<String>,
}

impl Harness {
    fn new(transport: Transport) -> Harness {
        let target = Target::parse("http://127.0.0.1:3000/admin", "/socket.io/").unwrap();
        let mut h =
            Harness { s: Session::new(transport), target, mask: 5, actions: Vec::new(), events: Vec::new() };
        h.sync();
        h
    }

    fn cx(&mut self) -> (Context<'_>, &mut Session) {
        let cx =
            Context { target: &self.target, key: WebSocketKey::from_bits(9), mask_state: &mut self.mask };
        (cx, &mut self.s)
    }

    /// Carries out the session's actions as the pool would, connecting at once.
    fn sync(&mut self) {
        while let Some(action) = self.s.poll_action() {
            self.actions.push(action);
            if let StreamAction::Connect(stream) = action {
                let (mut cx, s) = self.cx();
                s.handle_connected(stream, &mut cx);
            }
        }
    }

    /// Bytes queued on `stream` since the last call, as text.
    fn sent(&mut self, stream: Stream) -> String {
        let out = self.s.out_mut(stream).map(|o| o.split().to_vec()).unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Feeds `input` on `stream`, `chunk` bytes at a time.
    fn feed(&mut self, stream: Stream, input: &[u8], chunk: usize) -> Result<(), Failure> {
        for piece in input.chunks(chunk) {
            let mut piece = piece.to_vec();
            let mut seen = Vec::new();
            let (mut cx, s) = self.cx();
            let result = s.handle_bytes(stream, &mut piece, &mut cx, |e| seen.push(event_text(e)));
            self.events.extend(seen);
            result?;
            self.sync();
        }
        Ok(())
    }

    fn eof(&mut self, stream: Stream) -> Result<(), Failure> {
        let mut seen = Vec::new();
        let (mut cx, s) = self.cx();
        let result = s.handle_eof(stream, &mut cx, |e| seen.push(event_text(e)));
        self.events.extend(seen);
        self.sync();
        result
    }

    fn emit(&mut self, arg: &str) {
        let (mut cx, s) = self.cx();
        s.emit(&mut cx, "publish", &[arg.as_bytes()], false);
        self.sync();
    }
}

fn event_text(e: SessionEvent<'_>) -> String {
    match e {
        SessionEvent::Event(t) => String::from_utf8_lossy(t).into_owned(),
        other => format!("{other:?}"),
    }
}

fn answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    answer("200 OK", body)
}

fn get(sid: Option<&str>) -> String {
    let sid = sid.map_or_else(String::new, |s| format!("&sid={s}"));
    format!("GET /socket.io/?EIO=4&transport=polling{sid} HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\r\n")
}

fn post(body: &str) -> String {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={SID} HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The masked text frames a client sent, as the server reads them.
fn ws_texts(bytes: &[u8]) -> Vec<String> {
    let mut texts = Vec::new();
    FrameDecoder::new(1 << 20)
        .handle_bytes(&mut bytes.to_vec(), |e| {
            if let WsEvent::Text(t) = e {
                texts.push(t.to_string());
            }
            Ok(())
        })
        .unwrap();
    texts
}

/// A polling session up to `Ready`, its server bytes fed `chunk` at a time.
fn ready_polling(chunk: usize) -> Harness {
    let mut h = Harness::new(Transport::Polling);
    assert_eq!(h.s.phase(), Phase::AwaitOpen);
    assert_eq!(h.sent(Stream::Primary), get(None));
    h.feed(Stream::Primary, &ok(OPEN), chunk).unwrap();
    assert_eq!(h.s.phase(), Phase::AwaitConnect);
    assert_eq!(h.sent(Stream::Primary), get(Some(SID)), "the next long-poll leaves at once");
    assert_eq!(h.sent(Stream::Secondary), post("40/admin,"), "CONNECT goes in a POST on the second socket");
    h.feed(Stream::Secondary, &ok("ok"), chunk).unwrap();
    h.feed(Stream::Primary, &ok(r#"40/admin,{"sid":"s1"}"#), chunk).unwrap();
    assert_eq!(h.s.phase(), Phase::Ready);
    assert_eq!(h.events, ["Connected"]);
    assert_eq!(h.sent(Stream::Primary), get(Some(SID)));
    h.events.clear();
    h
}

#[test]
fn polling_handshakes_connects_and_delivers_whole_or_byte_by_byte() {
    for chunk in [usize::MAX, 1] {
        let mut h = ready_polling(chunk);
        let payload = "42/admin,[\"m\",\"a\"]\x1ebAQID\x1e2\x1e42/admin,[\"m\",\"b\"]\x1e6";
        h.feed(Stream::Primary, &ok(payload), chunk).unwrap();
        assert_eq!(h.events, ["2/admin,[\"m\",\"a\"]", "2/admin,[\"m\",\"b\"]"]);
        assert_eq!(h.sent(Stream::Secondary), post("3"), "the ping is answered in a POST");
        assert_eq!(h.sent(Stream::Primary), get(Some(SID)));
        assert_eq!(
            h.actions,
            [StreamAction::Connect(Stream::Primary), StreamAction::Connect(Stream::Secondary)],
            "two sockets, kept alive"
        );
    }
}

#[test]
fn one_post_at_a_time_and_each_batches_what_waited_up_to_max_payload() {
    let mut h = ready_polling(usize::MAX);
    h.emit("1");
    assert_eq!(h.sent(Stream::Secondary), post("42/admin,[\"publish\",1]"));
    h.emit("2");
    h.emit("3");
    assert_eq!(h.sent(Stream::Secondary), "", "the first POST is not answered yet");
    h.feed(Stream::Secondary, &ok("ok"), usize::MAX).unwrap();
    assert_eq!(h.sent(Stream::Secondary), post("42/admin,[\"publish\",2]\x1e42/admin,[\"publish\",3]"));
    h.feed(Stream::Secondary, &ok("ok"), usize::MAX).unwrap();

    // A server with a small maxPayload gets whole records that fit, one POST after the other.
    assert_eq!(batch_len(b"aaaa\x1ebbbb\x1ecccc", 14), 14);
    assert_eq!(batch_len(b"aaaa\x1ebbbb\x1ecccc", 10), 9);
    assert_eq!(batch_len(b"aaaa\x1ebbbb\x1ecccc", 9), 9);
    assert_eq!(batch_len(b"aaaa\x1ebbbb\x1ecccc", 3), 4, "an oversized record goes alone");
    assert_eq!(batch_len(b"aaaaaaaa", 3), 8);
}

#[test]
fn connections_the_server_closes_are_replaced_when_needed() {
    let mut h = ready_polling(1);
    h.actions.clear();
    // The long-poll answer says `Connection: close`: the next GET goes over a new socket.
    let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n6";
    h.feed(Stream::Primary, closing.as_bytes(), usize::MAX).unwrap();
    assert_eq!(h.actions, [StreamAction::Drop(Stream::Primary), StreamAction::Connect(Stream::Primary)]);
    assert_eq!(h.sent(Stream::Primary), get(Some(SID)));
    // The idle POST socket is closed by the server (a keep-alive timeout): nothing fails, and the
    // next send opens another.
    h.actions.clear();
    h.eof(Stream::Secondary).unwrap();
    assert!(h.actions.is_empty());
    h.emit("1");
    assert_eq!(h.actions, [StreamAction::Connect(Stream::Secondary)]);
    assert_eq!(h.sent(Stream::Secondary), post("42/admin,[\"publish\",1]"));
    // But a socket lost while its request waits is a failure.
    let failure = h.eof(Stream::Primary).unwrap_err();
    assert_eq!(
        failure,
        Failure::Closed("the server closed the connection of a pending long-poll GET".into())
    );
}

#[test]
fn refused_handshakes_and_server_closes_say_why() {
    let mut h = Harness::new(Transport::Polling);
    let refused = answer("400 Bad Request", r#"{"code":5,"message":"Unsupported protocol version"}"#);
    let failure = h.feed(Stream::Primary, &refused, 1).unwrap_err();
    assert_eq!(
        failure,
        Failure::Refused(
            r#"polling handshake answered HTTP 400 Bad Request: {"code":5,"message":"Unsupported protocol version"}"#
                .into()
        )
    );

    let mut h = Harness::new(Transport::Polling);
    let failure = h.feed(Stream::Primary, &ok("4hello"), usize::MAX).unwrap_err();
    assert!(matches!(failure, Failure::Protocol(ref m) if m.contains("open packet")), "{failure:?}");

    let mut h = ready_polling(usize::MAX);
    let failure = h.feed(Stream::Primary, &ok("1"), usize::MAX).unwrap_err();
    assert_eq!(failure, Failure::Closed("Engine.IO close packet".into()));

    let mut h = ready_polling(usize::MAX);
    let gone = answer("400 Bad Request", r#"{"code":1,"message":"Session ID unknown"}"#);
    let failure = h.feed(Stream::Primary, &gone, usize::MAX).unwrap_err();
    assert!(matches!(failure, Failure::Closed(ref m) if m.contains("Session ID unknown")), "{failure:?}");
}

#[test]
fn a_polling_close_posts_disconnect_and_close_and_ends_on_the_answer() {
    let mut h = ready_polling(usize::MAX);
    let (mut cx, s) = h.cx();
    s.close(&mut cx);
    h.sync();
    assert_eq!(h.s.phase(), Phase::Closing);
    assert_eq!(h.sent(Stream::Secondary), post("41/admin,\x1e1"));
    h.feed(Stream::Primary, &ok("6"), usize::MAX).unwrap();
    assert_eq!(h.sent(Stream::Primary), "", "no long-poll after the close");
    assert!(h.events.is_empty());
    h.feed(Stream::Secondary, &ok("ok"), usize::MAX).unwrap();
    assert_eq!(h.events, ["Closed"]);
}

/// Runs a polling-upgrade session to `Ready`; `noop_first`: the GET comes back before `3probe`.
fn upgrade(noop_first: bool, chunk: usize) -> Harness {
    let mut h = Harness::new(Transport::PollingUpgrade);
    assert_eq!(h.sent(Stream::Primary), get(None));
    h.feed(Stream::Primary, &ok(OPEN), chunk).unwrap();
    assert_eq!(h.s.phase(), Phase::Probing);
    assert_eq!(h.sent(Stream::Primary), get(Some(SID)), "polling goes on while probing");
    let request = h.sent(Stream::Secondary);
    assert!(request.starts_with(&format!("GET /socket.io/?EIO=4&transport=websocket&sid={SID} HTTP/1.1\r\n")));
    let accept = String::from_utf8(WebSocketKey::from_bits(9).expected_accept().to_vec()).unwrap();
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    h.feed(Stream::Secondary, switching.as_bytes(), chunk).unwrap();
    let probe = h.out_text(Stream::Secondary);
    assert_eq!(probe, ["2probe"]);
    let mut three = BytesMut::new();
    encode_text("3probe", &mut three);
    if noop_first {
        h.feed(Stream::Primary, &ok("6"), chunk).unwrap();
        assert_eq!(h.sent(Stream::Primary), get(Some(SID)), "still probing: poll again");
        h.feed(Stream::Secondary, &three, chunk).unwrap();
        assert!(h.out_text(Stream::Secondary).is_empty(), "paused: waiting for the outstanding GET");
        h.feed(Stream::Primary, &ok("2\x1e6"), chunk).unwrap();
    } else {
        h.feed(Stream::Secondary, &three, chunk).unwrap();
        h.feed(Stream::Primary, &ok("2\x1e6"), chunk).unwrap();
    }
    assert_eq!(h.s.phase(), Phase::AwaitConnect);
    let tail = &h.actions[h.actions.len() - 2..];
    assert_eq!(tail, [StreamAction::Drop(Stream::Primary), StreamAction::Promote]);
    // Upgrade `5`, the pong owed from the last poll, and CONNECT: all on the WebSocket, now Primary.
    assert_eq!(h.out_text(Stream::Primary), ["5", "3", "40/admin,"]);
    assert!(h.s.out_mut(Stream::Secondary).is_none());
    let mut connected = BytesMut::new();
    encode_text(r#"40/admin,{"sid":"s1"}"#, &mut connected);
    encode_text(r#"42/admin,["m","a"]"#, &mut connected);
    h.feed(Stream::Primary, &connected, chunk).unwrap();
    assert_eq!(h.events, ["Connected", r#"2/admin,["m","a"]"#]);
    h
}

impl Harness {
    fn out_text(&mut self, stream: Stream) -> Vec<String> {
        let out = self.s.out_mut(stream).map(|o| o.split().to_vec()).unwrap_or_default();
        ws_texts(&out)
    }
}

#[test]
fn polling_upgrade_probes_pauses_and_moves_to_the_websocket_in_either_order() {
    for chunk in [usize::MAX, 1] {
        upgrade(true, chunk);
        upgrade(false, chunk);
    }
}

#[test]
fn polling_upgrade_fails_cleanly_without_an_upgrade_or_with_a_bad_probe() {
    let mut h = Harness::new(Transport::PollingUpgrade);
    let open =
        r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let failure = h.feed(Stream::Primary, &ok(open), usize::MAX).unwrap_err();
    assert!(matches!(failure, Failure::Refused(ref m) if m.contains("no WebSocket upgrade")), "{failure:?}");

    let mut h = Harness::new(Transport::PollingUpgrade);
    h.feed(Stream::Primary, &ok(OPEN), usize::MAX).unwrap();
    let refused =
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 18\r\n\r\nSession ID unknown";
    let failure = h.feed(Stream::Secondary, refused, usize::MAX).unwrap_err();
    assert!(matches!(failure, Failure::Refused(ref m) if m.contains("HTTP 400")), "{failure:?}");
}

proptest::proptest! {
    /// Whatever a long-poll answer carries, the session neither panics nor depends on how the bytes
    /// were split.
    #[test]
    fn any_long_poll_answer_gives_the_same_events_and_failure_in_any_chunking(
        body in proptest::collection::vec(proptest::prop_oneof![
            proptest::num::u8::ANY,
            proptest::strategy::Just(0x1e),
            proptest::strategy::Just(b'4'),
            proptest::strategy::Just(b'2'),
        ], 0..120),
        chunk in 1usize..20,
    ) {
        let mut input = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(&body);
        let run = |chunk: usize| {
            let mut h = ready_polling(usize::MAX);
            let result = h.feed(Stream::Primary, &input, chunk);
            let sent = (h.sent(Stream::Primary), h.sent(Stream::Secondary));
            (h.events, result, sent)
        };
        proptest::prop_assert_eq!(run(chunk), run(input.len()));
    }
}
