//! Engine.IO v4, sans-I/O: packets, polling payloads and the session state machine (reference notes §1).
//!
//! Nothing here reads a socket or the clock. The server parses HTTP and WebSocket framing, then feeds the
//! session Engine.IO packets and payload bodies plus `now`, and writes what the session hands back.
//!
//! # Pieces
//! - [`packet`]: [`PacketType`], [`Packet`] — decode a WebSocket text/binary frame or one payload record
//!   (borrowing, no allocation); encode text packets.
//! - [`payload`]: [`PayloadDecoder`] over a **complete** POST body (the HTTP layer collects it up to
//!   `max_payload` and answers 413 beyond, never involving the session); [`encode_payload`] for GET bodies.
//! - [`outbound`]: [`OutPacket`], a packet as shared [`Bytes`] plus an optional pre-built WebSocket frame.
//! - [`handshake`]: [`EioConfig`] and the open packet JSON.
//! - [`session`]: [`EioSession`]; [`event`]: what it reports ([`EioEvent`], [`CloseReason`], ...).
//!
//! # Calling order
//! Like quinn-proto: feed input with `handle_*`, then drain output with `poll_*` before waiting again.
//!
//! 1. Create with [`EioSession::new`]`(sid, transport, config, now)`; the open packet is queued first.
//! 2. On input, call the matching `handle_*` with `now`:
//!    - polling: `handle_poll_get` (every GET, the handshake GET included), `handle_poll_post_begin` when a
//!      POST head arrives then `handle_poll_post` with its complete body, `handle_poll_aborted` /
//!      `handle_poll_post_aborted` when such a connection closes early;
//!    - WebSocket: `handle_ws_text` / `handle_ws_binary` per complete message, `handle_ws_closed`;
//!    - upgrade: `handle_upgrade_request` when a WebSocket names a polling sid, then
//!      `handle_candidate_text` / `handle_candidate_binary` / `handle_candidate_closed` for its frames;
//!    - the Socket.IO layer: `send`, `send_volatile`, `close`;
//!    - time: `handle_timeout(now)` whenever `poll_timeout()` has passed.
//! 3. Then drain, in this order: `poll_event` (messages may lead to `send`s), `poll_poll_response` (the
//!    pending GET's body), `poll_ws_transmit` (packets to frame on the WebSocket),
//!    `poll_candidate_transmit` (`3probe` for an upgrade candidate), and re-arm the timer from
//!    `poll_timeout`. Handling a whole POST before draining is what keeps polling echoes batched.
//!
//! # Errors
//! `Err(PeerMisbehaved | LimitExceeded)` from a `handle_*` means the connection the input came on must
//! be refused or closed (HTTP 400, or WebSocket close with [`crate::Error::ws_close_code`]). If that
//! connection carried the session (not an upgrade candidate, not a refused upgrade, not an oversized POST)
//! the session is closed too and a `Closed` event is queued. `Err(Misuse)` is a bug in the driver; the
//! session is unchanged. A normal close is never an error: it is the `Closed` event.
//!
//! # Which call is valid when
//! | State | valid inputs | misuse |
//! |---|---|---|
//! | open, polling | `handle_poll_*`, `handle_upgrade_request`, `handle_candidate_*` (with a candidate), `send*`, `close`, `handle_timeout` | `handle_ws_text/binary/closed` |
//! | open, WebSocket (direct or upgraded) | `handle_ws_*`, `send*`, `close`, `handle_timeout`; `handle_poll_aborted` for a GET left from before the upgrade | `handle_poll_get`, `handle_poll_post_begin` (answer 400 transport mismatch yourself) |
//! | closing (server closed a polling session, waiting for a GET) | `handle_poll_get` (gets `6\x1e1`), POSTs (ignored), `handle_timeout` | as open polling; `send` drops |
//! | closed | every `poll_*`; aborted/closed notifications (no-ops) | `handle_poll_get`, `handle_poll_post_begin`, `handle_ws_text/binary`, `handle_candidate_*` |
//!
//! `handle_upgrade_request` is never misuse: a WebSocket for a session that cannot take one is refused
//! with `EioUpgrade` (close it), and the session is unaffected.

pub mod event;
pub mod handshake;
pub mod outbound;
pub mod packet;
pub mod payload;
pub mod session;

#[cfg(test)]
mod session_tests;

pub use event::{CloseReason, EioEvent, InMessage, Transport};
pub use handshake::{open_packet, EioConfig};
pub use outbound::OutPacket;
pub use packet::{Packet, PacketData, PacketType};
pub use payload::{encode_payload, PayloadDecoder, RECORD_SEPARATOR};
pub use session::EioSession;

/// Re-exported so drivers (and the fuzz crate) use the same `Bytes` the session API takes.
pub use bytes::{Bytes, BytesMut};
