//! Tampering with a sealed bundle: every change is caught, by the check that names it.
//! Actors (THREATS.md): a malicious insider or compromised server altering evidence after
//! the fact, a colluding pair re-signing what they changed, a network attacker replaying
//! an upload under a new id, anyone sending bad input.

use std::sync::OnceLock;

use tandem_core::bundle::testing::{MemorySource, SampleBundle};
use tandem_core::bundle::{
    BundleSignature, CheckName, CheckResult, Manifest, SealedBundle, SignerRole, Trust,
    VerificationReport, parse_signatures, signatures_to_bytes, verify_bundle,
};
use tandem_core::crypto::{SignatureAlgorithm, Signer, SoftwareSigner};
use tandem_core::model::{AgentId, BundleId};

struct Shared {
    sample: SampleBundle,
    sealed: SealedBundle,
    source: MemorySource,
}

/// One sample for the whole suite: key generation and sealing are done once.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let sample = SampleBundle::new().unwrap();
        let sealed = sample.seal().unwrap();
        let source = MemorySource::from_sealed(&sealed, &sample.blobs).unwrap();
        Shared {
            sample,
            sealed,
            source,
        }
    })
}

fn verify(source: &MemorySource) -> VerificationReport {
    verify_bundle(source, &shared().sample.trust)
}

#[track_caller]
fn assert_fails(report: &VerificationReport, check: CheckName) {
    assert!(!report.is_valid(), "tampered bundle accepted: {report:#?}");
    assert!(
        report.result(check).is_fail(),
        "{check} did not fail: {report:#?}"
    );
}

#[track_caller]
fn assert_only_fails(report: &VerificationReport, check: CheckName) {
    assert_fails(report, check);
    assert_eq!(report.failed(), vec![check], "{report:#?}");
}

fn with_manifest(bytes: Vec<u8>) -> MemorySource {
    let mut source = shared().source.clone();
    source.entries.insert("manifest.json".into(), bytes);
    source
}

/// A manifest edited and re-signed by both agents (what a colluding pair could produce),
/// with the trust that goes with its keys.
fn resealed(edit: impl FnOnce(&mut SampleBundle)) -> (MemorySource, Trust) {
    let mut sample = SampleBundle::new().unwrap();
    edit(&mut sample);
    let sealed = sample.seal().unwrap();
    let source = MemorySource::from_sealed(&sealed, &sample.blobs).unwrap();
    (source, sample.trust)
}

#[test]
fn the_untouched_sample_bundle_is_valid_with_every_check_named() {
    let report = verify(&shared().source);
    assert!(report.is_valid(), "{report:#?}");
    let expect = [
        (CheckName::CanonicalBytes, CheckResult::Pass),
        (CheckName::BlobDigests, CheckResult::Pass),
        (CheckName::EventChain, CheckResult::Pass),
        (CheckName::Signatures, CheckResult::Pass),
        (CheckName::ApprovalSignature, CheckResult::Pass),
        (CheckName::TicketSignature, CheckResult::Pass),
        (CheckName::Rules, CheckResult::Pass),
        (CheckName::DeviceChain, CheckResult::Pass),
        (CheckName::ServerReceipt, CheckResult::NotPresent),
        (CheckName::InclusionProof, CheckResult::NotPresent),
        (CheckName::Checkpoint, CheckResult::NotPresent),
        (CheckName::TimeWindow, CheckResult::Pass),
        (CheckName::ExportFiles, CheckResult::Pass),
        (CheckName::ExportNote, CheckResult::NotPresent),
    ];
    let got: Vec<_> = report
        .checks
        .iter()
        .map(|c| (c.name, c.result.clone()))
        .collect();
    assert_eq!(got, expect);
    assert_eq!(report.bundle_id, Some(shared().sealed.manifest.bundle_id));
}

