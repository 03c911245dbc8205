//! Shared harness of the driver tests: a shard loop on its own thread, commands run on that thread,
//! blocking loopback clients with generous timeouts, and a macro running one generic test body on both
//! backends. Every wait is bounded so a broken driver fails a test instead of hanging it.

#![allow(dead_code)] // each test file uses part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roomcast_server::driver::{
    bind_reuseport, probe_io_uring, Driver, DriverConfig, DriverEvent, DriverStats, EpollDriver, Outbox,
    UringDriver, Waker,
};

/// Upper bound for anything a test waits for; far above what a loaded 2-core machine needs.
pub const PATIENCE: Duration = Duration::from_secs(30);

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<UringDriver>();
    assert_send::<EpollDriver>();
    assert_send::<Waker>();
};

/// Runs a generic test body `fn name<D: Driver + Send + 'static>()` once per backend. The io_uring run
/// is skipped, with a note, only where the probe says io_uring cannot run (e.g. under Docker's seccomp).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                if let Err(reason) = roomcast_server::driver::probe_io_uring() {
                    eprintln!("io_uring unavailable, run skipped: {reason}");
                    return;
                }
                super::$name::<roomcast_server::driver::UringDriver>();
            }

            #[test]
            fn epoll() {
                super::$name::<roomcast_server::driver::EpollDriver>();
            }
        }
    )*};
}

/// Whether io_uring can run here (for tests that build drivers by hand).
pub fn uring_available() -> bool {
    probe_io_uring().is_ok()
}

/// Work run on the shard thread between two turns.
type Job<S> = Box<dyn FnOnce(&mut S, &mut Outbox) + Send>;

enum Command<S> {
    Run(Job<S>),
    Stats(mpsc::Sender<DriverStats>),
}

/// A shard loop on a thread: `turn` (events go to `on_event` with the state), then queued commands,
/// then `flush`. The state comes back from [`Shard::stop`].
pub struct Shard<S> {
    pub addr: SocketAddr,
    waker: Waker,
    commands: mpsc::Sender<Command<S>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<S>>,
}

/// A fresh loopback listener for one shard.
pub fn loopback_listener() -> TcpListener {
    bind_reuseport("127.0.0.1:0".parse().unwrap(), 1024).unwrap()
}

impl<S: Send + 'static> Shard<S> {
    pub fn spawn<D: Driver + Send + 'static>(
        listener: TcpListener,
        config: DriverConfig,
        state: S,
        on_event: fn(&mut S, DriverEvent<'_>, &mut Outbox),
    ) -> Self {
        let mut driver = D::new(listener, &config).unwrap();
        let addr = driver.local_addr().unwrap();
        let waker = driver.waker();
        let (commands, inbox) = mpsc::channel::<Command<S>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut state = state;
            while !stopping.load(Ordering::SeqCst) {
                // As a shard does: while a flush left connections for its next batch, do not wait.
                let wait = if driver.outbox().has_dirty() { Duration::ZERO } else { Duration::from_secs(1) };
                driver.turn(Some(wait), &mut |event, outbox| on_event(&mut state, event, outbox)).unwrap();
                while let Ok(command) = inbox.try_recv() {
                    match command {
                        Command::Run(f) => f(&mut state, driver.outbox()),
                        Command::Stats(reply) => {
                            let _ = reply.send(driver.stats());
                        }
                    }
                }
                driver.flush().unwrap();
            }
            state
        });
        Shard { addr, waker, commands, stop, thread: Some(thread) }
    }

    /// Runs `f` on the shard thread between two turns and returns its result.
    pub fn query<R: Send + 'static>(&self, f: impl FnOnce(&mut S, &mut Outbox) -> R + Send + 'static) -> R {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::Run(Box::new(move |state, outbox| {
                let _ = reply.send(f(state, outbox));
            })))
            .unwrap();
        self.waker.wake().unwrap();
        answer.recv_timeout(PATIENCE).expect("the shard did not answer in time")
    }

    /// The driver's counters, read between two turns.
    pub fn stats(&self) -> DriverStats {
        let (reply, answer) = mpsc::channel();
        self.commands.send(Command::Stats(reply)).unwrap();
        self.waker.wake().unwrap();
        answer.recv_timeout(PATIENCE).expect("the shard did not answer in time")
    }

    /// Polls `check` on the shard thread until it holds, failing the test after [`PATIENCE`].
    pub fn wait_until(&self, what: &str, check: fn(&S, &Outbox) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !self.query(move |state, outbox| check(state, outbox)) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(mut self) -> S {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake().unwrap();
        self.thread.take().unwrap().join().expect("the shard thread panicked")
    }
}

impl<S> Drop for Shard<S> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// A blocking loopback client whose reads and writes give up after [`PATIENCE`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads exactly `len` bytes.
pub fn read_len(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Reads until end of stream; fails the test on a reset or timeout.
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).unwrap();
    buf
}

pub fn write_all(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
}

/// Deterministic test bytes: the byte at stream offset `i` (period 251, so a shift is visible).
pub fn pattern(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(|i| (i % 251) as u8).collect()
}
