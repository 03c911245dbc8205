//! Server configuration: command-line flags, `ROOMCAST_*` environment variables and an optional TOML
//! file, merged in that order of precedence (flag > environment > file > default).
//!
//! Defaults are the reference server's (socket.io 4.8 / engine.io 6.6) wherever the reference has the
//! same knob, so a client tuned for Node sees the same timings here. Every threshold that is ours alone
//! (outbound budgets, turn budget) is documented with the reasoning behind its number.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

pub use crate::cluster::resp::RedisUrl;
pub use roomcast_engine::cluster::SubscriptionMode;

/// Which I/O backend the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum IoChoice {
    /// io_uring when the kernel allows it, else epoll (one log line says why).
    #[default]
    Auto,
    /// io_uring or fail.
    Uring,
    /// epoll (through mio).
    Epoll,
}

/// Options as given on the command line or in the environment. `None` means "not given here".
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "roomcast", version, about = "Roomcast: a Socket.IO-compatible fan-out push server")]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// TOML file with any of these options (kebab-case keys). Flags and environment variables win over it.
    #[arg(long, env = "ROOMCAST_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on. [default: 0.0.0.0]
    #[arg(long, env = "ROOMCAST_HOST")]
    pub host: Option<String>,
    /// TCP port. [default: 3000, as the reference examples]
    #[arg(long, env = "ROOMCAST_PORT")]
    pub port: Option<u16>,
    /// Engine.IO path prefix; requests are matched by prefix. [default: /socket.io/]
    #[arg(long, env = "ROOMCAST_PATH")]
    pub path: Option<String>,
    /// Number of shards (threads, each with its own event loop). [default: number of cores]
    #[arg(long, env = "ROOMCAST_SHARDS")]
    pub shards: Option<usize>,
    /// I/O backend: auto, uring or epoll. [default: auto]
    #[arg(long, env = "ROOMCAST_IO", value_enum)]
    pub io: Option<IoChoice>,
    /// Milliseconds between server pings. [default: 25000]
    #[arg(long, env = "ROOMCAST_PING_INTERVAL")]
    pub ping_interval: Option<u64>,
    /// Milliseconds to wait for a pong before closing. [default: 20000]
    #[arg(long, env = "ROOMCAST_PING_TIMEOUT")]
    pub ping_timeout: Option<u64>,
    /// Largest message or polling body, in bytes; advertised as maxPayload. [default: 1000000]
    #[arg(long, env = "ROOMCAST_MAX_HTTP_BUFFER_SIZE")]
    pub max_http_buffer_size: Option<usize>,
    /// Milliseconds a client has to join a namespace after the Engine.IO handshake. [default: 45000]
    #[arg(long, env = "ROOMCAST_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<u64>,
    /// Milliseconds a polling → WebSocket upgrade may take. [default: 10000]
    #[arg(long, env = "ROOMCAST_UPGRADE_TIMEOUT")]
    pub upgrade_timeout: Option<u64>,
    /// Allowed CORS origin; repeat for several; `*` allows any. [default: CORS off]
    #[arg(long = "cors-origin", env = "ROOMCAST_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Option<Vec<String>>,
    /// Send Access-Control-Allow-Credentials and reflect the origin. [default: false]
    #[arg(long, env = "ROOMCAST_CORS_CREDENTIALS")]
    pub cors_credentials: Option<bool>,
    /// Bytes queued on one socket above which volatile packets are dropped for it. [default: 65536]
    #[arg(long, env = "ROOMCAST_OUTBOUND_SOFT_LIMIT")]
    pub outbound_soft_limit: Option<usize>,
    /// Bytes queued on one socket above which it is closed as a slow consumer. [default: 4194304]
    #[arg(long, env = "ROOMCAST_OUTBOUND_HARD_LIMIT")]
    pub outbound_hard_limit: Option<usize>,
    /// Payload size from which sends use zero-copy (SEND_ZC); 0 turns it off. [default: 16384]
    #[arg(long, env = "ROOMCAST_ZERO_COPY_THRESHOLD")]
    pub zero_copy_threshold: Option<usize>,
    /// Recipients one shard serves per loop turn before it checks accepts and timers again. [default: 65536]
    #[arg(long, env = "ROOMCAST_TURN_BUDGET")]
    pub turn_budget: Option<usize>,
    /// Milliseconds to wait for clients to drain on SIGINT/SIGTERM before exiting. [default: 5000]
    #[arg(long, env = "ROOMCAST_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// Glob of room names clients may join or publish to through the built-in app; repeatable.
    /// [default: every room, with one warning line]
    #[arg(long = "client-rooms", env = "ROOMCAST_CLIENT_ROOMS", value_delimiter = ',')]
    pub client_rooms: Option<Vec<String>>,
    /// Join a cluster through Redis (`redis://[[user]:password@]host[:port][/db]`), wire-compatible
    /// with `@socket.io/redis-adapter` 8.x and `@socket.io/redis-emitter`. [default: no cluster]
    #[arg(long, env = "ROOMCAST_REDIS")]
    pub redis: Option<String>,
    /// Speak the sharded adapter (`createShardedAdapter`, SSUBSCRIBE/SPUBLISH, Redis 7+) instead of the
    /// classic one; every node of the cluster must use the same. Emitters are not heard in this mode
    /// (`@socket.io/redis-emitter` speaks the classic protocol only). [default: false]
    #[arg(long, env = "ROOMCAST_REDIS_SHARDED", num_args = 0..=1, default_missing_value = "true")]
    pub redis_sharded: Option<bool>,
    /// The sharded adapter's `subscriptionMode`: `static` (two channels per namespace), `dynamic`
    /// (also one channel per public room) or `dynamic-private` (one per room, socket ids included).
    /// Must match the other nodes. [default: dynamic]
    #[arg(long, env = "ROOMCAST_REDIS_SUBSCRIPTION_MODE")]
    pub redis_subscription_mode: Option<String>,
    /// Channel prefix, the adapter's `key` option. [default: socket.io]
    #[arg(long, env = "ROOMCAST_REDIS_KEY_PREFIX")]
    pub redis_key_prefix: Option<String>,
    /// Milliseconds to wait for other servers' answers to a request. [default: 5000]
    #[arg(long, env = "ROOMCAST_REDIS_REQUESTS_TIMEOUT")]
    pub redis_requests_timeout: Option<u64>,
    /// What to do when Redis is unreachable at start: `fail`, `forever`, or a number of attempts
    /// (backoff from 100 ms, doubling, at most 5 s apart). [default: 10]
    #[arg(long, env = "ROOMCAST_REDIS_RETRY")]
    pub redis_retry: Option<String>,
}

