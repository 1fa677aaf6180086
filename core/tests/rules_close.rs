//! Rules at the end of a visit and at sync: check-out, seal, upload deadline, purge.
//! Actors: a lone agent, an insider altering the record, a thief with a lost phone.

mod rules_support;

use std::path::{Path, PathBuf};

use rules_support::*;
use tandem_core::crypto::{Digest, SignatureAlgorithm, Signer, SoftwareSigner, sha256};
use tandem_core::model::{
    AgentId, BankId, CaseId, DerivedBlob, DeviceId, EventKind, Policy, TeamMember, VisitId,
    VisitState,
};
use tandem_core::rules::{
    CheckOutInput, HeldVisit, Outcome, PartnerPresence, PurgePlan, RuleId, SealInput, SealSigner,
    check_check_out, check_seal, check_upload_deadlines, purge_plan,
};

/// Checked in together at 10:00, recorded 30 min of audio, now 10:30.
fn visited() -> World {
    let mut world = World::new();
    world.record_check_in();
    world.record_audio(0, shanghai(10, 0), 15 * MINUTE);
    world.record_audio(1, shanghai(10, 15), 15 * MINUTE);
    world.clock.advance_ms(30 * MINUTE);
    world
}

fn with_partner(w: &World) -> CheckOutInput {
    CheckOutInput {
        partner: Some(PartnerPresence {
            agent_id: w.partner,
            device_id: w.partner_device,
            fix: Some(fix_north(3_000, 12)),
        }),
        audio_open_since_ms: None,
    }
}

type CheckOutScenario = (
    &'static str,
    fn(&mut World, &mut CheckOutInput),
    Option<Outcome>,
);

fn run_check_out(rule: RuleId, table: &[CheckOutScenario]) {
    for (name, change, expected) in table {
        let mut world = visited();
        let mut input = with_partner(&world);
        change(&mut world, &mut input);
        let violations = check_check_out(&world.ctx(), &input);
        assert_rule(name, &violations, rule, *expected);
    }
}

