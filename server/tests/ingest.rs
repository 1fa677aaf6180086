//! Bundle ingest over real HTTP, on every backend: a sealed sample bundle whose approval,
//! ticket and policy the server signed goes in with PUT + commit and comes back with a
//! receipt that verifies offline; every forgery is quarantined, kept and named.

mod common;
mod ledger_support;

use ledger_support::{Phone, Upload, far_position, fresh, receipt_of, sample_position, variant};
use sqlx::Connection as _;
use tandem_core::bundle::testing::{SampleBundle, TICKET_ISSUED_MS};
use tandem_core::bundle::{
    BundleSignature, CheckName, CheckResult, ExportTarget, FolderSource, Manifest, SealedBundle,
    SignerRole, parse_signatures, signatures_to_bytes, verify_bundle, write_export,
};
use tandem_core::crypto::{SignatureAlgorithm, Signer as _, SoftwareSigner};
use tandem_core::model::{AgentId, EventKind, Signed, VisitTicket};
use tandem_core::tlog::verify_receipt;
use tandem_server::db::Db;

/// A server key for the app state and the same key for the sample (signers are not Clone).
fn server_keys() -> (SoftwareSigner, SoftwareSigner) {
    let (a, pkcs8) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let b = SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8).unwrap();
    (a, b)
}

fn rechain(manifest: &mut Manifest) {
    let mut prev = tandem_core::crypto::Digest::ZERO;
    for event in &mut manifest.events {
        event.prev = prev;
        prev = event.digest().unwrap();
    }
    manifest.events_head = prev;
}

fn problem_type(body: &serde_json::Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
}

struct Setup {
    _backend: common::TestBackend,
    server: common::TestServer,
    sample: SampleBundle,
    seeded: ledger_support::Seeded,
}

async fn setup(backend: common::TestBackend, address: tandem_core::place::Coordinate) -> Setup {
    let (for_state, for_sample) = server_keys();
    let state = backend.state_with(for_state).await;
    let sample = SampleBundle::with_server(for_sample).unwrap();
    let seeded = ledger_support::seed_sample(state.db.as_ref(), &sample, address).await;
    ledger_support::store_blobs(&state.blobs, &sample.blobs).await;
    let server = common::TestServer::start(state).await;
    Setup {
        _backend: backend,
        server,
        sample,
        seeded,
    }
}

impl Setup {
    fn lead(&self) -> Phone<'_> {
        Phone {
            base: &self.server.base,
            http: &self.server.http,
            token: &self.seeded.lead_token,
        }
    }

    fn partner(&self) -> Phone<'_> {
        Phone {
            base: &self.server.base,
            http: &self.server.http,
            token: &self.seeded.partner_token,
        }
    }

    fn db(&self) -> &dyn Db {
        self.server.state.db.as_ref()
    }

    /// PUT then commit by the lead; the commit's status and body.
    async fn send(&self, upload: &Upload) -> (u16, serde_json::Value) {
        let (status, body) = self.lead().put(upload).await;
        assert!(status == 201 || status == 200, "PUT {status}: {body}");
        let (status, _, body) = self.lead().commit(upload).await;
        (status, body)
    }
}

