//! What the system refuses, end to end: two real phones and a real server (SQLite and
//! PostgreSQL), each refusal asserting its rule id (DOMAIN.md) and naming the actor it
//! stops (THREATS.md). A refusal writes nothing: the visit stays where it was.

use tandem_core::model::{DisputeKind, VisitState};
use tandem_core::phone::VisitAction;
use tandem_core::rules::RuleId;
use tandem_e2e::field::{TeamSpec, blocked_by};
use tandem_e2e::{Console, HOUR_MS, Server, SimPhone, Team, backends};
use tandem_server::db::Role;

/// Runs `scenario` on every backend with a fresh server, a signed-in manager and a
/// folder for the phones.
fn on_every_backend(scenario: impl Fn(&Server, &Console, &std::path::Path)) {
    for backend in backends() {
        let server = Server::start(backend);
        let manager = server.console(Role::Manager);
        let root = tempfile::tempdir().unwrap();
        scenario(&server, &manager, root.path());
    }
}

#[test]
fn one_agent_alone_is_refused_by_the_server_and_by_the_phones() {
    // Actor: a lone agent who wants to visit alone (V03). The manager's console cannot
    // approve a team of one, and with a team of two the lead's own phone cannot stand in
    // for the partner's.
    on_every_backend(|server, manager, root| {
        let now = server.now_ms();
        let alone = SimPhone::enrolled(&root.join("alone"), &server.base, now, server.code(2));
        let case = &manager.cases()[0];
        let (status, problem) = manager
            .approve_visit(server.now_ms(), &case.id, &[alone.ids().1], None)
            .expect_err("a team of one is refused");
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["rule"], "V03", "{problem}");

        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        let shown = team.lead.phone.begin_check_in(team.visit, None).unwrap();
        assert_eq!(
            blocked_by(team.lead.phone.review_challenge(&shown)),
            RuleId::V03
        );
        assert_eq!(team.state(), VisitState::Assigned, "{}", server.label);
    });
}

#[test]
fn a_phone_clock_moved_into_visiting_hours_does_not_fake_them() {
    // Actor: an agent who cheats the clock, visiting at 22:30 with both phones set back to
    // 10:00. Visiting hours are judged on the server-anchored time (V04).
    on_every_backend(|server, manager, root| {
        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        let shown_time = team.lead.clock_wall();
        team.wait(12 * HOUR_MS + 30 * 60_000);
        for phone in [&team.lead, &team.partner] {
            phone.clock.set_wall_ms(shown_time);
        }
        assert_eq!(blocked_by(team.check_in()), RuleId::V04, "{}", server.label);
        assert_eq!(team.state(), VisitState::Assigned);
    });
}

#[test]
fn a_mock_location_blocks_check_in() {
    // Actor: an agent faking presence from home with a mock-location app (V05).
    on_every_backend(|server, manager, root| {
        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        let mut fake = tandem_e2e::field::fix_near(&team.address, 10, 5, team.lead.clock_wall());
        fake.mock = true;
        team.lead.location.set(Some(fake));
        assert_eq!(blocked_by(team.check_in()), RuleId::V05, "{}", server.label);
        team.lead.location.set(None);
        assert_eq!(blocked_by(team.check_in()), RuleId::V05, "{}", server.label);
        assert_eq!(team.state(), VisitState::Assigned);
    });
}

#[test]
fn cash_is_refused_without_the_banks_authorisation() {
    // Actor: an agent pocketing a cash payment the bank never authorised (C01).
    on_every_backend(|server, manager, root| {
        let spec = TeamSpec {
            cash_limit_fen: None,
            ..TeamSpec::default()
        };
        let team = Team::assemble(server, manager, root, &spec);
        team.check_in().expect("check-in");
        let events = team.lead.phone.events(team.visit).unwrap().len();
        assert_eq!(
            blocked_by(team.receipt(50_000)),
            RuleId::C01,
            "{}",
            server.label
        );
        assert_eq!(team.lead.phone.events(team.visit).unwrap().len(), events);
    });
}

#[test]
fn no_receipt_is_issued_after_a_dispute() {
    // Actor: an agent collecting from a card holder who disputes the debt (V10: collection
    // stops at a dispute).
    on_every_backend(|server, manager, root| {
        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        team.check_in().expect("check-in");
        team.lead
            .phone
            .record(
                team.visit,
                &VisitAction::Dispute {
                    kind: DisputeKind::DisputesAmount,
                    statement: None,
                    id_front: None,
                    id_back: None,
                },
            )
            .expect("dispute recorded");
        let events = team.lead.phone.events(team.visit).unwrap().len();
        assert_eq!(
            blocked_by(team.receipt(10_000)),
            RuleId::V10,
            "{}",
            server.label
        );
        assert_eq!(team.lead.phone.events(team.visit).unwrap().len(), events);
    });
}

