//! Who is calling: enrolled devices (bearer `tdv_…` tokens) and console users (sessions,
//! `tss_…` bearer tokens or the `tandem_session` cookie); enrollment, sign-in, sign-out,
//! new enrollment codes and device revocation.
//!
//! Handlers take [`DeviceAuth`] or [`UserAuth`] as an extractor. A user only ever sees the
//! banks they are scoped to: anything of another bank answers 404, exactly as if it did
//! not exist ([`UserAuth::check_bank`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tandem_core::crypto::{PublicKey, SignatureRecord};
use tandem_core::model::{AgentId, BankId, DeviceId};
use tandem_core::phone::Enrollment;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::db::auth::{DeviceRecord, EnrollOutcome, NewDevice, SessionUser};
use crate::db::{NewEnrollmentCode, Role};
use crate::error::{AppError, Problem};
use crate::throttle::{ClientAddr, Refusal, VerifyError};
use crate::{AppState, secrets};

/// Prefix of device bearer tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "tdv_";
/// Prefix of console session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "tss_";
/// The console's session cookie.
pub const SESSION_COOKIE: &str = "tandem_session";
/// How long a console session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;
/// How long a new enrollment code stays valid.
pub const ENROLLMENT_CODE_TTL_MS: i64 = 7 * 24 * 3_600_000;
/// The purpose a phone signs its enrollment proof for.
pub const ENROLL_PURPOSE: &str = tandem_core::sync::session::ENROLL_PURPOSE;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/me", get(me))
        .route("/v1/device", get(device_self))
        .route("/v1/devices/{id}/revoke", post(revoke))
        .route("/v1/agents/{id}/enrollment-codes", post(new_code))
}

/// The OpenAPI part of this module.
#[derive(OpenApi)]
#[openapi(
    paths(enroll, login, logout, me, device_self, revoke, new_code),
    components(schemas(
        EnrollRequest,
        EnrollResponse,
        LoginRequest,
        LoginResponse,
        Me,
        DeviceInfo,
        RevokeRequest,
        RevokeResponse,
        NewCodeResponse,
        Role
    ))
)]
pub struct AuthDoc;

// ---------------------------------------------------------------------------------------
// Extractors

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The session cookie of a request, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// An enrolled, unrevoked device, from its bearer token.
#[derive(Debug, Clone)]
pub struct DeviceAuth(pub DeviceRecord);

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)
            .filter(|t| t.starts_with(DEVICE_TOKEN_PREFIX))
            .ok_or(AppError::Unauthorized)?;
        let device = state
            .db
            .device_by_token(&secrets::token_hash(token))
            .await?
            .ok_or(AppError::Unauthorized)?;
        if device.revoked_at_ms.is_some() {
            return Err(AppError::problem(
                StatusCode::UNAUTHORIZED,
                "device-revoked",
                "Device revoked",
                "This device was revoked; enrol it again with a new code.",
            ));
        }
        Ok(Self(device))
    }
}

/// A signed-in console user, from a `tss_` bearer token or the session cookie.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The user.
    pub user: SessionUser,
    /// The session token's hash (for sign-out).
    token_hash: String,
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)
            .or_else(|| session_cookie(&parts.headers))
            .filter(|t| t.starts_with(SESSION_TOKEN_PREFIX))
            .ok_or(AppError::Unauthorized)?;
        let token_hash = secrets::token_hash(token);
        let user = state
            .db
            .session_user(&token_hash, state.now_ms())
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Self { user, token_hash })
    }
}

impl UserAuth {
    /// Passes when the user has one of `roles`; 403 otherwise.
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Whether the user is scoped to `bank`.
    pub fn sees(&self, bank: BankId) -> bool {
        self.user.bank_ids.contains(&bank)
    }

