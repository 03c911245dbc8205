//! The Socket.IO server API a Rust program builds on: namespaces, handlers, sockets, broadcasts; and
//! raw Engine.IO endpoints beside it ([`engine`]).
//!
//! ```no_run
//! use roomcast_server::api::{Arg, Server};
//! use roomcast_server::config::Config;
//!
//! let mut server = Server::new();
//! server.namespace("/").on("chat", |socket, event| {
//!     socket.to("lobby").emit("chat", &event.to_args());
//! });
//! let running = server.start(Config::default()).unwrap();
//! running.wait().unwrap();
//! ```

pub mod args;
pub mod cluster;
pub mod engine;
pub mod handshake;
pub mod namespace;
pub mod operator;
pub mod server;
pub mod socket;

pub use crate::cluster::ServerSideAck;
pub use crate::shard::selection::{RoomsView, SocketInfo};
pub use args::{Arg, ArgRef, Event, InvalidJson, JsonWithBinary};
pub use cluster::{ClusterResult, ClusterSockets, TimedOut};
pub use engine::{EngineEndpoint, EngineSocket};
pub use handshake::{ConnectError, ConnectRequest, Handshake};
pub use namespace::Namespace;
pub use operator::Operator;
pub use roomcast_engine::cluster::RemoteSocket;
pub use roomcast_engine::eio::InMessage;
pub use roomcast_engine::rooms::AdapterEvent;
pub use server::{RunningServer, Server, ServerHandle, StartError};
pub use socket::{AckCallback, AckError, Ctx, Socket};
