//! The Engine.IO HTTP long-polling transport of one session, sans I/O, and (`polling-upgrade`) its
//! upgrade to a WebSocket the way socket.io-client does it (protocol notes §1.5, §1.7, §7).
//!
//! - `Primary` carries the handshake GET, then one long-poll GET at a time, always one outstanding:
//!   each answer (a payload of `\x1e`-joined packets) is followed at once by the next GET.
//! - `polling`: `Secondary` carries the POSTs, one at a time. Packets to send wait as records in
//!   `pending`; each POST takes as many whole records as fit in the server's `maxPayload` (a bigger
//!   single record goes alone, as socket.io-client sends it), and the next POST leaves when the
//!   previous one is answered.
//! - `polling-upgrade`: right after the open packet, `Secondary` becomes a WebSocket with the
//!   session's `sid`; it sends `2probe`, and once `3probe` is back and the outstanding GET has
//!   returned (the server answers it with a noop `6`), `5`. The session then moves to that WebSocket
//!   ([`Polling::take_switch`]); nothing is POSTed before (packets owed meanwhile, pongs, go over the
//!   WebSocket after `5`).
//!
//! Both HTTP connections are kept alive. A response with `Connection: close`, or a server closing an
//! idle connection (Node closes idle keep-alive connections after 5 s), only means the next request
//! on that stream goes over a new TCP connection; a connection lost while its request waits for an
//! answer fails the session.
//!
//! Binary messages arrive as `b<base64>` records; no scenario sends or needs any, so they are checked
//! (by the engine's payload decoder) and skipped.

use std::fmt::Write as _;

use roomcast_engine::eio::{BytesMut, PacketData, PacketType, PayloadDecoder, RECORD_SEPARATOR};
use roomcast_engine::ws::{encode_client_frame, FrameDecoder, Opcode, WsEvent};
use serde::Deserialize;

use super::http_response::{Progress, Response, ResponseReader};
use super::packets::{next_mask, on_packet, send_connect, send_text, Tx};
use super::session::{Core, Phase, SessionEvent, Stream, StreamAction, MAX_MESSAGE_SIZE};
use super::upgrade::{write_upgrade_request, ResponseHeadReader, UpgradeRefusal};
use super::{Context, Failure, Target};

/// Largest long-poll answer accepted: the server flushes everything it queued for the session in
/// one answer; four times Roomcast's default per-socket outbound limit (4 MiB).
pub const MAX_POLL_RESPONSE: usize = 16 * 1024 * 1024;

/// Largest answer to a POST (`ok`, or an error message).
const MAX_POST_RESPONSE: usize = 64 * 1024;

/// `maxPayload` when the open packet gives none (the reference's default).
const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// Longest session id accepted (Roomcast's are 24 characters, the reference's 20).
const MAX_SID_LEN: usize = 128;

/// State of one stream's TCP connection, as the session sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Absent,
    Connecting,
    Open,
    /// Open, but the server said `Connection: close`: the next request needs a new connection.
    Spent,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    link: Link,
    in_flight: bool,
}

/// Where the upgrade probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Connecting,
    /// Upgrade request sent; reading the 101.
    Switching,
    /// `2probe` sent.
    Probing,
    /// `3probe` received: polling pauses.
    Probed,
}

/// What the session takes over when the upgrade completes.
#[derive(Debug)]
pub(super) struct Switch {
    /// The WebSocket's decoder.
    pub(super) decoder: FrameDecoder,
    /// Bytes queued on the WebSocket (ending with `5`).
    pub(super) out: BytesMut,
    /// Packets owed to the server, `\x1e`-joined.
    pub(super) pending: BytesMut,
}

/// One session's polling transport. See the module docs.
#[derive(Debug)]
pub(super) struct Polling {
    get_reader: ResponseReader,
    post_reader: ResponseReader,
    probe_head: ResponseHeadReader,
    probe_decoder: FrameDecoder,
    cycle: Cycle,
}

/// Everything but the readers, so a response borrowed from a reader can be handled against it.
#[derive(Debug)]
struct Cycle {
    upgrade: bool,
    sid: String,
    max_payload: usize,
    get: Channel,
    post: Channel,
    /// Packets waiting for a POST (or for the WebSocket), `\x1e`-joined.
    pending: BytesMut,
    /// Bytes queued for `Secondary`.
    side_out: BytesMut,
    close_queued: bool,
    close_in_flight: bool,
    probe: Option<Probe>,
    switch_ready: bool,
}

