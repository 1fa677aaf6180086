//! The anchored clock against an agent who cheats the clock (THREATS.md): visiting at 22:30
//! with the phone set to 10:00, rebooting to shake off the anchor, or a clock that runs back.

mod rules_support;

use std::sync::Arc;

use rules_support::*;
use tandem_core::clock::{
    Clock, ManualClock, StoredAnchor, SystemClock, clock_discrepancy, discrepancy_event, now,
};
use tandem_core::model::{DeviceId, EventKind, EventTime, TimeAnchor};
use tandem_core::rules::{ActionInput, Outcome, RuleId, check_action};

fn anchor_at(server_time_ms: i64) -> TimeAnchor {
    TimeAnchor {
        device_id: DeviceId::new(),
        server_time_ms,
        nonce: "5eed".into(),
        shifted_by_ms: None,
    }
}

#[test]
fn a_visit_at_22_30_with_the_wall_clock_set_back_to_10_00_is_blocked_and_reported() {
    let mut world = World::new();
    world.sync_at_local(10, 0);
    // Twelve and a half hours pass; the agent sets the phone's clock back to 10:00.
    world.clock.advance_ms(12 * HOUR + 30 * MINUTE);
    world.clock.set_wall_ms(shanghai(10, 0));

    let t = world.now();
    assert_eq!(t.wall_ms, shanghai(10, 0));
    assert_eq!(t.anchored_ms(), Some(shanghai(22, 30)));

    let violations = world.check_in(&world.check_in_input());
    assert_rule(
        "check-in at 22:30 anchored",
        &violations,
        RuleId::V04,
        Some(Outcome::Block),
    );

    let tolerance = world.policy.clock_tolerance_ms;
    assert_eq!(
        clock_discrepancy(&t, tolerance),
        Some(-(12 * HOUR + 30 * MINUTE))
    );
    assert_eq!(
        discrepancy_event(&t, tolerance),
        Some(EventKind::ClockDiscrepancy {
            wall_ms: shanghai(10, 0),
            anchored_ms: shanghai(22, 30),
        })
    );

    // Already inside when the clock was moved: capture goes on, flagged after hours.
    world.record_check_in();
    let during = check_action(&world.ctx(), &ActionInput::Note);
    assert_rule(
        "note at 22:30 anchored",
        &during,
        RuleId::V04,
        Some(Outcome::Flag),
    );
}

#[test]
fn a_reboot_unanchors_time_and_check_in_blocks_until_the_next_sync() {
    let mut world = World::new();
    assert!(world.now().anchored_ms().is_some());
    world.clock.reboot();
    // Up longer since this boot than before the sync: only the boot id tells them apart.
    world.clock.advance_ms(6 * HOUR);

    let t = world.now();
    assert_eq!((t.anchor_ms, t.since_anchor_ms), (None, None));
    let violations = world.check_in(&world.check_in_input());
    assert_rule(
        "after reboot",
        &violations,
        RuleId::V04,
        Some(Outcome::Block),
    );
    assert!(
        violations
            .iter()
            .any(|v| v.rule == RuleId::V04 && v.message.contains("sync")),
        "{violations:#?}"
    );

    world.sync_at_local(16, 5);
    let violations = world.check_in(&world.check_in_input());
    assert_rule("after the next sync", &violations, RuleId::V04, None);
}

#[test]
fn monotonic_time_going_backwards_unanchors_time() {
    let clock = ManualClock::new(shanghai(9, 0), 10 * HOUR);
    let anchor = StoredAnchor::receive(&anchor_at(shanghai(9, 0)), &clock);
    clock.advance_ms(MINUTE);
    assert_eq!(
        now(&clock, Some(&anchor)).anchored_ms(),
        Some(shanghai(9, 1))
    );
    clock.set_monotonic_ms(10 * HOUR - 1);
    let t = now(&clock, Some(&anchor));
    assert_eq!(t.anchored_ms(), None);
    assert_eq!(t.wall_ms, shanghai(9, 1));
}

