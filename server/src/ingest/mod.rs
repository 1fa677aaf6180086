//! Bundle ingest (DESIGN.md §7, §8): `PUT /v1/bundles/{id}` stores a sealed manifest and its
//! signatures pending; `POST /v1/bundles/{id}/commit` verifies everything with core's
//! `verify_bundle` (and the server's own address check), then files the bundle accepted or
//! quarantined, its transparency-log entry and its signed receipt in one transaction.
//!
//! Evidence is never dropped (DOMAIN.md E02): a bundle that fails a check is kept, logged
//! and flagged as quarantined, and the answer names the failing checks.
//!
//! Scope (issue 11, THREATS.md "a user of another bank"): a device may put and commit only
//! bundles of its own bank's visits on whose approved team it is. Who may touch an id is
//! decided before anything is written or told about it: against the stored bundle's bank
//! and team when one exists under that id, else against the server's own approval record
//! of the manifest's visit (never the approval the manifest embeds, which is not checked
//! until the commit). Anything else is the same 404 as an id never used, and writes
//! nothing: no row, no equivocation flag on another bank's bundle.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tandem_core::bundle::{
    DeviceEnrolment, Manifest, ServerReceipt, Trust, parse_signatures, verify_bundle,
};
use tandem_core::canonical::MAX_DOCUMENT_BYTES;
use tandem_core::crypto::{Digest, Signer as _, sha256};
use tandem_core::model::{Approval, BundleId};
use tandem_core::tlog::Verdict;
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::auth::DeviceAuth;
use crate::blobstore::KeyringError;
use crate::db::auth::DeviceRecord;
use crate::db::ledger::{
    BundleStatus, CommitInput, CommitOutcome, NewBundle, NewFlag, PutOutcome, StoredBundle,
};
use crate::error::{AppError, PROBLEM_BASE, Problem};

pub mod checks;
pub mod source;

use checks::{IngestReport, StoredReport, check_case_address};
pub use source::Reading;
use source::StoredSource;

/// Largest `signatures.json` accepted (two entries are a few hundred bytes).
pub const MAX_SIGNATURES_BYTES: usize = 64 * 1024;
/// Largest `PUT` body: the largest manifest, JSON-escaped (at most doubled), and signatures.
pub const MAX_PUT_BODY_BYTES: usize = 2 * MAX_DOCUMENT_BYTES + 2 * MAX_SIGNATURES_BYTES + 4096;

/// The routes of ingest.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/bundles/{id}",
            put(put_bundle).layer(DefaultBodyLimit::max(MAX_PUT_BODY_BYTES)),
        )
        .route("/v1/bundles/{id}/commit", post(commit_bundle))
}

/// The OpenAPI part of ingest.
#[derive(OpenApi)]
#[openapi(
    paths(put_bundle, commit_bundle),
    components(schemas(
        PutBundleRequest,
        PutBundleResponse,
        CommitRequest,
        CommitResponse,
        QuarantineProblem,
        MissingBlobsProblem
    ))
)]
pub struct IngestDoc;

/// `PUT /v1/bundles/{id}` body: the two documents as their exact text.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PutBundleRequest {
    /// `manifest.json`, exactly the bytes both agents signed (canonical JSON, UTF-8).
    pub manifest: String,
    /// `signatures.json`, exactly as sealed.
    pub signatures: String,
}

/// The answer to a `PUT`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PutBundleResponse {
    /// The bundle.
    pub bundle_id: String,
    /// SHA-256 of the manifest, hex: what the commit must name.
    pub manifest_digest: String,
    /// `pending`, `accepted` or `quarantined`.
    pub status: String,
    /// Listed blobs the server does not hold yet (upload them with tus before committing).
    pub missing_blobs: Vec<String>,
}

/// `POST /v1/bundles/{id}/commit` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommitRequest {
    /// SHA-256 (hex) of the manifest the phone sealed under this id: a different one than
    /// the stored manifest's is equivocation.
    pub manifest_digest: String,
}