#[tokio::test]
async fn a_valid_bundle_is_accepted_and_its_receipt_verifies_offline() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let upload = fresh(&mut s.sample);

        let (status, put) = s.partner().put(&upload).await;
        assert_eq!(status, 201, "{label}: {put}");
        assert_eq!(put["status"], "pending");
        assert_eq!(put["manifest_digest"], upload.digest().to_hex());
        // Re-sending the same bytes changes nothing.
        let (status, again) = s.lead().put(&upload).await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(again["status"], "pending");

        let (status, bytes, answer) = s.lead().commit(&upload).await;
        assert_eq!(status, 200, "{label}: {answer}");
        assert_eq!(answer["verdict"], "accepted");
        assert_eq!(answer["flags"], serde_json::json!([]), "{label}");
        let server_key = s.server.state.signer.public_key();
        let receipt = receipt_of(&answer);
        let verified = verify_receipt(
            &receipt.receipt,
            &receipt.inclusion_proof,
            &receipt.checkpoint,
            &server_key,
            &upload.digest(),
        )
        .unwrap();
        assert_eq!(verified.receipt.bundle_id, upload.id);
        assert_eq!(verified.receipt.log_index, 0);
        assert_eq!(verified.checkpoint.tree_size, 1);

        // A retry (the phone never saw the answer) gets the very same bytes.
        let (status, retry, _) = s.partner().commit(&upload).await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(
            retry, bytes,
            "{label}: a retry must return the stored receipt"
        );
        let (status, put) = s.lead().put(&upload).await;
        assert_eq!((status, put["status"].as_str()), (200, Some("accepted")));

        // The export with receipt/ verifies offline with every check passing.
        let sealed = SealedBundle::from_bytes(
            upload.manifest.clone(),
            parse_signatures(&upload.signatures).unwrap(),
        )
        .unwrap()
        .with_receipt(receipt);
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("export");
        write_export(
            &sealed,
            &s.sample.blobs,
            Some(&server_key),
            ExportTarget::Folder(&folder),
        )
        .unwrap();
        let report = verify_bundle(&FolderSource::new(&folder), &s.sample.trust);
        assert!(report.is_valid(), "{label}: {report:#?}");
        for name in [
            CheckName::ServerReceipt,
            CheckName::InclusionProof,
            CheckName::Checkpoint,
            CheckName::TimeWindow,
            CheckName::Signatures,
        ] {
            assert_eq!(*report.result(name), CheckResult::Pass, "{label}: {name}");
        }

        // `tandem verify` on the export: the server's part is checked too, and a receipt
        // altered in the export (a court handed a doctored copy) fails.
        let trust = dir.path().join("keys.json");
        std::fs::write(&trust, s.sample.trust.to_json().unwrap()).unwrap();
        let verify = |folder: &std::path::Path| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
                .args(["verify", "--json", "--trust"])
                .arg(&trust)
                .arg(folder)
                .output()
                .unwrap()
        };
        let out = verify(&folder);
        assert_eq!(out.status.code(), Some(0), "{label}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let result = |json: &serde_json::Value, name: &str| {
            json["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap()["result"]
                .clone()
        };
        assert_eq!(result(&json, "server_receipt"), "pass", "{label}");
        assert_eq!(result(&json, "inclusion_proof"), "pass", "{label}");
        let receipt_file = folder.join(tandem_core::bundle::RECEIPT_FILE);
        let text = std::fs::read_to_string(&receipt_file).unwrap();
        std::fs::write(&receipt_file, text.replace("accepted", "quarantined")).unwrap();
        let out = verify(&folder);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{label}: a doctored receipt verified"
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result(&json, "server_receipt"), "fail", "{label}");
    }
}

#[tokio::test]
async fn missing_blobs_are_listed_and_nothing_is_committed() {
    for backend in common::backends().await {
        let label = backend.label;
        let (for_state, for_sample) = server_keys();
        let state = backend.state_with(for_state).await;
        let mut sample = SampleBundle::with_server(for_sample).unwrap();
        let seeded =
            ledger_support::seed_sample(state.db.as_ref(), &sample, sample_position()).await;
        let first = sample.blobs.values().next().unwrap().clone();
        let (blobs, bytes) = (state.blobs.clone(), first.clone());
        tokio::task::spawn_blocking(move || blobs.put_bytes(&bytes).unwrap())
            .await
            .unwrap();
        let server = common::TestServer::start(state).await;
        let phone = Phone {
            base: &server.base,
            http: &server.http,
            token: &seeded.lead_token,
        };
        let upload = fresh(&mut sample);
        let (status, put) = phone.put(&upload).await;
        assert_eq!(status, 201);
        assert_eq!(put["missing_blobs"].as_array().unwrap().len(), 2, "{label}");

        let (status, _, body) = phone.commit(&upload).await;
        assert_eq!(status, 409, "{label}: {body}");
        assert_eq!(problem_type(&body), "bundle-blobs-missing");
        let mut missing: Vec<String> = serde_json::from_value(body["missing"].clone()).unwrap();
        missing.sort();
        let mut expected: Vec<String> = sample
            .blobs
            .iter()
            .filter(|(_, b)| **b != first)
            .map(|(d, _)| d.to_hex())
            .collect();
        expected.sort();
        assert_eq!(missing, expected, "{label}");
        assert_eq!(server.state.db.log_size().await.unwrap(), 0, "{label}");

        ledger_support::store_blobs(&server.state.blobs, &sample.blobs).await;
        let (status, _, body) = phone.commit(&upload).await;
        assert_eq!(status, 200, "{label}: {body}");
    }
}

