//! Delivery accounting for `verify`: who should have received each message, and every way the
//! server got it wrong.
//!
//! The scenario numbers its connections densely (`RecipientIdx` 0..n), registers each distinct set
//! of intended recipients once as an [`AudienceId`] (a room's members minus the excepted ones; many
//! messages share one), says which audience each published message targets
//! ([`DeliveryLedger::expect`]) and records each receipt as it happens
//! ([`DeliveryLedger::record_receipt`]). Receipts may arrive before the message is registered.
//! [`DeliveryLedger::report`] then lists the violations:
//!
//! - **missing**: an intended recipient never received the message;
//! - **duplicated**: a recipient received the same message more than once;
//! - **excluded**: delivered to a connection the broadcast explicitly left out (`except`, the sender);
//! - **not targeted**: delivered to a connection that was neither intended nor excluded;
//! - **unknown message**: a receipt for a (publisher, seq) never registered;
//! - **reordered**: one recipient saw a publisher's sequence numbers go backwards.
//!
//! Memory: one bitset of n bits per audience (intended) plus one for its exclusions, one bitset of
//! n bits per message that received anything, and one `u64` per (recipient, publisher) pair seen.
//! 100 000 messages to 10 000 connections is ~125 MB of receipt bits: size verify runs accordingly.

use std::collections::HashMap;

use crate::{Error, PublisherId, RecipientIdx};

/// Examples of each kind of violation kept for the report by default.
pub const DEFAULT_EXAMPLE_LIMIT: usize = 10;

/// A registered set of intended recipients (with its exclusions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudienceId(u32);

/// One delivery that should not have happened, or should have and did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// An intended recipient never received the message.
    Missing { publisher: PublisherId, seq: u64, recipient: RecipientIdx },
    /// A recipient received the message again.
    Duplicated { publisher: PublisherId, seq: u64, recipient: RecipientIdx },
    /// Delivered to a connection the broadcast excluded.
    Excluded { publisher: PublisherId, seq: u64, recipient: RecipientIdx },
    /// Delivered to a connection that was neither intended nor excluded.
    NotTargeted { publisher: PublisherId, seq: u64, recipient: RecipientIdx },
    /// Received a message that was never registered with [`DeliveryLedger::expect`].
    UnknownMessage { publisher: PublisherId, seq: u64, recipient: RecipientIdx },
    /// `recipient` received `seq` from `publisher` after already having received `after_seq > seq`.
    Reordered { publisher: PublisherId, seq: u64, recipient: RecipientIdx, after_seq: u64 },
}

/// The outcome of a verify run: totals, one count per kind of violation, and a few examples of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages registered with `expect`.
    pub messages: u64,
    /// Sum over registered messages of their intended recipients.
    pub deliveries_expected: u64,
    /// Receipts recorded, duplicates and strays included.
    pub deliveries_received: u64,
    /// Intended deliveries that never happened.
    pub missing: u64,
    /// Receipts beyond the first of a message by one recipient.
    pub duplicated: u64,
    /// Deliveries to excluded connections.
    pub excluded: u64,
    /// Deliveries to connections neither intended nor excluded.
    pub not_targeted: u64,
    /// Receipts of messages never registered.
    pub unknown_message: u64,
    /// Receipts whose sequence number went backwards for that recipient and publisher.
    pub reordered: u64,
    /// Up to the ledger's example limit of each kind: missing, excluded, not targeted and unknown
    /// (each by publisher and seq), then duplicated and reordered (in arrival order).
    pub examples: Vec<Violation>,
}

