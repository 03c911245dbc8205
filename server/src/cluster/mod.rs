//! The Redis adapter: this server as one node of a Socket.IO cluster, wire-compatible with Node.js
//! servers running `@socket.io/redis-adapter` 8.x and with `@socket.io/redis-emitter` 5.x (the wire
//! codec is `roomcast_engine::cluster`; the reasons for this shape are in
//! `docs/design/why-redis-adapter.md`).
//!
//! Two threads, none of it on a shard:
//! - the **publisher** ([`publisher`]) owns one Redis connection. Shards hand it what to publish over a
//!   bounded channel ([`ClusterLink::publish_broadcast`], never blocking); it transcodes a broadcast's
//!   encoded packet into the adapter's msgpack message and `PUBLISH`es it, pipelining bursts.
//! - the **subscriber** ([`subscriber`]) owns another, in subscribe mode. A broadcast from another node
//!   is decoded once, its packet and frames encoded once, and pushed to every shard's inbox as a
//!   broadcast with no origin, exactly like [`crate::api::ServerHandle::emit`]. Requests are applied on
//!   every shard through `ShardMsg::Run`, and answers gathered from the shards are published by the last
//!   shard to answer ([`requests`]).
//!
//! With `--redis-sharded` the same two threads speak the sharded adapter (`createShardedAdapter`):
//! `SPUBLISH` of socket.io-adapter's `ClusterAdapter` messages ([`wire`]), and a subscriber
//! ([`sharded_subscriber`], [`sharded_inbound`]) on `SSUBSCRIBE`d channels, following per-room channels
//! while any shard has the room ([`sharded_rooms`]).
//!
//! This server's own requests ([`outgoing`]: `fetchSockets`, `serverSideEmit`, broadcast with acks, …)
//! leave through the publisher in either protocol; their answers come back through the subscriber into
//! a pending-request table, and each caller's callback runs on the shard that asked.
//!
//! Both reconnect with backoff, forever, once the server runs; the subscriber resubscribes. Redis
//! pub/sub is at-most-once: what is published while a connection is down is lost (see the design note).
//!
//! **Architecture Invariant:** a shard never waits on Redis: it only `try_send`s to the publisher (a
//! full queue drops the message and counts it) and reads its inbox.

mod inbound;
pub(crate) mod outgoing;
mod publisher;
pub(crate) use publisher::broadcast_opts;
mod requests;
pub(crate) mod resp;
mod sharded_inbound;
pub(crate) mod sharded_rooms;
mod sharded_subscriber;
pub(crate) mod sockets;
mod subscriber;
mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::api::StartError;
use crate::broadcast::Broadcast;
use crate::config::{RedisConfig, RedisRetry};
use crate::shard::shared::Shared;
use resp::{Connection, Reply};

/// Messages the publisher queue holds at most: about a second of a busy server's broadcasts. Past it,
/// shards drop what they would publish (counted in [`ClusterLink::dropped`]) rather than wait.
const PUBLISH_QUEUE: usize = 16 * 1024;
/// How long connecting, writing and each blocking read may take before the thread looks around.
const IO_TIMEOUT: Duration = Duration::from_millis(250);
/// First and largest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Work for the publisher thread.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A broadcast made on this server: transcode and publish it.
    Broadcast(Arc<Broadcast>),
    /// Publish these bytes as they are (a response).
    Publish { channel: String, payload: Bytes },
    /// A request of this server to the others of namespace `nsp` ([`outgoing`]): encode, publish, and
    /// tell the pending request (if `request_id`) how many other servers received it.
    Request { nsp: Arc<str>, request_id: Option<String>, query: outgoing::Query },
}

/// What shards and the cluster threads share: the publisher's queue and this node's identity.
#[derive(Debug)]
pub(crate) struct ClusterLink {
    tx: Sender<Outgoing>,
    /// This server's uid: 6 random URL-safe characters (classic adapter) or 16 hex digits (sharded).
    pub uid: String,
    pub config: RedisConfig,
    /// Messages dropped because the publisher queue was full.
    pub dropped: AtomicU64,
    /// Namespaces created at run time (`Server::dynamic_namespace`), in creation order: the subscriber
    /// subscribes to their channels as they appear ([`ClusterLink::namespace_created`]).
    dynamic: Mutex<Vec<Arc<str>>>,
    /// `dynamic.len()`, read by the subscriber without the lock.
    dynamic_len: AtomicUsize,
    /// Where shards report the rooms they create and delete (sharded adapter, `dynamic` modes only).
    pub rooms: Option<sharded_rooms::RoomLink>,
    /// The namespaces whose subscription Redis confirmed on the subscriber's current connection: the
    /// classic request channel, or the sharded main channel (subscribed after this node's own one).
    /// Requests with answers wait for it ([`ClusterLink::is_subscribed`]).
    subscribed: Mutex<Vec<Arc<str>>>,
}

