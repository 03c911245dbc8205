//! The socketioxide reference peer: socketioxide (latest 0.18) on axum and tokio, running the same app as
//! Roomcast's built-in one (`server/src/app.rs`) and the Node peer (`benches/peers/node/server.js`), so
//! `roomcast-loadgen` drives all three the same way.
//!
//! On namespace `/`, a client may emit:
//! - `join` (room) → joins it; ack `"ok"`;
//! - `leave` (room) → leaves it; ack `"ok"`;
//! - `publish` (`{"to":[rooms],"except":[rooms],"event":name,"data":any}`) →
//!   `socket.to(to…).except(except…).emit(event, data)`: the sender excluded; with no `to`, every
//!   socket of the namespace but the sender. Ack `"ok"` once the broadcast is queued (also when a
//!   recipient's buffer was full and it missed the message: the load generator counts that).
//!
//! A refused request is acked with `{"error":"…"}`. `to`/`except` may be one room name or a list.
//!
//! Usage: `socketioxide-peer [port]` (default 3002; 0 picks a free port). Prints
//! `socketioxide-peer: listening on <addr>` once ready. `HOST` (default 127.0.0.1) sets the address.
//! The tokio runtime uses one worker thread per core, its default.

use serde::Deserialize;
use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;

/// `to`/`except`: absent, one room name, or a list of them.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Rooms {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Rooms {
    fn into_vec(self) -> Vec<String> {
        match self {
            Rooms::None => Vec::new(),
            Rooms::One(room) => vec![room],
            Rooms::Many(rooms) => rooms,
        }
    }
}

#[derive(Deserialize)]
struct Publish {
    #[serde(default)]
    to: Rooms,
    #[serde(default)]
    except: Rooms,
    event: String,
    data: Option<Value>,
}

/// Broadcasts that socketioxide reported as failed (some recipient's buffer was full).
static BROADCAST_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Packets buffered per connection before socketioxide refuses more (its default is 128). Raised so
/// the peer queues about as much as Roomcast's 4 MiB outbound limit holds of 100-byte frames.
const MAX_BUFFER_SIZE: usize = 32_768;

fn refuse(ack: AckSender, why: &str) {
    // A client that asked for no ack, or that is gone, gets nothing: nothing to do then.
    let _ = ack.send(&serde_json::json!({ "error": why }));
}

fn room_name(value: Value) -> Option<String> {
    match value {
        Value::String(room) if !room.is_empty() => Some(room),
        _ => None,
    }
}

/// Registers the app's handlers. Runs as a connect *middleware*, which socketioxide awaits before it
/// sends the CONNECT packet: a connect handler runs only after that packet is out, so a client that
/// emits `join` right after CONNECT (as `roomcast-loadgen` does) would race the registration and its
/// event would be dropped unanswered.
async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    socket.on("join", async |socket: SocketRef, Data::<Value>(room), ack: AckSender| match room_name(room) {
        Some(room) => {
            socket.join(room);
            let _ = ack.send("ok");
        }
        None => refuse(ack, "expected a room name"),
    });
    socket.on("leave", async |socket: SocketRef, Data::<Value>(room), ack: AckSender| {
        match room_name(room) {
            Some(room) => {
                socket.leave(room);
                let _ = ack.send("ok");
            }
            None => refuse(ack, "expected a room name"),
        }
    });
    socket.on("publish", async |socket: SocketRef, Data::<Value>(request), ack: AckSender| {
        let Ok(request) = serde_json::from_value::<Publish>(request) else {
            return refuse(ack, "expected {\"to\":[…],\"except\":[…],\"event\":…,\"data\":…}");
        };
        let to = request.to.into_vec();
        let except = request.except.into_vec();
        let mut op = socket.broadcast();
        if !to.is_empty() {
            op = op.to(to);
        }
        if !except.is_empty() {
            op = op.except(except);
        }
        let sent = match &request.data {
            Some(data) => op.emit(&request.event, data).await,
            None => op.emit(&request.event, &()).await,
        };
        // A recipient whose buffer is full misses this message (socketioxide reports it as an error
        // for the whole broadcast); the others got it, so the publish is acked "ok" either way and
        // the load generator counts the misses. The first few errors are printed.
        if let Err(e) = sent {
            let n = BROADCAST_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n < 5 {
                eprintln!("socketioxide-peer: broadcast error: {e}");
            }
        }
        let _ = ack.send("ok");
    });
    Ok(())
}

async fn on_connect(_socket: SocketRef) {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1).or_else(|| std::env::var("PORT").ok()) {
        Some(p) => p.parse()?,
        None => 3002,
    };
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let (layer, io) = SocketIo::builder().max_buffer_size(MAX_BUFFER_SIZE).build_layer();
    io.ns("/", on_connect.with(register));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    println!("socketioxide-peer: listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
