//! Open-loop latency measurement: no coordinated omission.
//!
//! Each message carries the time it was SCHEDULED to be sent ([`schedule`]), encoded in a short
//! token ([`token`]); the receiver records `receive time − scheduled time` ([`recorder`]). A stall
//! anywhere — sender, server or receiver — therefore lands in the latency of every message that was
//! due during it, instead of being hidden by a sender that quietly sent fewer messages. All times
//! count from one run epoch shared by every worker process ([`clock`]).
//!
//! Map:
//! - [`clock`]: `RunMicros` (µs since the run epoch) and `RunEpoch` (the shared `CLOCK_MONOTONIC` zero).
//! - [`schedule`]: `FixedRate` (message k due at t0 + k/R), `Window` (flat out, W in flight), `Schedule`.
//! - [`token`]: `MessageStamp` ⇄ `rc1.<publisher>.<seq>.<scheduled>.<check>`.
//! - [`recorder`]: `LatencyHistogram` (HdrHistogram, µs, 1 µs..60 s, 3 digits), `Recorder`
//!   (interval + overall), `IntervalSnapshot` (what workers send the parent).

pub mod clock;
pub mod recorder;
pub mod schedule;
pub mod token;

pub use clock::{RunEpoch, RunMicros};
pub use recorder::{IntervalSnapshot, LatencyHistogram, Recorder};
pub use schedule::{FixedRate, Schedule, Scheduled, Window};
pub use token::MessageStamp;