impl ClusterLink {
    /// Hands a broadcast made on this server to the publisher, unless it is `local`. Called by the
    /// shard that made it, once. Never blocks.
    pub(crate) fn publish_broadcast(&self, broadcast: &Arc<Broadcast>) {
        if !broadcast.target.flags.local {
            self.send(Outgoing::Broadcast(broadcast.clone()));
        }
    }

    /// Publishes raw bytes on a channel. Never blocks.
    pub(crate) fn publish(&self, channel: String, payload: Bytes) {
        self.send(Outgoing::Publish { channel, payload });
    }

    /// A sender into the publisher queue, for callbacks that outlive the call that made them.
    pub(crate) fn sender(&self) -> Sender<Outgoing> {
        self.tx.clone()
    }

    /// A shard created the dynamic namespace `nsp`: the subscriber subscribes to its channels, as a
    /// Node server does when `io.of(regex)` creates one. Control path (once per namespace and shard).
    pub(crate) fn namespace_created(&self, nsp: &Arc<str>) {
        let mut dynamic = self.dynamic.lock().unwrap_or_else(PoisonError::into_inner);
        if !dynamic.contains(nsp) {
            dynamic.push(nsp.clone());
            self.dynamic_len.store(dynamic.len(), Ordering::Release);
        }
    }

    /// The dynamic namespaces created so far, from the `skip`th on.
    pub(crate) fn dynamic_namespaces(&self, skip: usize) -> Vec<Arc<str>> {
        if self.dynamic_len.load(Ordering::Acquire) <= skip {
            return Vec::new();
        }
        let dynamic = self.dynamic.lock().unwrap_or_else(PoisonError::into_inner);
        dynamic.iter().skip(skip).cloned().collect()
    }

    /// Redis confirmed the subscriber's subscription for `nsp`: from now on, every `PUBLISH` (sharded:
    /// `SPUBLISH`) of a request of `nsp` counts this node among its receivers, and answers can reach
    /// it. Called by the subscriber thread when it reads the confirmation; control path.
    pub(crate) fn confirm_subscribed(&self, nsp: &str) {
        let mut subscribed = self.subscribed.lock().unwrap_or_else(PoisonError::into_inner);
        if !subscribed.iter().any(|s| &**s == nsp) {
            subscribed.push(Arc::from(nsp));
        }
    }

    /// The subscriber's connection is gone (or new): nothing is subscribed until confirmed again.
    pub(crate) fn forget_subscriptions(&self) {
        self.subscribed.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Whether a request of `nsp` published now would count this node and could be answered:
    /// the publisher holds requests with answers until then. A request published before would
    /// take its expected answer count from a reply that leaves this node out, and stop waiting
    /// one answer too early. Called by the publisher per request; control path.
    pub(crate) fn is_subscribed(&self, nsp: &str) -> bool {
        self.subscribed.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|s| &**s == nsp)
    }

    fn send(&self, msg: Outgoing) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(msg) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The acknowledgement a server-side emit from another node asked for
/// (`serverSideEmitWithAck` on a Node server). Answer once; dropping it answers nothing, and the
/// requester times out.
#[derive(Debug)]
pub struct ServerSideAck {
    pub(crate) tx: Sender<Outgoing>,
    pub(crate) channel: String,
    pub(crate) request_id: String,
    pub(crate) format: wire::AckFormat,
}

impl ServerSideAck {
    /// Sends the answer (`data`, or nothing for an ack without arguments) to the requesting server.
    /// Never blocks: it is queued for the publisher thread.
    pub fn send(self, data: Option<&crate::api::Arg>) {
        let data =
            data.and_then(|arg| roomcast_engine::cluster::transcode::arg_value(&sockets::out_arg(arg)).ok());
        let payload = self.format.encode(self.request_id, data);
        let _ = self.tx.try_send(Outgoing::Publish { channel: self.channel, payload });
    }
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach redis at {host}:{port} ({attempts} attempt(s)): {last}")]
pub struct RedisUnreachable {
    host: String,
    port: u16,
    attempts: u32,
    last: std::io::Error,
}

/// Why the sharded adapter cannot run on the Redis it reached: `SSUBSCRIBE`/`SPUBLISH` came with
/// Redis 7.0. The operator chose `--redis-sharded` against an older server.
#[derive(Debug, thiserror::Error)]
#[error(
    "--redis-sharded needs Redis 7.0 or later (SSUBSCRIBE, SPUBLISH), but {host}:{port} runs Redis {version}; \
     upgrade it or drop --redis-sharded to use the classic adapter"
)]
pub struct RedisTooOld {
    host: String,
    port: u16,
    version: String,
}

