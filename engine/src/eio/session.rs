//! The Engine.IO session state machine: heartbeat, outbound queue, polling requests, WebSocket frames, the
//! polling → WebSocket upgrade, and closing. See the module docs of [`crate::eio`] for the calling order and
//! which call is valid in which state.

use crate::eio::event::{CloseReason, EioEvent, InMessage, Transport};
use crate::eio::handshake::{open_packet, EioConfig};
use crate::eio::outbound::OutPacket;
use crate::eio::packet::{decode_base64_into, Packet, PacketData, PacketType};
use crate::eio::payload::{encode_payload, PayloadDecoder};
use crate::error::{Error, Limit, PeerMisbehaved};
use crate::ids::EngineSid;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Closed by the server on polling with no GET pending: `6`, `1` (or the last packets, then `1`) wait
    /// in the queue for one more GET, until `deadline` (`close_timeout`; `None` = never).
    Closing {
        reason: CloseReason,
        deadline: Option<Instant>,
    },
    /// Over. Only draining what is still queued for a pending GET or the WebSocket is left.
    Closed,
}

/// A WebSocket that asked to take over a polling session and has not sent `5` yet.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// When the upgrade is abandoned (`upgrade_timeout` after the WebSocket arrived).
    deadline: Option<Instant>,
    /// `2probe` was received: pending GETs are answered with `6` so the client's paused poll ends.
    probed: bool,
    /// `3probe` is owed to the candidate and not yet taken by `poll_candidate_transmit`.
    probe_reply_pending: bool,
}

/// What a pending GET receives when the session closes under it.
#[derive(Debug, Clone, Copy)]
enum LastPoll {
    /// `1`: the server closed the session.
    Close,
    /// `6`: the client closed it with POST `1`; the GET racing that POST just ends.
    Noop,
}

/// One Engine.IO session (one client), sans-I/O.
///
/// Memory: the struct alone while idle. The outbound queue (shared [`OutPacket`]s: a queued broadcast
/// costs two refcounts and one slot) and the event queue give their buffers back once drained, so a
/// burst costs one allocation when it starts and an idle session holds no heap memory of its own.
#[derive(Debug)]
pub struct EioSession {
    sid: EngineSid,
    /// Shared by every session of a server: one pointer per session instead of an 80-byte copy.
    config: Arc<EioConfig>,
    phase: Phase,
    transport: Transport,
    upgraded: bool,
    candidate: Option<Candidate>,
    get_pending: bool,
    post_pending: bool,
    queue: VecDeque<OutPacket>,
    queued_bytes: usize,
    events: VecDeque<EioEvent>,
    /// When the next ping is queued; `None` while a ping awaits its pong, and once closed.
    next_ping: Option<Instant>,
    /// When the session closes for want of a pong; `Some` only while a ping is outstanding.
    pong_deadline: Option<Instant>,
}

// Every connection holds one for its whole life (scenario 5 of issue 7: memory per idle connection).
const _: () = assert!(size_of::<EioSession>() <= 192);

