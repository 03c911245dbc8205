//! Server-to-client acknowledgements: matching the client's ACK to the waiting callback, and timeouts.

use roomcast_engine::ids::SocketId;

use super::core::ShardCore;
use super::guard::guarded;
use crate::api::args::ArgRef;
use crate::api::socket::{AckCallback, AckError, Socket};
use crate::driver::Outbox;

impl ShardCore {
    /// The client answered ack `ack_id`; unknown ids are ignored, as the reference does.
    pub(crate) fn ack_received(
        &mut self,
        out: &mut Outbox,
        nsp: u32,
        id: SocketId,
        ack_id: u64,
        args: &[ArgRef<'_>],
    ) {
        if let Some(callback) = self.take_ack(nsp, id, ack_id) {
            let args = args.iter().map(|a| a.to_arg()).collect();
            guarded(|| callback(&mut Socket::new(self, out, nsp, id), Ok(args)));
        }
    }

    /// An ack's deadline passed: its callback gets [`AckError::Timeout`] (if it is still waiting).
    pub(crate) fn ack_timed_out(&mut self, out: &mut Outbox, nsp: u32, id: SocketId, ack_id: u64) {
        if let Some(callback) = self.take_ack(nsp, id, ack_id) {
            guarded(|| callback(&mut Socket::new(self, out, nsp, id), Err(AckError::Timeout)));
        }
    }

    /// Removes and returns the callback waiting for `ack_id` on socket `id`, if any.
    fn take_ack(&mut self, nsp: u32, id: SocketId, ack_id: u64) -> Option<AckCallback> {
        self.nsps.get_mut(nsp as usize)?.socket_mut(id)?.acks.as_mut()?.remove(&ack_id)
    }

    /// The socket is leaving: every ack it still awaits can never arrive, so each callback gets
    /// [`AckError::Disconnected`] now (rather than a timeout later, or never for an untimed wait). Runs
    /// after the `disconnect` handlers, while the socket is still addressable but in no room.
    pub(crate) fn acks_abandoned(&mut self, out: &mut Outbox, nsp: u32, id: SocketId) {
        let pending =
            self.nsps.get_mut(nsp as usize).and_then(|n| n.socket_mut(id)).and_then(|s| s.acks.take());
        let Some(pending) = pending else { return };
        let mut pending: Vec<_> = pending.into_iter().collect();
        pending.sort_unstable_by_key(|(ack_id, _)| *ack_id);
        for (_, callback) in pending {
            guarded(|| callback(&mut Socket::leaving(self, out, nsp, id), Err(AckError::Disconnected)));
        }
    }
}
