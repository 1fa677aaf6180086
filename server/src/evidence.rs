//! Evidence retrieval for legal staff: the bundles received for a visit, and a bundle's
//! export — the ZIP `tandem verify` checks (manifest, signatures, blobs, keys, server
//! documents, `receipt/` with the receipt, inclusion proof and checkpoint,
//! `certificates/` with the server's word on each signing key, and `export/` with
//! `report.html` and the server's signed note of who exported it, when and why), written
//! by core's exporter from what the server holds and streamed as it is written, so it
//! proves itself years later without this server. Every export states its purpose and is
//! audited (A03).

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tandem_core::bundle::{
    BlobSupply, BundleError, ExportAttachment, Manifest, SealedBundle, ServerReceipt,
    parse_signatures, write_export_stream,
};
use tandem_core::crypto::{Digest, Signer as _};
use tandem_core::model::{BundleId, DeviceCertificate, Signed, VisitId};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::blobstore::BlobStore;
use crate::console::PageLang;
use crate::console::dossier::report;
use crate::db::Role;
use crate::db::dossier::EvidenceHit;
use crate::db::ledger::{BundleStatus, StoredBundle};
use crate::error::{AppError, Problem};
use crate::throttle::ClientAddr;

/// The routes of evidence retrieval.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/visits/{id}/bundles", get(visit_bundles))
        .route("/v1/bundles/{id}/export", get(export_bundle))
}

/// The OpenAPI part of evidence retrieval.
#[derive(OpenApi)]
#[openapi(
    paths(visit_bundles, export_bundle),
    components(schemas(BundleSummary))
)]
pub struct EvidenceDoc;

/// Who may read evidence: legal staff retrieve it, managers review their visits, admins
/// support both.
const READERS: &[Role] = &[Role::Legal, Role::Manager, Role::Admin];
/// Who may take evidence out of the system: legal staff (and admins supporting them).
const EXPORTERS: &[Role] = &[Role::Legal, Role::Admin];

/// A bundle received for a visit.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSummary {
    /// The bundle id.
    pub bundle_id: String,
    /// `pending` (manifest received, not committed), `accepted` or `quarantined`.
    pub status: String,
    /// SHA-256 of `manifest.json`, hex.
    pub manifest_digest: String,
    /// Its entry in the transparency log, once committed.
    pub log_index: Option<u64>,
}

/// The bundles received for a visit.
#[utoipa::path(get, path = "/v1/visits/{id}/bundles", tag = "evidence",
    params(("id" = String, Path, description = "Visit id")),
    responses(
        (status = 200, description = "The visit's bundles, oldest first", body = [BundleSummary]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not legal, manager or admin", body = Problem),
        (status = 404, description = "No such visit in the user's banks", body = Problem),
    ))]
pub async fn visit_bundles(
    user: UserAuth,
    State(state): State<AppState>,
    Path(id): Path<VisitId>,
) -> Result<Response, AppError> {
    user.require(READERS)?;
    let bundles: Vec<BundleSummary> = state
        .db
        .visit_bundles(id)
        .await?
        .into_iter()
        .filter(|b| user.sees(b.bank_id))
        .map(|b| BundleSummary {
            bundle_id: b.id.to_string(),
            status: b.status.as_str().to_owned(),
            manifest_digest: b.manifest_digest.to_hex(),
            log_index: b.log_index,
        })
        .collect();
    if bundles.is_empty() {
        // A visit of another bank and a visit never uploaded look the same.
        return Err(AppError::NotFound);
    }
    Ok(axum::Json(bundles).into_response())
}

/// The query of an export: why the evidence is taken out (A03).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The purpose of the export, 5–500 characters; it is audited and written into the
    /// signed export note and `report.html`.
    #[serde(default)]
    purpose: String,
}

/// The length of an export's purpose, in characters.
pub(crate) const PURPOSE_CHARS: std::ops::RangeInclusive<usize> = 5..=500;

