//! Application code runs inside the shard loop; a panic in it must not take the shard (and every other
//! socket on it) down.
//!
//! Contract: [`guarded`] runs a handler and, if it panics, counts the panic and carries on. The panic
//! message is printed by the standard panic hook (with the shard's thread name). The handler's own
//! effects up to the panic stand; the engine's state stays consistent because every engine call is
//! complete before control returns to application code.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

/// Handler panics caught since the process started, over all shards.
pub(crate) static HANDLER_PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `f`, containing a panic.
pub(crate) fn guarded(f: impl FnOnce()) {
    // AssertUnwindSafe: after a caught panic the shard only relies on engine state, which application
    // code can change only through complete API calls.
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        HANDLER_PANICS.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_is_contained_and_counted() {
        let before = HANDLER_PANICS.load(Ordering::Relaxed);
        let mut ran_after = false;
        guarded(|| panic!("handler bug"));
        guarded(|| ran_after = true);
        assert!(ran_after);
        assert_eq!(HANDLER_PANICS.load(Ordering::Relaxed), before + 1);
    }
}
