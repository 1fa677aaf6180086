//! The export's `export/` part: `report.html` and the server's signed note of who exported
//! the bundle, when and why. A streamed ZIP export verifies like a file export; the note
//! binds the report and the bundle; nothing of it can be changed, swapped or forged unseen.
//! Actor: a reader of an export received from someone else (THREATS.md) — a report
//! rewritten, a note copied from another export, a purpose changed after the fact.

use std::path::Path;

use tandem_core::bundle::testing::{SampleBundle, ZipEntry, write_zip, zip_entries};
use tandem_core::bundle::{
    CheckName, CheckResult, EXPORT_NOTE_FILE, EXPORT_REPORT_FILE, ExportAttachment, ExportNote,
    SealedBundle, Trust, VerificationReport, open_source, verify_bundle, write_export_stream,
};
use tandem_core::crypto::{SignatureAlgorithm, Signer as _, SoftwareSigner, sha256};
use tandem_core::model::Signed;

const REPORT: &[u8] =
    "<!doctype html><html lang=\"zh-CN\"><title>走访报告</title><p>证据</p></html>".as_bytes();

/// The note the server signs for `sealed` and `report`.
fn note(sealed: &SealedBundle, report: &[u8], signer: &SoftwareSigner) -> Signed<ExportNote> {
    let body = ExportNote {
        bundle_id: sealed.manifest.bundle_id,
        visit_id: sealed.manifest.visit.visit_id,
        manifest_sha256: sha256(&sealed.manifest_bytes),
        requester_id: "0193a6a0-0000-7000-8000-000000000001".into(),
        requester_name: "王律师".into(),
        requester_role: "legal".into(),
        purpose: "litigation: 民事诉讼 (2026) 沪0101民初1234号".into(),
        exported_at_ms: 1_796_000_000_000,
        language: "zh-CN".into(),
        report_sha256: sha256(report),
        report_size: report.len() as u64,
    };
    Signed::sign(&body, signer).unwrap()
}

/// The sample's bundle with its certificates, the report and the server's note.
fn with_export(sample: &SampleBundle, report: &[u8]) -> SealedBundle {
    let sealed = sample
        .seal()
        .unwrap()
        .with_certificates(sample.certificates().unwrap());
    let note = note(&sealed, report, &sample.server);
    sealed.with_export(ExportAttachment {
        note,
        report_html: report.to_vec(),
    })
}

/// Streams the export into memory, as the server streams it to a browser, and writes it.
fn stream_to(path: &Path, sample: &SampleBundle, sealed: &SealedBundle) {
    let mut bytes = Vec::new();
    write_export_stream(
        sealed,
        &sample.blobs,
        Some(&sample.server.public_key()),
        &mut bytes,
    )
    .unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn verify(path: &Path, trust: &Trust) -> VerificationReport {
    let source = open_source(path).unwrap();
    verify_bundle(source.as_ref(), trust)
}

/// The ZIP at `path` with `change` applied to its entries.
fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<ZipEntry>)) {
    let mut entries = zip_entries(path).unwrap();
    change(&mut entries);
    std::fs::remove_file(path).unwrap();
    write_zip(path, &entries).unwrap();
}

fn entry<'a>(entries: &'a mut [ZipEntry], name: &str) -> &'a mut Vec<u8> {
    &mut entries.iter_mut().find(|e| e.0 == name).unwrap().1
}

fn failure(report: &VerificationReport, name: CheckName) -> String {
    match report.result(name) {
        CheckResult::Fail { reason } => reason.clone(),
        other => panic!("{name} should fail, is {other:?}: {report:#?}"),
    }
}

