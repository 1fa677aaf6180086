//! A bank's contract ends (seed 5.2.5, E04): `tandem bank destroy` refuses inside retention,
//! under a legal hold and without a second administrator; afterwards that bank's blobs
//! cannot be decrypted from any copy (crypto-shredding) and are gone from storage, the
//! other bank's still read back and verify, no stored file holds plaintext evidence, and
//! the certificate verifies with the real `openssl` against the server key.
//!
//! Actors: a bank whose contract ended and who must be sure no copy is kept; a thief of a
//! disk or a backup (no plaintext at rest); an administrator acting alone (refused).

mod common;
mod ledger_support;

use std::path::Path;
use std::process::{Command, Output};

use ledger_support::{Phone, fresh, sample_position};
use sqlx::Connection as _;
use tandem_core::bundle::testing::SampleBundle;
use tandem_core::crypto::{Digest, SignatureAlgorithm, SoftwareSigner, sha256};
use tandem_server::audit::AuditAction;
use tandem_server::blobstore::{BlobStoreError, KeyringError};
use tandem_server::db::{NewUser, Role};
use uuid::Uuid;

const DAY_MS: i64 = 86_400_000;

/// One text value read beside the server.
async fn scalar(b: &common::TestBackend, sql: &str) -> String {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if b.label == "postgres" {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

fn destroy(b: &common::TestBackend, code: &str, by: &str, approver: &str, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["bank", "destroy", "--bank", code])
        .args(["--requested-by", by, "--approved-by", approver, "--out"])
        .arg(out)
        .arg("--data-dir")
        .arg(b.dir.path())
        .env("DATABASE_URL", &b.url)
        .env_remove("TANDEM_MASTER_KEY")
        .env_remove("TANDEM_MASTER_KEY_FILE")
        .env_remove("TANDEM_KEY_FILE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn admin(db: &dyn tandem_server::db::Db, bank: tandem_core::model::BankId) -> String {
    let login = format!("admin-{}", Uuid::now_v7().simple());
    let user = NewUser {
        id: Uuid::now_v7(),
        login: login.clone(),
        display_name: "Admin".into(),
        role: Role::Admin,
        password_hash: Some("$argon2id$unusable".into()),
        bank_ids: vec![bank],
    };
    db.create_user(&user, tandem_server::clock::system_now_ms(), &[])
        .await
        .unwrap();
    login
}

/// Whether a stored blob opens (blocking work off the test's thread).
async fn readable(store: &tandem_server::blobstore::BlobStore, d: Digest) -> Result<(), String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut out = Vec::new();
        match store.open_read(&d) {
            Ok(mut r) => r
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    (sha256(&out) == d)
                        .then_some(())
                        .ok_or_else(|| "wrong bytes".to_owned())
                }),
            Err(BlobStoreError::Keys(KeyringError::NoKey(_))) => Err("no key".into()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banks_key_destroyed_after_retention_leaves_its_evidence_unreadable_and_others_whole() {
    for b in common::backends().await {
        let label = b.label;
        let (signer, pkcs8) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        std::fs::write(b.dir.path().join("server-key.p8"), &pkcs8).unwrap();
        let state = b.state_with(signer).await;
        let server_signer =
            || SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8).unwrap();
        let mut bank_a = SampleBundle::with_server(server_signer()).unwrap();
        let mut bank_b = SampleBundle::with_server(server_signer()).unwrap();
        let (a, bb) = (bank_a.manifest.visit.bank_id, bank_b.manifest.visit.bank_id);
        assert_ne!(a, bb, "{label}: two banks");
        let seeded_a =
            ledger_support::seed_sample(state.db.as_ref(), &bank_a, sample_position()).await;
        let seeded_b =
            ledger_support::seed_sample(state.db.as_ref(), &bank_b, sample_position()).await;
        ledger_support::store_blobs(&state.blobs, &bank_a.blobs).await;
        ledger_support::store_blobs(&state.blobs, &bank_b.blobs).await;
        let server = common::TestServer::start(state.clone()).await;
        for (sample, token) in [
            (&mut bank_a, &seeded_a.lead_token),
            (&mut bank_b, &seeded_b.lead_token),
        ] {
            let upload = fresh(sample);
            let phone = Phone {
                base: &server.base,
                http: &server.http,
                token,
            };
            assert_eq!(phone.put(&upload).await.0, 201, "{label}");
            let (status, _, body) = phone.commit(&upload).await;
            assert_eq!(status, 200, "{label}: {body}");
        }
        let a_blobs: Vec<Digest> = bank_a.blobs.keys().copied().collect();
        let b_blobs: Vec<Digest> = bank_b.blobs.keys().copied().collect();
        // Actor: a thief of the disk: not one 64-byte run of any photo or recording lies in
        // the data folder (blobs, database, anything).
        for (d, bytes) in bank_a.blobs.iter().chain(&bank_b.blobs) {
            if bytes.len() >= 64 {
                let middle = &bytes[bytes.len() / 2 - 32..bytes.len() / 2 + 32];
                assert!(
                    common::occurs_in_files(b.dir.path(), middle).is_empty(),
                    "{label}: plaintext of {d} at rest"
                );
            }
        }
        let code = scalar(&b, &format!("SELECT code FROM banks WHERE id = '{a}'")).await;
        assert_eq!(
            state
                .db
                .bank_by_code(&code)
                .await
                .unwrap()
                .map(|(id, _)| id),
            Some(a.to_string()),
            "{label}"
        );
        let first = admin(state.db.as_ref(), a).await;
        let second = admin(state.db.as_ref(), a).await;
        let out = tempfile::tempdir().unwrap();

        // Inside retention: refused, naming E04 and the last day; nothing changes.
        let o = destroy(&b, &code, &first, &second, out.path());
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{label}: {stdout}{stderr}");
        assert!(
            stderr.contains("E04") && stderr.contains("kept until"),
            "{label}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
        for d in &a_blobs {
            assert_eq!(readable(&state.blobs, *d).await, Ok(()), "{label}");
        }

        // Three years later (the bank's bundles moved back in time), under a legal hold:
        // refused naming the hold.
        let back = 3 * 366 * DAY_MS;
        common::raw_sql(
            &b,
            &[format!(
                "UPDATE bundles SET received_ms = received_ms - {back}, \
                 committed_ms = committed_ms - {back} WHERE bank_id = '{a}'"
            )],
        )
        .await;
        let hold = tandem_server::db::retention::NewHold {
            id: Uuid::now_v7(),
            bank_id: a,
            case_id: bank_a.manifest.visit.case_id,
            visit_id: None,
            reference: "LIT-2026-0042".into(),
            reason: "court order".into(),
            placed_by: state.db.user_credentials(&first).await.unwrap().unwrap().id,
            placed_ms: tandem_server::clock::system_now_ms(),
        };
        let entry = tandem_server::audit::AuditEntry::new(
            hold.placed_ms,
            AuditAction::LegalHoldPlaced,
            "case",
            Some(hold.case_id.to_string()),
        );
        state.db.place_hold(&hold, &entry).await.unwrap();
        let o = destroy(&b, &code, &first, &second, out.path());
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{label}: {stdout}{stderr}");
        assert!(
            stderr.contains("legal hold LIT-2026-0042"),
            "{label}: {stderr}"
        );
        let lift = tandem_server::audit::AuditEntry::new(
            hold.placed_ms,
            AuditAction::LegalHoldLifted,
            "case",
            Some(hold.case_id.to_string()),
        );
        assert!(
            state
                .db
                .lift_hold(
                    hold.id,
                    hold.placed_by,
                    "case closed",
                    hold.placed_ms,
                    &lift
                )
                .await
                .unwrap()
        );

        // One administrator alone, or someone who is not one of the bank's: refused.
        let o = destroy(&b, &code, &first, &first.to_uppercase(), out.path());
        assert_eq!(o.status.code(), Some(1), "{label}");
        assert!(
            text(&o).1.contains("second person"),
            "{label}: {:?}",
            text(&o)
        );
        let outsider = admin(state.db.as_ref(), bb).await;
        let o = destroy(&b, &code, &first, &outsider, out.path());
        assert_eq!(o.status.code(), Some(1), "{label}");
        assert!(text(&o).1.contains("not an administrator"), "{label}");
        for d in &a_blobs {
            assert_eq!(
                readable(&state.blobs, *d).await,
                Ok(()),
                "{label}: nothing changed yet"
            );
        }

        // Destroyed: bank A's blobs no longer decrypt (from any copy: a copy of the folder
        // taken before has no key left either) and are gone; bank B's read back whole.
        let copy = tempfile::tempdir().unwrap();
        for d in &a_blobs {
            let hex = d.to_hex();
            let from = state.blobs.path(d);
            std::fs::create_dir_all(copy.path().join(&hex[..2])).unwrap();
            std::fs::copy(&from, copy.path().join(&hex[..2]).join(&hex)).unwrap();
        }
        let o = destroy(&b, &code, &first, &second, out.path());
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{label}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("{} blobs made unreadable", a_blobs.len())),
            "{label}: {stdout}"
        );
        for d in &a_blobs {
            assert_eq!(
                readable(&state.blobs, *d).await,
                Err("no key".into()),
                "{label}"
            );
            assert!(!state.blobs.path(d).exists(), "{label}: {d} removed");
        }
        let backup =
            tandem_server::blobstore::BlobStore::open(copy.path(), state.blobs.keys().clone())
                .unwrap();
        for d in &a_blobs {
            assert_eq!(
                readable(&backup, *d).await,
                Err("no key".into()),
                "{label}: the old copy too"
            );
        }
        for d in &b_blobs {
            assert_eq!(
                readable(&state.blobs, *d).await,
                Ok(()),
                "{label}: bank B untouched"
            );
        }
        // Nothing can be sealed for the destroyed bank any more.
        assert!(matches!(
            state
                .blobs
                .keys()
                .grant(&a.to_string(), &b_blobs[..1], 0)
                .await,
            Err(KeyringError::BankDestroyed(_))
        ));
        // The certificate: it names every blob shredded and verifies with openssl.
        let json = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "json"))
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(doc["format"], "tandem.bank-destruction-certificate/v1");
        assert_eq!(doc["bank"]["code"], code.as_str());
        let mut listed: Vec<String> = doc["blobs_shredded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        listed.sort();
        let mut expected: Vec<String> = a_blobs.iter().map(Digest::to_hex).collect();
        expected.sort();
        assert_eq!(listed, expected, "{label}");
        let verify = |file: &Path| {
            Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
                .arg(out.path().join("server-key.pem"))
                .args(["-rawin", "-in"])
                .arg(file)
                .arg("-sigfile")
                .arg(json.with_extension("sig"))
                .output()
                .expect("openssl")
        };
        let ok = verify(&json);
        assert!(ok.status.success(), "{label}: {ok:?}");
        let mut altered = std::fs::read(&json).unwrap();
        let at = altered.len() / 2;
        altered[at] ^= 1;
        let altered_path = out.path().join("altered.json");
        std::fs::write(&altered_path, &altered).unwrap();
        assert!(!verify(&altered_path).status.success(), "{label}");

        // In the audit log, and once only.
        let again = destroy(&b, &code, &first, &second, out.path());
        assert_eq!(again.status.code(), Some(1), "{label}");
        assert!(text(&again).1.contains("destroyed already"), "{label}");
        let logged = scalar(
            &b,
            &format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log \
                 WHERE action = 'bank-destroyed' AND bank_id = '{a}'"
            ),
        )
        .await;
        assert_eq!(logged, "1", "{label}");

        // Actor: a phone of the destroyed bank still holding a visit: its commit is
        // refused with a problem naming why, and nothing is stored for the bank.
        let late = fresh(&mut bank_a);
        ledger_support::store_blobs(&state.blobs, &bank_a.blobs).await;
        let phone = Phone {
            base: &server.base,
            http: &server.http,
            token: &seeded_a.lead_token,
        };
        assert_eq!(phone.put(&late).await.0, 201, "{label}");
        let (status, _, body) = phone.commit(&late).await;
        assert_eq!(status, 410, "{label}: {body}");
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("bank-destroyed")),
            "{label}: {body}"
        );
    }
}
