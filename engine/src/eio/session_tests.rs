//! Session scenarios on a virtual clock (`Instant::now()` once, then `+ Duration`), mirroring the official
//! Engine.IO suite's expectations (reference notes §3.3, §8).

use super::*;
use crate::error::{Error, Limit, PeerMisbehaved};
use crate::ids::{EngineSid, ShardId};
use std::time::{Duration, Instant};

struct Client {
    session: EioSession,
    t0: Instant,
}

fn suite_config() -> EioConfig {
    EioConfig { ping_interval: ms(300), ping_timeout: ms(200), ..EioConfig::default() }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Client {
    fn new(transport: Transport, config: EioConfig) -> Client {
        let t0 = Instant::now();
        let sid = EngineSid::new(ShardId(1), [42; 16]);
        Client { session: EioSession::new(sid, transport, config, t0), t0 }
    }

    /// A polling session whose handshake GET was answered at t0.
    fn polling() -> Client {
        let mut client = Client::new(Transport::Polling, suite_config());
        client.get(0).unwrap();
        let open = client.response().expect("handshake GET answered");
        assert!(open.starts_with(r#"0{"sid":""#), "{open}");
        client
    }

    /// A direct WebSocket session whose open packet was drained.
    fn websocket() -> Client {
        let mut client = Client::new(Transport::WebSocket, suite_config());
        let open = client.session.poll_ws_transmit().expect("open packet");
        assert!(open.packet().starts_with(b"0{"));
        client
    }

    fn at(&self, millis: u64) -> Instant {
        self.t0 + ms(millis)
    }

    fn get(&mut self, millis: u64) -> Result<(), Error> {
        self.session.handle_poll_get(self.at(millis))
    }

    fn post(&mut self, millis: u64, body: &'static [u8]) -> Result<(), Error> {
        self.session.handle_poll_post_begin(self.at(millis))?;
        self.session.handle_poll_post(self.at(millis), Bytes::from_static(body))
    }

    fn ws_text(&mut self, millis: u64, frame: &'static str) -> Result<(), Error> {
        self.session.handle_ws_text(self.at(millis), Bytes::from_static(frame.as_bytes()))
    }

    fn tick(&mut self, millis: u64) {
        self.session.handle_timeout(self.at(millis));
    }

    /// The pending GET's body, if it can be answered now.
    fn response(&mut self) -> Option<String> {
        let mut out = BytesMut::new();
        self.session.poll_poll_response(&mut out).then(|| String::from_utf8(out.to_vec()).unwrap())
    }

    fn ws_sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.session.poll_ws_transmit())
            .map(|p| String::from_utf8(p.packet().to_vec()).unwrap())
            .collect()
    }

    fn events(&mut self) -> Vec<EioEvent> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// The handler of the Engine.IO suite: echo every message back unchanged.
    fn echo_messages(&mut self) {
        for event in self.events() {
            if let EioEvent::Message(message) = event {
                let packet = match message {
                    InMessage::Text(text) => OutPacket::text([&b"4"[..], &text].concat().into()),
                    InMessage::Binary(raw) => OutPacket::binary(raw),
                };
                assert!(self.session.send(packet));
            }
        }
    }
}

fn text(s: &str) -> OutPacket {
    OutPacket::text(Bytes::copy_from_slice(s.as_bytes()))
}

fn closed(reason: CloseReason) -> EioEvent {
    EioEvent::Closed { reason }
}

#[test]
fn handshake_offers_websocket_on_polling_and_nothing_on_websocket() {
    let mut polling = Client::new(Transport::Polling, EioConfig::default());
    assert_eq!(polling.response(), None, "no GET yet");
    polling.get(0).unwrap();
    assert!(polling.response().unwrap().contains(r#""upgrades":["websocket"],"pingInterval":25000,"#));

    let mut ws = Client::new(Transport::WebSocket, EioConfig::default());
    let first = ws.ws_sent();
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with(r#"0{"sid":""#) && first[0].contains(r#""upgrades":[],"#), "{first:?}");

    let no_upgrades =
        Client::new(Transport::Polling, EioConfig { allow_upgrades: false, ..EioConfig::default() });
    let mut no_upgrades = no_upgrades;
    no_upgrades.get(0).unwrap();
    assert!(no_upgrades.response().unwrap().contains(r#""upgrades":[]"#));
}

#[test]
fn polling_ping_pong_three_rounds_then_ping_timeout() {
    let mut c = Client::polling();
    assert_eq!(c.session.poll_timeout(), Some(c.at(300)), "first ping armed at creation");
    let mut ping_at = 300;
    for round in 0..3 {
        c.get(ping_at - 100).unwrap();
        c.tick(ping_at - 1);
        assert_eq!(c.response(), None, "round {round}: no ping before the interval");
        c.tick(ping_at);
        assert_eq!(c.response().as_deref(), Some("2"), "round {round}: the ping GET returns exactly 2");
        assert_eq!(c.session.poll_timeout(), Some(c.at(ping_at + 200)), "pong deadline");
        c.post(ping_at + 50, b"3").unwrap();
        ping_at += 50 + 300;
        assert_eq!(c.session.poll_timeout(), Some(c.at(ping_at)), "next ping counts from the pong");
    }
    assert!(c.events().is_empty());

    // Round four goes unanswered: the pending GET gets `1`, the session closes with `ping timeout`.
    c.tick(ping_at);
    c.get(ping_at + 10).unwrap();
    assert_eq!(c.response().as_deref(), Some("2"));
    c.get(ping_at + 20).unwrap();
    c.tick(ping_at + 199);
    assert!(!c.session.is_closed());
    c.tick(ping_at + 200);
    assert!(c.session.is_closed());
    assert_eq!(c.response().as_deref(), Some("1"));
    assert_eq!(c.events(), vec![closed(CloseReason::PingTimeout)]);
    assert_eq!(c.session.poll_timeout(), None);
}

#[test]
fn polling_ping_timeout_without_any_get_closes_by_500ms() {
    // The suite sleeps 500 ms after the handshake and expects the session gone.
    let mut c = Client::polling();
    c.tick(300);
    c.tick(500);
    assert!(c.session.is_closed());
    assert_eq!(c.events(), vec![closed(CloseReason::PingTimeout)]);
}

#[test]
fn websocket_ping_pong_rounds_and_other_traffic_does_not_count_as_pong() {
    let mut c = Client::websocket();
    c.tick(300);
    assert_eq!(c.ws_sent(), ["2"]);
    c.ws_text(350, "3").unwrap();
    c.tick(650);
    assert_eq!(c.ws_sent(), ["2"]);
    c.ws_text(700, "4still here").unwrap();
    c.tick(850);
    assert!(c.session.is_closed(), "only a pong resets the heartbeat");
    assert_eq!(
        c.events(),
        vec![
            EioEvent::Message(InMessage::Text(Bytes::from_static(b"still here"))),
            closed(CloseReason::PingTimeout)
        ]
    );
}

#[test]
fn ping_from_the_client_is_a_transport_error() {
    let mut c = Client::websocket();
    let err = c.ws_text(10, "2").unwrap_err();
    assert_eq!(err, Error::PeerMisbehaved(PeerMisbehaved::EioHeartbeatDirection));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);

    let mut c = Client::polling();
    c.get(5).unwrap();
    assert!(c.post(10, b"2").is_err());
    assert_eq!(c.response().as_deref(), Some("1"));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);
}

#[test]
fn duplicate_get_answers_the_first_with_close_and_refuses_the_second() {
    let mut c = Client::polling();
    c.get(10).unwrap();
    assert_eq!(c.get(11), Err(PeerMisbehaved::EioOverlap("overlap from client").into()));
    assert_eq!(c.response().as_deref(), Some("1"));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);
    assert!(matches!(c.get(12), Err(Error::Misuse(_))), "the server answers unknown sid from now on");
}

#[test]
fn aborted_get_and_aborted_or_overlapping_post_close_the_session() {
    let mut c = Client::polling();
    c.get(10).unwrap();
    c.session.handle_poll_aborted(c.at(20)).unwrap();
    assert!(c.session.is_closed());
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);

    let mut c = Client::polling();
    c.session.handle_poll_post_begin(c.at(10)).unwrap();
    c.session.handle_poll_post_aborted(c.at(20));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);

    let mut c = Client::polling();
    c.session.handle_poll_post_begin(c.at(10)).unwrap();
    assert!(matches!(c.session.handle_poll_post_begin(c.at(11)), Err(Error::PeerMisbehaved(_))));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);
    assert_eq!(c.session.handle_poll_post(c.at(12), Bytes::from_static(b"4late")), Ok(()), "first POST ends");
    assert!(c.events().is_empty(), "its body is ignored");
}

