//! Measurement and reporting for `roomcast-loadgen`.
//!
//! The scenarios (fan-out, verify, connect, idle) drive connections; this library is everything they
//! need to measure a run honestly and report it so a person can read it:
//!
//! - [`latency`]: open-loop schedules, the message token carrying the scheduled send time, and
//!   HdrHistogram recorders (per interval and overall, mergeable across worker processes).
//! - [`delivery`]: who should have received which message, and every way that went wrong (missing,
//!   duplicated, delivered to an excluded or untargeted connection, reordered).
//! - [`cpu`]: the load generator's own CPU use and whether it was the bottleneck.
//! - [`report`]: the end-of-run table, the one-line JSON summary, the `.hlog` interval log, the SVG
//!   percentile plot, and the once-a-second progress line.
//!
//! The method and the outputs are described for users in `docs/LOADGEN.md`.

pub mod client;
pub mod cpu;
pub mod delivery;
pub mod error;
pub mod ids;
pub mod latency;
pub mod report;
pub mod scenario;

pub use error::Error;
pub use ids::{PublisherId, RecipientIdx};
