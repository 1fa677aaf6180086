//! Exports for legal staff: a folder or a ZIP that verifies in place, and whose
//! `VERIFY.txt` checks every digest and signature with the real `sha256sum` and `openssl`.
//! Actor: a debtor or their lawyer disputing the record (THREATS.md) — they need no Tandem
//! software to check it.

use std::path::Path;

use tandem_core::bundle::testing::{SampleBundle, ZipEntry};
use tandem_core::bundle::{
    CheckName, ExportTarget, FolderSource, Trust, ZipSource, open_source, verify_bundle,
};
use tandem_core::crypto::SignatureAlgorithm;

/// Runs `VERIFY.txt`'s steps as a reader types them (the file itself is never executed),
/// with the server key's fingerprint obtained from the sample, not from the export.
fn run_verify_txt(folder: &Path, sample: &SampleBundle) -> tandem_core::bundle::testing::StepsRun {
    let fingerprint = tandem_core::crypto::Signer::public_key(&sample.server)
        .kid()
        .to_string();
    tandem_core::bundle::testing::run_verify_steps(folder, &fingerprint)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at % bytes.len();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

fn first_file(dir: &Path, suffix: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap()
}

/// Changes one byte somewhere in an export folder.
type Tamper = dyn Fn(&Path);

fn verify_txt_checks_the_export_with_standard_tools(partner_alg: SignatureAlgorithm) {
    let sample = SampleBundle::with_algorithms(SignatureAlgorithm::Ed25519, partner_alg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("export");
    sample.export(ExportTarget::Folder(&folder)).unwrap();

    let run = run_verify_txt(&folder, &sample);
    assert!(
        run.all_ok,
        "VERIFY.txt's steps failed on an untouched export:\n{run:#?}"
    );
    // The server key, three server documents and both agents' signatures were checked by
    // openssl, and each agent key against the approval.
    let commands: Vec<&str> = run.commands.iter().map(|(c, _, _)| c.as_str()).collect();
    let verifies = commands
        .iter()
        .filter(|c| c.contains("pkeyutl -verify") || c.contains("dgst -sha256 -verify"))
        .count();
    assert_eq!(verifies, 5, "{commands:#?}");
    assert_eq!(
        commands.iter().filter(|c| c.contains("documents/approval.json && echo OK") && c.contains("public_key")).count(),
        2,
        "both agents' keys are checked against the approval"
    );
    if partner_alg == SignatureAlgorithm::EcdsaP256Sha256 {
        assert!(folder.join("signatures/partner.der").exists());
    }
    // A fingerprint obtained elsewhere that is not this server's stops the reader at once.
    let wrong = tandem_core::bundle::testing::run_verify_steps(&folder, &"0".repeat(64));
    assert!(!wrong.all_ok);
    assert_eq!(wrong.commands.len(), 1, "the server key is the first step");
    assert!(verify_bundle(&FolderSource::new(&folder), &sample.trust).is_valid());

    // Each tampered copy fails: a blob byte, a manifest byte, a signature byte.
    let tampers: [(&str, &Tamper); 4] = [
        ("blob", &|f: &Path| {
            flip_byte(&first_file(&f.join("blobs"), ".wav"), 1000)
        }),
        ("manifest", &|f: &Path| {
            flip_byte(&f.join("manifest.json"), 500)
        }),
        ("lead signature", &|f: &Path| {
            flip_byte(&f.join("signatures/lead.sig"), 7)
        }),
        ("partner signature", &|f: &Path| {
            let der = f.join("signatures/partner.der");
            if der.exists() {
                flip_byte(&der, 40);
            } else {
                flip_byte(&f.join("signatures/partner.sig"), 40);
            }
        }),
    ];
    for (i, (what, tamper)) in tampers.iter().enumerate() {
        let copy = dir.path().join(format!("tampered-{i}"));
        copy_dir(&folder, &copy);
        tamper(&copy);
        let run = run_verify_txt(&copy, &sample);
        assert!(
            !run.all_ok,
            "VERIFY.txt's steps accepted a tampered {what}:\n{run:#?}"
        );
    }
}

#[test]
fn verify_txt_passes_with_ed25519_signers_and_fails_on_tampered_copies() {
    verify_txt_checks_the_export_with_standard_tools(SignatureAlgorithm::Ed25519);
}

#[test]
fn verify_txt_passes_with_a_p256_partner_and_fails_on_tampered_copies() {
    verify_txt_checks_the_export_with_standard_tools(SignatureAlgorithm::EcdsaP256Sha256);
}

#[test]
fn a_zip_export_verifies_in_place_without_extracting() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("bundle.zip");
    sample.export(ExportTarget::Zip(&zip)).unwrap();
    assert!(!dir.path().join("bundle.zip.partial").exists());
    let source = open_source(&zip).unwrap();
    let report = verify_bundle(source.as_ref(), &sample.trust);
    assert!(report.is_valid(), "{report:#?}");
    assert!(report.result(CheckName::BlobDigests) == &tandem_core::bundle::CheckResult::Pass);
    // Nothing was written beside the ZIP.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn an_export_never_overwrites_an_existing_target() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = sample.export(ExportTarget::Folder(dir.path())).unwrap_err();
    assert!(err.to_string().contains("export target exists"), "{err}");
}

#[test]
fn a_blob_whose_bytes_differ_from_the_manifest_is_not_exported() {
    let mut sample = SampleBundle::new().unwrap();
    let digest = sample.manifest.blobs[0].sha256;
    sample.blobs.get_mut(&digest).unwrap()[0] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("export");
    let err = sample.export(ExportTarget::Folder(&target)).unwrap_err();
    assert!(err.to_string().contains(&digest.to_hex()), "{err}");
    assert!(!target.exists());
}

fn write_zip(path: &Path, entries: &[ZipEntry]) {
    tandem_core::bundle::testing::write_zip(path, entries).unwrap();
}

fn sample_entries(sample: &SampleBundle) -> Vec<ZipEntry> {
    let sealed = sample.seal().unwrap();
    let source =
        tandem_core::bundle::testing::MemorySource::from_sealed(&sealed, &sample.blobs).unwrap();
    source
        .entries
        .into_iter()
        .map(|(name, bytes)| (name, bytes, true))
        .collect()
}

/// Actor: anyone sending bad input — a deflate bomb stands in for a blob.
#[test]
fn a_blob_that_inflates_past_its_listed_size_is_cut_off_and_fails() {
    let sample = SampleBundle::new().unwrap();
    let mut entries = sample_entries(&sample);
    let wav = entries
        .iter_mut()
        .find(|(n, _, _)| n.ends_with(".wav"))
        .unwrap();
    // 64 MiB of zeros deflate to about 64 KiB; the reader stops one byte past 64,000.
    wav.1 = vec![0u8; 64 * 1024 * 1024];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    write_zip(&path, &entries);
    assert!(std::fs::metadata(&path).unwrap().len() < 2 * 1024 * 1024);
    let report = verify_bundle(&ZipSource::open(&path).unwrap(), &sample.trust);
    assert_eq!(report.failed(), vec![CheckName::BlobDigests]);
    assert!(
        report
            .result(CheckName::BlobDigests)
            .detail()
            .contains("longer than its listed"),
        "{report:#?}"
    );
}

#[test]
fn a_manifest_entry_inflating_past_the_document_limit_fails_canonical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    write_zip(
        &path,
        &[("manifest.json".into(), vec![b' '; 17 * 1024 * 1024], true)],
    );
    let report = verify_bundle(&ZipSource::open(&path).unwrap(), &Trust::none());
    assert_eq!(report.failed(), vec![CheckName::CanonicalBytes]);
    assert!(
        report
            .result(CheckName::CanonicalBytes)
            .detail()
            .contains("larger than the limit"),
        "{report:#?}"
    );
}

