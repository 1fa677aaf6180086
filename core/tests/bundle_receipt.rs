//! The server's receipt inside a bundle (`receipt/`): checked offline against the trusted
//! server key; every forged or altered part is named by its check.
//! Actors (THREATS.md): a malicious insider or compromised server handing a court a receipt
//! for another version, a colluding pair forging a receipt with their own key, anyone
//! sending bad input.

use tandem_core::bundle::testing::{MemorySource, SampleBundle};
use tandem_core::bundle::{
    CHECKPOINT_FILE, CheckName, CheckResult, ExportTarget, FolderSource, INCLUSION_PROOF_FILE,
    RECEIPT_FILE, SealedBundle, ServerReceipt, VerificationReport, verify_bundle, write_export,
};
use tandem_core::crypto::{Digest, SignatureAlgorithm, Signer, SoftwareSigner, sha256};
use tandem_core::model::Signed;
use tandem_core::tlog::{Checkpoint, IngestReceipt, MerkleLog, Verdict};

/// A log where the sample's manifest is entry 5 of 9, and the server's answer for it.
fn received(sample: &SampleBundle, sealed: &SealedBundle, signer: &dyn Signer) -> ServerReceipt {
    received_with(sample, sealed, signer, |_, _| {})
}

fn received_with(
    _sample: &SampleBundle,
    sealed: &SealedBundle,
    signer: &dyn Signer,
    edit: impl FnOnce(&mut IngestReceipt, &mut Checkpoint),
) -> ServerReceipt {
    let digest = sha256(&sealed.manifest_bytes);
    let mut log = MerkleLog::new();
    for i in 0..9u8 {
        if i == 5 {
            log.append_manifest(&digest).unwrap();
        } else {
            log.append_manifest(&sha256(&[i])).unwrap();
        }
    }
    let mut receipt = IngestReceipt {
        bundle_id: sealed.manifest.bundle_id,
        manifest_digest: digest,
        log_index: 5,
        tree_size: 9,
        received_at_ms: sealed.manifest.sealed_at_ms + 60_000,
        verdict: Verdict::Accepted,
    };
    let mut checkpoint = Checkpoint {
        log_id: "tandem-test".into(),
        tree_size: 9,
        root: log.root(9).unwrap(),
        timestamp_ms: sealed.manifest.sealed_at_ms + 61_000,
    };
    edit(&mut receipt, &mut checkpoint);
    ServerReceipt {
        receipt: Signed::sign(&receipt, signer).unwrap(),
        inclusion_proof: log.inclusion_proof(5, 9).unwrap(),
        checkpoint: Signed::sign(&checkpoint, signer).unwrap(),
    }
}

fn source_with(sealed: &SealedBundle, sample: &SampleBundle, r: &ServerReceipt) -> MemorySource {
    let mut source = MemorySource::from_sealed(sealed, &sample.blobs).unwrap();
    for (name, bytes) in r.entries().unwrap() {
        source.entries.insert(name.to_owned(), bytes);
    }
    source
}

#[track_caller]
fn assert_only_fails(report: &VerificationReport, check: CheckName) {
    assert!(
        report.result(check).is_fail(),
        "{check} did not fail: {report:#?}"
    );
    assert_eq!(report.failed(), vec![check], "{report:#?}");
}

#[test]
fn a_genuine_receipt_passes_all_three_checks_and_bounds_the_time_window() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received(&sample, &sealed, &sample.server);
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert!(report.is_fully_checked(), "{report:#?}");
    for name in [
        CheckName::ServerReceipt,
        CheckName::InclusionProof,
        CheckName::Checkpoint,
    ] {
        assert_eq!(*report.result(name), CheckResult::Pass, "{name}");
    }
    // Without one, the three checks say so and nothing fails.
    let plain = MemorySource::from_sealed(&sealed, &sample.blobs).unwrap();
    let report = verify_bundle(&plain, &sample.trust);
    assert_eq!(
        *report.result(CheckName::ServerReceipt),
        CheckResult::NotPresent
    );
    assert!(report.is_valid());
}