#[test]
fn sleep_counts_and_the_wall_clock_does_not_move_anchored_time() {
    let clock = ManualClock::new(shanghai(9, 0), 0);
    let anchor = StoredAnchor::receive(&anchor_at(shanghai(9, 0) + 1_234), &clock);
    assert_eq!(anchor.wall_at_ms, shanghai(9, 0));
    assert_eq!(anchor.boot_id, clock.boot_id());
    clock.advance_ms(3 * HOUR); // the phone slept in a pocket
    clock.set_wall_ms(0);
    let t = now(&clock, Some(&anchor));
    assert_eq!(t.anchor_ms, Some(shanghai(9, 0) + 1_234));
    assert_eq!(t.since_anchor_ms, Some(3 * HOUR));
    assert_eq!(now(&clock, None).anchored_ms(), None);
}

#[test]
fn the_policy_time_zone_decides_local_time_never_the_phone() {
    // 10:00 in Shanghai is 21:00 the evening before in New York.
    let mut world = World::new();
    world.policy.time_zone = "America/New_York".into();
    let violations = world.check_in(&world.check_in_input());
    assert_rule(
        "New York policy",
        &violations,
        RuleId::V04,
        Some(Outcome::Block),
    );

    world.policy.time_zone = "Asia/Shanghai".into();
    let violations = world.check_in(&world.check_in_input());
    assert_rule("Shanghai policy", &violations, RuleId::V04, None);

    world.policy.time_zone = "Mars/Olympus_Mons".into();
    let violations = world.check_in(&world.check_in_input());
    assert_rule(
        "unknown zone",
        &violations,
        RuleId::V04,
        Some(Outcome::Block),
    );
}

#[test]
fn a_discrepancy_is_reported_only_beyond_tolerance() {
    let at = |wall_ms| EventTime {
        wall_ms,
        anchor_ms: Some(1_000_000),
        since_anchor_ms: Some(0),
    };
    assert_eq!(
        clock_discrepancy(&at(1_000_000 + 5 * MINUTE), 5 * MINUTE),
        None
    );
    assert_eq!(
        clock_discrepancy(&at(1_000_000 + 6 * MINUTE), 5 * MINUTE),
        Some(6 * MINUTE)
    );
    assert_eq!(discrepancy_event(&at(1_000_000 + MINUTE), 5 * MINUTE), None);
    let unanchored = EventTime {
        wall_ms: 0,
        anchor_ms: None,
        since_anchor_ms: None,
    };
    assert_eq!(clock_discrepancy(&unanchored, 0), None);
}

#[test]
fn a_stored_anchor_survives_a_round_trip_through_json() {
    let clock = ManualClock::new(shanghai(9, 0), 42);
    let anchor = StoredAnchor::receive(&anchor_at(shanghai(9, 0)), &clock);
    let json = serde_json::to_string(&anchor).expect("serialize");
    let back: StoredAnchor = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, anchor);
}

#[test]
fn the_manual_clock_is_shared_safely_between_threads() {
    let clock = Arc::new(ManualClock::new(0, 0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let clock = Arc::clone(&clock);
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    clock.advance_ms(1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!((clock.wall_ms(), clock.monotonic_ms()), (4_000, 4_000));
    let before = clock.boot_id();
    clock.reboot();
    assert_ne!(clock.boot_id(), before);
    assert_eq!(clock.monotonic_ms(), 0);
    assert_eq!(clock.wall_ms(), 4_000);
}

#[test]
fn the_system_clock_counts_forward_within_one_boot() {
    let clock = SystemClock::new();
    let again = SystemClock::new();
    assert!(!clock.boot_id().is_empty());
    assert_eq!(clock.boot_id(), again.boot_id());
    let (m0, w0) = (clock.monotonic_ms(), clock.wall_ms());
    std::thread::sleep(std::time::Duration::from_millis(30));
    let (m1, w1) = (clock.monotonic_ms(), clock.wall_ms());
    assert!(m1 - m0 >= 30, "monotonic advanced {} ms", m1 - m0);
    assert!(w1 >= w0 && w0 > 1_700_000_000_000);
    // An anchor received now holds on this clock.
    let anchor = StoredAnchor::receive(&anchor_at(w1), &clock);
    assert!(now(&clock, Some(&anchor)).anchored_ms().is_some());
}
