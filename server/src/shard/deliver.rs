//! The broadcast hot path on one shard: plan the recipients, queue the shared bytes on each.
//!
//! Cost per broadcast and shard: one name lookup per room (the edge, `resolve`), the plan (word-at-a-
//! time set algebra, see `NamespaceRooms::plan`), then per recipient: two slab reads, a byte-budget
//! check, and one queue push per frame. A WebSocket session with nothing queued — the common case —
//! gets the frame straight into the driver's queue, pointing at the shard's one table entry for it (a
//! non-atomic count increment, see `driver::queue`; binary attachments: one atomic refcount each), and
//! is not pumped; others queue an [`OutPacket`](roomcast_engine::eio::OutPacket) (text and frame: two
//! atomic refcounts) that the session's pump moves to the driver. No lock, no string hashing, no
//! per-recipient encoding or copy. Allocation: on the write-through path only when the driver's
//! per-shard arenas grow; on the queued path also one when a session's queue starts a burst (an idle
//! session keeps no queue buffer). Each dirty connection is flushed once per round, in submission
//! batches of `flush_batch` connections (see [`super`]'s loop).

use std::sync::Arc;

use roomcast_engine::eio::CloseReason;

use super::core::{SessionKey, ShardCore};
use super::shared::ShardMsg;
use crate::broadcast::Broadcast;
use crate::driver::Outbox;

impl ShardCore {
    /// Delivers a broadcast to this shard's recipients and, if it was made here, hands it to every
    /// other shard (one `Arc` each, pushed in order, so one sender's broadcasts keep their order) and,
    /// in a cluster, to the Redis publisher (once, never blocking; not if `local`).
    pub(crate) fn broadcast(&mut self, out: &mut Outbox, broadcast: Arc<Broadcast>) {
        if broadcast.origin == Some(self.id) {
            if let Some(cluster) = &self.shared.cluster {
                cluster.publish_broadcast(&broadcast);
            }
        }
        if broadcast.origin == Some(self.id) && self.shared.shard_count() > 1 {
            for (i, inbox) in self.shared.inboxes.iter().enumerate() {
                if i != self.id.0 as usize {
                    inbox.push(ShardMsg::Broadcast(broadcast.clone()));
                }
            }
        }
        self.deliver(out, &broadcast);
    }

    /// Plans and queues one broadcast on this shard.
    pub(crate) fn deliver(&mut self, out: &mut Outbox, broadcast: &Broadcast) {
        let Some(&nsp) = self.nsp_index.get(&broadcast.nsp) else { return };
        self.stats.broadcasts += 1;
        let soft = self.shared.config.outbound_soft_limit as u64;
        let hard = self.shared.config.outbound_hard_limit as u64;
        let volatile = broadcast.target.flags.volatile;
        let wire = broadcast.packet.wire_len() as u64;
        let binary = !broadcast.packet.attachments.is_empty();
        let mut slow: Vec<SessionKey> = Vec::new();
        let ShardCore { nsps, spec, scratch, sessions, dirty, stats, .. } = self;
        let Some(namespace) = nsps.get_mut(nsp as usize) else { return };
        // One table entry for the frame on this shard; each recipient below adds a non-atomic count.
        // Given back after the loop (nothing in between returns).
        let frame = out.share(broadcast.packet.frame.clone());
        namespace.rooms.resolve(&broadcast.target, spec);
        // `for_each`, not a `for` loop: the planner's internal iteration keeps its walk in registers.
        namespace.rooms.plan(spec, scratch).for_each(|id| {
            let Some(Some(socket)) = namespace.sockets.get(id.slot() as usize) else { return };
            let key = socket.session;
            let Some(Some(session)) = sessions.get_mut(key.index as usize) else { return };
            if session.generation != key.generation {
                return;
            }
            // Backlog = bytes an earlier turn could not hand to the kernel (WebSocket: the driver queue
            // after the last flush), or packets waiting for a GET (polling). Packets queued during this
            // turn do not count: a burst within one turn is not a slow reader.
            let backlog = match session.ws {
                Some(conn) => out.backlog(conn),
                None => session.eio.queued_bytes() as u64,
            };
            if volatile && !session.eio.is_writable(backlog + wire <= soft) {
                stats.volatile_dropped += 1;
                return;
            }
            if backlog > hard {
                slow.push(key);
                return;
            }
            stats.deliveries += 1;
            // A WebSocket session with nothing queued takes the frames straight into the driver's
            // queue: one refcount per frame, and the session is not pumped for it. Otherwise (polling,
            // an upgrade in progress, packets queued earlier this turn, base64 attachments) the packets
            // wait in the session's queue, in order.
            if let Some(conn) = session.ws {
                if session.eio.can_write_through() && !(session.b64 && binary) {
                    out.send_shared(conn, &frame);
                    for attachment in &broadcast.packet.attachments {
                        out.send(conn, attachment.frame.clone());
                    }
                    return;
                }
            }
            for packet in broadcast.packet.out_packets() {
                session.eio.send(packet);
            }
            if !session.dirty {
                session.dirty = true;
                dirty.push(key);
            }
        });
        out.unshare(frame);
        for key in slow {
            self.stats.slow_consumers_closed += 1;
            // Its backlog can never drain: reset the connection rather than wait behind it.
            if let Some(conn) = self.session(key).and_then(|s| s.ws) {
                out.abort(conn);
            }
            self.close_session(out, key, CloseReason::TransportError, "transport error");
        }
    }
}
