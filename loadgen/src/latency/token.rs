//! The stamp every load-generator message carries: who published it, its sequence number, and when
//! it was scheduled — as a short ASCII token that can sit inside a Socket.IO JSON string unescaped.
//!
//! Format (version 1), fields in base 62 (`0-9A-Za-z`, most significant digit first):
//!
//! ```text
//! rc1.<publisher>.<seq>.<scheduled µs since run epoch>.<check>
//! rc1.G8.2Jo.5ZpIl.f     (publisher 1000, seq 8916, scheduled at 82 420 367 µs; check char f)
//! ```
//!
//! The decoder is strict, because the token comes back from the server under test and a mangled
//! byte must be reported, not guessed: exactly five dot-separated fields, the `rc1` tag, digits in
//! canonical form (no leading zeros, `0` alone for zero), values in range (publisher `u32`, the
//! others `u64`), and a check character (FNV-1a of everything before the last dot, mod 62) that
//! catches a changed or dropped character. Anything else is [`Error::BadToken`]; nothing panics.
//! Every accepted token re-encodes to the same bytes.

use std::fmt;

use super::clock::RunMicros;
use crate::{Error, PublisherId};

/// The tag every version-1 token starts with, dot included.
pub const TOKEN_PREFIX: &str = "rc1.";

/// The longest version-1 token: prefix, 6 + 11 + 11 base-62 digits, three dots and the check char.
pub const MAX_TOKEN_LEN: usize = TOKEN_PREFIX.len() + 6 + 1 + 11 + 1 + 11 + 1 + 1;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a message token says: its publisher, sequence number and scheduled send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageStamp {
    /// Who published the message.
    pub publisher: PublisherId,
    /// The publisher's sequence number for it, from 0.
    pub seq: u64,
    /// When the schedule said it was due (not when it was actually sent).
    pub scheduled: RunMicros,
}

impl MessageStamp {
    /// Appends the token to `out`. No allocation once `out` has room for [`MAX_TOKEN_LEN`] bytes.
    pub fn write_token(&self, out: &mut String) {
        let start = out.len();
        out.push_str(TOKEN_PREFIX);
        push_base62(out, u64::from(self.publisher.get()));
        out.push('.');
        push_base62(out, self.seq);
        out.push('.');
        push_base62(out, self.scheduled.as_micros());
        let check = check_char(out.as_bytes().get(start..).unwrap_or_default());
        out.push('.');
        out.push(char::from(check));
    }

    /// The token as a new string.
    pub fn to_token(&self) -> String {
        let mut out = String::with_capacity(MAX_TOKEN_LEN);
        self.write_token(&mut out);
        out
    }

    /// Decodes exactly one token (no surrounding bytes). Cost: O(len), no allocation.
    pub fn decode(token: &[u8]) -> Result<Self, Error> {
        decode_token(token).map_err(Error::BadToken)
    }

    /// Finds the first token in a payload (for example the JSON text of a Socket.IO event) and
    /// decodes it. The token runs from `rc1.` to the first byte that is neither base 62 nor a dot.
    /// Cost: O(payload length), no allocation.
    pub fn find_in(payload: &[u8]) -> Result<Self, Error> {
        let rest = token_start(payload)?;
        MessageStamp::decode(rest.get(..token_len(rest)).unwrap_or_default())
    }
}

/// Slots of a [`StampCache`]: a power of two, enough for the messages a flat-out run has in flight
/// (publishers × window, 160 in the 10-publisher benchmarks) to rarely share one. Only the slots of
/// messages in flight are touched, so a big table costs memory (256 KiB) but not cache lines.
const STAMP_CACHE: usize = 4096;

/// Tokens that decoded, remembered by their bytes. Every recipient of a message gets the same token,
/// so a fan-out run decodes each one about once per process instead of once per delivery.
///
/// Contract: [`StampCache::find_in`] answers exactly what [`MessageStamp::find_in`] does. A hit needs
/// the payload's token to be, byte for byte and to its last byte, one that decoded before; anything
/// else is decoded in full (and a rejected token is never remembered). Memory: [`STAMP_CACHE`] slots of
/// 64 bytes, direct-mapped by the bytes after the tag. Thread: its owner's.
#[derive(Debug, Clone)]
pub struct StampCache {
    slots: Vec<CachedStamp>,
}

