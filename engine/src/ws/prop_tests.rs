//! Property: any chunking of any valid client frame sequence decodes to the messages that were sent.

use proptest::prelude::*;

use super::decode_tests::{client_frame, decode_in_chunks, Owned};

/// One message as a client sends it: a data message cut into fragments at `cuts` (byte offsets, so
/// code points may straddle fragments), optionally with a ping between its first two fragments.
#[derive(Debug, Clone)]
enum Sent {
    Data { text: bool, payload: Vec<u8>, cuts: Vec<usize>, ping_inside: Option<Vec<u8>> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=125)
}

fn data_message() -> impl Strategy<Value = Sent> {
    let text = ".{0,80}".prop_map(|s: String| (true, s.into_bytes()));
    let binary = prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| (false, b));
    (
        prop_oneof![text, binary],
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        prop::option::of(control_payload()),
    )
        .prop_map(|((text, payload), cut_points, ping_inside)| {
            let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            Sent::Data { text, payload, cuts, ping_inside }
        })
}

fn sent_message() -> impl Strategy<Value = Sent> {
    prop_oneof![
        4 => data_message(),
        1 => control_payload().prop_map(Sent::Ping),
        1 => control_payload().prop_map(Sent::Pong),
    ]
}

/// The wire bytes of `messages` (then a close) and the events the decoder must produce.
fn wire_and_expected(messages: &[Sent], close: (u16, &str), masks: &[[u8; 4]]) -> (Vec<u8>, Vec<Owned>) {
    let mut masks = masks.iter().copied().cycle();
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for message in messages {
        match message {
            Sent::Ping(payload) => {
                wire.extend(client_frame(0x89, payload, masks.next().unwrap_or_default()));
                expected.push(Owned::Ping(payload.clone()));
            }
            Sent::Pong(payload) => {
                wire.extend(client_frame(0x8a, payload, masks.next().unwrap_or_default()));
                expected.push(Owned::Pong(payload.clone()));
            }
            Sent::Data { text, payload, cuts, ping_inside } => {
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(payload.len());
                let fragments = bounds.len() - 1;
                for (index, pair) in bounds.windows(2).enumerate() {
                    let fin = if index + 1 == fragments { 0x80 } else { 0 };
                    let opcode = match (index, text) {
                        (0, true) => 0x1,
                        (0, false) => 0x2,
                        _ => 0x0,
                    };
                    let mask = masks.next().unwrap_or_default();
                    wire.extend(client_frame(fin | opcode, &payload[pair[0]..pair[1]], mask));
                    if let (0, false, Some(ping)) = (index, fin != 0, ping_inside) {
                        wire.extend(client_frame(0x89, ping, masks.next().unwrap_or_default()));
                        expected.push(Owned::Ping(ping.clone()));
                    }
                }
                expected.push(if *text {
                    Owned::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Owned::Binary(payload.clone())
                });
            }
        }
    }
    let (code, reason) = close;
    let mut close_payload = code.to_be_bytes().to_vec();
    close_payload.extend(reason.as_bytes());
    wire.extend(client_frame(0x88, &close_payload, masks.next().unwrap_or_default()));
    expected.push(Owned::Close(Some(code), reason.to_owned()));
    (wire, expected)
}

proptest! {
    #[test]
    fn any_chunking_of_valid_frames_gives_the_sent_messages(
        messages in prop::collection::vec(sent_message(), 0..8),
        close_code in prop_oneof![Just(1000u16), 1001u16..=1003, 1007u16..=1011, 3000u16..=4999],
        close_reason in ".{0,20}",
        masks in prop::collection::vec(any::<[u8; 4]>(), 1..6),
        chunk_sizes in prop::collection::vec(1usize..40, 1..20),
    ) {
        let (wire, expected) = wire_and_expected(&messages, (close_code, &close_reason), &masks);
        let whole = decode_in_chunks(1 << 16, &wire, &[wire.len()]);
        prop_assert_eq!(&whole, &(expected, None));
        prop_assert_eq!(decode_in_chunks(1 << 16, &wire, &chunk_sizes), whole.clone());
        prop_assert_eq!(decode_in_chunks(1 << 16, &wire, &[1]), whole);
    }

    #[test]
    fn any_chunking_of_random_masked_frames_gives_the_same_events_and_error(
        frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..130)), 0..6),
        chunk_sizes in prop::collection::vec(1usize..16, 1..10),
    ) {
        // Random FIN/RSV/opcode bits and payloads: mostly protocol, UTF-8 and size errors.
        let wire: Vec<u8> =
            frames.iter().flat_map(|(first, payload)| client_frame(*first, payload, [9, 8, 7, 6])).collect();
        let whole = decode_in_chunks(100, &wire, &[wire.len().max(1)]);
        prop_assert_eq!(decode_in_chunks(100, &wire, &chunk_sizes), whole.clone());
        prop_assert_eq!(decode_in_chunks(100, &wire, &[1]), whole);
    }
}