#[test]
fn without_trust_the_checks_that_need_keys_say_not_checked_instead_of_pass() {
    let report = verify_bundle(&shared().source, &Trust::none());
    assert!(report.is_valid());
    assert!(!report.is_fully_checked());
    for check in [
        CheckName::Signatures,
        CheckName::ApprovalSignature,
        CheckName::TicketSignature,
    ] {
        match report.result(check) {
            CheckResult::NotChecked { why } => {
                assert!(why.contains("not checked (no trust given)"), "{why}")
            }
            other => panic!("{check}: {other:?}"),
        }
    }
}

#[test]
fn every_single_byte_change_of_the_manifest_is_caught() {
    let original = &shared().sealed.manifest_bytes;
    // Positions split over two threads: each change is verified from scratch.
    let check = |positions: std::ops::Range<usize>| {
        for position in positions {
            let mut bytes = original.clone();
            // A different bit at each position, so every bit position is exercised.
            bytes[position] ^= 1 << (position % 8);
            let report = verify(&with_manifest(bytes));
            assert!(!report.is_valid(), "change at byte {position} accepted");
            assert!(
                report.result(CheckName::CanonicalBytes).is_fail()
                    || report.result(CheckName::Signatures).is_fail(),
                "change at byte {position}: {:?}",
                report.failed()
            );
        }
    };
    let half = original.len() / 2;
    std::thread::scope(|scope| {
        scope.spawn(|| check(0..half));
        check(half..original.len());
    });
}

#[test]
fn every_single_byte_change_of_each_signature_is_caught() {
    let signatures = &shared().sealed.signatures;
    for which in 0..signatures.len() {
        for position in 0..signatures[which].sig.len() {
            let mut changed = signatures.clone();
            changed[which].sig[position] ^= 0x01;
            let mut source = shared().source.clone();
            source.entries.insert(
                "signatures.json".into(),
                signatures_to_bytes(&changed).unwrap(),
            );
            assert_only_fails(&verify(&source), CheckName::Signatures);
        }
    }
}

#[test]
fn a_thousand_sampled_byte_flips_across_the_blobs_are_caught() {
    let source = &shared().source;
    let names: Vec<String> = source
        .entries
        .keys()
        .filter(|k| k.starts_with("blobs/"))
        .cloned()
        .collect();
    let total: usize = names.iter().map(|n| source.entries[n].len()).sum();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..1000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut at = (state >> 16) as usize % total;
        let mut tampered = source.clone();
        for name in &names {
            let blob = tampered.entries.get_mut(name).unwrap();
            if at < blob.len() {
                blob[at] ^= 1 << (state % 8);
                break;
            }
            at -= blob.len();
        }
        assert_only_fails(&verify(&tampered), CheckName::BlobDigests);
    }
}

#[test]
fn a_removed_blob_is_reported_missing() {
    let mut source = shared().source.clone();
    let name = source
        .entries
        .keys()
        .find(|k| k.ends_with(".wav"))
        .unwrap()
        .clone();
    source.entries.remove(&name);
    let report = verify(&source);
    assert_only_fails(&report, CheckName::BlobDigests);
    assert!(
        report
            .result(CheckName::BlobDigests)
            .detail()
            .contains("missing")
    );
}

#[test]
fn an_added_blob_is_reported_extra() {
    let mut source = shared().source.clone();
    source.entries.insert(
        format!("blobs/{}.jpg", tandem_core::crypto::sha256(b"planted")),
        b"planted".to_vec(),
    );
    let report = verify(&source);
    assert_only_fails(&report, CheckName::BlobDigests);
    assert!(
        report
            .result(CheckName::BlobDigests)
            .detail()
            .contains("extra")
    );
}

#[test]
fn a_blob_swapped_with_another_bundles_is_caught() {
    let other = SampleBundle::new().unwrap();
    let other_photo = other
        .manifest
        .blobs
        .iter()
        .find(|b| b.media_type == "image/jpeg")
        .unwrap();
    let mut source = shared().source.clone();
    let ours = shared()
        .sealed
        .manifest
        .blobs
        .iter()
        .find(|b| b.media_type == "image/jpeg")
        .unwrap();
    // Under our name, the other visit's photo (same size, other bytes).
    let mut swapped = other.blobs[&other_photo.sha256].clone();
    swapped.resize(ours.size as usize, 0);
    source
        .entries
        .insert(format!("blobs/{}.jpg", ours.sha256), swapped);
    assert_only_fails(&verify(&source), CheckName::BlobDigests);
}