/// An accepted bundle: the signed receipt, its inclusion proof and the checkpoint, as
/// `receipt/` in the bundle (docs/bundle-format.md §1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommitResponse {
    /// The bundle.
    pub bundle_id: String,
    /// SHA-256 of its manifest, hex.
    pub manifest_digest: String,
    /// `accepted`.
    pub verdict: String,
    /// Signed ingest receipt `{body, signature}` (`receipt/receipt.json`).
    #[schema(value_type = Object)]
    pub receipt: serde_json::Value,
    /// Inclusion proof, hex digests (`receipt/inclusion-proof.json`).
    pub inclusion_proof: Vec<String>,
    /// Signed checkpoint `{body, signature}` (`receipt/checkpoint.json`).
    #[schema(value_type = Object)]
    pub checkpoint: serde_json::Value,
    /// Flags a reviewer will see (outside the fence, rule flags); the bundle is accepted.
    pub flags: Vec<String>,
    /// Every check by name.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// 422 `bundle-quarantined`: the bundle is kept and logged, but a check failed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuarantineProblem {
    /// `…/problems/bundle-quarantined`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Summary.
    pub title: String,
    /// 422.
    pub status: u16,
    /// Names the failing checks.
    pub detail: String,
    /// The failing checks' names (`signatures`, `blob_digests`, `case_address`, …).
    pub failed_checks: Vec<String>,
    /// The bundle.
    pub bundle_id: String,
    /// SHA-256 of its manifest, hex.
    pub manifest_digest: String,
    /// `quarantined`.
    pub verdict: String,
    /// Signed ingest receipt, verdict quarantined.
    #[schema(value_type = Object)]
    pub receipt: serde_json::Value,
    /// Inclusion proof, hex digests.
    pub inclusion_proof: Vec<String>,
    /// Signed checkpoint.
    #[schema(value_type = Object)]
    pub checkpoint: serde_json::Value,
    /// Flags.
    pub flags: Vec<String>,
    /// Every check by name.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// 409 `bundle-blobs-missing`: nothing was committed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MissingBlobsProblem {
    /// `…/problems/bundle-blobs-missing`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Summary.
    pub title: String,
    /// 409.
    pub status: u16,
    /// How many are missing.
    pub detail: String,
    /// SHA-256 (hex) of every listed blob the server does not hold.
    pub missing: Vec<String>,
}

/// A problem document with extension members (RFC 9457 §3.2).
fn problem_with(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: String,
    extensions: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), format!("{PROBLEM_BASE}{kind}").into());
    body.insert("title".into(), title.into());
    body.insert("status".into(), status.as_u16().into());
    body.insert("detail".into(), detail.into());
    body.extend(extensions);
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(serde_json::Value::Object(body)),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn equivocation() -> AppError {
    AppError::conflict(
        "bundle-equivocation",
        "Another manifest is stored under this bundle id; the attempt is kept for review.",
    )
}

/// The device must be the lead's or the partner's phone named in the bundle.
fn not_on_team() -> AppError {
    AppError::problem(
        StatusCode::FORBIDDEN,
        "bundle-device-not-on-team",
        "Not this device's bundle",
        "Only the lead's or the partner's enrolled phone named in the bundle may send it.",
    )
    .with_rule("V03")
}

/// Missing blobs, in manifest order, each once.
async fn missing_blobs(state: &AppState, manifest: &Manifest) -> Result<Vec<String>, AppError> {
    let mut seen = BTreeSet::new();
    let mut missing = Vec::new();
    for b in &manifest.blobs {
        if seen.insert(b.sha256)
            && state
                .blobs
                .stat(&b.sha256)
                .await
                .map_err(internal)?
                .is_none()
        {
            missing.push(b.sha256.to_hex());
        }
    }
    Ok(missing)
}