/// `now + d`, or `None` ("never") if that is past what `Instant` can hold.
fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// `part`, a subslice of `source`, as a zero-copy `Bytes`. Copies only if `part` is not inside `source`,
/// which the decoders guarantee never happens; the fallback just keeps this panic-free.
fn share(source: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= source.len() => source.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

impl EioSession {
    /// A new session on `transport`, created at `now`. The open packet is queued first (on polling, the
    /// handshake GET carries it: call [`EioSession::handle_poll_get`] for that request too) and the first
    /// ping is armed `ping_interval` from `now`.
    ///
    /// `upgrades` is `["websocket"]` for polling when `config.allow_upgrades`, else `[]`.
    /// Control path: allocates the open packet and the queue it waits in.
    /// `config` is usually one `Arc` shared by all sessions (a plain [`EioConfig`] is wrapped).
    pub fn new(
        sid: EngineSid,
        transport: Transport,
        config: impl Into<Arc<EioConfig>>,
        now: Instant,
    ) -> EioSession {
        let config = config.into();
        let offer_websocket = transport == Transport::Polling && config.allow_upgrades;
        let open = OutPacket::text(open_packet(&sid, offer_websocket, &config));
        let mut session = EioSession {
            sid,
            phase: Phase::Open,
            transport,
            upgraded: false,
            candidate: None,
            get_pending: false,
            post_pending: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            events: VecDeque::new(),
            next_ping: after(now, config.ping_interval),
            pong_deadline: None,
            config,
        };
        session.enqueue(open);
        session
    }

    /// The session id given at creation.
    pub fn sid(&self) -> &EngineSid {
        &self.sid
    }

    /// The configuration given at creation.
    pub fn config(&self) -> &EioConfig {
        &self.config
    }

    /// The current transport. A polling request on a `WebSocket` session is a transport mismatch: the
    /// server answers 400 `{"code":3,"message":"Bad request"}` without calling the session.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether a candidate WebSocket is attached and has not completed the upgrade.
    pub fn is_upgrading(&self) -> bool {
        self.candidate.is_some()
    }

    /// Whether this session moved from polling to WebSocket.
    pub fn is_upgraded(&self) -> bool {
        self.upgraded
    }

    /// Whether the session is over (a `Closed` event was queued). The server drains the final outputs,
    /// then drops the session; later requests for its sid get "unknown sid".
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Packets waiting in the outbound queue.
    pub fn queued_packets(&self) -> usize {
        self.queue.len()
    }

    /// Bytes of the packets waiting in the outbound queue (raw packet lengths, before base64 or framing):
    /// what a slow-consumer limit compares against.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    // ------------------------------------------------------------------ sending

    /// Queues `packet` for the client; returns false (dropping it) if the session is closing or closed.
    ///
    /// Hot path. Cost: one `VecDeque` push of a 72-byte value; no allocation once the queue is warm.
    pub fn send(&mut self, packet: OutPacket) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.enqueue(packet);
        true
    }

    /// Whether a message sent now may skip the queue and be written straight to the session's
    /// WebSocket: the session is open on WebSocket and nothing is queued, so writing it directly gives
    /// the order [`EioSession::poll_ws_transmit`] would. The caller then writes the frame itself and
    /// does not call [`EioSession::send`]; the session never sees the packet (nothing in the session
    /// depends on outbound messages: heartbeats count only pongs).
    ///
    /// Hot path (a broadcast to a WebSocket session): one comparison of two fields and a length.
    pub fn can_write_through(&self) -> bool {
        self.phase == Phase::Open && self.transport == Transport::WebSocket && self.queue.is_empty()
    }

    /// Whether the transport can take a packet right now, as volatile sends define it: on polling, a GET
    /// is pending; on WebSocket, `ws_writable` (the server's judgement: typically "its write buffer is
    /// empty", as the reference's `transport.writable`). Always false unless the session is open.
    pub fn is_writable(&self, ws_writable: bool) -> bool {
        self.phase == Phase::Open
            && match self.transport {
                Transport::Polling => self.get_pending,
                Transport::WebSocket => ws_writable,
            }
    }

    /// Queues `packet` only if [`EioSession::is_writable`]`(ws_writable)`, else drops it. Returns whether
    /// it was queued. `ws_writable` is ignored on polling.
    pub fn send_volatile(&mut self, packet: OutPacket, ws_writable: bool) -> bool {
        self.is_writable(ws_writable) && self.send(packet)
    }

    /// Closes the session from the server side, delivering what is queued first.
    ///
    /// - WebSocket: the session is closed now; drain `poll_ws_transmit`, then close the WebSocket (no `1`).
    /// - Polling with a GET pending: it receives the queue then `1`; the session is closed now.
    /// - Polling without: the next GET receives `6\x1e1` (or the queued packets then `1`) and the session
    ///   closes then, or after `close_timeout` without a GET.
    ///
    /// An upgrade in progress is aborted (`UpgradeAborted`). No effect unless the session is open.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.phase != Phase::Open {
            return;
        }
        self.abort_upgrade(true);
        match self.transport {
            Transport::WebSocket => self.finish(reason),
            Transport::Polling if self.get_pending => {
                self.enqueue(OutPacket::control(PacketType::Close));
                self.finish(reason);
            }
            Transport::Polling => {
                if self.queue.is_empty() {
                    self.enqueue(OutPacket::control(PacketType::Noop));
                }
                self.enqueue(OutPacket::control(PacketType::Close));
                self.stop_timers();
                self.phase = Phase::Closing { reason, deadline: after(now, self.config.close_timeout) };
            }
        }
    }

    // ------------------------------------------------------------------ time

    /// The next instant at which [`EioSession::handle_timeout`] has work: a ping to queue, a pong
    /// deadline, an upgrade deadline, or the close deadline. `None` when closed (or nothing is armed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Closing { deadline, .. } => deadline,
            Phase::Open => [self.next_ping, self.pong_deadline, self.candidate.and_then(|c| c.deadline)]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    /// Acts on every deadline at or before `now`: closes with `ping timeout` if a pong is overdue, queues
    /// a ping (`2`) when one is due (its pong deadline counts from `now`), abandons an overdue upgrade,
    /// finishes an overdue server close. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
        match self.phase {
            Phase::Closed => {}
            Phase::Closing { reason, deadline } => {
                if due(deadline) {
                    // The queue stays: a GET that arrived but was not answered yet still gets it.
                    self.finish(reason);
                }
            }
            Phase::Open => {
                if due(self.candidate.and_then(|c| c.deadline)) {
                    self.abort_upgrade(true);
                }
                if due(self.pong_deadline) {
                    self.close_by_peer(CloseReason::PingTimeout, LastPoll::Close);
                } else if due(self.next_ping) {
                    self.enqueue(OutPacket::control(PacketType::Ping));
                    self.next_ping = None;
                    self.pong_deadline = after(now, self.config.ping_timeout);
                }
            }
        }
    }

    // ------------------------------------------------------------------ polling

    /// A polling GET arrived (including the handshake GET). It stays pending until
    /// [`EioSession::poll_poll_response`] answers it.
    ///
    /// A second GET while one is pending is an overlap: the session closes (`transport error`), the first
    /// GET is answered `1`, and this returns `EioOverlap` — answer the second GET with 400.
    /// Misuse on a closed session or one on WebSocket (the server answers those itself).
    pub fn handle_poll_get(&mut self, _now: Instant) -> Result<(), Error> {
        self.check_polling()?;
        if self.get_pending {
            self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
            return Err(PeerMisbehaved::EioOverlap("overlap from client").into());
        }
        self.get_pending = true;
        Ok(())
    }

    /// Writes the pending GET's response body into `out` and returns true, if it can be answered now:
    /// with the whole queue (`\x1e`-joined, binary as `b<base64>`), or `6` while an upgrade is probing or
    /// after it completed, or the final packets of a closing session. Returns false (writing nothing) if
    /// the GET must keep waiting or none is pending. Call after every `handle_*` that may queue packets.
    ///
    /// While upgrading, the reference re-sends a noop to the pending GET every 100 ms; answering `6` as
    /// soon as the probe is in (and to any GET after it) has the same effect without a timer.
    ///
    /// Cost: one pass over the queue into `out` (which the caller reuses); the queue's buffer is freed.
    pub fn poll_poll_response(&mut self, out: &mut BytesMut) -> bool {
        if !self.get_pending {
            return false;
        }
        if self.transport == Transport::WebSocket {
            // A GET left over from before the upgrade: the packets now go over the WebSocket.
            out.extend_from_slice(b"6");
        } else if !self.queue.is_empty() {
            encode_payload(self.queue.iter(), out);
            self.clear_queue();
            if let Phase::Closing { reason, .. } = self.phase {
                self.finish(reason);
            }
        } else if self.phase == Phase::Open && self.candidate.is_some_and(|c| c.probed) {
            out.extend_from_slice(b"6");
        } else {
            return false;
        }
        self.get_pending = false;
        true
    }

    /// The pending GET's connection closed before it was answered: the session closes
    /// (`transport error`, "poll connection closed prematurely"). Harmless on a closed session or for a
    /// GET left over from before an upgrade. Misuse if no GET is pending on an open session.
    pub fn handle_poll_aborted(&mut self, _now: Instant) -> Result<(), Error> {
        if !self.get_pending {
            return match self.phase {
                Phase::Closed => Ok(()),
                _ => Err(Error::Misuse("handle_poll_aborted without a pending GET")),
            };
        }
        self.get_pending = false;
        if self.phase != Phase::Closed && self.transport == Transport::Polling {
            self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
        }
        Ok(())
    }

    /// A polling POST's head arrived; its body will come through [`EioSession::handle_poll_post`] (or
    /// [`EioSession::handle_poll_post_aborted`]). A second POST while one is in progress is an overlap:
    /// the session closes (`transport error`) and this returns `EioOverlap` — answer that POST 400 and do
    /// not pass its body. Misuse on a closed session or one on WebSocket.
    pub fn handle_poll_post_begin(&mut self, _now: Instant) -> Result<(), Error> {
        self.check_polling()?;
        if self.post_pending {
            self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
            return Err(PeerMisbehaved::EioOverlap("data request overlap from client").into());
        }
        self.post_pending = true;
        Ok(())
    }

    /// The complete body of the POST begun with [`EioSession::handle_poll_post_begin`]. Every packet is
    /// handled in order before this returns, so echoes queued for the resulting `Message` events all
    /// leave in the same GET response (batching is preserved).
    ///
    /// `Ok` → answer `200 ok` (also when the body closed the session with `1`, or the session was
    /// already closing: the body is then ignored). `Err(EioParse)` → the packets before the invalid one
    /// were delivered, the session is closed (`parse error`): answer 400. A body over `max_payload` should
    /// have been refused with 413 by the HTTP layer; if passed anyway it is ignored and
    /// `Err(LimitExceeded)` returned, the session kept (as the reference does).
    /// Misuse without a matching `handle_poll_post_begin`.
    pub fn handle_poll_post(&mut self, now: Instant, body: Bytes) -> Result<(), Error> {
        if !self.post_pending {
            return Err(Error::Misuse("handle_poll_post without handle_poll_post_begin"));
        }
        self.post_pending = false;
        if self.phase != Phase::Open {
            return Ok(());
        }
        if body.len() > self.config.max_payload {
            return Err(Limit::EioPayloadSize { max: self.config.max_payload }.into());
        }
        for decoded in PayloadDecoder::new(&body) {
            match decoded {
                Ok(packet) => self.handle_packet(now, packet, &body, Transport::Polling)?,
                Err(error) => {
                    self.close_by_peer(CloseReason::ParseError, LastPoll::Close);
                    return Err(error);
                }
            }
            if self.phase != Phase::Open {
                break;
            }
        }
        Ok(())
    }

    /// The POST's connection closed before its body was complete: the session closes (`transport
    /// error`). Harmless if no POST is in progress.
    pub fn handle_poll_post_aborted(&mut self, _now: Instant) {
        if std::mem::take(&mut self.post_pending) {
            self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
        }
    }

    // ------------------------------------------------------------------ websocket

    /// A complete text message from the session's WebSocket (UTF-8 already checked by the WebSocket
    /// layer). Handles one packet: a message becomes a `Message` event sharing `frame`'s bytes.
    ///
    /// `Err` means the session closed: `EioParse` (`parse error`), `EioHeartbeatDirection` for a client
    /// ping or `LimitExceeded` above `max_payload` (`transport error`); close the WebSocket with
    /// [`Error::ws_close_code`]. A `1` closes the session (`transport close`) and returns `Ok`.
    /// Misuse on a closed or polling session (frames of an upgrade candidate go to `handle_candidate_*`).
    pub fn handle_ws_text(&mut self, now: Instant, frame: Bytes) -> Result<(), Error> {
        self.check_websocket(frame.len())?;
        match Packet::decode_text(&frame) {
            Ok(packet) => self.handle_packet(now, packet, &frame, Transport::WebSocket),
            Err(error) => {
                self.close_by_peer(CloseReason::ParseError, LastPoll::Close);
                Err(error)
            }
        }
    }

    /// A complete binary message from the session's WebSocket: a binary `Message` event carrying
    /// `frame` itself. Errors and misuse as [`EioSession::handle_ws_text`].
    pub fn handle_ws_binary(&mut self, now: Instant, frame: Bytes) -> Result<(), Error> {
        self.check_websocket(frame.len())?;
        self.handle_packet(now, Packet::decode_binary(&frame), &frame, Transport::WebSocket)
    }

    /// The next packet to write on the session's WebSocket, in queue order: write its
    /// [`OutPacket::ws_frame`] if present, else frame [`OutPacket::packet`] as a text or binary message.
    /// `None` on polling (and while an upgrade is pending: queued packets wait for `5` or for a GET).
    ///
    /// Hot path. Cost: one `VecDeque` pop; the call that finds the queue empty frees its buffer.
    pub fn poll_ws_transmit(&mut self) -> Option<OutPacket> {
        if self.transport != Transport::WebSocket {
            return None;
        }
        let Some(packet) = self.queue.pop_front() else {
            self.queue = VecDeque::new();
            return None;
        };
        self.queued_bytes -= packet.packet().len();
        Some(packet)
    }

    /// The session's WebSocket closed (or failed): the session closes with `transport close`. Harmless on
    /// a closed session; misuse on a polling session (use `handle_candidate_closed`).
    pub fn handle_ws_closed(&mut self, _now: Instant) -> Result<(), Error> {
        match (self.phase, self.transport) {
            (Phase::Closed, _) => Ok(()),
            (_, Transport::Polling) => Err(Error::Misuse("handle_ws_closed on a polling session")),
            (_, Transport::WebSocket) => {
                self.close_by_peer(CloseReason::TransportClose, LastPoll::Close);
                Ok(())
            }
        }
    }

    /// The current transport failed in a way only the server sees (a POST with a binary content type, a
    /// WebSocket protocol error): the session closes with `transport error`. No effect once closed.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
    }

    // ------------------------------------------------------------------ upgrade

    /// A WebSocket asks to take over this polling session. `Ok`: it is the upgrade candidate until `5`,
    /// a wrong packet, its close, or `upgrade_timeout`. `Err(EioUpgrade)` when the session is already
    /// upgrading, upgraded, on WebSocket, closing or has upgrades disabled: close that WebSocket; the
    /// session is unaffected.
    pub fn handle_upgrade_request(&mut self, now: Instant) -> Result<(), Error> {
        let refusal = if self.phase != Phase::Open {
            Some("session is closing")
        } else if self.upgraded {
            Some("session already upgraded")
        } else if self.transport == Transport::WebSocket {
            Some("session is already on websocket")
        } else if self.candidate.is_some() {
            Some("session is already upgrading")
        } else if !self.config.allow_upgrades {
            Some("upgrades are disabled")
        } else {
            None
        };
        if let Some(why) = refusal {
            return Err(PeerMisbehaved::EioUpgrade(why).into());
        }
        let deadline = after(now, self.config.upgrade_timeout);
        self.candidate = Some(Candidate { deadline, probed: false, probe_reply_pending: false });
        Ok(())
    }

    /// A text frame on the upgrade candidate. `2probe` → `3probe` is owed to the candidate
    /// ([`EioSession::poll_candidate_transmit`]) and pending GETs are answered `6`; `5` → the switch:
    /// `Upgraded`, the queue now drains through `poll_ws_transmit`. Anything else aborts the upgrade and
    /// returns the error (close the candidate; the session carries on over polling).
    /// Misuse if no candidate is attached (after `UpgradeAborted`, stop feeding that WebSocket).
    pub fn handle_candidate_text(&mut self, _now: Instant, frame: &[u8]) -> Result<(), Error> {
        if self.candidate.is_none() {
            return Err(Error::Misuse("candidate frame without an upgrade in progress"));
        }
        if frame.len() > self.config.max_payload {
            self.abort_upgrade(true);
            return Err(Limit::EioPayloadSize { max: self.config.max_payload }.into());
        }
        let error = match Packet::decode_text(frame) {
            Ok(Packet { packet_type: PacketType::Ping, data: PacketData::Text(b"probe") }) => {
                if let Some(candidate) = self.candidate.as_mut() {
                    candidate.probed = true;
                    candidate.probe_reply_pending = true;
                }
                return Ok(());
            }
            Ok(Packet { packet_type: PacketType::Upgrade, .. }) => {
                self.complete_upgrade();
                return Ok(());
            }
            Ok(_) => PeerMisbehaved::EioUpgrade("unexpected packet before upgrade").into(),
            Err(error) => error,
        };
        self.abort_upgrade(true);
        Err(error)
    }

    /// A binary frame on the upgrade candidate: aborts the upgrade (returns `EioUpgrade`). Misuse if no
    /// candidate is attached.
    pub fn handle_candidate_binary(&mut self, _now: Instant, _frame: &[u8]) -> Result<(), Error> {
        if self.candidate.is_none() {
            return Err(Error::Misuse("candidate frame without an upgrade in progress"));
        }
        self.abort_upgrade(true);
        Err(PeerMisbehaved::EioUpgrade("binary frame before upgrade").into())
    }

    /// The candidate WebSocket closed: the upgrade is abandoned silently (no event; it is already gone).
    /// Harmless if no candidate is attached.
    pub fn handle_candidate_closed(&mut self, _now: Instant) {
        self.abort_upgrade(false);
    }

    /// `3probe`, once per `2probe`, for the candidate WebSocket.
    pub fn poll_candidate_transmit(&mut self) -> Option<OutPacket> {
        let candidate = self.candidate.as_mut()?;
        std::mem::take(&mut candidate.probe_reply_pending).then(OutPacket::pong_probe)
    }

    // ------------------------------------------------------------------ events

    /// The next event, in the order things happened.
    /// The call that finds no event frees the queue's buffer.
    pub fn poll_event(&mut self) -> Option<EioEvent> {
        let event = self.events.pop_front();
        if event.is_none() {
            self.events = VecDeque::new();
        }
        event
    }

    // ------------------------------------------------------------------ internals

    fn enqueue(&mut self, packet: OutPacket) {
        self.queued_bytes += packet.packet().len();
        self.queue.push_back(packet);
    }

    fn clear_queue(&mut self) {
        self.queue = VecDeque::new();
        self.queued_bytes = 0;
    }

    fn stop_timers(&mut self) {
        self.next_ping = None;
        self.pong_deadline = None;
    }

    fn finish(&mut self, reason: CloseReason) {
        self.stop_timers();
        self.phase = Phase::Closed;
        self.events.push_back(EioEvent::Closed { reason });
    }

    /// Closes because of the client: the queue is dropped (the reference clears its write buffer), a
    /// pending polling GET gets `last`. No effect once closed.
    fn close_by_peer(&mut self, reason: CloseReason, last: LastPoll) {
        if self.phase == Phase::Closed {
            return;
        }
        self.abort_upgrade(true);
        self.clear_queue();
        if self.transport == Transport::Polling && self.get_pending {
            self.enqueue(OutPacket::control(match last {
                LastPoll::Close => PacketType::Close,
                LastPoll::Noop => PacketType::Noop,
            }));
        }
        self.finish(reason);
    }

    fn abort_upgrade(&mut self, report: bool) {
        if self.candidate.take().is_some() && report {
            self.events.push_back(EioEvent::UpgradeAborted);
        }
    }

    fn complete_upgrade(&mut self) {
        let Some(candidate) = self.candidate.take() else { return };
        if candidate.probe_reply_pending {
            // `2probe` and `5` arrived before the driver took `3probe`: it still goes first.
            let reply = OutPacket::pong_probe();
            self.queued_bytes += reply.packet().len();
            self.queue.push_front(reply);
        }
        self.transport = Transport::WebSocket;
        self.upgraded = true;
        self.events.push_back(EioEvent::Upgraded);
    }

    fn check_polling(&self) -> Result<(), Error> {
        match (self.phase, self.transport) {
            (Phase::Closed, _) => Err(Error::Misuse("polling request on a closed session")),
            (_, Transport::WebSocket) => Err(Error::Misuse("polling request on a websocket session")),
            _ => Ok(()),
        }
    }

    /// Validity and size check shared by the `handle_ws_*` calls; an oversized frame closes the session.
    fn check_websocket(&mut self, len: usize) -> Result<(), Error> {
        match (self.phase, self.transport) {
            (Phase::Closed, _) => return Err(Error::Misuse("websocket frame on a closed session")),
            (_, Transport::Polling) => return Err(Error::Misuse("websocket frame on a polling session")),
            _ => {}
        }
        if len > self.config.max_payload {
            self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
            return Err(Limit::EioPayloadSize { max: self.config.max_payload }.into());
        }
        Ok(())
    }

    /// One packet from the client on the session's transport (`via`), with `source` the bytes it was
    /// decoded from (so messages share them). Only called while open.
    fn handle_packet(
        &mut self,
        now: Instant,
        packet: Packet<'_>,
        source: &Bytes,
        via: Transport,
    ) -> Result<(), Error> {
        match packet.packet_type {
            PacketType::Pong => {
                self.pong_deadline = None;
                self.next_ping = after(now, self.config.ping_interval);
            }
            PacketType::Ping => {
                self.close_by_peer(CloseReason::TransportError, LastPoll::Close);
                return Err(PeerMisbehaved::EioHeartbeatDirection.into());
            }
            PacketType::Close => {
                let last = if via == Transport::Polling { LastPoll::Noop } else { LastPoll::Close };
                self.close_by_peer(CloseReason::TransportClose, last);
            }
            PacketType::Message => {
                let message = match packet.data {
                    PacketData::Text(text) => InMessage::Text(share(source, text)),
                    PacketData::Binary(raw) => InMessage::Binary(share(source, raw)),
                    PacketData::Base64(encoded) => {
                        let mut decoded = BytesMut::new();
                        if let Err(error) = decode_base64_into(encoded, &mut decoded) {
                            self.close_by_peer(CloseReason::ParseError, LastPoll::Close);
                            return Err(error);
                        }
                        InMessage::Binary(decoded.freeze())
                    }
                };
                self.events.push_back(EioEvent::Message(message));
            }
            // The reference ignores these from a client on the session's transport.
            PacketType::Open | PacketType::Upgrade | PacketType::Noop => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use crate::ids::ShardId;

    #[test]
    fn an_idle_websocket_session_gives_its_queue_buffers_back() {
        let now = Instant::now();
        let sid = EngineSid::new(ShardId(0), [7; 16]);
        let mut session = EioSession::new(sid, Transport::WebSocket, EioConfig::default(), now);
        assert!(session.queue.capacity() > 0, "the open packet waits in the queue");
        while session.poll_ws_transmit().is_some() {}
        session.handle_ws_text(now, Bytes::from_static(b"4hello")).unwrap();
        while session.poll_event().is_some() {}
        assert_eq!(
            (session.queue.capacity(), session.events.capacity()),
            (0, 0),
            "an idle connection keeps no queue memory"
        );
    }
}