#[test]
fn without_a_trusted_server_key_the_receipt_is_not_checked() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received(&sample, &sealed, &sample.server);
    let report = verify_bundle(
        &source_with(&sealed, &sample, &r),
        &tandem_core::bundle::Trust::none(),
    );
    assert!(matches!(
        report.result(CheckName::ServerReceipt),
        CheckResult::NotChecked { .. }
    ));
}

#[test]
fn a_receipt_forged_with_another_key_fails_server_receipt() {
    // Actor: a colluding pair (or an insider without the server key) forging a receipt.
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let (rogue, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let r = received(&sample, &sealed, &rogue);
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert_only_fails(&report, CheckName::ServerReceipt);
    assert!(
        report
            .result(CheckName::ServerReceipt)
            .detail()
            .contains("not a trusted server key")
    );
}

#[test]
fn an_altered_receipt_body_fails_server_receipt() {
    // Actor: a malicious insider editing the stored receipt (another log index).
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let mut r = received(&sample, &sealed, &sample.server);
    r.receipt.body = r.receipt.body.replace("\"log_index\":5", "\"log_index\":4");
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert!(
        report.result(CheckName::ServerReceipt).is_fail(),
        "{report:#?}"
    );
    assert!(!report.is_valid());
}

#[test]
fn a_receipt_for_another_manifest_fails_server_receipt() {
    // Actor: a compromised server handing over the receipt of another version of the visit.
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received_with(&sample, &sealed, &sample.server, |receipt, _| {
        receipt.manifest_digest = sha256(b"another version");
    });
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert!(
        report.result(CheckName::ServerReceipt).is_fail(),
        "{report:#?}"
    );
    assert!(
        report
            .result(CheckName::ServerReceipt)
            .detail()
            .contains("for manifest")
    );
}

#[test]
fn an_altered_inclusion_proof_fails_inclusion_proof() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let mut r = received(&sample, &sealed, &sample.server);
    r.inclusion_proof[1] = sha256(b"not the sibling");
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert_only_fails(&report, CheckName::InclusionProof);
    let mut r = received(&sample, &sealed, &sample.server);
    r.inclusion_proof.pop();
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert_only_fails(&report, CheckName::InclusionProof);
}

#[test]
fn a_checkpoint_of_another_root_or_size_is_caught() {
    // Actor: a server rewriting history and signing a checkpoint over the new tree.
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received_with(&sample, &sealed, &sample.server, |_, c| {
        c.root = Digest::ZERO;
    });
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert_only_fails(&report, CheckName::InclusionProof);
    let r = received_with(&sample, &sealed, &sample.server, |_, c| c.tree_size = 10);
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert!(
        report.result(CheckName::Checkpoint).is_fail(),
        "{report:#?}"
    );
}

#[test]
fn an_incomplete_or_malformed_receipt_folder_fails() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received(&sample, &sealed, &sample.server);
    let mut source = source_with(&sealed, &sample, &r);
    source.entries.remove(CHECKPOINT_FILE);
    let report = verify_bundle(&source, &sample.trust);
    assert!(
        report.result(CheckName::Checkpoint).is_fail(),
        "{report:#?}"
    );
    let mut source = source_with(&sealed, &sample, &r);
    source
        .entries
        .insert(INCLUSION_PROOF_FILE.into(), b"[ ]".to_vec());
    assert!(
        verify_bundle(&source, &sample.trust)
            .result(CheckName::InclusionProof)
            .is_fail()
    );
    let mut source = source_with(&sealed, &sample, &r);
    source.entries.insert(RECEIPT_FILE.into(), b"{}".to_vec());
    assert!(
        verify_bundle(&source, &sample.trust)
            .result(CheckName::ServerReceipt)
            .is_fail()
    );
}

#[test]
fn a_seal_after_the_checkpoint_fails_time_window() {
    // Actor: an agent who cheats the clock, claiming to have sealed after the server logged.
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received_with(&sample, &sealed, &sample.server, |_, c| {
        c.timestamp_ms = sealed.manifest.sealed_at_ms - 1;
    });
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert_only_fails(&report, CheckName::TimeWindow);
}

