//! The engine's one error type, split by who is at fault.
//!
//! Contract: every error a peer can cause is [`Error::PeerMisbehaved`] or [`Error::LimitExceeded`]; it
//! closes that peer only, with the WebSocket close code / Socket.IO disconnect reason that
//! [`Error::ws_close_code`] and [`Error::disconnect_reason`] give. [`Error::Misuse`] is a bug in the program
//! that drives the engine (a stale id, a call in the wrong state) and never comes from network bytes.
//! A normal close is an event, not an error.

/// What went wrong, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that break the protocol.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(PeerMisbehaved),
    /// The peer went past a configured limit (sizes, counts).
    #[error("peer exceeded a limit: {0}")]
    LimitExceeded(Limit),
    /// The program driving the engine called it wrongly (stale id, wrong state). Never caused by a peer.
    #[error("engine misuse: {0}")]
    Misuse(&'static str),
}

/// Protocol violations by the peer, grouped by layer. The text is what a log line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    // --- HTTP/1.1 request head
    #[error("malformed HTTP request head: {0}")]
    HttpMalformed(&'static str),
    #[error("unsupported HTTP version")]
    HttpVersion,
    // --- WebSocket (RFC 6455)
    #[error("WebSocket protocol error: {0}")]
    WsProtocol(&'static str),
    #[error("WebSocket frame from client is not masked")]
    WsUnmasked,
    #[error("WebSocket text message is not valid UTF-8")]
    WsInvalidUtf8,
    // --- Engine.IO
    #[error("Engine.IO parse error: {0}")]
    EioParse(&'static str),
    #[error("Engine.IO heartbeat in the wrong direction")]
    EioHeartbeatDirection,
    #[error("Engine.IO request overlaps a pending one: {0}")]
    EioOverlap(&'static str),
    #[error("Engine.IO upgrade aborted: {0}")]
    EioUpgrade(&'static str),
    // --- Socket.IO
    #[error("Socket.IO parse error: {0}")]
    SioParse(&'static str),
    #[error("Socket.IO packet for a namespace the client has not joined")]
    SioNotConnected,
    #[error("Socket.IO CONNECT for a namespace already joined")]
    SioDuplicateConnect,
    #[error("Socket.IO CONNECT_ERROR sent by a client")]
    SioClientConnectError,
    // --- HTTP/1.1 request head (appended)
    #[error("HTTP Transfer-Encoding is not supported; bodies need Content-Length")]
    HttpTransferEncoding,
    // --- WebSocket, client role (appended)
    #[error("WebSocket frame from server is masked")]
    WsMasked,
    // --- Cluster adapter messages (another server, or an emitter, published them on Redis)
    #[error("malformed cluster adapter message: {0}")]
    ClusterParse(&'static str),
}

/// Limits a peer can exceed; each is a configuration field with a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    #[error("HTTP request head larger than {max} bytes")]
    HttpHeadSize { max: usize },
    #[error("more than {max} HTTP headers")]
    HttpHeaderCount { max: usize },
    #[error("HTTP body larger than {max} bytes")]
    HttpBodySize { max: usize },
    #[error("WebSocket message larger than {max} bytes")]
    WsMessageSize { max: usize },
    #[error("more than {max} Socket.IO binary attachments")]
    SioAttachments { max: usize },
    #[error("Engine.IO payload larger than {max} bytes")]
    EioPayloadSize { max: usize },
    #[error("Socket.IO JSON payload nested deeper than {max} levels")]
    SioJsonDepth { max: usize },
    #[error("Socket.IO binary packet buffers more than {max} bytes")]
    SioAttachmentBytes { max: usize },
    #[error("cluster adapter message nested deeper than {max} levels")]
    ClusterDepth { max: usize },
}

impl Error {
    /// Whether a peer caused this error (and so only that peer is closed).
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Error::PeerMisbehaved(_) | Error::LimitExceeded(_))
    }

    /// The WebSocket close code the peer sees when this error closes its connection.
    pub fn ws_close_code(&self) -> u16 {
        match self {
            Error::PeerMisbehaved(PeerMisbehaved::WsInvalidUtf8) => 1007,
            Error::PeerMisbehaved(
                PeerMisbehaved::WsProtocol(_)
                | PeerMisbehaved::WsUnmasked
                | PeerMisbehaved::WsMasked
                | PeerMisbehaved::HttpMalformed(_)
                | PeerMisbehaved::HttpVersion
                | PeerMisbehaved::HttpTransferEncoding,
            ) => 1002,
            Error::PeerMisbehaved(_) => 1008,
            Error::LimitExceeded(
                Limit::WsMessageSize { .. } | Limit::EioPayloadSize { .. } | Limit::SioAttachmentBytes { .. },
            ) => 1009,
            Error::LimitExceeded(_) => 1008,
            Error::Misuse(_) => 1011,
        }
    }

    /// The Socket.IO disconnect reason server-side handlers see (socket.io `socket-types.ts`).
    pub fn disconnect_reason(&self) -> &'static str {
        match self {
            Error::PeerMisbehaved(PeerMisbehaved::SioParse(_) | PeerMisbehaved::EioParse(_)) => "parse error",
            Error::PeerMisbehaved(
                PeerMisbehaved::SioNotConnected
                | PeerMisbehaved::SioDuplicateConnect
                | PeerMisbehaved::SioClientConnectError,
            ) => "forced server close",
            Error::PeerMisbehaved(_) | Error::LimitExceeded(_) => "transport error",
            Error::Misuse(_) => "forced server close",
        }
    }
}

impl From<PeerMisbehaved> for Error {
    fn from(e: PeerMisbehaved) -> Self {
        Error::PeerMisbehaved(e)
    }
}

impl From<Limit> for Error {
    fn from(e: Limit) -> Self {
        Error::LimitExceeded(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_websocket_message_closes_with_1009() {
        assert_eq!(Error::from(Limit::WsMessageSize { max: 10 }).ws_close_code(), 1009);
    }

    #[test]
    fn invalid_utf8_closes_with_1007_and_misuse_is_not_the_peers_fault() {
        assert_eq!(Error::from(PeerMisbehaved::WsInvalidUtf8).ws_close_code(), 1007);
        assert!(!Error::Misuse("stale id").is_peer_fault());
        assert!(Error::from(PeerMisbehaved::SioParse("x")).is_peer_fault());
    }

    #[test]
    fn socketio_parse_errors_read_as_parse_error_to_handlers() {
        assert_eq!(Error::from(PeerMisbehaved::SioParse("bad")).disconnect_reason(), "parse error");
        assert_eq!(Error::from(PeerMisbehaved::SioNotConnected).disconnect_reason(), "forced server close");
    }
}
