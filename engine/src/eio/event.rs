//! What a session reports to its driver: transports, inbound messages, and the close reasons the reference
//! server reports (engine.io `socket.ts` `onClose` callers).

use bytes::Bytes;
use std::fmt;

/// The transport a session currently reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling: GET receives a payload, POST sends one.
    Polling,
    /// One WebSocket, one Engine.IO packet per frame.
    WebSocket,
}

impl Transport {
    /// The `transport` query parameter naming this transport.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Why a session closed. [`CloseReason::as_str`] gives the reference's exact string, which Socket.IO passes
/// on as the disconnect reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed: POST `1`, a `1` on WebSocket, or the WebSocket closed.
    TransportClose,
    /// The transport failed: overlapping requests, an aborted GET or POST, a client ping, an oversized
    /// message, a WebSocket protocol error.
    TransportError,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout,
    /// The client sent an invalid Engine.IO packet.
    ParseError,
    /// The server closed the session ([`super::EioSession::close`]).
    ForcedClose,
    /// The server is shutting down.
    ServerShuttingDown,
}

impl CloseReason {
    /// The reference's reason string (`"transport close"`, `"ping timeout"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message from the client, sharing the bytes it arrived in where it can.
///
/// Text is a zero-copy slice of the POST body or WebSocket frame handed to the session; binary from a
/// WebSocket binary frame is that frame's bytes; binary from `b<base64>` is decoded into one new buffer of
/// the decoded size (bounded by `max_payload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InMessage {
    /// The text after the `4` type digit, valid UTF-8 (checked by the payload decoder on polling; the
    /// WebSocket layer must have checked text frames, as RFC 6455 requires).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// Something the session's driver must act on, read with [`super::EioSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioEvent {
    /// A message for the layer above (Socket.IO).
    Message(InMessage),
    /// The upgrade finished: the candidate WebSocket is now the session's transport (feed its frames to
    /// `handle_ws_*`, drain `poll_ws_transmit` into it); polling requests for this sid are now a transport
    /// mismatch (400).
    Upgraded,
    /// The upgrade candidate is no longer wanted (wrong packet, timeout, session closing): close that
    /// WebSocket. The session carries on over polling unless a `Closed` event follows.
    UpgradeAborted,
    /// The session is over. Before dropping it, write what it still gives: `poll_poll_response` answers
    /// a pending GET (`1`, `6`, or the last packets then `1`), `poll_ws_transmit` drains the packets queued
    /// before a server-initiated close; then close the WebSocket, if any. Later requests for this sid get
    /// "unknown sid" from the server's table.
    Closed {
        /// Why, as the reference reports it.
        reason: CloseReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_read_as_the_reference_strings() {
        let all = [
            (CloseReason::TransportClose, "transport close"),
            (CloseReason::TransportError, "transport error"),
            (CloseReason::PingTimeout, "ping timeout"),
            (CloseReason::ParseError, "parse error"),
            (CloseReason::ForcedClose, "forced close"),
            (CloseReason::ServerShuttingDown, "server shutting down"),
        ];
        for (reason, text) in all {
            assert_eq!(reason.to_string(), text);
        }
        assert_eq!(Transport::WebSocket.as_str(), "websocket");
    }
}
