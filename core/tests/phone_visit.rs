//! A visit on the phone, end to end through store, rules, clock, blobs and capture.
//! Each refusal names the actor it stops (THREATS.md) and asserts the rule id.

use std::path::Path;

use tandem_core::Error;
use tandem_core::model::{ConsentScope, EventKind, PersonMet, VisitState, verify_chain};
use tandem_core::phone::{Completed, VisitAction};
use tandem_core::rules::{Outcome, RuleId};
use tandem_core::testing::{Team, World, blocked_by, signature_png, tone};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/photos");

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

#[test]
fn a_full_visit_is_recorded_as_one_verified_chain() {
    let t = Team::new();
    let checked_in = t.check_in().unwrap();
    assert!(
        matches!(checked_in.event.kind, EventKind::CheckedIn { distance_m, .. } if distance_m <= 30)
    );
    assert_eq!(
        t.lead.visit(t.visit).unwrap().visit.state,
        VisitState::CheckedIn
    );

    t.lead.start_audio(t.visit, 16_000).unwrap();
    let mut closed = Vec::new();
    // 150 s of audio in 20 ms chunks: two full 60 s segments close while recording.
    for _ in 0..(150 * 50) {
        closed.extend(t.lead.push_audio(t.visit, &tone(320)).unwrap());
    }
    assert_eq!(closed.len(), 2);
    t.lead
        .record(
            t.visit,
            &VisitAction::IdentityConfirmed {
                person: PersonMet::Debtor,
            },
        )
        .unwrap();
    t.lead
        .record(
            t.visit,
            &VisitAction::Consent {
                scope: ConsentScope::InteriorPhotos,
            },
        )
        .unwrap();
    let mut photos = Vec::new();
    for name in [
        "gps-DSCN0010.jpg",
        "mobile-jolla.jpg",
        "orientation-portrait_6.jpg",
        "invalid-image00971.jpg",
        "tests-36-memory_error.jpg",
        "xmp-no_exif.jpg",
    ] {
        let captured = t.lead.capture_photo(t.visit, &photo(name), true).unwrap();
        assert!(
            captured.recorded.violations.is_empty(),
            "{name}: {:?}",
            captured.recorded.violations
        );
        photos.push(captured);
    }
    t.lead
        .record(
            t.visit,
            &VisitAction::Note {
                text: "债务人在家，同意下周还款。".into(),
            },
        )
        .unwrap();
    t.clock.advance_ms(150_000);
    t.check_out().unwrap();

    let record = t.lead.visit(t.visit).unwrap();
    assert_eq!(record.visit.state, VisitState::CheckedOut);
    let events = t.lead.events(t.visit).unwrap();
    verify_chain(t.visit, &events, record.head.map(|h| h.digest)).unwrap();
    let segments: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AudioSegment {
                digest,
                duration_ms,
                ..
            } => Some((digest, duration_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        segments.iter().map(|s| s.1).collect::<Vec<_>>(),
        [60_000, 60_000, 30_000]
    );
    for (digest, _) in &segments {
        t.lead.blobs().verify(digest).unwrap();
    }
    for p in &photos {
        t.lead.blobs().verify(&p.original).unwrap();
        t.lead.blobs().verify(&p.thumbnail).unwrap();
    }
    let gps_photo = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Photo {
                original,
                exif_time_ms,
                ..
            } if *original == photos[0].original => Some(*exif_time_ms),
            _ => None,
        })
        .unwrap();
    assert!(
        gps_photo.is_some(),
        "the Nikon photo's EXIF time is recorded"
    );
    assert!(matches!(
        events.last().unwrap().kind,
        EventKind::CheckedOut { .. }
    ));
    // Nothing of the debtor or the note is readable in the phone's files.
    for file in ["device.db", "device.db-wal"] {
        let path = t.lead.dir().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("张三") && !text.contains("下周还款"),
                "{file} leaks"
            );
        }
    }
}