#[test]
fn a_visit_left_unsynced_past_the_deadline_blocks_the_next_check_in() {
    // Actor: an agent sitting on evidence (keeping a sealed visit off the server). Past the
    // upload deadline (E03, 24 h) no new visit may start until it is uploaded.
    on_every_backend(|server, manager, root| {
        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        // A second visit for the same team, synced before the first goes missing.
        let next_case = manager.cases().swap_remove(1);
        let next = manager
            .approve_visit(
                server.now_ms(),
                &next_case.id,
                &[team.lead.ids().1, team.partner.ids().1],
                None,
            )
            .expect("second approval");
        team.lead.sync().unwrap();
        team.partner.sync().unwrap();
        team.record_visit(3, &["mobile-jolla.jpg"], None);
        // The lead's phone stays offline for a day and an hour.
        team.wait(25 * HOUR_MS);
        let status = team.lead.phone.sync_status().unwrap();
        assert_eq!(status.outbox.pending, 1);
        assert!(
            status.deadlines.iter().any(|v| v.rule == RuleId::E03),
            "the sync screen shows the missed deadline: {status:?}"
        );
        // The team is at the next address, with fresh fixes.
        team.lead.stand_near(&next_case.address, 15, 8);
        team.partner.stand_near(&next_case.address, 25, 8);
        let next: tandem_core::model::VisitId = next.parse().unwrap();
        let second = team.co_sign(team.lead.phone.begin_check_in(next, None));
        assert_eq!(blocked_by(second), RuleId::E03, "{}", server.label);
        // Uploading clears it: the sealed visit reaches the server and is acknowledged.
        let report = team.lead.sync().expect("sync");
        assert_eq!(report.pushed.acknowledged, 1, "{report:?}");
        assert_eq!(report.status.outbox.pending, 0);
        assert!(
            !report
                .status
                .deadlines
                .iter()
                .any(|v| v.rule == RuleId::E03)
        );
    });
}

#[test]
fn evidence_the_server_quarantines_stays_on_the_phone_and_is_reported() {
    // Actor: a thief who stole the partner's phone, reported it, and got it revoked before
    // the visit it co-signed. The server keeps the evidence but quarantines it
    // for review; the lead's phone keeps every byte and shows the quarantine.
    on_every_backend(|server, manager, root| {
        let admin = server.console(Role::Admin);
        let team = Team::assemble(server, manager, root, &TeamSpec::default());
        let (partner_device, _) = team.partner.ids();
        let (status, body) = admin.call(
            "POST",
            &format!("/v1/devices/{partner_device}/revoke"),
            Some(serde_json::json!({"reason": "reported stolen"})),
        );
        assert!(matches!(status, 200 | 204), "{status} {body}");
        // The phones are offline: they co-sign a visit after the revocation, not knowing.
        team.wait(1_000);
        team.record_visit(3, &["mobile-jolla.jpg"], None);
        let held = team.sealed_blobs();
        let report = team.lead.sync().expect("sync");
        let label = server.label;
        assert_eq!(report.pushed.quarantined, 1, "{label}: {report:?}");
        assert_eq!(report.pushed.acknowledged, 0, "{label}");
        assert_eq!(
            report.purged_visits, 0,
            "{label}: quarantined evidence is never purged"
        );
        let status = team.lead.phone.sync_status().unwrap();
        assert_eq!(
            (status.outbox.pending, status.outbox.quarantined),
            (0, 1),
            "{label}"
        );
        let reason = status.outbox.quarantine_reason.expect("a reason to show");
        assert!(reason.contains("quarantined"), "{label}: {reason}");
        assert!(
            team.lead_holds(&held).0,
            "{label}: every byte stays on the phone"
        );
        let legal = server.console(Role::Legal);
        let bundles = legal.visit_bundles(&team.visit_text);
        assert_eq!(bundles.len(), 1, "{label}");
        assert_eq!(
            bundles[0].1, "quarantined",
            "{label}: kept on the server too"
        );
        // Retrying changes nothing: the job is final until someone reviews it.
        let again = team.lead.sync().expect("sync again");
        assert_eq!(again.pushed, Default::default(), "{label}");
        println!("{label}: quarantined because {reason}");
    });
}
