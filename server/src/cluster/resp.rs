//! A minimal Redis client: RESP2 replies parsed from bytes as they arrive, commands written as RESP
//! arrays, and one blocking TCP connection. Just what the cluster threads need: `PUBLISH`/`SPUBLISH`,
//! `(P|S)SUBSCRIBE` and their pushes, `PING`, `AUTH`, `SELECT`.
//!
//! Control path: runs on the cluster threads only, never on a shard.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

/// The longest bulk string accepted (Redis' own `proto-max-bulk-len` default is 512 MiB; adapter
/// messages are a few KiB, so 64 MiB is generous and bounds what one reply can make us buffer).
pub(crate) const MAX_BULK: usize = 64 * 1024 * 1024;
/// The most elements one array may announce (pushes have 3 or 4; anything larger is a broken peer).
const MAX_ARRAY: usize = 1024;
/// The deepest nesting accepted.
const MAX_DEPTH: usize = 4;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR …`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` … (`None` for the null bulk `$-1`).
    Bulk(Option<Bytes>),
    /// `*n` … (`None` for the null array `*-1`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

/// Why a reply could not be parsed: the server (or whatever listens there) is not speaking RESP2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RESP reply: {0}")]
pub(crate) struct RespError(&'static str);

/// Parses one reply from the start of `input`. `Ok(None)`: incomplete, call again with more bytes
/// (nothing is consumed). `Ok(Some((reply, used)))`: the reply and how many bytes it took.
/// Cost: O(reply length); no allocation beyond the reply itself; bounded by [`MAX_BULK`],
/// [`MAX_ARRAY`] and [`MAX_DEPTH`].
pub(crate) fn parse_reply(input: &[u8]) -> Result<Option<(Reply, usize)>, RespError> {
    parse_at(input, 0, 0)
}

fn parse_at(input: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError("nested too deep"));
    }
    let Some(rest) = input.get(at..) else { return Ok(None) };
    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
        if rest.len() > 64 * 1024 {
            return Err(RespError("header line too long"));
        }
        return Ok(None);
    };
    let Some((&kind, line)) = rest.get(..eol).and_then(|l| l.split_first()) else {
        return Err(RespError("empty line"));
    };
    let after = at + eol + 2;
    let text = || std::str::from_utf8(line).map_err(|_| RespError("line is not UTF-8"));
    let number = || -> Result<i64, RespError> { text()?.parse().map_err(|_| RespError("bad number")) };
    match kind {
        b'+' => Ok(Some((Reply::Status(text()?.to_owned()), after))),
        b'-' => Ok(Some((Reply::Error(text()?.to_owned()), after))),
        b':' => Ok(Some((Reply::Int(number()?), after))),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| RespError("bad length"))?;
            if len > MAX_BULK {
                return Err(RespError("bulk string too long"));
            }
            let Some(body) = input.get(after..after + len + 2) else { return Ok(None) };
            if body.get(len..) != Some(b"\r\n") {
                return Err(RespError("bulk string not followed by CRLF"));
            }
            let data = Bytes::copy_from_slice(body.get(..len).unwrap_or_default());
            Ok(Some((Reply::Bulk(Some(data)), after + len + 2)))
        }
        b'*' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| RespError("bad length"))?;
            if len > MAX_ARRAY {
                return Err(RespError("array too long"));
            }
            let mut items = Vec::with_capacity(len);
            let mut next = after;
            for _ in 0..len {
                match parse_at(input, next, depth + 1)? {
                    Some((item, end)) => {
                        items.push(item);
                        next = end;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), next)))
        }
        _ => Err(RespError("unknown reply type")),
    }
}

