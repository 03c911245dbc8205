//! Ids the load generator hands out. Distinct types, never aliases, so a publisher number is never
//! used as a connection index by mistake.

use serde::{Deserialize, Serialize};

/// A publishing client of the run, numbered by the scenario from 0. Carried in every message token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PublisherId(u32);

impl PublisherId {
    /// The publisher numbered `n`.
    pub const fn new(n: u32) -> Self {
        PublisherId(n)
    }

    /// Its number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A receiving connection of the run, numbered densely from 0 to the run's connection count; the
/// delivery ledger uses it as a bit index, so the scenario must keep it dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecipientIdx(u32);

impl RecipientIdx {
    /// The connection numbered `n`.
    pub const fn new(n: u32) -> Self {
        RecipientIdx(n)
    }

    /// Its number.
    pub const fn get(self) -> u32 {
        self.0
    }
}
