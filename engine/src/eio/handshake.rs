//! Session configuration and the open packet that advertises it (reference notes §1.3).

use crate::ids::EngineSid;
use bytes::Bytes;
use std::fmt::Write as _;
use std::time::Duration;

/// Engine.IO session policy. Defaults are engine.io 6.6's (`server.ts` defaults), which is what every
/// Socket.IO client expects unless told otherwise by the open packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EioConfig {
    /// Time from the open packet (and from each pong) to the next server ping. Default 25 s: long enough
    /// that an idle socket costs one tiny packet per half minute, short enough that proxies with a 30–60 s
    /// idle timeout never cut a quiet connection.
    pub ping_interval: Duration,
    /// How long after a ping is queued the client has to answer with a pong before the session closes
    /// with `ping timeout`. Default 20 s: covers a held polling cycle plus a slow mobile round trip. The
    /// client itself gives up after `ping_interval + ping_timeout` without a ping.
    pub ping_timeout: Duration,
    /// Largest payload the client may send, advertised as `maxPayload` (the reference's
    /// `maxHttpBufferSize`). Default 1 000 000 bytes: a POST body or WebSocket message above it is refused
    /// (413 for polling, close code 1009 for WebSocket), which bounds what one peer can make us buffer.
    pub max_payload: usize,
    /// How long a candidate WebSocket may take from its arrival to the `5` (upgrade) packet before it is
    /// dropped and the session stays on polling. Default 10 s.
    pub upgrade_timeout: Duration,
    /// Whether polling sessions advertise and accept the upgrade to WebSocket. Default true: the JS client
    /// probes right after the handshake, and WebSocket is far cheaper per message than long-polling.
    pub allow_upgrades: bool,
    /// How long a polling session closed by the server waits for a last GET to carry the close packet
    /// before it is dropped anyway. Default 30 s (the reference's `closeTimeout`): a client that polls at
    /// all polls within one `ping_interval`, so this only reaps vanished clients.
    pub close_timeout: Duration,
}

impl Default for EioConfig {
    fn default() -> Self {
        EioConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_millis(10_000),
            allow_upgrades: true,
            close_timeout: Duration::from_millis(30_000),
        }
    }
}

/// Builds the open packet `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`
/// with exactly the reference's keys in the reference's order. `offer_websocket` selects
/// `"upgrades":["websocket"]` (a polling session that may upgrade) or `"upgrades":[]`.
///
/// Control path: allocates the packet once per session.
pub fn open_packet(sid: &EngineSid, offer_websocket: bool, config: &EioConfig) -> Bytes {
    let upgrades = if offer_websocket { r#"["websocket"]"# } else { "[]" };
    let mut json = String::with_capacity(128);
    // The sid is URL-safe base64 (no character needs JSON escaping); writing to a String cannot fail.
    let _ = write!(
        json,
        r#"0{{"sid":"{}","upgrades":{},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
        sid.as_str(),
        upgrades,
        config.ping_interval.as_millis(),
        config.ping_timeout.as_millis(),
        config.max_payload,
    );
    Bytes::from(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ShardId;

    #[test]
    fn open_packet_matches_the_spec_example_with_our_sid() {
        let spec = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let sid = EngineSid::new(ShardId(3), [7; 16]);
        let packet = open_packet(&sid, true, &EioConfig::default());
        assert_eq!(std::str::from_utf8(&packet).unwrap(), spec.replace("lv_VI97HAXpY6yYWAAAC", sid.as_str()));
    }

    #[test]
    fn websocket_open_packet_with_test_suite_timings_is_byte_exact() {
        // The conformance suite's 300/200 ms heartbeat; 18 zero bytes encode to 24 `A`s.
        let sid = EngineSid::new(ShardId(0), [0; 16]);
        let config = EioConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..EioConfig::default()
        };
        let packet = open_packet(&sid, false, &config);
        assert_eq!(
            &packet[..],
            br#"0{"sid":"AAAAAAAAAAAAAAAAAAAAAAAA","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
    }
}