/// One forgery: how it is made and the check that must name it.
type Forgery = (
    &'static str,
    CheckName,
    Box<dyn Fn(&mut SampleBundle) -> Upload>,
);

fn forgeries() -> Vec<Forgery> {
    vec![
        // Actor: a network attacker replaying the evidence under a new id.
        (
            "replay under a new bundle id",
            CheckName::Signatures,
            Box::new(|s| {
                let signed = fresh(s);
                let mut manifest = Manifest::parse(&signed.manifest).unwrap();
                manifest.bundle_id = tandem_core::model::BundleId::new();
                Upload {
                    id: manifest.bundle_id,
                    manifest: manifest.to_canonical_bytes().unwrap(),
                    signatures: signed.signatures,
                }
            }),
        ),
        // Actor: a malicious insider altering one signature byte after the fact.
        (
            "a signature byte changed",
            CheckName::Signatures,
            Box::new(|s| {
                let mut u = fresh(s);
                let mut sigs = parse_signatures(&u.signatures).unwrap();
                sigs[1].sig[5] ^= 1;
                u.signatures = signatures_to_bytes(&sigs).unwrap();
                u
            }),
        ),
        // Actor: anyone sending bad input: a signatures file that is not canonical.
        (
            "a non-canonical signatures file",
            CheckName::Signatures,
            Box::new(|s| {
                let mut u = fresh(s);
                u.signatures.insert(1, b' ');
                u
            }),
        ),
        // Actor: a lone agent signing as both lead and partner (V03).
        (
            "one agent signing both roles",
            CheckName::Signatures,
            Box::new(|s| {
                let mut u = fresh(s);
                let both = vec![
                    BundleSignature::sign(&s.lead, SignerRole::Lead, s.lead_agent, &u.manifest)
                        .unwrap(),
                    BundleSignature::sign(&s.lead, SignerRole::Partner, s.lead_agent, &u.manifest)
                        .unwrap(),
                ];
                u.signatures = signatures_to_bytes(&both).unwrap();
                u
            }),
        ),
        // Actor: a colluding pair bringing in a signer who is not on the approved team.
        (
            "a signer not on the approved team",
            CheckName::Signatures,
            Box::new(|s| {
                let mut u = fresh(s);
                let (outsider, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
                let mut sigs = parse_signatures(&u.signatures).unwrap();
                sigs[1] = BundleSignature::sign(
                    &outsider,
                    SignerRole::Partner,
                    AgentId::new(),
                    &u.manifest,
                )
                .unwrap();
                u.signatures = signatures_to_bytes(&sigs).unwrap();
                u
            }),
        ),
        // Actor: a colluding pair removing an event and re-signing.
        (
            "an event removed",
            CheckName::EventChain,
            Box::new(|s| {
                variant(s, |m| {
                    m.events.remove(2);
                })
            }),
        ),
        // Actor: a colluding pair shrinking a blob's recorded size.
        (
            "a blob's size changed",
            CheckName::BlobDigests,
            Box::new(|s| variant(s, |m| m.blobs[0].size -= 1)),
        ),
        // Actor: a colluding pair forging the manager's approval with their own key.
        (
            "an approval signed by another key",
            CheckName::ApprovalSignature,
            Box::new(|s| {
                let (rogue, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
                let original = s.manifest.clone();
                s.resign_approval(&rogue).unwrap();
                let u = fresh(s);
                s.manifest = original;
                u
            }),
        ),
        // Actor: a colluding pair reusing a ticket of another visit.
        (
            "a ticket for another visit",
            CheckName::TicketSignature,
            Box::new(|s| {
                let server = &s.server;
                let mut ticket: VisitTicket = tandem_core::canonical::from_canonical_slice(
                    s.manifest.visit.ticket.body.as_bytes(),
                )
                .unwrap();
                ticket.visit_id = tandem_core::model::VisitId::new();
                let signed = Signed::sign(&ticket, server).unwrap();
                variant(s, |m| {
                    m.visit.ticket_digest = signed.digest();
                    m.visit.ticket = signed;
                })
            }),
        ),
        // Actor: a colluding pair sealing on the partner's phone instead of the lead's.
        (
            "a sealing device that is not the lead's phone",
            CheckName::DeviceChain,
            Box::new(|s| {
                let partner = s.partner_device;
                variant(s, |m| m.device.device_id = partner)
            }),
        ),
        // Actor: an agent who cheats the clock (an event before the ticket existed).
        (
            "an event before the ticket was issued",
            CheckName::TimeWindow,
            Box::new(|s| {
                variant(s, |m| {
                    let last = m.events.last_mut().unwrap();
                    last.at.anchor_ms = Some(TICKET_ISSUED_MS - 3_600_000);
                    m.events_head = last.digest().unwrap();
                })
            }),
        ),
        // Actor: a lone agent re-sealing without the partner phone's co-signature (V03).
        (
            "a check-in the partner never co-signed",
            CheckName::Rules,
            Box::new(|s| {
                variant(s, |m| {
                    for e in &mut m.events {
                        if let EventKind::CheckedIn { cosignature, .. } = &mut e.kind {
                            *cosignature = None;
                        }
                    }
                    rechain(m);
                })
            }),
        ),
    ]
}

#[tokio::test]
async fn every_forgery_is_quarantined_kept_logged_and_named() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let forgeries = forgeries();
        for (i, (what, check, make)) in forgeries.iter().enumerate() {
            let upload = make(&mut s.sample);
            let (status, body) = s.send(&upload).await;
            assert_eq!(status, 422, "{label}: {what}: {body}");
            assert_eq!(problem_type(&body), "bundle-quarantined", "{label}: {what}");
            let failed: Vec<String> =
                serde_json::from_value(body["failed_checks"].clone()).unwrap();
            assert!(
                failed.contains(&check.as_str().to_owned()),
                "{label}: {what}: expected {check} in {failed:?}"
            );
            assert_eq!(body["verdict"], "quarantined");
            // Quarantined evidence is logged too, with a receipt saying so.
            let receipt = receipt_of(&body);
            let verified = verify_receipt(
                &receipt.receipt,
                &receipt.inclusion_proof,
                &receipt.checkpoint,
                &s.server.state.signer.public_key(),
                &upload.digest(),
            )
            .unwrap();
            assert_eq!(verified.receipt.log_index, i as u64, "{label}: {what}");
            assert_eq!(
                verified.receipt.verdict,
                tandem_core::tlog::Verdict::Quarantined
            );
            let flags = s.db().flags(upload.id).await.unwrap();
            assert!(
                flags.iter().any(|f| f.kind == "quarantine"),
                "{label}: {what}: {flags:?}"
            );
            // And a retry answers the same, without a second log entry.
            let (status, _, again) = s.lead().commit(&upload).await;
            assert_eq!(status, 422);
            assert_eq!(again["receipt"], body["receipt"], "{label}: {what}");
        }
        assert_eq!(s.db().log_size().await.unwrap(), forgeries.len() as u64);
    }
}

