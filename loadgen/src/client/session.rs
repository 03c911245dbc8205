//! One client connection's protocol state, sans I/O: the transport (a WebSocket, or HTTP long-polling
//! with or without the upgrade to a WebSocket), Engine.IO open/ping/close and Socket.IO
//! connect/event/ack/disconnect. The pool owns the sockets: it feeds the session the bytes each one
//! reads, writes out what the session queues for it, and opens, closes and renumbers sockets when the
//! session asks ([`Session::poll_action`]).
//!
//! A session uses up to two TCP connections, its [`Stream`]s:
//!
//! | transport | `Primary` | `Secondary` |
//! |---|---|---|
//! | `websocket` | the WebSocket | — |
//! | `polling` | the handshake and long-poll GETs | the POSTs |
//! | `polling-upgrade` | the handshake and long-poll GETs, until the upgrade | the probed WebSocket, renumbered `Primary` once it carries the session |
//!
//! Phases: `Connecting` (TCP) → `Upgrading` (WebSocket: request sent, reading the 101) → `AwaitOpen`
//! (the Engine.IO open packet, over the WebSocket or as the polling handshake's answer) → `Probing`
//! (`polling-upgrade`: the WebSocket with the session's sid, `2probe`/`3probe`, then `5`) →
//! `AwaitConnect` (we sent CONNECT `40`; `40{"sid":…}` accepts, `44{…}` refuses) → `Ready` → `Closing`
//! (we sent DISCONNECT and closed) or done. A ping `2` is answered with `3` in every phase after the
//! open packet.
//!
//! Memory at rest: the frame decoder (~112 bytes) and the output buffer (sized by the largest message
//! queued); during the upgrade only, the response head (≤ 8 KiB). A polling session adds its boxed
//! polling state (~410 bytes) and the buffers of its two HTTP connections (response head and body,
//! queued requests; a body buffer over 64 KiB is freed after its answer).

use roomcast_engine::eio::BytesMut;
use roomcast_engine::sio;
use roomcast_engine::ws::{encode_client_frame, FrameDecoder, Opcode};

use super::packets::{next_mask, on_frame, send_connect, send_text, Tx};
use super::polling::Polling;
use super::upgrade::{write_upgrade_request, ResponseHeadReader, UpgradeRefusal, WebSocketKey};
use super::{Failure, Target, Transport};

/// Largest message accepted from the server (the reference's `maxHttpBufferSize` default).
pub const MAX_MESSAGE_SIZE: usize = 1_000_000;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// WebSocket upgrade request sent; reading the response head.
    Upgrading,
    /// Waiting for the Engine.IO open packet.
    AwaitOpen,
    /// `polling-upgrade`: the session is open over polling; its WebSocket is being probed.
    Probing,
    /// Socket.IO CONNECT sent; waiting for the answer.
    AwaitConnect,
    /// Connected to the namespace: events flow.
    Ready,
    /// We sent DISCONNECT and a close (frame or packet); waiting for the server.
    Closing,
}

/// One of a session's (at most two) TCP connections; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The WebSocket, or the long-poll GETs.
    Primary,
    /// The POSTs, or the WebSocket being probed.
    Secondary,
}

impl Stream {
    /// Both, in index order.
    pub const ALL: [Stream; 2] = [Stream::Primary, Stream::Secondary];

    /// 0 or 1.
    pub fn index(self) -> usize {
        match self {
            Stream::Primary => 0,
            Stream::Secondary => 1,
        }
    }
}

/// What the session needs done to its sockets, in the order [`Session::poll_action`] gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAction {
    /// Close this stream's socket (the session already counts it as gone).
    Drop(Stream),
    /// The `Secondary` socket becomes `Primary` (the upgraded WebSocket; `Primary` was dropped).
    Promote,
    /// Open a new TCP connection for this stream; report it with [`Session::handle_connected`].
    Connect(Stream),
}

/// Pending [`StreamAction`]s, a bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Actions(u8);

impl Actions {
    const ORDER: [StreamAction; 5] = [
        StreamAction::Drop(Stream::Primary),
        StreamAction::Drop(Stream::Secondary),
        StreamAction::Promote,
        StreamAction::Connect(Stream::Primary),
        StreamAction::Connect(Stream::Secondary),
    ];

    fn bit(action: StreamAction) -> u8 {
        let at = Self::ORDER.iter().position(|a| *a == action).unwrap_or(0);
        1 << at
    }

    pub(super) fn push(&mut self, action: StreamAction) {
        self.0 |= Self::bit(action);
    }

