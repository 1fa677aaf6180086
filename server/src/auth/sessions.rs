//! Console sessions: sign-in (throttled, on the bounded hash pool), sign-out and who is
//! signed in; the session cookie.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{SESSION_COOKIE, SESSION_TOKEN_PREFIX, SESSION_TTL_MS, UserAuth};
use crate::db::{Role, UserCredentials};
use crate::error::{AppError, Problem};
use crate::throttle::{ClientAddr, Refusal, VerifyError};
use crate::{AppState, secrets};

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
    let session = match authenticate(state, client, &req.login, req.password).await? {
        SignIn::Session(session) => session,
        SignIn::Wrong => return Err(AppError::Unauthorized),
        SignIn::Refused(refusal) => return Ok(refused(refusal).await),
    };
    let cookie = session_cookie_header(&session.token, SESSION_TTL_MS / 1000, secure);
    let body = LoginResponse {
        user_id: session.user.id.to_string(),
        role: session.user.role,
        bank_ids: session
            .user
            .bank_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        token: session.token,
        expires_ms: session.expires_ms,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// What a sign-in attempt came to.
pub(crate) enum SignIn {
    /// Signed in: a new session.
    Session(NewSession),
    /// Unknown sign-in name or wrong password (one answer for both).
    Wrong,
    /// Not checked: too many failures, or every password check busy.
    Refused(Refusal),
}

/// A session just made.
pub(crate) struct NewSession {
    /// Its bearer token (`tss_…`), also its cookie.
    pub token: String,
    /// Who signed in.
    pub user: UserCredentials,
    /// When it ends, UTC ms.
    pub expires_ms: i64,
}

/// Checks `login` and `password` (throttled, on the bounded hash pool) and, when they
/// match, stores a new session: what the JSON sign-in and the console's form share.
pub(crate) async fn authenticate(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    login: &str,
    password: String,
) -> Result<SignIn, AppError> {
    let throttle = &state.login_throttle;
    if let Err(refusal) = throttle.check(login, client) {
        return Ok(SignIn::Refused(refusal));
    }
    let user = state.db.user_credentials(login).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let valid = match stored.or_else(|| dummy_hash().map(str::to_owned)) {
        Some(phc) => match throttle.verify(password, phc).await {
            Ok(valid) => valid,
            Err(VerifyError::Refused(refusal)) => return Ok(SignIn::Refused(refusal)),
            Err(VerifyError::Failed(e)) => return Err(AppError::Internal(e)),
        },
        None => false,
    };
    let user = match user {
        Some(u) if valid && u.password_hash.is_some() => u,
        _ => {
            throttle.failed(login, client);
            return Ok(SignIn::Wrong);
        }
    };
    throttle.succeeded(login);
    let token =
        secrets::new_token(SESSION_TOKEN_PREFIX).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_ms();
    let expires_ms = now + SESSION_TTL_MS;
    state
        .db
        .create_session(&secrets::token_hash(&token), user.id, now, expires_ms)
        .await?;
    Ok(SignIn::Session(NewSession {
        token,
        user,
        expires_ms,
    }))
}

/// How long a refused sign-in is held before its answer. A flood that ignores
/// `Retry-After` and asks again at once would otherwise turn each connection into
/// thousands of cheap-but-not-free requests per second; held, each connection gets at most
/// one refusal a second, and the number of connections is capped per address.
pub(crate) const REFUSAL_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

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
pub(crate) fn secure_cookie(config: &crate::Config, headers: &HeaderMap, uri: &Uri) -> bool {
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
pub(crate) fn session_cookie_header(token: &str, max_age_secs: i64, secure: bool) -> String {
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