#[test]
fn v03_the_partner_of_check_in_checks_out_together() {
    run_check_out(
        RuleId::V03,
        &[
            ("the same partner on the same phone", |_, _| {}, None),
            (
                "checking out alone blocks",
                |_, i| i.partner = None,
                Some(Outcome::Block),
            ),
            (
                "another team member than at check-in blocks",
                |w, i| {
                    let (agent_id, device_id) = (AgentId::new(), DeviceId::new());
                    let (signer, _) =
                        SoftwareSigner::generate(SignatureAlgorithm::Ed25519).expect("key");
                    w.approval.team.push(TeamMember {
                        agent_id,
                        device_id,
                        public_key: signer.public_key(),
                    });
                    i.partner = Some(PartnerPresence {
                        agent_id,
                        device_id,
                        fix: None,
                    });
                },
                Some(Outcome::Block),
            ),
            (
                "a visit never checked in cannot be checked out",
                |w, _| w.events.clear(),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v07_check_out_reports_audio_gaps_since_check_in() {
    run_check_out(
        RuleId::V07,
        &[
            ("audio ran from check-in to check-out", |_, _| {}, None),
            (
                "a two-minute gap is reported at check-out",
                |w, _| {
                    w.events.truncate(2);
                    w.record_audio(1, shanghai(10, 17), 13 * MINUTE);
                },
                Some(Outcome::Warn),
            ),
            (
                "recording stopped early is reported at check-out",
                |w, _| w.events.truncate(2),
                Some(Outcome::Warn),
            ),
        ],
    );
}

/// A sealing in progress: the evidence in a content-addressed folder, the verified signers.
struct Sealing {
    store: tempfile::TempDir,
    head: Digest,
    signers: Vec<SealSigner>,
}

fn blob_path(store: &Path, digest: &Digest) -> PathBuf {
    store.join(digest.to_hex())
}

/// Checks out, takes a photo, and writes every original to the store.
fn sealing(world: &mut World) -> Sealing {
    let store = tempfile::tempdir().expect("temp dir");
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blob_path(store.path(), &digest), bytes).expect("write blob");
        digest
    };
    put(b"segment 0");
    put(b"segment 1");
    let original = put(b"\xff\xd8 a photo of the front door \xff\xd9");
    let thumbnail = put(b"\xff\xd8 thumbnail \xff\xd9");
    world.record(EventKind::Photo {
        original,
        size: 33,
        media_type: "image/jpeg".into(),
        width: 4000,
        height: 3000,
        exif_time_ms: Some(shanghai(10, 30)),
        thumbnail: DerivedBlob {
            digest: thumbnail,
            size: 15,
            media_type: "image/jpeg".into(),
        },
        interior: false,
    });
    world.record(EventKind::CheckedOut {
        partner: world.partner,
        partner_device: world.partner_device,
        partner_fix: Some(fix_north(3_000, 12)),
        cosignature: None,
    });
    let head = world
        .events
        .last()
        .and_then(|e| e.digest().ok())
        .expect("head");
    let signers = world
        .approval
        .team
        .iter()
        .map(|m| SealSigner {
            agent_id: m.agent_id,
            kid: m.public_key.kid(),
        })
        .collect();
    Sealing {
        store,
        head,
        signers,
    }
}

fn seal(world: &World, s: &Sealing) -> Vec<tandem_core::rules::Violation> {
    let store = s.store.path().to_owned();
    let has_blob = move |d: &Digest| blob_path(&store, d).is_file();
    check_seal(
        &world.ctx(),
        &SealInput {
            head: s.head,
            has_blob: &has_blob,
            signers: &s.signers,
        },
    )
}

type SealScenario = (&'static str, fn(&mut World, &mut Sealing), Option<Outcome>);

fn run_seal(rule: RuleId, table: &[SealScenario]) {
    for (name, change, expected) in table {
        let mut world = visited();
        let mut s = sealing(&mut world);
        change(&mut world, &mut s);
        let violations = seal(&world, &s);
        assert_rule(name, &violations, rule, *expected);
    }
}

#[test]
fn e01_a_seal_needs_the_whole_chain_every_blob_and_two_team_signatures() {
    run_seal(
        RuleId::E01,
        &[
            ("complete chain, blobs and signatures", |_, _| {}, None),
            (
                "an edited event blocks the seal",
                |w, _| {
                    w.events[1] = {
                        let mut e = w.events[1].clone();
                        e.at.wall_ms += 1;
                        e
                    }
                },
                Some(Outcome::Block),
            ),
            (
                "a head that is not the log's last event blocks the seal",
                |_, s| s.head = Digest::ZERO,
                Some(Outcome::Block),
            ),
            (
                "a missing audio segment blocks the seal",
                |_, s| {
                    let path = blob_path(s.store.path(), &sha256(b"segment 1"));
                    std::fs::remove_file(path).expect("remove blob");
                },
                Some(Outcome::Block),
            ),
            (
                "one signature blocks the seal",
                |_, s| s.signers.truncate(1),
                Some(Outcome::Block),
            ),
            (
                "the lead signing twice blocks the seal",
                |_, s| {
                    let lead = s.signers[0];
                    s.signers = vec![lead, lead];
                },
                Some(Outcome::Block),
            ),
            (
                "a partner signature by a key not enrolled for them blocks the seal",
                |_, s| {
                    let (signer, _) =
                        SoftwareSigner::generate(SignatureAlgorithm::Ed25519).expect("key");
                    s.signers[1].kid = signer.public_key().kid();
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v07_every_audio_gap_is_flagged_at_seal() {
    run_seal(
        RuleId::V07,
        &[
            ("audio throughout the visit", |_, _| {}, None),
            (
                "a gap with its reason is still flagged for review",
                |w, s| {
                    let mut world = visited();
                    world.events.truncate(2);
                    world.record(EventKind::AudioGap {
                        from_ms: shanghai(10, 15),
                        until_ms: shanghai(10, 20),
                        reason: "debtor asked to pause".into(),
                    });
                    world.record_audio(1, shanghai(10, 20), 10 * MINUTE);
                    *s = sealing(&mut world);
                    *w = world;
                },
                Some(Outcome::Flag),
            ),
            (
                "a gap without a reason is flagged",
                |w, s| {
                    let mut world = visited();
                    world.events.truncate(2);
                    world.record_audio(1, shanghai(10, 20), 10 * MINUTE);
                    *s = sealing(&mut world);
                    *w = world;
                },
                Some(Outcome::Flag),
            ),
        ],
    );
}

#[test]
fn e03_sync_warns_as_the_upload_deadline_nears_and_blocks_past_it() {
    let policy = Policy::defaults(BankId::new());
    let now = shanghai(10, 0);
    let table: [(&str, Vec<i64>, Option<Outcome>); 5] = [
        ("nothing waiting", vec![], None),
        ("sealed 12 h ago", vec![now - 12 * HOUR], None),
        (
            "sealed 18 h ago: last quarter warns",
            vec![now - 18 * HOUR],
            Some(Outcome::Warn),
        ),
        (
            "sealed exactly 24 h ago: still warns",
            vec![now - 24 * HOUR],
            Some(Outcome::Warn),
        ),
        (
            "sealed 24 h and a minute ago blocks check-ins",
            vec![now - 24 * HOUR - MINUTE, now - HOUR],
            Some(Outcome::Block),
        ),
    ];
    for (name, sealed, expected) in table {
        let violations = check_upload_deadlines(&policy, now, &sealed);
        assert_rule(name, &violations, RuleId::E03, expected);
    }
}

#[test]
fn d01_purge_only_verified_media_and_cases_no_longer_assigned() {
    let (kept, ended, ended_pending) = (CaseId::new(), CaseId::new(), CaseId::new());
    let visit = |case_id, state, receipt_verified| HeldVisit {
        visit_id: VisitId::new(),
        case_id,
        state,
        receipt_verified,
    };
    let acknowledged = visit(kept, VisitState::Acknowledged, true);
    let uploading = visit(kept, VisitState::Uploading, false);
    let unverified = visit(kept, VisitState::Acknowledged, false);
    let ended_done = visit(ended, VisitState::Purged, true);
    let ended_sealed = visit(ended_pending, VisitState::Sealed, false);
    let plan = purge_plan(
        &[
            acknowledged,
            uploading,
            unverified,
            ended_done,
            ended_sealed,
        ],
        &[kept, ended, ended_pending],
        &[kept],
    );
    assert_eq!(
        plan,
        PurgePlan {
            media: vec![acknowledged.visit_id],
            cases: vec![ended],
            cases_waiting: vec![ended_pending],
        }
    );
    // Nothing assigned any more and nothing pending: everything goes.
    let plan = purge_plan(&[ended_done], &[ended], &[]);
    assert_eq!(plan.cases, vec![ended]);
    // Everything assigned and not yet acknowledged: nothing goes.
    let plan = purge_plan(&[uploading], &[kept], &[kept]);
    assert_eq!(plan, PurgePlan::default());
}
