//! The server the official protocol test suites expect (reference notes §3.3, §3.4): port 3000, ping
//! 300/200 ms, connectTimeout 1000 ms, maxHttpBufferSize 1e6, CORS `*`.
//! - Socket.IO v5 suite, on `/socket.io/`: namespace `/` echoes `auth` on connect, answers `message`
//!   with `message-back` and acks `message-with-ack` with its arguments; `/custom` echoes `auth`.
//! - Engine.IO v4 suite, on `/engine.io/`: a raw Engine.IO endpoint echoing every message unchanged
//!   (text stays text, binary stays binary).
//!
//! Run: `cargo run -p roomcast-server --example conformance`, then `npm test` in either suite.
//! `ROOMCAST_SHARDS=2` runs two shards (sessions then span shards: requests are routed home);
//! `ROOMCAST_IO=epoll|uring` picks the I/O backend (default: io_uring where it runs).

use std::time::Duration;

use roomcast_server::api::{Arg, Server, Socket};
use roomcast_server::config::{Config, IoChoice};

fn emit_auth(socket: &mut Socket<'_>) {
    let auth = Arg::Json(bytes::Bytes::copy_from_slice(socket.auth()));
    socket.emit("auth", &[auth]);
}

fn main() -> anyhow::Result<()> {
    let mut server = Server::new();
    server
        .namespace("/")
        .on_connection(emit_auth)
        .on("message", |socket, event| socket.emit("message-back", &event.to_args()))
        .on("message-with-ack", |socket, event| socket.ack(event.ack_id(), &event.to_args()));
    server.namespace("/custom").on_connection(emit_auth);
    server.engine_io("/engine.io/").on_message(|socket, message| socket.send(message));
    let config = Config {
        listen: "0.0.0.0:3000".parse()?,
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(1000),
        cors_origins: vec!["*".into()],
        shards: std::env::var("ROOMCAST_SHARDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1),
        io: match std::env::var("ROOMCAST_IO").as_deref() {
            Ok("epoll") => IoChoice::Epoll,
            Ok("uring") => IoChoice::Uring,
            _ => IoChoice::Auto,
        },
        ..Config::default()
    };
    let running = server.start(config)?;
    eprintln!("conformance server on {} ({})", running.local_addr(), running.backend());
    running.wait()?;
    Ok(())
}
