//! The HTTP routes of the foundation: health, metrics, the OpenAPI document and the
//! server's public key.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tandem_core::crypto::Signer as _;
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::error::{AppError, Problem};

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tandem server",
        description = "Field-visit evidence: sync, uploads, console."
    ),
    paths(healthz, metrics, openapi_json, server_key),
    components(schemas(Problem, Health, ServerKey)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The two ways to authenticate: a device's bearer token, a console session.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityScheme;
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Device token (`tdv_…`) from `POST /v1/enroll`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Console session from `POST /v1/login` (also accepted as a `tss_…` bearer token)",
            ))),
        );
    }
}

/// The whole OpenAPI document: this module's paths and every area's.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::auth::AuthDoc::openapi());
    doc.merge(crate::uploads::UploadsDoc::openapi());
    doc.merge(crate::visits::VisitsDoc::openapi());
    doc.merge(crate::sync::SyncDoc::openapi());
    doc.merge(crate::evidence::EvidenceDoc::openapi());
    doc.merge(crate::ingest::IngestDoc::openapi());
    doc.merge(crate::tlog::LogDoc::openapi());
    doc
}

/// `GET /healthz` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when answered with 200.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Liveness and readiness: 200 when the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Serving, database reachable", body = Health),
        (status = 503, description = "Database unreachable", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    state.db.ping().await?;
    let database = match state.db.backend() {
        crate::db::Backend::Sqlite => "sqlite",
        crate::db::Backend::Postgres => "postgres",
    };
    Ok(Json(Health {
        status: "ok".into(),
        database: database.into(),
    }))
}

/// Request counts and latencies, Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> impl IntoResponse {
    Json(api_doc())
}

/// The server's public signing key: phones pin it at enrollment, verifiers check server
/// documents with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServerKey {
    /// `ed25519`.
    pub alg: String,
    /// Raw public key, standard base64.
    pub key: String,
    /// Key id: lowercase hex SHA-256 of the raw key.
    pub kid: String,
}

/// The server's public key.
#[utoipa::path(get, path = "/v1/server-key", tag = "keys",
    responses((status = 200, description = "The server's Ed25519 public key", body = ServerKey)))]
pub async fn server_key(State(state): State<AppState>) -> Json<ServerKey> {
    let public = state.signer.public_key();
    Json(ServerKey {
        alg: public.alg.to_string(),
        key: B64.encode(&public.key),
        kid: public.kid().to_string(),
    })
}

/// Any path no route matches.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