#[tokio::test]
async fn a_device_revoked_before_the_seal_is_rejected() {
    // Actor: a thief with a lost phone whose key was revoked, signing afterwards.
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let upload = fresh(&mut s.sample);
        let sealed_at = Manifest::parse(&upload.manifest).unwrap().sealed_at_ms;
        let (status, _) = s.lead().put(&upload).await;
        assert_eq!(status, 201);
        assert!(
            s.db()
                .revoke_device(s.sample.partner_device, sealed_at - 1, "reported lost")
                .await
                .unwrap()
        );
        let (status, _, body) = s.lead().commit(&upload).await;
        assert_eq!(status, 422, "{label}: {body}");
        let failed: Vec<String> = serde_json::from_value(body["failed_checks"].clone()).unwrap();
        assert_eq!(failed, vec!["signatures".to_owned()], "{label}");
        let detail = body["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "signatures")
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains("revoked"), "{label}: {detail}");
    }
}

#[tokio::test]
async fn a_second_manifest_under_a_used_id_is_equivocation_and_kept_for_review() {
    // Actor: a malicious insider or a colluding pair handing in another version of a visit.
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let upload = fresh(&mut s.sample);
        let (status, _) = s.send(&upload).await;
        assert_eq!(status, 200, "{label}");
        let id = upload.id;
        let other = variant(&mut s.sample, |m| {
            m.bundle_id = id;
            m.sealed_at_ms += 1;
        });
        assert_eq!(other.id, id);
        let (status, body) = s.lead().put(&other).await;
        assert_eq!(status, 409, "{label}: {body}");
        assert_eq!(problem_type(&body), "bundle-equivocation");
        let (status, _, body) = s.lead().commit(&other).await;
        assert_eq!(status, 409, "{label}: {body}");
        assert_eq!(problem_type(&body), "bundle-equivocation");
        let flags = s.db().flags(id).await.unwrap();
        let equivocations: Vec<_> = flags.iter().filter(|f| f.kind == "equivocation").collect();
        assert_eq!(equivocations.len(), 2, "{label}: {flags:?}");
        assert_eq!(
            equivocations[0].other_digest.as_deref(),
            Some(other.digest().to_hex().as_str())
        );
        // The stored bundle is untouched: its receipt is still the same.
        let (status, _, body) = s.lead().commit(&upload).await;
        assert_eq!((status, body["verdict"].as_str()), (200, Some("accepted")));
        // The same manifest with other signature bytes replaces nothing either.
        let mut resigned = upload.clone();
        let mut sigs = parse_signatures(&resigned.signatures).unwrap();
        sigs.swap(0, 1);
        resigned.signatures = signatures_to_bytes(&sigs).unwrap();
        let (status, body) = s.lead().put(&resigned).await;
        assert_eq!(status, 409, "{label}");
        assert_eq!(problem_type(&body), "bundle-conflict");
    }
}

