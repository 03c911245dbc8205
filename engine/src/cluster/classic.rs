//! The classic Redis adapter (`createAdapter`, @socket.io/redis-adapter 8.x) and the emitter
//! (@socket.io/redis-emitter 5.x): channel names and the broadcast message. Requests and responses are
//! in [`requests`].
//!
//! Channels, for key prefix `socket.io` (the adapter's `key` option):
//!
//! | channel | carries |
//! |---|---|
//! | `socket.io#<nsp>#` | [`Broadcast`]s to every socket or to two or more rooms (subscribed as `socket.io#<nsp>#*`) |
//! | `socket.io#<nsp>#<room>#` | [`Broadcast`]s whose `rooms` is exactly `[room]` |
//! | `socket.io-request#<nsp>#` | [`Request`]s; `PUBSUB NUMSUB` of it is the server count |
//! | `socket.io-response#<nsp>#` | [`Response`]s |
//! | `socket.io-response#<nsp>#<uid>#` | [`Response`]s to `uid`, from servers with `publishOnSpecificResponseChannel` |

pub mod requests;

pub use requests::{LegacyAction, Request, RequestKind, Response};

use bytes::Bytes;

use super::common::{malformed, AdapterPacket, BroadcastOpts, DEFAULT_PREFIX};
use super::msgpack::{self, Value};
use crate::Error;

/// The channel names of one key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicChannels {
    key: String,
}

impl Default for ClassicChannels {
    fn default() -> Self {
        ClassicChannels::new(DEFAULT_PREFIX)
    }
}

/// What a received channel name says, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicChannel<'c> {
    /// `<key>#<nsp>#` (`room: None`) or `<key>#<nsp>#<room>#`.
    Broadcast { nsp: &'c str, room: Option<&'c str> },
    /// `<key>-request#<nsp>#`.
    Request { nsp: &'c str },
    /// `<key>-response#<nsp>#` (`uid: None`) or `<key>-response#<nsp>#<uid>#`.
    Response { nsp: &'c str, uid: Option<&'c str> },
}

impl ClassicChannels {
    /// Channels under key prefix `key` (`socket.io` by default).
    pub fn new(key: impl Into<String>) -> Self {
        ClassicChannels { key: key.into() }
    }

    /// `<key>#<nsp>#`: broadcasts to all sockets or to several rooms.
    pub fn broadcast(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.key)
    }

    /// `<key>#<nsp>#*`: the `PSUBSCRIBE` pattern that receives every broadcast of `nsp`.
    pub fn broadcast_pattern(&self, nsp: &str) -> String {
        format!("{}#{nsp}#*", self.key)
    }

    /// `<key>#<nsp>#<room>#`: broadcasts to exactly one room.
    pub fn room(&self, nsp: &str, room: &str) -> String {
        format!("{}#{nsp}#{room}#", self.key)
    }

    /// `<key>-request#<nsp>#`. A server must be subscribed here to be counted by the others.
    pub fn request(&self, nsp: &str) -> String {
        format!("{}-request#{nsp}#", self.key)
    }

    /// `<key>-response#<nsp>#`: where responses go by default.
    pub fn response(&self, nsp: &str) -> String {
        format!("{}-response#{nsp}#", self.key)
    }

    /// `<key>-response#<nsp>#<uid>#`: responses to server `uid` only.
    pub fn specific_response(&self, nsp: &str, uid: &str) -> String {
        format!("{}-response#{nsp}#{uid}#", self.key)
    }

    /// The channel a broadcast with these options is published on: the room's channel when it targets
    /// exactly one room, else the namespace's broadcast channel.
    pub fn for_broadcast(&self, nsp: &str, opts: &BroadcastOpts) -> String {
        match opts.rooms.as_slice() {
            [room] => self.room(nsp, room),
            _ => self.broadcast(nsp),
        }
    }

    /// Reads a channel name this prefix produced. The namespace ends at its first `#` (socket.io
    /// namespaces hold none); a room name may hold `#`. `None` for any other channel, so a receiver
    /// can skip a broadcast to a room it does not have before decoding it, as Node servers do.
    /// Cost: O(channel length), no allocation.
    pub fn parse<'c>(&self, channel: &'c [u8]) -> Option<ClassicChannel<'c>> {
        let channel = std::str::from_utf8(channel).ok()?;
        let rest = channel.strip_prefix(self.key.as_str())?;
        let (kind, rest) = if let Some(rest) = rest.strip_prefix('#') {
            (0, rest)
        } else if let Some(rest) = rest.strip_prefix("-request#") {
            (1, rest)
        } else {
            (2, rest.strip_prefix("-response#")?)
        };
        let (nsp, tail) = rest.split_once('#')?;
        let name = match tail {
            "" => None,
            named => Some(named.strip_suffix('#').filter(|n| !n.is_empty())?),
        };
        match (kind, name) {
            (0, room) => Some(ClassicChannel::Broadcast { nsp, room }),
            (1, None) => Some(ClassicChannel::Request { nsp }),
            (2, uid) => Some(ClassicChannel::Response { nsp, uid }),
            _ => None,
        }
    }
}

