//! The server a run targets, from `--url`: where to connect, what to send as `Host`, which Engine.IO
//! path and which Socket.IO namespace.
//!
//! As in `socket.io-client`, the URL's path names the namespace (`http://host:3000/admin` → namespace
//! `/admin`) and the Engine.IO path is separate (`--path`, default `/socket.io/`). `ws://` and
//! `http://` are the same here: `--transport` alone picks WebSocket or long-polling.
//! `https`/`wss` are refused (no TLS client).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::Error;

/// Engine.IO path used when none is given, as in socket.io.
pub const DEFAULT_EIO_PATH: &str = "/socket.io/";

/// A resolved target. Invariant: `path` starts and ends with `/`; `namespace` starts with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The address connections go to.
    pub addr: SocketAddr,
    /// `Host` header value (`host:port` as written in the URL).
    pub host: String,
    /// Engine.IO path, e.g. `/socket.io/`.
    pub path: String,
    /// Socket.IO namespace, `/` by default.
    pub namespace: String,
    /// The URL as given, for reports.
    pub url: String,
}

impl Target {
    /// Parses `url` (`http://host[:port][/namespace]`, `ws://…` alike) and resolves the host, using
    /// `eio_path` as the Engine.IO path. Every failure is [`Error::Usage`] with a sentence naming the
    /// problem. Resolution goes through the system resolver (for `localhost`).
    pub fn parse(url: &str, eio_path: &str) -> Result<Target, Error> {
        let bad = |why: &str| Error::Usage(format!("bad --url {url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http://host:port"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => 80,
            "https" | "wss" => return Err(bad("TLS (https/wss) is not supported; use http:// or ws://")),
            _ => return Err(bad("the scheme must be http:// or ws://")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("expected a host (and no user info)"));
        }
        let (host_part, port) =
            split_port(authority).ok_or_else(|| bad("the port must be a number 1-65535"))?;
        let port = port.unwrap_or(default_port);
        let host_name = host_part.trim_start_matches('[').trim_end_matches(']');
        if host_name.is_empty() {
            return Err(bad("expected a host"));
        }
        let addr = match host_name.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => (host_name, port)
                .to_socket_addrs()
                .map_err(|e| bad(&format!("cannot resolve {host_name}: {e}")))?
                .min_by_key(|a| !a.is_ipv4())
                .ok_or_else(|| bad(&format!("{host_name} resolves to no address")))?,
        };
        let path_only = path.split(['?', '#']).next().unwrap_or("");
        let namespace = match path_only.trim_end_matches('/') {
            "" => "/".to_string(),
            nsp => nsp.to_string(),
        };
        if namespace.contains(',') {
            return Err(bad("a namespace cannot contain ','"));
        }
        Ok(Target {
            addr,
            host: authority.to_string(),
            path: normalize_path(eio_path).map_err(|why| Error::Usage(format!("bad --path: {why}")))?,
            namespace,
            url: url.to_string(),
        })
    }

    /// Whether the server is on this machine's loopback, where source addresses 127.0.0.x work.
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

/// `host:port`, `[v6]:port`, `host` → (host, port).
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at =
        if authority.starts_with('[') { authority.find("]:").map(|i| i + 1) } else { authority.rfind(':') };
    match port_at {
        None => Some((authority, None)),
        Some(i) => {
            let (host, port) = authority.split_at(i);
            let port: u16 = port.get(1..)?.parse().ok().filter(|&p| p != 0)?;
            Some((host, Some(port)))
        }
    }
}

fn normalize_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        return Err(format!("{path:?} must start with '/' and hold no '?', '#' or space"));
    }
    let mut out = path.to_string();
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_address_host_namespace_and_path() {
        let t = Target::parse("http://127.0.0.1:3000", DEFAULT_EIO_PATH).unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.path.as_str(), t.namespace.as_str()),
            ("127.0.0.1:3000", "/socket.io/", "/")
        );
        let t = Target::parse("ws://[::1]:8080/admin/", "/rt").unwrap();
        assert_eq!(t.addr, "[::1]:8080".parse().unwrap());
        assert_eq!((t.path.as_str(), t.namespace.as_str()), ("/rt/", "/admin"));
        assert_eq!(Target::parse("http://127.0.0.1", "/socket.io/").unwrap().addr.port(), 80);
        assert!(t.is_loopback());
    }

    #[test]
    fn wrong_urls_say_what_is_wrong() {
        for (url, says) in [
            ("127.0.0.1:3000", "expected http://host:port"),
            ("ftp://127.0.0.1", "scheme"),
            ("https://127.0.0.1", "TLS"),
            ("http://127.0.0.1:port", "port"),
            ("http://127.0.0.1:0", "port"),
            ("http://127.0.0.1:70000", "port"),
            ("http://", "host"),
            ("http://no-such-host.invalid:3000", "cannot resolve"),
        ] {
            let err = Target::parse(url, DEFAULT_EIO_PATH).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert!(Target::parse("http://127.0.0.1:3000", "socket.io").is_err());
    }
}
