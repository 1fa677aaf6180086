//! Synthetic but fully valid visits for the ingest benchmark: an organisation seeded
//! straight into the database (bank, policy, case, agents with devices enrolled a month
//! before the visits), and for each visit a manifest signed by both phones, whose approval,
//! ticket and policy the server's own key signed, with 10 photos of ~4 MB (and their
//! thumbnails) and 10 one-minute WAV segments. Blob bytes are generated again from a seed
//! whenever they are needed, so 12 GB of evidence never sits in memory. And sending a visit
//! as a phone does (tus uploads, the manifest, the commit).

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use tandem_core::bundle::testing::{
    TeamSigner, VisitDocuments, VisitRecord, filler, sample_approval, seal_by,
};
use tandem_core::bundle::{Manifest, SealedBundle, signatures_to_bytes};
use tandem_core::crypto::{Digest, SignatureAlgorithm, Signer, SoftwareSigner};
use tandem_core::model::{
    AddressId, AgentId, BankId, BundleId, CaseId, DeviceId, MaskedCardNumber, MaskedIdNumber,
    Policy, VisitId, VisitTicket,
};
use tandem_core::place::{Coordinate, Datum};
use tandem_server::db::{
    Db, NewAddress, NewAgent, NewBank, NewCase, NewEnrollmentCode, NewUser, OrgSeed, Role,
};
use tandem_server::secrets;
use tandem_server::testing::seed::{device_token, enrol_device, record_approval};
use uuid::Uuid;

const MINUTE: i64 = 60_000;
/// The visits happen on 2026-11-29 from 09:56 in Shanghai (01:56 UTC): inside visiting hours.
pub const VISIT_DAY_MS: i64 = 1_795_830_400_000;
/// Photo size.
pub const PHOTO_BYTES: usize = 4_000_000;
/// Thumbnail size.
pub const THUMB_BYTES: usize = 6_000;
/// One minute of 16 kHz mono 16-bit WAV with its 44-byte header.
pub const SEGMENT_BYTES: usize = 1_920_044;
/// Photos and audio segments per visit.
pub const PER_VISIT: usize = 10;

/// Where the case's address is (WGS-84) and where the phones stand, 30 m north of it.
const ADDRESS: (i32, i32) = (312_380_500, 1_214_817_400);
const STAND_NORTH_E7: i32 = 2_700;

/// One blob of a visit: its entry and the seed its bytes come from.
#[derive(Debug, Clone)]
pub struct BlobSpec {
    /// Address.
    pub digest: Digest,
    /// Length.
    pub size: usize,
    /// First bytes (JPEG or RIFF magic).
    pub magic: &'static [u8],
    /// Filler seed.
    pub seed: u64,
}

impl BlobSpec {
    fn new(magic: &'static [u8], size: usize, seed: u64) -> Self {
        let bytes = filler(magic, size, seed);
        Self {
            digest: tandem_core::crypto::sha256(&bytes),
            size,
            magic,
            seed,
        }
    }

    /// The blob's bytes, generated again.
    pub fn bytes(&self) -> Vec<u8> {
        filler(self.magic, self.size, self.seed)
    }
}

/// A phone of the benchmark: its agent, device, key and bearer token.
pub struct BenchPhone {
    /// The agent.
    pub agent: AgentId,
    /// The device.
    pub device: DeviceId,
    /// Its key.
    pub key: SoftwareSigner,
    /// Its bearer token.
    pub token: String,
}

/// The seeded organisation.
pub struct Org {
    /// The bank.
    pub bank: BankId,
    /// The case every visit is for.
    pub case: CaseId,
    /// Its address.
    pub address: AddressId,
    /// Pairs of phones: client `i` uses `pairs[i]`.
    pub pairs: Vec<(BenchPhone, BenchPhone)>,
    /// The manager who approves every visit.
    pub manager: Uuid,
}

