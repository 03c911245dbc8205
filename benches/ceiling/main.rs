//! `ceiling`: the fastest a fan-out can be on this machine, for the end-to-end benchmark (issue 7).
//!
//! It speaks just enough Engine.IO/Socket.IO over WebSocket for `roomcast-loadgen` to be its reader —
//! the upgrade, the Engine.IO open packet, the namespace CONNECT reply, `join`/`leave` acked with
//! `"ok"`, and `publish` — and does nothing a real server does beyond that: no heartbeats, no
//! per-socket limits, no polling, no namespaces, no validation of what clients send. On `publish` it
//! builds the delivered frame once (`42["<event>",<data>]` in one WebSocket text frame) and writes
//! those same bytes to every member of the target rooms except the sender and the excepted rooms.
//!
//! Two send modes (`--send`):
//! - `single`: one `write` per frame per socket, right when the broadcast is handled;
//! - `coalesced`: frames are queued per socket and each socket with frames gets one `writev` at the end
//!   of the loop turn (as Roomcast flushes), so several broadcasts handled in one turn cost one send.
//!
//! Threads (`--threads`, default one per core, as Roomcast's shards) each own a `SO_REUSEPORT` listener,
//! an epoll loop and the sockets the kernel hands them; a broadcast is handled on the publisher's thread
//! and forwarded, in order, to the others through a channel. Each receiver sees one publisher's frames
//! in the order they were published.
//!
//! Usage: `ceiling [--port 3003] [--threads N] [--send single|coalesced]`; prints
//! `ceiling: listening on <addr>` once ready; stops on SIGINT/SIGTERM (default action).

mod conn;
mod shard;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};

/// How the ceiling writes frames to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendMode {
    /// One `write` per frame per socket.
    Single,
    /// One `writev` per socket per loop turn, carrying every frame queued in that turn.
    Coalesced,
}

#[derive(Debug, Parser)]
#[command(
    name = "ceiling",
    about = "Writes pre-built broadcast frames to loopback sockets as fast as the kernel allows"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// TCP port (0 picks a free one).
    #[arg(long, default_value_t = 3003)]
    port: u16,
    /// Event-loop threads. [default: number of cores]
    #[arg(long)]
    threads: Option<usize>,
    /// One send per frame, or one send per socket per loop turn.
    #[arg(long, value_enum, default_value = "coalesced")]
    send: SendMode,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .max(1);
    let addr: SocketAddr = format!("{}:{}", args.host, args.port).parse().context("bad --host/--port")?;
    // The first listener fixes the port (port 0 picks one); the others bind the same address.
    let first = shard::reuseport_listener(addr)?;
    let local = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(shard::reuseport_listener(local)?);
    }
    let mut senders = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..threads {
        let (tx, rx) = mpsc::channel::<Arc<shard::Broadcast>>();
        senders.push(tx);
        inboxes.push(rx);
    }
    let mut shards = Vec::new();
    for (index, (listener, inbox)) in listeners.into_iter().zip(inboxes).enumerate() {
        shards.push(shard::Shard::new(index, listener, inbox, args.send)?);
    }
    let wakers: Vec<_> = shards.iter().map(|s| s.waker()).collect::<Result<_, _>>()?;
    let peers: Arc<Vec<shard::Peer>> =
        Arc::new(senders.into_iter().zip(wakers).map(|(tx, waker)| shard::Peer { tx, waker }).collect());
    println!("ceiling: listening on {local} ({threads} thread(s), {:?} sends)", args.send);
    let mut handles = Vec::new();
    for mut s in shards {
        let peers = peers.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("ceiling-{}", s.index()))
                .spawn(move || s.run(&peers))
                .context("starting a thread")?,
        );
    }
    for h in handles {
        match h.join() {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("a ceiling thread panicked"),
        }
    }
    Ok(())
}
