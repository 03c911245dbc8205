//! Per-room channel subscriptions of the sharded adapter's `dynamic` modes, driven by the rooms of
//! every shard: a node subscribes to `<prefix>#<nsp>#<room>#` while any of its shards has the room, as
//! a Node server does while its (single) adapter has it.
//!
//! - On a shard ([`RoomLink::on_adapter_event`], inside `drain_adapter_events`): a `create-room` of a
//!   room the mode gives a channel is reported once (+1) and remembered in the namespace's `reported`
//!   set; its `delete-room` is reported (−1) only if it was reported. So a socket's own room, which is
//!   private in `dynamic` mode, is told apart at creation, when its socket is certainly there.
//! - On the sharded subscriber thread ([`RoomCounts`]): a node-wide count per room; the first +1
//!   subscribes, the last −1 unsubscribes; after a reconnection every counted room is subscribed again.
//!
//! Cost: control path only (room creation and deletion: one hash insert or remove on the shard, one
//! unbounded channel send). Broadcasts never touch any of it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use roomcast_engine::cluster::SubscriptionMode;
use roomcast_engine::ids::Sid;
use roomcast_engine::rooms::{AdapterEvent, NamespaceRooms, RoomName};

/// One shard's news about a room: it created it (`+1`) or deleted it (`-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomChange {
    pub nsp: Arc<str>,
    pub room: RoomName,
    pub created: bool,
}

/// What shards hold to report room changes to the subscriber thread.
#[derive(Debug)]
pub(crate) struct RoomLink {
    tx: Sender<RoomChange>,
    mode: SubscriptionMode,
}

impl RoomLink {
    /// A link and the receiving end for the subscriber; `None` unless `mode` has room channels.
    pub(crate) fn new(mode: SubscriptionMode) -> Option<(RoomLink, Receiver<RoomChange>)> {
        if mode == SubscriptionMode::Static {
            return None;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        Some((RoomLink { tx, mode }, rx))
    }

    /// Reports `event` if it creates a room the mode gives a channel, or deletes one that was reported.
    /// `reported`: the rooms of this namespace this shard reported. Never blocks.
    pub(crate) fn on_adapter_event(
        &self,
        nsp: &Arc<str>,
        reported: &mut HashSet<RoomName>,
        rooms: &NamespaceRooms,
        event: &AdapterEvent,
    ) {
        let (room, created) = match event {
            AdapterEvent::CreateRoom(room) => {
                let is_socket_room =
                    Sid::parse(room.as_str()).and_then(|sid| rooms.socket_by_sid(&sid)).is_some();
                if !self.mode.subscribes_room(is_socket_room) || !reported.insert(room.clone()) {
                    return;
                }
                (room, true)
            }
            AdapterEvent::DeleteRoom(room) => {
                if !reported.remove(room) {
                    return;
                }
                (room, false)
            }
            AdapterEvent::JoinRoom(..) | AdapterEvent::LeaveRoom(..) => return,
        };
        // The receiver lives as long as the subscriber thread; once it is gone nothing subscribes.
        let _ = self.tx.send(RoomChange { nsp: nsp.clone(), room: room.clone(), created });
    }
}

/// The node-wide count of shards that have each reported room (on the subscriber thread).
#[derive(Debug, Default)]
pub(crate) struct RoomCounts {
    counts: HashMap<(Arc<str>, RoomName), u32>,
}

/// What a change asks of the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscription {
    Subscribe,
    Unsubscribe,
    Unchanged,
}

impl RoomCounts {
    /// Counts one change: the first shard to create a room subscribes, the last to delete it
    /// unsubscribes. A deletion of a room not counted (impossible by construction) changes nothing.
    pub(crate) fn apply(&mut self, change: &RoomChange) -> Subscription {
        let key = (change.nsp.clone(), change.room.clone());
        if change.created {
            let count = self.counts.entry(key).or_insert(0);
            *count += 1;
            return if *count == 1 { Subscription::Subscribe } else { Subscription::Unchanged };
        }
        match self.counts.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                Subscription::Unchanged
            }
            Some(_) => {
                self.counts.remove(&key);
                Subscription::Unsubscribe
            }
            None => Subscription::Unchanged,
        }
    }

    /// Every room some shard has: what to subscribe to again after a reconnection.
    pub(crate) fn rooms(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.counts.keys().map(|(nsp, room)| (&**nsp, room.as_str()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(room: &str, created: bool) -> RoomChange {
        RoomChange { nsp: Arc::from("/"), room: room.into(), created }
    }

    #[test]
    fn a_room_is_subscribed_while_any_shard_has_it() {
        let mut counts = RoomCounts::default();
        assert_eq!(counts.apply(&change("r", true)), Subscription::Subscribe);
        assert_eq!(counts.apply(&change("r", true)), Subscription::Unchanged);
        assert_eq!(counts.apply(&change("r", false)), Subscription::Unchanged);
        assert_eq!(counts.rooms().collect::<Vec<_>>(), [("/", "r")]);
        assert_eq!(counts.apply(&change("r", false)), Subscription::Unsubscribe);
        assert_eq!(counts.apply(&change("r", false)), Subscription::Unchanged);
        assert_eq!(counts.rooms().count(), 0);
    }

    #[test]
    fn own_rooms_are_private_in_dynamic_mode_and_reported_in_dynamic_private() {
        let mut rooms = NamespaceRooms::new();
        let sid = Sid::parse("UX7azIbIY-c87ijNAAAA").unwrap();
        let socket = rooms.connect(sid).unwrap();
        rooms.join(socket, "r").unwrap();
        let events: Vec<AdapterEvent> = std::iter::from_fn(|| rooms.poll_event()).collect();
        let nsp: Arc<str> = Arc::from("/");
        for (mode, expected) in [
            (SubscriptionMode::Dynamic, vec!["r"]),
            (SubscriptionMode::DynamicPrivate, vec!["UX7azIbIY-c87ijNAAAA", "r"]),
        ] {
            let (link, rx) = RoomLink::new(mode).unwrap();
            let mut reported = HashSet::new();
            for event in &events {
                link.on_adapter_event(&nsp, &mut reported, &rooms, event);
            }
            let got: Vec<String> = rx.try_iter().map(|c| c.room.as_str().to_owned()).collect();
            assert_eq!(got, expected, "{mode:?}");
            // The socket leaves: what was reported is reported deleted, own room included.
            let mut gone = NamespaceRooms::new();
            let s = gone.connect(sid).unwrap();
            gone.join(s, "r").unwrap();
            gone.remove(s).unwrap();
            let deletions: Vec<AdapterEvent> = std::iter::from_fn(|| gone.poll_event())
                .filter(|e| matches!(e, AdapterEvent::DeleteRoom(_)))
                .collect();
            for event in &deletions {
                link.on_adapter_event(&nsp, &mut reported, &gone, event);
            }
            assert!(rx.try_iter().all(|c| !c.created) && reported.is_empty(), "{mode:?}");
        }
        assert!(RoomLink::new(SubscriptionMode::Static).is_none());
    }
}
