//! Check-in rules, one table per rule: may this team start this visit, here and now?
//! Actors: a lone agent, an agent who cheats the clock or place (THREATS.md).

mod rules_support;

use rules_support::*;
use tandem_core::model::{
    AgentId, Appointment, CaseId, CaseStatus, DeviceId, HealthFlag, HoldReason,
};
use tandem_core::place::Datum;
use tandem_core::rules::{Outcome, RuleId, has_blocking};

type Scenario = (&'static str, fn(&mut World, &mut CheckIn), Option<Outcome>);

fn run(rule: RuleId, table: &[Scenario]) {
    for (name, change, expected) in table {
        let mut world = World::new();
        let mut input = world.check_in_input();
        change(&mut world, &mut input);
        let violations = world.check_in(&input);
        assert_rule(name, &violations, rule, *expected);
    }
}

#[test]
fn a_valid_joint_check_in_passes_every_rule() {
    let world = World::new();
    let violations = world.check_in(&world.check_in_input());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn v01_case_must_be_active_and_entrusted() {
    run(
        RuleId::V01,
        &[
            ("active case within its entrustment", |_, _| {}, None),
            (
                "settled case blocks check-in",
                |w, _| w.case.status = CaseStatus::Settled,
                Some(Outcome::Block),
            ),
            (
                "case on hold for a complaint blocks check-in",
                |w, _| {
                    w.case.status = CaseStatus::OnHold {
                        reason: HoldReason::Complaint,
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "ended entrustment blocks check-in",
                |w, _| w.case.entrustment.end_ms = shanghai(9, 0),
                Some(Outcome::Block),
            ),
            (
                "an approved extension keeps the case entrusted",
                |w, _| {
                    w.case.entrustment.end_ms = shanghai(9, 0);
                    w.case.entrustment.extended_until_ms = Some(shanghai(23, 0));
                },
                None,
            ),
        ],
    );
}

#[test]
fn v02_check_in_needs_a_valid_approval_and_its_ticket() {
    run(
        RuleId::V02,
        &[
            ("approval valid now", |_, _| {}, None),
            (
                "expired approval blocks check-in",
                |w, _| w.approval.valid_until_ms = shanghai(9, 59),
                Some(Outcome::Block),
            ),
            (
                "approval not valid yet blocks check-in",
                |w, _| w.approval.valid_from_ms = shanghai(11, 0),
                Some(Outcome::Block),
            ),
            (
                "ticket of another visit blocks check-in",
                |w, _| w.ticket.visit_id = tandem_core::model::VisitId::new(),
                Some(Outcome::Block),
            ),
            (
                "approval for another case blocks check-in",
                |w, _| w.approval.case_id = CaseId::new(),
                Some(Outcome::Block),
            ),
            (
                "approval naming no address of the case blocks check-in",
                |w, _| w.approval.address_ids.clear(),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v03_two_team_agents_on_their_own_phones_check_in_together() {
    run(
        RuleId::V03,
        &[
            ("partner on the team with own phone", |_, _| {}, None),
            (
                "lone agent without a partner blocks check-in",
                |_, i| i.partner = None,
                Some(Outcome::Block),
            ),
            (
                "agent as their own partner blocks check-in",
                |w, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.agent_id = w.me;
                        p.device_id = w.my_device;
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "partner not on the approved team blocks check-in",
                |_, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.agent_id = AgentId::new();
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "partner on an unenrolled phone blocks check-in",
                |_, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.device_id = DeviceId::new();
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "partner using this phone blocks check-in",
                |w, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.device_id = w.my_device;
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "agent on a phone not enrolled for them blocks check-in",
                |w, _| w.my_device = DeviceId::new(),
                Some(Outcome::Block),
            ),
            (
                "team of one blocks check-in",
                |w, _| w.approval.team.truncate(1),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v04_check_in_within_visiting_hours_on_anchored_time() {
    run(
        RuleId::V04,
        &[
            ("10:00 local is within hours", |_, _| {}, None),
            (
                "07:59 local blocks check-in",
                |w, _| w.sync_at_local(7, 59),
                Some(Outcome::Block),
            ),
            (
                "20:50 local warns that hours end soon",
                |w, _| w.sync_at_local(20, 50),
                Some(Outcome::Warn),
            ),
            (
                "21:00 local blocks check-in",
                |w, _| w.sync_at_local(21, 0),
                Some(Outcome::Block),
            ),
            (
                "22:30 local with a recorded appointment is allowed",
                |w, _| {
                    w.sync_at_local(22, 30);
                    w.approval.appointment = Some(Appointment {
                        from_ms: shanghai(22, 0),
                        until_ms: shanghai(23, 30),
                    });
                },
                None,
            ),
            (
                "no anchored time blocks check-in: sync first",
                |w, _| w.anchor = None,
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v05_check_in_at_the_address_with_real_fixes_side_by_side() {
    run(
        RuleId::V05,
        &[
            ("both phones next to the address", |_, _| {}, None),
            (
                "mock location blocks check-in",
                |_, i| {
                    if let Some(f) = i.fix.as_mut() {
                        f.mock = true;
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "missing fix blocks check-in",
                |_, i| i.fix = None,
                Some(Outcome::Block),
            ),
            (
                "fix accuracy of 150 m blocks check-in",
                |_, i| i.fix = Some(fix_north(2_000, 150)),
                Some(Outcome::Block),
            ),
            (
                "300 m away without a reason blocks check-in",
                |_, i| {
                    i.fix = Some(fix_north(27_000, 10));
                    if let Some(p) = i.partner.as_mut() {
                        p.fix = Some(fix_north(27_200, 10));
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "300 m away with a reason is flagged",
                |_, i| {
                    i.fix = Some(fix_north(27_000, 10));
                    if let Some(p) = i.partner.as_mut() {
                        p.fix = Some(fix_north(27_200, 10));
                    }
                    i.reason = Some("gate closed, met at the compound entrance".into());
                },
                Some(Outcome::Flag),
            ),
            (
                "fix accuracy widens the fence: 250 m away at 60 m accuracy is inside",
                |_, i| {
                    i.fix = Some(fix_north(22_500, 60));
                    if let Some(p) = i.partner.as_mut() {
                        p.fix = Some(fix_north(22_700, 60));
                    }
                },
                None,
            ),
            (
                "address geocoded in GCJ-02 is compared in WGS-84",
                |w, _| {
                    let a = &mut w.case.addresses[0];
                    a.position = a.position.to_datum(Datum::Gcj02);
                },
                None,
            ),
            (
                "partner phone with a mock location blocks check-in",
                |_, i| {
                    if let Some(f) = i.partner.as_mut().and_then(|p| p.fix.as_mut()) {
                        f.mock = true;
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "partner phone without a fix blocks check-in",
                |_, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.fix = None;
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "phones 80 m apart block check-in",
                |_, i| {
                    if let Some(p) = i.partner.as_mut() {
                        p.fix = Some(fix_north(-5_200, 10));
                    }
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v06_the_authorisation_letter_must_be_valid() {
    run(
        RuleId::V06,
        &[
            ("letter valid for another month", |_, _| {}, None),
            (
                "expired letter blocks check-in",
                |w, _| w.approval.letter.valid_until_ms = shanghai(0, 0),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v11_a_health_flag_needs_the_managers_review_before_the_next_visit() {
    run(
        RuleId::V11,
        &[
            ("no health flag on the case", |_, _| {}, None),
            (
                "pregnancy flagged without review blocks check-in",
                |w, _| w.case.health_flag = Some(HealthFlag::Pregnancy),
                Some(Outcome::Block),
            ),
            (
                "serious illness flagged and reviewed by the manager",
                |w, _| {
                    w.case.health_flag = Some(HealthFlag::SeriousIllness);
                    w.approval.health_review_done = true;
                },
                None,
            ),
        ],
    );
}

#[test]
fn e03_sealed_visits_must_be_uploaded_before_new_check_ins() {
    run(
        RuleId::E03,
        &[
            ("nothing waiting for upload", |_, _| {}, None),
            (
                "a visit sealed 2 h ago is fine",
                |w, _| w.unsent_sealed_at_ms = vec![shanghai(8, 0)],
                None,
            ),
            (
                "a visit sealed 20 h ago warns: deadline near",
                |w, _| w.unsent_sealed_at_ms = vec![shanghai(10, 0) - 20 * HOUR],
                Some(Outcome::Warn),
            ),
            (
                "a visit sealed 25 h ago and not uploaded blocks check-in",
                |w, _| w.unsent_sealed_at_ms = vec![shanghai(8, 0), shanghai(10, 0) - 25 * HOUR],
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn d01_only_cases_assigned_to_this_agent_are_worked() {
    run(
        RuleId::D01,
        &[
            ("case assigned to this agent", |_, _| {}, None),
            (
                "case no longer assigned blocks check-in",
                |w, _| w.assigned.clear(),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn messages_name_what_to_do_without_personal_data() {
    let mut world = World::new();
    world.case.status = CaseStatus::Settled;
    world.anchor = None;
    let mut input = world.check_in_input();
    input.fix = Some(fix_north(27_000, 10));
    input.partner = None;
    let violations = world.check_in(&input);
    assert!(has_blocking(&violations));
    for v in &violations {
        assert!(!v.message.is_empty());
        assert!(!v.message.contains("张三") && !v.message.contains("人民大道"));
        assert!(!v.message.contains(&world.case.case_ref));
    }
}
