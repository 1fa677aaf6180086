//! The visit list: what the rules say about each visit before any handshake.

use std::sync::Arc;

use tandem_core::clock::ManualClock;
use tandem_core::model::VisitState;
use tandem_core::phone::ManualLocation;
use tandem_core::rules::{Outcome, RuleId};
use tandem_core::testing::World;

#[test]
fn the_visit_list_says_why_a_check_in_would_be_refused_before_the_handshake() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(world.start_ms, 5_000_000));
    let location = Arc::new(ManualLocation::new(None));
    let (lead, lead_member) = world
        .open_phone(&dir.path().join("lead"), clock.clone(), location.clone())
        .unwrap();
    let (_partner, partner_member) = world
        .open_phone(&dir.path().join("partner"), clock.clone(), location.clone())
        .unwrap();
    let approval = world.approval(&[&lead_member, &partner_member]);
    let ticket = world.ticket(&approval);
    let visit = world
        .assign(&lead, &lead_member, &approval, &ticket, world.start_ms)
        .unwrap();

    // Actor: a lone agent faking presence — without a fix, the list already says V05.
    let list = lead.visit_overviews().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].visit_id, list[0].state),
        (visit, VisitState::Assigned)
    );
    let rules: Vec<_> = list[0]
        .check_in_now
        .iter()
        .map(|v| (v.rule, v.outcome))
        .collect();
    assert_eq!(rules, [(RuleId::V05, Outcome::Block)]);
    let case = list[0].case.as_ref().unwrap();
    assert_eq!(case.card.as_str(), "**** **** **** 7890");
    assert_eq!(case.addresses.len(), 1);

    // At the door, in visiting hours: nothing stands in the way until the partner answers.
    location.set(Some(world.fix_near_address(20, 10)));
    assert!(lead.visit_overviews().unwrap()[0].check_in_now.is_empty());

    // Actor: an agent who visits at night — 22:30 by the anchored clock gives V04.
    clock.advance_ms(12 * 3_600_000 + 30 * 60_000);
    let list = lead.visit_overviews().unwrap();
    assert!(
        list[0]
            .check_in_now
            .iter()
            .any(|v| v.rule == RuleId::V04 && v.outcome == Outcome::Block),
        "{:?}",
        list[0].check_in_now
    );
}
