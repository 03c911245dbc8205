//! Control-path rules of `NamespaceRooms`: adapter events, join/leave no-ops, own rooms, stale ids.

use super::{AdapterEvent, NamespaceRooms, RoomName};
use crate::ids::Sid;
use crate::Error;
use AdapterEvent::{CreateRoom, DeleteRoom, JoinRoom, LeaveRoom};

pub(super) fn sid(n: u8) -> Sid {
    Sid::from_random([n; 15])
}

fn name(s: &str) -> RoomName {
    RoomName::from(s)
}

fn drain(ns: &mut NamespaceRooms) -> Vec<AdapterEvent> {
    std::iter::from_fn(|| ns.poll_event()).collect()
}

fn rooms_of(ns: &NamespaceRooms, s: crate::ids::SocketId) -> Vec<String> {
    ns.rooms_of(s).map(|it| it.map(String::from).collect()).unwrap_or_default()
}

/// Protocol notes §4.5, observed on socket.io 4.8.4: connect, `join(["a","b"])`, `join("a")`,
/// `leave("b")`, `leave("zzz")`, client disconnect.
#[test]
fn event_trace_matches_the_reference_server() {
    let mut ns = NamespaceRooms::new();
    let id = sid(1);
    let me = name(id.as_str());
    let s = ns.connect(id).unwrap();
    assert_eq!(drain(&mut ns), [CreateRoom(me.clone()), JoinRoom(me.clone(), id)]);
    assert_eq!(rooms_of(&ns, s), [id.as_str()]);

    ns.join_many(s, ["a", "b"]).unwrap();
    assert_eq!(
        drain(&mut ns),
        [CreateRoom(name("a")), JoinRoom(name("a"), id), CreateRoom(name("b")), JoinRoom(name("b"), id)]
    );
    ns.join(s, "a").unwrap();
    assert_eq!(drain(&mut ns), []);
    ns.leave(s, "b").unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name("b"), id), DeleteRoom(name("b"))]);
    ns.leave(s, "zzz").unwrap();
    assert_eq!(drain(&mut ns), []);

    // "disconnecting": rooms still visible.
    assert_eq!(rooms_of(&ns, s), [id.as_str(), "a"]);
    ns.remove(s).unwrap();
    assert_eq!(
        drain(&mut ns),
        [LeaveRoom(me.clone(), id), DeleteRoom(me), LeaveRoom(name("a"), id), DeleteRoom(name("a"))]
    );
    assert!(ns.rooms_of(s).is_none());
    assert_eq!((ns.room_count(), ns.socket_count()), (0, 0));
}

#[test]
fn shared_room_is_created_once_and_deleted_by_its_last_member() {
    let mut ns = NamespaceRooms::new();
    let (a, b) = (ns.connect(sid(1)).unwrap(), ns.connect(sid(2)).unwrap());
    ns.join(a, "r").unwrap();
    drain(&mut ns);
    ns.join(b, "r").unwrap();
    assert_eq!(drain(&mut ns), [JoinRoom(name("r"), sid(2))]);
    ns.leave(a, "r").unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name("r"), sid(1))]);
    assert_eq!(ns.member_count("r"), 1);
    ns.leave(b, "r").unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name("r"), sid(2)), DeleteRoom(name("r"))]);
    assert_eq!(ns.member_count("r"), 0);
    assert_eq!(ns.room_count(), 2, "only the two own rooms remain");
}

