//! Evidence retrieval for legal staff: the bundles received for a visit, and a bundle's
//! export — the ZIP `tandem verify` checks (manifest, signatures, blobs, keys, server
//! documents, `receipt/` with the receipt, inclusion proof and checkpoint, and
//! `certificates/` with the server's word on each signing key), written by
//! core's exporter from what the server holds, so it proves itself years later without
//! this server.

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tandem_core::bundle::{
    BlobSupply, BundleError, ExportTarget, SealedBundle, ServerReceipt, parse_signatures,
    write_export,
};
use tandem_core::crypto::{Digest, Signer as _};
use tandem_core::model::{BundleId, DeviceCertificate, Signed, VisitId};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::auth::UserAuth;
use crate::blobstore::BlobStore;
use crate::db::Role;
use crate::db::ledger::{BundleStatus, StoredBundle};
use crate::error::{AppError, Problem};

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

/// The export of a committed bundle, as a ZIP.
#[utoipa::path(get, path = "/v1/bundles/{id}/export", tag = "evidence",
    params(("id" = String, Path, description = "Bundle id")),
    responses(
        (status = 200, description = "The export (ZIP); check it with `tandem verify`",
            content_type = "application/zip"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not legal or admin", body = Problem),
        (status = 404, description = "No such bundle in the user's banks", body = Problem),
        (status = 409, description = "Not committed yet", body = Problem),
    ))]
pub async fn export_bundle(
    user: UserAuth,
    State(state): State<AppState>,
    Path(id): Path<BundleId>,
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
    // Logged for the audit trail: who took which evidence out (ids only).
    tracing::info!(bundle = %id, user = %user.user.user_id, "evidence exported");
    let blobs = state.blobs.clone();
    let server_key = state.signer.public_key();
    let certificates = certificates(&state, &stored).await?;
    let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, AppError> {
        let bundle = sealed_bundle(&stored)?.with_certificates(certificates);
        let dir = tempfile::tempdir_in(blobs.tmp_dir()).map_err(internal)?;
        let path = dir.path().join("export.zip");
        write_export(
            &bundle,
            &ServerBlobs(&blobs),
            Some(&server_key),
            ExportTarget::Zip(&path),
        )
        .map_err(internal)?;
        // Open, then let the folder go: the open file streams out and vanishes after.
        std::fs::File::open(&path).map_err(internal)
    })
    .await
    .map_err(internal)??;
    let length = file.metadata().map_err(internal)?.len();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 16);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"tandem-bundle-{id}.zip\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
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
        let file = self.0.open_read(digest).map_err(|e| BundleError::Blob {
            digest: digest.to_hex(),
            reason: e.to_string(),
        })?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}
