//! The response reader, fed every stream whole, one byte at a time and in odd chunks.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    status: u16,
    reason: String,
    keep_alive: bool,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Owned {
    fn from(r: &Response<'_>) -> Owned {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Owned {
            status: r.status,
            reason: r.reason.to_string(),
            keep_alive: r.keep_alive,
            body: r.body.to_vec(),
            headers: r.headers().map(|(n, v)| (text(n), text(v))).collect(),
        }
    }
}

/// Every response in `input` (then the connection closes), reading `sizes` bytes at a time (cycled),
/// and the error that stopped the reader, if any.
fn read(input: &[u8], sizes: &[usize], max_body: usize) -> (Vec<Owned>, Option<ResponseError>) {
    let mut reader = ResponseReader::new(max_body);
    let mut got = Vec::new();
    let mut rest = input;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (mut chunk, tail) = rest.split_at((*size).clamp(1, rest.len()));
        rest = tail;
        while !chunk.is_empty() {
            match reader.handle_bytes(chunk) {
                Ok(Progress::Incomplete) => break,
                Ok(Progress::Complete { response, consumed }) => {
                    assert!((1..=chunk.len()).contains(&consumed), "consumed {consumed} of {}", chunk.len());
                    got.push(Owned::from(&response));
                    chunk = &chunk[consumed..];
                }
                Err(e) => return (got, Some(e)),
            }
        }
    }
    match reader.handle_eof() {
        Ok(Some(response)) => got.push(Owned::from(&response)),
        Ok(None) => {}
        Err(e) => return (got, Some(e)),
    }
    (got, None)
}

/// Whole, byte by byte and in odd chunks must agree.
fn read_every_way(input: &[u8], max_body: usize) -> (Vec<Owned>, Option<ResponseError>) {
    let whole = read(input, &[input.len().max(1)], max_body);
    assert_eq!(read(input, &[1], max_body), whole, "byte by byte disagrees with whole");
    assert_eq!(read(input, &[2, 7, 1, 30], max_body), whole, "odd chunks disagree with whole");
    whole
}

const HANDSHAKE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 31\r\n\
cache-control: no-store\r\nConnection: keep-alive\r\n\r\n0{\"sid\":\"abc\",\"upgrades\":[]}\x1e40";

#[test]
fn a_polling_answer_gives_status_headers_and_body_whole_or_byte_by_byte() {
    let (got, error) = read_every_way(HANDSHAKE, 1 << 20);
    assert_eq!(error, None);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!((r.status, r.reason.as_str(), r.keep_alive), (200, "OK", true));
    assert_eq!(r.body, b"0{\"sid\":\"abc\",\"upgrades\":[]}\x1e40");
    assert_eq!(r.headers[0], ("Content-Type".into(), "text/plain; charset=UTF-8".into()));
    assert_eq!(r.headers.len(), 4);
}

#[test]
fn responses_back_to_back_on_one_connection_come_out_one_at_a_time() {
    let mut input = HANDSHAKE.to_vec();
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok");
    input.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n6");
    let (got, error) = read_every_way(&input, 1 << 20);
    assert_eq!(error, None);
    let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies, [&HANDSHAKE[HANDSHAKE.len() - 31..], b"ok", b"", b"", b"6"]);
    assert_eq!(got[2].status, 204);
}

#[test]
fn keep_alive_follows_the_version_and_the_connection_header() {
    for (head, keep) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0", true),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", false),
        ("HTTP/1.1 400 Bad Request\r\nconnection: Upgrade, CLOSE\r\nContent-Length: 0", false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0", true),
    ] {
        let (got, error) = read_every_way(format!("{head}\r\n\r\n").as_bytes(), 100);
        assert_eq!(error, None, "{head}");
        assert_eq!(got[0].keep_alive, keep, "{head}");
    }
}

#[test]
fn a_body_without_length_ends_with_the_connection() {
    let input = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"code\":3}";
    let (got, error) = read_every_way(input, 100);
    assert_eq!(error, None);
    assert_eq!((got[0].status, got[0].keep_alive), (400, false));
    assert_eq!(got[0].body, b"{\"code\":3}");
    let (_, error) = read_every_way(input, 5);
    assert_eq!(error, Some(ResponseError::BodyTooLong { limit: 5 }));
}

#[test]
fn cut_short_oversized_and_malformed_responses_are_errors() {
    let truncated: [&[u8]; 3] =
        [b"HTTP/1.1 200 OK\r\nContent-Len", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", b"H"];
    for input in truncated {
        assert_eq!(read_every_way(input, 100).1, Some(ResponseError::Truncated), "{input:?}");
    }
    let big = b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n";
    assert_eq!(read_every_way(big, 100).1, Some(ResponseError::BodyTooLong { limit: 100 }));
    let endless = vec![b'a'; MAX_RESPONSE_HEAD + 10];
    assert_eq!(read_every_way(&endless, 100).1, Some(ResponseError::HeadTooLong));
    for input in [
        &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
    ] {
        let (got, error) = read_every_way(input, 100);
        assert!(matches!(error, Some(ResponseError::Malformed(_))), "{input:?}: {got:?} {error:?}");
    }
}

#[test]
fn a_status_without_reason_and_interim_responses_have_no_body() {
    let (got, error) =
        read_every_way(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 304 X\r\n\r\n", 10);
    assert_eq!(error, None);
    assert_eq!((got[0].status, got[0].reason.as_str(), got[0].body.as_slice()), (200, "", &b"ok"[..]));
    assert_eq!((got[1].status, got[1].body.len()), (304, 0));
}

#[test]
fn the_reader_reports_whether_it_is_inside_a_response() {
    let mut reader = ResponseReader::new(100);
    assert!(!reader.is_mid_response());
    assert_eq!(
        reader.handle_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no"),
        Ok(Progress::Incomplete)
    );
    assert!(reader.is_mid_response());
    assert!(matches!(reader.handle_bytes(b"k"), Ok(Progress::Complete { consumed: 1, .. })));
    assert!(!reader.is_mid_response());
    assert_eq!(reader.handle_eof(), Ok(None));
}

proptest::proptest! {
    #[test]
    fn any_bytes_in_any_chunking_give_the_same_responses_or_error_and_never_panic(
        input in proptest::collection::vec(proptest::prop_oneof![
            proptest::num::u8::ANY,
            proptest::strategy::Just(b'\r'),
            proptest::strategy::Just(b'\n'),
        ], 0..300),
        sizes in proptest::collection::vec(1usize..40, 1..6),
    ) {
        let whole = read(&input, &[input.len().max(1)], 64);
        proptest::prop_assert_eq!(read(&input, &sizes, 64), whole);
    }

    #[test]
    fn well_formed_responses_split_anywhere_come_out_whole(
        bodies in proptest::collection::vec("[ -~]{0,50}", 1..5),
        sizes in proptest::collection::vec(1usize..40, 1..6),
    ) {
        let mut input = Vec::new();
        for body in &bodies {
            input.extend(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).bytes());
        }
        let (got, error) = read(&input, &sizes, 64);
        proptest::prop_assert_eq!(error, None);
        let got: Vec<String> = got.iter().map(|r| String::from_utf8(r.body.clone()).unwrap()).collect();
        proptest::prop_assert_eq!(got, bodies);
    }
}