/// How many times the server tries to reach Redis at start before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisRetry {
    /// Try once; fail the start if Redis is unreachable.
    Fail,
    /// Try this many times in all (with backoff), then fail the start.
    Attempts(u32),
    /// Keep trying (with backoff) until Redis answers; the server starts only then.
    Forever,
}

impl std::str::FromStr for RedisRetry {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<RedisRetry, &'static str> {
        match text {
            "fail" | "0" | "1" => Ok(RedisRetry::Fail),
            "forever" => Ok(RedisRetry::Forever),
            n => n.parse().map(RedisRetry::Attempts).map_err(|_| "expected fail, forever or a number"),
        }
    }
}

/// The Redis cluster settings (`--redis*`).
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub url: RedisUrl,
    /// The sharded adapter's protocol instead of the classic one.
    pub sharded: bool,
    /// Which rooms get their own channel in the sharded protocol (`subscriptionMode`).
    pub subscription_mode: SubscriptionMode,
    /// The channel prefix (`key` / `channelPrefix`), `socket.io` as in both Node adapters.
    pub key_prefix: String,
    /// 5 s, the Node adapter's `requestsTimeout`: how long this server's own requests wait for answers.
    pub requests_timeout: Duration,
    /// 10 attempts ≈ 13 s of backoff: enough for a Redis started alongside (e.g. by the same compose
    /// file), short enough that a wrong URL fails the start visibly.
    pub retry: RedisRetry,
}

impl RedisConfig {
    /// Settings for `url` with every other field at its default.
    pub fn new(url: RedisUrl) -> RedisConfig {
        RedisConfig {
            url,
            sharded: false,
            subscription_mode: SubscriptionMode::Dynamic,
            key_prefix: "socket.io".to_owned(),
            requests_timeout: Duration::from_millis(5_000),
            retry: RedisRetry::Attempts(10),
        }
    }
}

