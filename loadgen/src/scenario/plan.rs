//! Who joins which room, and where each message goes: pure functions of the seed, so every worker
//! process (and a rerun with the same `--seed`) computes the same plan without talking to the others.

use crate::client::pool::splitmix;

/// The name on the wire of room number `room` (rooms are numbered `0..rooms`): `r<n>`.
pub fn room_name(room: u32) -> String {
    format!("r{room}")
}

/// A small deterministic generator (SplitMix64 stream) for plans.
#[derive(Debug, Clone)]
pub struct PlanRng(u64);

impl PlanRng {
    /// The stream for `(seed, a, b)`: different streams for different arguments.
    pub fn new(seed: u64, a: u64, b: u64) -> PlanRng {
        PlanRng(splitmix(seed ^ splitmix(a.wrapping_mul(0x9e37_79b9).wrapping_add(splitmix(b)))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.0)
    }

    /// A number in `0..n` (n ≥ 1; 0 for n = 0). Bias below 2^-32 for n < 2^32.
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// `k` distinct numbers from `0..n` (all of them when k ≥ n), in increasing order.
    pub fn distinct(&mut self, k: u32, n: u32) -> Vec<u32> {
        if k >= n {
            return (0..n).collect();
        }
        let mut out: Vec<u32> = Vec::with_capacity(k as usize);
        while out.len() < k as usize {
            let pick = self.below(n);
            if !out.contains(&pick) {
                out.push(pick);
            }
        }
        out.sort_unstable();
        out
    }
}

/// Room membership of a run: connection `c` of `0..conns` joins `per_conn` distinct rooms of
/// `0..rooms`. Memory: the member lists, one `u32` per membership.
#[derive(Debug, Clone)]
pub struct RoomPlan {
    seed: u64,
    rooms: u32,
    per_conn: u32,
    members: Vec<Vec<u32>>,
}

impl RoomPlan {
    /// The plan for `conns` connections. Cost: O(conns × per_conn) time and memory.
    pub fn new(seed: u64, conns: u32, rooms: u32, per_conn: u32) -> RoomPlan {
        let mut plan = RoomPlan { seed, rooms, per_conn, members: vec![Vec::new(); rooms as usize] };
        for c in 0..conns {
            for r in plan.rooms_of(c) {
                if let Some(m) = plan.members.get_mut(r as usize) {
                    m.push(c);
                }
            }
        }
        plan
    }

    /// The rooms connection `conn` joins (no allocation beyond the result).
    pub fn rooms_of(&self, conn: u32) -> Vec<u32> {
        PlanRng::new(self.seed, 1, u64::from(conn)).distinct(self.per_conn, self.rooms)
    }

    /// The connections in `room`, in increasing order (empty for an unknown room).
    pub fn members(&self, room: u32) -> &[u32] {
        self.members.get(room as usize).map_or(&[], Vec::as_slice)
    }

    /// Number of rooms.
    pub fn rooms(&self) -> u32 {
        self.rooms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = RoomPlan::new(7, 200, 10, 3);
        let b = RoomPlan::new(7, 200, 10, 3);
        let c = RoomPlan::new(8, 200, 10, 3);
        assert_eq!(
            (0..200).map(|i| a.rooms_of(i)).collect::<Vec<_>>(),
            (0..200).map(|i| b.rooms_of(i)).collect::<Vec<_>>()
        );
        assert_ne!(
            (0..200).map(|i| a.rooms_of(i)).collect::<Vec<_>>(),
            (0..200).map(|i| c.rooms_of(i)).collect::<Vec<_>>()
        );
        let total: usize = (0..10).map(|r| a.members(r).len()).sum();
        assert_eq!(total, 600, "each connection is in exactly 3 distinct rooms");
        assert!((0..200).all(|i| a.rooms_of(i).windows(2).all(|w| w[0] < w[1])));
        assert_eq!(
            RoomPlan::new(1, 5, 2, 4).rooms_of(3),
            [0, 1],
            "asking for more rooms than exist gives all"
        );
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = PlanRng::new(1, 2, 3);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[rng.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