#[derive(Deserialize)]
struct OpenPacket {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    #[serde(rename = "maxPayload")]
    max_payload: Option<u64>,
}

impl Polling {
    /// A transport whose handshake connection is being opened; `upgrade` probes a WebSocket after it.
    pub(super) fn new(upgrade: bool) -> Polling {
        Polling {
            get_reader: ResponseReader::new(MAX_POLL_RESPONSE),
            post_reader: ResponseReader::new(MAX_POST_RESPONSE),
            probe_head: ResponseHeadReader::default(),
            probe_decoder: FrameDecoder::new_client(MAX_MESSAGE_SIZE),
            cycle: Cycle {
                upgrade,
                sid: String::new(),
                max_payload: DEFAULT_MAX_PAYLOAD,
                get: Channel { link: Link::Connecting, in_flight: false },
                post: Channel { link: Link::Absent, in_flight: false },
                pending: BytesMut::new(),
                side_out: BytesMut::new(),
                close_queued: false,
                close_in_flight: false,
                probe: None,
                switch_ready: false,
            },
        }
    }

    /// Bytes queued for `Secondary`.
    pub(super) fn secondary_out(&mut self) -> &mut BytesMut {
        &mut self.cycle.side_out
    }

    /// Whether `Secondary` has bytes queued.
    pub(super) fn has_output(&self) -> bool {
        !self.cycle.side_out.is_empty()
    }

    /// Appends one record to the packets to send (`write` appends the packet text).
    pub(super) fn queue_with(&mut self, write: impl FnOnce(&mut BytesMut)) {
        if !self.cycle.pending.is_empty() {
            self.cycle.pending.extend_from_slice(&[RECORD_SEPARATOR]);
        }
        write(&mut self.cycle.pending);
    }

    /// Queues the Engine.IO close packet `1`: the POST carrying it ends the session.
    pub(super) fn queue_close(&mut self) {
        self.queue_with(|pending| pending.extend_from_slice(b"1"));
        self.cycle.close_queued = true;
    }

    /// Sends the next POST if one may leave now.
    pub(super) fn flush_sends(&mut self, actions: &mut super::session::Actions, cx: &Context<'_>) {
        self.cycle.flush_sends(actions, cx.target);
    }

    /// The upgraded WebSocket's state, once `5` is queued on it; `None` before (and after).
    pub(super) fn take_switch(&mut self) -> Option<Switch> {
        if !std::mem::take(&mut self.cycle.switch_ready) {
            return None;
        }
        Some(Switch {
            decoder: std::mem::replace(&mut self.probe_decoder, FrameDecoder::new_client(0)),
            out: std::mem::take(&mut self.cycle.side_out),
            pending: std::mem::take(&mut self.cycle.pending),
        })
    }

    /// See [`super::Session::handle_connected`].
    pub(super) fn handle_connected(&mut self, stream: Stream, core: &mut Core<'_>, cx: &mut Context<'_>) {
        let c = &mut self.cycle;
        match stream {
            Stream::Primary => {
                self.get_reader = ResponseReader::new(MAX_POLL_RESPONSE);
                c.get.link = Link::Open;
                if *core.phase == Phase::Connecting {
                    write_get(cx.target, None, core.out);
                    c.get.in_flight = true;
                    *core.phase = Phase::AwaitOpen;
                } else {
                    c.poll_again(core, cx);
                }
            }
            Stream::Secondary if c.upgrade => {
                write_upgrade_request(cx.target, &cx.key, Some(&c.sid), &mut c.side_out);
                self.probe_head = ResponseHeadReader::default();
                c.probe = Some(Probe::Switching);
            }
            Stream::Secondary => {
                self.post_reader = ResponseReader::new(MAX_POST_RESPONSE);
                c.post.link = Link::Open;
                c.flush_sends(core.actions, cx.target);
            }
        }
    }