#[test]
fn post_close_answers_the_racing_get_with_noop() {
    let mut c = Client::polling();
    c.get(10).unwrap();
    c.post(20, b"1").unwrap();
    assert_eq!(c.response().as_deref(), Some("6"));
    assert_eq!(c.events(), vec![closed(CloseReason::TransportClose)]);
    assert!(c.session.is_closed());
}

#[test]
fn polling_echo_preserves_batching_text_and_binary() {
    let mut c = Client::polling();
    c.post(10, b"4test1\x1e4test2\x1e4test3").unwrap();
    c.echo_messages();
    c.get(20).unwrap();
    assert_eq!(c.response().as_deref(), Some("4test1\x1e4test2\x1e4test3"));

    c.post(30, b"4hello\x1ebAQIDBA==").unwrap();
    let events = c.events();
    assert_eq!(
        events,
        vec![
            EioEvent::Message(InMessage::Text(Bytes::from_static(b"hello"))),
            EioEvent::Message(InMessage::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
        ]
    );
    for event in events {
        let EioEvent::Message(message) = event else { unreachable!() };
        let packet = match message {
            InMessage::Text(t) => OutPacket::text([&b"4"[..], &t].concat().into()),
            InMessage::Binary(b) => OutPacket::binary(b),
        };
        c.session.send(packet);
    }
    c.get(40).unwrap();
    assert_eq!(c.response().as_deref(), Some("4hello\x1ebAQIDBA=="));
}

#[test]
fn text_messages_share_the_post_body() {
    let mut c = Client::polling();
    let body = Bytes::from(b"4abc\x1e4def".to_vec());
    c.session.handle_poll_post_begin(c.at(1)).unwrap();
    c.session.handle_poll_post(c.at(1), body.clone()).unwrap();
    let Some(EioEvent::Message(InMessage::Text(first))) = c.session.poll_event() else { panic!() };
    assert_eq!(first.as_ptr(), body[1..].as_ptr(), "zero-copy slice of the body");
}

#[test]
fn invalid_packets_close_with_parse_error_after_delivering_the_valid_ones() {
    let mut c = Client::polling();
    c.get(5).unwrap();
    let err = c.post(10, b"4a\x1eabc\x1e4b").unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved(PeerMisbehaved::EioParse(_))));
    assert_eq!(
        c.events(),
        vec![EioEvent::Message(InMessage::Text(Bytes::from_static(b"a"))), closed(CloseReason::ParseError)]
    );
    assert_eq!(c.response().as_deref(), Some("1"));

    let mut c = Client::polling();
    assert!(c.post(10, b"").is_err(), "an empty body is a parse error");

    let mut c = Client::websocket();
    assert!(c.ws_text(10, "abc").is_err());
    assert_eq!(c.events(), vec![closed(CloseReason::ParseError)]);
}

