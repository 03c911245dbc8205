use super::{error, feed, get, head, parse, parse_with, Outcome};
use crate::error::{Error, Limit, PeerMisbehaved};
use crate::http::{ConnectionMode, HeadLimits, HeadProgress, Method, RequestHeadParser, Version};
use proptest::prelude::*;

/// A polling handshake as engine.io-client in a browser sends it.
const BROWSER_POLL: &str = "GET /socket.io/?EIO=4&transport=polling&t=PbXyz1a HTTP/1.1\r\n\
    Host: localhost:3000\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
    Accept: */*\r\n\
    Origin: http://localhost:8080\r\n\
    Connection: keep-alive\r\n\r\n";

fn malformed(what: &'static str) -> Error {
    PeerMisbehaved::HttpMalformed(what).into()
}

#[test]
fn browser_polling_request_exposes_method_path_query_and_headers() {
    let head = head(BROWSER_POLL);
    assert_eq!(head.method(), Method::Get);
    assert_eq!(head.method_str(), "GET");
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.path(), "/socket.io/");
    assert_eq!(head.raw_query(), "EIO=4&transport=polling&t=PbXyz1a");
    assert_eq!(head.header("ACCEPT"), Some(&b"*/*"[..]));
    assert_eq!(head.header("x-missing"), None);
    assert_eq!(head.origin(), Some(&b"http://localhost:8080"[..]));
    assert!(head.user_agent().is_some_and(|ua| ua.ends_with(b"Firefox/128.0")));
    assert_eq!(head.connection(), ConnectionMode::KeepAlive);
    assert_eq!(head.content_length(), None);
    assert!(!head.upgrade_websocket());
    assert_eq!(head.header_count(), 5);
}

#[test]
fn header_values_lose_surrounding_whitespace_and_repeats_stay_in_order() {
    let head = head(&get("/a", "X-A:\t one two \t\r\nx-a:three\r\nEmpty:\r\n"));
    assert_eq!(head.header("x-a"), Some(&b"one two"[..]));
    assert_eq!(head.headers_named("X-A").collect::<Vec<_>>(), [&b"one two"[..], b"three"]);
    assert_eq!(head.header("empty"), Some(&b""[..]));
    assert_eq!(head.headers().next().map(|(name, _)| name), Some("Host"));
}

#[test]
fn query_and_fragment_split_from_the_path() {
    assert_eq!(head(&get("/p", "")).raw_query(), "");
    let head = head(&get("/p/x?a=1?b#frag", ""));
    assert_eq!((head.path(), head.raw_query()), ("/p/x", "a=1?b"));
    let head = super::head(&get("/p#f?x", ""));
    assert_eq!((head.path(), head.raw_query()), ("/p", ""));
}

#[test]
fn post_body_and_pipelined_request_are_left_for_the_next_layer() {
    let input = "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: h\r\n\
        Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\n40\u{1e}42\
        GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    let bytes = input.as_bytes();
    for chunk in [bytes.len(), 7, 1] {
        let mut parser = RequestHeadParser::new(HeadLimits::default());
        let Outcome::Complete(post, end) = feed(&mut parser, bytes, chunk) else { panic!("no POST head") };
        assert_eq!((post.method(), post.content_length()), (Method::Post, Some(5)));
        assert_eq!(post.content_type(), Some(&b"text/plain;charset=UTF-8"[..]));
        assert_eq!(&bytes[end..end + 5], "40\u{1e}42".as_bytes(), "body must not be consumed");
        let mut parser = RequestHeadParser::new(HeadLimits::default());
        let Outcome::Complete(second, end2) = feed(&mut parser, &bytes[end + 5..], chunk) else { panic!() };
        let Outcome::Complete(third, end3) = feed(&mut parser, &bytes[end + 5 + end2..], chunk) else {
            panic!()
        };
        assert_eq!((second.path(), third.path()), ("/b", "/c"));
        assert_eq!(end + 5 + end2 + end3, bytes.len());
        assert_eq!(parser.buffered(), 0);
    }
}

#[test]
fn two_heads_in_one_call_complete_one_at_a_time() {
    let first = get("/one", "");
    let both = format!("{first}{}", get("/two", ""));
    let mut parser = RequestHeadParser::new(HeadLimits::default());
    let Ok(HeadProgress::Complete { head, consumed }) = parser.handle_bytes(both.as_bytes()) else {
        panic!()
    };
    assert_eq!((head.path(), consumed), ("/one", first.len()));
    let Ok(HeadProgress::Complete { head, .. }) = parser.handle_bytes(&both.as_bytes()[consumed..]) else {
        panic!()
    };
    assert_eq!(head.path(), "/two");
}

#[test]
fn leading_empty_lines_are_skipped() {
    let head = head(&format!("\r\n\r\n{}", get("/x", "")));
    assert_eq!((head.method(), head.path()), (Method::Get, "/x"));
}

