//! Shared by the ingest, log and crash tests: a sample bundle's organisation (bank, its two
//! agents and their phones, the case and its address) seeded into a server database, and
//! the uploads a phone makes.

#![allow(dead_code)]

use std::collections::BTreeMap;

use tandem_core::bundle::testing::{SAMPLE_POSITION_E7, SampleBundle, TICKET_ISSUED_MS};
use tandem_core::bundle::{Manifest, ServerReceipt, signatures_to_bytes};
use tandem_core::crypto::{Digest, Signer as _, sha256};
use tandem_core::model::{AgentId, Approval, BundleId, MaskedCardNumber, MaskedIdNumber, Policy};
use tandem_core::place::{Coordinate, Datum};
use tandem_server::db::{
    Db, NewAddress, NewAgent, NewBank, NewCase, NewEnrollmentCode, NewUser, OrgSeed, Role,
};
use tandem_server::secrets;
use tandem_server::testing::seed::{device_token, enrol_device, record_approval};
use uuid::Uuid;

const DAY_MS: i64 = 86_400_000;

/// When the sample's phones were enrolled: a month before its visit.
pub const ENROLLED_MS: i64 = TICKET_ISSUED_MS - 30 * DAY_MS;

/// The sample's organisation as the server knows it, and its phones' bearer tokens.
pub struct Seeded {
    /// The lead phone's token.
    pub lead_token: String,
    /// The partner phone's token.
    pub partner_token: String,
    /// A session of a legal user of the sample's bank.
    pub legal_token: String,
}

/// The sample's phones' position, where the case's address is when the check-in is inside
/// the fence.
pub fn sample_position() -> Coordinate {
    Coordinate::new(SAMPLE_POSITION_E7.0, SAMPLE_POSITION_E7.1, Datum::Wgs84).unwrap()
}

/// 2 km north of the sample's phones: a check-in there is outside the fence.
pub fn far_position() -> Coordinate {
    Coordinate::new(
        SAMPLE_POSITION_E7.0 + 180_000,
        SAMPLE_POSITION_E7.1,
        Datum::Wgs84,
    )
    .unwrap()
}

fn approval(sample: &SampleBundle) -> Approval {
    tandem_core::canonical::from_canonical_slice(sample.manifest.visit.approval.body.as_bytes())
        .unwrap()
}

fn agent(id: AgentId, bank: tandem_core::model::BankId, tag: &str) -> (NewAgent, String) {
    let code = secrets::new_enrollment_code().unwrap();
    let agent = NewAgent {
        id,
        employee_no: format!("E-{tag}-{}", Uuid::now_v7().simple()),
        user: NewUser {
            id: Uuid::now_v7(),
            login: format!("agent-{tag}-{}", Uuid::now_v7().simple()),
            display_name: format!("Agent {tag}"),
            role: Role::Agent,
            password_hash: None,
            bank_ids: vec![bank],
        },
        enrollment: NewEnrollmentCode {
            id: Uuid::now_v7(),
            code_hash: secrets::enrollment_code_hash(&code),
            expires_ms: i64::MAX / 2,
        },
    };
    (agent, code)
}

/// Seeds the sample's bank, agents, case (its approved address at `address`) and enrols
/// both phones (a month before the visit). Returns the phones' tokens.
pub async fn seed_sample(db: &dyn Db, sample: &SampleBundle, address: Coordinate) -> Seeded {
    let visit = &sample.manifest.visit;
    let bank = visit.bank_id;
    let approval = approval(sample);
    let (lead, lead_code) = agent(sample.lead_agent, bank, "lead");
    let (partner, partner_code) = agent(sample.partner_agent, bank, "partner");
    let lead_user = lead.user.id;
    let legal = NewUser {
        id: Uuid::now_v7(),
        login: format!("legal-{}", Uuid::now_v7().simple()),
        display_name: "Legal".into(),
        role: Role::Legal,
        // Console users must have a password; this one signs in by a session made below,
        // so a hash no password matches will do.
        password_hash: Some("$argon2id$unusable".into()),
        bank_ids: vec![bank],
    };
    let legal_user = legal.id;
    let seed = OrgSeed {
        bank: NewBank {
            id: bank,
            code: format!("bank-{}", Uuid::now_v7().simple()),
            name: "Sample bank".into(),
        },
        policy_json: serde_json::to_string(&Policy::defaults(bank)).unwrap(),
        users: vec![legal],
        agents: vec![lead, partner],
        cases: vec![NewCase {
            id: visit.case_id,
            bank_id: bank,
            case_ref: visit.case_ref.clone(),
            card: MaskedCardNumber::mask("6222021234567890").unwrap(),
            debtor_name: "Sample debtor".into(),
            id_number: MaskedIdNumber::mask("310101198001011234").unwrap(),
            outstanding_fen: 100_000,
            entrustment_start_ms: ENROLLED_MS,
            entrustment_end_ms: ENROLLED_MS + 120 * DAY_MS,
            addresses: vec![NewAddress {
                id: approval.address_ids[0],
                text: "Sample address".into(),
                position: address,
            }],
        }],
        now_ms: ENROLLED_MS,
    };
    assert!(
        db.seed_org(&seed).await.unwrap(),
        "sample organisation seeded"
    );
    let (lead_token, partner_token) = (device_token(), device_token());
    for (code, device, key, token) in [
        (&lead_code, sample.lead_device, &sample.lead, &lead_token),
        (
            &partner_code,
            sample.partner_device,
            &sample.partner,
            &partner_token,
        ),
    ] {
        enrol_device(db, code, device, key.public_key(), token, ENROLLED_MS).await;
    }
    record_approval(db, &sample.manifest, lead_user, ENROLLED_MS).await;
    let legal_token = secrets::new_token(tandem_server::auth::SESSION_TOKEN_PREFIX).unwrap();
    db.create_session(
        &secrets::token_hash(&legal_token),
        legal_user,
        tandem_server::clock::system_now_ms(),
        i64::MAX / 2,
    )
    .await
    .unwrap();
    // The organisation is seeded in the past; its legal user's password counts from now, so
    // that A01's password age does not stand between these tests and the ledger.
    let hash = "$argon2id$unusable";
    assert!(
        db.change_password(&tandem_server::db::account::PasswordChange {
            user: legal_user,
            old_hash: hash,
            new_hash: hash,
            now_ms: tandem_server::clock::system_now_ms(),
            keep_session: &secrets::token_hash(&legal_token),
            keep_history: 0,
            client: None,
        })
        .await
        .unwrap()
    );
    Seeded {
        lead_token,
        partner_token,
        legal_token,
    }
}