    /// See [`super::Session::handle_bytes`].
    pub(super) fn handle_bytes(
        &mut self,
        stream: Stream,
        input: &mut [u8],
        core: &mut Core<'_>,
        cx: &mut Context<'_>,
        on_event: &mut impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        match stream {
            Stream::Secondary if self.cycle.upgrade => return self.probe_bytes(input, core, cx),
            Stream::Primary | Stream::Secondary => {}
        }
        let mut rest: &[u8] = input;
        while !rest.is_empty() {
            let reader = match stream {
                Stream::Primary => &mut self.get_reader,
                Stream::Secondary => &mut self.post_reader,
            };
            let (response, consumed) = match reader.handle_bytes(rest) {
                Ok(Progress::Incomplete) => break,
                Ok(Progress::Complete { response, consumed }) => (response, consumed),
                Err(e) => return Err(Failure::Protocol(e.to_string())),
            };
            match stream {
                Stream::Primary => self.cycle.on_get_response(core, &response, cx, on_event)?,
                Stream::Secondary => self.cycle.on_post_response(core, &response, cx, on_event)?,
            }
            rest = rest.get(consumed..).unwrap_or_default();
        }
        Ok(())
    }

    /// See [`super::Session::handle_eof`].
    pub(super) fn handle_eof(
        &mut self,
        stream: Stream,
        core: &mut Core<'_>,
        cx: &mut Context<'_>,
        on_event: &mut impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        let closing = *core.phase == Phase::Closing;
        let c = &mut self.cycle;
        let (channel, reader) = match stream {
            Stream::Secondary if c.upgrade && closing => return Ok(()),
            Stream::Secondary if c.upgrade => {
                return Err(Failure::Closed("the server closed the WebSocket of the upgrade probe".into()));
            }
            Stream::Primary => (&mut c.get, &mut self.get_reader),
            Stream::Secondary => (&mut c.post, &mut self.post_reader),
        };
        channel.link = Link::Absent;
        let in_flight = channel.in_flight;
        match reader.handle_eof() {
            Ok(Some(response)) => match stream {
                Stream::Primary => c.on_get_response(core, &response, cx, on_event),
                Stream::Secondary => c.on_post_response(core, &response, cx, on_event),
            },
            Ok(None) if !in_flight => {
                // An idle keep-alive connection the server let go: the next request opens another.
                match stream {
                    Stream::Primary => c.poll_again(core, cx),
                    Stream::Secondary => c.flush_sends(core.actions, cx.target),
                }
                Ok(())
            }
            _ if closing => {
                on_event(SessionEvent::Closed);
                Ok(())
            }
            Ok(None) | Err(_) => Err(Failure::Closed(
                match (stream, *core.phase) {
                    (Stream::Primary, Phase::AwaitOpen) => {
                        "the server closed the connection without answering the polling handshake"
                    }
                    (Stream::Primary, _) => "the server closed the connection of a pending long-poll GET",
                    (Stream::Secondary, _) => "the server closed the connection of a POST in progress",
                }
                .into(),
            )),
        }
    }

    fn probe_bytes(
        &mut self,
        input: &mut [u8],
        core: &mut Core<'_>,
        cx: &mut Context<'_>,
    ) -> Result<(), Failure> {
        let c = &mut self.cycle;
        let mut input = input;
        if c.probe == Some(Probe::Switching) {
            let used = self.probe_head.handle_bytes(input, &cx.key).map_err(|r| match r {
                UpgradeRefusal::Status { .. } => {
                    Failure::Refused(format!("the WebSocket upgrade of the polling session was answered {r}"))
                }
                UpgradeRefusal::Malformed(_) => Failure::Protocol(r.to_string()),
            })?;
            let Some(used) = used else { return Ok(()) };
            c.probe = Some(Probe::Probing);
            send_text(&mut c.side_out, b"2probe", cx.mask_state);
            input = input.get_mut(used..).unwrap_or_default();
        }
        if !matches!(c.probe, Some(Probe::Probing | Probe::Probed)) {
            return Ok(());
        }
        let mask_state = &mut *cx.mask_state;
        let mut failure = None;
        let result =
            self.probe_decoder.handle_bytes(input, |event| match on_probe_frame(c, event, mask_state) {
                Ok(()) => Ok(()),
                Err(f) => {
                    failure = Some(f);
                    Err(roomcast_engine::Error::Misuse("stop"))
                }
            });
        match (failure, result) {
            (Some(f), _) => return Err(f),
            (None, Err(e)) => return Err(Failure::Protocol(format!("WebSocket of the upgrade probe: {e}"))),
            (None, Ok(())) => {}
        }
        c.poll_again(core, cx);
        Ok(())
    }
}

