//! The closing handshake (RFC 6455 §7): which close frame to send, and when the TCP connection may go.

use bytes::BytesMut;

use super::encode::encode_close;
use super::MAX_CLOSE_REASON;
use crate::error::Error;

/// The code to answer a peer's close with: its own code echoed (RFC 6455 §5.5.1), or an empty close
/// when the peer sent none. A code the decoder delivered is always valid to send back.
pub const fn close_reply_code(peer_code: Option<u16>) -> Option<u16> {
    peer_code
}

/// What the connection owner does after the peer's close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCloseOutcome {
    /// Our reply was written to `out`: flush it, then close the TCP connection (the server closes TCP
    /// first, §7.1.1).
    Replied,
    /// We had already sent our close, so the handshake is complete: close the TCP connection now.
    Complete,
}

/// Which close frames each side has sent. One per connection; two bits of state.
///
/// Contract: at most one close frame is ever written per connection, whichever side starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseHandshake {
    sent: bool,
    received: bool,
}

impl CloseHandshake {
    /// An open connection: no close sent or received.
    pub const fn new() -> CloseHandshake {
        CloseHandshake { sent: false, received: false }
    }

    /// Whether we have written our close frame.
    pub const fn close_sent(&self) -> bool {
        self.sent
    }

    /// Whether the peer's close frame has arrived.
    pub const fn close_received(&self) -> bool {
        self.received
    }

    /// Whether both close frames have been exchanged.
    pub const fn is_complete(&self) -> bool {
        self.sent && self.received
    }

    /// Handles the peer's close (a [`WsEvent::Close`](super::WsEvent::Close)): writes the echoed reply
    /// into `out` unless we already sent a close.
    pub fn handle_peer_close(&mut self, peer_code: Option<u16>, out: &mut BytesMut) -> PeerCloseOutcome {
        self.received = true;
        if self.sent {
            return PeerCloseOutcome::Complete;
        }
        // A code from the decoder is sendable; if a caller passes another, reply with an empty close.
        if encode_close(close_reply_code(peer_code), "", out).is_err() {
            let _ = encode_close(None, "", out);
        }
        self.sent = true;
        PeerCloseOutcome::Replied
    }

    /// Starts a normal close (shutdown, policy) with `code` and `reason`. Returns `Ok(false)` without
    /// writing if a close was already sent; `Err(Misuse)` for an unsendable code or a reason over 123
    /// bytes. Afterwards wait (with a timeout) for the peer's close before closing TCP.
    pub fn start_close(&mut self, code: u16, reason: &str, out: &mut BytesMut) -> Result<bool, Error> {
        if self.sent {
            return Ok(false);
        }
        encode_close(Some(code), reason, out)?;
        self.sent = true;
        Ok(true)
    }

    /// Fails the connection because of `error` (§7.1.7): writes a close with [`Error::ws_close_code`]
    /// and, for a peer's fault, the error text cut to 123 bytes as the reason (an engine bug is not
    /// described to the peer). Returns false without writing if a close was already sent. Afterwards
    /// flush and close TCP without waiting for the peer. Control path: formats the error once.
    pub fn start_error_close(&mut self, error: &Error, out: &mut BytesMut) -> bool {
        if self.sent {
            return false;
        }
        let text = if error.is_peer_fault() { error.to_string() } else { String::new() };
        let reason = cut_at_char_boundary(&text, MAX_CLOSE_REASON);
        if encode_close(Some(error.ws_close_code()), reason, out).is_err() {
            let _ = encode_close(None, "", out);
        }
        self.sent = true;
        true
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Limit, PeerMisbehaved};
    use crate::ws::{FrameDecoder, WsEvent};

    /// What a client would decode from the frames the server wrote (masked with a zero key).
    fn as_client_sees(server_frames: &[u8]) -> (Option<u16>, String) {
        let mut masked = Vec::new();
        let (header, payload) = server_frames.split_at(2);
        masked.extend_from_slice(&[header[0], header[1] | 0x80, 0, 0, 0, 0]);
        masked.extend_from_slice(payload);
        let mut decoder = FrameDecoder::new(1024);
        let mut seen = None;
        decoder
            .handle_bytes(&mut masked, |event| {
                if let WsEvent::Close { code, reason } = event {
                    seen = Some((code, reason.to_owned()));
                }
                Ok(())
            })
            .unwrap();
        seen.expect("a close frame")
    }

    #[test]
    fn peer_close_is_echoed_once_and_then_the_handshake_is_complete() {
        let mut handshake = CloseHandshake::new();
        let mut out = BytesMut::new();
        assert_eq!(handshake.handle_peer_close(Some(4001), &mut out), PeerCloseOutcome::Replied);
        assert_eq!(as_client_sees(&out), (Some(4001), String::new()));
        assert!(handshake.is_complete());
        assert_eq!(handshake.handle_peer_close(Some(4001), &mut out), PeerCloseOutcome::Complete);
        assert_eq!(out.len(), 4, "no second close frame");
    }

    #[test]
    fn empty_peer_close_gets_an_empty_close() {
        let mut out = BytesMut::new();
        CloseHandshake::new().handle_peer_close(None, &mut out);
        assert_eq!(out[..], [0x88, 0x00]);
    }

    #[test]
    fn after_our_close_the_peers_close_completes_without_a_reply() {
        let mut handshake = CloseHandshake::new();
        let mut out = BytesMut::new();
        assert!(handshake.start_close(1001, "going away", &mut out).unwrap());
        assert!(!handshake.start_close(1000, "", &mut out).unwrap());
        assert!(!handshake.is_complete());
        let written = out.len();
        assert_eq!(handshake.handle_peer_close(Some(1001), &mut out), PeerCloseOutcome::Complete);
        assert_eq!(out.len(), written);
        assert!(handshake.is_complete());
    }

    #[test]
    fn error_close_carries_the_errors_code_and_a_bounded_reason() {
        let mut out = BytesMut::new();
        let too_big = Error::from(Limit::WsMessageSize { max: 1_000_000 });
        assert!(CloseHandshake::new().start_error_close(&too_big, &mut out));
        let (code, reason) = as_client_sees(&out);
        assert_eq!(code, Some(1009));
        assert!(reason.contains("1000000"), "{reason}");

        let mut out = BytesMut::new();
        CloseHandshake::new().start_error_close(&PeerMisbehaved::WsInvalidUtf8.into(), &mut out);
        assert_eq!(as_client_sees(&out).0, Some(1007));

        let mut out = BytesMut::new();
        CloseHandshake::new().start_error_close(&Error::Misuse("stale id"), &mut out);
        assert_eq!(as_client_sees(&out), (Some(1011), String::new()));
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        let text = "é".repeat(100); // 200 bytes
        let cut = cut_at_char_boundary(&text, MAX_CLOSE_REASON);
        assert_eq!(cut.len(), 122);
        assert_eq!(cut_at_char_boundary("short", MAX_CLOSE_REASON), "short");
    }
}