    /// Passes when the user sees `bank`; 404 otherwise, so that another bank's data cannot
    /// even be found to exist.
    pub fn check_bank(&self, bank: BankId) -> Result<(), AppError> {
        if self.sees(bank) {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Passes when the user sees at least one of `banks`; 404 otherwise.
    pub fn check_any_bank(&self, banks: &[BankId]) -> Result<(), AppError> {
        if banks.iter().any(|b| self.sees(*b)) {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Enrollment

/// A phone's enrollment: the one-time code, its public key, and a signature with that key
/// proving the phone holds it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code as the agent typed or scanned it (dashes and case do not matter).
    pub code: String,
    /// The device's public key `{alg, key}` (`ed25519` or `ecdsa-p256-sha256`, raw key in
    /// standard base64).
    #[schema(value_type = Object)]
    pub public_key: PublicKey,
    /// `{kid, alg, sig}`: the device key's signature for purpose `enroll` over the code's
    /// stored form (SHA-256 hex of its symbols, uppercase, without dashes).
    #[schema(value_type = Object)]
    pub proof: SignatureRecord,
}

/// What an enrolled phone keeps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    /// Device id, agent id and the server's key to pin.
    #[schema(value_type = Object)]
    pub enrollment: Enrollment,
    /// Banks the agent works for (UUIDs).
    pub bank_ids: Vec<String>,
    /// The device's bearer token, shown once (`tdv_…`).
    pub token: String,
}

/// Enrols a phone with a one-time code.
#[utoipa::path(post, path = "/v1/enroll", tag = "devices", request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled", body = EnrollResponse),
        (status = 400, description = "Malformed body or proof", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Unknown, expired or used code", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Key already enrolled", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn enroll(
    State(state): State<AppState>,
    body: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EnrollResponse>), AppError> {
    let Json(req) = body?;
    let code_hash = secrets::enrollment_code_hash(&req.code);
    if req.code.len() > 64 || code_hash.is_empty() {
        return Err(AppError::Unauthorized);
    }
    if req
        .proof
        .verify(&req.public_key, ENROLL_PURPOSE, code_hash.as_bytes())
        .is_err()
    {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "enrollment-proof-invalid",
            "Enrollment proof invalid",
            "The proof is not a signature by the given key over this code.",
        ));
    }
    let token =
        secrets::new_token(DEVICE_TOKEN_PREFIX).map_err(|e| AppError::Internal(e.to_string()))?;
    let device = NewDevice {
        id: DeviceId::new(),
        public_key: req.public_key,
        token_hash: secrets::token_hash(&token),
    };
    let code_problem = |kind, detail: &str| {
        AppError::problem(
            StatusCode::UNAUTHORIZED,
            kind,
            "Enrollment code not accepted",
            detail,
        )
    };
    match state
        .db
        .enroll_device(&code_hash, &device, state.now_ms())
        .await?
    {
        EnrollOutcome::Enrolled { agent_id, bank_ids } => {
            tracing::info!(device = %device.id, agent = %agent_id, "device enrolled");
            let server_key = tandem_core::crypto::Signer::public_key(state.signer.as_ref());
            Ok((
                StatusCode::CREATED,
                Json(EnrollResponse {
                    enrollment: Enrollment {
                        device_id: device.id,
                        agent_id,
                        server_key,
                    },
                    bank_ids: bank_ids.iter().map(ToString::to_string).collect(),
                    token,
                }),
            ))
        }
        EnrollOutcome::UnknownCode => Err(code_problem(
            "enrollment-code-unknown",
            "No such enrollment code.",
        )),
        EnrollOutcome::Expired => Err(code_problem(
            "enrollment-code-expired",
            "The enrollment code has expired; ask for a new one.",
        )),
        EnrollOutcome::Used => Err(code_problem(
            "enrollment-code-used",
            "The enrollment code was used already; ask for a new one.",
        )),
        EnrollOutcome::KeyTaken => Err(AppError::conflict(
            "device-key-enrolled",
            "This public key is enrolled already; a phone makes a new key to enrol again.",
        )),
    }
}

/// An enrolled device, as it sees itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Banks (UUIDs).
    pub bank_ids: Vec<String>,
    /// Key id (hex SHA-256 of the raw key).
    pub kid: String,
    /// When enrolled, UTC ms.
    pub enrolled_ms: i64,
}

/// The calling device.
#[utoipa::path(get, path = "/v1/device", tag = "devices",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The device", body = DeviceInfo),
        (status = 401, description = "No valid device token, or revoked", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn device_self(DeviceAuth(d): DeviceAuth) -> Json<DeviceInfo> {
    Json(DeviceInfo {
        device_id: d.device_id.to_string(),
        agent_id: d.agent_id.to_string(),
        bank_ids: d.bank_ids.iter().map(ToString::to_string).collect(),
        kid: d.public_key.kid().to_string(),
        enrolled_ms: d.enrolled_ms,
    })
}

/// Why a device is revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Shown to admins (lost, stolen, left the company); no personal data.
    pub reason: String,
}

/// A revoked device.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokeResponse {
    /// Device id.
    pub device_id: String,
    /// When it was revoked, UTC ms: its signatures from then on are rejected.
    pub revoked_at_ms: i64,
}

