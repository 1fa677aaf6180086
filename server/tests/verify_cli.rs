//! `tandem verify` through the real binary: exit 0 valid, 1 a check failed, 2 usage or
//! I/O error. Actor: legal staff and a debtor's lawyer checking an export.

use std::path::Path;
use std::process::{Command, Output};

use tandem_core::bundle::ExportTarget;
use tandem_core::bundle::testing::SampleBundle;

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("the tandem binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Exported {
    _dir: tempfile::TempDir,
    folder: String,
    zip: String,
    trust: String,
    /// The server key's fingerprint, as the reader obtains it elsewhere.
    fingerprint: String,
}

fn exported() -> Exported {
    exported_from(SampleBundle::new().unwrap())
}

fn exported_from(sample: SampleBundle) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("export");
    let zip = dir.path().join("export.zip");
    sample.export(ExportTarget::Folder(&folder)).unwrap();
    sample.export(ExportTarget::Zip(&zip)).unwrap();
    let trust = dir.path().join("keys.json");
    std::fs::write(&trust, sample.trust.to_json().unwrap()).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    Exported {
        folder: s(&folder),
        zip: s(&zip),
        trust: s(&trust),
        fingerprint: tandem_core::crypto::Signer::public_key(&sample.server)
            .kid()
            .to_string(),
        _dir: dir,
    }
}