#[test]
fn a_streamed_export_with_its_report_and_note_verifies_with_every_check() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    stream_to(&zip, &sample, &with_export(&sample, REPORT));

    let report = verify(&zip, &sample.trust);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.result(CheckName::ExportNote), &CheckResult::Pass);
    assert_eq!(report.result(CheckName::ExportFiles), &CheckResult::Pass);
    let names: Vec<String> = zip_entries(&zip)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(names.iter().any(|n| n == EXPORT_REPORT_FILE), "{names:?}");
    assert!(names.iter().any(|n| n == EXPORT_NOTE_FILE), "{names:?}");

    // Without trust the note's binding is still checked, its signature is not.
    let untrusted = verify(&zip, &Trust::none());
    assert!(
        matches!(
            untrusted.result(CheckName::ExportNote),
            CheckResult::NotChecked { .. }
        ),
        "{untrusted:#?}"
    );
}

#[test]
fn a_streamed_export_without_a_report_has_no_note_to_check() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    let sealed = sample
        .seal()
        .unwrap()
        .with_certificates(sample.certificates().unwrap());
    stream_to(&zip, &sample, &sealed);
    let report = verify(&zip, &sample.trust);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(
        report.result(CheckName::ExportNote),
        &CheckResult::NotPresent
    );
}

#[test]
fn a_rewritten_report_fails_the_note_and_nothing_else() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    stream_to(&zip, &sample, &with_export(&sample, REPORT));
    rewrite(&zip, |entries| {
        let report = entry(entries, EXPORT_REPORT_FILE);
        let at = report.len() / 2;
        report[at] ^= 0x01;
    });
    let report = verify(&zip, &sample.trust);
    assert!(!report.is_valid());
    assert!(
        failure(&report, CheckName::ExportNote).contains("not the report the note binds"),
        "{report:#?}"
    );
    assert_eq!(report.failed(), vec![CheckName::ExportNote]);
}

#[test]
fn a_note_changed_swapped_or_forged_fails() {
    let sample = SampleBundle::new().unwrap();
    let other = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Another bundle's note and report, signed by the same server.
    let zip = dir.path().join("swapped.zip");
    stream_to(&zip, &sample, &with_export(&sample, REPORT));
    let mut theirs = with_export(&other, REPORT);
    theirs.export.as_mut().unwrap().note = note(&theirs, REPORT, &sample.server);
    let their_note =
        tandem_core::canonical::to_canonical_vec(&theirs.export.unwrap().note).unwrap();
    rewrite(&zip, |entries| {
        *entry(entries, EXPORT_NOTE_FILE) = their_note
    });
    let reason = failure(&verify(&zip, &sample.trust), CheckName::ExportNote);
    assert!(reason.contains("not this one"), "{reason}");
    assert!(reason.contains("another manifest"), "{reason}");

    // The purpose changed in the note's body: the server's signature no longer holds.
    let zip = dir.path().join("purpose.zip");
    stream_to(&zip, &sample, &with_export(&sample, REPORT));
    rewrite(&zip, |entries| {
        let note = entry(entries, EXPORT_NOTE_FILE);
        let text = String::from_utf8(note.clone()).unwrap();
        *note = text.replace("litigation", "complaints").into_bytes();
    });
    let reason = failure(&verify(&zip, &sample.trust), CheckName::ExportNote);
    assert!(reason.contains("signature"), "{reason}");

    // A note signed by a key the reader does not trust.
    let zip = dir.path().join("forged.zip");
    let (forger, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let mut forged = with_export(&sample, REPORT);
    forged.export.as_mut().unwrap().note = note(&forged, REPORT, &forger);
    stream_to(&zip, &sample, &forged);
    let reason = failure(&verify(&zip, &sample.trust), CheckName::ExportNote);
    assert!(reason.contains("not a trusted server key"), "{reason}");

    // A report whose note was removed.
    let zip = dir.path().join("bare.zip");
    stream_to(&zip, &sample, &with_export(&sample, REPORT));
    rewrite(&zip, |entries| entries.retain(|e| e.0 != EXPORT_NOTE_FILE));
    let reason = failure(&verify(&zip, &sample.trust), CheckName::ExportNote);
    assert!(reason.contains("without the server's note"), "{reason}");
}
