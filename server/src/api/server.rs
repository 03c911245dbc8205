//! Building and starting a server, and the handle other threads use to reach it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use roomcast_engine::http::Endpoint;
use roomcast_engine::ids::ShardId;
use roomcast_engine::rooms::{BroadcastTarget, RoomName};

use super::args::Arg;
use super::engine::EngineEndpoint;
use super::namespace::{Namespace, NamespaceMatcher};
use super::socket::Ctx;
use crate::broadcast::{Broadcast, EncodedPacket};
use crate::config::{Config, IoChoice};
use crate::driver::{
    bind_shard_listeners, probe_io_uring, Driver, DriverConfig, EpollDriver, IoBackend, UringDriver,
};
use crate::shard::core::ShardCore;
use crate::shard::shared::{ShardMsg, Shared};
use crate::shard::Shard;

/// Why a server could not start. Configuration or the machine is at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("io_uring was required (--io uring) but cannot run here: {0}")]
    UringUnavailable(String),
    #[error("cannot set up the I/O driver: {0}")]
    Driver(std::io::Error),
    #[error("cannot start a shard thread: {0}")]
    Thread(std::io::Error),
    #[error("the raw Engine.IO endpoint {0} has the path of the Socket.IO endpoint")]
    PathTaken(String),
    #[error(transparent)]
    Redis(#[from] crate::cluster::RedisUnreachable),
    #[error(transparent)]
    RedisTooOld(#[from] crate::cluster::RedisTooOld),
}

/// A server being described: namespaces and their handlers (`/` always exists), and any raw Engine.IO
/// endpoints.
pub struct Server {
    namespaces: Vec<(Arc<str>, Namespace)>,
    dynamic: Vec<(NamespaceMatcher, Namespace)>,
    /// By normalized path (`/engine.io/`).
    engines: Vec<(String, EngineEndpoint)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("namespaces", &self.namespaces.len())
            .field("engine_endpoints", &self.engines.iter().map(|(path, _)| path).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            namespaces: vec![(Arc::from("/"), Namespace::default())],
            dynamic: Vec::new(),
            engines: Vec::new(),
        }
    }
}

impl Server {
    pub fn new() -> Self {
        Server::default()
    }

    /// The namespace named `name` (created on first use; a leading `/` is added if missing).
    pub fn namespace(&mut self, name: &str) -> &mut Namespace {
        let name: Arc<str> =
            if name.starts_with('/') { Arc::from(name) } else { Arc::from(format!("/{name}")) };
        let index = match self.namespaces.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                self.namespaces.push((name, Namespace::default()));
                self.namespaces.len() - 1
            }
        };
        &mut self.namespaces[index].1
    }

    /// Namespaces created on demand when a client connects to a name `matches` accepts (`io.of(regex)`).
    /// Each such namespace gets these handlers.
    pub fn dynamic_namespace(
        &mut self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> &mut Namespace {
        self.dynamic.push((Arc::new(matches), Namespace::default()));
        let last = self.dynamic.len() - 1;
        &mut self.dynamic[last].1
    }

    /// A raw Engine.IO endpoint at `path` (created on first use), beside the Socket.IO endpoint: its
    /// sessions speak plain Engine.IO and their messages go to its handlers (see [`super::engine`]).
    /// The path is normalized as engine.io does (`/engine.io` and `/engine.io/` are one endpoint) and
    /// matched as a prefix; a request under several endpoints' paths goes to the longest. It must differ
    /// from `config.path`, or [`Server::start`] fails with [`StartError::PathTaken`].
    pub fn engine_io(&mut self, path: &str) -> &mut EngineEndpoint {
        let path = Endpoint::new(path).path().to_owned();
        let index = match self.engines.iter().position(|(p, _)| *p == path) {
            Some(i) => i,
            None => {
                self.engines.push((path, EngineEndpoint::default()));
                self.engines.len() - 1
            }
        };
        &mut self.engines[index].1
    }

    /// Binds the listeners, starts one thread per shard, and returns once they run.
    pub fn start(self, config: Config) -> Result<RunningServer, StartError> {
        let socket_io = Endpoint::new(&config.path);
        if let Some((path, _)) = self.engines.iter().find(|(p, _)| p == socket_io.path()) {
            return Err(StartError::PathTaken(path.clone()));
        }
        let backend = match config.io {
            IoChoice::Epoll => (IoBackend::Epoll, None),
            IoChoice::Uring => match probe_io_uring() {
                Ok(()) => (IoBackend::Uring, None),
                Err(why) => return Err(StartError::UringUnavailable(why)),
            },
            IoChoice::Auto => IoBackend::detect(),
        };
        if let (IoBackend::Epoll, Some(why)) = &backend {
            eprintln!("roomcast: io_uring unavailable ({why}); using epoll");
        }
        match backend.0 {
            IoBackend::Uring => self.start_with::<UringDriver>(config, IoBackend::Uring),
            IoBackend::Epoll => self.start_with::<EpollDriver>(config, IoBackend::Epoll),
        }
    }

    fn start_with<D: Driver + Send + 'static>(
        self,
        config: Config,
        backend: IoBackend,
    ) -> Result<RunningServer, StartError> {
        let driver_config = DriverConfig {
            zero_copy_threshold: (config.zero_copy_threshold > 0).then_some(config.zero_copy_threshold),
            ..DriverConfig::default()
        };
        let listeners = bind_shard_listeners(config.listen, config.shards, driver_config.accept_backlog)
            .map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let local_addr = listeners.first().and_then(|l| l.local_addr().ok()).unwrap_or(config.listen);
        let mut drivers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            drivers.push(D::new(listener, &driver_config).map_err(StartError::Driver)?);
        }
        let (link, pending) = match &config.redis {
            Some(redis) => {
                let (link, pending) = crate::cluster::Pending::connect(redis)?;
                (Some(link), Some(pending))
            }
            None => (None, None),
        };
        let wakers = drivers.iter().map(|d| d.waker()).collect();
        let namespaces = self.namespaces.into_iter().map(|(n, def)| (n, Arc::new(def))).collect();
        let dynamic = self.dynamic.into_iter().map(|(m, def)| (m, Arc::new(def))).collect();
        let engines = self.engines.into_iter().map(|(p, def)| (p, Arc::new(def))).collect();
        let shared = Arc::new(Shared::new(config, namespaces, dynamic, engines, wakers, link));
        let mut threads = Vec::with_capacity(drivers.len());
        for (i, driver) in drivers.into_iter().enumerate() {
            let core = ShardCore::new(ShardId(i as u16), shared.clone());
            let thread = std::thread::Builder::new()
                .name(format!("roomcast-shard-{i}"))
                .spawn(move || Shard { driver, core }.run())
                .map_err(StartError::Thread)?;
            threads.push(thread);
        }
        let cluster = match pending {
            Some(pending) => Some(pending.start(shared.clone()).map_err(StartError::Thread)?),
            None => None,
        };
        Ok(RunningServer { handle: ServerHandle { shared }, threads, cluster, local_addr, backend })
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    handle: ServerHandle,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
    /// The Redis adapter's threads, stopped once the shards have ended.
    cluster: Option<crate::cluster::Cluster>,
    local_addr: SocketAddr,
    backend: IoBackend,
}

