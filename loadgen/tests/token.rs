//! Message tokens: round trips, canonical form, and strict rejection of anything else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

use proptest::prelude::*;
use roomcast_loadgen::latency::token::{MAX_TOKEN_LEN, TOKEN_PREFIX};
use roomcast_loadgen::latency::{MessageStamp, RunMicros};
use roomcast_loadgen::{Error, PublisherId};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn stamp(publisher: u32, seq: u64, at: u64) -> MessageStamp {
    MessageStamp { publisher: PublisherId::new(publisher), seq, scheduled: RunMicros::from_micros(at) }
}

/// `body` plus a correct check character, so a rejection is for the reason under test.
fn with_check(body: &str) -> String {
    let hash = body.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{body}.{}", char::from(ALPHABET[(hash % 62) as usize]))
}

fn reason(token: &[u8]) -> &'static str {
    match MessageStamp::decode(token) {
        Err(Error::BadToken(why)) => why,
        other => panic!("{:?} decoded to {other:?}", String::from_utf8_lossy(token)),
    }
}

proptest! {
    #[test]
    fn every_stamp_round_trips(publisher: u32, seq: u64, at: u64) {
        let s = stamp(publisher, seq, at);
        let token = s.to_token();
        prop_assert!(token.len() <= MAX_TOKEN_LEN);
        prop_assert!(token.bytes().all(|b| b == b'.' || b.is_ascii_alphanumeric()), "JSON-safe: {}", token);
        prop_assert_eq!(MessageStamp::decode(token.as_bytes()).unwrap(), s);
        let payload = format!("42[\"tick\",\"{token}\",\"xxxxxxxx\"]");
        prop_assert_eq!(MessageStamp::find_in(payload.as_bytes()).unwrap(), s);
    }

    #[test]
    fn whatever_is_accepted_re_encodes_to_the_same_bytes(body in "rc1(\\.[0-9A-Za-z]{0,12}){0,5}") {
        let token = with_check(&body);
        if let Ok(s) = MessageStamp::decode(token.as_bytes()) {
            prop_assert_eq!(s.to_token(), token);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = MessageStamp::decode(&bytes);
        let _ = MessageStamp::find_in(&bytes);
    }
}

#[test]
fn garbage_is_rejected_for_the_stated_reason() {
    assert_eq!(reason(b""), "missing rc1. tag");
    assert_eq!(reason(with_check("rc2.1.1.1").as_bytes()), "missing rc1. tag");
    assert_eq!(reason(with_check("rc1.1.1").as_bytes()), "fewer than five fields");
    assert_eq!(reason(b"rc1.1.1.1.xy"), "check field is not one character");
    assert_eq!(reason(with_check("rc1.1.1.1.1").as_bytes()), "more than five fields");
    assert_eq!(reason(with_check("rc1.1..1").as_bytes()), "empty number");
    assert_eq!(reason(with_check("rc1.01.1.1").as_bytes()), "number with a leading zero");
    assert_eq!(reason(with_check("rc1.1.1.1-").as_bytes()), "character outside base 62");
    assert_eq!(reason(with_check("rc1.4gfFC4.0.0").as_bytes()), "number out of range"); // 2^32 publisher
    assert_eq!(reason(with_check("rc1.0.0.LygHa16AHYG").as_bytes()), "number out of range"); // 2^64
    assert_eq!(reason("rc1.1.1.1.é".as_bytes()), "check field is not one character");
    assert_eq!(reason(b"rc1.1.1.1.1.1"), "more than five fields");
    assert_eq!(reason(&[b'1'; MAX_TOKEN_LEN + 1]), "longer than any valid token");
    let good = stamp(3, 4, 5).to_token();
    let mut wrong_check = good.clone().into_bytes();
    let last = wrong_check.len() - 1;
    wrong_check[last] = if wrong_check[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(reason(&wrong_check), "check character does not match");
    assert!(MessageStamp::find_in(b"no token").is_err());
    assert!(TOKEN_PREFIX.starts_with("rc1"));
}

#[test]
fn the_largest_values_are_accepted_one_past_them_is_not() {
    assert_eq!(with_check("rc1.4gfFC3.0.0"), stamp(u32::MAX, 0, 0).to_token());
    assert_eq!(with_check("rc1.0.LygHa16AHYF.0"), stamp(0, u64::MAX, 0).to_token());
}

#[test]
fn every_strict_prefix_of_a_token_is_rejected() {
    let token = stamp(1_000, 8_916, 82_420_367).to_token();
    for end in 0..token.len() {
        assert!(MessageStamp::decode(&token.as_bytes()[..end]).is_err(), "{}", &token[..end]);
    }
}

#[test]
fn the_check_character_catches_almost_every_single_character_change() {
    let token = stamp(1_000, 8_916, 82_420_367).to_token().into_bytes();
    let (mut tried, mut accepted) = (0, 0);
    for i in TOKEN_PREFIX.len()..token.len() {
        for &c in ALPHABET.iter().chain(b".") {
            if c == token[i] {
                continue;
            }
            let mut changed = token.clone();
            changed[i] = c;
            tried += 1;
            if MessageStamp::decode(&changed).is_ok() {
                accepted += 1;
            }
        }
    }
    // A random check character would let 1 in 62 through; allow a little more, far below 5%.
    assert!(accepted * 100 < tried * 4, "{accepted} of {tried} changed tokens accepted");
}