/// The export of a committed bundle, as a ZIP.
#[utoipa::path(get, path = "/v1/bundles/{id}/export", tag = "evidence",
    params(("id" = String, Path, description = "Bundle id"), ExportQuery),
    responses(
        (status = 200, description = "The export (ZIP, streamed): the bundle, `receipt/`, \
            `certificates/`, and `export/report.html` with the server's signed note; check it \
            with `tandem verify`", content_type = "application/zip"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not legal or admin", body = Problem),
        (status = 404, description = "No such bundle in the user's banks", body = Problem),
        (status = 409, description = "Not committed yet", body = Problem),
        (status = 422, description = "No purpose of 5–500 characters", body = Problem),
    ))]
pub async fn export_bundle(
    user: UserAuth,
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    ClientAddr(client): ClientAddr,
    Path(id): Path<BundleId>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, AppError> {
    user.require(EXPORTERS)?;
    let stored = state.db.bundle(id).await?.ok_or(AppError::NotFound)?;
    user.check_bank(stored.bank_id)?;
    if stored.status == BundleStatus::Pending {
        return Err(AppError::conflict(
            "bundle-not-committed",
            "The bundle's manifest arrived but it was not committed: there is no receipt yet.",
        ));
    }
    let purpose = query.purpose.trim();
    if !PURPOSE_CHARS.contains(&purpose.chars().count()) {
        return Err(AppError::invalid(
            "export-purpose-required",
            "State the export's purpose (`purpose`, 5 to 500 characters): it is audited and \
             written into the export.",
        ));
    }
    let manifest = Manifest::parse(&stored.manifest).map_err(internal)?;
    let visit = state
        .db
        .evidence_visit(manifest.visit.visit_id.0)
        .await?
        .ok_or(AppError::NotFound)?;
    // The report of this very bundle, even when the visit has a newer one.
    let hit = EvidenceHit {
        bundle_id: stored.id,
        status: stored.status,
        ..visit
    };
    let attachment = report::attachment(&state, &hit, &user, purpose, lang).await?;
    audit_export(&state, &user, client, &hit, purpose, &attachment).await?;
    stream_export(&state, stored, Some(attachment)).await
}

/// The audit entry of an export: who took which bundle out, why, and which report the
/// note binds.
pub(crate) async fn audit_export(
    state: &AppState,
    user: &UserAuth,
    client: Option<std::net::IpAddr>,
    hit: &EvidenceHit,
    purpose: &str,
    attachment: &ExportAttachment,
) -> Result<(), AppError> {
    let report = tandem_core::crypto::sha256(&attachment.report_html);
    let entry = AuditEntry::new(
        state.now_ms(),
        AuditAction::EvidenceExported,
        "visit",
        Some(hit.visit_id.to_string()),
    )
    .by(user.user.user_id)
    .bank(hit.bank_id)
    .from_addr(client)
    .purpose(purpose)
    .detail(serde_json::json!({
        "bundle": hit.bundle_id.to_string(),
        "report_sha256": report.to_hex(),
    }));
    state.db.append_audit(&entry).await?;
    Ok(())
}

/// Streams the export of a committed bundle as it is written: no copy on disk or in
/// memory but a few chunks in flight, each blob checked against its digest on the way.
/// Every blob is first looked up with its size, so a missing one is an error before the
/// first byte; a blob that turns out corrupt while it is copied ends the download short of
/// the ZIP's central directory (the connection is reset, never a complete-looking ZIP).
pub(crate) async fn stream_export(
    state: &AppState,
    stored: StoredBundle,
    attachment: Option<ExportAttachment>,
) -> Result<Response, AppError> {
    let id = stored.id;
    let server_key = state.signer.public_key();
    let certificates = certificates(state, &stored).await?;
    let mut bundle = sealed_bundle(&stored)?.with_certificates(certificates);
    if let Some(attachment) = attachment {
        bundle = bundle.with_export(attachment);
    }
    let blobs = state.blobs.clone();
    let entries = bundle.manifest.blobs.clone();
    let missing = tokio::task::spawn_blocking(move || {
        entries
            .iter()
            .filter(|e| blobs.size(&e.sha256) != Some(e.size))
            .count()
    })
    .await
    .map_err(internal)?;
    if missing > 0 {
        tracing::error!(bundle = %id, missing, "a committed bundle's blobs are not all stored");
        return Err(internal(format!(
            "{missing} of the bundle's blobs are missing from the store"
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(EXPORT_CHUNKS_IN_FLIGHT);
    let blobs = state.blobs.clone();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(EXPORT_CHUNK, ChunkSender(tx.clone()));
        if let Err(e) = write_export_stream(&bundle, &ServerBlobs(&blobs), Some(&server_key), out) {
            if tx.is_closed() {
                // The reader went away: no error of the evidence.
                tracing::info!(bundle = %id, "export abandoned by its reader");
            } else {
                tracing::error!(bundle = %id, error = %e, "export stopped short");
                let _ = tx.blocking_send(Err(std::io::Error::other("export stopped short")));
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", report::zip_name(id)),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// The size of the chunks an export is sent in.
const EXPORT_CHUNK: usize = 256 * 1024;
/// Chunks written ahead of the reader: the export's memory is bounded by these.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 8;

/// The exporter's output: each write a chunk of the response, waiting while the reader is
/// behind; a reader who went away ends the export (`BrokenPipe`).
struct ChunkSender(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The stored bundle as core's exporter takes it, with the receipt its commit stored.
fn sealed_bundle(stored: &StoredBundle) -> Result<SealedBundle, AppError> {
    let signatures = parse_signatures(&stored.signatures).map_err(internal)?;
    let bundle = SealedBundle::from_bytes(stored.manifest.clone(), signatures).map_err(internal)?;
    let answer = stored
        .answer
        .as_deref()
        .ok_or_else(|| internal("committed bundle without its receipt"))?;
    let receipt: ServerReceipt = serde_json::from_str(answer).map_err(internal)?;
    Ok(bundle.with_receipt(receipt))
}

/// The server's certificate of each signing key, as its device registry stands now: a
/// verifier holding only the server key's fingerprint checks enrolment and revocation with
/// them. A key the registry does not know gets none (the verifier then finds it not
/// enrolled).
async fn certificates(
    state: &AppState,
    stored: &StoredBundle,
) -> Result<Vec<Signed<DeviceCertificate>>, AppError> {
    let signatures = parse_signatures(&stored.signatures).map_err(internal)?;
    let issued_at_ms = state.now_ms();
    let mut out = Vec::new();
    for signature in &signatures {
        let Some(device) = state.db.device_by_kid(&signature.kid).await? else {
            continue;
        };
        let certificate = DeviceCertificate {
            device_id: device.device_id,
            agent_id: device.agent_id,
            bank_ids: device.bank_ids,
            public_key: device.public_key,
            enrolled_at_ms: device.enrolled_ms,
            revoked_at_ms: device.revoked_at_ms,
            issued_at_ms,
        };
        out.push(Signed::sign(&certificate, state.signer.as_ref()).map_err(internal)?);
    }
    Ok(out)
}

/// The server's content-addressed blobs, as the exporter reads them.
struct ServerBlobs<'a>(&'a BlobStore);

impl BlobSupply for ServerBlobs<'_> {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, BundleError> {
        // Every record is authenticated under the blob's key, in its place, behind the
        // header naming its digest (whose plaintext was hashed against it when it was
        // installed): the exporter need not hash it again ([`Self::authenticates`]).
        let blob = self
            .0
            .open_read(digest)
            .map_err(|e| BundleError::Blob {
                digest: digest.to_hex(),
                reason: e.to_string(),
            })?
            .digest_checked_by_caller();
        Ok(Box::new(blob))
    }

    fn authenticates(&self) -> bool {
        true
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}
