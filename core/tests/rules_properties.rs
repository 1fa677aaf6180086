//! Bad input never panics the rules: arbitrary times, durations and clock readings.
//! Actor: anyone sending bad input (THREATS.md), e.g. a corrupted event or a wild clock.

use proptest::prelude::*;
use tandem_core::clock::{ManualClock, StoredAnchor, clock_discrepancy, now};
use tandem_core::crypto::Digest;
use tandem_core::model::{
    AgentId, BankId, DeviceId, Event, EventKind, EventTime, Policy, TimeAnchor, VisitId,
};
use tandem_core::rules::{Outcome, audio_gaps, check_upload_deadlines};

fn segment(visit: VisitId, seq: u64, start_ms: i64, duration_ms: i64) -> Event {
    Event {
        visit_id: visit,
        seq,
        prev: Digest::ZERO,
        at: EventTime {
            wall_ms: start_ms,
            anchor_ms: None,
            since_anchor_ms: None,
        },
        fix: None,
        by: AgentId::new(),
        kind: EventKind::AudioSegment {
            index: 0,
            digest: Digest::ZERO,
            size: 0,
            start_ms,
            duration_ms,
            recovered: false,
        },
    }
}

proptest! {
    #[test]
    fn audio_gaps_are_ordered_disjoint_and_inside_the_window(
        segments in prop::collection::vec((any::<i64>(), any::<i64>()), 0..12),
        open in prop::option::of(any::<i64>()),
        from in any::<i64>(),
        until in any::<i64>(),
        tolerance in 0i64..120_000,
    ) {
        let visit = VisitId::new();
        let events: Vec<Event> = segments
            .iter()
            .enumerate()
            .map(|(i, (s, d))| segment(visit, i as u64, *s, *d))
            .collect();
        let gaps = audio_gaps(&events, from, until, open, tolerance);
        let mut last_end = from;
        for g in &gaps {
            prop_assert!(g.from_ms >= last_end && g.until_ms <= until.max(from));
            prop_assert!(g.duration_ms() > tolerance);
            last_end = g.until_ms;
        }
    }

    #[test]
    fn upload_deadlines_take_any_times(
        now_ms in any::<i64>(),
        sealed in prop::collection::vec(any::<i64>(), 0..8),
        deadline in any::<i64>(),
    ) {
        let policy = Policy { upload_deadline_ms: deadline, ..Policy::defaults(BankId::new()) };
        let violations = check_upload_deadlines(&policy, now_ms, &sealed);
        prop_assert!(violations.iter().all(|v| v.outcome != Outcome::Flag));
    }

    #[test]
    fn the_clock_takes_any_readings(
        wall in any::<i64>(),
        // Time since boot is never negative.
        mono_at in 0..i64::MAX,
        mono_now in 0..i64::MAX,
        server in any::<i64>(),
        tolerance in any::<i64>(),
    ) {
        let clock = ManualClock::new(wall, mono_at);
        let anchor = StoredAnchor::receive(
            &TimeAnchor { device_id: DeviceId::new(), server_time_ms: server, nonce: "00".into(), shifted_by_ms: None },
            &clock,
        );
        clock.set_monotonic_ms(mono_now);
        let t = now(&clock, Some(&anchor));
        prop_assert_eq!(t.anchored_ms().is_some(), mono_now >= mono_at);
        let _ = clock_discrepancy(&t, tolerance);
    }
}
