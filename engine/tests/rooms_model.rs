//! `NamespaceRooms` against a naive model of socket.io-adapter 2.5's in-memory adapter
//! (`rooms: Map<Room, Set<SocketId>>`, `sids: Map<SocketId, Set<Room>>`, events), on random sequences of
//! connect / join / leave / disconnect / broadcast. Same recipients, same `rooms_of` (order included),
//! same members, same adapter events in the same order.
//!
//! Two shapes: a small slot space crowded into a few rooms (sets go dense and back), and a larger one
//! spread over many rooms (sets stay sparse). Room names also include socket ids, live or gone, to
//! exercise rooms shared with a socket's own room.
//!
//! This binary also counts allocations per thread, to check that planning allocates nothing once warm.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use roomcast_engine::ids::{Sid, SocketId};
use roomcast_engine::rooms::{
    AdapterEvent, BroadcastSpec, BroadcastTarget, NamespaceRooms, RoomName, Scratch,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

// ---------------------------------------------------------------------------------------------------
// The reference, transcribed from in-memory-adapter.ts (addAll, del, _del, delAll, apply).

#[derive(Debug, Default)]
struct Reference {
    rooms: HashMap<String, HashSet<String>>,
    /// Socket → rooms in insertion order (a JS `Set`).
    sids: HashMap<String, Vec<String>>,
    events: Vec<String>,
}

impl Reference {
    fn add_all(&mut self, id: &str, rooms: &[String]) {
        let joined = self.sids.entry(id.to_string()).or_default();
        for room in rooms {
            if !joined.contains(room) {
                joined.push(room.clone());
            }
            let members = self.rooms.entry(room.clone()).or_insert_with(|| {
                self.events.push(format!("create-room {room}"));
                HashSet::new()
            });
            if members.insert(id.to_string()) {
                self.events.push(format!("join-room {room} {id}"));
            }
        }
    }

    fn del(&mut self, id: &str, room: &str) {
        if let Some(joined) = self.sids.get_mut(id) {
            joined.retain(|r| r != room);
        }
        self.del_inner(room, id);
    }

    fn del_inner(&mut self, room: &str, id: &str) {
        let Some(members) = self.rooms.get_mut(room) else { return };
        if members.remove(id) {
            self.events.push(format!("leave-room {room} {id}"));
        }
        if members.is_empty() {
            self.rooms.remove(room);
            self.events.push(format!("delete-room {room}"));
        }
    }

    fn del_all(&mut self, id: &str) {
        for room in self.sids.remove(id).unwrap_or_default() {
            self.del_inner(&room, id);
        }
    }

    /// Recipients, sorted.
    fn apply(&self, to: &[String], except: &[String]) -> Vec<String> {
        let excluded: HashSet<&String> = except.iter().filter_map(|r| self.rooms.get(r)).flatten().collect();
        let mut out: Vec<String> = if to.is_empty() {
            self.sids.keys().filter(|id| !excluded.contains(id)).cloned().collect()
        } else {
            let mut seen = HashSet::new();
            for member in to.iter().filter_map(|r| self.rooms.get(r)).flatten() {
                if !excluded.contains(member) {
                    seen.insert(member.clone());
                }
            }
            seen.into_iter().collect()
        };
        out.sort();
        out
    }
}

fn describe(event: AdapterEvent) -> String {
    match event {
        AdapterEvent::CreateRoom(room) => format!("create-room {room}"),
        AdapterEvent::DeleteRoom(room) => format!("delete-room {room}"),
        AdapterEvent::JoinRoom(room, id) => format!("join-room {room} {id}"),
        AdapterEvent::LeaveRoom(room, id) => format!("leave-room {room} {id}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// Operations.

/// A room name: one of a small pool, or the id of a socket that connected at some point.
#[derive(Clone, Debug)]
enum Pick {
    Named(u8),
    SidOf(u8),
}

#[derive(Clone, Debug)]
enum Op {
    Connect,
    Join(u8, Pick),
    JoinMany(u8, Vec<Pick>),
    Leave(u8, Pick),
    Disconnect(u8),
    /// `abandon`: first plan a broadcast to `to` plus one more room, without excepts, and drop its
    /// iterator after that many recipients (what the planner's scratch holds must not leak into the
    /// next plan).
    Broadcast {
        to: Vec<Pick>,
        except: Vec<Pick>,
        sender: Option<u8>,
        abandon: Option<(u8, Pick)>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Sockets connected before the operations: `min..max`.
    initial: (usize, usize),
    max_sockets: usize,
    named_rooms: u8,
    /// Number of operations: `min..max`.
    ops: (usize, usize),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![6 => any::<u8>().prop_map(Pick::Named), 1 => any::<u8>().prop_map(Pick::SidOf)]
}

fn op() -> impl Strategy<Value = Op> {
    let picks = |max| prop::collection::vec(pick(), 0..max);
    prop_oneof![
        3 => Just(Op::Connect),
        8 => (any::<u8>(), pick()).prop_map(|(s, r)| Op::Join(s, r)),
        2 => (any::<u8>(), picks(4)).prop_map(|(s, r)| Op::JoinMany(s, r)),
        4 => (any::<u8>(), pick()).prop_map(|(s, r)| Op::Leave(s, r)),
        2 => any::<u8>().prop_map(Op::Disconnect),
        4 => (picks(8), picks(3), any::<Option<u8>>(), prop::option::weighted(0.3, (0..20u8, pick())))
            .prop_map(|(to, except, sender, abandon)| Op::Broadcast { to, except, sender, abandon }),
    ]
}

fn case(shape: Shape) -> impl Strategy<Value = (usize, Vec<Op>)> {
    (shape.initial.0..shape.initial.1, prop::collection::vec(op(), shape.ops.0..shape.ops.1))
}

// ---------------------------------------------------------------------------------------------------
// The harness: runs both, compares after every operation.

struct Harness {
    shape: Shape,
    ns: NamespaceRooms,
    reference: Reference,
    connected: Vec<(Sid, SocketId)>,
    ever: Vec<Sid>,
    spec: BroadcastSpec,
    scratch: Scratch,
    saw_dense: bool,
    saw_sparse: bool,
    saw_chunked: bool,
}

impl Harness {
    fn new(shape: Shape) -> Self {
        Harness {
            shape,
            ns: NamespaceRooms::new(),
            reference: Reference::default(),
            connected: Vec::new(),
            ever: Vec::new(),
            spec: BroadcastSpec::new(),
            scratch: Scratch::default(),
            saw_dense: false,
            saw_sparse: false,
            saw_chunked: false,
        }
    }

    fn name(&self, pick: &Pick) -> String {
        match *pick {
            Pick::Named(k) => format!("room{}", k % self.shape.named_rooms),
            Pick::SidOf(i) if !self.ever.is_empty() => self.ever[i as usize % self.ever.len()].to_string(),
            Pick::SidOf(_) => "room0".to_string(),
        }
    }

    /// Socket number `index` of 256, spread over every connected socket (however many).
    fn socket(&self, index: u8) -> Option<(Sid, SocketId)> {
        (!self.connected.is_empty()).then(|| self.connected[index as usize * self.connected.len() / 256])
    }

    fn connect(&mut self) -> Result<(), TestCaseError> {
        if self.connected.len() >= self.shape.max_sockets {
            return Ok(());
        }
        let mut random = [0x5a; 15];
        random[..8].copy_from_slice(&(self.ever.len() as u64).to_le_bytes());
        let sid = Sid::from_random(random);
        let s = self.ns.connect(sid).map_err(|e| TestCaseError::fail(e.to_string()))?;
        self.reference.add_all(sid.as_str(), &[sid.to_string()]);
        self.connected.push((sid, s));
        self.ever.push(sid);
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let mut touched = None;
        match op {
            Op::Connect => self.connect()?,
            Op::Join(i, room) | Op::Leave(i, room) => {
                let Some((sid, s)) = self.socket(*i) else { return Ok(()) };
                let room = self.name(room);
                if matches!(op, Op::Join(..)) {
                    self.ns.join(s, &room).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    self.reference.add_all(sid.as_str(), &[room]);
                } else {
                    self.ns.leave(s, &room).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    self.reference.del(sid.as_str(), &room);
                }
                touched = Some((sid, s));
            }
            Op::JoinMany(i, rooms) => {
                let Some((sid, s)) = self.socket(*i) else { return Ok(()) };
                let rooms: Vec<String> = rooms.iter().map(|r| self.name(r)).collect();
                self.ns.join_many(s, &rooms).map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.reference.add_all(sid.as_str(), &rooms);
                touched = Some((sid, s));
            }
            Op::Disconnect(i) => {
                let Some((sid, s)) = self.socket(*i) else { return Ok(()) };
                self.ns.remove(s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.reference.del_all(sid.as_str());
                self.connected.retain(|&(other, _)| other != sid);
                prop_assert!(
                    self.ns.rooms_of(s).is_none() && self.ns.join(s, "x").is_err(),
                    "stale id after remove"
                );
            }
            Op::Broadcast { to, except, sender, abandon } => {
                if let Some((after, extra)) = abandon {
                    self.abandon(to, extra, *after);
                }
                self.broadcast(to, except, *sender)?
            }
        }
        let ours: Vec<String> = std::iter::from_fn(|| self.ns.poll_event()).map(describe).collect();
        let theirs = std::mem::take(&mut self.reference.events);
        prop_assert_eq!(ours, theirs);
        if let Some((sid, s)) = touched {
            self.check_socket(sid, s)?;
        }
        let dense = self.ns.dense_room_count();
        self.saw_dense |= dense > 0;
        self.saw_sparse |= dense < self.ns.room_count().saturating_sub(self.connected.len());
        self.saw_chunked |= self.ns.chunked_room_count() > 0;
        Ok(())
    }

    /// Plans a broadcast to `to` and `extra` and stops after `after` recipients.
    fn abandon(&mut self, to: &[Pick], extra: &Pick, after: u8) {
        let target = BroadcastTarget {
            to: to.iter().chain([extra]).map(|r| RoomName::from(self.name(r))).collect(),
            ..BroadcastTarget::default()
        };
        self.ns.resolve(&target, &mut self.spec);
        let _ = self.ns.plan(&self.spec, &mut self.scratch).take(usize::from(after)).count();
    }

    fn broadcast(&mut self, to: &[Pick], except: &[Pick], sender: Option<u8>) -> Result<(), TestCaseError> {
        let sender = sender.and_then(|i| self.socket(i)).map(|(sid, _)| sid);
        let target = BroadcastTarget {
            to: to.iter().map(|r| RoomName::from(self.name(r))).collect(),
            except: except.iter().map(|r| RoomName::from(self.name(r))).collect(),
            except_sids: sender.into_iter().collect(),
            ..BroadcastTarget::default()
        };
        self.ns.resolve(&target, &mut self.spec);
        let got: Vec<SocketId> = self.ns.plan(&self.spec, &mut self.scratch).collect();
        // Each once; in no promised order (a few members over many slots come in touched order).
        let mut slots: Vec<u32> = got.iter().map(|s| s.slot()).collect();
        slots.sort_unstable();
        prop_assert!(slots.windows(2).all(|w| w[0] < w[1]), "each recipient once");
        // Internal iteration (`fold`, as `for_each` uses) from a point `next` left off yields the same.
        let mut recipients = self.ns.plan(&self.spec, &mut self.scratch);
        let mut folded: Vec<SocketId> = recipients.by_ref().take(got.len() / 3).collect();
        recipients.for_each(|s| folded.push(s));
        prop_assert_eq!(&folded, &got, "fold after {} calls to next", got.len() / 3);
        let mut ours: Vec<String> =
            got.iter().map(|&s| self.ns.sid(s).map(|sid| sid.to_string()).unwrap_or_default()).collect();
        ours.sort();
        let to: Vec<String> = target.to.iter().map(|r| r.to_string()).collect();
        let mut except: Vec<String> = target.except.iter().map(|r| r.to_string()).collect();
        except.extend(sender.map(|sid| sid.to_string()));
        prop_assert_eq!(ours, self.reference.apply(&to, &except), "to {:?} except {:?}", to, except);
        Ok(())
    }

    fn check_socket(&self, sid: Sid, s: SocketId) -> Result<(), TestCaseError> {
        let ours: Vec<&str> = self.ns.rooms_of(s).map(Iterator::collect).unwrap_or_default();
        let theirs: Vec<&str> =
            self.reference.sids.get(sid.as_str()).into_iter().flatten().map(String::as_str).collect();
        prop_assert_eq!(ours, theirs, "rooms_of {}", sid);
        Ok(())
    }

    fn check_all(&self) -> Result<(), TestCaseError> {
        for &(sid, s) in &self.connected {
            self.check_socket(sid, s)?;
            prop_assert_eq!(self.ns.socket_by_sid(&sid), Some(s));
        }
        prop_assert_eq!(self.ns.socket_count(), self.connected.len());
        prop_assert_eq!(self.ns.room_count(), self.reference.rooms.len());
        let ours: HashSet<&str> = self.ns.all_rooms().collect();
        let theirs: HashSet<&str> = self.reference.rooms.keys().map(String::as_str).collect();
        prop_assert_eq!(ours, theirs);
        for (room, members) in &self.reference.rooms {
            let mut ours: Vec<String> =
                self.ns.members(room).filter_map(|s| self.ns.sid(s)).map(|s| s.to_string()).collect();
            ours.sort();
            let mut theirs: Vec<String> = members.iter().cloned().collect();
            theirs.sort();
            prop_assert_eq!(self.ns.member_count(room), theirs.len());
            prop_assert_eq!(ours, theirs, "members of {}", room);
        }
        Ok(())
    }
}

/// Which set representations a run went through.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    dense: bool,
    sparse: bool,
    chunked: bool,
}

fn run_model(shape: Shape, cases: u32) -> Seen {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let seen = Cell::new(Seen::default());
    let outcome = TestRunner::new(config).run(&case(shape), |(initial, ops)| {
        let mut h = Harness::new(shape);
        for _ in 0..initial {
            h.step(&Op::Connect)?;
        }
        for (n, op) in ops.iter().enumerate() {
            h.step(op)?;
            if n % 16 == 15 {
                h.check_all()?;
            }
        }
        h.check_all()?;
        let s = seen.get();
        seen.set(Seen {
            dense: s.dense | h.saw_dense,
            sparse: s.sparse | h.saw_sparse,
            chunked: s.chunked | h.saw_chunked,
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    seen.get()
}

/// Up to 40 sockets in 3 rooms: most rooms hold more than 1 in 32 slots and turn dense, then shrink back.
#[test]
fn crowded_small_namespace_matches_the_reference() {
    let seen = run_model(Shape { initial: (0, 40), max_sockets: 40, named_rooms: 3, ops: (20, 120) }, 1500);
    assert!(seen.dense && seen.sparse, "the shape must exercise both set representations: {seen:?}");
}

/// Up to 400 sockets over 40 rooms: rooms stay small and sparse; planning scatters several lists.
#[test]
fn spread_out_namespace_matches_the_reference() {
    let seen =
        run_model(Shape { initial: (100, 400), max_sockets: 400, named_rooms: 40, ops: (50, 150) }, 300);
    assert!(seen.sparse, "the shape must exercise sparse sets: {seen:?}");
}

/// Up to 3000 sockets (47 words of slots) and 40 rooms with a few members each, spread over all of
/// them: several sparse targets hold fewer candidates than a quarter of the words, so planning
/// scatters them into the bitmap and reads back only the words it touched (or, with a big except list,
/// the summarised words).
#[test]
fn few_members_over_many_slots_match_the_reference() {
    let seen =
        run_model(Shape { initial: (1500, 3000), max_sockets: 3000, named_rooms: 40, ops: (50, 150) }, 40);
    assert!(seen.sparse, "the shape must exercise sparse sets: {seen:?}");
}

/// Up to 1000 sockets in 4 rooms: rooms grow to 16–31 members, sparse lists of several chunks
/// (capacity 1000 / 64 = 15), which split on joins and merge on leaves before any set turns dense.
#[test]
fn few_big_sparse_rooms_match_the_reference() {
    let seen =
        run_model(Shape { initial: (600, 1000), max_sockets: 1000, named_rooms: 4, ops: (100, 300) }, 40);
    assert!(seen.chunked, "the shape must exercise chunked lists: {seen:?}");
}

// ---------------------------------------------------------------------------------------------------
// Allocation counting: planning allocates nothing once the spec and scratch are warm.

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as for `System`.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn resolve_and_plan_allocate_nothing_once_warm() {
    let mut ns = NamespaceRooms::new();
    ns.set_events_enabled(false);
    let sids: Vec<Sid> = (0..3000u32)
        .map(|i| {
            let mut random = [1u8; 15];
            random[..4].copy_from_slice(&i.to_le_bytes());
            Sid::from_random(random)
        })
        .collect();
    let ids: Vec<SocketId> = sids.iter().map(|&sid| ns.connect(sid).unwrap()).collect();
    // Joins after every connect: a set's representation is chosen against the slots in use, so
    // `hundreds`, `sevens` and `thousands` stay sparse lists.
    for (i, &s) in (0u32..).zip(&ids) {
        ns.join(s, if i % 2 == 0 { "even" } else { "odd" }).unwrap();
        if i % 100 == 0 {
            ns.join(s, "hundreds").unwrap();
        }
        if i % 7 == 0 {
            ns.join(s, "sevens").unwrap();
        }
        if i % 1000 == 0 {
            ns.join(s, "thousands").unwrap();
        }
    }
    let names = |rooms: &[&str]| rooms.iter().map(|&r| RoomName::from(r)).collect::<Vec<_>>();
    let targets = [
        BroadcastTarget { to: names(&["hundreds"]), except: names(&["sevens"]), ..Default::default() },
        BroadcastTarget {
            to: names(&["even", "hundreds"]),
            except: names(&["sevens"]),
            ..Default::default()
        },
        BroadcastTarget { except: names(&["odd"]), except_sids: vec![sids[10]], ..Default::default() },
        BroadcastTarget { to: names(&[sids[3].as_str(), "hundreds", "ghost"]), ..Default::default() },
        // A few candidates over 47 words: scattered with touched words, or with summaries when an
        // except list is too big to clear from the bitmap.
        BroadcastTarget {
            to: names(&["thousands", sids[2999].as_str()]),
            except_sids: vec![sids[1000]],
            ..Default::default()
        },
        BroadcastTarget {
            to: names(&["thousands", sids[2999].as_str()]),
            except: names(&["hundreds", "sevens"]),
            ..Default::default()
        },
    ];
    let mut spec = BroadcastSpec::new();
    let mut scratch = Scratch::default();
    let mut run = || -> usize {
        let mut total = 0;
        for target in &targets {
            ns.resolve(target, &mut spec);
            total += ns.plan(&spec, &mut scratch).count();
        }
        total
    };
    let warm = run();
    let before = ALLOCATIONS.with(Cell::get);
    let again = run();
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(warm, again);
    assert!(warm > 1500, "the targets reach a real number of sockets ({warm})");
    assert_eq!(allocations, 0, "resolve + plan + iteration allocated once warm");
}
