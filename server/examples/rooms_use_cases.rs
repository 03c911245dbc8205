//! The Socket.IO "Rooms" guide, second half, in Rust: its sample use cases (every tab of one user; the
//! followers of a project), the `disconnecting` / `disconnect` pair, and the adapter's room events.
//!
//! - A socket joins a room named by its user id, computed from a handshake header (`x-user-id` here;
//!   `computeUserIdFromHeaders` in the guide), so `io.to(userId).emit("hi")` reaches all of that user's
//!   tabs and devices.
//! - A socket joins `project:<id>` for each project it follows (from its `auth` here, `{"projects":[…]}`;
//!   `fetchProjects` in the guide), so `io.to("project:4321").emit("project updated")` notifies them.
//! - `disconnecting` still sees the socket's rooms; `disconnect` sees none (sockets leave every room by
//!   themselves).
//! - `create-room`, `delete-room`, `join-room` and `leave-room` are logged as they happen.
//!
//! The guide's "and then later" emits come from outside any handler: [`notify_user`] and
//! [`notify_project`] use a [`ServerHandle`], as another thread of the program would.
//!
//! Run: `cargo run -p roomcast-server --example rooms_use_cases` (port 3000), then connect with e.g.
//! `io("http://localhost:3000", { extraHeaders: { "x-user-id": "ann" }, auth: { projects: [4321] } })`.
//! Every 5 seconds the server says "hi" to user `ann` and updates project 4321.

use std::sync::Arc;
use std::time::Duration;

use roomcast_server::api::{AdapterEvent, Server, ServerHandle, Socket};
use roomcast_server::config::Config;

/// Where the handlers write what they observe (the guide's `console.log`).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// Installs the guide's use cases on `/`.
pub fn install(server: &mut Server, log: Log) {
    let (on_disconnecting, on_disconnect, on_room_event) = (log.clone(), log.clone(), log);
    server
        .namespace("/")
        .on_connection(|socket| {
            // const userId = await computeUserIdFromHeaders(socket.handshake.headers);
            // socket.join(userId);
            if let Some(user_id) = compute_user_id_from_headers(socket) {
                socket.join(&user_id);
            }
            // const projects = await fetchProjects(socket);
            // projects.forEach(project => socket.join("project:" + project.id));
            for project in fetch_projects(socket) {
                socket.join(&format!("project:{project}"));
            }
        })
        .on_disconnecting(move |socket, _reason| {
            // console.log(socket.rooms); // the Set contains at least the socket ID
            on_disconnecting(format!("socket {} disconnecting, rooms {:?}", socket.id(), socket.rooms()));
        })
        .on_disconnect(move |socket, _reason| {
            // socket.rooms.size === 0
            on_disconnect(format!("socket {} disconnected, {} rooms", socket.id(), socket.rooms().len()));
        })
        .on_adapter_event(move |event| match event {
            // io.of("/").adapter.on("create-room", (room) => { … });
            AdapterEvent::CreateRoom(room) => on_room_event(format!("room {room} was created")),
            // io.of("/").adapter.on("join-room", (room, id) => { … });
            AdapterEvent::JoinRoom(room, id) => on_room_event(format!("socket {id} has joined room {room}")),
            AdapterEvent::LeaveRoom(room, id) => on_room_event(format!("socket {id} has left room {room}")),
            AdapterEvent::DeleteRoom(room) => on_room_event(format!("room {room} was deleted")),
        });
}

/// The user a connection belongs to. A real application would verify a session cookie or token here.
fn compute_user_id_from_headers(socket: &Socket<'_>) -> Option<String> {
    let handshake = socket.handshake()?;
    handshake.header("x-user-id").filter(|id| !id.is_empty()).map(str::to_owned)
}

/// The projects a socket follows. A real application would ask its database; here the client names them
/// in its `auth` payload.
fn fetch_projects(socket: &Socket<'_>) -> Vec<u64> {
    let auth: serde_json::Value = serde_json::from_slice(socket.auth()).unwrap_or_default();
    auth["projects"].as_array().into_iter().flatten().filter_map(|p| p.as_u64()).collect()
}

/// `io.to(userId).emit("hi")`: every tab of that user.
pub fn notify_user(io: &ServerHandle, user_id: &str) {
    io.emit("/", &[user_id], &[], "hi", &[]);
}

/// `io.to("project:<id>").emit("project updated")`: every follower of the project.
pub fn notify_project(io: &ServerHandle, project: u64) {
    io.emit("/", &[&format!("project:{project}")], &[], "project updated", &[]);
}

fn main() -> anyhow::Result<()> {
    let mut server = Server::new();
    install(&mut server, Arc::new(|line| eprintln!("{line}")));
    let running = server.start(Config { listen: "0.0.0.0:3000".parse()?, ..Config::default() })?;
    eprintln!("rooms_use_cases on {} ({})", running.local_addr(), running.backend());
    let io = running.handle();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(5));
        notify_user(&io, "ann");
        notify_project(&io, 4321);
    });
    running.wait()?;
    Ok(())
}