/// Two entries named alike: two readers could each pick a different one.
#[test]
fn a_zip_with_two_entries_of_the_same_name_is_refused() {
    let sample = SampleBundle::new().unwrap();
    let mut entries = sample_entries(&sample);
    let mut twin = entries
        .iter()
        .find(|(n, _, _)| n == "manifest.json")
        .unwrap()
        .clone();
    twin.0 = "manifest.jsoX".into();
    entries.push(twin);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.zip");
    write_zip(&path, &entries);
    // Rename the twin in place (local header and central directory): same length, same CRC.
    let bytes = std::fs::read(&path).unwrap();
    let patched = String::from_utf8_lossy(&bytes).contains("manifest.jsoX");
    assert!(patched);
    let mut out = bytes.clone();
    let needle = b"manifest.jsoX";
    for i in 0..bytes.len() - needle.len() {
        if &bytes[i..i + needle.len()] == needle {
            out[i + needle.len() - 1] = b'n';
        }
    }
    std::fs::write(&path, out).unwrap();
    let err = ZipSource::open(&path).unwrap_err();
    assert!(err.to_string().contains("same name"), "{err}");
}

#[test]
fn a_file_that_is_not_a_zip_is_an_error_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"hello").unwrap();
    let err = open_source(&path).err().unwrap();
    assert!(err.to_string().contains("not a usable bundle ZIP"), "{err}");
}