#[test]
fn a_lone_agent_cannot_check_in() {
    // Actor: a lone agent who wants to visit alone. The only way in is a challenge answered
    // by another phone of the team: the lead's own phone cannot answer it, nor can an
    // enrolled phone of an agent who is not on the approved team.
    let t = Team::new();
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    assert_eq!(blocked_by(t.lead.review_challenge(&shown)), RuleId::V03);
    let outsider_dir = tempfile::tempdir().unwrap();
    let (outsider, member) = t
        .world
        .open_phone(
            outsider_dir.path(),
            t.clock.clone(),
            t.partner_location.clone(),
        )
        .unwrap();
    let approval = t.world.approval(&[&t.lead_member, &member]);
    let ticket = tandem_core::model::VisitTicket {
        visit_id: t.visit,
        ..t.world.ticket(&approval)
    };
    // The outsider holds a genuine approval of its own for the same visit id, but not the
    // one the lead's challenge names.
    t.world
        .assign(&outsider, &member, &approval, &ticket, t.world.start_ms)
        .unwrap();
    assert_eq!(blocked_by(outsider.review_challenge(&shown)), RuleId::V03);
    // A challenge fed back as its own reply is not a reply.
    assert!(t.lead.complete(&shown).is_err());
    assert_eq!(
        t.lead.visit(t.visit).unwrap().visit.state,
        VisitState::Assigned
    );
    assert!(
        t.lead.events(t.visit).unwrap().is_empty(),
        "a refusal writes nothing"
    );
}

#[test]
fn a_phone_clock_set_back_does_not_fake_visiting_hours() {
    // Actor: an agent who cheats the clock: visiting at 22:30 with the phone set to 10:00.
    let t = Team::new();
    t.clock.advance_ms(12 * 3_600_000 + 30 * 60_000);
    t.clock.set_wall_ms(t.world.start_ms);
    assert_eq!(blocked_by(t.check_in()), RuleId::V04);
}

#[test]
fn a_mock_location_blocks_check_in() {
    // Actor: an agent faking presence from home with a mock-location app.
    let t = Team::new();
    let mut fake = t.world.fix_near_address(10, 5);
    fake.mock = true;
    t.lead_location.set(Some(fake));
    assert_eq!(blocked_by(t.check_in()), RuleId::V05);
    t.lead_location.set(None);
    assert_eq!(blocked_by(t.check_in()), RuleId::V05);
}

#[test]
fn checking_in_outside_the_fence_needs_a_reason_and_is_flagged() {
    // Actor: an agent sitting 2 km away.
    let t = Team::new();
    t.lead_location
        .set(Some(t.world.fix_near_address(2_000, 10)));
    t.partner_location
        .set(Some(t.world.fix_near_address(2_010, 10)));
    assert_eq!(blocked_by(t.check_in()), RuleId::V05);
    let recorded = t
        .check_in_with(Some("debtor asked to meet at the community office"))
        .unwrap();
    assert!(
        recorded
            .violations
            .iter()
            .any(|v| v.rule == RuleId::V05 && v.outcome == Outcome::Flag)
    );
    let events = t.lead.events(t.visit).unwrap();
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::RuleFlag {
            rule: RuleId::V05,
            outcome: Outcome::Flag,
            ..
        }
    )));
}

#[test]
fn a_refused_photo_leaves_nothing_behind() {
    // Actor: anyone sending bad input.
    let t = Team::new();
    t.check_in().unwrap();
    let before = t.lead.events(t.visit).unwrap().len();
    let mut truncated = photo("gps-DSCN0010.jpg");
    truncated.truncate(truncated.len() / 2);
    for bytes in [b"not a photo at all".to_vec(), truncated] {
        let err = t.lead.capture_photo(t.visit, &bytes, false).unwrap_err();
        assert!(matches!(err, Error::Photo(_)), "{err}");
    }
    assert_eq!(t.lead.events(t.visit).unwrap().len(), before);
    let stored = walk(&t.lead.dir().join("blobs"));
    assert_eq!(stored, 0, "no blob was kept for a refused photo");
}

fn walk(dir: &Path) -> usize {
    let mut blobs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "tmp") {
            blobs += walk(&path);
        } else if path.file_name().is_some_and(|n| n.len() == 64) {
            blobs += 1;
        }
    }
    blobs
}