/// The connections and the publisher's queue, before the server's shared state (which holds the
/// [`ClusterLink`]) exists.
#[derive(Debug)]
pub(crate) struct Pending {
    rx: Receiver<Outgoing>,
    publisher: Connection,
    subscriber: Connection,
    rooms: Option<Receiver<sharded_rooms::RoomChange>>,
}

/// The running cluster threads.
#[derive(Debug)]
pub(crate) struct Cluster {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Pending {
    /// Opens both connections, retrying as `config.retry` says. Blocks the starting thread only.
    /// With `config.sharded`, also checks that the server is Redis 7 or later ([`RedisTooOld`]).
    pub(crate) fn connect(config: &RedisConfig) -> Result<(ClusterLink, Pending), StartError> {
        let mut publisher = connect_with_retry(config)?;
        if config.sharded {
            check_sharded_support(&mut publisher, config)?;
        }
        let subscriber = connect_with_retry(config)?;
        let (tx, rx) = crossbeam_channel::bounded(PUBLISH_QUEUE);
        let uid = if config.sharded { random_hex(16) } else { random_uid(6) };
        let (rooms, rooms_rx) = match config.sharded {
            true => sharded_rooms::RoomLink::new(config.subscription_mode).unzip(),
            false => (None, None),
        };
        let link = ClusterLink {
            tx,
            uid,
            config: config.clone(),
            dropped: AtomicU64::new(0),
            dynamic: Mutex::default(),
            dynamic_len: AtomicUsize::new(0),
            rooms,
            subscribed: Mutex::default(),
        };
        Ok((link, Pending { rx, publisher, subscriber, rooms: rooms_rx }))
    }

    /// Starts the publisher and subscriber threads for a server whose shared state holds the link.
    pub(crate) fn start(self, shared: Arc<Shared>) -> std::io::Result<Cluster> {
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (stop, shared, rx, conn) = (stop.clone(), shared.clone(), self.rx, self.publisher);
            std::thread::Builder::new()
                .name("roomcast-redis-pub".into())
                .spawn(move || publisher::run(shared, rx, conn, stop))?
        };
        let subscriber = {
            let (stop, conn, rooms) = (stop.clone(), self.subscriber, self.rooms);
            let sharded = shared.cluster.as_ref().is_some_and(|link| link.config.sharded);
            std::thread::Builder::new().name("roomcast-redis-sub".into()).spawn(move || {
                if sharded {
                    sharded_subscriber::run(shared, conn, rooms, stop)
                } else {
                    subscriber::run(shared, conn, stop)
                }
            })?
        };
        Ok(Cluster { stop, threads: vec![publisher, subscriber] })
    }
}