#[test]
fn a_valid_folder_with_trust_exits_0_and_shows_every_check() {
    let e = exported();
    let out = tandem(&["verify", &e.folder, "--trust", &e.trust]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for name in [
        "canonical_bytes",
        "blob_digests",
        "event_chain",
        "signatures",
        "approval_signature",
        "ticket_signature",
        "rules",
        "device_chain",
        "server_receipt",
        "inclusion_proof",
        "checkpoint",
        "time_window",
        "export_files",
        "export_note",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    // With trust, everything present is checked, the rules included.
    assert!(stdout.contains("(0 not checked"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["rules", "pass"]),
        "{stdout}"
    );
    assert!(stdout.contains("VALID"));
}

/// Actor: a court's expert witness holding the export and the server key's fingerprint
/// (from the bank's letter), nothing else.
#[test]
fn the_server_key_fingerprint_alone_leaves_nothing_unchecked() {
    let e = exported();
    // As people copy it: upper case, in groups.
    let grouped = e
        .fingerprint
        .to_uppercase()
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    for bundle in [&e.zip, &e.folder] {
        let out = tandem(&["verify", bundle, "--server-key", &grouped]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("(0 not checked"), "{stdout}");
        assert!(!stdout.contains("not checked ("), "{stdout}");
    }
    // Another server's fingerprint: nothing in the export ties it to that server.
    let other = "ab".repeat(32);
    let out = tandem(&["verify", &e.zip, "--server-key", &other]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("keys/{other}.pem")));
    // Not a fingerprint at all: a usage error, one line.
    let out = tandem(&["verify", &e.zip, "--server-key", "letter-42"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).lines().count(), 1);
}

/// Actor: a field agent whose phone was reported stolen — evidence its key signed after the
/// revocation is refused by a verifier holding only the fingerprint.
#[test]
fn a_device_revoked_before_the_visit_exits_1_naming_signatures() {
    let mut sample = SampleBundle::new().unwrap();
    let lead = tandem_core::crypto::Signer::public_key(&sample.lead).kid();
    let revoked = sample.manifest.sealed_at_ms - 24 * 3_600_000;
    sample.trust.devices.get_mut(&lead).unwrap().revoked_at_ms = Some(revoked);
    let e = exported_from(sample);
    let out = tandem(&["verify", &e.zip, "--server-key", &e.fingerprint]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("signatures"))
        .unwrap();
    assert!(row.contains("FAIL") && row.contains("revoked"), "{row}");
}

#[test]
fn a_valid_zip_without_trust_exits_0_and_says_what_was_not_checked() {
    let e = exported();
    let out = tandem(&["verify", &e.zip]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("not checked (no trust given)"), "{stdout}");
}

#[test]
fn a_tampered_blob_exits_1_naming_blob_digests() {
    let e = exported();
    let blob = std::fs::read_dir(Path::new(&e.folder).join("blobs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let out = tandem(&["verify", &e.folder, "--trust", &e.trust]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("blob_digests"))
        .unwrap();
    assert!(row.contains("FAIL"), "{row}");
    assert!(stdout.contains("INVALID"));
}

#[test]
fn json_output_is_the_report() {
    let e = exported();
    let out = tandem(&["verify", &e.zip, "--trust", &e.trust, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["checks"][0]["name"], "canonical_bytes");
    assert_eq!(report["checks"][0]["result"], "pass");
    assert_eq!(report["checks"].as_array().unwrap().len(), 14);
    assert_eq!(report["checks"][12]["name"], "export_files");
    // An export written without report.html has no export note to check.
    assert_eq!(report["checks"][13]["name"], "export_note");
    assert_eq!(report["checks"][13]["result"], "not_present");
}

#[test]
fn a_missing_bundle_exits_2_with_one_line_on_stderr() {
    let out = tandem(&["verify", "/nonexistent/bundle.zip"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot open bundle"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unreadable_trust_file_exits_2() {
    let e = exported();
    std::fs::write(&e.trust, b"{not json").unwrap();
    let out = tandem(&["verify", &e.folder, "--trust", &e.trust]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read trust file"));
}

#[test]
fn a_usage_error_exits_2() {
    assert_eq!(tandem(&["verify"]).status.code(), Some(2));
    assert_eq!(tandem(&["verify", "x", "--bogus"]).status.code(), Some(2));
    assert_eq!(tandem(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(tandem(&["--help"]).status.code(), Some(0));
}

/// Actor: a reader of an export received from someone else — `tandem verify` accounts for
/// every entry: a doctored `VERIFY.txt`, an altered convenience copy, an added key or an
/// entry whose name escapes the folder makes the export invalid, naming `export_files`.
#[test]
fn an_export_with_an_entry_changed_or_added_exits_1_naming_export_files() {
    use tandem_core::bundle::testing::{write_zip, zip_entries};
    let e = exported();
    let entries = zip_entries(Path::new(&e.zip)).unwrap();
    let out = tandem(&["verify", &e.zip, "--trust", &e.trust]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let changed = |name: &str, bytes: &[u8]| {
        let mut v = entries.clone();
        let entry = v.iter_mut().find(|(n, _, _)| n == name).unwrap();
        entry.1 = bytes.to_vec();
        v
    };
    let added = |name: &str| {
        let mut v = entries.clone();
        v.push((name.to_owned(), b"x".to_vec(), true));
        v
    };
    let mut approval = entries
        .iter()
        .find(|(n, _, _)| n == "documents/approval.json")
        .unwrap()
        .1
        .clone();
    approval.push(b' ');
    let key = entries
        .iter()
        .find(|(n, _, _)| n.starts_with("keys/"))
        .unwrap()
        .1
        .clone();
    let mut extra_key = entries.clone();
    extra_key.push((format!("keys/{}.pem", "0".repeat(64)), key, true));
    let cases = [
        (
            "VERIFY.txt replaced",
            changed("VERIFY.txt", b"#!/bin/sh\necho 'All verified.'\n"),
        ),
        (
            "documents/approval.json altered",
            changed("documents/approval.json", &approval),
        ),
        ("keys/ gaining a key", extra_key),
        ("../x", added("../x")),
        ("/abs/x", added("/abs/x")),
        ("a\\b", added("a\\b")),
        ("x\\u0007", added("x\u{7}")),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, entries)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("t{i}.zip"));
        write_zip(&path, &entries).unwrap();
        let out = tandem(&["verify", path.to_str().unwrap(), "--trust", &e.trust]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        let row = stdout
            .lines()
            .find(|l| l.starts_with("export_files"))
            .unwrap_or_else(|| panic!("{what}: no export_files row in {stdout}"));
        assert!(row.contains("FAIL"), "{what}: {row}");
    }

    // Two entries of one name: refused as tampered (exit 1), not as unreadable (exit 2).
    let mut twice = entries.clone();
    let manifest = twice
        .iter()
        .find(|(n, _, _)| n == "manifest.json")
        .unwrap()
        .clone();
    twice.push(manifest);
    let path = dir.path().join("twice.zip");
    write_zip(&path, &twice).unwrap();
    let out = tandem(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("same name"));
}
