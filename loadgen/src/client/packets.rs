//! A session's Engine.IO and Socket.IO packets, whatever the transport: where sends go ([`Tx`]: a
//! masked WebSocket frame, or a record of the next POST), and how a received packet moves the session
//! along (ping → pong, CONNECT answers, events, acks, disconnects, closes).
//!
//! Hot path: a delivered EVENT is recognised by its type byte and handed on without parsing; only
//! control packets go through the Socket.IO decoder.

use roomcast_engine::eio::{BytesMut, Packet, PacketData, PacketType as EioType, RECORD_SEPARATOR};
use roomcast_engine::sio::{self, PacketType};
use roomcast_engine::ws::{encode_client_frame, Opcode, WsEvent};

use super::session::{Phase, SessionEvent};
use super::Failure;

/// Where a session's Engine.IO packets go: framed onto the WebSocket, or appended to the records
/// waiting for the next POST (`\x1e` between records).
#[derive(Debug)]
pub(super) enum Tx<'a> {
    /// Masked text frames into `Primary`'s output.
    WebSocket {
        /// `Primary`'s bytes.
        out: &'a mut BytesMut,
        /// Masking keys.
        mask_state: &'a mut u64,
    },
    /// Records of the next POST body.
    Polling(&'a mut BytesMut),
}

impl Tx<'_> {
    /// Queues one Engine.IO text packet.
    pub(super) fn send(&mut self, packet: &[u8]) {
        match self {
            Tx::WebSocket { out, mask_state } => send_text(out, packet, mask_state),
            Tx::Polling(pending) => {
                if !pending.is_empty() {
                    pending.extend_from_slice(&[RECORD_SEPARATOR]);
                }
                pending.extend_from_slice(packet);
            }
        }
    }
}

/// Queues the Socket.IO CONNECT for `namespace` (`40`, or `40/admin,`).
pub(super) fn send_connect(tx: &mut Tx<'_>, namespace: &str) {
    let mut connect = BytesMut::from(&b"40"[..]);
    if namespace != "/" {
        connect.extend_from_slice(namespace.as_bytes());
        connect.extend_from_slice(b",");
    }
    tx.send(&connect);
}

/// xorshift64* step: a cheap, never-zero masking key. Masking keys only have to be unpredictable to
/// intermediaries, and a load generator talks to its own server.
pub(super) fn next_mask(state: &mut u64) -> [u8; 4] {
    let mut x = (*state).max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    [(word >> 32) as u8, (word >> 40) as u8, (word >> 48) as u8, (word >> 56) as u8]
}

/// Queues one masked text frame.
pub(super) fn send_text(out: &mut BytesMut, text: &[u8], mask_state: &mut u64) {
    // A text frame has no size limit: the call cannot fail.
    let _ = encode_client_frame(Opcode::Text, text, next_mask(mask_state), out);
}

pub(super) fn on_frame(
    phase: &mut Phase,
    tx: &mut Tx<'_>,
    event: WsEvent<'_>,
    namespace: &str,
    on_event: &mut impl FnMut(SessionEvent<'_>),
) -> Result<(), Failure> {
    let text = match event {
        WsEvent::Text(text) => text.as_bytes(),
        WsEvent::Binary(_) | WsEvent::Pong(_) => return Ok(()),
        WsEvent::Ping(payload) => {
            if let Tx::WebSocket { out, mask_state } = tx {
                let _ = encode_client_frame(Opcode::Pong, payload, next_mask(mask_state), out);
            }
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
    let packet =
        Packet::decode_text(text).map_err(|e| Failure::Protocol(format!("Engine.IO packet: {e}")))?;
    let data = match packet.data {
        PacketData::Text(data) => data,
        // Binary messages (`b<base64>`): no scenario sends any.
        _ => return Ok(()),
    };
    if *phase == Phase::AwaitOpen {
        if packet.packet_type != EioType::Open {
            return Err(Failure::Protocol("first WebSocket message is not the Engine.IO open packet".into()));
        }
        send_connect(tx, namespace);
        *phase = Phase::AwaitConnect;
        return Ok(());
    }
    on_packet(phase, tx, packet.packet_type, data, namespace, on_event)
}

/// One Engine.IO packet after the open packet, whatever the transport.
pub(super) fn on_packet(
    phase: &mut Phase,
    tx: &mut Tx<'_>,
    kind: EioType,
    data: &[u8],
    namespace: &str,
    on_event: &mut impl FnMut(SessionEvent<'_>),
) -> Result<(), Failure> {
    match (kind, *phase) {
        (EioType::Ping, _) => tx.send(b"3"),
        (EioType::Message, _) => on_socketio(phase, data, namespace, on_event)?,
        (EioType::Close, Phase::Closing) => on_event(SessionEvent::Closed),
        (EioType::Close, _) => return Err(Failure::Closed("Engine.IO close packet".into())),
        (EioType::Pong | EioType::Noop, _) => {}
        (EioType::Open | EioType::Upgrade, _) => {
            let digit = char::from(kind.digit());
            return Err(Failure::Protocol(format!("unexpected Engine.IO packet type {digit:?}")));
        }
    }
    Ok(())
}

fn on_socketio(
    phase: &mut Phase,
    text: &[u8],
    namespace: &str,
    on_event: &mut impl FnMut(SessionEvent<'_>),
) -> Result<(), Failure> {
    // Hot path: a delivered event goes out with its type checked only; the token reader validates it.
    if text.first() == Some(&b'2') && *phase == Phase::Ready {
        on_event(SessionEvent::Event(text));
        return Ok(());
    }
    let packet = sio::decode(text, &sio::Limits::default())
        .map_err(|e| Failure::Protocol(format!("Socket.IO packet: {e}")))?;
    if packet.nsp() != namespace {
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
                "Socket.IO CONNECT_ERROR for namespace {namespace}: {why}"
            )));
        }
        (PacketType::Ack, Phase::Ready | Phase::Closing) => {
            let Some(id) = packet.ack_id() else { return Ok(()) };
            let error = packet.args().next().is_some_and(|a| a.starts_with(b"{\"error\""));
            on_event(SessionEvent::Ack { id, error });
        }
        (PacketType::Disconnect, Phase::Closing) => on_event(SessionEvent::Closed),
        (PacketType::Disconnect, _) => {
            return Err(Failure::Closed(format!("Socket.IO DISCONNECT from namespace {namespace}")));
        }
        _ => {}
    }
    Ok(())
}