#[test]
fn a_quarantined_receipt_is_flagged_not_passed() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received_with(&sample, &sealed, &sample.server, |receipt, _| {
        receipt.verdict = Verdict::Quarantined;
    });
    let report = verify_bundle(&source_with(&sealed, &sample, &r), &sample.trust);
    assert!(matches!(
        report.result(CheckName::ServerReceipt),
        CheckResult::Flagged { .. }
    ));
    assert!(report.is_valid());
}

#[test]
fn the_export_carries_the_receipt_and_verify_txt_checks_its_signatures() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received(&sample, &sealed, &sample.server);
    let sealed = sealed.with_receipt(r);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("export");
    write_export(
        &sealed,
        &sample.blobs,
        Some(&sample.server.public_key()),
        ExportTarget::Folder(&folder),
    )
    .unwrap();
    for f in [RECEIPT_FILE, INCLUSION_PROOF_FILE, CHECKPOINT_FILE] {
        assert!(folder.join(f).exists(), "{f}");
    }
    let report = verify_bundle(&FolderSource::new(&folder), &sample.trust);
    assert!(report.is_fully_checked(), "{report:#?}");
    let fingerprint = sample.server.public_key().kid().to_string();
    let run = tandem_core::bundle::testing::run_verify_steps(&folder, &fingerprint);
    assert!(run.all_ok, "{run:#?}");
    let verified = run
        .commands
        .iter()
        .filter(|(c, _, _)| c.contains("pkeyutl -verify"))
        .count();
    assert_eq!(
        verified, 7,
        "manifest ×2, approval, ticket, policy, receipt, checkpoint"
    );

    // Actor: a malicious insider — each edit of a signed receipt file in a copy of the
    // export stops the reader's steps: the convenience copy's signature, and the exact
    // files under receipt/ (their signed bodies and signatures).
    let edits: [(&str, &str); 3] = [
        ("documents/receipt.json", "log_index"),
        // The signed body inside receipt/receipt.json: received an hour (or more) later.
        (RECEIPT_FILE, "received_at_ms"),
        (CHECKPOINT_FILE, "root"),
    ];
    for (i, (file, field)) in edits.into_iter().enumerate() {
        let copy = dir.path().join(format!("edited-{i}"));
        write_export(
            &sealed,
            &sample.blobs,
            Some(&sample.server.public_key()),
            ExportTarget::Folder(&copy),
        )
        .unwrap();
        let path = copy.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, change_first_digit_after(&text, field)).unwrap();
        let run = tandem_core::bundle::testing::run_verify_steps(&copy, &fingerprint);
        assert!(!run.all_ok, "the steps passed an edited {file}");
    }
}

/// `text` with the first decimal digit after `field` changed (another time, index or root).
fn change_first_digit_after(text: &str, field: &str) -> String {
    let start = text
        .find(field)
        .unwrap_or_else(|| panic!("{field} in {text}"));
    let at = start
        + text[start..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or_else(|| panic!("a digit after {field}"));
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'9' {
        b'1'
    } else {
        bytes[at] + 1
    };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_receipt_beside_an_unreadable_manifest_is_not_checked_rather_than_not_present() {
    let sample = SampleBundle::new().unwrap();
    let sealed = sample.seal().unwrap();
    let r = received(&sample, &sealed, &sample.server);
    let mut source = source_with(&sealed, &sample, &r);
    source
        .entries
        .insert("manifest.json".into(), b"{\"format\":1}".to_vec());
    let report = verify_bundle(&source, &sample.trust);
    assert!(report.result(CheckName::CanonicalBytes).is_fail());
    for check in [
        CheckName::ServerReceipt,
        CheckName::InclusionProof,
        CheckName::Checkpoint,
    ] {
        assert!(
            matches!(report.result(check), CheckResult::NotChecked { .. }),
            "{check}: {:?}",
            report.result(check)
        );
    }
}
