//! Tests of the HTTP layer, split by concern. Every parser test feeds its input whole and one byte at a
//! time and demands the same outcome.

mod classify;
mod parser;
mod responses;

use super::{HeadLimits, HeadProgress, RequestHead, RequestHeadParser};
use crate::Error;

/// How feeding one input to a fresh parser ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A head, and the offset in the input just past it.
    Complete(RequestHead, usize),
    /// The input ran out first.
    Incomplete,
    Failed(Error),
}

/// Feeds `input` in chunks of `chunk` bytes until a head completes, the input ends, or an error.
fn feed(parser: &mut RequestHeadParser, input: &[u8], chunk: usize) -> Outcome {
    let mut offset = 0;
    for piece in input.chunks(chunk) {
        match parser.handle_bytes(piece) {
            Ok(HeadProgress::Incomplete) => offset += piece.len(),
            Ok(HeadProgress::Complete { head, consumed }) => {
                assert!(consumed >= 1 && consumed <= piece.len(), "consumed {consumed} of {}", piece.len());
                return Outcome::Complete(head, offset + consumed);
            }
            Err(error) => return Outcome::Failed(error),
        }
    }
    Outcome::Incomplete
}

/// The outcome of parsing `input` with `limits`, checked identical whole and one byte at a time.
fn parse_with(input: &[u8], limits: HeadLimits) -> Outcome {
    let whole = feed(&mut RequestHeadParser::new(limits), input, input.len().max(1));
    let bytewise = feed(&mut RequestHeadParser::new(limits), input, 1);
    assert_eq!(whole, bytewise, "whole vs byte-at-a-time differ for {:?}", String::from_utf8_lossy(input));
    whole
}

fn parse(input: &[u8]) -> Outcome {
    parse_with(input, HeadLimits::default())
}

/// The head parsed from `input`, which must be exactly one complete head.
fn head(input: &str) -> RequestHead {
    match parse(input.as_bytes()) {
        Outcome::Complete(head, end) => {
            assert_eq!(end, input.len(), "head should end the input");
            head
        }
        other => panic!("expected a head from {input:?}, got {other:?}"),
    }
}

/// The error parsing `input` gives.
fn error(input: &[u8]) -> Error {
    match parse(input) {
        Outcome::Failed(error) => error,
        other => panic!("expected an error from {:?}, got {other:?}", String::from_utf8_lossy(input)),
    }
}

/// A GET head for `target` with extra header lines (each ending in CRLF).
fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: localhost:3000\r\n{extra}\r\n")
}
