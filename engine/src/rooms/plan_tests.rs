//! Broadcast planning rules: union, except rooms and sockets, everyone, unknown rooms, stale slots,
//! and every strategy (one list walked, several sparse lists scattered into a bitmap, word walk over
//! dense sets).

use super::control_tests::sid;
use super::{BroadcastFlags, BroadcastSpec, BroadcastTarget, NamespaceRooms, RoomName, Scratch};
use crate::ids::{Sid, SocketId};

fn target(to: &[&str], except: &[&str], except_sids: &[Sid]) -> BroadcastTarget {
    BroadcastTarget {
        to: to.iter().map(|&r| RoomName::from(r)).collect(),
        except: except.iter().map(|&r| RoomName::from(r)).collect(),
        except_sids: except_sids.to_vec(),
        flags: BroadcastFlags::default(),
    }
}

fn plan(ns: &NamespaceRooms, t: &BroadcastTarget) -> Vec<SocketId> {
    let mut spec = BroadcastSpec::new();
    ns.resolve(t, &mut spec);
    ns.plan(&spec, &mut Scratch::default()).collect()
}

/// What the reference `apply` computes, from the public views only.
fn oracle(ns: &NamespaceRooms, sockets: &[SocketId], t: &BroadcastTarget) -> Vec<SocketId> {
    let mut out: Vec<SocketId> = sockets
        .iter()
        .copied()
        .filter(|&s| {
            let Some(rooms) = ns.rooms_of(s) else { return false };
            let rooms: Vec<&str> = rooms.collect();
            let mut to = t.to.iter().map(RoomName::as_str);
            let mut except =
                t.except.iter().map(RoomName::as_str).chain(t.except_sids.iter().map(Sid::as_str));
            let wanted = t.to.is_empty() || to.any(|n| rooms.contains(&n));
            let excepted = except.any(|n| rooms.contains(&n));
            wanted && !excepted
        })
        .collect();
    out.sort_unstable_by_key(|s| s.slot());
    out
}

/// `n` sockets; socket `i` is in room `"m{k}"` for every `k` dividing `i + 1`, and in `"all"`.
fn fixture(n: u32) -> (NamespaceRooms, Vec<SocketId>) {
    let mut ns = NamespaceRooms::new();
    ns.set_events_enabled(false);
    let mut sockets = Vec::new();
    for i in 0..n {
        let mut random = [0u8; 15];
        random[..4].copy_from_slice(&i.to_le_bytes());
        let s = ns.connect(Sid::from_random(random)).unwrap();
        for k in 1..=64 {
            if (i + 1) % k == 0 {
                ns.join(s, &format!("m{k}")).unwrap();
            }
        }
        ns.join(s, "all").unwrap();
        sockets.push(s);
    }
    (ns, sockets)
}

#[test]
fn empty_to_reaches_every_socket_even_one_in_no_room() {
    let mut ns = NamespaceRooms::new();
    let a = ns.connect(sid(1)).unwrap();
    let b = ns.connect(sid(2)).unwrap();
    ns.leave_all(b).unwrap();
    assert_eq!(plan(&ns, &target(&[], &[], &[])), [a, b]);
}

#[test]
fn unknown_rooms_reach_nobody_not_everybody() {
    let mut ns = NamespaceRooms::new();
    let a = ns.connect(sid(1)).unwrap();
    ns.join(a, "known").unwrap();
    assert_eq!(plan(&ns, &target(&["ghost"], &[], &[])), []);
    assert_eq!(plan(&ns, &target(&["ghost", "known"], &["ghost"], &[])), [a]);
}

/// A namespace with `n` sockets in no room, connected first: with 300 of them, rooms of a few
/// members stay sparse (a list walk, or the scatter bitmap); with none, they are dense (word walk).
fn with_fillers(n: u16) -> NamespaceRooms {
    let mut ns = NamespaceRooms::new();
    for i in 0..n {
        let mut random = [0xf0; 15];
        random[..2].copy_from_slice(&i.to_le_bytes());
        ns.connect(Sid::from_random(random)).unwrap();
    }
    ns
}

fn is_dense(ns: &NamespaceRooms, room: &str) -> bool {
    ns.rooms.lookup(room).is_some_and(|id| ns.rooms.members(id).is_dense())
}

#[test]
fn union_delivers_once_to_a_socket_in_several_target_rooms() {
    for fillers in [0, 300] {
        let mut ns = with_fillers(fillers);
        let a = ns.connect(sid(1)).unwrap();
        let b = ns.connect(sid(2)).unwrap();
        let c = ns.connect(sid(3)).unwrap();
        ns.join_many(a, ["x", "y"]).unwrap();
        ns.join(b, "y").unwrap();
        ns.join(c, "z").unwrap();
        assert_eq!(is_dense(&ns, "y"), fillers == 0);
        let a_room = sid(1).to_string();
        assert_eq!(plan(&ns, &target(&["x", "y", "x", &a_room], &[], &[])), [a, b], "{fillers} fillers");
    }
}

