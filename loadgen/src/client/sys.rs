//! The two system interfaces mio does not offer: a TCP connect from a chosen source address, and a
//! `timerfd` for sub-millisecond wake-ups; and a cache prefetch hint. Every `unsafe` block of the
//! client is here.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use mio::net::TcpStream;

use crate::latency::RunEpoch;
use crate::latency::RunMicros;

/// Asks the CPU to start loading the cache lines of `item` (a hint: no effect on what the program
/// computes, no fault whatever the address). Only on x86_64; elsewhere it does nothing.
#[inline]
pub fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = (item as *const T).cast::<i8>();
        for offset in (0..size_of::<T>()).step_by(64) {
            // SAFETY: PREFETCHT0 only hints the cache; it reads nothing the program sees and never
            // faults, and SSE, which it needs, is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Starts a non-blocking TCP connect to `to`, from `source` (port chosen by the kernel at connect
/// time, `IP_BIND_ADDRESS_NO_PORT`) when given. Returns at once; completion is a writable event.
/// `TCP_NODELAY` is set: every message is sent when written.
pub fn connect_from(source: Option<Ipv4Addr>, to: SocketAddr) -> io::Result<TcpStream> {
    let Some(source) = source else {
        let stream = TcpStream::connect(to)?;
        stream.set_nodelay(true)?;
        return Ok(stream);
    };
    let SocketAddr::V4(to4) = to else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "source addresses need an IPv4 server"));
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket owned by nothing else; OwnedFd closes it on every error path.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_option(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)?;
    let local = sockaddr_in(source, 0);
    // SAFETY: `local` is a valid sockaddr_in that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::bind(fd, (&raw const local).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let remote = sockaddr_in(*to4.ip(), to4.port());
    // SAFETY: as for bind.
    let rc = unsafe {
        libc::connect(
            fd,
            (&raw const remote).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(owned));
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn sockaddr_in(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    }
}

fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A `CLOCK_MONOTONIC` timerfd armed at absolute run times, so the loop wakes within microseconds of
/// a message's scheduled time (epoll's own timeout has millisecond granularity, which would add up
/// to 1 ms to every latency at low rates).
#[derive(Debug)]
pub struct WakeTimer {
    fd: OwnedFd,
    epoch: RunEpoch,
    armed: Option<RunMicros>,
}

impl WakeTimer {
    /// A disarmed non-blocking timer for the run whose epoch is `epoch`.
    pub fn new(epoch: RunEpoch) -> io::Result<WakeTimer> {
        // SAFETY: plain timerfd_create(2) call; the result is checked before use.
        let fd =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(WakeTimer { fd, epoch, armed: None })
    }

    /// The descriptor to register for readability.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires at `at` (run time), replacing any earlier setting; `None` disarms. A time already past
    /// fires at once. No system call when the setting is unchanged.
    pub fn arm(&mut self, at: Option<RunMicros>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        let nanos = at.map_or(0, |t| {
            self.epoch.monotonic_nanos().saturating_add(t.as_micros().saturating_mul(1_000)).max(1)
        });
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(nanos / 1_000_000_000).unwrap_or(libc::time_t::MAX),
                tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec that outlives the call; the old value is not wanted.
        let rc = unsafe {
            libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = at;
        Ok(())
    }

    /// Consumes a firing (call when the descriptor was readable); the timer is then disarmed.
    pub fn acknowledge(&mut self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `count`, which is 8 bytes long; a failed read (nothing to
        // read yet) changes nothing.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        self.armed = None;
    }
}

/// Raises this process's open-files soft limit to `want` (capped at the hard limit) and returns the
/// new soft limit.
pub fn raise_fd_limit(want: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit that outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = want.min(limit.rlim_max);
    if target > limit.rlim_cur {
        limit.rlim_cur = target;
        // SAFETY: `limit` is a valid rlimit with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// The resident set size of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no VmRSS in /proc/{pid}/status")))
}

/// Makes `fd` non-blocking (for the worker's control pipe on stdin).
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; flags are read before being changed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn the_timer_fires_at_the_run_time_it_was_armed_for() {
        let epoch = RunEpoch::start();
        let mut timer = WakeTimer::new(epoch).unwrap();
        let at = epoch.now().plus_micros(2_000);
        timer.arm(Some(at)).unwrap();
        let mut fds = libc::pollfd { fd: timer.raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut fds, 1, 1_000) };
        assert_eq!(n, 1);
        assert!(epoch.now() >= at);
        timer.acknowledge();
    }
}