impl Cycle {
    fn on_get_response(
        &mut self,
        core: &mut Core<'_>,
        response: &Response<'_>,
        cx: &mut Context<'_>,
        on_event: &mut impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        if !self.get.in_flight {
            return Err(Failure::Protocol(
                "an HTTP response on the long-poll connection before any request".into(),
            ));
        }
        self.get.in_flight = false;
        if !response.keep_alive && self.get.link == Link::Open {
            self.get.link = Link::Spent;
        }
        if response.status != 200 {
            let what = answered(response);
            return match *core.phase {
                Phase::AwaitOpen => Err(Failure::Refused(format!("polling handshake answered {what}"))),
                Phase::Closing => Ok(()),
                _ => Err(Failure::Closed(format!("a long-poll GET was answered {what}"))),
            };
        }
        let namespace = cx.target.namespace.as_str();
        for packet in PayloadDecoder::new(response.body) {
            let packet = packet.map_err(|e| Failure::Protocol(format!("Engine.IO polling payload: {e}")))?;
            let PacketData::Text(data) = packet.data else { continue };
            if *core.phase == Phase::AwaitOpen {
                if packet.packet_type != PacketType::Open {
                    return Err(Failure::Protocol(
                        "the polling handshake's answer does not start with the Engine.IO open packet".into(),
                    ));
                }
                self.on_open(core, data, namespace)?;
                continue;
            }
            on_packet(
                core.phase,
                &mut Tx::Polling(&mut self.pending),
                packet.packet_type,
                data,
                namespace,
                on_event,
            )?;
        }
        self.poll_again(core, cx);
        self.flush_sends(core.actions, cx.target);
        Ok(())
    }