#[tokio::test]
async fn only_the_leads_or_partners_phone_may_send_the_bundle() {
    // Actor: an agent of another team (or bank) pushing evidence into someone else's visit.
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let (_, other_key) = server_keys();
        let other = SampleBundle::with_server(other_key).unwrap();
        let stranger = ledger_support::seed_sample(s.db(), &other, sample_position()).await;
        let upload = fresh(&mut s.sample);
        let phone = Phone {
            base: &s.server.base,
            http: &s.server.http,
            token: &stranger.lead_token,
        };
        // A phone of another bank and team: the 404 of an unknown id, and nothing stored.
        let (status, body) = phone.put(&upload).await;
        assert_eq!(status, 404, "{label}: {body}");
        assert_eq!(problem_type(&body), "not-found");
        assert!(s.db().bundle(upload.id).await.unwrap().is_none(), "{label}");
        let (status, _) = s.lead().put(&upload).await;
        assert_eq!(status, 201);
        let (status, _, body) = phone.commit(&upload).await;
        assert_eq!(status, 404, "{label}: {body}");
    }
}

#[tokio::test]
async fn a_check_in_outside_the_case_address_fence_is_accepted_with_a_flag() {
    // Actor: an agent who cheats the place (2 km away): flagged for review, not refused
    // (DOMAIN.md V05: F), since the server checks the fix against its own case address.
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, far_position()).await;
        let upload = fresh(&mut s.sample);
        let (status, body) = s.send(&upload).await;
        assert_eq!(status, 200, "{label}: {body}");
        let flags: Vec<String> = serde_json::from_value(body["flags"].clone()).unwrap();
        assert!(
            flags
                .iter()
                .any(|f| f.starts_with("case_address: V05") && f.contains("outside")),
            "{label}: {flags:?}"
        );
        let stored = s.db().flags(upload.id).await.unwrap();
        assert!(stored.iter().any(|f| f.kind == "review"), "{label}");
    }
}

