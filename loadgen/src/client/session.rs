//! One client connection's protocol state, sans I/O: the upgrade answer, WebSocket frames, Engine.IO
//! open/ping/close and Socket.IO connect/event/ack/disconnect. The pool feeds it the bytes it reads and
//! writes out what it queues.
//!
//! Phases: `Upgrading` (request sent, reading the 101) → `AwaitOpen` (Engine.IO `0{…}`; then we send
//! CONNECT `40`) → `AwaitConnect` (`40{"sid":…}`, or `44{…}` = refused) → `Ready` → `Closing` (we sent
//! a close frame) or done. A ping `2` is answered with `3` in every phase after the open packet.
//!
//! Memory: the frame decoder (~112 bytes), the output buffer (sized by the largest message queued),
//! and during the upgrade only, the response head (≤ 8 KiB).

use roomcast_engine::eio::BytesMut;
use roomcast_engine::sio::{self, PacketType};
use roomcast_engine::ws::{encode_client_frame, FrameDecoder, Opcode, WsEvent};

use super::upgrade::{ResponseHeadReader, UpgradeRefusal, WebSocketKey};
use super::Failure;

/// Largest message accepted from the server (the reference's `maxHttpBufferSize` default).
pub const MAX_MESSAGE_SIZE: usize = 1_000_000;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent; reading the response head.
    Upgrading,
    /// WebSocket open; waiting for the Engine.IO open packet.
    AwaitOpen,
    /// Socket.IO CONNECT sent; waiting for the answer.
    AwaitConnect,
    /// Connected to the namespace: events flow.
    Ready,
    /// We sent DISCONNECT and a close frame; waiting for the server to close.
    Closing,
}

/// What the session tells its owner while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent<'a> {
    /// The namespace accepted us.
    Connected,
    /// A Socket.IO EVENT packet (its text, e.g. `2["m","rc1…"]`): not parsed beyond its type.
    Event(&'a [u8]),
    /// An ACK for our request `id`; `error` is true when its first argument is `{"error":…}`.
    Ack { id: u64, error: bool },
    /// The close we started has completed.
    Closed,
}

/// Per-connection protocol state. See the module docs.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    decoder: FrameDecoder,
    head: Option<Box<ResponseHeadReader>>,
    /// Bytes queued for the socket, written by the pool.
    pub out: BytesMut,
    next_ack: u64,
}