#[test]
fn an_interior_photo_without_consent_is_flagged_not_refused() {
    let t = Team::new();
    t.check_in().unwrap();
    let captured = t
        .lead
        .capture_photo(t.visit, &photo("mobile-jolla.jpg"), true)
        .unwrap();
    assert!(
        captured
            .recorded
            .violations
            .iter()
            .any(|v| v.rule == RuleId::V08 && v.outcome == Outcome::Flag)
    );
}

#[test]
fn audio_left_open_by_a_crash_is_recovered_with_its_gap() {
    let t = Team::new();
    t.check_in().unwrap();
    t.lead.start_audio(t.visit, 16_000).unwrap();
    for _ in 0..100 {
        t.lead.push_audio(t.visit, &tone(320)).unwrap();
    }
    let dir = t.lead.dir().to_owned();
    // The app dies: the recorder is never finished.
    drop(t.lead);
    let reopened = World::reopen_phone(&dir, t.clock.clone(), t.lead_location.clone()).unwrap();
    let events = reopened.events(t.visit).unwrap();
    let segment = events.iter().find_map(|e| match e.kind {
        EventKind::AudioSegment {
            duration_ms,
            recovered,
            digest,
            ..
        } => Some((duration_ms, recovered, digest)),
        _ => None,
    });
    let (duration_ms, recovered, digest) = segment.expect("the open segment was recovered");
    assert!(recovered);
    assert_eq!(duration_ms, 2_000, "every pushed sample survived");
    reopened.blobs().verify(&digest).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AudioGap { .. }))
    );
}

#[test]
fn an_assignment_for_another_agent_is_not_kept() {
    // Actor: a user without need for this debtor's data (D01).
    let t = Team::new();
    let outsider_dir = tempfile::tempdir().unwrap();
    let (outsider, member) = t
        .world
        .open_phone(
            outsider_dir.path(),
            t.clock.clone(),
            t.lead_location.clone(),
        )
        .unwrap();
    let approval = t.world.approval(&[&t.lead_member, &t.partner_member]);
    let ticket = t.world.ticket(&approval);
    assert_eq!(
        blocked_by(
            t.world
                .assign(&outsider, &member, &approval, &ticket, t.world.start_ms)
        ),
        RuleId::D01
    );
}

