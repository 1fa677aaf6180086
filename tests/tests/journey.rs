//! The whole journey, on SQLite, PostgreSQL, and PostgreSQL with the evidence in a bucket
//! of a real 3-node Garage cluster: a manager approves a visit request, both
//! agents' phones sync, the team checks in with the two-phone handshake, records audio,
//! photos and a note, co-signs a cash receipt, checks out and seals; the lead's phone
//! uploads; the server's receipt is verified on the phone, which then purges the media;
//! legal staff export the bundle and `tandem verify` accepts it.

use std::process::Command;

use tandem_core::model::VisitState;
use tandem_e2e::field::TeamSpec;
use tandem_e2e::{Server, Team, backends, backends_with_garage, tandem_binary};
use tandem_server::db::Role;

/// `tandem verify FILE`, as legal staff run it.
fn tandem_verify(file: &std::path::Path) -> std::process::Output {
    Command::new(tandem_binary())
        .arg("verify")
        .arg(file)
        .output()
        .expect("run tandem verify")
}

/// `tandem verify FILE --server-key FINGERPRINT`, as a court's expert runs it with the
/// fingerprint from the bank's letter: every check runs, none is "not checked".
fn assert_verified_by_fingerprint(file: &std::path::Path, server: &Server, label: &str) {
    use tandem_core::crypto::Signer as _;
    let fingerprint = server.state.signer.public_key().kid().to_string();
    let out = Command::new(tandem_binary())
        .arg("verify")
        .arg(file)
        .args(["--server-key", &fingerprint])
        .output()
        .expect("run tandem verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{label}:\n{stdout}");
    assert!(stdout.contains("(0 not checked"), "{label}:\n{stdout}");
}

