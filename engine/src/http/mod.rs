//! Sans-I/O HTTP/1.1 for Engine.IO: request heads in, responses out.
//!
//! The server drives one connection like this:
//!
//! 1. Feed received bytes to a [`RequestHeadParser`] until it returns [`HeadProgress::Complete`] with a
//!    [`RequestHead`] and how many bytes it consumed; the rest of the buffer is the body (for a POST,
//!    [`RequestHead::content_length`] bytes) or the next pipelined request. On an error, write
//!    [`write_head_error`] and close.
//! 2. Parse the query with [`EngineQuery::parse`]`(head.raw_query())` and classify the request with
//!    [`Endpoint::classify`], passing the session table's answer to "which transport does this sid use?".
//!    The [`Route`] says what to do: handshake, poll, send, upgrade, preflight, or which error to return.
//! 3. Answer with the builders of this module into the connection's `BytesMut`, using a
//!    [`ResponseContext`] built from the head and the [`CorsConfig`].
//!
//! Choices to know:
//! - Bodies are delimited by `Content-Length` only; any `Transfer-Encoding` is refused
//!   ([`PeerMisbehaved::HttpTransferEncoding`](crate::PeerMisbehaved::HttpTransferEncoding), answered
//!   411). Engine.IO clients always send `Content-Length`.
//! - Lines must end in CRLF; a bare LF or CR is a peer error.
//! - HTTP/1.1 requests need exactly one `Host` (as Node's default `requireHostHeader`); HTTP/1.0 is
//!   accepted and defaults to `Connection: close`; WebSocket upgrades need HTTP/1.1.
//!
//! Nothing here does I/O, reads the clock or keeps a session table.

mod cors;
mod head;
mod query;
mod request;
mod response;
mod route;
mod syntax;

pub use cors::{AllowedOrigins, CorsConfig, CorsHeaders};
pub use head::{HeadLimits, HeadProgress, RequestHeadParser};
pub use query::{form_decode, query_pairs, EngineQuery, QueryPairs};
pub use request::{ConnectionMode, Method, RequestHead, Version};
pub use response::{
    head_error_status, websocket_accept, write_empty, write_engine_error, write_head_error, write_polling,
    write_polling_head, write_post_ok, write_preflight, write_switching_protocols, write_upgrade_rejection,
    ResponseContext, Status,
};
pub use route::{selected_websocket_protocol, Endpoint, EngineErrorCode, Route, Transport, UpgradeRejection};

#[cfg(test)]
mod tests;