#[test]
fn a_forged_approval_is_refused() {
    // Actor: a colluding pair inventing a visit with an approval the server never signed.
    let t = Team::new();
    let forger = World::new();
    let approval = t.world.approval(&[&t.lead_member, &t.partner_member]);
    let ticket = t.world.ticket(&approval);
    let err = t
        .lead
        .accept_assignment(
            &t.world.sign(&t.world.case),
            &forger.sign(&approval),
            &t.world.sign(&ticket),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
}

#[test]
fn a_sealed_visit_not_uploaded_in_time_blocks_the_next_check_in() {
    // E03: evidence must reach the server within 24 h.
    let t = Team::new();
    t.check_in().unwrap();
    t.check_out().unwrap();
    let sealed_at = t.lead.now().unwrap().best_ms();
    t.lead
        .store()
        .write(|tx| {
            tx.set_visit_state(t.visit, VisitState::Sealed, sealed_at)
                .map(|_| ())
        })
        .unwrap();
    let approval = t.world.approval(&[&t.lead_member, &t.partner_member]);
    let ticket = t.world.ticket(&approval);
    t.clock.advance_ms(25 * 3_600_000);
    let next = t
        .world
        .assign(
            &t.lead,
            &t.lead_member,
            &approval,
            &ticket,
            t.world.start_ms + 25 * 3_600_000,
        )
        .unwrap();
    t.world
        .assign(
            &t.partner,
            &t.partner_member,
            &approval,
            &ticket,
            t.world.start_ms + 25 * 3_600_000,
        )
        .unwrap();
    // Refused before any challenge is shown: the partner is never asked to co-sign.
    let result = t.lead.begin_check_in(next, None);
    match result {
        Err(Error::Blocked { violations }) => {
            assert!(
                violations
                    .iter()
                    .any(|v| v.rule == RuleId::E03 && v.outcome == Outcome::Block)
            )
        }
        other => panic!("expected E03, got {other:?}"),
    }
}

#[test]
fn media_are_purged_only_after_the_verified_receipt() {
    // Actor: a thief with a lost phone (D01: nothing kept longer than needed).
    let t = Team::new();
    t.check_in().unwrap();
    let captured = t
        .lead
        .capture_photo(t.visit, &photo("gps-DSCN0010.jpg"), false)
        .unwrap();
    t.check_out().unwrap();
    let plan = t.lead.purge(&[t.world.case.id]).unwrap();
    assert!(plan.media.is_empty(), "not acknowledged: nothing purged");
    assert!(t.lead.blobs().contains(&captured.original).unwrap());
    let now = t.lead.now().unwrap().best_ms();
    t.lead
        .store()
        .write(|tx| {
            for state in [
                VisitState::Sealed,
                VisitState::Uploading,
                VisitState::Acknowledged,
            ] {
                tx.set_visit_state(t.visit, state, now)?;
            }
            Ok::<_, tandem_core::store::StoreError>(())
        })
        .unwrap();
    let plan = t.lead.purge(&[]).unwrap();
    assert_eq!(plan.media, vec![t.visit]);
    assert_eq!(plan.cases, vec![t.world.case.id]);
    assert!(!t.lead.blobs().contains(&captured.original).unwrap());
    assert!(!t.lead.blobs().contains(&captured.thumbnail).unwrap());
    assert_eq!(
        t.lead.visit(t.visit).unwrap().visit.state,
        VisitState::Purged
    );
}

#[test]
fn two_phones_check_in_and_out_through_qr_frames() {
    let t = Team::new();
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    assert_eq!(review.summary().lead_agent, t.lead_member.agent);
    let reply = t.partner.answer_challenge(&review).unwrap();
    // Frames may be scanned in any order.
    let mut scanned = reply.clone();
    scanned.reverse();
    let completed = t.lead.complete(&scanned).unwrap();
    let tandem_core::phone::Completed::CheckedIn(recorded) = completed else {
        panic!("expected a check-in")
    };
    let EventKind::CheckedIn {
        partner,
        cosignature: Some(cosignature),
        ..
    } = &recorded.event.kind
    else {
        panic!("check-in without co-signature")
    };
    assert_eq!(*partner, t.partner_member.agent);
    // Anyone can check the partner's signature later from the event alone.
    cosignature
        .partner
        .verify(
            &t.partner_member.key,
            "check-in",
            cosignature.statement.as_bytes(),
        )
        .unwrap();
    cosignature
        .lead
        .verify(
            &t.lead_member.key,
            "check-in",
            cosignature.statement.as_bytes(),
        )
        .unwrap();

    let shown = t.lead.begin_check_out(t.visit).unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    let reply = t.partner.answer_challenge(&review).unwrap();
    assert!(matches!(
        t.lead.complete(&reply).unwrap(),
        tandem_core::phone::Completed::CheckedOut(_)
    ));
    assert_eq!(
        t.lead.visit(t.visit).unwrap().visit.state,
        VisitState::CheckedOut
    );
}

#[test]
fn a_challenge_is_answered_only_once() {
    // Actor: a network or colluding agent replaying a shown code.
    let t = Team::new();
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    t.partner.answer_challenge(&review).unwrap();
    let err = t.partner.answer_challenge(&review).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(tandem_core::handshake::HandshakeError::ReplayedNonce)
        ),
        "{err}"
    );
    let err = t.partner.review_challenge(&shown).err().unwrap();
    assert!(
        matches!(
            err,
            Error::Handshake(tandem_core::handshake::HandshakeError::ReplayedNonce)
        ),
        "{err}"
    );
}

#[test]
fn a_phone_cannot_co_sign_its_own_challenge() {
    // Actor: a lone agent holding both roles on one phone.
    let t = Team::new();
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    let err = t.lead.review_challenge(&shown).err().unwrap();
    assert_eq!(err.blocking_rule(), Some(RuleId::V03), "{err}");
}

#[test]
fn a_partner_too_far_away_cannot_co_sign() {
    // Actor: a colluding partner signing from elsewhere.
    let t = Team::new();
    t.partner_location
        .set(Some(t.world.fix_near_address(400, 10)));
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    let err = t.partner.review_challenge(&shown).err().unwrap();
    assert_eq!(err.blocking_rule(), Some(RuleId::V05), "{err}");
}