/// Re-encodes the manifest's canonical text with `edit` applied to its JSON text.
fn edited_text(edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let text = String::from_utf8(shared().sealed.manifest_bytes.clone()).unwrap();
    edit(&text).into_bytes()
}

#[test]
fn non_canonical_manifests_fail_canonical_bytes() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "keys reordered",
            edited_text(|t| {
                // Move "blobs" after "bundle_id": same content, wrong key order.
                let v: serde_json::Value = serde_json::from_str(t).unwrap();
                let mut out = String::from("{\"bundle_id\":");
                out.push_str(&v["bundle_id"].to_string());
                out.push_str(",\"blobs\":");
                out.push_str(&v["blobs"].to_string());
                out.push_str(&t[t.find(",\"device\"").unwrap()..]);
                out
            }),
        ),
        (
            "whitespace added",
            edited_text(|t| t.replacen(':', ": ", 1)),
        ),
        ("a float", with_float()),
        (
            "a duplicate key",
            edited_text(|t| t.replacen("{\"blobs\":", "{\"blobs\":[],\"blobs\":", 1)),
        ),
        (
            "non-NFC text",
            // 债务人在家… is NFC; append "e" + combining acute (NFD of é) to the note.
            edited_text(|t| t.replacen("同意下周还款。", "同意下周还款。e\u{301}", 1)),
        ),
    ];
    for (what, bytes) in cases {
        assert_ne!(bytes, shared().sealed.manifest_bytes, "{what}: no change");
        let report = verify(&with_manifest(bytes));
        assert_fails(&report, CheckName::CanonicalBytes);
        // Nothing else is judged on bytes that are not the ones signed.
        assert_eq!(report.failed(), vec![CheckName::CanonicalBytes], "{what}");
    }
}

/// `sealed_at_ms` written as `1795831660000.0`: the same number, as a float.
fn with_float() -> Vec<u8> {
    edited_text(|t| {
        let start = t.find("\"sealed_at_ms\":").unwrap() + "\"sealed_at_ms\":".len();
        let end = start + t[start..].find(',').unwrap();
        format!("{}{}.0{}", &t[..start], &t[start..end], &t[end..])
    })
}

#[test]
fn a_float_where_an_integer_belongs_is_refused_by_the_parser() {
    let bytes = with_float();
    let err = Manifest::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("floating-point"), "{err}");
    assert_fails(&verify(&with_manifest(bytes)), CheckName::CanonicalBytes);
}

#[test]
fn one_agent_signing_both_roles_fails_signatures() {
    let s = shared();
    let bytes = &s.sealed.manifest_bytes;
    let both = vec![
        BundleSignature::sign(&s.sample.lead, SignerRole::Lead, s.sample.lead_agent, bytes)
            .unwrap(),
        BundleSignature::sign(
            &s.sample.lead,
            SignerRole::Partner,
            s.sample.lead_agent,
            bytes,
        )
        .unwrap(),
    ];
    let mut source = s.source.clone();
    source.entries.insert(
        "signatures.json".into(),
        signatures_to_bytes(&both).unwrap(),
    );
    let report = verify(&source);
    assert_only_fails(&report, CheckName::Signatures);
    assert!(
        report
            .result(CheckName::Signatures)
            .detail()
            .contains("signs more than once")
    );
}