    fn pop(&mut self) -> Option<StreamAction> {
        let action = Self::ORDER.iter().copied().find(|a| self.0 & Self::bit(*a) != 0)?;
        self.0 &= !Self::bit(action);
        Some(action)
    }
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

/// What a session needs from its pool while it runs: the server, the connection's WebSocket key and a
/// source of masking keys.
#[derive(Debug)]
pub struct Context<'a> {
    /// The server (Engine.IO path, `Host`, namespace).
    pub target: &'a Target,
    /// The key sent in WebSocket upgrade requests.
    pub key: WebSocketKey,
    /// Masking-key generator state (xorshift64*).
    pub mask_state: &'a mut u64,
}

/// Per-connection protocol state. See the module docs.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    /// The WebSocket on `Primary` (unused while polling).
    decoder: FrameDecoder,
    head: Option<Box<ResponseHeadReader>>,
    /// Bytes queued for `Primary`.
    out: BytesMut,
    next_ack: u64,
    polling: Option<Box<Polling>>,
    actions: Actions,
}

impl Session {
    /// A session over `transport` whose first TCP connect is about to start (its first action is
    /// `Connect(Primary)`).
    pub fn new(transport: Transport) -> Session {
        let mut actions = Actions::default();
        actions.push(StreamAction::Connect(Stream::Primary));
        let polling = match transport {
            Transport::WebSocket => None,
            Transport::Polling => Some(Box::new(Polling::new(false))),
            Transport::PollingUpgrade => Some(Box::new(Polling::new(true))),
        };
        Session {
            phase: Phase::Connecting,
            decoder: FrameDecoder::new_client(MAX_MESSAGE_SIZE),
            head: None,
            out: BytesMut::new(),
            next_ack: 0,
            polling,
            actions,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The next thing to do to the sockets, if any: drops first, then a promotion, then connects.
    pub fn poll_action(&mut self) -> Option<StreamAction> {
        self.actions.pop()
    }

    /// Bytes queued for `stream`, to write when its socket takes them (drain what was written).
    pub fn out_mut(&mut self, stream: Stream) -> Option<&mut BytesMut> {
        match stream {
            Stream::Primary => Some(&mut self.out),
            Stream::Secondary => self.polling.as_mut().map(|p| p.secondary_out()),
        }
    }

    /// Whether any stream has bytes queued.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.polling.as_ref().is_some_and(|p| p.has_output())
    }

    /// `stream`'s TCP connect (asked for with [`StreamAction::Connect`]) completed: queue what goes
    /// first on it (the upgrade request, a handshake GET, …).
    pub fn handle_connected(&mut self, stream: Stream, cx: &mut Context<'_>) {
        let Session { phase, out, polling, actions, head, .. } = self;
        match polling {
            Some(p) => p.handle_connected(stream, &mut Core { phase, out, actions }, cx),
            None if stream == Stream::Primary && *phase == Phase::Connecting => {
                write_upgrade_request(cx.target, &cx.key, None, out);
                *head = Some(Box::default());
                *phase = Phase::Upgrading;
            }
            None => {}
        }
    }

    /// Feeds bytes read from `stream`; `on_event` sees what they completed. Decodes WebSocket frames
    /// in place. Errors end the connection and say why.
    pub fn handle_bytes(
        &mut self,
        stream: Stream,
        input: &mut [u8],
        cx: &mut Context<'_>,
        mut on_event: impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        let Session { phase, out, polling, actions, .. } = self;
        match polling {
            Some(p) => {
                p.handle_bytes(stream, input, &mut Core { phase, out, actions }, cx, &mut on_event)?;
                self.maybe_switch(cx)
            }
            None if stream == Stream::Primary => self.websocket_bytes(input, cx, &mut on_event),
            None => Ok(()),
        }
    }

    /// The server closed `stream` (the pool has dropped its socket). Fine for an idle HTTP
    /// connection or a close we started; otherwise a failure saying what was cut off.
    pub fn handle_eof(
        &mut self,
        stream: Stream,
        cx: &mut Context<'_>,
        mut on_event: impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        let Session { phase, out, polling, actions, .. } = self;
        match polling {
            Some(p) => {
                p.handle_eof(stream, &mut Core { phase, out, actions }, cx, &mut on_event)?;
                self.maybe_switch(cx)
            }
            None if stream == Stream::Secondary => Ok(()),
            None if *phase == Phase::Closing => {
                on_event(SessionEvent::Closed);
                Ok(())
            }
            None => Err(Failure::Closed("the server closed the TCP connection".into())),
        }
    }

    /// Queues an EVENT `name` with raw JSON `args`, asking for an ack when `want_ack`; returns the ack
    /// id used. Valid in `Ready` only (the caller checks). Cost: two copies of the packet over a
    /// WebSocket (encode and mask), one over polling (into the next POST).
    pub fn emit(&mut self, cx: &mut Context<'_>, name: &str, args: &[&[u8]], want_ack: bool) -> Option<u64> {
        let id = want_ack.then(|| {
            let id = self.next_ack;
            self.next_ack += 1;
            id
        });
        let namespace = cx.target.namespace.as_str();
        match self.polling.as_mut() {
            Some(p) => {
                p.queue_with(|pending| {
                    pending.extend_from_slice(b"4");
                    sio::encode_event(namespace, id, name, args, pending);
                });
                p.flush_sends(&mut self.actions, cx);
            }
            None => {
                let mut text = BytesMut::with_capacity(1 + sio::event_len(namespace, id, name, args));
                text.extend_from_slice(b"4");
                sio::encode_event(namespace, id, name, args, &mut text);
                send_text(&mut self.out, &text, cx.mask_state);
            }
        }
        id
    }

    /// Starts a clean close: Socket.IO DISCONNECT, then a WebSocket close frame (1000), or over
    /// polling the Engine.IO close packet `1` in the same POST.
    pub fn close(&mut self, cx: &mut Context<'_>) {
        let mut text = BytesMut::from(&b"4"[..]);
        sio::encode_disconnect(&cx.target.namespace, &mut text);
        match self.polling.as_mut() {
            Some(p) => {
                p.queue_with(|pending| pending.extend_from_slice(&text));
                p.queue_close();
                p.flush_sends(&mut self.actions, cx);
            }
            None => {
                send_text(&mut self.out, &text, cx.mask_state);
                let close = 1000u16.to_be_bytes();
                let _ = encode_client_frame(Opcode::Close, &close, next_mask(cx.mask_state), &mut self.out);
            }
        }
        self.phase = Phase::Closing;
    }

    fn websocket_bytes(
        &mut self,
        mut input: &mut [u8],
        cx: &mut Context<'_>,
        on_event: &mut impl FnMut(SessionEvent<'_>),
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
        let namespace = cx.target.namespace.as_str();
        let mask_state = &mut *cx.mask_state;
        let mut failure = None;
        let result = decoder.handle_bytes(input, |event| {
            let mut tx = Tx::WebSocket { out: &mut *out, mask_state: &mut *mask_state };
            match on_frame(phase, &mut tx, event, namespace, on_event) {
                Ok(()) => Ok(()),
                Err(f) => {
                    failure = Some(f);
                    Err(roomcast_engine::Error::Misuse("stop"))
                }
            }
        });
        match (failure, result) {
            (Some(f), _) => Err(f),
            (None, Err(e)) => Err(Failure::Protocol(format!("WebSocket: {e}"))),
            (None, Ok(())) => Ok(()),
        }
    }

    /// `polling-upgrade`: once the probe is done and the polling cycle paused, the probed WebSocket
    /// takes over: `5` was queued on it, and now its decoder and bytes become `Primary`'s, the packets
    /// queued meanwhile go out as frames, and CONNECT follows.
    fn maybe_switch(&mut self, cx: &mut Context<'_>) -> Result<(), Failure> {
        let Some(switch) = self.polling.as_mut().and_then(|p| p.take_switch()) else { return Ok(()) };
        self.polling = None;
        self.decoder = switch.decoder;
        self.out = switch.out;
        for record in switch.pending[..].split(|b| *b == roomcast_engine::eio::RECORD_SEPARATOR) {
            if !record.is_empty() {
                send_text(&mut self.out, record, cx.mask_state);
            }
        }
        self.actions.push(StreamAction::Drop(Stream::Primary));
        self.actions.push(StreamAction::Promote);
        if self.phase == Phase::Probing {
            let mut tx = Tx::WebSocket { out: &mut self.out, mask_state: &mut *cx.mask_state };
            send_connect(&mut tx, &cx.target.namespace);
            self.phase = Phase::AwaitConnect;
        }
        Ok(())
    }
}

/// The parts of a [`Session`] its polling transport works on: the phase, `Primary`'s bytes and the
/// socket actions.
#[derive(Debug)]
pub(super) struct Core<'a> {
    /// The session's phase.
    pub(super) phase: &'a mut Phase,
    /// Bytes queued for `Primary`.
    pub(super) out: &'a mut BytesMut,
    /// Socket actions for the pool.
    pub(super) actions: &'a mut Actions,
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

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
