//! Per-shard listeners sharing one port through `SO_REUSEPORT`.
//!
//! Each shard binds its own listening socket to the same address; the kernel hashes every incoming
//! connection to one of them, so accepts spread over shards without a shared accept queue or lock.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Binds one listener with `SO_REUSEADDR` and `SO_REUSEPORT` set, listening with `backlog`
/// (use [`super::DriverConfig::accept_backlog`]). Blocking and close-on-exec; each driver sets the mode
/// it needs. Another socket of this user may bind the same address and port and share the accepts.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall with constant arguments.
    let raw = check(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` was just created by the kernel and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_flag(fd.as_raw_fd(), libc::SO_REUSEADDR)?;
    set_flag(fd.as_raw_fd(), libc::SO_REUSEPORT)?;
    let sockaddr = RawAddr::from(addr);
    let (ptr, len) = sockaddr.as_ptr();
    // SAFETY: `ptr`/`len` describe `sockaddr`, which lives across the call.
    check(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) })?;
    // SAFETY: plain syscall on a socket we own.
    check(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(TcpListener::from(fd))
}

/// Binds `count` listeners on one address for `count` shards. With port 0 the first bind picks a free
/// port and the others reuse it; `listeners[i].local_addr()` is the same for all.
pub fn bind_shard_listeners(addr: SocketAddr, count: usize, backlog: i32) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let listener = bind_reuseport(addr, backlog)?;
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn set_flag(fd: RawFd, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` lives across the call and its size is passed with it.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A socket address in the kernel's layout.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl From<SocketAddr> for RawAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: all-zero is a valid sockaddr_in; the fields that matter are set below.
                let mut raw: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                raw.sin_family = libc::AF_INET as libc::sa_family_t;
                raw.sin_port = v4.port().to_be();
                raw.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
                RawAddr::V4(raw)
            }
            SocketAddr::V6(v6) => {
                // SAFETY: all-zero is a valid sockaddr_in6; the fields that matter are set below.
                let mut raw: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                raw.sin6_port = v6.port().to_be();
                raw.sin6_flowinfo = v6.flowinfo();
                raw.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
                raw.sin6_scope_id = v6.scope_id();
                RawAddr::V6(raw)
            }
        }
    }
}

impl RawAddr {
    fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            RawAddr::V4(raw) => {
                ((raw as *const libc::sockaddr_in).cast(), size_of::<libc::sockaddr_in>() as libc::socklen_t)
            }
            RawAddr::V6(raw) => (
                (raw as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_all_shards_the_same_port() {
        let listeners = bind_shard_listeners("127.0.0.1:0".parse().unwrap(), 3, 128).unwrap();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
    }

    #[test]
    fn a_plain_listener_on_the_port_is_refused() {
        let shard = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let taken = shard.local_addr().unwrap();
        assert!(TcpListener::bind(taken).is_err(), "a socket without SO_REUSEPORT must not join the group");
    }

    #[test]
    fn ipv6_loopback_binds_when_available() {
        match bind_shard_listeners("[::1]:0".parse().unwrap(), 2, 16) {
            Ok(listeners) => {
                assert_eq!(listeners[0].local_addr().unwrap(), listeners[1].local_addr().unwrap())
            }
            Err(e) => {
                assert!(matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)), "{e}")
            }
        }
    }
}
