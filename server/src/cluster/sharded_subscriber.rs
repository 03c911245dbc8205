//! The subscriber thread of the sharded adapter (`--redis-sharded`): one connection in subscribe mode,
//! kept alive and resubscribed, like [`super::subscriber`] for the classic adapter.
//!
//! It subscribes (`SSUBSCRIBE`, one channel per command as the Node adapter does), for every namespace
//! defined at start and every dynamic one once a shard created it, to the namespace's main channel
//! `<prefix>#<nsp>#` (so Node servers count this node in `PUBSUB SHARDNUMSUB`, and this node's own
//! requests count it in their `SPUBLISH` reply) and, first, to this node's own `<prefix>#<nsp>#<uid>#`,
//! where answers to its requests arrive (so it is never counted before they can reach it); in the
//! `dynamic` modes, to `<prefix>#<nsp>#<room>#` while any shard has the room
//! ([`super::sharded_rooms`]). Pushes arrive as RESP2 `smessage` arrays and are handled on this thread
//! ([`super::sharded_inbound`]).
//!
//! Room changes and new dynamic namespaces are looked at between replies: the read timeout is
//! [`ROOM_POLL`], so either is subscribed within about that plus a round trip. As with Node, a
//! broadcast published to a room's channel before the subscription is in place is not received.
//!
//! Liveness and reconnection as in the classic subscriber: `PING` after [`Liveness::PING_AFTER`] of silence, the
//! connection is dead after [`Liveness::DEAD_AFTER`]; it reconnects with backoff and subscribes again, room
//! channels included. Messages published meanwhile are lost (pub/sub is at-most-once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use roomcast_engine::cluster::ShardedChannels;

use super::resp::{write_command, Connection, Liveness, Reply};
use super::sharded_inbound::Followed;
use super::sharded_rooms::{RoomChange, RoomCounts, Subscription};
use super::{keep_subscribed, link, sharded_inbound, Backoff, ClusterLink, Subscriber};
use crate::shard::shared::Shared;

/// How long one read waits before room changes are looked at again.
const ROOM_POLL: Duration = Duration::from_millis(10);

/// Runs until `stop`. `conn` is the connection opened at start; `rooms` the shards' room changes
/// (`None` in `static` mode).
pub(super) fn run(
    shared: Arc<Shared>,
    conn: Connection,
    rooms: Option<Receiver<RoomChange>>,
    stop: Arc<AtomicBool>,
) {
    let Some(link) = link(&shared) else { return };
    let channels = ShardedChannels::new(link.config.key_prefix.clone());
    let mut counts = RoomCounts::default();
    let namespaces: Vec<Arc<str>> = shared.namespaces.iter().map(|(name, _)| name.clone()).collect();
    let mut followed = Followed::new(&link.uid, &namespaces);
    // Dynamic namespaces already followed (`ClusterLink::dynamic_namespaces` lists them in order).
    let mut dynamic_seen = 0;
    let mut state = Sharded {
        shared: &shared,
        channels: &channels,
        followed: &mut followed,
        dynamic_seen: &mut dynamic_seen,
        counts: &mut counts,
        rooms: rooms.as_ref(),
    };
    keep_subscribed(link, conn, &stop, &mut state);
}

/// The sharded protocol's subscriber: what outlives one connection.
struct Sharded<'a> {
    shared: &'a Shared,
    channels: &'a ShardedChannels,
    followed: &'a mut Followed,
    dynamic_seen: &'a mut usize,
    counts: &'a mut RoomCounts,
    rooms: Option<&'a Receiver<RoomChange>>,
}

impl Subscriber for Sharded<'_> {
    /// While Redis is away, room changes only update the counts (so the queue stays short); every
    /// counted room is subscribed once connected.
    fn between_connections(&mut self) {
        if let Some(rooms) = self.rooms {
            for change in rooms.try_iter() {
                self.counts.apply(&change);
            }
        }
    }

    fn serve(&mut self, conn: Connection, stop: &AtomicBool, backoff: &mut Backoff) -> std::io::Result<()> {
        let mut session = Session {
            shared: self.shared,
            channels: self.channels,
            followed: self.followed,
            dynamic_seen: self.dynamic_seen,
            counts: self.counts,
            out: Vec::new(),
        };
        session.serve(conn, self.rooms, stop, backoff)
    }
}

/// One connection's life.
struct Session<'a> {
    shared: &'a Shared,
    channels: &'a ShardedChannels,
    followed: &'a mut Followed,
    dynamic_seen: &'a mut usize,
    counts: &'a mut RoomCounts,
    out: Vec<u8>,
}

