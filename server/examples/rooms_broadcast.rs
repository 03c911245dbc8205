//! The Socket.IO "Rooms" guide, first half, in Rust: joining and leaving, broadcasting to a room with
//! `to` / `in`, excluding a room with `except`, several rooms at once (a union: each socket gets the
//! event once), and broadcasting from a socket (every socket in the room except the sender).
//!
//! The guide's snippets run at arbitrary points of a Node program; here each one is an event a client
//! emits, so the behaviour can be tried from any Socket.IO client:
//!
//! ```js
//! const socket = io("http://localhost:3000");    // joins "some room" on connection
//! socket.on("some event", () => console.log("some event"));
//! socket.emit("to some room");                    // io.to("some room").emit("some event")
//! socket.emit("from socket");                     // socket.to("some room").emit("some event")
//! socket.emit("join", "room2");                   // socket.join("room2")
//! ```
//!
//! Run: `cargo run -p roomcast-server --example rooms_broadcast` (port 3000).

use roomcast_server::api::{Event, Server};
use roomcast_server::config::Config;

/// Installs the guide's handlers on `/`.
pub fn install(server: &mut Server) {
    server
        .namespace("/")
        // io.on("connection", (socket) => { socket.join("some room"); });
        .on_connection(|socket| socket.join("some room"))
        // socket.join(room) / socket.leave(room), "in the same fashion".
        .on("join", |socket, event| {
            if let Some(room) = room_arg(event) {
                socket.join(&room);
            }
        })
        .on("leave", |socket, event| {
            if let Some(room) = room_arg(event) {
                socket.leave(&room);
            }
        })
        // io.to("some room").emit("some event");
        .on("to some room", |socket, _| socket.nsp().to("some room").emit("some event", &[]))
        // io.in("some room").emit("some event"); (`in` is a keyword in Rust: `within`)
        .on("in some room", |socket, _| socket.nsp().within("some room").emit("some event", &[]))
        // io.except("some room").emit("some event");
        .on("except some room", |socket, _| socket.nsp().except("some room").emit("some event", &[]))
        // io.to("room1").to("room2").to("room3").emit("some event");
        .on("to three rooms", |socket, _| {
            socket.nsp().to("room1").to("room2").to("room3").emit("some event", &[]);
        })
        // io.on("connection", (socket) => { socket.to("some room").emit("some event"); });
        .on("from socket", |socket, _| socket.to("some room").emit("some event", &[]));
}

fn room_arg(event: &Event<'_>) -> Option<String> {
    event.arg(0)?.as_str().map(|room| room.into_owned())
}

fn main() -> anyhow::Result<()> {
    let mut server = Server::new();
    install(&mut server);
    let running = server.start(Config { listen: "0.0.0.0:3000".parse()?, ..Config::default() })?;
    eprintln!("rooms_broadcast on {} ({})", running.local_addr(), running.backend());
    running.wait()?;
    Ok(())
}