impl Org {
    /// A bank with one case and `2 × clients` agents, each with a device key and token.
    pub fn new(clients: usize) -> Self {
        let pairs = (0..clients)
            .map(|_| (BenchPhone::new(), BenchPhone::new()))
            .collect();
        Self {
            bank: BankId::new(),
            case: CaseId::new(),
            address: AddressId::new(),
            pairs,
            manager: Uuid::now_v7(),
        }
    }

    /// Records every visit as the server approved it (request, approval, team): ingest
    /// accepts a bundle only from a phone the server's own approval puts on the team.
    pub async fn approve_visits(&self, db: &dyn Db, visits: impl Iterator<Item = &BenchVisit>) {
        for v in visits {
            let manifest = Manifest::parse(&v.manifest).unwrap();
            let requested_ms = VISIT_DAY_MS - 120 * MINUTE;
            record_approval(db, &manifest, self.manager, requested_ms).await;
        }
    }

    /// Stores the organisation and enrols every phone (a month before the visits).
    pub async fn seed_into(&self, db: &dyn Db) {
        self.seed_with_users(db, Vec::new()).await;
    }

    /// [`Org::seed_into`], with more console users (of this bank) beside the manager.
    pub async fn seed_with_users(&self, db: &dyn Db, more_users: Vec<NewUser>) {
        let enrolled_at = VISIT_DAY_MS - 30 * 24 * 60 * MINUTE;
        let phones: Vec<&BenchPhone> = self.pairs.iter().flat_map(|(a, b)| [a, b]).collect();
        let code = |i: usize| format!("BENCH{i:07}");
        let agents = phones
            .iter()
            .enumerate()
            .map(|(i, p)| NewAgent {
                id: p.agent,
                employee_no: format!("B{i:04}"),
                user: NewUser {
                    id: Uuid::now_v7(),
                    login: format!("bench-agent-{i}"),
                    display_name: format!("Agent {i}"),
                    role: Role::Agent,
                    password_hash: None,
                    bank_ids: vec![self.bank],
                },
                enrollment: NewEnrollmentCode {
                    id: Uuid::now_v7(),
                    code_hash: secrets::enrollment_code_hash(&code(i)),
                    expires_ms: i64::MAX,
                },
            })
            .collect();
        let seed = OrgSeed {
            bank: NewBank {
                id: self.bank,
                code: "bench".into(),
                name: "Benchmark bank".into(),
            },
            policy_json: serde_json::to_string(&Policy::defaults(self.bank)).unwrap(),
            // The approving manager signs in nowhere: a hash no password matches will do.
            users: [NewUser {
                id: self.manager,
                login: "bench-manager".into(),
                display_name: "Manager".into(),
                role: Role::Manager,
                password_hash: Some("$argon2id$unusable".into()),
                bank_ids: vec![self.bank],
            }]
            .into_iter()
            .chain(more_users)
            .collect(),
            agents,
            cases: vec![NewCase {
                id: self.case,
                bank_id: self.bank,
                case_ref: "BENCH-0001".into(),
                card: MaskedCardNumber::mask("6259 0000 0000 4821").unwrap(),
                debtor_name: "测试".into(),
                id_number: MaskedIdNumber::mask("310101198805120026").unwrap(),
                outstanding_fen: 1_000_000,
                entrustment_start_ms: enrolled_at,
                entrustment_end_ms: VISIT_DAY_MS + 90 * 24 * 60 * MINUTE,
                addresses: vec![NewAddress {
                    id: self.address,
                    text: "上海市黄浦区南京东路300号".into(),
                    position: Coordinate::new(ADDRESS.0, ADDRESS.1, Datum::Wgs84).unwrap(),
                }],
            }],
            now_ms: enrolled_at,
        };
        assert!(db.seed_org(&seed).await.unwrap(), "bench org seeded");
        for (i, p) in phones.iter().enumerate() {
            let key = p.key.public_key();
            enrol_device(db, &code(i), p.device, key, &p.token, enrolled_at).await;
        }
    }
}

