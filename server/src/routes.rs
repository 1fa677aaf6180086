//! The HTTP routes of the foundation: health, metrics, the OpenAPI document, the server's
//! public key, and a password check for console users.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tandem_core::crypto::Signer as _;
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::db::Role;
use crate::error::{AppError, Problem};
use crate::secrets;

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tandem server",
        description = "Field-visit evidence: sync, uploads, console."
    ),
    paths(healthz, metrics, openapi_json, server_key, login),
    components(schemas(Problem, Health, ServerKey, LoginRequest, LoginResponse, Role))
)]
pub struct ApiDoc;

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
    Json(ApiDoc::openapi())
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

/// Console sign-in attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Sign-in name.
    pub login: String,
    /// Password.
    pub password: String,
}

/// Who signed in. Sessions come with the console; for now this only checks credentials.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// User id (UUID).
    pub user_id: String,
    /// Role.
    pub role: Role,
    /// Banks the user may see (UUIDs).
    pub bank_ids: Vec<String>,
}

/// The hash of a random password, verified when the login is unknown or has no password,
/// so that such attempts take as long as a wrong password.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            secrets::new_password()
                .and_then(|p| secrets::hash_password(&p))
                .ok()
        })
        .as_deref()
}

/// Checks a console user's password.
#[utoipa::path(post, path = "/v1/login", tag = "console", request_body = LoginRequest,
    responses(
        (status = 200, description = "Credentials valid", body = LoginResponse),
        (status = 400, description = "Malformed body", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Unknown login or wrong password", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, AppError> {
    let Json(req) = body?;
    let user = state.db.user_credentials(&req.login).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = req.password;
    let valid = tokio::task::spawn_blocking(move || {
        let hash: Option<&str> = match &stored {
            Some(h) => Some(h),
            None => dummy_hash(),
        };
        match hash {
            Some(hash) => secrets::verify_password(&password, hash),
            None => Ok(false),
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))?;
    match user {
        Some(u) if valid && u.password_hash.is_some() => Ok(Json(LoginResponse {
            user_id: u.id.to_string(),
            role: u.role,
            bank_ids: u.bank_ids.iter().map(ToString::to_string).collect(),
        })),
        _ => Err(AppError::Unauthorized),
    }
}

/// Any path no route matches.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