#[test]
fn incomplete_head_consumes_everything_and_reports_it_buffered() {
    let mut parser = RequestHeadParser::new(HeadLimits::default());
    assert_eq!(parser.handle_bytes(b"GET / HTTP/1.1\r\nHost: h\r\n\r").unwrap(), HeadProgress::Incomplete);
    assert_eq!(parser.buffered(), 26);
    assert!(matches!(parser.handle_bytes(b"\nNEXT"), Ok(HeadProgress::Complete { consumed: 1, .. })));
    assert_eq!(parser.buffered(), 0);
}

#[test]
fn connection_persistence_follows_version_and_connection_header() {
    let cases = [
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", ConnectionMode::KeepAlive),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", ConnectionMode::Close),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", ConnectionMode::Close),
        ("GET / HTTP/1.0\r\n\r\n", ConnectionMode::Close),
        ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", ConnectionMode::KeepAlive),
    ];
    for (input, expected) in cases {
        assert_eq!(head(input).connection(), expected, "{input:?}");
    }
}

#[test]
fn websocket_upgrade_needs_both_headers_in_any_case_and_list_position() {
    let upgrade = |extra: &str| head(&get("/s", extra)).upgrade_websocket();
    assert!(upgrade("Upgrade: websocket\r\nConnection: Upgrade\r\n"));
    assert!(upgrade("Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"), "Firefox's form");
    assert!(upgrade("Connection: keep-alive\r\nConnection: upgrade\r\nUpgrade: h2c, websocket\r\n"));
    assert!(!upgrade("Upgrade: websocket\r\n"));
    assert!(!upgrade("Connection: Upgrade\r\nUpgrade: h2c\r\n"));
    assert!(!upgrade("Connection: Upgrade-ish\r\nUpgrade: websocket\r\n"));
    let http10 = head("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    assert!(!http10.upgrade_websocket(), "WebSocket needs HTTP/1.1");
}

#[test]
fn websocket_handshake_headers_are_extracted() {
    let head = head(&get(
        "/socket.io/?EIO=4&transport=websocket",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
         Access-Control-Request-Headers: x-token\r\n",
    ));
    assert_eq!(head.sec_websocket_key(), Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]));
    assert_eq!(head.sec_websocket_version(), Some(&b"13"[..]));
    assert_eq!(head.sec_websocket_protocol(), Some(&b"chat, superchat"[..]));
    assert_eq!(head.access_control_request_headers(), Some(&b"x-token"[..]));
}

#[test]
fn content_length_is_digits_and_repeats_must_agree() {
    let length = |value: &str| parse(get("/", &format!("Content-Length: {value}\r\n")).as_bytes());
    assert!(matches!(length("0"), Outcome::Complete(h, _) if h.content_length() == Some(0)));
    assert!(matches!(length("1000000"), Outcome::Complete(h, _) if h.content_length() == Some(1_000_000)));
    assert!(matches!(length("7, 7"), Outcome::Complete(h, _) if h.content_length() == Some(7)));
    assert!(
        matches!(length("18446744073709551615"), Outcome::Complete(h, _) if h.content_length() == Some(u64::MAX))
    );
    for bad in ["", "-1", "+1", "1a", "0x10", "1 2", "1,", "18446744073709551616"] {
        assert!(matches!(length(bad), Outcome::Failed(Error::PeerMisbehaved(_))), "{bad:?}");
    }
    assert_eq!(
        error(get("/", "Content-Length: 7, 8\r\n").as_bytes()),
        malformed("conflicting Content-Length values")
    );
    assert_eq!(
        error(get("/", "Content-Length: 7\r\ncontent-length: 8\r\n").as_bytes()),
        malformed("conflicting Content-Length headers")
    );
    assert!(matches!(
        parse(get("/", "Content-Length: 7\r\ncontent-length: 7\r\n").as_bytes()),
        Outcome::Complete(..)
    ));
}

#[test]
fn transfer_encoding_is_refused_whatever_its_value() {
    for value in ["chunked", "gzip, chunked", "identity"] {
        let input = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {value}\r\n\r\n");
        assert_eq!(error(input.as_bytes()), PeerMisbehaved::HttpTransferEncoding.into());
    }
}

#[test]
fn head_size_limit_counts_every_head_byte() {
    let input = get("/", "X-Pad: aaaaaaaaaa\r\n");
    let exact = HeadLimits { max_head_bytes: input.len(), ..HeadLimits::default() };
    assert!(matches!(parse_with(input.as_bytes(), exact), Outcome::Complete(..)));
    let short = HeadLimits { max_head_bytes: input.len() - 1, ..HeadLimits::default() };
    assert_eq!(
        parse_with(input.as_bytes(), short),
        Outcome::Failed(Limit::HttpHeadSize { max: input.len() - 1 }.into())
    );
    let endless = vec![b'a'; 20_000];
    assert_eq!(parse(&endless), Outcome::Failed(Limit::HttpHeadSize { max: 8192 }.into()));
    let blank_lines = "\r\n".repeat(5000);
    assert_eq!(parse(blank_lines.as_bytes()), Outcome::Failed(Limit::HttpHeadSize { max: 8192 }.into()));
}

