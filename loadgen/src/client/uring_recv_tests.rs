//! The receive path against real loopback sockets: bytes arrive in order under their key, a buffer
//! ring too small for what waits runs dry (`ENOBUFS`) and re-arming picks up the rest, EOF and a reset
//! end the receive, and a cancelled receive reports nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md)

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::*;

/// A connected pair: (the end we receive on, the peer).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    (ours, peer)
}

#[derive(Debug, Default)]
struct Seen {
    bytes: Vec<u8>,
    eof: bool,
    failed: Option<io::Error>,
    calls: usize,
}

/// Dispatches until `done(seen)` or 2 s pass, re-arming ended receives on `fd` as the pool does.
fn run_until(recv: &mut UringRecv, key: u64, fd: RawFd, done: impl Fn(&Seen) -> bool) -> Seen {
    run_for(recv, key, fd, Duration::from_secs(2), done)
}

/// `run_until` with its own limit.
fn run_for(recv: &mut UringRecv, key: u64, fd: RawFd, limit: Duration, done: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + limit;
    while !done(&seen) && Instant::now() < deadline {
        recv.submit().unwrap();
        let ts = Timespec::new().nsec(20_000_000);
        let _ = recv.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts));
        recv.dispatch(|k, received| {
            assert_eq!(k, key, "a completion under another key");
            seen.calls += 1;
            match received {
                Received::Bytes(b) => seen.bytes.extend_from_slice(b),
                Received::Eof => seen.eof = true,
                Received::Failed(e) => seen.failed = Some(e),
            }
        })
        .unwrap();
        for k in recv.take_rearm() {
            if !seen.eof && seen.failed.is_none() {
                recv.arm(k, fd).unwrap();
            }
        }
    }
    seen
}

#[test]
fn bytes_arrive_in_order_under_their_key_then_eof() {
    let mut recv = UringRecv::new(&RecvConfig::default()).unwrap();
    let (ours, mut peer) = pair();
    let key = 7 << 32 | 3;
    recv.arm(key, ours.as_raw_fd()).unwrap();
    recv.submit().unwrap();
    let mut sent = Vec::new();
    for i in 0..50u8 {
        let chunk = vec![i; 100 + usize::from(i)];
        peer.write_all(&chunk).unwrap();
        sent.extend_from_slice(&chunk);
    }
    drop(peer);
    let seen = run_until(&mut recv, key, ours.as_raw_fd(), |s| s.eof);
    assert!(seen.eof, "no EOF after {} bytes", seen.bytes.len());
    assert_eq!(seen.bytes, sent, "bytes lost or out of order");
    assert!(seen.failed.is_none());
    assert_eq!(recv.inflight, 0, "the receive ends with its EOF");
}

#[test]
fn a_buffer_ring_that_runs_dry_is_rearmed_and_nothing_is_lost() {
    // 2 buffers of 16 bytes: one completion takes at most 16 bytes, and two completions empty the ring.
    let config = RecvConfig { buffers: 2, buffer_size: 16, sq_entries: 8, cq_entries: 16 };
    let mut recv = UringRecv::new(&config).unwrap();
    let (ours, mut peer) = pair();
    let sent: Vec<u8> = (0..4_000u32).map(|i| (i % 251) as u8).collect();
    peer.write_all(&sent).unwrap();
    let key = 1 << 32 | 9;
    recv.arm(key, ours.as_raw_fd()).unwrap();
    let seen = run_until(&mut recv, key, ours.as_raw_fd(), |s| s.bytes.len() >= sent.len());
    assert_eq!(seen.bytes, sent);
    let stats = recv.stats();
    assert!(stats.no_buffers > 0, "the ring never ran dry: {stats:?}");
    assert!(stats.rearms >= stats.no_buffers);
    assert!(seen.calls >= sent.len() / 16, "a completion carried more than a buffer holds");
}

#[test]
fn a_reset_connection_fails_the_receive() {
    let mut recv = UringRecv::new(&RecvConfig::default()).unwrap();
    let (ours, peer) = pair();
    let key = 2 << 32 | 1;
    recv.arm(key, ours.as_raw_fd()).unwrap();
    // Linger 0: close sends a reset instead of a FIN.
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `linger` is a valid struct for the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            peer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(peer);
    let seen = run_until(&mut recv, key, ours.as_raw_fd(), |s| s.failed.is_some() || s.eof);
    let error = seen.failed.expect("the reset must fail the receive");
    assert_eq!(error.raw_os_error(), Some(libc::ECONNRESET), "{error}");
}

#[test]
fn a_cancelled_receive_reports_nothing_more() {
    let mut recv = UringRecv::new(&RecvConfig::default()).unwrap();
    let (ours, mut peer) = pair();
    let key = 3 << 32 | 5;
    recv.arm(key, ours.as_raw_fd()).unwrap();
    recv.submit().unwrap();
    recv.cancel(key).unwrap();
    drop(ours); // the pool closes the socket when it cancels; the receive holds it until cancelled
    let quiet = Duration::from_millis(300);
    let seen = run_for(&mut recv, key, -1, quiet, |_| false);
    let _ = peer.write_all(b"late bytes");
    let late = run_for(&mut recv, key, -1, quiet, |_| false);
    assert_eq!(seen.calls + late.calls, 0, "a cancelled receive reported {seen:?} {late:?}");
    assert_eq!(recv.inflight, 0, "the receive and the cancel both completed");
}

#[test]
fn an_overflowing_completion_queue_loses_nothing_and_keeps_each_sockets_order() {
    // A queue of 4 completions for 16 sockets with 5 writes each waiting.
    let config = RecvConfig { buffers: 64, buffer_size: 64, sq_entries: 4, cq_entries: 4 };
    let mut recv = UringRecv::new(&config).unwrap();
    let pairs: Vec<_> = (0..16).map(|_| pair()).collect();
    let mut sent = vec![Vec::new(); pairs.len()];
    for round in 0..5u8 {
        for (i, (_, peer)) in pairs.iter().enumerate() {
            let chunk = [i as u8, round, round, round];
            (&*peer).write_all(&chunk).unwrap();
            sent[i].extend_from_slice(&chunk);
        }
        std::thread::sleep(Duration::from_millis(5)); // separate segments, separate completions
    }
    for (i, (ours, _)) in pairs.iter().enumerate() {
        recv.arm(i as u64, ours.as_raw_fd()).unwrap();
    }
    let mut got = vec![Vec::new(); pairs.len()];
    let deadline = Instant::now() + Duration::from_secs(3);
    while got != sent && Instant::now() < deadline {
        recv.submit().unwrap();
        let ts = Timespec::new().nsec(20_000_000);
        let _ = recv.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts));
        recv.dispatch(|key, received| match received {
            Received::Bytes(b) => got[key as usize].extend_from_slice(b),
            other => panic!("socket {key}: {other:?}"),
        })
        .unwrap();
        for key in recv.take_rearm() {
            recv.arm(key, pairs[key as usize].0.as_raw_fd()).unwrap();
        }
    }
    assert_eq!(got, sent, "bytes lost or reordered across an overflow");
    assert!(recv.stats().overflows > 0, "the queue never overflowed: {:?}", recv.stats());
}