#[test]
fn leave_all_follows_join_order_including_a_rejoined_own_room() {
    let mut ns = NamespaceRooms::new();
    let id = sid(1);
    let s = ns.connect(id).unwrap();
    ns.join_many(s, ["x", "y"]).unwrap();
    ns.leave(s, id.as_str()).unwrap();
    assert_eq!(rooms_of(&ns, s), ["x", "y"]);
    ns.join(s, id.as_str()).unwrap();
    ns.join(s, "z").unwrap();
    ns.leave(s, "x").unwrap();
    assert_eq!(rooms_of(&ns, s), ["y", id.as_str(), "z"]);
    drain(&mut ns);
    ns.leave_all(s).unwrap();
    let left: Vec<RoomName> = drain(&mut ns)
        .into_iter()
        .filter_map(|e| match e {
            LeaveRoom(room, who) if who == id => Some(room),
            _ => None,
        })
        .collect();
    assert_eq!(left, [name("y"), name(id.as_str()), name("z")]);
    assert_eq!(rooms_of(&ns, s), Vec::<String>::new());
    assert_eq!(ns.socket_count(), 1, "leave_all keeps the socket connected");
    assert_eq!(ns.room_count(), 0);
}

#[test]
fn leaving_and_rejoining_the_own_room_deletes_and_recreates_it() {
    let mut ns = NamespaceRooms::new();
    let id = sid(3);
    let s = ns.connect(id).unwrap();
    drain(&mut ns);
    ns.leave(s, id.as_str()).unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name(id.as_str()), id), DeleteRoom(name(id.as_str()))]);
    ns.leave(s, id.as_str()).unwrap();
    assert_eq!(drain(&mut ns), []);
    assert_eq!(ns.member_count(id.as_str()), 0);
    ns.join(s, id.as_str()).unwrap();
    assert_eq!(drain(&mut ns), [CreateRoom(name(id.as_str())), JoinRoom(name(id.as_str()), id)]);
    assert_eq!(ns.members(id.as_str()).collect::<Vec<_>>(), [s]);
}

/// A room named like another socket's `Sid` is that socket's own room: it already exists, and it is
/// deleted only once neither the owner nor the others are in it.
#[test]
fn joining_another_sockets_own_room_shares_it_with_the_owner() {
    let mut ns = NamespaceRooms::new();
    let (owner_id, guest_id) = (sid(1), sid(2));
    let owner = ns.connect(owner_id).unwrap();
    let guest = ns.connect(guest_id).unwrap();
    let room = owner_id.as_str();
    drain(&mut ns);

    ns.join(guest, room).unwrap();
    assert_eq!(drain(&mut ns), [JoinRoom(name(room), guest_id)], "the room exists: no create-room");
    assert_eq!(ns.members(room).collect::<Vec<_>>(), [owner, guest]);
    assert_eq!(ns.member_count(room), 2);
    assert_eq!(ns.room_count(), 2);
    assert_eq!(ns.all_rooms().filter(|r| *r == room).count(), 1);

    ns.remove(owner).unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name(room), owner_id)], "the guest is still in it");
    assert_eq!(ns.members(room).collect::<Vec<_>>(), [guest]);
    ns.leave(guest, room).unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name(room), guest_id), DeleteRoom(name(room))]);
    assert_eq!(ns.room_count(), 1);
}

#[test]
fn owner_leaving_its_shared_own_room_keeps_it_alive_for_the_guest() {
    let mut ns = NamespaceRooms::new();
    let owner_id = sid(1);
    let owner = ns.connect(owner_id).unwrap();
    let guest = ns.connect(sid(2)).unwrap();
    ns.join(guest, owner_id.as_str()).unwrap();
    drain(&mut ns);
    ns.leave(owner, owner_id.as_str()).unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name(owner_id.as_str()), owner_id)]);
    ns.leave(guest, owner_id.as_str()).unwrap();
    assert_eq!(
        drain(&mut ns),
        [LeaveRoom(name(owner_id.as_str()), sid(2)), DeleteRoom(name(owner_id.as_str()))]
    );
    ns.join(owner, owner_id.as_str()).unwrap();
    assert_eq!(drain(&mut ns)[0], CreateRoom(name(owner_id.as_str())));
}

