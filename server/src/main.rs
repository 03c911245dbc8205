//! The `roomcast` binary: the built-in push app on a Roomcast server.

use anyhow::Context;
use clap::Parser;
use roomcast_server::api::Server;
use roomcast_server::config::Options;

/// Writes one log line to stderr. A closed or full stderr must never stop the server (`eprintln!`
/// would panic, and in the signal thread that would swallow the shutdown).
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let file = options.load_file()?;
    let config = options.resolve(file)?;
    if config.client_rooms.is_none() {
        log!("roomcast: every room is open to clients (restrict with --client-rooms <glob>)");
    }
    let signals = block_signals()?;
    let mut server = Server::new();
    roomcast_server::app::install(&mut server, config.client_rooms.clone());
    let shards = config.shards;
    if let Some(redis) = &config.redis {
        let adapter = if redis.sharded { "sharded" } else { "classic" };
        log!(
            "roomcast: joining the redis cluster at {}:{} ({adapter} adapter, prefix {})",
            redis.url.host,
            redis.url.port,
            redis.key_prefix
        );
    }
    let running = server.start(config).context("starting the server")?;
    log!(
        "roomcast: listening on {} ({} shard(s), {} backend)",
        running.local_addr(),
        shards,
        running.backend()
    );
    let handle = running.handle();
    std::thread::Builder::new()
        .name("roomcast-signals".into())
        .spawn(move || {
            if wait_for_signal(&signals) {
                log!("roomcast: shutting down");
                handle.shutdown();
            }
        })
        .context("starting the signal thread")?;
    running.wait().context("a shard failed")?;
    Ok(())
}

/// Blocks SIGINT and SIGTERM in this thread (and every thread started after), so that only the
/// signal thread receives them, through `sigwait`.
fn block_signals() -> anyhow::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before any other use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        anyhow::ensure!(rc == 0, "pthread_sigmask failed: {rc}");
        Ok(set)
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> bool {
    let mut signal = 0;
    // SAFETY: `set` was initialised by block_signals and `signal` is a valid out-pointer.
    unsafe { libc::sigwait(set, &mut signal) == 0 }
}