/// Runs one co-signing between the two phones, the way the shells would: show, scan, show.
fn cosign(t: &Team, shown: Vec<String>) -> Completed {
    let review = t.partner.review_challenge(&shown).unwrap();
    let reply = t.partner.answer_challenge(&review).unwrap();
    t.lead.complete(&reply).unwrap()
}

#[test]
fn a_sealed_visit_exports_as_a_bundle_that_verifies() {
    use tandem_core::bundle::{
        BlobRole, CheckName, CheckResult, DeviceEnrolment, ExportTarget, FolderSource, Trust,
        verify_bundle, write_export,
    };
    use tandem_core::model::{Fen, Payer, PaymentMethod};
    let t = Team::approved(|w, m| w.approval_with_cash(m, Fen(500_000)));
    t.lead
        .accept_serial_range(&t.world.serial_range(t.lead_member.device, 1, 50))
        .unwrap();
    cosign(&t, t.lead.begin_check_in(t.visit, None).unwrap());
    t.lead
        .record(
            t.visit,
            &VisitAction::IdentityConfirmed {
                person: PersonMet::Debtor,
            },
        )
        .unwrap();
    let receipt = tandem_core::phone::ReceiptRequest {
        payer: Payer {
            role: PersonMet::Debtor,
            name: "张三".into(),
        },
        amount: Fen(120_000),
        method: PaymentMethod::Cash,
        payer_signature_png: signature_png(),
    };
    cosign(&t, t.lead.begin_receipt(t.visit, &receipt).unwrap());
    t.lead.start_audio(t.visit, 16_000).unwrap();
    for _ in 0..(70 * 50) {
        t.lead.push_audio(t.visit, &tone(320)).unwrap();
    }
    t.lead
        .capture_photo(t.visit, &photo("orientation-portrait_6.jpg"), false)
        .unwrap();
    t.lead
        .record(
            t.visit,
            &VisitAction::Note {
                text: "门口交谈，未入户。".into(),
            },
        )
        .unwrap();
    t.clock.advance_ms(70_000);
    cosign(&t, t.lead.begin_check_out(t.visit).unwrap());
    let completed = cosign(&t, t.lead.begin_seal(t.visit).unwrap());
    let tandem_core::phone::Completed::Sealed(seal) = completed else {
        panic!("not sealed")
    };
    assert_eq!(seal.device_seq, 0);
    assert_eq!(
        t.lead.visit(t.visit).unwrap().visit.state,
        VisitState::Sealed
    );
    // Sealed means immutable: nothing more can be recorded.
    assert!(
        t.lead
            .record(
                t.visit,
                &VisitAction::Note {
                    text: "later".into()
                }
            )
            .is_err()
    );

    let bundle = t.lead.sealed_bundle(t.visit).unwrap();
    assert_eq!(bundle.manifest.device.seq, 0);
    assert_eq!(
        bundle.manifest.blobs.len(),
        5,
        "photo, thumbnail, two audio segments, payer signature"
    );
    assert!(
        bundle
            .manifest
            .blobs
            .iter()
            .any(|b| b.role == BlobRole::Signature)
    );
    let out = tempfile::tempdir().unwrap();
    let export = out.path().join("bundle");
    write_export(
        &bundle,
        t.lead.blobs(),
        Some(&t.world.server_key()),
        ExportTarget::Folder(&export),
    )
    .unwrap();
    let mut trust = Trust::none();
    trust.server_keys.push(t.world.server_key());
    for m in [&t.lead_member, &t.partner_member] {
        trust.devices.insert(
            m.key.kid(),
            DeviceEnrolment {
                agent_id: m.agent,
                device_id: m.device,
                enrolled_at_ms: t.world.start_ms - 86_400_000,
                revoked_at_ms: None,
            },
        );
    }
    let report = verify_bundle(&FolderSource::new(&export), &trust);
    for check in &report.checks {
        assert!(
            !check.result.is_fail(),
            "{:?}: {}",
            check.name,
            check.result.detail()
        );
    }
    assert!(report.is_valid());
    assert_eq!(*report.result(CheckName::Signatures), CheckResult::Pass);
    assert_eq!(*report.result(CheckName::EventChain), CheckResult::Pass);
}