/// Revokes a device (admin): its token stops working at once, and bundles it signs from
/// now on are rejected at ingest.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body = RevokeRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Revoked (or revoked already)", body = RevokeResponse),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such device in the admin's banks", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one over 200 characters", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
    body: Result<Json<RevokeRequest>, JsonRejection>,
) -> Result<Json<RevokeResponse>, AppError> {
    user.require(&[Role::Admin])?;
    let id: DeviceId = id.parse().map_err(|_| AppError::NotFound)?;
    let Json(req) = body?;
    if req.reason.trim().is_empty() || req.reason.chars().count() > 200 {
        return Err(AppError::invalid(
            "revocation-reason",
            "Give a reason of 1 to 200 characters.",
        ));
    }
    let device = state.db.device(id).await?.ok_or(AppError::NotFound)?;
    user.check_any_bank(&device.bank_ids)?;
    let now = state.now_ms();
    state.db.revoke_device(id, now, req.reason.trim()).await?;
    let revoked_at_ms = state
        .db
        .device(id)
        .await?
        .and_then(|d| d.revoked_at_ms)
        .unwrap_or(now);
    tracing::info!(device = %id, "device revoked");
    Ok(Json(RevokeResponse {
        device_id: id.to_string(),
        revoked_at_ms,
    }))
}

/// A new one-time enrollment code, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewCodeResponse {
    /// The code (`7KQ2-M9XD-4HFA`).
    pub code: String,
    /// When it expires, UTC ms.
    pub expires_ms: i64,
}