#[test]
fn header_count_limit() {
    let limits = HeadLimits { max_headers: 3, ..HeadLimits::default() };
    let three = get("/", "A: 1\r\nB: 2\r\n");
    assert!(matches!(parse_with(three.as_bytes(), limits), Outcome::Complete(..)));
    let four = get("/", "A: 1\r\nB: 2\r\nC: 3\r\n");
    assert_eq!(
        parse_with(four.as_bytes(), limits),
        Outcome::Failed(Limit::HttpHeaderCount { max: 3 }.into())
    );
}

#[test]
fn malformed_request_lines_are_peer_errors() {
    let cases: [(&[u8], Error); 9] = [
        (b"GET /\r\n\r\n", malformed("request line is not `METHOD target HTTP/x.y`")),
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", malformed("invalid request target")),
        (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", malformed("invalid HTTP version")),
        (b"GET / http/1.1\r\nHost: h\r\n\r\n", malformed("invalid HTTP version")),
        (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", malformed("invalid method")),
        (b"GET /\x00 HTTP/1.1\r\nHost: h\r\n\r\n", malformed("invalid request target")),
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", malformed("invalid request target")),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", PeerMisbehaved::HttpVersion.into()),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            malformed("request line is not `METHOD target HTTP/x.y`"),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(error(input), expected, "{:?}", String::from_utf8_lossy(input));
    }
    let method = head("PATCH /x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((method.method(), method.method_str()), (Method::Other, "PATCH"));
    assert_eq!(
        head("get / HTTP/1.1\r\nHost: h\r\n\r\n").method(),
        Method::Other,
        "methods are case-sensitive"
    );
}

#[test]
fn malformed_header_lines_are_peer_errors() {
    let cases: [(&str, &'static str); 7] = [
        ("NoColon\r\n", "header line without a colon"),
        ("Bad Name: x\r\n", "invalid header name"),
        ("Host : x\r\n", "invalid header name"),
        (": empty name\r\n", "invalid header name"),
        ("X(y): z\r\n", "invalid header name"),
        (" folded\r\n", "obsolete header line folding"),
        ("X: a\x01b\r\n", "control character in header value"),
    ];
    for (line, what) in cases {
        assert_eq!(error(get("/", line).as_bytes()), malformed(what), "{line:?}");
    }
    assert_eq!(error(b"GET / HTTP/1.1\nHost: h\n\n"), malformed("bare LF in request head"));
    assert_eq!(error(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), malformed("bare CR in request head"));
    assert_eq!(error(b"GET / HTTP/1.1\r\nX: y\r\n\r\n"), malformed("missing Host header"));
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        malformed("more than one Host header")
    );
    let latin1 = head(&get("/", "X-Name: caf\u{e9}\r\n"));
    assert_eq!(latin1.header("x-name"), Some("café".as_bytes()), "obs-text is kept as opaque bytes");
}

/// §1.2 row 2 (Origin with invalid header characters → code 3): refused here, before classification.
#[test]
fn origin_with_control_characters_never_reaches_the_classifier() {
    for origin in ["http://a\x01b", "http://a\x7fb", "http://a\x00"] {
        let input = get("/socket.io/?EIO=4&transport=polling", &format!("Origin: {origin}\r\n"));
        assert_eq!(error(input.as_bytes()), malformed("control character in header value"));
    }
}

#[test]
fn debug_hides_the_query_and_header_values() {
    let head = head(&get("/socket.io/?sid=SECRET", "Cookie: io=SECRET\r\n"));
    let shown = format!("{head:?}");
    assert!(shown.contains("/socket.io/") && !shown.contains("SECRET"), "{shown}");
}

proptest! {
    /// Arbitrary bytes never panic, and any chunking gives the same outcome as one piece.
    #[test]
    fn any_input_in_any_chunks_parses_like_the_whole(input in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..40) {
        let whole = feed(&mut RequestHeadParser::default(), &input, input.len().max(1));
        let chunked = feed(&mut RequestHeadParser::new(HeadLimits::default()), &input, chunk);
        prop_assert_eq!(whole, chunked);
    }

    /// Mutations of a valid request: same property, on inputs that get deep into the parser.
    #[test]
    fn mutated_requests_parse_like_the_whole(at in 0usize..200, byte in any::<u8>(), chunk in 1usize..16) {
        let mut input = BROWSER_POLL.as_bytes().to_vec();
        let at = at % input.len();
        input[at] = byte;
        let whole = feed(&mut RequestHeadParser::default(), &input, input.len());
        let chunked = feed(&mut RequestHeadParser::default(), &input, chunk);
        prop_assert_eq!(whole, chunked);
    }
}