/// One upload: the exact bytes a phone sends.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The bundle id.
    pub id: BundleId,
    /// `manifest.json`.
    pub manifest: Vec<u8>,
    /// `signatures.json`.
    pub signatures: Vec<u8>,
}

impl Upload {
    /// SHA-256 of the manifest.
    pub fn digest(&self) -> Digest {
        sha256(&self.manifest)
    }

    /// The `PUT` body.
    pub fn put_body(&self) -> serde_json::Value {
        serde_json::json!({
            "manifest": String::from_utf8(self.manifest.clone()).unwrap(),
            "signatures": String::from_utf8(self.signatures.clone()).unwrap(),
        })
    }

    /// The commit body.
    pub fn commit_body(&self) -> serde_json::Value {
        serde_json::json!({ "manifest_digest": self.digest().to_hex() })
    }
}

/// The sample sealed as it is, under a fresh bundle id.
pub fn fresh(sample: &mut SampleBundle) -> Upload {
    variant(sample, |_| {})
}

/// The sample with its manifest edited (under a fresh bundle id) and re-sealed by both
/// agents; the sample itself is left as it was.
pub fn variant(sample: &mut SampleBundle, edit: impl FnOnce(&mut Manifest)) -> Upload {
    let original = sample.manifest.clone();
    sample.manifest.bundle_id = BundleId::new();
    edit(&mut sample.manifest);
    let sealed = sample.seal().unwrap();
    sample.manifest = original;
    Upload {
        id: sealed.manifest.bundle_id,
        manifest: sealed.manifest_bytes.clone(),
        signatures: signatures_to_bytes(&sealed.signatures).unwrap(),
    }
}

/// Puts every blob of the sample in the server's blob store.
pub async fn store_blobs(
    store: &tandem_server::blobstore::BlobStore,
    blobs: &BTreeMap<Digest, Vec<u8>>,
) {
    // Storing seals under keys kept in the database: blocking work, off the runtime's thread.
    let (store, blobs) = (store.clone(), blobs.clone());
    tokio::task::spawn_blocking(move || {
        for bytes in blobs.values() {
            store.put_bytes(bytes).unwrap();
        }
    })
    .await
    .unwrap();
}

/// The receipt part of a commit answer (200 or the 422 quarantine problem).
pub fn receipt_of(answer: &serde_json::Value) -> ServerReceipt {
    serde_json::from_value(serde_json::json!({
        "receipt": answer["receipt"],
        "inclusion_proof": answer["inclusion_proof"],
        "checkpoint": answer["checkpoint"],
    }))
    .unwrap()
}

/// A phone's HTTP calls.
pub struct Phone<'a> {
    /// `http://127.0.0.1:PORT`.
    pub base: &'a str,
    /// The client.
    pub http: &'a reqwest::Client,
    /// Its bearer token.
    pub token: &'a str,
}

impl Phone<'_> {
    /// `PUT /v1/bundles/{id}`.
    pub async fn put(&self, upload: &Upload) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .put(format!("{}/v1/bundles/{}", self.base, upload.id))
            .bearer_auth(self.token)
            .json(&upload.put_body())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// `POST /v1/bundles/{id}/commit`; the status, the exact body bytes and the body.
    pub async fn commit(&self, upload: &Upload) -> (u16, Vec<u8>, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}/v1/bundles/{}/commit", self.base, upload.id))
            .bearer_auth(self.token)
            .json(&upload.commit_body())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap();
        (status, bytes, json)
    }

    /// A `GET` of the log endpoints.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}
