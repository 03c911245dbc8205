//! The few socket and eventfd calls std does not offer, as thin wrappers over `libc`. Every `unsafe`
//! call outside io_uring submission (which lives in `uring/submit.rs` and `uring/bufring.rs`) is here.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The calling thread's `errno` after a failed call, as a raw number.
pub(super) fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Turns a syscall's `-1` into the `errno` error.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `sendmsg(fd, iovs, MSG_NOSIGNAL | MSG_DONTWAIT)`: a `writev` that never raises `SIGPIPE` and never
/// blocks. Returns the bytes the kernel accepted.
///
/// # Safety
/// Every iovec must point to `iov_len` readable bytes for the duration of the call.
pub(super) unsafe fn send_vectored(fd: RawFd, iovs: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is a valid value (null name/control, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iovs.as_ptr().cast_mut();
    msg.msg_iovlen = iovs.len() as _;
    // SAFETY: `msg` points at `iovs`, which the caller guarantees readable; the kernel only reads them
    // during the call.
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// `recv(fd, buf, MSG_DONTWAIT)`: 0 means end of stream.
pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice for the whole call.
    let got = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if got < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(got as usize)
    }
}

/// Sends FIN after the bytes already in the kernel's send buffer (`shutdown(SHUT_WR)`).
pub(super) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on an integer fd; a bad fd is reported as EBADF.
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(drop)
}

/// `SO_LINGER {on, 0}`: the next `close` resets the connection and drops unsent bytes.
pub(super) fn set_linger_zero(fd: RawFd) -> io::Result<()> {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `linger` lives across the call and its size is passed with it.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Prepares an accepted socket: sets `TCP_NODELAY` and reads the peer's address. Fails if the peer is
/// already gone (the socket is then closed by the drop).
pub(super) fn prepare_accepted(fd: OwnedFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let stream = TcpStream::from(fd);
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    Ok((OwnedFd::from(stream), peer))
}

/// Sets or clears `O_NONBLOCK` on `fd` (each backend wants its own mode on an adopted socket).
pub(super) fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: plain syscall on an integer fd; a bad fd is reported as EBADF.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let wanted = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if wanted != flags {
        // SAFETY: as above; F_SETFL takes an int argument.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) })?;
    }
    Ok(())
}

/// A new nonblocking, close-on-exec eventfd with a zero counter.
pub(super) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant flags.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` was just created by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter, making it readable. A full counter (`EAGAIN`) is already readable.
pub(super) fn eventfd_signal(fd: &OwnedFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, which lives across the call.
    let ret = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if ret < 0 && last_errno() != libc::EAGAIN {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resets an eventfd's counter to zero (nonblocking: a zero counter gives `EAGAIN`, ignored).
pub(super) fn eventfd_drain(fd: RawFd) {
    let mut count: u64 = 0;
    // SAFETY: reads at most 8 bytes into `count`, which lives across the call.
    let _ = unsafe { libc::read(fd, (&mut count as *mut u64).cast(), 8) };
}
