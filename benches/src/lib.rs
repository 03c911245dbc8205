//! Shared helpers for Roomcast's benchmarks: baselines measured in the same run, and fixtures that
//! build the same state in Roomcast's engine and in the baseline.
//!
//! [`NaiveRooms`] is the textbook room registry — `HashMap<String, HashSet<u64>>`, broadcast computed
//! as socket.io's in-memory adapter does (collect the except set, walk each target room, dedup through
//! a `delivered` set). It is kept lean in the baseline's favour: no own room per socket (the sender is
//! excluded by id), no events.

use roomcast_engine::ids::{Sid, SocketId};
use roomcast_engine::rooms::NamespaceRooms;
use std::collections::{HashMap, HashSet};

/// The naive baseline: room name → member ids, socket id → joined rooms.
#[derive(Debug, Default)]
pub struct NaiveRooms {
    rooms: HashMap<String, HashSet<u64>>,
    sockets: HashMap<u64, Vec<String>>,
}

impl NaiveRooms {
    pub fn connect(&mut self, id: u64) {
        self.sockets.entry(id).or_default();
    }

    /// Adds `id` to `room`; a repeated join is a no-op.
    pub fn join(&mut self, id: u64, room: &str) {
        let members = match self.rooms.get_mut(room) {
            Some(members) => members,
            None => self.rooms.entry(room.to_string()).or_default(),
        };
        if members.insert(id) {
            self.sockets.entry(id).or_default().push(room.to_string());
        }
    }