impl Cluster {
    /// Stops both threads (each notices within [`IO_TIMEOUT`]) and waits for them.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The cluster link of a server, if it runs one.
pub(crate) fn link(shared: &Shared) -> Option<&ClusterLink> {
    shared.cluster.as_ref()
}

/// Refuses a server older than Redis 7 for the sharded adapter. A server whose `INFO` is refused
/// (an ACL, a proxy) or names no version is given the benefit of the doubt: if it lacks the
/// commands, the subscriber logs Redis's refusal.
fn check_sharded_support(conn: &mut Connection, config: &RedisConfig) -> Result<(), RedisTooOld> {
    let Ok(Reply::Bulk(Some(info))) = conn.call(&[b"INFO", b"server"]) else { return Ok(()) };
    match redis_version(&info) {
        Some((version, major)) if major < 7 => Err(RedisTooOld {
            host: config.url.host.clone(),
            port: config.url.port,
            version: version.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// `redis_version` from an `INFO` reply, with its major number.
fn redis_version(info: &[u8]) -> Option<(&str, u32)> {
    let text = std::str::from_utf8(info).ok()?;
    let version = text.lines().find_map(|line| line.strip_prefix("redis_version:"))?.trim();
    let major = version.split('.').next()?.parse().ok()?;
    Some((version, major))
}

fn connect_with_retry(config: &RedisConfig) -> Result<Connection, RedisUnreachable> {
    let attempts = match config.retry {
        RedisRetry::Fail => 1,
        RedisRetry::Attempts(n) => n.max(1),
        RedisRetry::Forever => u32::MAX,
    };
    let mut backoff = Backoff::default();
    let mut tried = 0;
    loop {
        tried += 1;
        match Connection::open(&config.url, Duration::from_secs(2)) {
            Ok(conn) => return Ok(conn),
            Err(last) if tried >= attempts => {
                return Err(RedisUnreachable {
                    host: config.url.host.clone(),
                    port: config.url.port,
                    attempts: tried,
                    last,
                })
            }
            Err(e) => {
                eprintln!("roomcast: redis unreachable ({e}); retrying");
                std::thread::sleep(backoff.next_pause());
            }
        }
    }
}

/// One subscriber thread's work on a connection, for [`keep_subscribed`].
pub(crate) trait Subscriber {
    /// Runs before each connection attempt, also while Redis is away.
    fn between_connections(&mut self) {}
    /// Subscribes on `conn`, then handles pushes until `stop` (`Ok`) or the connection fails (`Err`).
    fn serve(&mut self, conn: Connection, stop: &AtomicBool, backoff: &mut Backoff) -> std::io::Result<()>;
}

/// The subscriber threads' outer loop: serves `conn`, and after each failure forgets the confirmed
/// subscriptions, reconnects with backoff and serves again, until `stop`.
pub(crate) fn keep_subscribed(
    link: &ClusterLink,
    conn: Connection,
    stop: &AtomicBool,
    subscriber: &mut impl Subscriber,
) {
    let mut fresh = Some(conn);
    let mut backoff = Backoff::default();
    let mut outages = 0u32;
    while !stop.load(Ordering::Acquire) {
        subscriber.between_connections();
        let conn = match fresh.take() {
            Some(conn) => conn,
            None => match Connection::open(&link.config.url, IO_TIMEOUT * 4) {
                Ok(conn) => {
                    eprintln!("roomcast: redis subscriber reconnected; subscribing again");
                    conn
                }
                Err(_) => {
                    if !sleep_unless_stopped(backoff.next_pause(), stop) {
                        return;
                    }
                    continue;
                }
            },
        };
        match subscriber.serve(conn, stop, &mut backoff) {
            Ok(()) => return,
            Err(e) => {
                link.forget_subscriptions();
                outages += 1;
                eprintln!(
                    "roomcast: redis subscriber lost its connection ({e}); reconnecting (outage {outages})"
                );
                if !sleep_unless_stopped(backoff.next_pause(), stop) {
                    return;
                }
            }
        }
    }
}

/// Exponential backoff between reconnection attempts: 100 ms, doubling, at most 5 s.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = BACKOFF_MIN.saturating_mul(1 << self.failures.min(6)).min(BACKOFF_MAX);
        self.failures += 1;
        pause
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Sleeps `pause` in slices, returning early (`false`) once `stop` is set.
pub(crate) fn sleep_unless_stopped(pause: Duration, stop: &AtomicBool) -> bool {
    let end = std::time::Instant::now() + pause;
    while std::time::Instant::now() < end {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(pause));
    }
    !stop.load(Ordering::Acquire)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    // Without randomness, a time-derived uid still differs between servers started apart.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    bytes
}

/// A random string of `n` URL-safe characters, like the adapter's `uid2(6)`.
pub(crate) fn random_uid(n: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    random_bytes(n).iter().map(|b| char::from(ALPHABET[usize::from(b & 63)])).collect()
}

/// `n` random hex digits, like the sharded adapter's `randomBytes(8).toString("hex")` for `n = 16`,
/// and its request ids.
pub(crate) fn random_hex(n: usize) -> String {
    random_bytes(n.div_ceil(2)).iter().flat_map(|b| [b >> 4, b & 15]).take(n).map(hex_digit).collect()
}

fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 { b'0' + nibble } else { b'a' + nibble - 10 })
}

#[cfg(test)]
mod tests {
    use super::redis_version;

    #[test]
    fn the_version_is_read_from_an_info_reply() {
        let info = b"# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(redis_version(info), Some(("6.2.14", 6)));
        assert_eq!(redis_version(b"# Server\r\nredis_version:7.0.15\r\n"), Some(("7.0.15", 7)));
        assert_eq!(redis_version(b"# Server\r\nredis_mode:standalone\r\n"), None);
        assert_eq!(redis_version(b"redis_version:x\r\n"), None);
    }
}
