//! Identifier types. Each id is its own type so that a slot number can never be passed where a room is
//! expected; none is a type alias.

use base64::Engine as _;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A namespace socket on one shard: a slot in that namespace's socket slab plus the slot's generation.
///
/// Invariant: the generation of a slot increases every time the slot is freed, so a `SocketId` kept after
/// its socket left can never address the socket that reuses the slot (no ABA). Only the slab mints them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    slot: u32,
    generation: u32,
}

impl SocketId {
    pub(crate) const fn new(slot: u32, generation: u32) -> Self {
        SocketId { slot, generation }
    }

    /// The slot index in the namespace's slab (dense, shard-local, reused after the socket leaves).
    pub const fn slot(self) -> u32 {
        self.slot
    }

    /// The slot's generation when this id was minted.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({}v{})", self.slot, self.generation)
    }
}

/// An interned room name on one shard and namespace. Only meaningful to the `NamespaceRooms` that minted
/// it; resolved from names at the edge of each shard, never sent across shards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RoomId(pub(crate) u32);

impl RoomId {
    /// Index into the interner's room table.
    pub const fn index(self) -> u32 {
        self.0
    }
}

/// A shard (one thread, one event loop) of a Roomcast server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ShardId(pub u16);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The public id of a Socket.IO socket (one per connection and namespace), which is also the name of the
/// room every socket is in. 20 URL-safe base64 characters encoding 15 random bytes (120 bits), the shape
/// socket.io's `base64id` gives, so peers that test `id.length === 20` (the sharded Redis adapter) agree.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sid([u8; 20]);

// The 20 bytes as one 128-bit and one 32-bit number: with foldhash, two multiplies inline, where the
// derived impl (a length prefix, then a 20-byte string) took a call into the byte-string path — a
// third of resolving a broadcast's sender.
impl Hash for Sid {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        if let Some((head, tail)) = self.0.split_first_chunk::<16>() {
            state.write_u128(u128::from_le_bytes(*head));
            if let Some(tail) = tail.first_chunk::<4>() {
                state.write_u32(u32::from_le_bytes(*tail));
            }
        }
    }
}

impl Sid {
    /// Length of the textual id.
    pub const LEN: usize = 20;

    /// Builds the id from 15 bytes of randomness supplied by the caller (the engine has no RNG).
    pub fn from_random(random: [u8; 15]) -> Sid {
        let mut out = [0u8; 20];
        // 15 bytes always encode to exactly 20 characters without padding.
        let written = B64.encode_slice(random, &mut out).unwrap_or(0);
        debug_assert_eq!(written, 20);
        Sid(out)
    }

    /// Parses a textual id; `None` unless it is 20 URL-safe base64 characters.
    pub fn parse(text: &str) -> Option<Sid> {
        let bytes: [u8; 20] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_').then_some(Sid(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII base64url characters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Engine.IO session id: a secret (never shown to other clients) that also names the shard that owns
/// the session, so a polling request arriving on any shard is routed home without a global table.
/// 24 URL-safe base64 characters encoding 18 bytes: the shard number (2 bytes) and 16 random bytes
/// (128 bits of secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineSid([u8; 24]);

impl EngineSid {
    pub const LEN: usize = 24;

    pub fn new(shard: ShardId, random: [u8; 16]) -> EngineSid {
        let mut raw = [0u8; 18];
        raw[..2].copy_from_slice(&shard.0.to_be_bytes());
        raw[2..].copy_from_slice(&random);
        let mut out = [0u8; 24];
        let written = B64.encode_slice(raw, &mut out).unwrap_or(0);
        debug_assert_eq!(written, 24);
        EngineSid(out)
    }

    /// Parses a textual session id; `None` unless it decodes to exactly 18 bytes.
    pub fn parse(text: &str) -> Option<EngineSid> {
        let bytes: [u8; 24] = text.as_bytes().try_into().ok()?;
        let mut raw = [0u8; 18];
        (B64.decode_slice(bytes, &mut raw).ok()? == 18).then_some(EngineSid(bytes))
    }

    /// The shard that owns the session.
    pub fn shard(&self) -> ShardId {
        let mut raw = [0u8; 18];
        // Invariant: construction guarantees the text decodes to 18 bytes.
        let _ = B64.decode_slice(self.0, &mut raw);
        ShardId(u16::from_be_bytes([raw[0], raw[1]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for EngineSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session id is a secret: never print it whole.
        write!(f, "EngineSid({}…)", &self.as_str()[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_is_twenty_urlsafe_chars_and_round_trips() {
        let sid = Sid::from_random([0xfb; 15]);
        assert_eq!(sid.as_str().len(), 20);
        assert!(!sid.as_str().contains(['+', '/', '=']));
        assert_eq!(Sid::parse(sid.as_str()), Some(sid));
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa!"), None);
    }

    #[test]
    fn engine_sid_names_its_home_shard() {
        let sid = EngineSid::new(ShardId(7), [9; 16]);
        let parsed = EngineSid::parse(sid.as_str());
        assert_eq!(parsed.map(|s| s.shard()), Some(ShardId(7)));
        assert_eq!(EngineSid::parse("not-a-session-id"), None);
        assert!(!format!("{sid:?}").contains(sid.as_str()));
    }
}