#[tokio::test]
async fn a_bundle_for_a_case_the_server_does_not_hold_is_quarantined() {
    // Actor: a colluding pair inventing a visit to a case that was never entrusted.
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let upload = variant(&mut s.sample, |m| {
            m.visit.case_id = tandem_core::model::CaseId::new();
        });
        let (status, body) = s.send(&upload).await;
        assert_eq!(status, 422, "{label}: {body}");
        let failed: Vec<String> = serde_json::from_value(body["failed_checks"].clone()).unwrap();
        assert!(
            failed.contains(&"case_address".to_owned()),
            "{label}: {failed:?}"
        );
    }
}

/// The search's row of a bundle's visit, read straight from the database: (bundle, status).
async fn search_row(b: &common::TestBackend, visit: uuid::Uuid) -> Option<(String, String)> {
    const SQL: &str = "SELECT bundle_id, status FROM evidence_visits WHERE visit_id = $1";
    if b.label == "postgres" {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        let q = sqlx::query_as(SQL).bind(visit.to_string());
        q.fetch_optional(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        let q = sqlx::query_as(SQL).bind(visit.to_string());
        q.fetch_optional(&mut c).await.unwrap()
    }
}

/// Deletes the search's row of a visit beside the server's pool: a visit committed by an
/// older server whose write after the commit never came.
async fn drop_search_row(b: &common::TestBackend, visit: uuid::Uuid) {
    const SQL: &str = "DELETE FROM evidence_visits WHERE visit_id = $1";
    if b.label == "postgres" {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        let q = sqlx::query(SQL).bind(visit.to_string());
        assert_eq!(q.execute(&mut c).await.unwrap().rows_affected(), 1);
    } else {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        let q = sqlx::query(SQL).bind(visit.to_string());
        assert_eq!(q.execute(&mut c).await.unwrap().rows_affected(), 1);
    }
}

#[tokio::test]
async fn a_committed_visit_is_in_the_evidence_search_as_soon_as_it_is_committed() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut s = setup(backend, sample_position()).await;
        let visit = s.sample.manifest.visit.visit_id.0;
        let b = &s._backend;
        assert_eq!(search_row(b, visit).await, None, "{label}");

        // The commit writes the row in its own transaction: there when the answer comes.
        let first = fresh(&mut s.sample);
        let (status, body) = s.send(&first).await;
        assert_eq!(status, 200, "{label}: {body}");
        let row = Some((first.id.to_string(), "accepted".to_owned()));
        assert_eq!(search_row(b, visit).await, row, "{label}");
        // A later bundle of the same visit replaces it, quarantined or not.
        let mut second = fresh(&mut s.sample);
        let mut sigs = parse_signatures(&second.signatures).unwrap();
        sigs[1].sig[5] ^= 1;
        second.signatures = signatures_to_bytes(&sigs).unwrap();
        let (status, body) = s.send(&second).await;
        assert_eq!(status, 422, "{label}: {body}");
        let row = Some((second.id.to_string(), "quarantined".to_owned()));
        assert_eq!(search_row(b, visit).await, row, "{label}");
        assert!(s.db().unindexed_bundles().await.unwrap().is_empty());
        // A retry of the older commit leaves the newer row.
        let (status, _, body) = s.lead().commit(&first).await;
        assert_eq!(status, 200, "{label}: {body}");
        assert_eq!(search_row(b, visit).await, row, "{label}");

        // A visit committed before commits wrote the row (it is missing): written at start,
        // from its newest bundle, once.
        drop_search_row(b, visit).await;
        assert_eq!(
            s.db().unindexed_bundles().await.unwrap(),
            vec![first.id, second.id],
            "{label}"
        );
        let state = &s.server.state;
        let written = tandem_server::ingest::index_unindexed_evidence(state).await;
        assert_eq!(written.unwrap(), 2, "{label}");
        assert_eq!(search_row(b, visit).await, row, "{label}");
        let written = tandem_server::ingest::index_unindexed_evidence(state).await;
        assert_eq!(written.unwrap(), 0, "{label}");
    }
}
