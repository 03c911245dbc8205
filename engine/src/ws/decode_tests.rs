//! Decoder tests. Every input is decoded whole, one byte at a time and in fixed odd chunkings, and all
//! runs must agree (events and error) before the result is checked.

use super::{FrameDecoder, WsEvent};
use crate::error::{Error, Limit, PeerMisbehaved};

/// An event with its payload copied out, so runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

impl From<WsEvent<'_>> for Owned {
    fn from(event: WsEvent<'_>) -> Owned {
        match event {
            WsEvent::Text(text) => Owned::Text(text.to_owned()),
            WsEvent::Binary(bytes) => Owned::Binary(bytes.to_vec()),
            WsEvent::Ping(bytes) => Owned::Ping(bytes.to_vec()),
            WsEvent::Pong(bytes) => Owned::Pong(bytes.to_vec()),
            WsEvent::Close { code, reason } => Owned::Close(code, reason.to_owned()),
        }
    }
}

/// Events decoded before the run stopped, and the error that stopped it.
pub(super) type Outcome = (Vec<Owned>, Option<Error>);

pub(super) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame. `first` is the first header byte (FIN, RSV and opcode bits).
pub(super) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Feeds `input` to a fresh decoder in chunks whose sizes cycle through `sizes`.
pub(super) fn decode_in_chunks(max_message_size: usize, input: &[u8], sizes: &[usize]) -> Outcome {
    let mut decoder = FrameDecoder::new(max_message_size);
    let mut input = input.to_vec();
    let mut events = Vec::new();
    let mut rest = &mut input[..];
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at_mut((*size).clamp(1, rest.len()));
        rest = tail;
        if let Err(error) = decoder.handle_bytes(chunk, |event| {
            events.push(Owned::from(event));
            Ok(())
        }) {
            return (events, Some(error));
        }
    }
    (events, None)
}

/// Decodes `input` whole, byte by byte and in odd chunkings; asserts they agree and returns the outcome.
pub(super) fn decode_every_way(max_message_size: usize, input: &[u8]) -> Outcome {
    let whole = decode_in_chunks(max_message_size, input, &[input.len().max(1)]);
    for sizes in [&[1][..], &[2], &[3, 1, 4, 1, 5, 9, 2, 6], &[13, 7]] {
        let chunked = decode_in_chunks(max_message_size, input, sizes);
        assert_eq!(chunked, whole, "chunk sizes {sizes:?} disagree with the whole input");
    }
    whole
}

fn events(input: &[u8]) -> Vec<Owned> {
    let (events, error) = decode_every_way(1 << 20, input);
    assert_eq!(error, None);
    events
}

fn close_code_of(input: &[u8], max_message_size: usize) -> u16 {
    let (_, error) = decode_every_way(max_message_size, input);
    error.expect("the input must be rejected").ws_close_code()
}

fn text(first: u8, payload: &str) -> Vec<u8> {
    client_frame(first, payload.as_bytes(), MASK)
}

#[test]
fn rfc6455_masked_hello_decodes_to_text() {
    let hello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(events(&hello), [Owned::Text("Hello".into())]);
    assert_eq!(client_frame(0x81, b"Hello", MASK), hello, "the test helper masks like the RFC");
}

#[test]
fn rfc6455_fragmented_text_ping_and_pong_decode() {
    let mut input = text(0x01, "Hel");
    input.extend(text(0x80, "lo"));
    assert_eq!(events(&input), [Owned::Text("Hello".into())]);
    assert_eq!(events(&text(0x89, "Hello")), [Owned::Ping(b"Hello".to_vec())]);
    // §5.7's masked pong.
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(events(&pong), [Owned::Pong(b"Hello".to_vec())]);
}