/// A broadcast on a broadcast channel: msgpack `[uid, packet, opts]`.
///
/// Receiving (what a Node server does): skip it unless the channel's room exists here
/// ([`ClassicChannels::parse`]); skip it when `uid` is this server's ([`broadcast_sender`] reads it
/// without decoding the rest); skip it when [`AdapterPacket::nsp_or_root`] is not this namespace;
/// then deliver locally to `opts` as a local broadcast (never re-publish).
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The publishing server's uid, or [`super::EMITTER_UID`].
    pub uid: String,
    /// `{type: 2, data: [event, …args], nsp}`.
    pub packet: AdapterPacket,
    /// `{rooms, except, flags}`.
    pub opts: BroadcastOpts,
}

impl Broadcast {
    /// The msgpack bytes: `[uid, {type, data, nsp}, {rooms, except, flags}]`, as the adapter writes them.
    pub fn encode(&self) -> Bytes {
        msgpack::to_bytes(&Value::Array(vec![
            Value::str(&self.uid),
            self.packet.to_value(),
            self.opts.to_value(true),
        ]))
    }

    /// Decodes a broadcast (from a server or an emitter; options in any member order).
    /// Errors: [`crate::PeerMisbehaved::ClusterParse`] when it is not `[uid, packet, opts]`, and the
    /// errors of [`msgpack::decode`].
    pub fn decode(message: &[u8]) -> Result<Broadcast, Error> {
        let value = msgpack::decode(message)?;
        let Value::Array(items) = &value else {
            return Err(malformed("broadcast is not [uid, packet, opts]"));
        };
        let [uid, packet, opts, ..] = items.as_slice() else {
            return Err(malformed("broadcast is not [uid, packet, opts]"));
        };
        Ok(Broadcast {
            uid: uid.as_str().ok_or(malformed("broadcast uid is not a string"))?.to_owned(),
            packet: AdapterPacket::from_value(packet)?,
            opts: BroadcastOpts::from_value(opts)?,
        })
    }
}

/// The uid of a broadcast message, read from its first bytes only (`fixarray`, then a `str` of up to
/// 255 bytes, as uids are): lets a receiver drop its own echo without decoding. `None` when the message
/// does not start that way (decode it fully to learn why). Cost: O(uid length).
pub fn broadcast_sender(message: &[u8]) -> Option<&str> {
    let (&array, rest) = message.split_first()?;
    if !(0x91..=0x9f).contains(&array) {
        return None;
    }
    let (len, rest) = match rest.split_first()? {
        (&fix @ 0xa0..=0xbf, rest) => (usize::from(fix & 0x1f), rest),
        (0xd9, rest) => {
            let (&len, rest) = rest.split_first()?;
            (usize::from(len), rest)
        }
        _ => return None,
    };
    std::str::from_utf8(rest.get(..len)?).ok()
}