#[test]
fn except_rooms_and_the_sender_are_left_out() {
    for fillers in [0, 300] {
        let mut ns = with_fillers(fillers);
        let ids: Vec<SocketId> = (1..=4).map(|n| ns.connect(sid(n)).unwrap()).collect();
        for &s in &ids {
            ns.join(s, "game").unwrap();
        }
        ns.join(ids[1], "muted").unwrap();
        assert_eq!(is_dense(&ns, "game"), fillers == 0);
        // socket.to("game").except("muted").emit() from ids[0]
        assert_eq!(plan(&ns, &target(&["game"], &["muted"], &[sid(1)])), [ids[2], ids[3]]);
        // except(sid) is the sid's room: a guest who joined it is excluded too (reference semantics).
        ns.join(ids[2], sid(1).as_str()).unwrap();
        assert_eq!(plan(&ns, &target(&["game"], &[], &[sid(1)])), [ids[1], ids[3]], "{fillers} fillers");
    }
    // socket.broadcast.emit(): everyone but the sender
    let mut ns = NamespaceRooms::new();
    let ids: Vec<SocketId> = (1..=4).map(|n| ns.connect(sid(n)).unwrap()).collect();
    assert_eq!(plan(&ns, &target(&[], &[], &[sid(4)])), ids[..3]);
}

#[test]
fn own_room_targets_only_a_socket_still_in_it() {
    let mut ns = NamespaceRooms::new();
    let a = ns.connect(sid(1)).unwrap();
    ns.connect(sid(2)).unwrap();
    assert_eq!(plan(&ns, &target(&[sid(1).as_str()], &[], &[])), [a]);
    ns.leave(a, sid(1).as_str()).unwrap();
    assert_eq!(plan(&ns, &target(&[sid(1).as_str()], &[], &[])), []);
    assert_eq!(
        plan(&ns, &target(&[], &[], &[sid(1)])).len(),
        2,
        "a left its room: except(sid) no longer hits it"
    );
}

/// A spec resolved before a socket left must not reach (or spare) the socket reusing its slot.
#[test]
fn spec_naming_a_departed_socket_does_not_touch_the_slot_reuser() {
    let mut ns = NamespaceRooms::new();
    let old = ns.connect(sid(1)).unwrap();
    let other = ns.connect(sid(2)).unwrap();
    let mut to_old = BroadcastSpec::new();
    let mut all_but_old = BroadcastSpec::new();
    ns.resolve(&target(&[sid(1).as_str()], &[], &[]), &mut to_old);
    ns.resolve(&target(&[], &[], &[sid(1)]), &mut all_but_old);
    ns.remove(old).unwrap();
    let new = ns.connect(sid(3)).unwrap();
    assert_eq!(new.slot(), old.slot());
    let mut scratch = Scratch::default();
    assert_eq!(ns.plan(&to_old, &mut scratch).collect::<Vec<_>>(), []);
    assert_eq!(ns.plan(&all_but_old, &mut scratch).collect::<Vec<_>>(), [new, other]);
}

#[test]
fn recipients_come_in_slot_order_and_flags_pass_through() {
    let mut ns = NamespaceRooms::new();
    let ids: Vec<SocketId> = (1..=3).map(|n| ns.connect(sid(n)).unwrap()).collect();
    for &s in ids.iter().rev() {
        ns.join(s, "r").unwrap();
    }
    let mut t = target(&["r"], &[], &[]);
    t.flags = BroadcastFlags { volatile: true, local: true, compress: false, timeout: Some(250) };
    let mut spec = BroadcastSpec::new();
    ns.resolve(&t, &mut spec);
    assert_eq!(spec.flags(), t.flags);
    assert_eq!(ns.plan(&spec, &mut Scratch::default()).collect::<Vec<_>>(), ids);
    assert!(BroadcastFlags::default().compress, "socket.io compresses unless told not to");
}

