//! Driver tests over real loopback sockets, run on both backends: echo over many connections, peer
//! close and reset, abort, and the cross-thread waker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver_support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use driver_support::*;
use roomcast_server::driver::{CloseCause, ConnId, Driver, DriverConfig, DriverEvent, IoBackend, Outbox};

/// What the echo shard saw.
#[derive(Default)]
struct Echo {
    peers: HashMap<ConnId, SocketAddr>,
    closed: Vec<(SocketAddr, CloseCause)>,
    /// Whether `send` on an id right after its `Closed` was refused, for every close.
    stale_refused: bool,
}

fn echo(state: &mut Echo, event: DriverEvent<'_>, outbox: &mut Outbox) {
    match event {
        DriverEvent::Accepted { conn, peer } => {
            state.peers.insert(conn, peer);
            state.stale_refused = true;
        }
        DriverEvent::Data { conn, bytes } => {
            if bytes.starts_with(b"abort") {
                outbox.send(conn, Bytes::from_static(b"never sent"));
                outbox.abort(conn);
            } else {
                outbox.send(conn, Bytes::copy_from_slice(bytes));
            }
        }
        DriverEvent::Closed { conn, cause } => {
            let peer = state.peers.remove(&conn).expect("Closed for a connection never accepted, or twice");
            state.closed.push((peer, cause));
            state.stale_refused &= !outbox.send(conn, Bytes::from_static(b"late"));
        }
        DriverEvent::Detached { .. } | DriverEvent::Woken => {}
    }
}

fn echo_shard<D: Driver + Send + 'static>() -> Shard<Echo> {
    Shard::spawn::<D>(loopback_listener(), DriverConfig::default(), Echo::default(), echo)
}

fn echo_many_connections<D: Driver + Send + 'static>() {
    const CLIENTS: usize = 1000;
    let shard = echo_shard::<D>();
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(shard.addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("hello from client {i:04}").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let expected = format!("hello from client {i:04}");
        assert_eq!(read_len(client, expected.len()), expected.as_bytes(), "client {i}");
    }
    let (live, peers) = shard.query(|state, outbox| (outbox.live_connections(), state.peers.clone()));
    assert_eq!(live, CLIENTS);
    for client in &clients {
        assert!(peers.values().any(|peer| *peer == client.local_addr().unwrap()), "Accepted peer address");
    }
    drop(clients);
    shard.wait_until("every connection is reported closed", |state, outbox| {
        state.closed.len() == CLIENTS && outbox.live_connections() == 0
    });
    let state = shard.stop();
    assert!(
        state.closed.iter().all(|(_, cause)| *cause == CloseCause::PeerClosed),
        "a client closing is PeerClosed"
    );
    assert!(state.stale_refused, "send on a closed id was accepted");
}

fn echo_with_tiny_receive_buffers<D: Driver + Send + 'static>() {
    const CLIENTS: usize = 20;
    const LEN: usize = 8 * 1024;
    // Two 64-byte provided buffers for the whole shard (io_uring), a 64-byte read buffer (epoll): every
    // message arrives in many pieces and io_uring runs out of buffers (ENOBUFS) and re-arms.
    let config = DriverConfig {
        provided_buffers: 2,
        provided_buffer_size: 64,
        read_buffer_size: 64,
        ..Default::default()
    };
    let shard = Shard::spawn::<D>(loopback_listener(), config, Echo::default(), echo);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(shard.addr)).collect();
    shard.wait_until("every client is accepted", |state, _| state.peers.len() == CLIENTS);
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, &pattern(i, LEN));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(read_len(client, LEN) == pattern(i, LEN), "client {i}: echo out of order or corrupted");
    }
    let stats = shard.stats();
    assert_eq!(stats.bytes_received, (CLIENTS * LEN) as u64);
    if D::BACKEND == IoBackend::Uring {
        assert!(stats.receive_rearms > 0, "two buffers for 160 KiB never ran out? {stats:?}");
    }
}

/// Sets `SO_LINGER {on, 0}` so that dropping the stream sends RST instead of FIN.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `linger` lives across the call and its size is passed with it.
    let ret = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0);
}

fn cause_for(shard: &Shard<Echo>, peer: SocketAddr) -> CloseCause {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found =
            shard.query(move |state, _| state.closed.iter().find(|(p, _)| *p == peer).map(|(_, c)| *c));
        if let Some(cause) = found {
            return cause;
        }
        assert!(Instant::now() < deadline, "no Closed event for {peer}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn peer_close_reset_and_abort_are_reported<D: Driver + Send + 'static>() {
    let shard = echo_shard::<D>();
    let mut fin = connect(shard.addr);
    let mut rst = connect(shard.addr);
    let mut aborted = connect(shard.addr);
    for client in [&mut fin, &mut rst, &mut aborted] {
        write_all(client, b"ping");
        assert_eq!(read_len(client, 4), b"ping", "accepted and echoing before the close");
    }
    let (fin_addr, rst_addr, aborted_addr) =
        (fin.local_addr().unwrap(), rst.local_addr().unwrap(), aborted.local_addr().unwrap());

    drop(fin);
    assert_eq!(cause_for(&shard, fin_addr), CloseCause::PeerClosed);

    reset_on_close(&rst);
    drop(rst);
    assert_eq!(cause_for(&shard, rst_addr), CloseCause::Reset);

    write_all(&mut aborted, b"abort");
    assert_eq!(cause_for(&shard, aborted_addr), CloseCause::Aborted);
    let mut rest = Vec::new();
    let ended = std::io::Read::read_to_end(&mut aborted, &mut rest);
    assert!(
        ended.is_err() || rest.is_empty(),
        "an aborted connection ends without its queued bytes: {rest:?}"
    );
    // Ended by the server (reset or EOF), not by the read timeout: nothing, e.g. io_uring's table of
    // registered sockets, may keep the socket open after the driver closed its fd.
    if let Err(e) = &ended {
        assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the aborted connection was still open after {PATIENCE:?}"
        );
    }

    let state = shard.stop();
    assert!(state.peers.is_empty(), "every accepted connection got exactly one Closed");
    assert!(state.stale_refused);
}

fn waker_interrupts_a_long_turn<D: Driver + Send + 'static>() {
    let mut driver = D::new(loopback_listener(), &DriverConfig::default()).unwrap();
    let waker = driver.waker();
    let (done, finished) = mpsc::channel();
    let shard = std::thread::spawn(move || {
        for round in 0..2 {
            let mut woken = false;
            while !woken {
                driver
                    .turn(Some(Duration::from_secs(120)), &mut |event, _| {
                        woken |= matches!(event, DriverEvent::Woken)
                    })
                    .unwrap();
            }
            done.send(round).unwrap();
        }
    });
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(50));
        let wakers: Vec<_> = (0..4).map(|_| waker.clone()).collect();
        std::thread::scope(|scope| {
            for waker in &wakers {
                scope.spawn(|| waker.wake().unwrap());
            }
        });
        assert_eq!(
            finished.recv_timeout(PATIENCE),
            Ok(round),
            "a wake from another thread ended the 120 s turn"
        );
    }
    shard.join().unwrap();
    waker.wake().unwrap(); // the driver is gone; waking it is harmless
}

both_backends!(
    echo_many_connections,
    echo_with_tiny_receive_buffers,
    peer_close_reset_and_abort_are_reported,
    waker_interrupts_a_long_turn,
);
