//! The pool's side of the io_uring receive path ([`super::super::uring_recv`]): completions to
//! sessions, re-arms and cancels. A child of `pool` so it works on the pool's own fields.

use std::os::fd::AsRawFd;

use super::{ConnId, Delivery, Failure, Input, Pool, Stream};
use crate::client::uring_recv::Received;
use crate::Error;

impl Pool {
    /// io_uring path: hands every receive completion to its connection.
    pub(super) fn dispatch_completions(
        &mut self,
        on_delivery: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), Error> {
        let Some(mut recv) = self.recv.take() else { return Ok(()) };
        let result = recv.dispatch(|key, received| self.on_received(key, received, on_delivery));
        self.recv = Some(recv);
        Ok(result?)
    }

    /// io_uring path: re-arms the receives that ended while their socket is still open, cancels those
    /// of dropped sockets, and submits. Re-arming looks the socket up now, after every drop of this
    /// turn, so a receive is never armed on a closed (or reused) fd.
    pub(super) fn submit_receives(&mut self) -> Result<(), Error> {
        let Some(recv) = self.recv.as_mut() else { return Ok(()) };
        let rearm = recv.take_rearm();
        for &key in &rearm {
            let slot = (key >> 32) as usize;
            let serial = key as u32;
            let socket = self.slots.get(slot).and_then(|s| s.conn.as_ref()).and_then(|c| {
                c.sockets.iter().flatten().find(|s| s.serial & 0x7fff_ffff == serial && s.receiving)
            });
            if let Some(socket) = socket {
                recv.arm(key, socket.tcp.as_raw_fd())?;
            }
        }
        recv.restore_rearm(rearm);
        for key in self.cancels.drain(..) {
            recv.cancel(key)?;
        }
        Ok(recv.submit()?)
    }

    /// io_uring path: one completion of the receive named `key`.
    fn on_received(&mut self, key: u64, received: Received<'_>, on_delivery: &mut dyn FnMut(Delivery<'_>)) {
        let (slot, serial) = ((key >> 32) as usize, key as u32);
        let Some(s) = self.slots.get_mut(slot) else { return };
        let id = ConnId { slot: slot as u32, generation: s.generation };
        let Some(c) = s.conn.as_mut() else { return };
        let Some(stream) = Stream::ALL.into_iter().find(|st| {
            c.sockets
                .get(st.index())
                .and_then(Option::as_ref)
                .is_some_and(|s| s.serial & 0x7fff_ffff == serial)
        }) else {
            return; // a socket already dropped: its bytes go nowhere
        };
        let input = match received {
            Received::Bytes(bytes) => Input::Bytes(bytes),
            Received::Eof => Input::Eof,
            Received::Failed(e) => {
                if let Some(socket) = c.sockets.get_mut(stream.index()).and_then(Option::as_mut) {
                    socket.receiving = false; // the receive ended with the error
                }
                return self.fail(id, Failure::Closed(format!("read failed: {e}")));
            }
        };
        let at = self.epoch.now();
        if let Err(failure) = self.feed(id, stream, input, at, on_delivery) {
            self.fail(id, failure);
        }
    }
}