#[derive(Debug, Clone, Copy)]
struct CachedStamp {
    /// Length of the token in `bytes`; 0 for an empty slot (no token is that short).
    len: u8,
    bytes: [u8; MAX_TOKEN_LEN],
    stamp: MessageStamp,
}

impl Default for StampCache {
    fn default() -> Self {
        let empty = CachedStamp {
            len: 0,
            bytes: [0; MAX_TOKEN_LEN],
            stamp: MessageStamp {
                publisher: PublisherId::new(0),
                seq: 0,
                scheduled: RunMicros::from_micros(0),
            },
        };
        StampCache { slots: vec![empty; STAMP_CACHE] }
    }
}

impl StampCache {
    /// [`MessageStamp::find_in`], remembering what it decodes. Hot path. Cost on a hit: the search for
    /// the tag and one comparison of the token's bytes; on a miss, a full decode. No allocation.
    pub fn find_in(&mut self, payload: &[u8]) -> Result<MessageStamp, Error> {
        let rest = token_start(payload)?;
        let index = slot_index(rest);
        if let Some(hit) = self.slots.get(index) {
            let len = usize::from(hit.len);
            let same = len > 0
                && rest.get(..len) == hit.bytes.get(..len)
                && rest.get(len).is_none_or(|&b| !is_token_byte(b));
            if same {
                return Ok(hit.stamp);
            }
        }
        let token = rest.get(..token_len(rest)).unwrap_or_default();
        let stamp = MessageStamp::decode(token)?;
        if let (Some(slot), Ok(len)) = (self.slots.get_mut(index), u8::try_from(token.len())) {
            // `decode` accepted it, so it is at most MAX_TOKEN_LEN bytes.
            if let Some(bytes) = slot.bytes.get_mut(..token.len()) {
                bytes.copy_from_slice(token);
                slot.len = len;
                slot.stamp = stamp;
            }
        }
        Ok(stamp)
    }
}

/// The slot of the token at the start of `rest`: a hash of up to 8 bytes after the tag (the publisher,
/// the sequence number and the start of the scheduled time), so messages in flight spread out.
fn slot_index(rest: &[u8]) -> usize {
    let mut word = [0u8; 8];
    let after_tag = rest.get(TOKEN_PREFIX.len()..).unwrap_or_default();
    let n = after_tag.len().min(word.len());
    if let (Some(dst), Some(src)) = (word.get_mut(..n), after_tag.get(..n)) {
        dst.copy_from_slice(src);
    }
    let hash = u64::from_le_bytes(word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (hash >> (u64::BITS - STAMP_CACHE.trailing_zeros())) as usize % STAMP_CACHE
}

/// `payload` from its first `rc1.` on.
fn token_start(payload: &[u8]) -> Result<&[u8], Error> {
    let mut from = 0;
    loop {
        let rest = payload.get(from..).unwrap_or_default();
        let Some(r) = rest.iter().position(|&b| b == b'r') else {
            return Err(Error::BadToken("no rc1. token in the payload"));
        };
        let candidate = rest.get(r..).unwrap_or_default();
        if candidate.starts_with(TOKEN_PREFIX.as_bytes()) {
            return Ok(candidate);
        }
        from += r + 1;
    }
}

/// Length of the token at the start of `rest`: up to the first byte that is neither base 62 nor a dot.
fn token_len(rest: &[u8]) -> usize {
    rest.iter().position(|&b| !is_token_byte(b)).unwrap_or(rest.len())
}

fn is_token_byte(b: u8) -> bool {
    b == b'.' || b.is_ascii_alphanumeric()
}

impl fmt::Display for MessageStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_token())
    }
}

/// [`MessageStamp::decode`] with the reason for a rejection as a plain `&'static str`: the hot path
/// builds no [`Error`] (whose drop glue an eager `ok_or(Error::…)` would run per digit) until a token
/// is actually rejected.
fn decode_token(token: &[u8]) -> Result<MessageStamp, &'static str> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("longer than any valid token");
    }
    let body = token.strip_prefix(TOKEN_PREFIX.as_bytes()).ok_or("missing rc1. tag")?;
    let mut fields = body.split(|&b| b == b'.');
    let (Some(publisher), Some(seq), Some(scheduled), Some(check)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("fewer than five fields");
    };
    if fields.next().is_some() {
        return Err("more than five fields");
    }
    let publisher = parse_base62(publisher, u64::from(u32::MAX))?;
    let seq = parse_base62(seq, u64::MAX)?;
    let scheduled = parse_base62(scheduled, u64::MAX)?;
    let &[check] = check else {
        return Err("check field is not one character");
    };
    let checked = token.len().checked_sub(2).and_then(|n| token.get(..n)).unwrap_or_default();
    if check != check_char(checked) {
        return Err("check character does not match");
    }
    let publisher = u32::try_from(publisher).map_err(|_| "publisher out of range")?;
    Ok(MessageStamp {
        publisher: PublisherId::new(publisher),
        seq,
        scheduled: RunMicros::from_micros(scheduled),
    })
}