/// The resolved configuration every part of the server reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub path: String,
    pub shards: usize,
    pub io: IoChoice,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_http_buffer_size: usize,
    pub connect_timeout: Duration,
    pub upgrade_timeout: Duration,
    /// Empty: CORS off. `["*"]`: any origin.
    pub cors_origins: Vec<String>,
    pub cors_credentials: bool,
    /// 64 KiB: roughly 600 queued 100-byte broadcasts. A socket this far behind cannot take a volatile
    /// packet "now", which is what volatile promises to respect.
    pub outbound_soft_limit: usize,
    /// 4 MiB: far beyond any healthy backlog (a reader on loopback drains megabytes per millisecond), yet
    /// small enough that 19,000 stalled sockets cannot pin more than a few GiB of distinct data (queued
    /// broadcast frames are shared, so the real cost is usually far lower).
    pub outbound_hard_limit: usize,
    /// 16 KiB: below this a zero-copy send costs more than the copy (and on loopback it always does).
    pub zero_copy_threshold: usize,
    /// 65,536 recipients: about a millisecond of queueing, so accepts and timers never wait longer.
    pub turn_budget: usize,
    pub drain_timeout: Duration,
    /// `None`: every room is open to clients of the built-in app.
    pub client_rooms: Option<Vec<String>>,
    /// `None`: a single server (the in-memory adapter).
    pub redis: Option<RedisConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            path: "/socket.io/".to_owned(),
            shards: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            io: IoChoice::Auto,
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_http_buffer_size: 1_000_000,
            connect_timeout: Duration::from_millis(45_000),
            upgrade_timeout: Duration::from_millis(10_000),
            cors_origins: Vec::new(),
            cors_credentials: false,
            outbound_soft_limit: 64 * 1024,
            outbound_hard_limit: 4 * 1024 * 1024,
            zero_copy_threshold: 16 * 1024,
            turn_budget: 65_536,
            drain_timeout: Duration::from_millis(5_000),
            client_rooms: None,
            redis: None,
        }
    }
}

/// Why a configuration could not be built. The user is at fault in every case.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid listen address {host}:{port}")]
    Address { host: String, port: u16 },
    #[error("invalid value for {field}: {why}")]
    Invalid { field: &'static str, why: &'static str },
}

impl Options {
    /// Reads the TOML file named by `--config`, if any, as a lower-precedence layer.
    pub fn load_file(&self) -> Result<Options, ConfigError> {
        let Some(path) = &self.config else { return Ok(Options::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.clone(), source: Box::new(source) })
    }

    /// Merges `self` (flags and environment) over `file` over the defaults.
    pub fn resolve(self, file: Options) -> Result<Config, ConfigError> {
        let d = Config::default();
        let ms = |v: Option<u64>, f: Option<u64>, dflt: Duration| {
            v.or(f).map(Duration::from_millis).unwrap_or(dflt)
        };
        let host = self.host.or(file.host).unwrap_or_else(|| "0.0.0.0".to_owned());
        let port = self.port.or(file.port).unwrap_or(d.listen.port());
        let listen = format!("{host}:{port}")
            .parse::<SocketAddr>()
            .or_else(|_| format!("[{host}]:{port}").parse())
            .map_err(|_| ConfigError::Address { host: host.clone(), port })?;
        let mut path = self.path.or(file.path).unwrap_or(d.path);
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        let config = Config {
            listen,
            path,
            shards: self.shards.or(file.shards).unwrap_or(d.shards),
            io: self.io.or(file.io).unwrap_or(d.io),
            ping_interval: ms(self.ping_interval, file.ping_interval, d.ping_interval),
            ping_timeout: ms(self.ping_timeout, file.ping_timeout, d.ping_timeout),
            max_http_buffer_size: self
                .max_http_buffer_size
                .or(file.max_http_buffer_size)
                .unwrap_or(d.max_http_buffer_size),
            connect_timeout: ms(self.connect_timeout, file.connect_timeout, d.connect_timeout),
            upgrade_timeout: ms(self.upgrade_timeout, file.upgrade_timeout, d.upgrade_timeout),
            cors_origins: self.cors_origin.or(file.cors_origin).unwrap_or_default(),
            cors_credentials: self.cors_credentials.or(file.cors_credentials).unwrap_or(d.cors_credentials),
            outbound_soft_limit: self
                .outbound_soft_limit
                .or(file.outbound_soft_limit)
                .unwrap_or(d.outbound_soft_limit),
            outbound_hard_limit: self
                .outbound_hard_limit
                .or(file.outbound_hard_limit)
                .unwrap_or(d.outbound_hard_limit),
            zero_copy_threshold: self
                .zero_copy_threshold
                .or(file.zero_copy_threshold)
                .unwrap_or(d.zero_copy_threshold),
            turn_budget: self.turn_budget.or(file.turn_budget).unwrap_or(d.turn_budget),
            drain_timeout: ms(self.drain_timeout, file.drain_timeout, d.drain_timeout),
            client_rooms: self.client_rooms.or(file.client_rooms),
            redis: match self.redis.or(file.redis) {
                None => None,
                Some(url) => {
                    let invalid = |why| ConfigError::Invalid { field: "redis", why };
                    let mut redis = RedisConfig::new(url.parse().map_err(invalid)?);
                    redis.sharded = self.redis_sharded.or(file.redis_sharded).unwrap_or(false);
                    if let Some(mode) = self.redis_subscription_mode.or(file.redis_subscription_mode) {
                        redis.subscription_mode = match mode.as_str() {
                            "static" => SubscriptionMode::Static,
                            "dynamic" => SubscriptionMode::Dynamic,
                            "dynamic-private" => SubscriptionMode::DynamicPrivate,
                            _ => {
                                return Err(ConfigError::Invalid {
                                    field: "redis-subscription-mode",
                                    why: "expected static, dynamic or dynamic-private",
                                })
                            }
                        };
                    }
                    if let Some(prefix) = self.redis_key_prefix.or(file.redis_key_prefix) {
                        redis.key_prefix = prefix;
                    }
                    redis.requests_timeout =
                        ms(self.redis_requests_timeout, file.redis_requests_timeout, redis.requests_timeout);
                    if let Some(retry) = self.redis_retry.or(file.redis_retry) {
                        redis.retry = retry
                            .parse()
                            .map_err(|why| ConfigError::Invalid { field: "redis-retry", why })?;
                    }
                    Some(redis)
                }
            },
        };
        config.validate()?;
        Ok(config)
    }
}

