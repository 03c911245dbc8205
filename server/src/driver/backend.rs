//! Choosing the backend: the `--io uring|epoll` switch and the io_uring capability probe.

use std::fmt;
use std::str::FromStr;

use io_uring::{opcode, IoUring, Probe};

/// Which [`super::Driver`] a server runs its shards on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoBackend {
    /// [`super::UringDriver`]; needs Linux 6.0+ and io_uring not blocked by seccomp.
    Uring,
    /// [`super::EpollDriver`]; runs anywhere mio does.
    Epoll,
}

impl IoBackend {
    /// io_uring when [`probe_io_uring`] passes, else epoll with the probe's reason for the log line.
    pub fn detect() -> (IoBackend, Option<String>) {
        match probe_io_uring() {
            Ok(()) => (IoBackend::Uring, None),
            Err(reason) => (IoBackend::Epoll, Some(reason)),
        }
    }

    /// The name `from_str` accepts and `Display` prints.
    pub fn name(self) -> &'static str {
        match self {
            IoBackend::Uring => "uring",
            IoBackend::Epoll => "epoll",
        }
    }
}

impl FromStr for IoBackend {
    type Err = String;

    /// Accepts `uring` (also `io_uring`, `io-uring`) and `epoll` (also `mio`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "uring" | "io_uring" | "io-uring" => Ok(IoBackend::Uring),
            "epoll" | "mio" => Ok(IoBackend::Epoll),
            _ => Err(format!("unknown I/O backend {s:?} (expected \"uring\" or \"epoll\")")),
        }
    }
}

impl fmt::Display for IoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that this process can run [`super::UringDriver`]: creates a small ring, checks the features
/// and opcodes the driver uses, and registers a provided-buffer ring. `Err` carries a one-line reason.
///
/// Cost: a ring setup and teardown (well under a millisecond); call once at startup.
pub fn probe_io_uring() -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|e| {
        format!(
            "io_uring_setup failed: {e} (blocked by a seccomp profile such as Docker's default, \
             or by sysctl kernel.io_uring_disabled)"
        )
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err("io_uring lacks IORING_FEAT_EXT_ARG (needs Linux 5.11+)".into());
    }
    if !ring.params().is_feature_nodrop() {
        return Err("io_uring lacks IORING_FEAT_NODROP (needs Linux 5.5+)".into());
    }
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| format!("io_uring opcode probe failed: {e}"))?;
    let needed = [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Read::CODE, "READ"),
        (opcode::AsyncCancel2::CODE, "ASYNC_CANCEL"),
        // Linux 6.0, which also brought multishot receive (the probe cannot see multishot support).
        (opcode::SendZc::CODE, "SEND_ZC"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(format!("io_uring opcode {name} is not supported (needs Linux 6.0+)"));
        }
    }
    super::uring::probe_buffer_ring(&ring).map_err(|e| format!("io_uring provided-buffer ring refused: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for backend in [IoBackend::Uring, IoBackend::Epoll] {
            assert_eq!(backend.to_string().parse::<IoBackend>(), Ok(backend));
        }
        assert_eq!("IO_URING".parse::<IoBackend>(), Ok(IoBackend::Uring));
        assert!("kqueue".parse::<IoBackend>().unwrap_err().contains("kqueue"));
    }

    #[test]
    fn detect_agrees_with_the_probe() {
        let (backend, reason) = IoBackend::detect();
        assert_eq!(backend == IoBackend::Uring, probe_io_uring().is_ok());
        assert_eq!(reason.is_some(), backend == IoBackend::Epoll);
    }
}
