#![no_main]
//! HTTP request heads: the parser fed in chunks (sizes from the first input byte) must agree with the
//! parser fed the whole input, never panic, and every head it yields must survive query parsing,
//! classification and every response builder.
//!
//! Input layout: byte 0 picks the chunk size (1..=64), the rest is the connection's byte stream. Complete
//! heads are followed by their `Content-Length` body (skipped, capped) and the next pipelined head.

use libfuzzer_sys::fuzz_target;
use roomcast_engine::http::{
    query_pairs, selected_websocket_protocol, write_empty, write_engine_error, write_head_error,
    write_polling, write_post_ok, write_preflight, write_switching_protocols, write_upgrade_rejection,
    AllowedOrigins, CorsConfig, Endpoint, EngineQuery, HeadLimits, HeadProgress, RequestHead,
    RequestHeadParser, ResponseContext, Route, Status, Transport,
};
use roomcast_engine::Error;

/// What feeding one stream produced, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Head(RequestHead, usize),
    Failed(Error),
}

/// Feeds `stream` in pieces of `chunk` bytes; after each head, skips its body and parses the next one.
fn run(stream: &[u8], chunk: usize, limits: HeadLimits) -> Vec<Event> {
    let mut parser = RequestHeadParser::new(limits);
    let mut events = Vec::new();
    let mut offset = 0;
    while offset < stream.len() {
        let end = (offset + chunk).min(stream.len());
        match parser.handle_bytes(&stream[offset..end]) {
            Ok(HeadProgress::Incomplete) => offset = end,
            Ok(HeadProgress::Complete { head, consumed }) => {
                assert!(consumed >= 1 && offset + consumed <= end);
                offset += consumed;
                let body = head.content_length().unwrap_or(0).min(4096) as usize;
                offset = (offset + body).min(stream.len());
                events.push(Event::Head(head, offset));
            }
            Err(error) => {
                assert!(error.is_peer_fault());
                events.push(Event::Failed(error));
                break;
            }
        }
    }
    events
}

fn exercise(head: &RequestHead) {
    let query = EngineQuery::parse(head.raw_query());
    for (name, value) in query_pairs(head.raw_query()) {
        assert!(name.len() + value.len() <= head.raw_query().len() * 3);
    }
    let endpoint = Endpoint::new("/socket.io").with_cors(head.header_count() % 2 == 0);
    let session =
        |_| Some(if head.header_count() % 3 == 0 { Transport::WebSocket } else { Transport::Polling });
    let route = endpoint.classify(head, &query, session, |_| head.path().len() % 5 != 0);

    let cors = CorsConfig {
        origins: AllowedOrigins::List(vec!["http://localhost:8080".to_owned()]),
        credentials: true,
        ..CorsConfig::default()
    };
    let ctx = ResponseContext::for_request(head, &cors);
    // A `BytesMut`, named through inference: this crate does not depend on `bytes` directly.
    let mut out = Default::default();
    match route {
        Route::NotFound => write_empty(&mut out, &ctx, Status::NotFound),
        Route::Preflight => write_preflight(&mut out, &ctx),
        Route::Handshake(_) | Route::Upgrade(_) | Route::UpgradeThenClose if head.upgrade_websocket() => {
            let key = head.sec_websocket_key().unwrap_or_default();
            write_switching_protocols(&mut out, key, selected_websocket_protocol(head), &ctx.cors);
        }
        Route::Handshake(_) | Route::Poll(_) => write_polling(&mut out, &ctx, head.target().as_bytes()),
        Route::Send(_) => write_post_ok(&mut out, &ctx),
        Route::UnsupportedMethod => write_empty(&mut out, &ctx, Status::InternalServerError),
        Route::Reject(code) => write_engine_error(&mut out, &ctx, code, Some(head.path())),
        Route::RejectUpgrade(rejection) => write_upgrade_rejection(&mut out, rejection),
        Route::Upgrade(_) | Route::UpgradeThenClose => panic!("upgrade route without upgrade headers"),
    }
    check_response(&out);
}

/// A response head starts with a status line and every line ends in CRLF: reflected request values
/// (origin, subprotocol, requested headers) cannot inject a line.
fn check_response(out: &[u8]) {
    assert!(out.starts_with(b"HTTP/1.1 "));
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("response head ends") + 4;
    let head = &out[..head_end];
    for (i, &byte) in head.iter().enumerate() {
        match byte {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR in response head"),
            b'\n' => assert_eq!(head[i - 1], b'\r', "bare LF in response head"),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let chunk = usize::from(selector % 64) + 1;
    // Small limits now and then, so the limit paths are reached without 8 KiB inputs.
    let limits = if selector >= 192 {
        HeadLimits { max_head_bytes: 256, max_headers: 4 }
    } else {
        HeadLimits::default()
    };
    let chunked = run(stream, chunk, limits);
    let whole = run(stream, stream.len().max(1), limits);
    assert_eq!(chunked, whole, "chunking changed the outcome");
    for event in &chunked {
        match event {
            Event::Head(head, _) => exercise(head),
            Event::Failed(error) => {
                let mut out = Default::default();
                write_head_error(&mut out, error);
                check_response(&out);
                assert!(out.ends_with(b"Connection: close\r\n\r\n"));
            }
        }
    }
});
