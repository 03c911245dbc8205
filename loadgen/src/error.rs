//! The load generator library's one error type.
//!
//! Contract: bytes that came from the server under test (a message token inside a payload) fail with
//! [`Error::BadToken`], never a panic; files and worker messages fail with [`Error::Histogram`],
//! [`Error::Hlog`], [`Error::BadFile`], [`Error::Json`] or [`Error::Io`]; [`Error::Misuse`] is a bug in the scenario code
//! that drives this library (an index out of range) and never comes from network bytes.
//!
//! A run against a server fails with one of the run variants, each a one-line sentence for the user
//! that says who is at fault: [`Error::Usage`] (flags, URL, config file), [`Error::Connect`] (nothing
//! listens or the network refuses), [`Error::Refused`] (the server answered but turned the handshake
//! down), [`Error::Dropped`] (the server closed a connection mid-run), [`Error::Protocol`] (the
//! server broke the protocol), [`Error::Timeout`] (a phase missed its deadline), [`Error::Worker`]
//! (a worker process failed or vanished).

use std::fmt;

/// What went wrong while measuring or reporting.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A message token (publisher, sequence, scheduled time) did not decode; the text says why.
    BadToken(&'static str),
    /// A serialized HdrHistogram could not be encoded or decoded.
    Histogram(String),
    /// An HdrHistogram interval log could not be parsed at this byte offset.
    Hlog {
        /// Byte offset in the log where the unparsable line starts.
        offset: usize,
    },
    /// An input file is not a JSON summary line or interval log this version reads; the text says why.
    BadFile(String),
    /// A JSON summary line could not be parsed or written.
    Json(serde_json::Error),
    /// Reading or writing a file failed.
    Io(std::io::Error),
    /// The scenario code called this library wrongly (index out of range, unknown handle).
    Misuse(&'static str),
    /// A flag, the URL or a config file is wrong; the text says which and why.
    Usage(String),
    /// A TCP connection to the server could not be made (refused, unreachable, out of ports).
    Connect(String),
    /// The server answered but refused: an error status to the WebSocket upgrade or the polling
    /// handshake, or a Socket.IO CONNECT_ERROR.
    Refused(String),
    /// The server closed a connection that the run still needed.
    Dropped(String),
    /// The server sent something the protocol does not allow.
    Protocol(String),
    /// A phase of the run did not finish by its deadline.
    Timeout(String),
    /// A worker process failed, exited early or sent something unreadable.
    Worker(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadToken(why) => write!(f, "bad message token: {why}"),
            Error::Histogram(why) => write!(f, "bad serialized histogram: {why}"),
            Error::Hlog { offset } => write!(f, "bad HdrHistogram interval log line at byte {offset}"),
            Error::BadFile(why) => write!(f, "unreadable input: {why}"),
            Error::Json(e) => write!(f, "bad JSON summary line: {e}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Misuse(why) => write!(f, "load generator misuse: {why}"),
            Error::Usage(why) => f.write_str(why),
            Error::Connect(why) => write!(f, "cannot connect: {why}"),
            Error::Refused(why) => write!(f, "server refused: {why}"),
            Error::Dropped(why) => write!(f, "server dropped a connection: {why}"),
            Error::Protocol(why) => write!(f, "server broke the protocol: {why}"),
            Error::Timeout(why) => write!(f, "timed out: {why}"),
            Error::Worker(why) => write!(f, "worker process failed: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Json(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}
