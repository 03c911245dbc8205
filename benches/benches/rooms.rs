//! Rooms benchmarks: broadcast planning, join+leave, and member-set iteration, each against the naive
//! `HashMap<String, HashSet<u64>>` baseline (`roomcast_benches::NaiveRooms`) measured in the same run.
//!
//! `cargo bench -p roomcast-benches --bench rooms` — results and method in docs/BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roomcast_benches::{bench_fixture, case_target, join_leave_batch, SplitMix64, BROADCAST_CASES};
use roomcast_engine::rooms::{BroadcastSpec, MemberSet, Scratch};
use std::time::Duration;

/// Shard sizes (sockets of one namespace on one shard).
const SHARDS: [(&str, usize); 3] = [("1k", 1_000), ("100k", 100_000), ("1M", 1_000_000)];

fn plan(c: &mut Criterion) {
    for (shard, n) in SHARDS {
        let fx = bench_fixture(n);
        for case in &BROADCAST_CASES {
            let (label, to, except, sender) = *case;
            let target = case_target(case);
            let except_ids: &[u64] = if sender { &[0] } else { &[] };
            let mut spec = BroadcastSpec::new();
            let mut scratch = Scratch::default();
            fx.ours.resolve(&target, &mut spec);
            let recipients = fx.ours.plan(&spec, &mut scratch).count();
            let mut naive_count = 0;
            fx.naive.broadcast(to, except, except_ids, |_| naive_count += 1);
            assert_eq!(recipients, naive_count, "{shard}/{label}: engine and baseline disagree");

            let mut group = c.benchmark_group(format!("rooms/plan/{shard}/{label}"));
            group.throughput(Throughput::Elements(recipients.max(1) as u64));
            group.bench_function("roomcast", |b| {
                b.iter(|| {
                    fx.ours.resolve(black_box(&target), &mut spec);
                    // `fold` (what `for_each` and the server's delivery loop use), not `next`; each
                    // slot through `black_box`, or a list walk's sum gets vectorised.
                    let acc = fx
                        .ours
                        .plan(&spec, &mut scratch)
                        .fold(0u64, |acc, s| acc.wrapping_add(u64::from(black_box(s.slot()))));
                    black_box(acc)
                })
            });
            group.bench_function("naive", |b| {
                b.iter(|| {
                    let mut acc = 0u64;
                    fx.naive.broadcast(black_box(to), except, except_ids, |id| {
                        acc = acc.wrapping_add(black_box(id))
                    });
                    black_box(acc)
                })
            });
            group.finish();
        }
    }
}

/// Join then leave, a batch of sockets that are not yet members of the room.
fn join_leave(c: &mut Criterion) {
    const PAIRS: usize = 1000;
    for (shard, n) in [("100k", 100_000), ("1M", 1_000_000)] {
        let mut fx = bench_fixture(n);
        for room in ["t10_0", "t1p_0", "t50_0"] {
            let batch = join_leave_batch(&fx, room, PAIRS);
            let mut group = c.benchmark_group(format!("rooms/join_leave/{shard}"));
            group.throughput(Throughput::Elements(PAIRS as u64));
            group.bench_function(BenchmarkId::new("roomcast", room), |b| {
                b.iter(|| {
                    for &i in &batch {
                        let id = fx.ids[i];
                        let _ = fx.ours.join(id, black_box(room));
                        let _ = fx.ours.leave(id, room);
                    }
                })
            });
            group.bench_function(BenchmarkId::new("naive", room), |b| {
                b.iter(|| {
                    for &i in &batch {
                        fx.naive.join(i as u64, black_box(room));
                        fx.naive.leave(i as u64, room);
                    }
                })
            });
            group.finish();
        }
    }
}

/// Builds the same set twice, forcing each representation through the `universe` argument (huge:
/// stays a list; 0: turns dense at once).
fn both_representations(members: impl Iterator<Item = u32> + Clone) -> (MemberSet, MemberSet) {
    let (mut sparse, mut dense) = (MemberSet::new(), MemberSet::new());
    for slot in members.clone() {
        sparse.insert(slot, usize::MAX);
    }
    for slot in members {
        dense.insert(slot, 0);
    }
    assert!(!sparse.is_dense() && dense.is_dense());
    (sparse, dense)
}

/// Iterating one set in each representation, members drawn at random at 1-in-256 .. 1-in-32 of a
/// 128k-slot shard: the evidence for `DENSE_FACTOR`. Random, not evenly spaced, members: a bitset walk's branches then mispredict as
/// they would on a real room.
fn set_iter(c: &mut Criterion) {
    const UNIVERSE: usize = 1 << 17;
    let mut group = c.benchmark_group("rooms/set_iter/128k");
    for per in [256usize, 64, 32] {
        let mut rng = SplitMix64(per as u64);
        let mut members: Vec<u32> = (0..UNIVERSE as u32).collect();
        for k in 0..UNIVERSE / per {
            let j = k + rng.below(UNIVERSE - k);
            members.swap(k, j);
        }
        members.truncate(UNIVERSE / per);
        let (sparse, dense) = both_representations(members.iter().copied());
        group.throughput(Throughput::Elements((UNIVERSE / per) as u64));
        for (name, set) in [("sparse", &sparse), ("dense", &dense)] {
            group.bench_function(BenchmarkId::new(name, format!("1_in_{per}")), |b| {
                b.iter(|| black_box(set).iter().fold(0u64, |acc, s| acc.wrapping_add(u64::from(s))))
            });
        }
    }
    group.finish();
}

/// Insert + remove of an absent slot in a set of 1k, 4k, 16k and 31k members (the last: 1 in 32 of a
/// 1M-slot shard, the switch point) in each representation: a list's sorted insertion moves at most
/// one chunk (256 members), so it should stay flat as the set grows.
fn set_insert_remove(c: &mut Criterion) {
    const PAIRS: usize = 1000;
    let mut group = c.benchmark_group("rooms/set_insert_remove/1M");
    group.throughput(Throughput::Elements(PAIRS as u64));
    for members in [1_000u32, 4_000, 16_000, 31_000] {
        let step = (1_000_000 / members) & !1; // even slots only: the odd ones are absent
        let (mut sparse, mut dense) = both_representations((0..members).map(|k| k * step));
        let mut rng = SplitMix64(7);
        let absent: Vec<u32> = (0..PAIRS).map(|_| (rng.below(1_000_000) as u32) | 1).collect();
        for (name, set, universe) in [("sparse", &mut sparse, usize::MAX), ("dense", &mut dense, 0)] {
            group.bench_function(BenchmarkId::new(name, format!("{}k_members", members / 1000)), |b| {
                b.iter(|| {
                    for &slot in &absent {
                        set.insert(black_box(slot), universe);
                        set.remove(slot, universe);
                    }
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! { name = benches; config = config(); targets = plan, join_leave, set_iter, set_insert_remove }
criterion_main!(benches);