/// Appends a command as a RESP array of bulk strings.
pub(crate) fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Where and how to connect: parsed from `redis://[[user]:password@]host[:port][/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl std::str::FromStr for RedisUrl {
    type Err = &'static str;

    fn from_str(url: &str) -> Result<RedisUrl, &'static str> {
        let rest = url.strip_prefix("redis://").ok_or("must start with redis:// (TLS is not supported)")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or(("", u))) {
            Some((user, pass)) => {
                ((!user.is_empty()).then(|| user.to_owned()), (!pass.is_empty()).then(|| pass.to_owned()))
            }
            None => (None, None),
        };
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (host, tail) = v6.split_once(']').ok_or("unclosed [ in host")?;
                (host, tail.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            },
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| "port is not a number")?,
            None => 6379,
        };
        if host.is_empty() {
            return Err("no host");
        }
        let db = if path.is_empty() { 0 } else { path.parse().map_err(|_| "database is not a number")? };
        Ok(RedisUrl { host: host.to_owned(), port, username, password, db })
    }
}

/// One blocking connection to Redis, with a read buffer that keeps partial replies across reads.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    buf: BytesMut,
}

impl Connection {
    /// Connects (within `timeout`), authenticates and selects the database the URL names.
    pub(crate) fn open(url: &RedisUrl, timeout: Duration) -> io::Result<Connection> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
        for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    let mut conn = Connection { stream, buf: BytesMut::with_capacity(16 * 1024) };
                    conn.handshake(url)?;
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn handshake(&mut self, url: &RedisUrl) -> io::Result<()> {
        if let Some(password) = &url.password {
            match &url.username {
                Some(user) => self.call(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => self.call(&[b"AUTH", password.as_bytes()])?,
            };
        }
        if url.db != 0 {
            self.call(&[b"SELECT", url.db.to_string().as_bytes()])?;
        }
        Ok(())
    }

    /// Sends one command and reads its reply; a Redis error reply becomes an `io::Error`.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut out = Vec::new();
        write_command(&mut out, args);
        self.write_all(&out)?;
        match self.read_reply()? {
            Some(Reply::Error(e)) => Err(io::Error::other(format!("redis: {e}"))),
            Some(reply) => Ok(reply),
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "redis did not answer")),
        }
    }

    /// Writes bytes (commands) whole.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sets how long [`Connection::read_reply`] waits for bytes.
    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// The next reply: `Ok(None)` if none completed within the read timeout (a partial one is kept);
    /// an error if the connection closed or the bytes are not RESP2.
    pub(crate) fn read_reply(&mut self) -> io::Result<Option<Reply>> {
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.advance(used);
                    return Ok(Some(reply));
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection"))
                }
                Ok(n) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Liveness of a subscribe-mode connection, which only hears Redis when something is published:
/// after [`Liveness::PING_AFTER`] of silence it sends one `PING` (allowed in subscribe mode); after
/// [`Liveness::DEAD_AFTER`] without a byte the connection is taken for dead.
#[derive(Debug)]
pub(crate) struct Liveness {
    heard: Instant,
    pinged: bool,
}

impl Liveness {
    /// Silence after which the subscriber pings Redis.
    pub(crate) const PING_AFTER: Duration = Duration::from_secs(5);
    /// Silence after which the connection is taken for dead (a ping went unanswered for 5 s).
    pub(crate) const DEAD_AFTER: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        Self { heard: Instant::now(), pinged: false }
    }

    /// A reply arrived.
    fn heard(&mut self) {
        self.heard = Instant::now();
        self.pinged = false;
    }

    /// The next push on a subscribe-mode connection: its items, or `None` when the read timed out
    /// (pinging or failing as [`Liveness::on_silence`] says) or the reply was not an array (an error
    /// reply is logged as `refused`).
    pub(crate) fn next_push(
        &mut self,
        conn: &mut Connection,
        out: &mut Vec<u8>,
        refused: &str,
    ) -> io::Result<Option<Vec<Reply>>> {
        let Some(reply) = conn.read_reply()? else {
            self.on_silence(conn, out)?;
            return Ok(None);
        };
        self.heard();
        match reply {
            Reply::Array(Some(items)) => Ok(Some(items)),
            Reply::Error(e) => {
                eprintln!("roomcast: {refused}: {e}");
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// A read timed out with nothing: pings once past `PING_AFTER` (through `out`, a scratch buffer),
    /// and fails past `DEAD_AFTER`.
    fn on_silence(&mut self, conn: &mut Connection, out: &mut Vec<u8>) -> io::Result<()> {
        let silent = self.heard.elapsed();
        if silent >= Self::DEAD_AFTER {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "redis stopped answering"));
        }
        if silent >= Self::PING_AFTER && !self.pinged {
            out.clear();
            write_command(out, &[b"PING"]);
            conn.write_all(out)?;
            self.pinged = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feeds `input` whole and one byte at a time; both must give the same replies.
    fn replies(input: &[u8]) -> Vec<Reply> {
        let whole = drain(input, input.len());
        let bytewise = drain(input, 1);
        assert_eq!(whole, bytewise);
        whole
    }

    fn drain(input: &[u8], step: usize) -> Vec<Reply> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some((reply, used)) = parse_reply(&buf).unwrap() {
                out.push(reply);
                buf.drain(..used);
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn pushes_and_simple_replies_parse_whole_and_byte_by_byte() {
        let input = b"+OK\r\n:3\r\n-ERR no\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\na\r\nb\r\n\
                      *4\r\n$8\r\npmessage\r\n$3\r\np#*\r\n$3\r\np#x\r\n$0\r\n\r\n";
        let got = replies(input);
        let bulk = |s: &[u8]| Reply::Bulk(Some(Bytes::copy_from_slice(s)));
        assert_eq!(
            got,
            vec![
                Reply::Status("OK".into()),
                Reply::Int(3),
                Reply::Error("ERR no".into()),
                Reply::Bulk(None),
                Reply::Array(Some(vec![bulk(b"message"), bulk(b"ch"), bulk(b"a\r\nb")])),
                Reply::Array(Some(vec![bulk(b"pmessage"), bulk(b"p#*"), bulk(b"p#x"), bulk(b"")])),
            ]
        );
    }

    #[test]
    fn broken_replies_are_errors_not_panics() {
        assert!(parse_reply(b"?x\r\n").is_err());
        assert!(parse_reply(b"$3\r\nabcd\r\n").is_err());
        assert!(parse_reply(b"*99999\r\n").is_err());
        assert!(parse_reply(b"$99999999999\r\n").is_err());
        assert!(parse_reply(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n").is_err());
        assert_eq!(parse_reply(b"$5\r\nab").unwrap(), None);
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"PUBLISH", b"ch", b"\x93"]);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\n\x93\r\n");
    }

    #[test]
    fn urls_name_host_port_credentials_and_database() {
        let u: RedisUrl = "redis://127.0.0.1:6380".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 0));
        let u: RedisUrl = "redis://:secret@cache/2".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.password.as_deref(), u.db),
            ("cache", 6379, Some("secret"), 2)
        );
        let u: RedisUrl = "redis://me:pw@[::1]:7000".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.username.as_deref()), ("::1", 7000, Some("me")));
        assert!("http://x".parse::<RedisUrl>().is_err());
        assert!("redis://h:port".parse::<RedisUrl>().is_err());
    }
}