impl BenchPhone {
    fn new() -> Self {
        let (key, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        Self {
            agent: AgentId::new(),
            device: DeviceId::new(),
            key,
            token: device_token(),
        }
    }
}

/// One visit ready to send: the sealed manifest, its signatures' bytes and its blobs.
pub struct BenchVisit {
    /// The bundle id.
    pub bundle_id: BundleId,
    /// `manifest.json`.
    pub manifest: Vec<u8>,
    /// `signatures.json`.
    pub signatures: Vec<u8>,
    /// Every blob the manifest lists.
    pub blobs: Vec<BlobSpec>,
}

impl BenchVisit {
    /// Total blob bytes.
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size as u64).sum()
    }
}

impl BenchPhone {
    /// The phone as a bundle records it.
    fn signer(&self) -> TeamSigner<'_> {
        TeamSigner {
            agent: self.agent,
            device: self.device,
            key: &self.key,
        }
    }
}

/// Builds visit number `seq` of a pair (the lead's `seq`-th bundle), chained to the
/// previous manifest of the same lead phone.
pub fn visit(
    org: &Org,
    server: &dyn Signer,
    pair: &(BenchPhone, BenchPhone),
    seq: u64,
    prev_manifest: Option<Digest>,
    seed: u64,
) -> BenchVisit {
    visit_with_photos_of(org, server, pair, (seq, prev_manifest), seed, PHOTO_BYTES)
}

/// [`visit`] with photos of `photo_bytes` each: the export bench's 1 GiB visit.
pub fn visit_with_photos_of(
    org: &Org,
    server: &dyn Signer,
    pair: &(BenchPhone, BenchPhone),
    (seq, prev_manifest): (u64, Option<Digest>),
    seed: u64,
    photo_bytes: usize,
) -> BenchVisit {
    let team = [pair.0.signer(), pair.1.signer()];
    let start = VISIT_DAY_MS + i64::try_from(seq).unwrap() * 30 * MINUTE;
    let t = |minutes: i64| start + minutes * MINUTE;
    let approval = sample_approval(
        (org.bank, org.case, org.address),
        team,
        VISIT_DAY_MS,
        "WT-BENCH",
    );
    let ticket = VisitTicket {
        visit_id: VisitId::new(),
        approval_id: approval.id,
        nonce: format!("{seed:016x}"),
        issued_at_ms: start,
    };
    let documents = VisitDocuments::sign(server, "BENCH-0001", &approval, &ticket).unwrap();
    let standing = Coordinate::new(ADDRESS.0 + STAND_NORTH_E7, ADDRESS.1, Datum::Wgs84).unwrap();
    let mut record = VisitRecord::new(team, ticket.visit_id, org.address, standing, start - MINUTE);
    let mut blobs = Vec::new();
    let mut keep = |spec: BlobSpec| {
        let address = (spec.digest, spec.size as u64);
        blobs.push(spec);
        address
    };
    record.check_in(t(1), 30, 3).unwrap();
    for i in 0..PER_VISIT {
        let n = i64::try_from(i).unwrap();
        let seg_end = t(2 + n);
        let wav = keep(BlobSpec::new(
            b"RIFF",
            SEGMENT_BYTES,
            (seed << 16) | (1 << 8) | i as u64,
        ));
        record.audio(i as u32, seg_end, wav);
        let original = keep(BlobSpec::new(
            b"\xFF\xD8\xFF\xE1",
            photo_bytes,
            (seed << 16) | (2 << 8) | i as u64,
        ));
        let thumb = keep(BlobSpec::new(
            b"\xFF\xD8\xFF\xE0",
            THUMB_BYTES,
            (seed << 16) | (3 << 8) | i as u64,
        ));
        record.photo(seg_end + 30_000, original, thumb);
    }
    let out_at = t(2 + PER_VISIT as i64);
    record.check_out(t(1), out_at).unwrap();
    let manifest = record
        .into_manifest(documents, (seq, prev_manifest), out_at + MINUTE)
        .unwrap();
    let sealed = seal_by(&manifest, team).unwrap();
    BenchVisit {
        bundle_id: sealed.manifest.bundle_id,
        signatures: signatures_to_bytes(&sealed.signatures).unwrap(),
        manifest: sealed.manifest_bytes,
        blobs,
    }
}

