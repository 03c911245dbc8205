//! Who joins which room, where each message goes and how many should get it: pure functions of the
//! seed, so every worker process (and a rerun with the same `--seed`) computes the same plan without
//! talking to the others.

use super::verify::Targets;
use super::Slice;
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

/// How messages pick their rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetShape {
    /// Rooms in the run.
    pub rooms: u32,
    /// Target rooms per message (`--to-rooms`).
    pub to_rooms: u32,
    /// Excepted rooms per message (`--except-rooms`), never among its target rooms.
    pub except_rooms: u32,
}

/// The targets of message `seq` of publisher `p`: a pure function of the seed. One target room and no
/// exception is the original fanout plan (one room drawn from `(seed, p, seq)`).
pub fn targets(seed: u64, shape: TargetShape, p: u32, seq: u64) -> Targets {
    let mut rng = PlanRng::new(seed, 2 + u64::from(p), seq);
    if shape.to_rooms <= 1 && shape.except_rooms == 0 {
        return Targets { to: vec![rng.below(shape.rooms)], except: Vec::new() };
    }
    let to = rng.distinct(shape.to_rooms, shape.rooms);
    let others: Vec<u32> = (0..shape.rooms).filter(|r| to.binary_search(r).is_err()).collect();
    let others_len = u32::try_from(others.len()).unwrap_or(u32::MAX);
    let except = rng
        .distinct(shape.except_rooms, others_len)
        .into_iter()
        .filter_map(|i| others.get(i as usize).copied())
        .collect();
    Targets { to, except }
}

/// Counts a message's audience: intended recipients in the whole run and in this process's slice.
/// Reuses a mark per member, so a count costs O(members of the target and excepted rooms), no sort.
#[derive(Debug)]
pub struct AudienceCounter {
    marks: Vec<u64>,
    generation: u64,
    first_publisher: u32,
}

impl AudienceCounter {
    /// A counter for `members` members, of which those from `first_publisher` on are publishers
    /// (publisher `p` is member `first_publisher + p` and lives in the slice that owns `p`, receiver `c`
    /// in the slice that owns `c`).
    pub fn new(members: u32, first_publisher: u32) -> Self {
        AudienceCounter { marks: vec![0; members as usize], generation: 0, first_publisher }
    }

    /// `(whole run, this slice)` intended recipients of a message to `t` sent by member `sender`.
    pub fn count(&mut self, plan: &RoomPlan, t: &Targets, sender: u32, slice: Slice) -> (u64, u32) {
        let first_publisher = self.first_publisher;
        let owner = |c: u32| if c >= first_publisher { c - first_publisher } else { c };
        self.generation += 2;
        let (excluded, counted) = (self.generation, self.generation + 1);
        let marks = &mut self.marks;
        let mut set = |c: u32, v: u64| {
            if let Some(m) = marks.get_mut(c as usize) {
                *m = v;
            }
        };
        for r in &t.except {
            plan.members(*r).iter().for_each(|c| set(*c, excluded));
        }
        set(sender, excluded);
        let (mut total, mut local) = (0u64, 0u32);
        for r in &t.to {
            for &c in plan.members(*r) {
                let Some(m) = self.marks.get_mut(c as usize) else { continue };
                if *m != excluded && *m != counted {
                    *m = counted;
                    total += 1;
                    local += u32::from(slice.owns(owner(c)));
                }
            }
        }
        (total, local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: TargetShape = TargetShape { rooms: 10, to_rooms: 3, except_rooms: 1 };

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

    #[test]
    fn targets_are_distinct_disjoint_and_a_function_of_the_seed() {
        for seq in 0..200 {
            let t = targets(5, SHAPE, 2, seq);
            assert_eq!(t.to.len(), 3);
            assert_eq!(t.except.len(), 1);
            assert!(t.to.windows(2).all(|w| w[0] < w[1]));
            assert!(!t.to.contains(&t.except[0]), "{t:?}");
            assert_eq!(t, targets(5, SHAPE, 2, seq));
        }
        let one = TargetShape { rooms: 10, to_rooms: 1, except_rooms: 0 };
        let room = PlanRng::new(5, 2 + 3, 7).below(10);
        assert_eq!(targets(5, one, 3, 7), Targets { to: vec![room], except: vec![] }, "the original plan");
    }

    #[test]
    fn the_audience_count_matches_verifys_audience() {
        // 57 receivers and 3 publishers (members 57..60, in rooms too), over 2 slices: publisher 1
        // (member 58) lives in slice 1, though slice 0 owns the number 58.
        let plan = RoomPlan::new(3, 60, 10, 3);
        let mut counter = AudienceCounter::new(60, 57);
        let halves = [Slice { index: 0, count: 2 }, Slice { index: 1, count: 2 }];
        for seq in 0..50 {
            let t = targets(3, SHAPE, 1, seq);
            let (intended, _) = super::super::verify::audience(&plan, &t, 58);
            let (total, local0) = counter.count(&plan, &t, 58, halves[0]);
            let (_, local1) = counter.count(&plan, &t, 58, halves[1]);
            assert_eq!(total, intended.len() as u64);
            assert_eq!(u64::from(local0 + local1), total);
            let in_slice1 = intended
                .iter()
                .filter(|c| if **c >= 57 { (**c - 57) % 2 == 1 } else { **c % 2 == 1 })
                .count();
            assert_eq!(local1 as usize, in_slice1, "publishers count where they live");
        }
    }
}
