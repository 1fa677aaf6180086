//! Checking an export with nothing but the server key's fingerprint: the export's server
//! certificates of the signing keys give enrolment and revocation offline (export format
//! 1.1); an export of format 1.0 still verifies. Actor: a debtor's lawyer or a court's
//! expert witness holding an export received from someone else (THREATS.md), and the sender
//! who doctors it.

use std::collections::BTreeMap;
use std::path::Path;

use tandem_core::bundle::testing::SampleBundle;
use tandem_core::bundle::{
    BundleError, CheckName, CheckResult, ExportTarget, FolderSource, Trust, VerificationReport,
    certificate_file, verify_bundle, write_export,
};
use tandem_core::crypto::{Kid, SignatureAlgorithm, Signer as _, SoftwareSigner};
use tandem_core::model::{DeviceCertificate, Signed};

fn fingerprint(sample: &SampleBundle) -> Kid {
    sample.server.public_key().kid()
}

fn export(sample: &SampleBundle, dir: &Path) -> FolderSource {
    let folder = dir.join("export");
    sample.export(ExportTarget::Folder(&folder)).unwrap();
    FolderSource::new(&folder)
}

fn verify_with_fingerprint(source: &FolderSource, fingerprint: &Kid) -> VerificationReport {
    let trust = Trust::from_server_key(source, fingerprint).unwrap();
    verify_bundle(source, &trust)
}

fn result(report: &VerificationReport, name: CheckName) -> &CheckResult {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .result
}

#[test]
fn the_fingerprint_alone_checks_every_signature_enrolment_and_revocation() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = export(&sample, dir.path());
    let trust = Trust::from_server_key(&source, &fingerprint(&sample)).unwrap();
    assert_eq!(
        trust.devices, sample.trust.devices,
        "both signers certified"
    );
    let report = verify_bundle(&source, &trust);
    assert!(report.is_valid(), "{report:#?}");
    let unchecked: Vec<_> = report
        .checks
        .iter()
        .filter(|c| matches!(c.result, CheckResult::NotChecked { .. }))
        .collect();
    assert!(unchecked.is_empty(), "{unchecked:#?}");
}

#[test]
fn a_phone_revoked_before_the_visit_fails_the_signatures_check() {
    let mut sample = SampleBundle::new().unwrap();
    let partner = sample.partner.public_key().kid();
    let sealed_at = sample.manifest.sealed_at_ms;
    sample
        .trust
        .devices
        .get_mut(&partner)
        .unwrap()
        .revoked_at_ms = Some(sealed_at - 3_600_000);
    let dir = tempfile::tempdir().unwrap();
    let source = export(&sample, dir.path());
    let report = verify_with_fingerprint(&source, &fingerprint(&sample));
    assert!(!report.is_valid());
    match result(&report, CheckName::Signatures) {
        CheckResult::Fail { reason } => {
            assert!(
                reason.contains("partner key") && reason.contains("revoked"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Revoked after sealing: the evidence was made while the key was good.
    let mut later = SampleBundle::new().unwrap();
    let kid = later.partner.public_key().kid();
    let sealed_at = later.manifest.sealed_at_ms;
    later.trust.devices.get_mut(&kid).unwrap().revoked_at_ms = Some(sealed_at + 3_600_000);
    let dir = tempfile::tempdir().unwrap();
    let source = export(&later, dir.path());
    assert!(verify_with_fingerprint(&source, &fingerprint(&later)).is_valid());
}

#[test]
fn a_certificate_altered_or_signed_by_another_key_is_refused() {
    let sample = SampleBundle::new().unwrap();
    let partner = sample.partner.public_key().kid();
    let name = certificate_file(&partner);

    // The sender erases a revocation: the body no longer matches its signature.
    let dir = tempfile::tempdir().unwrap();
    let source = export(&sample, dir.path());
    let path = dir.path().join("export").join(&name);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\\\"enrolled_at_ms\\\":", "\\\"enrolled_at_ms\\\":1"),
    )
    .unwrap();
    match Trust::from_server_key(&source, &fingerprint(&sample)) {
        Err(BundleError::Tampered { reason, .. }) => assert!(reason.contains(&name), "{reason}"),
        other => panic!("{other:?}"),
    }

    // The sender signs a certificate of their own: not the server key the reader holds.
    let forger = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
        .unwrap()
        .0;
    let body = DeviceCertificate {
        device_id: sample.partner_device,
        agent_id: sample.partner_agent,
        bank_ids: vec![sample.manifest.visit.bank_id],
        public_key: sample.partner.public_key(),
        enrolled_at_ms: 0,
        revoked_at_ms: None,
        issued_at_ms: sample.manifest.sealed_at_ms,
    };
    let forged = Signed::sign(&body, &forger).unwrap();
    std::fs::write(
        &path,
        tandem_core::canonical::to_canonical_vec(&forged).unwrap(),
    )
    .unwrap();
    match Trust::from_server_key(&source, &fingerprint(&sample)) {
        Err(BundleError::Tampered { reason, .. }) => {
            assert!(reason.contains("not signed by the server key"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_certificate_of_a_key_that_signed_nothing_fails_export_files() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = export(&sample, dir.path());
    let stranger = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
        .unwrap()
        .0
        .public_key();
    let body = DeviceCertificate {
        device_id: sample.partner_device,
        agent_id: sample.partner_agent,
        bank_ids: vec![],
        public_key: stranger.clone(),
        enrolled_at_ms: 0,
        revoked_at_ms: None,
        issued_at_ms: 0,
    };
    let signed = Signed::sign(&body, &sample.server).unwrap();
    std::fs::write(
        dir.path()
            .join("export")
            .join(certificate_file(&stranger.kid())),
        tandem_core::canonical::to_canonical_vec(&signed).unwrap(),
    )
    .unwrap();
    let report = verify_with_fingerprint(&source, &fingerprint(&sample));
    match result(&report, CheckName::ExportFiles) {
        CheckResult::Fail { reason } => assert!(reason.contains("certificates/"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_format_1_0_export_still_verifies_and_says_enrolment_is_not_checked() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("v1.0");
    write_export(
        &sample.seal().unwrap(),
        &sample.blobs,
        Some(&sample.server.public_key()),
        ExportTarget::Folder(&folder),
    )
    .unwrap();
    assert!(!folder.join("certificates").exists());
    let source = FolderSource::new(&folder);
    let report = verify_with_fingerprint(&source, &fingerprint(&sample));
    assert!(report.is_valid(), "{report:#?}");
    assert!(matches!(
        result(&report, CheckName::Signatures),
        CheckResult::NotChecked { .. }
    ));
    assert_eq!(
        result(&report, CheckName::ApprovalSignature),
        &CheckResult::Pass
    );
    assert_eq!(result(&report, CheckName::ExportFiles), &CheckResult::Pass);
}

#[test]
fn an_export_without_the_named_key_cannot_be_tied_to_that_server() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = export(&sample, dir.path());
    let other = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
        .unwrap()
        .0
        .public_key()
        .kid();
    assert!(matches!(
        Trust::from_server_key(&source, &other),
        Err(BundleError::ServerKeyAbsent { .. })
    ));
    // The untouched export's entries are all accounted for.
    let trust = Trust {
        server_keys: vec![sample.server.public_key()],
        devices: BTreeMap::new(),
    };
    assert_eq!(
        result(&verify_bundle(&source, &trust), CheckName::ExportFiles),
        &CheckResult::Pass
    );
}
