#![no_main]
//! Engine.IO: the input is decoded as a polling payload and as WebSocket text/binary packets, then read
//! as a script of session operations (GETs, POST bodies, WebSocket and upgrade-candidate frames, sends,
//! closes, timeouts on an increasing virtual clock). Nothing may panic, and a few invariants must hold.
use libfuzzer_sys::fuzz_target;
use roomcast_engine::eio::{
    Bytes, BytesMut, CloseReason, EioConfig, EioEvent, EioSession, OutPacket, Packet, PayloadDecoder, Transport,
};
use roomcast_engine::ids::{EngineSid, ShardId};
use std::time::{Duration, Instant};

/// Takes a length byte then up to that many bytes.
fn take_chunk<'a>(script: &mut &'a [u8]) -> &'a [u8] {
    let Some((&len, rest)) = script.split_first() else { return &[] };
    let len = usize::from(len).min(rest.len());
    let (chunk, rest) = rest.split_at(len);
    *script = rest;
    chunk
}

fn take_byte(script: &mut &[u8]) -> u8 {
    let Some((&byte, rest)) = script.split_first() else { return 0 };
    *script = rest;
    byte
}

fn new_session(selector: u8, now: Instant) -> EioSession {
    let config = EioConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 96,
        upgrade_timeout: Duration::from_millis(1_000),
        allow_upgrades: selector & 2 == 0,
        close_timeout: Duration::from_millis(500),
    };
    let transport = if selector & 1 == 0 { Transport::Polling } else { Transport::WebSocket };
    EioSession::new(EngineSid::new(ShardId(0), [selector; 16]), transport, config, now)
}

fn drain(session: &mut EioSession, out: &mut BytesMut) {
    while let Some(event) = session.poll_event() {
        if let EioEvent::Message(_) = event {
            // An echo, as the conformance suite's handler does.
            let _ = session.send(OutPacket::text(Bytes::from_static(b"4echo")));
        }
    }
    out.clear();
    if session.poll_poll_response(out) {
        assert!(!out.is_empty(), "an answered GET has a body");
    }
    while session.poll_ws_transmit().is_some() {}
    while session.poll_candidate_transmit().is_some() {}
    assert_eq!(session.queued_bytes() == 0, session.queued_packets() == 0);
    assert!(!(session.is_upgrading() && session.transport() == Transport::WebSocket));
    if session.is_closed() {
        assert_eq!(session.poll_timeout(), None);
    }
}

fuzz_target!(|data: &[u8]| {
    // Stateless decoders.
    let mut decoded = 0usize;
    for packet in PayloadDecoder::new(data) {
        decoded += 1;
        if packet.is_err() {
            break;
        }
    }
    assert!(decoded >= 1, "a payload has at least one record");
    let _ = Packet::decode_text(data);
    let _ = Packet::decode_binary(data);

    // A session driven by the input.
    let mut script = data;
    let mut now = Instant::now();
    let mut session = new_session(take_byte(&mut script), now);
    let mut out = BytesMut::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        match op % 17 {
            0 => drop(session.handle_poll_get(now)),
            1 => drop(session.handle_poll_post_begin(now)),
            2 => drop(session.handle_poll_post(now, Bytes::copy_from_slice(take_chunk(&mut script)))),
            3 => drop(session.handle_poll_aborted(now)),
            4 => session.handle_poll_post_aborted(now),
            5 => drop(session.handle_ws_text(now, Bytes::copy_from_slice(take_chunk(&mut script)))),
            6 => drop(session.handle_ws_binary(now, Bytes::copy_from_slice(take_chunk(&mut script)))),
            7 => drop(session.handle_upgrade_request(now)),
            8 => drop(session.handle_candidate_text(now, take_chunk(&mut script))),
            9 => drop(session.handle_candidate_binary(now, take_chunk(&mut script))),
            10 => session.handle_candidate_closed(now),
            11 => drop(session.handle_ws_closed(now)),
            12 => {
                let chunk = take_chunk(&mut script);
                let packet = if chunk.first().is_some_and(|b| b & 1 == 1) {
                    OutPacket::binary(Bytes::copy_from_slice(chunk))
                } else {
                    OutPacket::text(Bytes::from([b"4", chunk].concat()))
                };
                if op & 0x80 == 0 {
                    let _ = session.send(packet);
                } else {
                    let _ = session.send_volatile(packet, op & 0x40 == 0);
                }
            }
            13 => {
                let reason = if op & 0x80 == 0 { CloseReason::ForcedClose } else { CloseReason::ServerShuttingDown };
                session.close(now, reason);
            }
            14 => {
                now += Duration::from_millis(u64::from(take_byte(&mut script)) * 10);
                session.handle_timeout(now);
            }
            15 => {
                if let Some(deadline) = session.poll_timeout() {
                    now = now.max(deadline);
                    session.handle_timeout(now);
                }
            }
            _ => session.handle_transport_error(now),
        }
        drain(&mut session, &mut out);
        if session.is_closed() {
            session = new_session(take_byte(&mut script), now);
        }
    }
});