/// Stores a sealed bundle's manifest and signatures, pending its commit.
#[utoipa::path(put, path = "/v1/bundles/{id}", tag = "bundles",
    security(("device_token" = [])),
    params(("id" = String, Path, description = "The bundle id (UUIDv7), as in the manifest")),
    request_body = PutBundleRequest,
    responses(
        (status = 201, description = "Stored, pending", body = PutBundleResponse),
        (status = 200, description = "The same bytes were stored already", body = PutBundleResponse),
        (status = 403, description = "A phone of the visit's team that the manifest does not name as lead or partner", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Not a bundle this device may send: another bank's or another team's id, or a visit the server did not approve with this device on its team", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "`bundle-equivocation`: another manifest under this id (flagged); `bundle-conflict`: other signature bytes", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`bundle-manifest-invalid` (not a canonical v1 manifest) or `bundle-id-mismatch`", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn put_bundle(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    Path(id): Path<BundleId>,
    body: Result<Json<PutBundleRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body?;
    if req.manifest.len() > MAX_DOCUMENT_BYTES || req.signatures.len() > MAX_SIGNATURES_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    let manifest_bytes = req.manifest.into_bytes();
    let manifest = Manifest::parse(&manifest_bytes).map_err(|_| {
        AppError::invalid(
            "bundle-manifest-invalid",
            "manifest is not a canonical tandem.bundle/v1 manifest (docs/bundle-format.md).",
        )
    })?;
    if manifest.bundle_id != id {
        return Err(AppError::invalid(
            "bundle-id-mismatch",
            "The manifest's bundle_id is not the id in the path.",
        ));
    }
    let may_put = match state.db.bundle(id).await? {
        Some(stored) => may_send(&device, &stored),
        None => approved_on_team(&state, &device, &manifest).await?,
    };
    if !may_put {
        return Err(AppError::NotFound);
    }
    let (lead, partner) = team_devices(&manifest)?;
    authorize_upload(&device, &manifest, &[lead, partner])?;
    let digest = sha256(&manifest_bytes);
    let missing = missing_blobs(&state, &manifest).await?;
    let new = NewBundle {
        id,
        bank_id: manifest.visit.bank_id,
        case_id: manifest.visit.case_id,
        visit_id: manifest.visit.visit_id,
        lead_device_id: lead.0,
        partner_device_id: partner.0,
        uploaded_by: device.device_id,
        manifest_digest: digest,
        manifest: manifest_bytes,
        signatures: req.signatures.into_bytes(),
        received_ms: state.now_ms(),
    };
    let status = match state.db.put_bundle(&new).await? {
        PutOutcome::Stored => StatusCode::CREATED,
        PutOutcome::Same => StatusCode::OK,
        PutOutcome::OtherManifest(stored) => {
            // Another request may have stored this id since the check above: the flag is
            // written only on a bundle this device may send.
            let ours = state.db.bundle(id).await?;
            if !ours.is_some_and(|b| may_send(&device, &b)) {
                return Err(AppError::NotFound);
            }
            tracing::warn!(bundle = %id, "equivocation: a second manifest under one bundle id");
            let flag = NewFlag {
                kind: "equivocation",
                detail: format!(
                    "device {} sent manifest {digest} under this id; {stored} is stored",
                    device.device_id
                ),
                other: Some((digest, new.manifest)),
            };
            state.db.add_flag(id, &flag, state.now_ms()).await?;
            return Err(equivocation());
        }
        PutOutcome::OtherSignatures => {
            return Err(AppError::conflict(
                "bundle-conflict",
                "This manifest is stored with other signatures bytes; nothing was replaced.",
            ));
        }
    };
    let stored = state.db.bundle(id).await?.ok_or(AppError::NotFound)?;
    Ok((
        status,
        Json(PutBundleResponse {
            bundle_id: id.to_string(),
            manifest_digest: digest.to_hex(),
            status: stored.status.as_str().to_owned(),
            missing_blobs: missing,
        }),
    )
        .into_response())
}

/// A team member's phone and agent.
type TeamPhone = (tandem_core::model::DeviceId, tandem_core::model::AgentId);

/// The phones of the lead and the partner, from the approval the manifest embeds (its
/// server signature is checked at commit), with their agents.
fn team_devices(manifest: &Manifest) -> Result<(TeamPhone, TeamPhone), AppError> {
    let approval: Approval =
        tandem_core::canonical::from_canonical_slice(manifest.visit.approval.body.as_bytes())
            .map_err(|_| {
                AppError::invalid(
                    "bundle-manifest-invalid",
                    "The approval embedded in the manifest cannot be read.",
                )
            })?;
    let device_of = |agent| {
        approval
            .member(agent)
            .map(|m| (m.device_id, m.agent_id))
            .ok_or_else(not_on_team)
    };
    Ok((
        device_of(manifest.visit.lead)?,
        device_of(manifest.visit.partner)?,
    ))
}

/// Whether `device` may send or commit the bundle stored under an id: a phone of the
/// stored bundle's bank, named in it as the lead's or the partner's.
fn may_send(device: &DeviceRecord, stored: &StoredBundle) -> bool {
    device.bank_ids.contains(&stored.bank_id)
        && (device.device_id == stored.lead_device_id
            || device.device_id == stored.partner_device_id)
}

/// Whether the server approved the manifest's visit, for the manifest's bank, with
/// `device` on its team, and the device serves that bank.
async fn approved_on_team(
    state: &AppState,
    device: &DeviceRecord,
    manifest: &Manifest,
) -> Result<bool, AppError> {
    let bank = manifest.visit.bank_id;
    if !device.bank_ids.contains(&bank) {
        return Ok(false);
    }
    let approved = state
        .db
        .approved_visit_bank(manifest.visit.visit_id, device.device_id)
        .await?;
    Ok(approved == Some(bank))
}

fn authorize_upload(
    device: &DeviceRecord,
    manifest: &Manifest,
    allowed: &[TeamPhone],
) -> Result<(), AppError> {
    let on_team = allowed
        .iter()
        .any(|(d, a)| *d == device.device_id && *a == device.agent_id);
    if !on_team || !device.bank_ids.contains(&manifest.visit.bank_id) {
        return Err(not_on_team());
    }
    Ok(())
}

/// Verifies a stored bundle and files it, accepted or quarantined, with its log entry and
/// signed receipt.
#[utoipa::path(post, path = "/v1/bundles/{id}/commit", tag = "bundles",
    security(("device_token" = [])),
    params(("id" = String, Path, description = "The bundle id")),
    request_body = CommitRequest,
    responses(
        (status = 200, description = "Accepted (again, for a retry: the same receipt)", body = CommitResponse),
        (status = 404, description = "No such bundle for this device (another bank's or team's is the same)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "`bundle-blobs-missing` (nothing changed) or `bundle-equivocation` (another manifest digest; flagged)", body = MissingBlobsProblem,
            content_type = "application/problem+json"),
        (status = 410, description = "`bank-destroyed`: the visit's bank was destroyed (`tandem bank destroy`); nothing is stored for it", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`bundle-quarantined`: kept, logged and flagged; names the failing checks and carries the receipt", body = QuarantineProblem,
            content_type = "application/problem+json"),
    ))]