    fn on_post_response(
        &mut self,
        core: &mut Core<'_>,
        response: &Response<'_>,
        cx: &mut Context<'_>,
        on_event: &mut impl FnMut(SessionEvent<'_>),
    ) -> Result<(), Failure> {
        if !self.post.in_flight {
            return Err(Failure::Protocol(
                "an HTTP response on the POST connection before any request".into(),
            ));
        }
        self.post.in_flight = false;
        if !response.keep_alive && self.post.link == Link::Open {
            self.post.link = Link::Spent;
        }
        if response.status != 200 && *core.phase != Phase::Closing {
            return Err(Failure::Closed(format!("a POST was answered {}", answered(response))));
        }
        if self.close_in_flight || *core.phase == Phase::Closing && response.status != 200 {
            on_event(SessionEvent::Closed);
            return Ok(());
        }
        self.flush_sends(core.actions, cx.target);
        Ok(())
    }

    fn on_open(&mut self, core: &mut Core<'_>, json: &[u8], namespace: &str) -> Result<(), Failure> {
        let open: OpenPacket = serde_json::from_slice(json)
            .map_err(|e| Failure::Protocol(format!("Engine.IO open packet: {e}")))?;
        self.sid = url_safe_sid(&open.sid)?;
        self.max_payload = open
            .max_payload
            .filter(|&n| n > 0)
            .map_or(DEFAULT_MAX_PAYLOAD, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if !self.upgrade {
            send_connect(&mut Tx::Polling(&mut self.pending), namespace);
            *core.phase = Phase::AwaitConnect;
            return Ok(());
        }
        if !open.upgrades.iter().any(|u| u == "websocket") {
            return Err(Failure::Refused(format!(
                "the server offers this polling session no WebSocket upgrade (\"upgrades\":{:?}); \
                 use --transport polling",
                open.upgrades
            )));
        }
        self.probe = Some(Probe::Connecting);
        core.actions.push(StreamAction::Connect(Stream::Secondary));
        *core.phase = Phase::Probing;
        Ok(())
    }

    /// Keeps a long-poll GET outstanding (reconnecting if its connection is gone), unless the session
    /// is closing or the probe has paused polling; once paused and the last GET is back, queues `5`.
    fn poll_again(&mut self, core: &mut Core<'_>, cx: &mut Context<'_>) {
        if self.probe == Some(Probe::Probed) {
            if !self.get.in_flight && !self.switch_ready && *core.phase != Phase::Closing {
                send_text(&mut self.side_out, b"5", cx.mask_state);
                self.switch_ready = true;
            }
            return;
        }
        if self.get.in_flight || matches!(*core.phase, Phase::Connecting | Phase::Closing) {
            return;
        }
        match self.get.link {
            Link::Open => {
                write_get(cx.target, Some(&self.sid), core.out);
                self.get.in_flight = true;
            }
            Link::Spent | Link::Absent => {
                if self.get.link == Link::Spent {
                    core.actions.push(StreamAction::Drop(Stream::Primary));
                }
                core.actions.push(StreamAction::Connect(Stream::Primary));
                self.get.link = Link::Connecting;
            }
            Link::Connecting => {}
        }
    }

    /// Sends the next POST if none is in flight and packets wait (opening its connection if needed).
    fn flush_sends(&mut self, actions: &mut super::session::Actions, target: &Target) {
        if self.upgrade || self.post.in_flight || self.pending.is_empty() {
            return;
        }
        match self.post.link {
            Link::Open => {
                let cut = batch_len(&self.pending, self.max_payload);
                write_post_head(target, &self.sid, cut, &mut self.side_out);
                self.side_out.extend_from_slice(self.pending.get(..cut).unwrap_or_default());
                let taken = (cut + 1).min(self.pending.len());
                drop(self.pending.split_to(taken));
                self.post.in_flight = true;
                self.close_in_flight = self.close_queued && self.pending.is_empty();
            }
            Link::Spent | Link::Absent => {
                if self.post.link == Link::Spent {
                    actions.push(StreamAction::Drop(Stream::Secondary));
                }
                actions.push(StreamAction::Connect(Stream::Secondary));
                self.post.link = Link::Connecting;
            }
            Link::Connecting => {}
        }
    }
}

fn on_probe_frame(c: &mut Cycle, event: WsEvent<'_>, mask_state: &mut u64) -> Result<(), Failure> {
    match event {
        WsEvent::Text("3probe") if c.probe == Some(Probe::Probing) => c.probe = Some(Probe::Probed),
        WsEvent::Ping(payload) => {
            let _ = encode_client_frame(Opcode::Pong, payload, next_mask(mask_state), &mut c.side_out);
        }
        WsEvent::Pong(_) | WsEvent::Binary(_) => {}
        WsEvent::Close { code, .. } => {
            let code = code.map_or_else(|| "no code".to_string(), |c| c.to_string());
            return Err(Failure::Closed(format!(
                "the server closed the WebSocket of the upgrade probe ({code})"
            )));
        }
        WsEvent::Text(other) => {
            let other: String = other.chars().take(40).collect();
            return Err(Failure::Protocol(format!("the upgrade probe got {other:?} instead of \"3probe\"")));
        }
    }
    Ok(())
}

/// Bytes of `pending` the next POST carries: all of it if it fits in `max_payload`, else the whole
/// records that fit, else the first record alone.
fn batch_len(pending: &[u8], max_payload: usize) -> usize {
    if pending.len() <= max_payload {
        return pending.len();
    }
    let mut separators = pending.iter().enumerate().filter(|(_, b)| **b == RECORD_SEPARATOR).map(|(i, _)| i);
    let first = separators.next().unwrap_or(pending.len());
    if first > max_payload {
        return first;
    }
    separators.take_while(|&i| i <= max_payload).last().unwrap_or(first)
}

/// "HTTP 400 Bad Request: {body}" for a one-line message.
fn answered(response: &Response<'_>) -> String {
    let body = response.body_excerpt();
    let status = format!("HTTP {} {}", response.status, response.reason);
    let status = status.trim_end();
    if body.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {body}")
    }
}

/// The sid as it goes into a query string: unreserved characters as they are, others %-encoded.
fn url_safe_sid(sid: &str) -> Result<String, Failure> {
    if sid.is_empty() || sid.len() > MAX_SID_LEN {
        return Err(Failure::Protocol(format!("Engine.IO open packet: sid of {} bytes", sid.len())));
    }
    let mut out = String::with_capacity(sid.len());
    for b in sid.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(out)
}

/// Appends a polling GET: the handshake without `sid`, a long-poll with it.
pub(super) fn write_get(target: &Target, sid: Option<&str>, out: &mut BytesMut) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b"?EIO=4&transport=polling");
    if let Some(sid) = sid {
        out.extend_from_slice(b"&sid=");
        out.extend_from_slice(sid.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Appends the head of a POST carrying `body_len` bytes of payload.
fn write_post_head(target: &Target, sid: &str, body_len: usize, out: &mut BytesMut) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b"?EIO=4&transport=polling&sid=");
    out.extend_from_slice(sid.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host.as_bytes());
    let _ = write!(out, "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {body_len}\r\n\r\n");
}

#[cfg(test)]
#[path = "polling_tests.rs"]
mod tests;