#[test]
fn websocket_messages_close_packet_and_size_limit() {
    let mut c = Client::websocket();
    c.ws_text(1, "4hi").unwrap();
    c.session.handle_ws_binary(c.at(2), Bytes::from_static(&[0, 1, 2])).unwrap();
    c.ws_text(3, "bAQIDBA==").unwrap();
    c.ws_text(4, "6").unwrap();
    assert_eq!(
        c.events(),
        vec![
            EioEvent::Message(InMessage::Text(Bytes::from_static(b"hi"))),
            EioEvent::Message(InMessage::Binary(Bytes::from_static(&[0, 1, 2]))),
            EioEvent::Message(InMessage::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
        ]
    );
    c.ws_text(5, "1").unwrap();
    assert_eq!(c.events(), vec![closed(CloseReason::TransportClose)]);

    let mut c = Client::new(Transport::WebSocket, EioConfig { max_payload: 4, ..suite_config() });
    let err = c.ws_text(1, "4hello").unwrap_err();
    assert_eq!(err, Error::LimitExceeded(Limit::EioPayloadSize { max: 4 }));
    assert_eq!(err.ws_close_code(), 1009);
    assert_eq!(c.events(), vec![closed(CloseReason::TransportError)]);
    assert!(c.ws_sent().is_empty(), "a peer-caused close drops the queue");
}

#[test]
fn full_upgrade_moves_the_queue_to_the_websocket_exactly_once_in_order() {
    let mut c = Client::polling();
    c.session.handle_upgrade_request(c.at(10)).unwrap();
    assert!(c.session.is_upgrading());
    assert!(matches!(c.session.handle_upgrade_request(c.at(11)), Err(Error::PeerMisbehaved(_))));

    c.get(12).unwrap();
    assert_eq!(c.response(), None, "no noop before the probe");
    c.session.handle_candidate_text(c.at(20), b"2probe").unwrap();
    assert_eq!(
        c.session.poll_candidate_transmit().map(|p| p.packet().clone()),
        Some(Bytes::from_static(b"3probe"))
    );
    assert_eq!(c.session.poll_candidate_transmit(), None);
    assert_eq!(c.response().as_deref(), Some("6"), "the pending GET ends with a noop");
    c.get(30).unwrap();
    assert_eq!(c.response().as_deref(), Some("6"), "a GET issued after 3probe returns exactly 6");

    // A packet queued while a GET is pending leaves on that GET; later ones wait for the switch.
    c.get(31).unwrap();
    c.session.send(text("4a"));
    assert_eq!(c.response().as_deref(), Some("4a"));
    c.session.send(text("4b"));
    c.session.send(OutPacket::binary(Bytes::from_static(&[9])));
    c.session.send(text("4c"));
    assert!(c.ws_sent().is_empty(), "nothing on the WebSocket before 5");

    c.session.handle_candidate_text(c.at(40), b"5").unwrap();
    assert_eq!(c.events(), vec![EioEvent::Upgraded]);
    assert!(c.session.is_upgraded() && !c.session.is_upgrading());
    assert_eq!(c.session.transport(), Transport::WebSocket, "polling now gets 400 TRANSPORT_MISMATCH");
    let sent: Vec<OutPacket> = std::iter::from_fn(|| c.session.poll_ws_transmit()).collect();
    assert_eq!(sent, vec![text("4b"), OutPacket::binary(Bytes::from_static(&[9])), text("4c")]);
    assert_eq!(c.session.queued_bytes(), 0);

    assert!(matches!(c.get(50), Err(Error::Misuse(_))));
    assert!(matches!(c.session.handle_upgrade_request(c.at(51)), Err(Error::PeerMisbehaved(_))));
    c.ws_text(60, "4hello").unwrap();
    c.echo_messages();
    assert_eq!(c.ws_sent(), ["4hello"]);
    c.tick(300);
    assert_eq!(c.ws_sent(), ["2"], "the heartbeat carries on over the WebSocket");
}

#[test]
fn probe_and_upgrade_fed_together_still_send_3probe_first() {
    let mut c = Client::polling();
    c.session.send(text("4queued"));
    c.session.handle_upgrade_request(c.at(1)).unwrap();
    c.session.handle_candidate_text(c.at(2), b"2probe").unwrap();
    c.session.handle_candidate_text(c.at(2), b"5").unwrap();
    assert_eq!(c.ws_sent(), ["3probe", "4queued"]);
}

#[test]
fn a_get_pending_at_the_switch_ends_with_noop() {
    let mut c = Client::polling();
    c.session.handle_upgrade_request(c.at(1)).unwrap();
    c.get(2).unwrap();
    c.session.handle_candidate_text(c.at(3), b"5").unwrap();
    c.session.send(text("4x"));
    assert_eq!(c.response().as_deref(), Some("6"));
    assert_eq!(c.ws_sent(), ["4x"]);
}

#[test]
fn wrong_packet_or_timeout_aborts_the_upgrade_and_polling_carries_on() {
    let mut c = Client::polling();
    c.session.handle_upgrade_request(c.at(1)).unwrap();
    c.session.handle_candidate_text(c.at(2), b"2probe").unwrap();
    let err = c.session.handle_candidate_text(c.at(3), b"4hello").unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved(PeerMisbehaved::EioUpgrade(_))));
    assert_eq!(c.events(), vec![EioEvent::UpgradeAborted]);
    assert!(!c.session.is_upgrading() && !c.session.is_closed());
    assert_eq!(c.session.transport(), Transport::Polling);
    c.session.send(text("4still polling"));
    c.get(4).unwrap();
    assert_eq!(c.response().as_deref(), Some("4still polling"));

    let config = EioConfig { upgrade_timeout: ms(10_000), ..EioConfig::default() };
    let mut c = Client::new(Transport::Polling, config);
    c.session.handle_upgrade_request(c.at(0)).unwrap();
    assert_eq!(c.session.poll_timeout(), Some(c.at(10_000)));
    c.tick(9_999);
    assert!(c.session.is_upgrading());
    c.tick(10_000);
    assert_eq!(c.events(), vec![EioEvent::UpgradeAborted]);
    assert!(!c.session.is_upgrading());
    c.session.handle_upgrade_request(c.at(10_001)).unwrap();
}

