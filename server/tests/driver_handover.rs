//! Moving a live connection between two drivers (`Outbox::detach` → `DriverEvent::Detached` →
//! `Driver::adopt`) over real loopback sockets, on both backends: no byte is lost or reordered in either
//! direction, queued bytes leave before the hand-over, and a connection ends exactly once.
//!
//! Both drivers are turned by the test thread itself, so every step happens in a known order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver_support;

use std::io::Read;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use driver_support::*;
use roomcast_server::driver::{CloseCause, ConnId, Driver, DriverConfig, DriverEvent};

/// An owned record of one driver event.
#[derive(Debug)]
enum Seen {
    Accepted(ConnId),
    Data(ConnId, Vec<u8>),
    Closed(ConnId, CloseCause),
    Detached(ConnId, OwnedFd),
}

/// A driver under test and everything it reported so far.
struct Side<D> {
    driver: D,
    seen: Vec<Seen>,
}

impl<D: Driver> Side<D> {
    fn new() -> Self {
        Side { driver: D::new(loopback_listener(), &DriverConfig::default()).unwrap(), seen: Vec::new() }
    }

    /// Turns (and flushes) until `done` holds for what was seen, failing after [`PATIENCE`].
    fn turn_until(&mut self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            self.turn_once(Duration::from_millis(10));
        }
    }

    fn turn_once(&mut self, timeout: Duration) {
        let seen = &mut self.seen;
        self.driver
            .turn(Some(timeout), &mut |event, _| match event {
                DriverEvent::Accepted { conn, .. } => seen.push(Seen::Accepted(conn)),
                DriverEvent::Data { conn, bytes } => seen.push(Seen::Data(conn, bytes.to_vec())),
                DriverEvent::Closed { conn, cause } => seen.push(Seen::Closed(conn, cause)),
                DriverEvent::Detached { conn, fd } => seen.push(Seen::Detached(conn, fd)),
                DriverEvent::Woken => {}
            })
            .unwrap();
        self.driver.flush().unwrap();
    }

    /// Every byte that arrived on `conn`, in order.
    fn data(&self, conn: ConnId) -> Vec<u8> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Data(c, bytes) if *c == conn => Some(bytes.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    fn accepted(&self) -> Option<ConnId> {
        self.seen.iter().find_map(|s| if let Seen::Accepted(c) = s { Some(*c) } else { None })
    }

    /// Takes the socket of the `Detached` event, if one was seen.
    fn take_detached(&mut self) -> Option<(ConnId, OwnedFd)> {
        let at = self.seen.iter().position(|s| matches!(s, Seen::Detached(..)))?;
        match self.seen.remove(at) {
            Seen::Detached(conn, fd) => Some((conn, fd)),
            _ => None,
        }
    }

    fn endings(&self) -> usize {
        self.seen.iter().filter(|s| matches!(s, Seen::Closed(..) | Seen::Detached(..))).count()
    }
}

fn has_detached(seen: &[Seen]) -> bool {
    seen.iter().any(|s| matches!(s, Seen::Detached(..)))
}

fn moves_a_connection_without_losing_or_reordering_bytes<D: Driver + Send + 'static>() {
    let (mut a, mut b) = (Side::<D>::new(), Side::<D>::new());
    let mut client = connect(a.driver.local_addr().unwrap());
    a.turn_until("the connection is accepted", |seen| !seen.is_empty());
    let on_a = a.accepted().expect("Accepted");
    write_all(&mut client, b"one");
    a.turn_until("'one' arrives", |seen| seen.iter().any(|s| matches!(s, Seen::Data(..))));

    assert!(a.driver.outbox().send(on_a, Bytes::from_static(b"from A|")));
    assert!(a.driver.outbox().detach(on_a));
    assert!(!a.driver.outbox().detach(on_a), "a second detach is refused");
    assert!(!a.driver.outbox().send(on_a, Bytes::from_static(b"late")), "the queue is sealed by detach");
    write_all(&mut client, b"two|"); // may be read by A before it stops reading, or left for B
    a.turn_until("the socket is handed over", has_detached);
    let (detached, fd) = a.take_detached().unwrap();
    assert_eq!(detached, on_a);
    assert!(!a.driver.outbox().is_open(on_a), "the id is stale after Detached");
    assert_eq!(a.endings(), 0, "no Closed follows or precedes a Detached");
    let read_by_a = a.data(on_a);

    // Bytes sent while nobody owns the socket wait in it for the next owner.
    write_all(&mut client, b"three|");
    std::thread::sleep(Duration::from_millis(20));
    let on_b = b.driver.adopt(fd).unwrap();
    assert_eq!(read_len(&mut client, 7), b"from A|", "bytes queued before the detach were sent by A");
    let expected = b"onetwo|three|".to_vec();
    let want_on_b = expected.len() - read_by_a.len();
    b.turn_until("B reads the rest", |seen| {
        seen.iter().filter_map(|s| if let Seen::Data(_, d) = s { Some(d.len()) } else { None }).sum::<usize>()
            >= want_on_b
    });
    let mut all = read_by_a.clone();
    all.extend(b.data(on_b));
    assert_eq!(all, expected, "A's bytes then B's bytes are the stream, in order (A read {read_by_a:?})");

    assert!(b.driver.outbox().send(on_b, Bytes::from_static(b"from B")));
    b.turn_once(Duration::ZERO);
    assert_eq!(read_len(&mut client, 6), b"from B");
    client.shutdown(Shutdown::Both).unwrap();
    b.turn_until("B sees the peer close", |seen| seen.iter().any(|s| matches!(s, Seen::Closed(..))));
    assert!(b.seen.iter().any(|s| matches!(s, Seen::Closed(c, CloseCause::PeerClosed) if *c == on_b)));
    let (sa, sb) = (a.driver.stats(), b.driver.stats());
    assert_eq!((sa.accepted, sa.detached, sa.closed), (1, 1, 0));
    assert_eq!((sb.accepted, sb.adopted, sb.closed), (0, 1, 1));
}