#[test]
fn sealing_queues_the_bundle_in_the_outbox_and_its_job_only_moves_forward() {
    use tandem_core::store::{Stage, StoreError};
    let t = Team::new();
    t.check_in().unwrap();
    t.lead
        .capture_photo(t.visit, &photo("gps-DSCN0010.jpg"), false)
        .unwrap();
    t.check_out().unwrap();
    let completed = cosign(&t, t.lead.begin_seal(t.visit).unwrap());
    let tandem_core::phone::Completed::Sealed(seal) = completed else {
        panic!("not sealed")
    };
    let bundle = t.lead.sealed_bundle(t.visit).unwrap();
    let store = t.lead.store();

    // Queued in the seal's own transaction, with every blob of the manifest.
    let job = store
        .read(|tx| tx.push_job(seal.bundle_id))
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.stage, job.visit_id, job.attempts),
        (Stage::Manifest, t.visit, 0)
    );
    let total: u64 = bundle.manifest.blobs.iter().map(|b| b.size).sum();
    assert_eq!((job.bytes_total, job.bytes_done), (total, 0));
    let blobs = store.read(|tx| tx.job_blobs(seal.bundle_id)).unwrap();
    assert_eq!(
        blobs.iter().map(|b| b.digest).collect::<Vec<_>>(),
        bundle
            .manifest
            .blobs
            .iter()
            .map(|b| b.sha256)
            .collect::<Vec<_>>()
    );
    let status = store.read(|tx| tx.outbox_status()).unwrap();
    assert_eq!((status.pending, status.bytes_left), (1, total));
    assert_eq!(status.oldest_pending_sealed_ms, Some(seal.sealed_at_ms));

    // A failure waits; progress clears it; a blob confirmed twice counts once.
    let now = job.enqueued_ms;
    store
        .write(|tx| tx.record_push_failure(seal.bundle_id, "network: reset", now + 4_000))
        .unwrap();
    assert!(store.read(|tx| tx.due_push_jobs(now)).unwrap().is_empty());
    assert_eq!(
        store
            .read(|tx| tx.due_push_jobs(now + 4_000))
            .unwrap()
            .len(),
        1
    );
    store
        .write(|tx| {
            tx.set_push_stage(seal.bundle_id, Stage::Blobs, now)?;
            tx.mark_blob_uploaded(seal.bundle_id, &blobs[0].digest, now)?;
            tx.mark_blob_uploaded(seal.bundle_id, &blobs[0].digest, now)
        })
        .unwrap();
    let job = store
        .read(|tx| tx.push_job(seal.bundle_id))
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.bytes_done, job.attempts, job.last_error),
        (blobs[0].size, 0, None)
    );

    // Acknowledged is final, and no job is ever deleted (evidence is never forgotten).
    store
        .write(|tx| tx.set_push_stage(seal.bundle_id, Stage::Done, now))
        .unwrap();
    let back = store.write(|tx| tx.set_push_stage(seal.bundle_id, Stage::Blobs, now));
    assert!(matches!(back, Err(StoreError::Sqlite(_))), "{back:?}");
    let status = store.read(|tx| tx.outbox_status()).unwrap();
    assert_eq!((status.pending, status.done, status.bytes_left), (0, 1, 0));
}

#[test]
fn a_phone_clock_eight_hours_off_is_shown_to_the_agent_and_flagged_on_the_visit() {
    // Actor: an agent who cheats the clock — or a phone whose clock is simply wrong: the
    // anchored time counts (V04 stays judged by it), and the difference is V15.
    let t = Team::new();
    t.clock.set_wall_ms(t.world.start_ms + 8 * 3_600_000);
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    assert!(
        review
            .warnings()
            .iter()
            .any(|v| v.rule == RuleId::V15 && v.message.contains("480 min ahead")),
        "the partner's agent is shown V15 too: {:?}",
        review.warnings()
    );
    let reply = t.partner.answer_challenge(&review).unwrap();
    let checked_in = match t.lead.complete(&reply).unwrap() {
        Completed::CheckedIn(recorded) => recorded,
        other => panic!("expected a check-in, got {other:?}"),
    };
    let warning = checked_in
        .violations
        .iter()
        .find(|v| v.rule == RuleId::V15)
        .expect("V15 shown at check-in");
    assert_eq!(warning.outcome, Outcome::Warn);
    assert!(
        warning.message.contains("480 min ahead"),
        "{}",
        warning.message
    );
    let events = t.lead.events(t.visit).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::ClockDiscrepancy { .. }))
    );
    // Reviewed from the record alone (as the server and `tandem verify` do): flagged.
    let review =
        tandem_core::rules::review_sealed_visit(t.visit, &t.world.policy, &t.approval, &events);
    assert!(
        review
            .iter()
            .any(|v| v.rule == RuleId::V15 && v.outcome == Outcome::Flag),
        "{review:?}"
    );
}