pub async fn commit_bundle(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    Path(id): Path<BundleId>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body?;
    let claimed: Digest = req.manifest_digest.parse().map_err(|_| {
        AppError::Malformed("manifest_digest is not a lowercase hex SHA-256.".into())
    })?;
    let stored = state
        .db
        .bundle(id)
        .await?
        .filter(|b| may_send(&device, b))
        .ok_or(AppError::NotFound)?;
    if claimed != stored.manifest_digest {
        return Err(flag_equivocation(&state, &device, &stored, claimed).await);
    }
    if stored.status != BundleStatus::Pending {
        // A retry after a crash between the commit and the complaints: opened now (once).
        let manifest = Manifest::parse(&stored.manifest).map_err(internal)?;
        open_complaints(&state, id, &manifest).await;
        return stored_answer(&stored);
    }
    let manifest = Manifest::parse(&stored.manifest).map_err(internal)?;
    let complaints = manifest.clone();
    let missing = missing_blobs(&state, &manifest).await?;
    if !missing.is_empty() {
        return Ok(blobs_missing(missing));
    }
    // Receipts and voids (C02) are recorded with the commit, whatever its verdict.
    let money = crate::receipts::money_of(&manifest);
    // From now on the visit's bank holds its blobs' keys, under the bank's own key: when
    // that key is destroyed (`tandem bank destroy`), so is every copy of these blobs.
    let digests: Vec<Digest> = manifest.blobs.iter().map(|b| b.sha256).collect();
    state
        .blobs
        .keys()
        .grant(
            &manifest.visit.bank_id.to_string(),
            &digests,
            state.now_ms(),
        )
        .await
        .map_err(|e| match e {
            KeyringError::BankDestroyed(_) => AppError::problem(
                StatusCode::GONE,
                "bank-destroyed",
                "Bank destroyed",
                "This visit's bank was destroyed at the end of its contract: no evidence is \
                 stored for it any more.",
            ),
            other => internal(other),
        })?;
    let report = verify_stored(&state, &stored, manifest, Reading::TrustAddresses).await?;
    let stored_report = StoredReport::new(&report).map_err(internal)?;
    let input = CommitInput {
        id,
        manifest_digest: stored.manifest_digest,
        verdict: if stored_report.failed_checks.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Quarantined
        },
        flags: flag_rows(id, &stored_report),
        money,
        visit: Some(&complaints),
        report: serde_json::to_string(&stored_report).map_err(internal)?,
        now_ms: state.now_ms(),
        signer: state.signer.as_ref(),
    };
    // Whatever the outcome (committed now, or by a concurrent request), the answer is the
    // stored one, so a retry always sees exactly the same bytes.
    let _: CommitOutcome = state.db.commit_bundle(&input).await?;
    open_complaints(&state, id, &complaints).await;
    let stored = state.db.bundle(id).await?.ok_or(AppError::NotFound)?;
    stored_answer(&stored)
}