fn detach_waits_until_the_queue_is_flushed<D: Driver + Send + 'static>() {
    const BIG: usize = 8 << 20; // far more than the socket buffers hold
    let (mut a, mut b) = (Side::<D>::new(), Side::<D>::new());
    let client = connect(a.driver.local_addr().unwrap());
    a.turn_until("the connection is accepted", |seen| !seen.is_empty());
    let on_a = a.accepted().unwrap();
    assert!(a.driver.outbox().send(on_a, Bytes::from(pattern(0, BIG))));
    assert!(a.driver.outbox().detach(on_a));
    for _ in 0..20 {
        a.turn_once(Duration::from_millis(5));
    }
    assert!(!has_detached(&a.seen), "handed over while the client had not read the queued bytes");

    let reader = std::thread::spawn(move || {
        let mut client = client;
        let first = read_len(&mut client, BIG);
        let tail = read_len(&mut client, 4);
        (client, first, tail)
    });
    a.turn_until("the socket is handed over", has_detached);
    let (_, fd) = a.take_detached().unwrap();
    let on_b = b.driver.adopt(fd).unwrap();
    assert!(b.driver.outbox().send(on_b, Bytes::from_static(b"tail")));
    b.turn_once(Duration::ZERO);
    let (mut client, first, tail) = reader.join().unwrap();
    assert!(first == pattern(0, BIG), "A's queued bytes arrive whole and in order");
    assert_eq!(tail, b"tail", "B's bytes follow A's");
    client.shutdown(Shutdown::Write).unwrap();
    b.turn_until("B sees the peer close", |seen| seen.iter().any(|s| matches!(s, Seen::Closed(..))));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

fn a_peer_close_racing_a_detach_ends_the_connection_once<D: Driver + Send + 'static>() {
    let (mut a, mut b) = (Side::<D>::new(), Side::<D>::new());
    let client = connect(a.driver.local_addr().unwrap());
    a.turn_until("the connection is accepted", |seen| !seen.is_empty());
    let on_a = a.accepted().unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(20)); // the FIN is in the socket before the detach
    assert!(a.driver.outbox().detach(on_a));
    a.turn_until("the connection leaves A", |seen| seen.len() > 1);
    for _ in 0..5 {
        a.turn_once(Duration::from_millis(2));
    }
    assert_eq!(a.endings(), 1, "exactly one Closed or Detached: {:?}", a.seen);
    if let Some((_, fd)) = a.take_detached() {
        // Handed over before A read the FIN: the new owner reads it.
        let on_b = b.driver.adopt(fd).unwrap();
        b.turn_until("B sees the peer close", |seen| !seen.is_empty());
        assert!(matches!(b.seen[..], [Seen::Closed(c, CloseCause::PeerClosed)] if c == on_b), "{:?}", b.seen);
    } else {
        assert!(matches!(a.seen[1], Seen::Closed(c, CloseCause::PeerClosed) if c == on_a), "{:?}", a.seen);
    }
}

both_backends!(
    moves_a_connection_without_losing_or_reordering_bytes,
    detach_waits_until_the_queue_is_flushed,
    a_peer_close_racing_a_detach_ends_the_connection_once,
);