/// Actor: a reader of an export received from someone else — every entry beyond the
/// bundle's own must be exactly what the exporter derives, or the export is not valid.
#[test]
fn an_export_with_any_entry_changed_added_or_escaping_fails_export_files() {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    sample.export(ExportTarget::Zip(&zip)).unwrap();
    let entries = tandem_core::bundle::testing::zip_entries(&zip).unwrap();
    let untouched = verify_bundle(open_source(&zip).unwrap().as_ref(), &sample.trust);
    assert!(untouched.is_valid(), "{untouched:#?}");
    assert_eq!(
        untouched.result(CheckName::ExportFiles),
        &tandem_core::bundle::CheckResult::Pass
    );
    assert!(entries.iter().any(|(n, _, _)| n == "VERIFY.txt"));
    assert!(
        entries
            .iter()
            .any(|(n, _, _)| n == "documents/approval.json")
    );

    let (other, _) =
        tandem_core::crypto::SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let other_key = tandem_core::crypto::Signer::public_key(&other);
    let replace = |name: &str, edit: &dyn Fn(&[u8]) -> Vec<u8>| {
        let mut out = entries.clone();
        let entry = out.iter_mut().find(|(n, _, _)| n == name).unwrap();
        entry.1 = edit(&entry.1);
        out
    };
    let add = |name: &str, bytes: &[u8]| {
        let mut out = entries.clone();
        out.push((name.to_owned(), bytes.to_vec(), true));
        out
    };
    let cases: Vec<(&str, Vec<ZipEntry>, &str)> = vec![
        (
            "VERIFY.txt replaced by a script",
            replace("VERIFY.txt", &|_| {
                b"#!/bin/sh\necho 'All blob digests and signatures verified.'\n".to_vec()
            }),
            "VERIFY.txt differs",
        ),
        (
            "approval copy with another validity",
            replace("documents/approval.json", &|b| {
                let text = String::from_utf8_lossy(b);
                let edited = text.replacen("\"valid_until_ms\":1", "\"valid_until_ms\":9", 1);
                assert_ne!(edited, text, "the copy names its validity");
                edited.into_bytes()
            }),
            "documents/approval.json differs",
        ),
        (
            "a key added to keys/",
            add(
                &format!("keys/{}.pem", other_key.kid()),
                b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
            ),
            "is not part of the bundle",
        ),
        ("an entry climbing out", add("../x", b"x"), "climbs out"),
        ("an absolute entry", add("/abs/x", b"x"), "absolute path"),
        ("a backslash entry", add("a\\b", b"x"), "backslash"),
        (
            "a control character",
            add("x\u{7}", b"x"),
            "control character",
        ),
        (
            "an extra note",
            add("NOTE.txt", b"trust me"),
            "NOTE.txt is not part",
        ),
    ];
    for (i, (what, entries, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("tampered-{i}.zip"));
        write_zip(&path, &entries);
        let report = verify_bundle(open_source(&path).unwrap().as_ref(), &sample.trust);
        assert!(!report.is_valid(), "{what}: reported valid");
        let result = report.result(CheckName::ExportFiles);
        assert!(result.is_fail(), "{what}: {result:?}");
        assert!(
            result.detail().contains(expected),
            "{what}: {}",
            result.detail()
        );
    }
}