#[test]
fn server_close_with_and_without_a_pending_get() {
    let mut c = Client::polling();
    c.get(10).unwrap();
    c.session.close(c.at(20), CloseReason::ForcedClose);
    assert_eq!(c.response().as_deref(), Some("1"));
    assert_eq!(c.events(), vec![closed(CloseReason::ForcedClose)]);

    let mut c = Client::polling();
    c.session.close(c.at(20), CloseReason::ForcedClose);
    assert!(!c.session.is_closed() && c.events().is_empty(), "waiting for a GET to carry the close");
    assert!(!c.session.send(text("4too late")));
    c.get(30).unwrap();
    assert_eq!(c.response().as_deref(), Some("6\x1e1"));
    assert_eq!(c.events(), vec![closed(CloseReason::ForcedClose)]);

    let mut c = Client::polling();
    c.session.send(text("4last"));
    c.session.close(c.at(20), CloseReason::ServerShuttingDown);
    c.get(30).unwrap();
    assert_eq!(c.response().as_deref(), Some("4last\x1e1"), "queued packets are flushed first");

    let mut c = Client::polling();
    c.session.close(c.at(0), CloseReason::ForcedClose);
    c.tick(29_999);
    assert!(!c.session.is_closed());
    c.tick(30_000);
    assert_eq!(c.events(), vec![closed(CloseReason::ForcedClose)], "close_timeout without a GET");

    let mut c = Client::polling();
    c.session.close(c.at(0), CloseReason::ForcedClose);
    c.get(100).unwrap();
    c.tick(30_000);
    assert_eq!(c.response().as_deref(), Some("6\x1e1"), "a GET that beat the deadline still gets the close");
}