#[test]
fn a_visit_goes_from_request_to_evidence_a_lawyer_can_check() {
    for backend in backends_with_garage("journey") {
        let server = Server::start(backend);
        let label = server.label;
        let manager = server.console(Role::Manager);
        let legal = server.console(Role::Legal);
        let root = tempfile::tempdir().unwrap();
        let team = Team::assemble(&server, &manager, root.path(), &TeamSpec::default());
        assert_eq!(team.state(), VisitState::Assigned, "{label}");
        assert_eq!(
            team.partner.phone.visit(team.visit).unwrap().visit.state,
            VisitState::Assigned,
            "{label}: the partner's phone holds the visit too"
        );

        let seal = team.record_visit(
            75,
            &[
                "gps-DSCN0010.jpg",
                "mobile-jolla.jpg",
                "orientation-portrait_6.jpg",
            ],
            Some(120_000),
        );
        let before = team.lead.phone.sync_status().unwrap();
        assert_eq!(
            before.outbox.pending, 1,
            "{label}: the sealed visit waits in the outbox"
        );
        assert!(before.outbox.bytes_left > 1_000_000, "{label}: {before:?}");
        let held = team.sealed_blobs();
        assert!(
            team.lead_holds(&held).0,
            "{label}: the phone holds its evidence"
        );

        let report = team.lead.sync().expect("sync");
        assert_eq!(report.pushed.acknowledged, 1, "{label}: {report:?}");
        assert_eq!(report.pushed.quarantined, 0, "{label}: {report:?}");
        assert_eq!(
            report.purged_visits, 1,
            "{label}: media purged after the receipt"
        );
        assert_eq!(report.status.outbox.pending, 0, "{label}");
        assert_eq!(report.status.outbox.done, 1, "{label}");
        assert_eq!(team.state(), VisitState::Purged, "{label}");
        assert!(
            team.lead_holds(&held).1,
            "{label}: no media of the acknowledged visit is left on the phone"
        );
        // The partner's phone syncs too: nothing to send, nothing lost.
        let partner = team.partner.sync().expect("partner sync");
        assert_eq!(partner.pushed.acknowledged, 0, "{label}");

        let bundles = legal.visit_bundles(&team.visit_text);
        assert_eq!(
            bundles,
            vec![(seal.bundle_id.to_string(), "accepted".to_owned())],
            "{label}: the server holds the visit exactly once, accepted"
        );
        // Every blob reads back whole through the server's store (folder or bucket).
        for digest in &held {
            server
                .verify_blob(digest)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        let zip = legal.export(&bundles[0].0);
        let path = root.path().join("evidence.zip");
        std::fs::write(&path, &zip).unwrap();
        let verify = tandem_verify(&path);
        let out = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success(),
            "{label}: tandem verify refused the export:\n{out}\n{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert_verified_by_fingerprint(&path, &server, label);
        // The export is checked against a key the lawyer holds, not one the export names:
        // a tampered copy fails.
        let tampered = root.path().join("tampered.zip");
        let mut bytes = zip.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(&tampered, &bytes).unwrap();
        let refused = tandem_verify(&tampered);
        assert!(
            !refused.status.success(),
            "{label}: a flipped byte must be caught"
        );
        println!(
            "{label}: bundle {} of {} bytes verified",
            seal.bundle_id,
            zip.len()
        );
    }
}

/// Unpacks an export as a lawyer would, to type `VERIFY.txt`'s steps in it.
fn unpack(zip: &std::path::Path, into: &std::path::Path) {
    for (name, bytes, _) in tandem_core::bundle::testing::zip_entries(zip).unwrap() {
        let path = into.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Android Keystore and the Secure Enclave sign only with P-256: a team of two such phones,
/// and a team of one such phone and one Ed25519 phone, seal evidence that goes through the
/// real server, its export, `tandem verify` and `VERIFY.txt`'s steps typed with openssl.
#[test]
fn p256_and_mixed_teams_seal_evidence_that_verifies_end_to_end() {
    use tandem_core::crypto::{
        SignatureAlgorithm::EcdsaP256Sha256 as P256, SignatureAlgorithm::Ed25519, Signer as _,
    };
    for backend in backends() {
        let server = Server::start(backend);
        let label = server.label;
        let manager = server.console(Role::Manager);
        let legal = server.console(Role::Legal);
        let fingerprint = server.state.signer.public_key().kid().to_string();
        for (i, keys) in [(P256, P256), (Ed25519, P256)].into_iter().enumerate() {
            let root = tempfile::tempdir().unwrap();
            let spec = TeamSpec {
                agents: (2 * i, 2 * i + 1),
                case: i,
                keys,
                ..TeamSpec::default()
            };
            let team = Team::assemble(&server, &manager, root.path(), &spec);
            let seal = team.record_visit(5, &["gps-DSCN0010.jpg"], Some(10_000));
            let report = team.lead.sync().expect("sync");
            assert_eq!(
                report.pushed.acknowledged, 1,
                "{label} {keys:?}: {report:?}"
            );
            let zip = legal.export(&seal.bundle_id.to_string());
            let path = root.path().join("evidence.zip");
            std::fs::write(&path, &zip).unwrap();
            let verify = tandem_verify(&path);
            let out = String::from_utf8_lossy(&verify.stdout);
            assert!(verify.status.success(), "{label} {keys:?}:\n{out}");
            assert_verified_by_fingerprint(&path, &server, &format!("{label} {keys:?}"));
            let folder = root.path().join("unpacked");
            unpack(&path, &folder);
            for signer in ["lead", "partner"] {
                let p256 = if signer == "lead" { keys.0 } else { keys.1 } == P256;
                assert_eq!(
                    folder.join(format!("signatures/{signer}.der")).exists(),
                    p256,
                    "{label} {keys:?}: {signer}'s DER signature for openssl"
                );
            }
            let run = tandem_core::bundle::testing::run_verify_steps(&folder, &fingerprint);
            assert!(run.all_ok, "{label} {keys:?}: {run:#?}");
            let p256_checks = run
                .commands
                .iter()
                .filter(|(c, _, _)| c.contains("openssl dgst -sha256 -verify"))
                .count();
            assert_eq!(
                p256_checks,
                usize::from(keys.0 == P256) + usize::from(keys.1 == P256),
                "{label} {keys:?}"
            );
        }
    }
}