#[test]
fn a_signer_not_on_the_team_fails_signatures() {
    let s = shared();
    let (outsider, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let mut signatures = s.sealed.signatures.clone();
    signatures[1] = BundleSignature::sign(
        &outsider,
        SignerRole::Partner,
        AgentId::new(),
        &s.sealed.manifest_bytes,
    )
    .unwrap();
    let mut source = s.source.clone();
    source.entries.insert(
        "signatures.json".into(),
        signatures_to_bytes(&signatures).unwrap(),
    );
    let report = verify(&source);
    assert_only_fails(&report, CheckName::Signatures);
    assert!(
        report
            .result(CheckName::Signatures)
            .detail()
            .contains("not on the approved team")
    );
}

#[test]
fn a_key_revoked_before_sealing_fails_signatures() {
    let s = shared();
    let mut trust = s.sample.trust.clone();
    let kid = s.sample.partner.public_key().kid();
    trust.devices.get_mut(&kid).unwrap().revoked_at_ms = Some(s.sealed.manifest.sealed_at_ms - 1);
    let report = verify_bundle(&s.source, &trust);
    assert_only_fails(&report, CheckName::Signatures);
    assert!(
        report
            .result(CheckName::Signatures)
            .detail()
            .contains("revoked")
    );
    // Revoked after sealing: the signature was made while the key was good.
    trust.devices.get_mut(&kid).unwrap().revoked_at_ms = Some(s.sealed.manifest.sealed_at_ms + 1);
    assert!(verify_bundle(&s.source, &trust).is_valid());
}

#[test]
fn an_approval_signed_by_a_key_other_than_the_servers_fails_approval_signature() {
    let (rogue, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let mut sample = SampleBundle::new().unwrap();
    sample.resign_approval(&rogue).unwrap();
    let sealed = sample.seal().unwrap();
    let source = MemorySource::from_sealed(&sealed, &sample.blobs).unwrap();
    let report = verify_bundle(&source, &sample.trust);
    assert_only_fails(&report, CheckName::ApprovalSignature);
}

/// The bundle id is inside the signed manifest: replaying the same evidence under a new id
/// (to make the server take it twice) leaves signatures that no longer match.
#[test]
fn a_replay_under_a_new_bundle_id_fails_signatures() {
    let mut manifest = shared().sealed.manifest.clone();
    manifest.bundle_id = BundleId::new();
    let report = verify(&with_manifest(manifest.to_canonical_bytes().unwrap()));
    assert_only_fails(&report, CheckName::Signatures);
}

#[test]
fn an_event_removed_from_the_chain_fails_event_chain() {
    let (source, trust) = resealed(|s| {
        s.manifest.events.remove(2);
    });
    let report = verify_bundle(&source, &trust);
    assert_only_fails(&report, CheckName::EventChain);
    assert!(
        report
            .result(CheckName::EventChain)
            .detail()
            .contains("missing or reordered")
    );
}

#[test]
fn a_sealing_device_that_is_not_the_leads_phone_fails_device_chain() {
    let (source, trust) = resealed(|s| {
        s.manifest.device.device_id = s.partner_device;
    });
    assert_only_fails(&verify_bundle(&source, &trust), CheckName::DeviceChain);
}

#[test]
fn a_later_manifest_without_its_predecessor_is_not_checked_and_without_a_link_fails() {
    let (source, trust) = resealed(|s| {
        s.manifest.device.seq = 7;
        s.manifest.device.prev_manifest = Some(tandem_core::crypto::sha256(b"manifest 6"));
    });
    let report = verify_bundle(&source, &trust);
    assert!(report.is_valid());
    assert!(matches!(
        report.result(CheckName::DeviceChain),
        CheckResult::NotChecked { .. }
    ));
    let (source, trust) = resealed(|s| s.manifest.device.seq = 7);
    assert_only_fails(&verify_bundle(&source, &trust), CheckName::DeviceChain);
}

#[test]
fn an_event_before_the_ticket_was_issued_fails_time_window() {
    let (source, trust) = resealed(|s| {
        // Only the last event, so the chain still links (its digest is the head).
        let last = s.manifest.events.last_mut().unwrap();
        last.at.anchor_ms = Some(tandem_core::bundle::testing::TICKET_ISSUED_MS - 3_600_000);
        s.manifest.events_head = last.digest().unwrap();
    });
    assert_only_fails(&verify_bundle(&source, &trust), CheckName::TimeWindow);
}

#[test]
fn a_ticket_for_another_visit_fails_ticket_signature() {
    let (source, trust) = resealed(|s| {
        let mut ticket: tandem_core::model::VisitTicket =
            tandem_core::canonical::from_canonical_slice(s.manifest.visit.ticket.body.as_bytes())
                .unwrap();
        ticket.visit_id = tandem_core::model::VisitId::new();
        let signed = tandem_core::model::Signed::sign(&ticket, &s.server).unwrap();
        s.manifest.visit.ticket_digest = signed.digest();
        s.manifest.visit.ticket = signed;
    });
    assert_only_fails(&verify_bundle(&source, &trust), CheckName::TicketSignature);
}

#[test]
fn a_tampered_signatures_file_is_read_strictly() {
    let mut text = String::from_utf8(shared().source.entries["signatures.json"].clone()).unwrap();
    text.insert(1, ' ');
    assert!(parse_signatures(text.as_bytes()).is_err());
    let mut source = shared().source.clone();
    source
        .entries
        .insert("signatures.json".into(), text.into_bytes());
    assert_only_fails(&verify(&source), CheckName::Signatures);
}

#[test]
fn a_missing_manifest_leaves_every_other_check_not_checked() {
    let mut source = shared().source.clone();
    source.entries.remove("manifest.json");
    let report = verify(&source);
    assert_eq!(report.failed(), vec![CheckName::CanonicalBytes]);
    assert!(matches!(
        report.result(CheckName::EventChain),
        CheckResult::NotChecked { .. }
    ));
}

/// Re-links the events after an edit, as a colluding pair re-sealing a visit would.
fn rechain(manifest: &mut tandem_core::bundle::Manifest) {
    let mut prev = tandem_core::crypto::Digest::ZERO;
    for event in &mut manifest.events {
        event.prev = prev;
        prev = event.digest().unwrap();
    }
    manifest.events_head = prev;
}

fn check_in_mut(manifest: &mut tandem_core::bundle::Manifest) -> &mut tandem_core::model::Event {
    manifest
        .events
        .iter_mut()
        .find(|e| matches!(e.kind, tandem_core::model::EventKind::CheckedIn { .. }))
        .unwrap()
}

#[test]
fn a_check_in_the_partner_never_co_signed_fails_rules() {
    // Actor: a colluding pair (or a lone agent) re-sealing a visit without the partner phone.
    let (source, trust) = resealed(|sample| {
        if let tandem_core::model::EventKind::CheckedIn { cosignature, .. } =
            &mut check_in_mut(&mut sample.manifest).kind
        {
            *cosignature = None;
        }
        rechain(&mut sample.manifest);
    });
    let report = verify_bundle(&source, &trust);
    assert_only_fails(&report, CheckName::Rules);
    assert!(
        report.result(CheckName::Rules).detail().contains("V03"),
        "{report:#?}"
    );
}

#[test]
fn a_mock_location_on_the_partner_phone_fails_rules() {
    // Actor: an agent faking presence with a mock-location app.
    let (source, trust) = resealed(|sample| {
        if let tandem_core::model::EventKind::CheckedIn {
            partner_fix: Some(fix),
            ..
        } = &mut check_in_mut(&mut sample.manifest).kind
        {
            fix.mock = true;
        }
        rechain(&mut sample.manifest);
    });
    let report = verify_bundle(&source, &trust);
    assert_only_fails(&report, CheckName::Rules);
    assert!(
        report.result(CheckName::Rules).detail().contains("V05"),
        "{report:#?}"
    );
}

#[test]
fn a_check_in_after_visiting_hours_fails_rules() {
    // Actor: an agent who cheats the clock, visiting at 22:30 local time.
    let (source, trust) = resealed(|sample| {
        let ticket = tandem_core::bundle::testing::TICKET_ISSUED_MS;
        // 09:46 + 12 h 44 min = 22:30 in Shanghai.
        let late = ticket + (12 * 60 + 44) * 60_000;
        let event = check_in_mut(&mut sample.manifest);
        event.at.since_anchor_ms = Some(late - event.at.anchor_ms.unwrap());
        event.at.wall_ms = late;
        sample.manifest.sealed_at_ms = late + 3_600_000;
        rechain(&mut sample.manifest);
    });
    let report = verify_bundle(&source, &trust);
    assert!(report.result(CheckName::Rules).is_fail(), "{report:#?}");
    assert!(
        report.result(CheckName::Rules).detail().contains("V04"),
        "{report:#?}"
    );
}

#[test]
fn a_receipt_without_cash_authorisation_fails_rules() {
    // Actor: a colluding pair inventing a collection the bank never authorised (C01).
    use tandem_core::bundle::{BlobEntry, BlobRole};
    use tandem_core::crypto::SignatureRecord;
    use tandem_core::model::{
        CoSignature, Event, EventKind, EventTime, Fen, Payer, PaymentMethod, PersonMet,
        ReceiptSerial,
    };
    use tandem_core::receipts::ReceiptStatement;

    let signature_image = b"\x89PNG\r\n\x1a\n payer's signature".to_vec();
    let signature_digest = tandem_core::crypto::sha256(&signature_image);
    let (source, trust) = resealed(|sample| {
        let m = &mut sample.manifest;
        let last = m.events.last().unwrap().clone();
        let statement = tandem_core::canonical::to_canonical_vec(&ReceiptStatement {
            visit_id: m.visit.visit_id,
            case_id: m.visit.case_id,
            device_id: m.device.device_id,
            serial: 1,
            payer: Payer {
                role: PersonMet::Debtor,
                name: "张三".into(),
            },
            amount: Fen(80_000),
            currency: "CNY".into(),
            method: PaymentMethod::Cash,
            designated_account: "6222 **** 0001".into(),
            fee: Fen(0),
            at_ms: last.at.best_ms(),
            place: last.fix.clone().unwrap(),
            payer_signature: signature_digest,
        })
        .unwrap();
        let cosignature = CoSignature {
            lead: SignatureRecord::sign(&sample.lead, "receipt", &statement).unwrap(),
            partner: SignatureRecord::sign(&sample.partner, "receipt", &statement).unwrap(),
            statement: String::from_utf8(statement).unwrap(),
        };
        m.events.push(Event {
            seq: last.seq + 1,
            kind: EventKind::ReceiptIssued {
                serial: ReceiptSerial(1),
                amount: Fen(80_000),
                payer_signature: signature_digest,
                cosignature,
            },
            at: EventTime { ..last.at },
            ..last
        });
        m.blobs.push(BlobEntry {
            sha256: signature_digest,
            size: signature_image.len() as u64,
            media_type: "image/png".into(),
            role: BlobRole::Signature,
            derived_from: None,
            captured_at_ms: m.events.last().unwrap().at.best_ms(),
            fix: None,
        });
        sample
            .blobs
            .insert(signature_digest, signature_image.clone());
        rechain(m);
    });
    let report = verify_bundle(&source, &trust);
    assert_only_fails(&report, CheckName::Rules);
    let detail = report.result(CheckName::Rules).detail();
    assert!(detail.contains("C01"), "{detail}");
}

#[test]
fn a_phone_clock_eight_hours_off_is_listed_among_the_flags() {
    // Actor: an agent who cheats the clock (THREATS.md) — the sealed visit records wall and
    // anchored time; a verifier flags the difference (V15) and keeps the bundle valid.
    let (source, trust) = resealed(|sample| {
        for event in &mut sample.manifest.events {
            event.at.wall_ms += 8 * 3_600_000;
        }
        rechain(&mut sample.manifest);
    });
    let report = verify_bundle(&source, &trust);
    assert!(report.is_valid(), "{report:#?}");
    let rules = report.result(CheckName::Rules);
    assert!(
        matches!(rules, CheckResult::Flagged { flags } if flags.iter().any(|f| f.contains("V15"))),
        "{rules:?}"
    );
}