impl DeliveryReport {
    /// Total number of violations of every kind.
    pub fn violations(&self) -> u64 {
        [
            self.missing,
            self.duplicated,
            self.excluded,
            self.not_targeted,
            self.unknown_message,
            self.reordered,
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Whether the run delivered exactly what it should have, in order.
    pub fn is_clean(&self) -> bool {
        self.violations() == 0
    }
}

/// Collects expectations and receipts; see the module docs. Thread: one owner (the verify loop).
#[derive(Debug)]
pub struct DeliveryLedger {
    recipients: u32,
    audiences: Vec<Audience>,
    messages: HashMap<(PublisherId, u64), MessageEntry>,
    last_seq: HashMap<(RecipientIdx, PublisherId), u64>,
    received: u64,
    duplicated: u64,
    reordered: u64,
    receipt_examples: Vec<Violation>,
    example_limit: usize,
}

#[derive(Debug)]
struct Audience {
    intended: BitSet,
    excluded: BitSet,
    intended_count: u64,
}

#[derive(Debug, Default)]
struct MessageEntry {
    audience: Option<AudienceId>,
    received: Option<BitSet>,
}

impl DeliveryLedger {
    /// A ledger for connections `0..recipients`, keeping [`DEFAULT_EXAMPLE_LIMIT`] examples per kind.
    pub fn new(recipients: u32) -> Self {
        DeliveryLedger {
            recipients,
            audiences: Vec::new(),
            messages: HashMap::new(),
            last_seq: HashMap::new(),
            received: 0,
            duplicated: 0,
            reordered: 0,
            receipt_examples: Vec::new(),
            example_limit: DEFAULT_EXAMPLE_LIMIT,
        }
    }

    /// Keeps up to `limit` examples of each kind of violation instead of the default.
    pub fn with_example_limit(mut self, limit: usize) -> Self {
        self.example_limit = limit;
        self
    }

    /// Registers a set of intended recipients and the connections the broadcast explicitly excludes.
    /// A connection in both lists counts as excluded. Cost: O(n / 64) memory and time.
    pub fn add_audience(
        &mut self,
        intended: impl IntoIterator<Item = RecipientIdx>,
        excluded: impl IntoIterator<Item = RecipientIdx>,
    ) -> Result<AudienceId, Error> {
        let id = u32::try_from(self.audiences.len()).map_err(|_| Error::Misuse("too many audiences"))?;
        let mut audience = Audience {
            intended: BitSet::new(self.recipients),
            excluded: BitSet::new(self.recipients),
            intended_count: 0,
        };
        for r in excluded {
            self.check_recipient(r)?;
            audience.excluded.insert(r.get());
        }
        for r in intended {
            self.check_recipient(r)?;
            if !audience.excluded.contains(r.get()) {
                audience.intended.insert(r.get());
            }
        }
        audience.intended_count = audience.intended.count_ones();
        self.audiences.push(audience);
        Ok(AudienceId(id))
    }

    /// Registers message `seq` of `publisher` as sent to `audience`. Fails on an unknown audience
    /// or a message registered twice. Cost: one hash-map insert.
    pub fn expect(&mut self, publisher: PublisherId, seq: u64, audience: AudienceId) -> Result<(), Error> {
        if usize::try_from(audience.0).ok().and_then(|i| self.audiences.get(i)).is_none() {
            return Err(Error::Misuse("unknown audience"));
        }
        let entry = self.messages.entry((publisher, seq)).or_default();
        if entry.audience.is_some() {
            return Err(Error::Misuse("message registered twice"));
        }
        entry.audience = Some(audience);
        Ok(())
    }

    /// Records that `recipient` received message `seq` of `publisher`, in arrival order for that
    /// recipient. Fails only for a recipient outside `0..n`. Cost: two hash-map lookups; the first
    /// receipt of a message allocates its n-bit receipt set.
    pub fn record_receipt(
        &mut self,
        recipient: RecipientIdx,
        publisher: PublisherId,
        seq: u64,
    ) -> Result<(), Error> {
        self.check_recipient(recipient)?;
        self.received = self.received.saturating_add(1);
        let recipients = self.recipients;
        let entry = self.messages.entry((publisher, seq)).or_default();
        let first_time =
            entry.received.get_or_insert_with(|| BitSet::new(recipients)).insert(recipient.get());
        if !first_time {
            self.duplicated = self.duplicated.saturating_add(1);
            self.note(Violation::Duplicated { publisher, seq, recipient });
            return Ok(());
        }
        let last = self.last_seq.entry((recipient, publisher)).or_insert(seq);
        if seq < *last {
            let after_seq = *last;
            self.reordered = self.reordered.saturating_add(1);
            self.note(Violation::Reordered { publisher, seq, recipient, after_seq });
        } else {
            *last = seq;
        }
        Ok(())
    }

    /// The violations found so far. Cost: O(messages × n / 64) plus a sort of the message keys.
    pub fn report(&self) -> DeliveryReport {
        let mut report = DeliveryReport {
            deliveries_received: self.received,
            duplicated: self.duplicated,
            reordered: self.reordered,
            ..DeliveryReport::default()
        };
        let limit = self.example_limit;
        let mut examples: [Vec<Violation>; 4] = Default::default();
        let mut keys: Vec<&(PublisherId, u64)> = self.messages.keys().collect();
        keys.sort_unstable();
        let empty = BitSet::new(0);
        for key @ &(publisher, seq) in keys {
            let Some(entry) = self.messages.get(key) else { continue };
            let received = entry.received.as_ref().unwrap_or(&empty);
            let Some(audience) = entry.audience.and_then(|a| self.audiences.get(a.0 as usize)) else {
                for r in received.ones() {
                    let recipient = RecipientIdx::new(r);
                    report.unknown_message += 1;
                    push_capped(
                        &mut examples[3],
                        limit,
                        Violation::UnknownMessage { publisher, seq, recipient },
                    );
                }
                continue;
            };
            report.messages += 1;
            report.deliveries_expected = report.deliveries_expected.saturating_add(audience.intended_count);
            for r in audience.intended.ones().filter(|&r| !received.contains(r)) {
                let recipient = RecipientIdx::new(r);
                report.missing += 1;
                push_capped(&mut examples[0], limit, Violation::Missing { publisher, seq, recipient });
            }
            for r in received.ones().filter(|&r| !audience.intended.contains(r)) {
                let recipient = RecipientIdx::new(r);
                if audience.excluded.contains(r) {
                    report.excluded += 1;
                    push_capped(&mut examples[1], limit, Violation::Excluded { publisher, seq, recipient });
                } else {
                    report.not_targeted += 1;
                    push_capped(
                        &mut examples[2],
                        limit,
                        Violation::NotTargeted { publisher, seq, recipient },
                    );
                }
            }
        }
        report.examples =
            examples.into_iter().flatten().chain(self.receipt_examples.iter().copied()).collect();
        report
    }

    fn check_recipient(&self, r: RecipientIdx) -> Result<(), Error> {
        if r.get() < self.recipients {
            Ok(())
        } else {
            Err(Error::Misuse("recipient index outside 0..connections"))
        }
    }

    /// Keeps a receipt-time example (duplicates, reorders) if that kind is under its limit.
    fn note(&mut self, v: Violation) {
        let same_kind = self
            .receipt_examples
            .iter()
            .filter(|e| std::mem::discriminant(*e) == std::mem::discriminant(&v))
            .count();
        if same_kind < self.example_limit {
            self.receipt_examples.push(v);
        }
    }
}

fn push_capped(list: &mut Vec<Violation>, limit: usize, v: Violation) {
    if list.len() < limit {
        list.push(v);
    }
}

/// A fixed-size set of indices `0..bits`, one bit each.
#[derive(Debug, Clone)]
struct BitSet {
    bits: u32,
    words: Box<[u64]>,
}

impl BitSet {
    fn new(bits: u32) -> Self {
        let words = usize::try_from(bits.div_ceil(64)).unwrap_or(0);
        BitSet { bits, words: vec![0; words].into_boxed_slice() }
    }

    /// Sets bit `i`; returns whether it was clear. Out-of-range indices are ignored (returns false).
    fn insert(&mut self, i: u32) -> bool {
        if i >= self.bits {
            return false;
        }
        let Some(word) = self.words.get_mut((i / 64) as usize) else { return false };
        let mask = 1u64 << (i % 64);
        let was_clear = *word & mask == 0;
        *word |= mask;
        was_clear
    }

    fn contains(&self, i: u32) -> bool {
        self.words.get((i / 64) as usize).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The set indices in increasing order; skips empty words.
    fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let base = u32::try_from(wi).unwrap_or(u32::MAX).saturating_mul(64);
            let mut rest = w;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(base + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_sets_counts_and_lists_across_word_boundaries() {
        let mut b = BitSet::new(130);
        for i in [0, 63, 64, 129] {
            assert!(b.insert(i));
        }
        assert!(!b.insert(64));
        assert!(!b.insert(130), "out of range is ignored");
        assert_eq!(b.count_ones(), 4);
        assert_eq!(b.ones().collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert!(b.contains(129) && !b.contains(1) && !b.contains(10_000));
    }
}
