//! `rooms-minima`: the broadcasts and join + leave batches of `benches/rooms.rs` (same fixtures, same
//! cases), Roomcast against the naive baseline in one process, the two timed alternately and the
//! minimum of every round kept. On a loaded machine criterion's medians move by ±50% between runs;
//! a minimum over interleaved rounds is what the code can do, and both sides get the same chances.
//!
//! `cargo run --release -p roomcast-benches --bin rooms-minima -- [rounds=25] [shards=1k,100k,1M]`
//!
//! Prints Markdown tables (docs/BENCHMARKS.md, "Rooms"). Each recipient's slot (Roomcast) or id
//! (naive) goes through `black_box`, as in the criterion bench.

use roomcast_benches::{bench_fixture, case_target, join_leave_batch, BROADCAST_CASES};
use roomcast_engine::rooms::{BroadcastSpec, Scratch};
use std::hint::black_box;
use std::time::Instant;

/// Nanoseconds per call of `f`, over `reps` calls.
fn per_call(reps: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_nanos() as f64 / reps as f64
}

/// Calls per timing so that one timing lasts about 200 µs (at least 1).
fn reps_for(nanos_per_call: f64) -> usize {
    ((200_000.0 / nanos_per_call.max(20.0)) as usize).clamp(1, 20_000)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let shards = args.next().unwrap_or_else(|| "1k,100k,1M".to_string());
    println!("Minimum of {rounds} alternating rounds.\n");
    println!("| shard | case | recipients | Roomcast | ns/rcpt | naive | ns/rcpt | ratio |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut join_leave_rows = Vec::new();
    for (shard, n) in [("1k", 1_000), ("100k", 100_000), ("1M", 1_000_000)] {
        if !shards.split(',').any(|s| s == shard) {
            continue;
        }
        let mut fx = bench_fixture(n);
        let (mut spec, mut scratch) = (BroadcastSpec::new(), Scratch::default());
        for case in &BROADCAST_CASES {
            let (label, to, except, sender) = *case;
            let target = case_target(case);
            let except_ids: &[u64] = if sender { &[0] } else { &[] };
            let ours = &fx.ours;
            let mut roomcast = || {
                ours.resolve(black_box(&target), &mut spec);
                let sum = ours
                    .plan(&spec, &mut scratch)
                    .fold(0u64, |acc, s| acc.wrapping_add(u64::from(black_box(s.slot()))));
                black_box(sum);
            };
            let naive = &fx.naive;
            let mut baseline = || {
                let mut sum = 0u64;
                naive
                    .broadcast(black_box(to), except, except_ids, |id| sum = sum.wrapping_add(black_box(id)));
                black_box(sum);
            };
            let (ours_reps, naive_reps) =
                (reps_for(per_call(3, &mut roomcast)), reps_for(per_call(1, &mut baseline)));
            let (mut best_ours, mut best_naive) = (f64::MAX, f64::MAX);
            for _ in 0..rounds {
                best_ours = best_ours.min(per_call(ours_reps, &mut roomcast));
                best_naive = best_naive.min(per_call(naive_reps, &mut baseline));
            }
            ours.resolve(&target, &mut spec);
            let recipients = ours.plan(&spec, &mut scratch).count().max(1) as f64;
            println!(
                "| {shard} | `{label}` | {recipients} | {} | {:.2} | {} | {:.1} | {:.1}× |",
                time(best_ours),
                best_ours / recipients,
                time(best_naive),
                best_naive / recipients,
                best_naive / best_ours
            );
        }
        if n < 100_000 {
            continue;
        }
        for room in ["t10_0", "t1p_0", "t50_0"] {
            let batch = join_leave_batch(&fx, room, 1000);
            let (mut best_ours, mut best_naive) = (f64::MAX, f64::MAX);
            for _ in 0..rounds {
                best_ours = best_ours.min(per_call(1, || {
                    for &i in &batch {
                        let _ = fx.ours.join(fx.ids[i], black_box(room));
                        let _ = fx.ours.leave(fx.ids[i], room);
                    }
                }));
                best_naive = best_naive.min(per_call(1, || {
                    for &i in &batch {
                        fx.naive.join(i as u64, black_box(room));
                        fx.naive.leave(i as u64, room);
                    }
                }));
            }
            let rate = |nanos: f64| batch.len() as f64 * 1e3 / nanos;
            join_leave_rows.push(format!(
                "| {shard} | `{room}` | {:.2} M/s | {:.2} M/s | {:.2}× |",
                rate(best_ours),
                rate(best_naive),
                best_naive / best_ours
            ));
        }
    }
    if !join_leave_rows.is_empty() {
        println!("\n| shard | join + leave, room | Roomcast | naive | ratio |\n|---|---|---:|---:|---:|");
        println!("{}", join_leave_rows.join("\n"));
    }
}

/// A duration in ns, µs or ms, three significant figures.
fn time(nanos: f64) -> String {
    let (value, unit) = match nanos {
        n if n >= 1e6 => (n / 1e6, "ms"),
        n if n >= 1e3 => (n / 1e3, "µs"),
        n => (n, "ns"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}
