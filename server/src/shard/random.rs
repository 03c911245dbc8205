//! Unguessable ids for sessions and sockets, from the kernel's CSPRNG, fetched in blocks.
//!
//! Contract: every id comes from `getrandom` output never handed out before; one syscall serves
//! `BLOCK / 16` ids. If the kernel cannot supply randomness the shard cannot mint secrets, so the
//! error is returned and the connection refused (it never happens on Linux ≥ 3.17).

use roomcast_engine::ids::{EngineSid, ShardId, Sid};

const BLOCK: usize = 4096;

#[derive(Debug)]
pub(crate) struct IdSource {
    pool: Box<[u8; BLOCK]>,
    used: usize,
}

impl IdSource {
    pub(crate) fn new() -> Self {
        IdSource { pool: Box::new([0; BLOCK]), used: BLOCK }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], getrandom::Error> {
        if self.used + N > BLOCK {
            getrandom::fill(&mut self.pool[..])?;
            self.used = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.pool[self.used..self.used + N]);
        // Never hand the same bytes out twice.
        self.pool[self.used..self.used + N].fill(0);
        self.used += N;
        Ok(out)
    }

    pub(crate) fn engine_sid(&mut self, shard: ShardId) -> Result<EngineSid, getrandom::Error> {
        Ok(EngineSid::new(shard, self.take::<16>()?))
    }

    pub(crate) fn socket_sid(&mut self) -> Result<Sid, getrandom::Error> {
        Ok(Sid::from_random(self.take::<15>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_name_their_shard() {
        let mut ids = IdSource::new();
        let a = ids.engine_sid(ShardId(3)).unwrap();
        let b = ids.engine_sid(ShardId(3)).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.shard(), ShardId(3));
        let sids: std::collections::HashSet<_> = (0..1000).map(|_| ids.socket_sid().unwrap()).collect();
        assert_eq!(sids.len(), 1000);
    }
}