#[test]
fn rfc6455_256_byte_and_64_kib_binary_use_the_long_length_forms() {
    let payload: Vec<u8> = (0..=255).collect();
    let frame = client_frame(0x82, &payload, MASK);
    assert_eq!(frame[..4], [0x82, 0xfe, 0x01, 0x00]);
    assert_eq!(events(&frame), [Owned::Binary(payload)]);

    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let frame = client_frame(0x82, &payload, MASK);
    assert_eq!(frame[..10], [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(events(&frame), [Owned::Binary(payload)]);
}

#[test]
fn control_frames_between_fragments_arrive_before_the_message() {
    let mut input = text(0x01, "ab");
    input.extend(text(0x89, "p1"));
    input.extend(text(0x00, "cd"));
    input.extend(text(0x8a, ""));
    input.extend(text(0x80, "ef"));
    input.extend(text(0x82, "next"));
    let expected = [
        Owned::Ping(b"p1".to_vec()),
        Owned::Pong(Vec::new()),
        Owned::Text("abcdef".into()),
        Owned::Binary(b"next".to_vec()),
    ];
    assert_eq!(events(&input), expected);
}

#[test]
fn empty_messages_and_empty_fragments_are_delivered() {
    let mut input = text(0x81, "");
    input.extend(text(0x02, ""));
    input.extend(text(0x00, ""));
    input.extend(text(0x80, ""));
    assert_eq!(events(&input), [Owned::Text(String::new()), Owned::Binary(Vec::new())]);
}

#[test]
fn a_frame_whole_in_the_input_is_delivered_without_copying() {
    let mut input = text(0x81, "40{\"token\":\"abc\"}");
    input.extend(text(0x89, "ping"));
    let range = input.as_ptr_range();
    let mut decoder = FrameDecoder::new(1024);
    let mut borrowed_from_input = Vec::new();
    decoder
        .handle_bytes(&mut input, |event| {
            let payload = match event {
                WsEvent::Text(text) => text.as_bytes(),
                WsEvent::Ping(bytes) => bytes,
                other => panic!("unexpected {other:?}"),
            };
            borrowed_from_input.push(range.contains(&payload.as_ptr()));
            Ok(())
        })
        .unwrap();
    assert_eq!(borrowed_from_input, [true, true]);
}

#[test]
fn decode_reports_progress_one_event_at_a_time() {
    let mut input = text(0x81, "one");
    let first_len = input.len();
    input.extend(text(0x81, "two"));
    input.extend(&text(0x81, "three")[..4]);
    let total = input.len();
    let mut decoder = FrameDecoder::new(1024);
    let first = decoder.decode(&mut input).unwrap();
    assert_eq!((first.consumed, first.event), (first_len, Some(WsEvent::Text("one"))));
    let second = decoder.decode(&mut input[first_len..]).unwrap();
    assert_eq!(second.event, Some(WsEvent::Text("two")));
    let end = first_len + second.consumed;
    let last = decoder.decode(&mut input[end..]).unwrap();
    assert_eq!((last.consumed, last.event), (total - end, None), "a partial frame is carried");
    let mut tail = text(0x81, "three")[4..].to_vec();
    assert_eq!(decoder.decode(&mut tail).unwrap().event, Some(WsEvent::Text("three")));
}

#[test]
fn close_frames_carry_a_valid_code_and_utf8_reason_and_end_decoding() {
    let mut input = client_frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e'], MASK);
    input.extend(text(0x81, "ignored after close"));
    assert_eq!(events(&input), [Owned::Close(Some(1000), "bye".into())]);
    assert_eq!(events(&text(0x88, "")), [Owned::Close(None, String::new())]);
    for code in [1001u16, 1003, 1007, 1011, 3000, 4999] {
        let frame = client_frame(0x88, &code.to_be_bytes(), MASK);
        assert_eq!(events(&frame), [Owned::Close(Some(code), String::new())]);
    }
}

#[test]
fn bad_close_payloads_are_rejected() {
    assert_eq!(close_code_of(&client_frame(0x88, &[0x03], MASK), 1024), 1002);
    for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535] {
        assert_eq!(close_code_of(&client_frame(0x88, &code.to_be_bytes(), MASK), 1024), 1002, "code {code}");
    }
    let bad_reason = client_frame(0x88, &[0x03, 0xe8, 0xc3, 0x28], MASK);
    assert_eq!(close_code_of(&bad_reason, 1024), 1007);
}

#[test]
fn frame_header_violations_close_with_1002() {
    let mut unmasked = vec![0x81, 0x05];
    unmasked.extend(b"Hello");
    let (_, error) = decode_every_way(1024, &unmasked);
    assert_eq!(error, Some(Error::PeerMisbehaved(PeerMisbehaved::WsUnmasked)));
    assert_eq!(close_code_of(&unmasked, 1024), 1002);

    for rsv in [0x40, 0x20, 0x10] {
        assert_eq!(close_code_of(&text(0x81 | rsv, "x"), 1024), 1002, "rsv {rsv:#x}");
    }
    for opcode in [0x3, 0x7, 0xb, 0xf] {
        assert_eq!(close_code_of(&text(0x80 | opcode, "x"), 1024), 1002, "opcode {opcode:#x}");
    }
    assert_eq!(close_code_of(&text(0x09, "fragmented ping"), 1024), 1002);
    assert_eq!(close_code_of(&client_frame(0x89, &[0; 126], MASK), 1024), 1002);
    let top_bit = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
    assert_eq!(close_code_of(&top_bit, usize::MAX), 1002);
}

#[test]
fn fragment_sequence_violations_close_with_1002() {
    assert_eq!(close_code_of(&text(0x80, "orphan"), 1024), 1002);
    let mut interrupted = text(0x01, "first");
    interrupted.extend(text(0x81, "second"));
    assert_eq!(close_code_of(&interrupted, 1024), 1002);
    let mut finished_then_continued = text(0x81, "done");
    finished_then_continued.extend(text(0x80, "more"));
    let (events, error) = decode_every_way(1024, &finished_then_continued);
    assert_eq!(events, [Owned::Text("done".into())]);
    assert_eq!(error.map(|e| e.ws_close_code()), Some(1002));
}

#[test]
fn oversized_messages_are_rejected_from_the_header_before_any_payload() {
    let too_big = Err(Error::LimitExceeded(Limit::WsMessageSize { max: 1000 }));
    // Only the header of a 1001-byte frame: rejected without its payload.
    let header_only = &client_frame(0x82, &[0; 1001], MASK)[..8];
    let mut decoder = FrameDecoder::new(1000);
    assert_eq!(decoder.handle_bytes(&mut header_only.to_vec(), |_| Ok(())), too_big);
    assert_eq!(close_code_of(header_only, 1000), 1009);
    // Fragments that together pass the limit: rejected at the header of the fragment that passes it.
    let mut fragments = client_frame(0x02, &[0; 600], MASK);
    fragments.extend(&client_frame(0x80, &[0; 401], MASK)[..8]);
    let mut decoder = FrameDecoder::new(1000);
    assert_eq!(decoder.handle_bytes(&mut fragments, |_| Ok(())), too_big);
    // Exactly the limit is fine.
    let mut at_limit = client_frame(0x02, &[1; 600], MASK);
    at_limit.extend(client_frame(0x80, &[2; 400], MASK));
    let (events, error) = decode_every_way(1000, &at_limit);
    assert_eq!((events.len(), error), (1, None));
}

#[test]
fn invalid_utf8_closes_with_1007_as_soon_as_it_arrives() {
    assert_eq!(close_code_of(&client_frame(0x81, &[b'a', 0xff, b'b'], MASK), 1024), 1007);
    // A surrogate (ED A0 80) and an overlong encoding (C0 AF) are never valid.
    assert_eq!(close_code_of(&client_frame(0x81, &[0xed, 0xa0, 0x80], MASK), 1024), 1007);
    assert_eq!(close_code_of(&client_frame(0x81, &[0xc0, 0xaf], MASK), 1024), 1007);
    // Fail fast: the first fragment alone is enough to reject the message.
    let first_fragment = client_frame(0x01, &[b'o', b'k', 0xf8], MASK);
    assert_eq!(close_code_of(&first_fragment, 1024), 1007);
    // A code point left incomplete by the final fragment.
    let mut cut_short = client_frame(0x01, "ok".as_bytes(), MASK);
    cut_short.extend(client_frame(0x80, &[0xe2, 0x82], MASK));
    assert_eq!(close_code_of(&cut_short, 1024), 1007);
    // A binary message is not checked.
    assert_eq!(events(&client_frame(0x82, &[0xff], MASK)), [Owned::Binary(vec![0xff])]);
}

#[test]
fn code_points_split_across_fragments_are_valid() {
    let message = "a€😀é"; // 1-, 3-, 4- and 2-byte code points
    let bytes = message.as_bytes();
    for first_cut in 0..=bytes.len() {
        for second_cut in first_cut..=bytes.len() {
            let mut input = client_frame(0x01, &bytes[..first_cut], MASK);
            input.extend(client_frame(0x89, b"between", MASK));
            input.extend(client_frame(0x00, &bytes[first_cut..second_cut], MASK));
            input.extend(client_frame(0x80, &bytes[second_cut..], MASK));
            let expected = [Owned::Ping(b"between".to_vec()), Owned::Text(message.into())];
            assert_eq!(events(&input), expected, "cuts at {first_cut} and {second_cut}");
        }
    }
}

#[test]
fn a_failed_decoder_refuses_more_input() {
    let mut decoder = FrameDecoder::new(1024);
    let mut unmasked = vec![0x81, 0x00];
    assert!(decoder.handle_bytes(&mut unmasked, |_| Ok(())).is_err());
    let mut good = text(0x81, "late");
    assert!(matches!(decoder.handle_bytes(&mut good, |_| Ok(())), Err(Error::Misuse(_))));
}

#[test]
fn an_error_from_the_event_handler_stops_decoding() {
    let mut input = text(0x81, "one");
    input.extend(text(0x81, "two"));
    let mut decoder = FrameDecoder::new(1024);
    let mut seen = 0;
    let stop = Error::from(PeerMisbehaved::EioParse("bad packet"));
    let result = decoder.handle_bytes(&mut input, |_| {
        seen += 1;
        Err(stop.clone())
    });
    assert_eq!((result, seen), (Err(stop), 1));
}