fn push_base62(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 11];
    let mut n = 0;
    loop {
        if let (Some(slot), Some(&d)) = (digits.get_mut(n), ALPHABET.get((value % 62) as usize)) {
            *slot = d;
        }
        n += 1;
        value /= 62;
        if value == 0 {
            break;
        }
    }
    for &d in digits.get(..n).unwrap_or_default().iter().rev() {
        out.push(char::from(d));
    }
}

fn digit_value(b: u8) -> Option<u64> {
    let v = match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'Z' => b - b'A' + 10,
        b'a'..=b'z' => b - b'a' + 36,
        _ => return None,
    };
    Some(u64::from(v))
}

/// A canonical base-62 number no larger than `max`.
fn parse_base62(digits: &[u8], max: u64) -> Result<u64, &'static str> {
    match digits {
        [] => return Err("empty number"),
        [b'0', _, ..] => return Err("number with a leading zero"),
        _ => {}
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = digit_value(b).ok_or("character outside base 62")?;
        value = value
            .checked_mul(62)
            .and_then(|v| v.checked_add(d))
            .filter(|&v| v <= max)
            .ok_or("number out of range")?;
    }
    Ok(value)
}

/// FNV-1a over `bytes`, reduced to one base-62 character.
fn check_char(bytes: &[u8]) -> u8 {
    let hash = bytes.iter().fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    ALPHABET.get((hash % 62) as usize).copied().unwrap_or(b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(publisher: u32, seq: u64, at: u64) -> MessageStamp {
        MessageStamp { publisher: PublisherId::new(publisher), seq, scheduled: RunMicros::from_micros(at) }
    }

    #[test]
    fn fields_are_base62_most_significant_first() {
        let token = stamp(1000, 8916, 0).to_token();
        assert!(token.starts_with("rc1.G8.2Jo.0."), "{token}");
        assert_eq!(token.len(), "rc1.G8.2Jo.0.x".len());
        assert_eq!(stamp(1000, 8916, 82_420_367).to_token(), "rc1.G8.2Jo.5ZpIl.f");
    }

    #[test]
    fn the_largest_values_fit_the_documented_length() {
        let token = stamp(u32::MAX, u64::MAX, u64::MAX).to_token();
        assert_eq!(token.len(), MAX_TOKEN_LEN);
        assert_eq!(MessageStamp::decode(token.as_bytes()).unwrap(), stamp(u32::MAX, u64::MAX, u64::MAX));
    }

    #[test]
    fn a_token_is_found_inside_a_socketio_event_payload() {
        let s = stamp(7, 123_456, 98_765_432);
        let payload = format!(r#"42["tick","{}","padding padding"]"#, s.to_token());
        assert_eq!(MessageStamp::find_in(payload.as_bytes()).unwrap(), s);
        assert!(MessageStamp::find_in(br#"42["tick","no token here"]"#).is_err());
    }

    #[test]
    fn the_cache_answers_what_a_full_decode_answers() {
        let mut cache = StampCache::default();
        let s = stamp(7, 123_456, 98_765_432);
        let token = s.to_token();
        let payload = format!(r#"42["rr","{token}","x"]"#);
        for _ in 0..2 {
            assert_eq!(cache.find_in(payload.as_bytes()).unwrap(), s);
        }
        let extended = format!(r#"42["rr","{token}0","x"]"#);
        assert!(cache.find_in(extended.as_bytes()).is_err(), "a cached token followed by more token bytes");
        let cut = format!(r#"42["rr","{}"#, &token[..token.len() - 1]);
        assert!(cache.find_in(cut.as_bytes()).is_err(), "a cached token cut short");
        assert_eq!(cache.find_in(token.as_bytes()).unwrap(), s, "the token alone, at the payload's end");
        assert!(cache.find_in(b"42[\"rr\",\"no token\"]").is_err());
    }
}