impl RunningServer {
    /// The address the shards listen on (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Which I/O backend the shards use.
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// A handle for other threads.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Asks every shard to close its clients and stop, then waits for the threads (bounded by the
    /// configured drain time). Returns the first shard error, if any.
    pub fn shutdown(self) -> std::io::Result<()> {
        self.handle.shutdown();
        self.wait()
    }

    /// Waits for the shard threads to end (after a shutdown from some handle), then stops the Redis
    /// adapter's threads, if any.
    pub fn wait(self) -> std::io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = result.and(Err(e)),
                Err(_) => result = result.and(Err(std::io::Error::other("a shard thread panicked"))),
            }
        }
        if let Some(cluster) = self.cluster {
            cluster.stop();
        }
        result
    }
}

/// Reaches a running server from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// `io.of(nsp).to(to…).except(except…).emit(event, args)` from outside the shards: encoded once here,
    /// delivered by every shard, and published once to the other servers of a Redis cluster.
    pub fn emit(&self, nsp: &str, to: &[&str], except: &[&str], event: &str, args: &[Arg]) {
        let target = BroadcastTarget {
            to: to.iter().map(|r| RoomName::from(*r)).collect(),
            except: except.iter().map(|r| RoomName::from(*r)).collect(),
            ..BroadcastTarget::default()
        };
        let packet = EncodedPacket::event(nsp, None, event, args);
        let broadcast = Arc::new(Broadcast { nsp: Arc::from(nsp), target, packet, origin: None });
        for inbox in &self.shared.inboxes {
            inbox.push(ShardMsg::Broadcast(broadcast.clone()));
        }
        if let Some(cluster) = &self.shared.cluster {
            cluster.publish_broadcast(&broadcast);
        }
    }

    /// Runs `f` on every shard's thread, with that shard's context (control path). Meant for
    /// shard-local reads such as `local_socket_ids`. An `emit`, `sockets_join`, `sockets_leave` or
    /// `disconnect_sockets` made in `f` already reaches every shard (and, unless `local`, the other
    /// servers of a cluster), so making it from each shard's run repeats it once per shard: use
    /// [`ServerHandle::emit`], or act from one shard (`if cx.shard().0 == 0`).
    pub fn on_each_shard(&self, f: impl Fn(&mut Ctx<'_>) + Send + Sync + 'static) {
        let f = Arc::new(f);
        for inbox in &self.shared.inboxes {
            let f = f.clone();
            inbox.push(ShardMsg::Run(Box::new(move |cx: &mut Ctx<'_>| f(cx))));
        }
    }

    /// Starts a graceful shutdown: shards stop accepting, close every client with a close frame /
    /// close packet, and exit once drained or after the drain timeout.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        for inbox in &self.shared.inboxes {
            inbox.push(ShardMsg::Shutdown);
        }
    }
}