/// 1000 sockets: `all`, `m1`, `m2` are dense, `m40`+ sparse; every mix of strategies against the oracle,
/// with one `Scratch` and one spec reused across all of them.
#[test]
fn dense_sparse_and_mixed_plans_match_the_reference_computation() {
    let (ns, sockets) = fixture(1000);
    let dense = |room: &str| ns.rooms.lookup(room).map(|id| ns.rooms.members(id).is_dense());
    assert_eq!((dense("m1"), dense("m2"), dense("m40")), (Some(true), Some(true), Some(false)));
    let s7 = ns.sid(sockets[7]).unwrap();
    let cases: [(&[&str], &[&str], &[Sid]); 14] = [
        (&["m40"], &[], &[]),
        (&["m40", "m41", "m42", "m43", "m44", "m45", "m60"], &["m8"], &[s7]),
        (&["m40", "m60", "m50", "m64", s7.as_str()], &[], &[]),
        (&["m40", "m64", "m41"], &["m8"], &[]),
        (&["m40", "m60"], &["m5", "m3"], &[s7]),
        (&["m2"], &[], &[]),
        (&["m2"], &["m3"], &[s7]),
        (&["m2", "m3", "m5"], &["m4", "m7"], &[]),
        (&["m2", "m41"], &["m6"], &[]),
        (&["m3", "m64"], &["m2", "ghost"], &[s7]),
        (&[], &["m2"], &[]),
        (&[], &["m40", "m3"], &[s7]),
        (&["all"], &["all"], &[]),
        (&["m1", s7.as_str()], &["m64"], &[]),
    ];
    let mut spec = BroadcastSpec::new();
    let mut scratch = Scratch::default();
    for (to, except, except_sids) in cases {
        let t = target(to, except, except_sids);
        ns.resolve(&t, &mut spec);
        let got: Vec<SocketId> = ns.plan(&spec, &mut scratch).collect();
        assert_eq!(got, oracle(&ns, &sockets, &t), "to {to:?} except {except:?}");
    }
}

#[test]
fn plan_skips_slots_freed_between_words() {
    let (mut ns, sockets) = fixture(300);
    for &s in sockets.iter().step_by(3) {
        ns.remove(s).unwrap();
    }
    let live: Vec<SocketId> = sockets.iter().copied().filter(|&s| ns.sid(s).is_some()).collect();
    for room in [&[][..], &["all"][..], &["m2", "m50"][..]] {
        let t = target(room, &["m7"], &[]);
        assert_eq!(plan(&ns, &t), oracle(&ns, &live, &t), "to {room:?}");
    }
}

/// A few members spread over 20k slots (far fewer than one per 4 words): the sparse targets are
/// scattered into a bitmap and read back non-zero word by non-zero word — through the summaries, in
/// slot order, when an except is a list too big to clear from the bitmap (`every200`); else by the
/// words touched, in no promised order, with small excepts cleared and a dense one (`odd`) checked
/// per word. Internal iteration (`fold`), from the start or after some `next` calls, yields the same
/// recipients in the same order.
#[test]
fn few_members_over_a_big_shard_are_scattered_and_read_back_once_each() {
    let mut ns = NamespaceRooms::new();
    ns.set_events_enabled(false);
    let ids: Vec<SocketId> = (0..20_000u32)
        .map(|i| {
            let mut random = [0xa5; 15];
            random[..4].copy_from_slice(&i.to_le_bytes());
            ns.connect(Sid::from_random(random)).unwrap()
        })
        .collect();
    let rooms: [(&str, Vec<usize>); 5] = [
        ("a", vec![3, 9000, 19_999]),
        ("b", vec![64, 65, 9000, 15_000]),
        ("x", vec![15_000]),
        ("every200", (0..20_000).step_by(200).collect()),
        ("odd", (1..20_000).step_by(2).collect()),
    ];
    for (room, members) in &rooms {
        for &i in members {
            ns.join(ids[i], room).unwrap();
        }
    }
    assert!(is_dense(&ns, "odd") && !is_dense(&ns, "every200"));
    let (sender, own) = (ns.sid(ids[65]).unwrap(), ns.sid(ids[7]).unwrap());
    let cases: [(&[&str], &[&str], Vec<usize>); 3] = [
        (&["a", "b", own.as_str()], &["x", "every200"], vec![3, 7, 64, 19_999]),
        (&["a", "b"], &["odd"], vec![64, 9000, 15_000]),
        (&["b", "a"], &[], vec![3, 64, 9000, 15_000, 19_999]),
    ];
    let mut spec = BroadcastSpec::new();
    let mut scratch = Scratch::default();
    for (k, (to, except, expected)) in cases.into_iter().enumerate() {
        let t = target(to, except, &[sender]);
        let expected: Vec<SocketId> = expected.iter().map(|&i| ids[i]).filter(|&s| s != ids[65]).collect();
        let in_order = plan(&ns, &t);
        if k == 0 {
            assert_eq!(in_order, expected, "the summary walk yields slot order");
        }
        assert_eq!(sorted(in_order.clone()), expected, "to {to:?} except {except:?}");
        assert_eq!(oracle(&ns, &ids, &t), expected);
        ns.resolve(&t, &mut spec);
        let folded = ns.plan(&spec, &mut scratch).fold(Vec::new(), |mut v, s| {
            v.push(s);
            v
        });
        assert_eq!(folded, in_order, "fold and next agree on the order");
        let mut recipients = ns.plan(&spec, &mut scratch);
        let mut got: Vec<SocketId> = recipients.by_ref().take(2).collect();
        recipients.for_each(|s| got.push(s));
        assert_eq!(got, in_order, "fold after two calls to next");
    }
}

fn sorted(mut ids: Vec<SocketId>) -> Vec<SocketId> {
    ids.sort_unstable_by_key(|s| s.slot());
    ids
}