#[test]
fn server_close_on_websocket_leaves_the_queue_to_drain() {
    let mut c = Client::websocket();
    c.session.send(text("4bye"));
    c.session.close(c.at(5), CloseReason::ForcedClose);
    assert_eq!(c.events(), vec![closed(CloseReason::ForcedClose)]);
    assert_eq!(c.ws_sent(), ["4bye"], "no close packet on WebSocket");
}

#[test]
fn volatile_packets_need_a_writable_transport() {
    let mut c = Client::polling();
    assert!(!c.session.send_volatile(text("4v"), true), "no GET pending: dropped");
    c.get(10).unwrap();
    assert!(c.session.send_volatile(text("4v"), false));
    assert_eq!(c.response().as_deref(), Some("4v"));

    let mut c = Client::websocket();
    assert!(!c.session.send_volatile(text("4v"), false));
    assert!(c.session.send_volatile(text("4w"), true));
    assert_eq!(c.ws_sent(), ["4w"]);
}

#[test]
fn misuse_is_reported_and_leaves_the_session_alone() {
    let mut c = Client::polling();
    assert!(matches!(c.session.handle_poll_post(c.at(1), Bytes::new()), Err(Error::Misuse(_))));
    assert!(matches!(c.ws_text(1, "4x"), Err(Error::Misuse(_))));
    assert!(matches!(c.session.handle_candidate_text(c.at(1), b"2probe"), Err(Error::Misuse(_))));
    assert!(matches!(c.session.handle_poll_aborted(c.at(1)), Err(Error::Misuse(_))));
    assert!(!c.session.is_closed() && c.events().is_empty());
}

#[test]
fn write_through_only_when_open_on_websocket_with_nothing_queued() {
    let mut ws = Client::new(Transport::WebSocket, suite_config());
    assert!(!ws.session.can_write_through(), "the open packet is still queued: it must go first");
    ws.ws_sent();
    assert!(ws.session.can_write_through());
    ws.tick(300);
    assert!(!ws.session.can_write_through(), "a queued ping keeps its place before later messages");
    assert_eq!(ws.ws_sent(), vec!["2"]);
    assert!(ws.session.can_write_through());
    ws.session.close(ws.at(301), CloseReason::ForcedClose);
    assert!(!ws.session.can_write_through(), "nothing is written to a closed session");

    let mut polling = Client::polling();
    assert!(!polling.session.can_write_through(), "polling messages wait for a GET");
    polling.session.handle_upgrade_request(polling.at(1)).unwrap();
    polling.session.handle_candidate_text(polling.at(2), b"2probe").unwrap();
    polling.session.handle_candidate_text(polling.at(3), b"5").unwrap();
    assert!(!polling.session.can_write_through(), "3probe is queued ahead of everything");
    assert_eq!(polling.ws_sent(), vec!["3probe"]);
    assert!(polling.session.can_write_through(), "upgraded and drained");
}