/// Writes the legal search's missing rows (`db::dossier`) from the stored manifests: visits
/// committed before a commit wrote its row in its own transaction, when the write after
/// the commit failed or never came. Run once at start; the number of rows written.
pub async fn index_unindexed_evidence(state: &AppState) -> Result<usize, AppError> {
    let mut written = 0;
    for id in state.db.unindexed_bundles().await? {
        let Some(stored) = state.db.bundle(id).await? else {
            continue;
        };
        let Some(log_index) = stored.log_index else {
            continue;
        };
        let manifest = match Manifest::parse(&stored.manifest) {
            Ok(manifest) => manifest,
            Err(e) => {
                tracing::error!(bundle = %id, error = %e, "stored manifest unreadable: not searchable");
                continue;
            }
        };
        let row = crate::db::dossier::EvidenceVisit::of(&manifest, id, stored.status, log_index);
        state.db.index_evidence(&row).await?;
        written += 1;
    }
    Ok(written)
}

/// P01: each complaint the visit recorded opens a 24-hour ticket and puts the case on hold,
/// once per bundle and complaint, for the case and bank of the server's own approval of
/// the visit (a manifest naming another case holds nothing). The evidence is committed
/// already: a failure here is logged and tried again on the phone's next commit of the same
/// bundle, never turned into a refusal of the evidence.
async fn open_complaints(state: &AppState, bundle: BundleId, manifest: &Manifest) {
    if let Err(e) = try_open_complaints(state, bundle, manifest).await {
        tracing::error!(bundle = %bundle, error = %e, "complaint from the field not opened yet");
    }
}

async fn try_open_complaints(
    state: &AppState,
    bundle: BundleId,
    manifest: &Manifest,
) -> Result<(), AppError> {
    let notes: Vec<&str> = manifest
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            tandem_core::model::EventKind::Complaint { note } => Some(note.as_str()),
            _ => None,
        })
        .collect();
    if notes.is_empty() {
        return Ok(());
    }
    let visit = manifest.visit.visit_id;
    let Some(approved) = state.db.visit_summary(visit.0).await? else {
        return Ok(());
    };
    if approved.case_id != manifest.visit.case_id || approved.bank_id != manifest.visit.bank_id {
        return Ok(());
    }
    for note in notes {
        let opened = crate::visits::complaints::from_bundle(
            state,
            bundle,
            approved.bank_id,
            approved.case_id,
            visit.0,
            note,
            state.now_ms(),
        )
        .await?;
        if opened == crate::db::complaints::Opened::New {
            tracing::warn!(bundle = %bundle, case = %approved.case_id, "complaint from the field: case on hold");
        }
    }
    Ok(())
}

/// A commit naming another manifest than the stored one: flagged on the bundle for review,
/// answered 409.
async fn flag_equivocation(
    state: &AppState,
    device: &DeviceRecord,
    stored: &StoredBundle,
    claimed: Digest,
) -> AppError {
    tracing::warn!(bundle = %stored.id, "equivocation: commit names another manifest");
    let flag = NewFlag {
        kind: "equivocation",
        detail: format!(
            "device {} committed manifest {claimed} under this id; {} is stored",
            device.device_id, stored.manifest_digest
        ),
        other: None,
    };
    match state.db.add_flag(stored.id, &flag, state.now_ms()).await {
        Ok(()) => equivocation(),
        Err(e) => e.into(),
    }
}

/// 409 `bundle-blobs-missing`, naming every listed blob the server does not hold.
fn blobs_missing(missing: Vec<String>) -> Response {
    let mut ext = serde_json::Map::new();
    let detail = format!(
        "{} listed blob(s) are not on the server yet; upload them and commit again.",
        missing.len()
    );
    ext.insert("missing".into(), missing.into());
    problem_with(
        StatusCode::CONFLICT,
        "bundle-blobs-missing",
        "Blobs missing",
        detail,
        ext,
    )
}

