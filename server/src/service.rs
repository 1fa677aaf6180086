//! The service's own routes, about the server rather than any area: health, metrics, the
//! OpenAPI document (every area's merged) and the server's public key; and the answers to
//! an unknown path or method.

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
    complete_responses(&mut doc);
    doc
}

/// Routes that read neither the database nor the caller: they cannot answer 503.
const STATIC_ROUTES: &[&str] = &["/metrics", "/openapi.json", "/v1/server-key"];

/// Adds to every operation the answers the shared layers give it, so the document lists
/// every status a route can answer: 400 for a path, query or body it cannot read, 401 where
/// it needs a caller, 403 where a console role is checked, 404 for an id it does not know (or of another bank), 413 for a body
/// over the limit, 503 when the database is down; and makes every error's body the problem
/// document it is.
fn complete_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Content, RefOr, Response};
    let problem_content = || {
        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            "Problem",
        ))))
    };
    for (path, item) in &mut doc.paths.paths {
        let has_path_params = path.contains('{');
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            // Console routes check the role after the session: a signed-in user of the
            // wrong role gets 403 (another bank's ids stay 404).
            let console = op.security.as_ref().is_some_and(|list| {
                serde_json::to_value(list).is_ok_and(|v| v.to_string().contains("\"session\""))
            });
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let answers = &mut op.responses.responses;
            let mut add = |status: u16, description: &str| {
                answers
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(Response::new(description)));
            };
            if has_path_params || has_params || has_body {
                add(400, "Malformed path, query, header or body");
            }
            if secured {
                add(401, "No valid credentials");
            }
            if console {
                add(403, "Signed in, but this role may not do this");
            }
            if has_path_params {
                add(
                    404,
                    "No such resource for this caller (another bank's ids included)",
                );
            }
            if has_body {
                add(413, "Body larger than the server accepts");
            }
            if !STATIC_ROUTES.contains(&path.as_str()) {
                add(503, "Database unavailable");
            }
            for (status, answer) in answers.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(answer)) = (is_error, answer) {
                    let typed = answer
                        .content
                        .keys()
                        .any(|k| k == "application/problem+json");
                    if !typed {
                        let schema = answer
                            .content
                            .shift_remove("application/json")
                            .unwrap_or_else(problem_content);
                        answer.content.clear();
                        answer
                            .content
                            .insert("application/problem+json".to_owned(), schema);
                    }
                }
            }
        }
    }
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