impl Config {
    /// Rejects combinations that cannot work, with the field to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, why| Err(ConfigError::Invalid { field, why });
        if self.shards == 0 || self.shards > 256 {
            return invalid("shards", "must be between 1 and 256");
        }
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return invalid("ping-interval/ping-timeout", "must be positive");
        }
        if self.max_http_buffer_size == 0 {
            return invalid("max-http-buffer-size", "must be positive");
        }
        if self.outbound_soft_limit > self.outbound_hard_limit {
            return invalid("outbound-soft-limit", "must not exceed outbound-hard-limit");
        }
        if self.turn_budget == 0 {
            return invalid("turn-budget", "must be positive");
        }
        if let Some(redis) = &self.redis {
            if redis.key_prefix.is_empty() || redis.key_prefix.contains('#') {
                return invalid("redis-key-prefix", "must be non-empty and hold no '#'");
            }
            if redis.requests_timeout.is_zero() {
                return invalid("redis-requests-timeout", "must be positive");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("roomcast").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_the_reference_servers() {
        let c = parse(&[]).resolve(Options::default()).unwrap();
        assert_eq!(c.listen.port(), 3000);
        assert_eq!(c.path, "/socket.io/");
        assert_eq!(c.ping_interval, Duration::from_secs(25));
        assert_eq!(c.ping_timeout, Duration::from_secs(20));
        assert_eq!(c.max_http_buffer_size, 1_000_000);
        assert_eq!(c.connect_timeout, Duration::from_secs(45));
        assert!(c.cors_origins.is_empty());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: Options = toml::from_str("port = 4000\nping-interval = 300\npath = \"rc\"").unwrap();
        let c = parse(&["--port", "5000"]).resolve(file).unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.ping_interval, Duration::from_millis(300));
        assert_eq!(c.path, "/rc/");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_reported() {
        assert!(toml::from_str::<Options>("prot = 1").is_err());
        let err = parse(&["--shards", "0"]).resolve(Options::default()).unwrap_err();
        assert!(err.to_string().contains("shards"), "{err}");
        let err = parse(&["--host", "not an address"]).resolve(Options::default()).unwrap_err();
        assert!(err.to_string().contains("listen address"), "{err}");
    }

    #[test]
    fn redis_is_off_by_default_and_configured_by_flags() {
        assert_eq!(parse(&[]).resolve(Options::default()).unwrap().redis, None);
        let c = parse(&["--redis", "redis://127.0.0.1:7000/1", "--redis-retry", "forever"])
            .resolve(Options::default())
            .unwrap();
        let redis = c.redis.unwrap();
        assert_eq!((redis.url.port, redis.url.db, redis.sharded), (7000, 1, false));
        assert_eq!(redis.key_prefix, "socket.io");
        assert_eq!(redis.requests_timeout, Duration::from_secs(5));
        assert_eq!(redis.retry, RedisRetry::Forever);
        let err = parse(&["--redis", "tcp://x"]).resolve(Options::default()).unwrap_err();
        assert!(err.to_string().contains("redis"), "{err}");
        let err = parse(&["--redis", "redis://x", "--redis-retry", "often"]).resolve(Options::default());
        assert!(err.unwrap_err().to_string().contains("redis-retry"));
        let sharded =
            parse(&["--redis", "redis://x", "--redis-sharded", "--redis-subscription-mode", "static"])
                .resolve(Options::default())
                .unwrap()
                .redis
                .unwrap();
        assert_eq!((sharded.sharded, sharded.subscription_mode), (true, SubscriptionMode::Static));
        let err = parse(&["--redis", "redis://x", "--redis-subscription-mode", "often"])
            .resolve(Options::default());
        assert!(err.unwrap_err().to_string().contains("redis-subscription-mode"));
    }

    #[test]
    fn cors_origins_accept_a_comma_list() {
        let c = parse(&["--cors-origin", "http://a,http://b"]).resolve(Options::default()).unwrap();
        assert_eq!(c.cors_origins, ["http://a", "http://b"]);
    }
}