/// Checks a visit offline with core's verifier before any clock starts, so a mistake in
/// this builder shows as the check it breaks rather than as server errors.
pub fn check_offline(org: &Org, server: &dyn Signer, visit: &BenchVisit) {
    use tandem_core::bundle::testing::MemorySource;
    let sealed = SealedBundle::from_bytes(
        visit.manifest.clone(),
        tandem_core::bundle::parse_signatures(&visit.signatures).unwrap(),
    )
    .unwrap();
    let blobs: BTreeMap<Digest, Vec<u8>> =
        visit.blobs.iter().map(|b| (b.digest, b.bytes())).collect();
    let source = MemorySource::from_sealed(&sealed, &blobs).unwrap();
    let report = tandem_core::bundle::verify_bundle(&source, &trust(org, server));
    let failed: Vec<String> = report
        .failed()
        .into_iter()
        .map(|name| format!("{}: {}", name.as_str(), report.result(name).detail()))
        .collect();
    assert!(
        failed.is_empty(),
        "the bench's visit does not verify: {failed:?}"
    );
}

/// The trust a verifier needs for the bench's bundles.
fn trust(org: &Org, server: &dyn Signer) -> tandem_core::bundle::Trust {
    let enrolled_at_ms = VISIT_DAY_MS - 30 * 24 * 60 * MINUTE;
    tandem_core::bundle::Trust {
        server_keys: vec![server.public_key()],
        devices: org
            .pairs
            .iter()
            .flat_map(|(a, b)| [a.signer(), b.signer()])
            .map(|p| p.enrolment(enrolled_at_ms))
            .collect(),
    }
}

/// Uploads one blob through tus (one checksummed PATCH), as a phone does.
pub async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    blob: &BlobSpec,
) -> Result<(), String> {
    let created = http
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", blob.size.to_string())
        .header(
            "Upload-Metadata",
            format!("sha256 {}", B64.encode(blob.digest.to_hex())),
        )
        .send()
        .await
        .map_err(|e| format!("create: {e}"))?;
    if !created.status().is_success() {
        return Err(format!("create: {}", created.status()));
    }
    let offset: u64 = created
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    if offset == blob.size as u64 {
        return Ok(());
    }
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("create: no Location")?
        .to_owned();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    // Every bench blob fits one chunk, so the chunk's checksum is the blob's address.
    let patched = http
        .patch(url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .header(
            "Upload-Checksum",
            format!("sha256 {}", B64.encode(blob.digest.as_bytes())),
        )
        .body(blob.bytes())
        .send()
        .await
        .map_err(|e| format!("patch: {e}"))?;
    if patched.status().as_u16() != 204 {
        return Err(format!("patch: {}", patched.status()));
    }
    Ok(())
}

/// Sends a visit as its lead phone does: every blob, the manifest, the commit; returns the
/// commit's time in ms.
pub async fn send_visit(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    visit: &BenchVisit,
) -> Result<f64, String> {
    for blob in &visit.blobs {
        upload(http, base, token, blob).await?;
    }
    let put = http
        .put(format!("{base}/v1/bundles/{}", visit.bundle_id))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "manifest": String::from_utf8_lossy(&visit.manifest),
            "signatures": String::from_utf8_lossy(&visit.signatures),
        }))
        .send()
        .await
        .map_err(|e| format!("put: {e}"))?;
    if !put.status().is_success() {
        let status = put.status();
        return Err(format!(
            "put: {status} {}",
            put.text().await.unwrap_or_default()
        ));
    }
    let started = Instant::now();
    let commit = http
        .post(format!("{base}/v1/bundles/{}/commit", visit.bundle_id))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "manifest_digest": tandem_core::bundle::Manifest::digest_of(&visit.manifest).to_hex(),
        }))
        .send()
        .await
        .map_err(|e| format!("commit: {e}"))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !commit.status().is_success() {
        let status = commit.status();
        return Err(format!(
            "commit: {status} {}",
            commit.text().await.unwrap_or_default()
        ));
    }
    Ok(ms)
}
