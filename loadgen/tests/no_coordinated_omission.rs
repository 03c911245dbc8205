//! Synthetic timelines on a virtual clock: a stall must show in the latency tail when latency is
//! measured from the scheduled send time, and would be hidden if it were measured from the actual
//! send time (coordinated omission).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

use std::collections::VecDeque;

use roomcast_loadgen::latency::{FixedRate, LatencyHistogram, Recorder, RunMicros, Scheduled, Window};

const NETWORK_MICROS: u64 = 1_000;

fn ms(v: u64) -> RunMicros {
    RunMicros::from_millis(v)
}

/// The two ways of measuring the same deliveries.
struct Measured {
    from_scheduled: Recorder,
    from_actual_send: LatencyHistogram,
}

/// 1 000 msg/s for 10 s through a connection whose receiver stops reading from 5.0 s to 5.5 s.
/// The socket buffers 20 messages; once they are full the sender blocks (backpressure), exactly as a
/// real TCP sender would, and catches up with a burst when the receiver resumes.
fn run_with_receiver_stall() -> Measured {
    let mut schedule = FixedRate::new(RunMicros::ZERO, 1_000.0).unwrap();
    let stalled = |now: RunMicros| now >= ms(5_000) && now < ms(5_500);
    let mut pipe: VecDeque<(Scheduled, RunMicros)> = VecDeque::new();
    let mut m = Measured {
        from_scheduled: Recorder::new(RunMicros::ZERO),
        from_actual_send: LatencyHistogram::new(),
    };
    for tick in 0..=11_000u64 {
        let now = ms(tick);
        while pipe.len() < 20 && schedule.next_due_at() < ms(10_000) {
            let Some(msg) = schedule.poll_due(now) else { break };
            pipe.push_back((msg, now));
        }
        while !stalled(now) {
            match pipe.front() {
                Some(&(msg, sent)) if sent.plus_micros(NETWORK_MICROS) <= now => {
                    pipe.pop_front();
                    m.from_scheduled.record_delivery(msg.at, now);
                    m.from_actual_send.record(now.micros_since(sent));
                }
                _ => break,
            }
        }
    }
    assert!(pipe.is_empty());
    m
}

#[test]
fn a_500ms_stall_shows_in_p99_and_max_when_measured_from_the_schedule() {
    let m = run_with_receiver_stall();
    let h = m.from_scheduled.overall();
    assert_eq!(h.count(), 10_000, "every scheduled message was delivered");
    // ~500 messages were due during the stall; the worst waited the whole 500 ms.
    let max_ms = h.max_micros() / 1_000;
    assert!((495..=505).contains(&max_ms), "max {max_ms} ms");
    let p99_ms = h.quantile_micros(0.99) / 1_000;
    assert!(p99_ms >= 350, "p99 {p99_ms} ms must show the stall");
    assert!(h.quantile_micros(0.5) <= 2_000, "median stays at the 1 ms network time");
}

#[test]
fn measuring_from_the_actual_send_time_hides_the_stall_from_every_percentile_that_matters() {
    let m = run_with_receiver_stall();
    let h = &m.from_actual_send;
    assert_eq!(h.count(), 10_000);
    // Only the 20 messages caught in the socket buffer saw the stall: 0.2% of samples.
    assert!(h.quantile_micros(0.99) <= 2_000, "p99 {} µs hides the stall", h.quantile_micros(0.99));
    assert!(h.quantile_micros(0.99) * 100 < m.from_scheduled.overall().quantile_micros(0.99));
}

#[test]
fn a_sender_that_is_late_to_use_an_open_window_slot_is_charged_for_it() {
    // Flat out, window of 1: each message is due when the previous one came back. The load
    // generator itself stalls for 200 ms once (say it was descheduled) before sending message 100.
    let mut window = Window::new(RunMicros::ZERO, 1).unwrap();
    let mut from_window = LatencyHistogram::new();
    let mut from_send = LatencyHistogram::new();
    let mut now = RunMicros::ZERO;
    for seq in 0..1_000u64 {
        if seq == 100 {
            now = now.plus_micros(200_000);
        }
        let msg = window.poll_due(now).expect("the slot is free");
        assert_eq!(msg.seq, seq);
        let sent = now;
        now = now.plus_micros(NETWORK_MICROS);
        from_window.record(now.micros_since(msg.at));
        from_send.record(now.micros_since(sent));
        assert!(window.release(now));
    }
    assert_eq!(from_window.max_micros() / 1_000, 201);
    assert_eq!(from_send.max_micros() / 1_000, 1);
}