/// Core's `verify_bundle` over the stored bundle and its blobs, with the trust the
/// database gives, and the server's own check of the case's address. `reading` says
/// whether the blobs' bytes are hashed again (see [`Reading`]).
pub(crate) async fn verify_stored(
    state: &AppState,
    stored: &StoredBundle,
    manifest: Manifest,
    reading: Reading,
) -> Result<IngestReport, AppError> {
    let trust = trust_for(state, &manifest, &stored.signatures).await?;
    let case = state.db.case_addresses(manifest.visit.case_id).await?;
    let source = StoredSource::new(
        stored.manifest.clone(),
        &manifest,
        stored.signatures.clone(),
        state.blobs.clone(),
        reading,
    );
    tokio::task::spawn_blocking(move || IngestReport {
        core: verify_bundle(&source, &trust),
        case_address: check_case_address(&manifest, case.as_ref()),
    })
    .await
    .map_err(internal)
}

/// The flags a commit files with the bundle: the quarantine, naming the failed checks, and
/// what a reviewer must see.
fn flag_rows(id: BundleId, report: &StoredReport) -> Vec<NewFlag> {
    let mut rows = Vec::new();
    if !report.failed_checks.is_empty() {
        tracing::warn!(bundle = %id, failed = ?report.failed_checks, "bundle quarantined");
        rows.push(NewFlag {
            kind: "quarantine",
            detail: format!("failed checks: {}", report.failed_checks.join(", ")),
            other: None,
        });
    }
    if !report.flags.is_empty() {
        rows.push(NewFlag {
            kind: "review",
            detail: report.flags.join("; "),
            other: None,
        });
    }
    rows
}

/// The trust the verifier needs, from the database: the server's key, and the registry
/// entry of every key involved (signers, team, sealing phone).
async fn trust_for(
    state: &AppState,
    manifest: &Manifest,
    signatures: &[u8],
) -> Result<Trust, AppError> {
    let mut kids = BTreeSet::from([manifest.device.kid]);
    if let Ok(sigs) = parse_signatures(signatures) {
        kids.extend(sigs.iter().map(|s| s.kid));
    }
    if let Ok(approval) = tandem_core::canonical::from_canonical_slice::<Approval>(
        manifest.visit.approval.body.as_bytes(),
    ) {
        kids.extend(approval.team.iter().map(|m| m.public_key.kid()));
    }
    let mut devices = BTreeMap::new();
    for kid in kids {
        if let Some(d) = state.db.device_by_kid(&kid).await? {
            devices.insert(
                kid,
                DeviceEnrolment {
                    agent_id: d.agent_id,
                    device_id: d.device_id,
                    enrolled_at_ms: d.enrolled_ms,
                    revoked_at_ms: d.revoked_at_ms,
                },
            );
        }
    }
    Ok(Trust {
        server_keys: vec![state.signer.public_key()],
        devices,
    })
}

/// The answer of a committed bundle, rebuilt from what the commit stored.
fn stored_answer(stored: &StoredBundle) -> Result<Response, AppError> {
    let (Some(answer), Some(report)) = (&stored.answer, &stored.report) else {
        return Err(internal("committed bundle without its answer"));
    };
    let receipt: ServerReceipt = serde_json::from_str(answer).map_err(internal)?;
    let StoredReport {
        failed_checks: failed,
        flags,
        report,
    } = serde_json::from_str(report).map_err(internal)?;
    let body = CommitResponse {
        bundle_id: stored.id.to_string(),
        manifest_digest: stored.manifest_digest.to_hex(),
        verdict: stored.status.as_str().to_owned(),
        receipt: serde_json::to_value(&receipt.receipt).map_err(internal)?,
        inclusion_proof: receipt.inclusion_proof.iter().map(Digest::to_hex).collect(),
        checkpoint: serde_json::to_value(&receipt.checkpoint).map_err(internal)?,
        flags,
        report,
    };
    match stored.status {
        BundleStatus::Accepted => Ok((StatusCode::OK, Json(body)).into_response()),
        BundleStatus::Quarantined => {
            let mut ext = match serde_json::to_value(&body).map_err(internal)? {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            ext.insert("failed_checks".into(), failed.clone().into());
            Ok(problem_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle-quarantined",
                "Bundle quarantined",
                format!(
                    "The bundle is kept, logged and flagged for review; failed checks: {}.",
                    failed.join(", ")
                ),
                ext,
            ))
        }
        BundleStatus::Pending => Err(internal("bundle still pending after its commit")),
    }
}
