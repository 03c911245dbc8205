//! Delivery accounting on hand-made runs: each kind of violation is found, a correct run has none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

use roomcast_loadgen::delivery::{AudienceId, DeliveryLedger, DeliveryReport, Violation};
use roomcast_loadgen::{Error, PublisherId, RecipientIdx};

const P0: PublisherId = PublisherId::new(0);
const P1: PublisherId = PublisherId::new(1);

fn r(n: u32) -> RecipientIdx {
    RecipientIdx::new(n)
}

/// Six connections. Room A = {0, 1, 2, 3}; connection 0 publishes to it with "except self", so 0 is
/// excluded. Room B = {4, 5}, targeted by publisher 1.
fn ledger() -> (DeliveryLedger, AudienceId, AudienceId) {
    let mut ledger = DeliveryLedger::new(6);
    let room_a = ledger.add_audience([r(0), r(1), r(2), r(3)], [r(0)]).unwrap();
    let room_b = ledger.add_audience([r(4), r(5)], []).unwrap();
    (ledger, room_a, room_b)
}

/// Publisher 0 sends seq 0..3 to room A, publisher 1 seq 0..2 to room B, all delivered in order.
fn correct_run() -> DeliveryLedger {
    let (mut l, a, b) = ledger();
    for seq in 0..3 {
        l.expect(P0, seq, a).unwrap();
    }
    for seq in 0..2 {
        l.expect(P1, seq, b).unwrap();
    }
    for seq in 0..3 {
        for to in 1..4 {
            l.record_receipt(r(to), P0, seq).unwrap();
        }
        if seq < 2 {
            l.record_receipt(r(4), P1, seq).unwrap();
            l.record_receipt(r(5), P1, seq).unwrap();
        }
    }
    l
}

fn only(report: &DeliveryReport) -> Vec<Violation> {
    report.examples.clone()
}

#[test]
fn a_correct_run_reports_no_violation() {
    let report = correct_run().report();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.messages, 5);
    assert_eq!(report.deliveries_expected, 3 * 3 + 2 * 2);
    assert_eq!(report.deliveries_received, report.deliveries_expected);
    assert!(report.examples.is_empty());
}

#[test]
fn a_missing_delivery_is_found() {
    let (mut l, a, _) = ledger();
    l.expect(P0, 0, a).unwrap();
    l.record_receipt(r(1), P0, 0).unwrap();
    l.record_receipt(r(3), P0, 0).unwrap();
    let report = l.report();
    assert_eq!((report.missing, report.violations()), (1, 1));
    assert_eq!(only(&report), [Violation::Missing { publisher: P0, seq: 0, recipient: r(2) }]);
}

#[test]
fn a_duplicate_is_found_and_not_also_called_a_reorder() {
    let mut l = correct_run();
    l.record_receipt(r(2), P0, 1).unwrap();
    let report = l.report();
    assert_eq!((report.duplicated, report.reordered, report.violations()), (1, 0, 1));
    assert_eq!(only(&report), [Violation::Duplicated { publisher: P0, seq: 1, recipient: r(2) }]);
}

#[test]
fn delivery_to_an_excluded_connection_is_found() {
    let mut l = correct_run();
    l.record_receipt(r(0), P0, 2).unwrap(); // the sender got its own "except self" broadcast
    let report = l.report();
    assert_eq!((report.excluded, report.violations()), (1, 1));
    assert_eq!(only(&report), [Violation::Excluded { publisher: P0, seq: 2, recipient: r(0) }]);
}

#[test]
fn delivery_to_a_connection_outside_the_target_is_found() {
    let mut l = correct_run();
    l.record_receipt(r(5), P0, 0).unwrap(); // room B member got a room A message
    let report = l.report();
    assert_eq!((report.not_targeted, report.violations()), (1, 1));
    assert_eq!(only(&report), [Violation::NotTargeted { publisher: P0, seq: 0, recipient: r(5) }]);
}

#[test]
fn a_message_nobody_published_is_found() {
    let mut l = correct_run();
    l.record_receipt(r(4), P1, 99).unwrap();
    let report = l.report();
    assert_eq!((report.unknown_message, report.violations()), (1, 1));
    assert_eq!(only(&report), [Violation::UnknownMessage { publisher: P1, seq: 99, recipient: r(4) }]);
}

#[test]
fn a_publisher_sequence_going_backwards_for_one_receiver_is_found() {
    let (mut l, a, _) = ledger();
    for seq in 0..3 {
        l.expect(P0, seq, a).unwrap();
    }
    for to in [1, 2] {
        for seq in 0..3 {
            l.record_receipt(r(to), P0, seq).unwrap();
        }
    }
    for seq in [0, 2, 1] {
        l.record_receipt(r(3), P0, seq).unwrap();
    }
    let report = l.report();
    assert_eq!((report.reordered, report.violations()), (1, 1));
    assert_eq!(
        only(&report),
        [Violation::Reordered { publisher: P0, seq: 1, recipient: r(3), after_seq: 2 }]
    );
}

#[test]
fn interleaving_two_publishers_is_not_a_reorder() {
    let (mut l, a, _) = ledger();
    let both = l.add_audience([r(1)], []).unwrap();
    l.expect(P0, 0, both).unwrap();
    l.expect(P1, 0, both).unwrap();
    l.expect(P0, 1, both).unwrap();
    l.expect(P1, 1, a).unwrap();
    for (p, seq) in [(P1, 0), (P0, 0), (P0, 1)] {
        l.record_receipt(r(1), p, seq).unwrap();
    }
    for to in 1..4 {
        l.record_receipt(r(to), P1, 1).unwrap();
    }
    assert!(l.report().is_clean(), "{:?}", l.report());
}

#[test]
fn receipts_may_arrive_before_their_message_is_registered() {
    let (mut l, a, _) = ledger();
    for to in 1..4 {
        l.record_receipt(r(to), P0, 0).unwrap();
    }
    l.expect(P0, 0, a).unwrap();
    assert!(l.report().is_clean());
}

#[test]
fn counts_stay_exact_while_examples_are_capped() {
    let mut l = DeliveryLedger::new(200).with_example_limit(3);
    let everyone = l.add_audience((0..200).map(r), []).unwrap();
    l.expect(P0, 0, everyone).unwrap();
    l.record_receipt(r(7), P0, 0).unwrap();
    let report = l.report();
    assert_eq!(report.missing, 199);
    assert_eq!(report.examples.len(), 3);
    assert_eq!(report.examples[0], Violation::Missing { publisher: P0, seq: 0, recipient: r(0) });
}

#[test]
fn scenario_bugs_are_errors_not_panics() {
    let (mut l, a, _) = ledger();
    assert!(matches!(l.record_receipt(r(6), P0, 0), Err(Error::Misuse(_))));
    assert!(matches!(l.add_audience([r(9)], []), Err(Error::Misuse(_))));
    l.expect(P0, 0, a).unwrap();
    assert!(matches!(l.expect(P0, 0, a), Err(Error::Misuse(_))));
    let mut other = DeliveryLedger::new(1);
    assert!(matches!(other.expect(P0, 0, a), Err(Error::Misuse(_))), "audience of another ledger");
}