/// Issues a new one-time enrollment code for an agent (admin).
#[utoipa::path(post, path = "/v1/agents/{id}/enrollment-codes", tag = "devices",
    params(("id" = String, Path, description = "Agent id")),
    security(("session" = [])),
    responses(
        (status = 201, description = "Code issued", body = NewCodeResponse),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such agent in the admin's banks", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn new_code(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NewCodeResponse>), AppError> {
    user.require(&[Role::Admin])?;
    let agent: AgentId = id.parse().map_err(|_| AppError::NotFound)?;
    let banks = state
        .db
        .agent_banks(agent)
        .await?
        .ok_or(AppError::NotFound)?;
    user.check_any_bank(&banks)?;
    let code = secrets::new_enrollment_code().map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_ms();
    let stored = NewEnrollmentCode {
        id: Uuid::now_v7(),
        code_hash: secrets::enrollment_code_hash(&code),
        expires_ms: now + ENROLLMENT_CODE_TTL_MS,
    };
    state.db.add_enrollment_code(agent, &stored, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewCodeResponse {
            code,
            expires_ms: stored.expires_ms,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Console sessions

/// Console sign-in attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Sign-in name.
    pub login: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// User id (UUID).
    pub user_id: String,
    /// Role.
    pub role: Role,
    /// Banks the user may see (UUIDs).
    pub bank_ids: Vec<String>,
    /// Bearer token of the session (`tss_…`), also set as the `tandem_session` cookie.
    pub token: String,
    /// When the session ends, UTC ms.
    pub expires_ms: i64,
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

/// Signs a console user in: a session in the database, its token as bearer and cookie.
///
/// Every answer is `Cache-Control: no-store` (it may carry a token). The password check runs
/// on the bounded hash pool ([`crate::throttle`]); an unknown sign-in name is checked against
/// a dummy hash, so it costs the same time and gets the same answer as a wrong password.
#[utoipa::path(post, path = "/v1/login", tag = "console", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 400, description = "Malformed body", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Unknown login or wrong password", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for this account or address; \
            `Retry-After` says when to try again", body = Problem,
            content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins being checked at once; \
            `Retry-After` says when to try again", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let secure = secure_cookie(&state.config, &headers, &uri);
    let mut response = match sign_in(&state, client, secure, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

async fn sign_in(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    secure: bool,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body?;
    let throttle = &state.login_throttle;
    if let Err(refusal) = throttle.check(&req.login, client) {
        return Ok(refused(refusal).await);
    }
    let user = state.db.user_credentials(&req.login).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let valid = match stored.or_else(|| dummy_hash().map(str::to_owned)) {
        Some(phc) => match throttle.verify(req.password, phc).await {
            Ok(valid) => valid,
            Err(VerifyError::Refused(refusal)) => return Ok(refused(refusal).await),
            Err(VerifyError::Failed(e)) => return Err(AppError::Internal(e)),
        },
        None => false,
    };
    let user = match user {
        Some(u) if valid && u.password_hash.is_some() => u,
        _ => {
            throttle.failed(&req.login, client);
            return Err(AppError::Unauthorized);
        }
    };
    throttle.succeeded(&req.login);
    let token =
        secrets::new_token(SESSION_TOKEN_PREFIX).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_ms();
    let expires_ms = now + SESSION_TTL_MS;
    state
        .db
        .create_session(&secrets::token_hash(&token), user.id, now, expires_ms)
        .await?;
    let cookie = session_cookie_header(&token, SESSION_TTL_MS / 1000, secure);
    let body = LoginResponse {
        user_id: user.id.to_string(),
        role: user.role,
        bank_ids: user.bank_ids.iter().map(ToString::to_string).collect(),
        token,
        expires_ms,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// How long a refused sign-in is held before its answer. A flood that ignores
/// `Retry-After` and asks again at once would otherwise turn each connection into
/// thousands of cheap-but-not-free requests per second; held, each connection gets at most
/// one refusal a second, and the number of connections is capped per address.
const REFUSAL_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// 429 or 503 problem+json with `Retry-After`, answered after [`REFUSAL_HOLD`].
async fn refused(refusal: Refusal) -> Response {
    tokio::time::sleep(REFUSAL_HOLD).await;
    let (error, retry_after_secs) = match refusal {
        Refusal::RateLimited { retry_after_secs } => (
            AppError::problem(
                StatusCode::TOO_MANY_REQUESTS,
                "login-rate-limited",
                "Too many failed sign-ins",
                "Too many failed sign-ins for this account or from this address; \
                 try again after the time in Retry-After.",
            ),
            retry_after_secs,
        ),
        Refusal::Busy => (
            AppError::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "login-busy",
                "Sign-in busy",
                "Too many sign-ins are being checked right now; \
                 try again after the time in Retry-After.",
            ),
            1,
        ),
    };
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry_after_secs.max(1)),
    );
    response
}

/// Whether the session cookie must carry `Secure`: always with `--secure-cookies`, else
/// when the request came over TLS (an absolute `https` request target, or
/// `X-Forwarded-Proto: https` from a proxy the server was told to trust).
fn secure_cookie(config: &crate::Config, headers: &HeaderMap, uri: &Uri) -> bool {
    config.secure_cookies
        || uri.scheme_str() == Some("https")
        || (config.trust_forwarded_proto
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")))
}

/// The `Set-Cookie` value of the session cookie (`max_age_secs` 0 clears it).
fn session_cookie_header(token: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// Ends the calling session.
#[utoipa::path(post, path = "/v1/logout", tag = "console",
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    user: UserAuth,
) -> Result<Response, AppError> {
    state
        .db
        .end_session(&user.token_hash, state.now_ms())
        .await?;
    let clear = session_cookie_header("", 0, secure_cookie(&state.config, &headers, &uri));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// The signed-in user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// User id.
    pub user_id: String,
    /// Role.
    pub role: Role,
    /// Banks (UUIDs).
    pub bank_ids: Vec<String>,
    /// When the session ends, UTC ms.
    pub expires_ms: i64,
}

/// Who is signed in.
#[utoipa::path(get, path = "/v1/me", tag = "console",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user", body = Me),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn me(user: UserAuth) -> Json<Me> {
    Json(Me {
        user_id: user.user.user_id.to_string(),
        role: user.user.role,
        bank_ids: user.user.bank_ids.iter().map(ToString::to_string).collect(),
        expires_ms: user.user.expires_ms,
    })
}