    /// Removes `id` from `room`, deleting the room when it empties.
    pub fn leave(&mut self, id: u64, room: &str) {
        let Some(members) = self.rooms.get_mut(room) else { return };
        if members.remove(&id) {
            if let Some(joined) = self.sockets.get_mut(&id) {
                joined.retain(|r| r != room);
            }
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Calls `deliver` once per recipient: union of `to` (every socket if empty) minus the members of
    /// `except` minus `except_ids`. Allocates its except and dedup sets per call, as the reference does.
    pub fn broadcast(&self, to: &[&str], except: &[&str], except_ids: &[u64], mut deliver: impl FnMut(u64)) {
        let mut excluded: HashSet<u64> = except_ids.iter().copied().collect();
        for room in except {
            if let Some(members) = self.rooms.get(*room) {
                excluded.extend(members);
            }
        }
        if to.is_empty() {
            for id in self.sockets.keys().filter(|id| !excluded.contains(id)) {
                deliver(*id);
            }
            return;
        }
        let mut delivered = HashSet::new();
        for members in to.iter().filter_map(|room| self.rooms.get(*room)) {
            for &id in members {
                if !excluded.contains(&id) && delivered.insert(id) {
                    deliver(id);
                }
            }
        }
    }
}

/// The rooms of every rooms-benchmark fixture: `t*` are targets, `x*` are excepted; `10` = 10
/// members, `1p` = 1% of the shard, `50` = 50% of the shard.
pub fn bench_rooms(n: usize) -> Vec<(String, usize)> {
    let mut rooms = Vec::new();
    for (prefix, size, count) in [("t10", 10, 5), ("x10", 10, 2), ("t1p", n / 100, 5), ("x1p", n / 100, 2)] {
        rooms.extend((0..count).map(|k| (format!("{prefix}_{k}"), size)));
    }
    rooms.extend((0..2).map(|k| (format!("t50_{k}"), n / 2)));
    rooms.push(("x50_0".to_string(), n / 2));
    rooms
}

/// A broadcast of the rooms benchmarks: `(label, to, except, exclude the sender)`. Empty `to` = every
/// socket; the sender is fixture socket 0.
pub type BroadcastCase = (&'static str, &'static [&'static str], &'static [&'static str], bool);

/// The broadcasts measured by `benches/rooms.rs` and `rooms-minima`.
pub const BROADCAST_CASES: [BroadcastCase; 8] = [
    ("to1_r10", &["t10_0"], &[], false),
    ("to5_r10_ex2_r10", &["t10_0", "t10_1", "t10_2", "t10_3", "t10_4"], &["x10_0", "x10_1"], true),
    ("to1_1pct", &["t1p_0"], &[], false),
    ("to3_1pct_ex1_1pct", &["t1p_0", "t1p_1", "t1p_2"], &["x1p_0"], true),
    ("to1_50pct", &["t50_0"], &[], false),
    ("to2_50pct_ex2_1pct", &["t50_0", "t50_1"], &["x1p_0", "x1p_1"], true),
    ("to5_mixed_ex2", &["t50_0", "t1p_0", "t1p_1", "t10_0", "t10_1"], &["x50_0", "x10_0"], true),
    ("everyone_but_sender", &[], &[], true),
];

/// The fixture of the rooms benchmarks: `n` sockets in [`bench_rooms`]`(n)`.
pub fn bench_fixture(n: usize) -> Fixture {
    let rooms = bench_rooms(n);
    let borrowed: Vec<(&str, usize)> = rooms.iter().map(|(name, size)| (name.as_str(), *size)).collect();
    build_fixture(n, &borrowed, 0x5eed)
}

/// The [`BroadcastTarget`](roomcast_engine::rooms::BroadcastTarget) of a case.
pub fn case_target(case: &BroadcastCase) -> roomcast_engine::rooms::BroadcastTarget {
    let (_, to, except, sender) = *case;
    roomcast_engine::rooms::BroadcastTarget {
        to: to.iter().map(|&r| roomcast_engine::rooms::RoomName::from(r)).collect(),
        except: except.iter().map(|&r| roomcast_engine::rooms::RoomName::from(r)).collect(),
        except_sids: if sender { vec![sid_of(0)] } else { Vec::new() },
        ..Default::default()
    }
}

/// `PAIRS` fixture sockets (indexes), drawn at random, that are not members of `room`: the join +
/// leave batch of the rooms benchmarks.
pub fn join_leave_batch(fx: &Fixture, room: &str, pairs: usize) -> Vec<usize> {
    let members: HashSet<u32> = fx.ours.members(room).map(|s| s.slot()).collect();
    let mut rng = SplitMix64(42);
    let mut batch = Vec::with_capacity(pairs);
    while batch.len() < pairs {
        let i = rng.below(fx.ids.len());
        if !members.contains(&(i as u32)) {
            batch.push(i);
        }
    }
    batch
}

/// A small deterministic PRNG (SplitMix64) so fixtures are the same on every run.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The same sockets and rooms in Roomcast's engine and in the baseline. Socket `i` has baseline id `i`
/// and engine id `ids[i]`.
#[derive(Debug)]
pub struct Fixture {
    pub ours: NamespaceRooms,
    pub naive: NaiveRooms,
    pub ids: Vec<SocketId>,
    pub sids: Vec<Sid>,
}

/// The public id of fixture socket `i`.
pub fn sid_of(i: usize) -> Sid {
    let mut random = [0u8; 15];
    random[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Sid::from_random(random)
}

/// `sockets` sockets; each `(name, size)` room gets `size` distinct members chosen at random. Engine
/// events are off (a server without adapter listeners).
pub fn build_fixture(sockets: usize, rooms: &[(&str, usize)], seed: u64) -> Fixture {
    let mut ours = NamespaceRooms::new();
    ours.set_events_enabled(false);
    let mut naive = NaiveRooms::default();
    let mut ids = Vec::with_capacity(sockets);
    let mut sids = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let sid = sid_of(i);
        // The fixture's sids are distinct by construction.
        let Ok(id) = ours.connect(sid) else { continue };
        naive.connect(i as u64);
        ids.push(id);
        sids.push(sid);
    }
    let mut rng = SplitMix64(seed);
    let mut pool: Vec<u32> = (0..ids.len() as u32).collect();
    for &(name, size) in rooms {
        let members = sample(&mut rng, &mut pool, size);
        for &i in members {
            if let Some(&id) = ids.get(i as usize) {
                let _ = ours.join(id, name);
                naive.join(u64::from(i), name);
            }
        }
    }
    Fixture { ours, naive, ids, sids }
}

/// `size` distinct values of `pool`, ascending (a partial Fisher–Yates shuffle, then a sort).
fn sample<'p>(rng: &mut SplitMix64, pool: &'p mut [u32], size: usize) -> &'p [u32] {
    let size = size.min(pool.len());
    for k in 0..size {
        let j = k + rng.below(pool.len() - k);
        pool.swap(k, j);
    }
    let chosen = &mut pool[..size];
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_engine::rooms::{BroadcastSpec, BroadcastTarget, RoomName, Scratch};

    #[test]
    fn baseline_and_engine_agree_on_a_fixture() {
        let mut fx = build_fixture(2000, &[("a", 10), ("b", 700), ("c", 1200), ("x", 300)], 7);
        fx.naive.leave(5, "c");
        if let Some(&id) = fx.ids.get(5) {
            fx.ours.leave(id, "c").unwrap();
        }
        for (to, except) in [(&["a"][..], &[][..]), (&["b", "c"][..], &["x"][..]), (&[][..], &["a", "x"][..])]
        {
            let mut naive = Vec::new();
            fx.naive.broadcast(to, except, &[3], |id| naive.push(id));
            naive.sort_unstable();
            let target = BroadcastTarget {
                to: to.iter().map(|&r| RoomName::from(r)).collect(),
                except: except.iter().map(|&r| RoomName::from(r)).collect(),
                except_sids: vec![sid_of(3)],
                ..Default::default()
            };
            let mut spec = BroadcastSpec::new();
            fx.ours.resolve(&target, &mut spec);
            let mut ours: Vec<u64> =
                fx.ours.plan(&spec, &mut Scratch::default()).map(|s| u64::from(s.slot())).collect();
            ours.sort_unstable();
            assert_eq!(ours, naive, "to {to:?} except {except:?}");
        }
    }
}