#[test]
fn stale_socket_id_is_misuse_everywhere_and_invisible_to_views() {
    let mut ns = NamespaceRooms::new();
    let old = ns.connect(sid(1)).unwrap();
    ns.join(old, "r").unwrap();
    ns.remove(old).unwrap();
    let new = ns.connect(sid(2)).unwrap();
    assert_eq!(new.slot(), old.slot(), "the slot is reused");
    assert!(matches!(ns.join(old, "r"), Err(Error::Misuse(_))));
    assert!(matches!(ns.join_many(old, ["r"]), Err(Error::Misuse(_))));
    assert!(matches!(ns.leave(old, "r"), Err(Error::Misuse(_))));
    assert!(matches!(ns.leave_all(old), Err(Error::Misuse(_))));
    assert!(matches!(ns.remove(old), Err(Error::Misuse(_))));
    assert_eq!(ns.sid(old), None);
    assert!(ns.rooms_of(old).is_none());
    assert_eq!(ns.sid(new), Some(sid(2)));
    assert_eq!(ns.socket_by_sid(&sid(1)), None);
    assert_eq!(ns.socket_by_sid(&sid(2)), Some(new));
    assert_eq!(ns.member_count("r"), 0, "the new socket did not inherit the old one's rooms");
}

#[test]
fn connecting_an_already_connected_sid_is_misuse() {
    let mut ns = NamespaceRooms::new();
    ns.connect(sid(1)).unwrap();
    assert!(matches!(ns.connect(sid(1)), Err(Error::Misuse(_))));
    assert_eq!(ns.socket_count(), 1);
}

#[test]
fn disabled_events_are_not_recorded_but_membership_still_changes() {
    let mut ns = NamespaceRooms::new();
    ns.set_events_enabled(false);
    let s = ns.connect(sid(1)).unwrap();
    ns.join(s, "r").unwrap();
    assert_eq!(ns.poll_event(), None);
    assert_eq!(ns.member_count("r"), 1);
    assert_eq!(ns.room_count(), 2);
    ns.set_events_enabled(true);
    ns.leave(s, "r").unwrap();
    assert_eq!(drain(&mut ns), [LeaveRoom(name("r"), sid(1)), DeleteRoom(name("r"))]);
}

#[test]
fn views_list_members_in_slot_order_and_every_room_once() {
    let mut ns = NamespaceRooms::new();
    let ids: Vec<_> = (0..4).map(|n| ns.connect(sid(n)).unwrap()).collect();
    for &s in ids.iter().rev() {
        ns.join(s, "all").unwrap();
    }
    assert_eq!(ns.members("all").collect::<Vec<_>>(), ids);
    assert_eq!(ns.members("nope").count(), 0);
    let mut rooms: Vec<&str> = ns.all_rooms().collect();
    rooms.sort_unstable();
    let mut expected: Vec<String> = (0..4).map(|n| sid(n).to_string()).chain(["all".into()]).collect();
    expected.sort_unstable();
    assert_eq!(rooms, expected);
    assert_eq!(ns.room_count(), 5);
}

#[test]
fn membership_survives_the_sparse_to_dense_switch_and_back() {
    let mut ns = NamespaceRooms::new();
    let ids: Vec<_> = (0..200u8)
        .map(|n| ns.connect(Sid::from_random([n, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])).unwrap())
        .collect();
    for &s in &ids {
        ns.join(s, "big").unwrap();
    }
    let is_dense = |ns: &NamespaceRooms| ns.rooms.lookup("big").map(|id| ns.rooms.members(id).is_dense());
    assert_eq!(ns.member_count("big"), 200);
    assert_eq!(is_dense(&ns), Some(true));
    for &s in &ids[..197] {
        ns.leave(s, "big").unwrap();
    }
    assert_eq!(is_dense(&ns), Some(false), "3 members * 64 < 200 slots");
    assert_eq!(ns.members("big").collect::<Vec<_>>(), ids[197..]);
    assert_eq!(rooms_of(&ns, ids[199])[1], "big");
}