/// What a session needs from its pool while reading: the namespace, the connection's key and a source
/// of masking keys.
#[derive(Debug)]
pub struct Context<'a> {
    /// Namespace to CONNECT to.
    pub namespace: &'a str,
    /// The key sent in the upgrade request.
    pub key: WebSocketKey,
    /// Masking-key generator state (xorshift64*).
    pub mask_state: &'a mut u64,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A session whose TCP connect is in progress.
    pub fn new() -> Session {
        Session {
            phase: Phase::Connecting,
            decoder: FrameDecoder::new_client(MAX_MESSAGE_SIZE),
            head: None,
            out: BytesMut::new(),
            next_ack: 0,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The TCP connection is up: queue `request` (the upgrade) and start reading the answer.
    pub fn handle_tcp_connected(&mut self, request: &[u8]) {
        self.out.extend_from_slice(request);
        self.head = Some(Box::default());
        self.phase = Phase::Upgrading;
    }

    /// Feeds bytes read from the socket; `on_event` sees what they completed. Decodes in place.
    /// Errors end the connection and say why.
    pub fn handle_bytes(
        &mut self,
        mut input: &mut [u8],
        cx: &mut Context<'_>,
        mut on_event: impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        if let Some(head) = self.head.as_mut() {
            let Some(used) = head.handle_bytes(input, &cx.key).map_err(|r| refusal(r, input))? else {
                return Ok(());
            };
            self.head = None;
            self.phase = Phase::AwaitOpen;
            input = input.get_mut(used..).unwrap_or_default();
        }
        let Session { phase, decoder, out, .. } = self;
        let mut failure = None;
        let result =
            decoder.handle_bytes(input, |event| match on_frame(phase, out, event, cx, &mut on_event) {
                Ok(()) => Ok(()),
                Err(f) => {
                    failure = Some(f);
                    Err(roomcast_engine::Error::Misuse("stop"))
                }
            });
        match (failure, result) {
            (Some(f), _) => Err(f),
            (None, Err(e)) => Err(Failure::Protocol(format!("WebSocket: {e}"))),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Queues an EVENT `name` with raw JSON `args`, asking for an ack when `want_ack`; returns the ack
    /// id used. Valid in `Ready` only (the caller checks). Cost: two copies of the packet (encode and
    /// mask).
    pub fn emit(
        &mut self,
        namespace: &str,
        name: &str,
        args: &[&[u8]],
        want_ack: bool,
        mask_state: &mut u64,
    ) -> Option<u64> {
        let id = want_ack.then(|| {
            let id = self.next_ack;
            self.next_ack += 1;
            id
        });
        let mut text = BytesMut::with_capacity(1 + sio::event_len(namespace, id, name, args));
        text.extend_from_slice(b"4");
        sio::encode_event(namespace, id, name, args, &mut text);
        send_text(&mut self.out, &text, mask_state);
        id
    }

    /// Starts a clean close: Socket.IO DISCONNECT, then a WebSocket close frame (1000).
    pub fn close(&mut self, namespace: &str, mask_state: &mut u64) {
        let mut text = BytesMut::from(&b"4"[..]);
        sio::encode_disconnect(namespace, &mut text);
        send_text(&mut self.out, &text, mask_state);
        let _ =
            encode_client_frame(Opcode::Close, &1000u16.to_be_bytes(), next_mask(mask_state), &mut self.out);
        self.phase = Phase::Closing;
    }
}

fn refusal(r: UpgradeRefusal, input: &[u8]) -> Failure {
    match r {
        UpgradeRefusal::Status { .. } => {
            // Show the start of the body (engine.io explains its 400s there), if it came with the head.
            let text = String::from_utf8_lossy(input);
            let body = text.split_once("\r\n\r\n").map(|(_, b)| b.trim()).unwrap_or("");
            let body: String = body.chars().take(120).filter(|c| !c.is_control()).collect();
            if body.is_empty() {
                Failure::Refused(format!("WebSocket handshake answered {r}"))
            } else {
                Failure::Refused(format!("WebSocket handshake answered {r}: {body}"))
            }
        }
        UpgradeRefusal::Malformed(_) => Failure::Protocol(r.to_string()),
    }
}

/// xorshift64* step: a cheap, never-zero masking key. Masking keys only have to be unpredictable to
/// intermediaries, and a load generator talks to its own server.
fn next_mask(state: &mut u64) -> [u8; 4] {
    let mut x = (*state).max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    [(word >> 32) as u8, (word >> 40) as u8, (word >> 48) as u8, (word >> 56) as u8]
}

fn send_text(out: &mut BytesMut, text: &[u8], mask_state: &mut u64) {
    // A text frame has no size limit: the call cannot fail.
    let _ = encode_client_frame(Opcode::Text, text, next_mask(mask_state), out);
}

fn on_frame(
    phase: &mut Phase,
    out: &mut BytesMut,
    event: WsEvent<'_>,
    cx: &mut Context<'_>,
    on_event: &mut impl FnMut(SessionEvent<'_>),
) -> Result<(), Failure> {
    let text = match event {
        WsEvent::Text(text) => text.as_bytes(),
        WsEvent::Binary(_) | WsEvent::Pong(_) => return Ok(()),
        WsEvent::Ping(payload) => {
            let _ = encode_client_frame(Opcode::Pong, payload, next_mask(cx.mask_state), out);
            return Ok(());
        }
        WsEvent::Close { code, reason } => {
            if *phase == Phase::Closing {
                on_event(SessionEvent::Closed);
                return Ok(());
            }
            let code = code.map_or_else(|| "no code".to_string(), |c| c.to_string());
            return Err(Failure::Closed(
                format!("WebSocket close frame ({code}) {reason}").trim_end().to_string(),
            ));
        }
    };
    let (&kind, rest) = text.split_first().ok_or(Failure::Protocol("empty Engine.IO packet".into()))?;
    match (kind, *phase) {
        (b'0', Phase::AwaitOpen) => {
            let mut connect = BytesMut::from(&b"4"[..]);
            connect.extend_from_slice(b"0");
            if cx.namespace != "/" {
                connect.extend_from_slice(cx.namespace.as_bytes());
                connect.extend_from_slice(b",");
            }
            send_text(out, &connect, cx.mask_state);
            *phase = Phase::AwaitConnect;
        }
        (_, Phase::AwaitOpen) => {
            return Err(Failure::Protocol("first WebSocket message is not the Engine.IO open packet".into()));
        }
        (b'2', _) => send_text(out, b"3", cx.mask_state),
        (b'4', _) => on_socketio(phase, rest, cx, on_event)?,
        (b'1', Phase::Closing) => on_event(SessionEvent::Closed),
        (b'1', _) => return Err(Failure::Closed("Engine.IO close packet".into())),
        (b'3' | b'6', _) => {}
        _ => {
            return Err(Failure::Protocol(format!("unexpected Engine.IO packet type {:?}", char::from(kind))))
        }
    }
    Ok(())
}

fn on_socketio(
    phase: &mut Phase,
    text: &[u8],
    cx: &Context<'_>,
    on_event: &mut impl FnMut(SessionEvent<'_>),
) -> Result<(), Failure> {
    // Hot path: a delivered event goes out with its type checked only; the token reader validates it.
    if text.first() == Some(&b'2') && *phase == Phase::Ready {
        on_event(SessionEvent::Event(text));
        return Ok(());
    }
    let packet = sio::decode(text, &sio::Limits::default())
        .map_err(|e| Failure::Protocol(format!("Socket.IO packet: {e}")))?;
    if packet.nsp() != cx.namespace {
        return Ok(());
    }
    match (packet.kind(), *phase) {
        (PacketType::Connect, Phase::AwaitConnect) => {
            *phase = Phase::Ready;
            on_event(SessionEvent::Connected);
        }
        (PacketType::ConnectError, _) => {
            let why = String::from_utf8_lossy(packet.payload().unwrap_or_default()).into_owned();
            return Err(Failure::Refused(format!(
                "Socket.IO CONNECT_ERROR for namespace {}: {why}",
                cx.namespace
            )));
        }
        (PacketType::Ack, Phase::Ready | Phase::Closing) => {
            let Some(id) = packet.ack_id() else { return Ok(()) };
            let error = packet.args().next().is_some_and(|a| a.starts_with(b"{\"error\""));
            on_event(SessionEvent::Ack { id, error });
        }
        (PacketType::Disconnect, Phase::Closing) => on_event(SessionEvent::Closed),
        (PacketType::Disconnect, _) => {
            return Err(Failure::Closed(format!("Socket.IO DISCONNECT from namespace {}", cx.namespace)));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_engine::ws::encode_text;

    fn key() -> WebSocketKey {
        WebSocketKey::from_bits(42)
    }

    fn upgraded() -> (Session, Vec<u8>) {
        let mut s = Session::new();
        s.handle_tcp_connected(b"GET ...");
        let accept = String::from_utf8(key().expected_accept().to_vec()).unwrap();
        let head = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        (s, head.into_bytes())
    }

    fn frames(texts: &[&str]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for t in texts {
            encode_text(t, &mut out);
        }
        out.to_vec()
    }

    /// Runs `input` through a fresh upgraded session whole and byte by byte; returns the events (as
    /// text), the failure and the session.
    fn feed(input: &[u8], chunk: usize) -> (Vec<String>, Option<Failure>, Session) {
        let (mut s, _) = upgraded();
        let mut mask = 7;
        let mut seen = Vec::new();
        let mut failure = None;
        for piece in input.chunks(chunk) {
            let mut cx = Context { namespace: "/", key: key(), mask_state: &mut mask };
            let mut piece = piece.to_vec();
            if let Err(f) = s.handle_bytes(&mut piece, &mut cx, |e| {
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
        let (_, mut input) = upgraded();
        input.extend(frames(&[
            r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            "2",
            r#"40{"sid":"abc"}"#,
            r#"42["m","rc1.1.2.3.x"]"#,
            r#"430["ok"]"#,
            r#"431[{"error":"room not allowed"}]"#,
        ]));
        for chunk in [input.len(), 1, 7] {
            let (seen, failure, s) = feed(&input, chunk);
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
            // Sent: the request, CONNECT `40` and the pong `3`, each a masked text frame.
            let sent = s.out.to_vec();
            assert!(sent.starts_with(b"GET "));
            let mut server_side = FrameDecoder::new(1 << 20);
            let mut texts = Vec::new();
            server_side
                .handle_bytes(&mut sent[7..].to_vec(), |e| {
                    if let WsEvent::Text(t) = e {
                        texts.push(t.to_string());
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(texts, ["40", "3"]);
        }
    }

    #[test]
    fn refusals_and_server_closes_are_failures_that_say_why() {
        let (mut s, _) = upgraded();
        let mut mask = 1;
        let mut cx = Context { namespace: "/", key: key(), mask_state: &mut mask };
        let mut refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 40\r\n\r\n{\"code\":0,\"message\":\"Transport unknown\"}".to_vec();
        let f = s.handle_bytes(&mut refused, &mut cx, |_| {}).unwrap_err();
        assert_eq!(
            f.to_string(),
            r#"WebSocket handshake answered HTTP 400 Bad Request: {"code":0,"message":"Transport unknown"}"#
        );

        let (_, mut input) = upgraded();
        input.extend(frames(&["0{}", r#"44{"message":"Invalid namespace"}"#]));
        let (_, failure, _) = feed(&input, 3);
        assert!(
            matches!(failure, Some(Failure::Refused(ref m)) if m.contains("Invalid namespace")),
            "{failure:?}"
        );

        let (_, mut input) = upgraded();
        input.extend(frames(&["0{}", r#"40{"sid":"a"}"#, "41"]));
        let (_, failure, _) = feed(&input, 1);
        assert!(matches!(failure, Some(Failure::Closed(_))), "{failure:?}");

        let (_, mut input) = upgraded();
        input.extend(frames(&["hello"]));
        let (_, failure, _) = feed(&input, 1);
        assert!(matches!(failure, Some(Failure::Protocol(_))), "{failure:?}");
    }
}