impl Session<'_> {
    /// Subscribes, then handles pushes and room changes until `stop` (`Ok`) or the connection fails.
    fn serve(
        &mut self,
        mut conn: Connection,
        rooms: Option<&Receiver<RoomChange>>,
        stop: &AtomicBool,
        backoff: &mut Backoff,
    ) -> std::io::Result<()> {
        let Some(link) = link(self.shared) else { return Ok(()) };
        link.forget_subscriptions();
        conn.set_read_timeout(ROOM_POLL)?;
        self.out.clear();
        self.follow_created_namespaces(link);
        for nsp in self.followed.names() {
            subscribe_namespace(&mut self.out, self.channels, nsp, &link.uid);
        }
        for (nsp, room) in self.counts.rooms() {
            write_command(&mut self.out, &[b"SSUBSCRIBE", self.channels.room(nsp, room).as_bytes()]);
        }
        conn.write_all(&self.out)?;
        let mut liveness = Liveness::new();
        let mut subscribed = false;
        while !stop.load(Ordering::Acquire) {
            self.out.clear();
            for nsp in self.follow_created_namespaces(link) {
                subscribe_namespace(&mut self.out, self.channels, &nsp, &link.uid);
            }
            if let Some(rooms) = rooms {
                self.follow_rooms(rooms);
            }
            if !self.out.is_empty() {
                conn.write_all(&self.out)?;
            }
            let Some(items) =
                liveness.next_push(&mut conn, &mut self.out, "redis refused a sharded subscription")?
            else {
                continue;
            };
            match items.as_slice() {
                [kind, channel, payload] if kind.bytes() == Some(b"smessage") => {
                    if let (Some(channel), Reply::Bulk(Some(payload))) = (channel.bytes(), payload) {
                        sharded_inbound::on_message(
                            self.shared,
                            link,
                            self.channels,
                            self.followed,
                            channel,
                            payload,
                        );
                    }
                }
                [kind, channel, ..] if kind.bytes() == Some(b"ssubscribe") => {
                    // The main channel is confirmed after this node's own ([`subscribe_namespace`]).
                    if let Some((nsp, None)) = channel.bytes().and_then(|c| self.channels.parse(c)) {
                        link.confirm_subscribed(nsp);
                    }
                    if !subscribed {
                        subscribed = true;
                        backoff.reset();
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Follows the dynamic namespaces shards created since the last look; returns them.
    fn follow_created_namespaces(&mut self, link: &ClusterLink) -> Vec<Arc<str>> {
        let created = link.dynamic_namespaces(*self.dynamic_seen);
        *self.dynamic_seen += created.len();
        created.into_iter().filter(|nsp| self.followed.add(nsp.clone())).collect()
    }

    /// Writes the subscriptions the shards' room changes ask for: a room's channel on its first shard,
    /// and unsubscribing on its last.
    fn follow_rooms(&mut self, rooms: &Receiver<RoomChange>) {
        for change in rooms.try_iter() {
            let command: &[u8] = match self.counts.apply(&change) {
                Subscription::Subscribe => b"SSUBSCRIBE",
                Subscription::Unsubscribe => b"SUNSUBSCRIBE",
                Subscription::Unchanged => continue,
            };
            let channel = self.channels.room(&change.nsp, change.room.as_str());
            write_command(&mut self.out, &[command, channel.as_bytes()]);
        }
    }
}

/// Writes the subscriptions of a Node server of the sharded adapter for one namespace: this node's
/// own channel, then the main channel. Order matters: being subscribed to the main channel is what
/// counts this node as a server (other nodes' `PUBSUB SHARDNUMSUB`, and the `SPUBLISH` reply that
/// tells this node's own requests how many answers to wait for), and answers come on the own channel;
/// subscribed in this order (one command each, which Redis may apply apart), a node is never counted
/// before answers can reach it.
fn subscribe_namespace(out: &mut Vec<u8>, channels: &ShardedChannels, nsp: &str, uid: &str) {
    for channel in [channels.node(nsp, uid), channels.main(nsp)] {
        write_command(out, &[b"SSUBSCRIBE", channel.as_bytes()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_channel_is_subscribed_before_the_channel_that_counts_this_node() {
        let mut out = Vec::new();
        subscribe_namespace(&mut out, &ShardedChannels::default(), "/", "99fb7ac32675bdc5");
        let text = String::from_utf8_lossy(&out);
        let own = text.find("socket.io#/#99fb7ac32675bdc5#");
        let main = text.find("socket.io#/#\r\n");
        assert!(own.is_some() && main.is_some(), "{text}");
        assert!(own < main, "{text}");
    }
}