#[test]
fn a_check_in_the_lead_would_refuse_is_never_shown_to_the_partner() {
    // Actor: a lone agent — or a pair — trying to get the partner's co-signature on a
    // check-in from 5 km away without a reason, or after visiting hours.
    let t = Team::new();
    t.lead_location
        .set(Some(t.world.fix_near_address(5_000, 10)));
    t.partner_location
        .set(Some(t.world.fix_near_address(5_010, 10)));
    assert_eq!(
        blocked_by(t.lead.begin_check_in(t.visit, None)),
        RuleId::V05
    );
    assert!(t.lead.events(t.visit).unwrap().is_empty());
    assert!(t.partner.events(t.visit).unwrap().is_empty());
    // With a reason the challenge is shown, and the partner's review says how far the lead
    // is from the address and why.
    let shown = t
        .lead
        .begin_check_in(t.visit, Some("debtor asked to meet at his shop".into()))
        .unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    let check_in = review.check_in().expect("a check-in review");
    assert!(
        (4_900..=5_100).contains(&check_in.lead_distance_m),
        "{check_in:?}"
    );
    assert_eq!(check_in.fence_m, t.world.policy.geofence_radius_m);
    assert_eq!(
        check_in.outside_fence_reason.as_deref(),
        Some("debtor asked to meet at his shop")
    );
    assert!(
        review
            .warnings()
            .iter()
            .any(|v| v.rule == RuleId::V05 && v.outcome == Outcome::Flag),
        "{:?}",
        review.warnings()
    );
    // Signed with the reason: the record shows what the partner read.
    let reply = t.partner.answer_challenge(&review).unwrap();
    t.lead.complete(&reply).unwrap();
    assert!(t.lead.events(t.visit).unwrap().iter().any(|e| matches!(
        &e.kind,
        EventKind::CheckedIn { cosignature: Some(c), .. }
            if c.statement.contains("debtor asked to meet at his shop")
    )));

    let late = Team::new();
    late.clock.advance_ms(12 * 3_600_000 + 30 * 60_000);
    assert_eq!(
        blocked_by(late.lead.begin_check_in(late.visit, None)),
        RuleId::V04
    );
    assert!(late.lead.events(late.visit).unwrap().is_empty());
    assert!(late.partner.events(late.visit).unwrap().is_empty());
}

#[test]
fn the_partner_refuses_a_check_in_its_own_rules_block() {
    // Actor: a lead whose phone missed the bank's hold on the case (offline since), asking
    // a partner whose phone has it (V01): the partner's phone refuses before its agent is
    // asked to sign, and nothing is written on either phone.
    use tandem_core::model::{CaseStatus, HoldReason, VisitTicket};
    let t = Team::new();
    let mut held = t.world.case.clone();
    held.status = CaseStatus::OnHold {
        reason: HoldReason::Complaint,
    };
    let ticket = VisitTicket {
        visit_id: t.visit,
        approval_id: t.approval.id,
        nonce: "0ff1ce".into(),
        issued_at_ms: t.world.start_ms - 3_600_000,
    };
    t.partner
        .accept_assignment(
            &t.world.sign(&held),
            &t.world.sign(&t.approval),
            &t.world.sign(&ticket),
        )
        .unwrap();
    let shown = t.lead.begin_check_in(t.visit, None).unwrap();
    assert_eq!(blocked_by(t.partner.review_challenge(&shown)), RuleId::V01);
    assert!(t.lead.events(t.visit).unwrap().is_empty());
    assert!(t.partner.events(t.visit).unwrap().is_empty());
}
