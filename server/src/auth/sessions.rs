//! Console sessions: sign-in (throttled, on the bounded hash pool), sign-out and who is
//! signed in; the session cookie.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use serde_json::json;

use super::account::account_key;
use super::{SESSION_COOKIE, SESSION_TOKEN_PREFIX, SESSION_TTL_MS, SessionAuth, UserAuth};
use crate::audit::{AuditAction, AuditEntry};
use crate::db::account::SessionStart;
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
    /// The password is older than the policy allows (A01): every call but
    /// `POST /v1/password` and `POST /v1/logout` answers 403 `password-expired` until it is
    /// changed.
    pub password_change_required: bool,
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

/// Signs a console user in: a session in the database, its token as bearer and cookie;
/// the account's other sessions end (one session per account, A01).
///
/// Every answer is `Cache-Control: no-store` (it may carry a token). The password check runs
/// on the bounded hash pool ([`crate::throttle`]); an unknown sign-in name is checked against
/// a dummy hash, so it costs the same time and gets the same answer as a wrong password.
/// Failed sign-ins in a row lock the name for a while (A01: 5 and 15 minutes by default),
/// whether an account has it or not: 429 `account-locked`, even for the right password.
#[utoipa::path(post, path = "/v1/login", tag = "console", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 400, description = "Malformed body", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Unknown login or wrong password", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for this account or address \
            (`login-rate-limited`), or the sign-in name is locked (`account-locked`, A01); \
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
    let session = match authenticate(state, client, &req.login, req.password, "api").await? {
        SignIn::Session(session) => session,
        SignIn::Wrong => return Err(AppError::Unauthorized),
        SignIn::Locked { retry_after_secs } => return Ok(locked(retry_after_secs).await),
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
        password_change_required: session.password_expired,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// What a sign-in attempt came to.
pub(crate) enum SignIn {
    /// Signed in: a new session.
    Session(NewSession),
    /// Unknown sign-in name or wrong password (one answer for both).
    Wrong,
    /// The sign-in name is locked after failures in a row (whether an account has it or
    /// not), the password unchecked.
    Locked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
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
    /// The password must be changed before anything else (A01).
    pub password_expired: bool,
}

/// Checks `login` and `password` (throttled, on the bounded hash pool, refused while the
/// name is locked) and, when they match, starts a new session that ends the account's
/// others: what the JSON sign-in (`via` `api`) and the console's form (`console`) share.
/// Every outcome is written to the audit log.
pub(crate) async fn authenticate(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    login: &str,
    password: String,
    via: &'static str,
) -> Result<SignIn, AppError> {
    let throttle = &state.login_throttle;
    if let Err(refusal) = throttle.check(login, client) {
        return Ok(SignIn::Refused(refusal));
    }
    let policy = &state.config.account;
    let key = account_key(state, login);
    // The same queries for a known and an unknown name, so neither answers faster.
    let user = state.db.user_credentials(login).await?;
    let known = user.as_ref().map(|u| u.id);
    let now = state.now_ms();
    if let Some(until) = state.db.login_locked_until(&key, now).await? {
        let entry = AuditEntry::about_user(now, AuditAction::SignInFailed, known)
            .from_addr(client)
            .detail(json!({"via": via, "reason": "locked"}));
        state.db.append_audit(&entry).await?;
        return Ok(locked_for(until, now));
    }
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
            let now = state.now_ms();
            let failure = state
                .db
                .record_login_failure(&key, now, policy.max_failed_sign_ins, policy.lockout_ms())
                .await?;
            let entry = AuditEntry::about_user(now, AuditAction::SignInFailed, known)
                .from_addr(client)
                .detail(json!({"via": via, "reason": "wrong", "failures": failure.failures}));
            state.db.append_audit(&entry).await?;
            if failure.newly_locked {
                let entry = AuditEntry::about_user(now, AuditAction::LockedOut, known)
                    .from_addr(client)
                    .detail(json!({"via": via, "until_ms": failure.locked_until_ms}));
                state.db.append_audit(&entry).await?;
            }
            return Ok(match failure.locked_until_ms {
                Some(until) => locked_for(until, now),
                None => SignIn::Wrong,
            });
        }
    };
    throttle.succeeded(login);
    let token =
        secrets::new_token(SESSION_TOKEN_PREFIX).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_ms();
    let expires_ms = now + SESSION_TTL_MS;
    let token_hash = secrets::token_hash(&token);
    state
        .db
        .begin_session(&SessionStart {
            token_hash: &token_hash,
            user: user.id,
            now_ms: now,
            expires_ms,
            account_key: &key,
            client,
            via,
        })
        .await?;
    let password_expired = policy.password_expired(user.password_changed_ms, now);
    Ok(SignIn::Session(NewSession {
        token,
        user,
        expires_ms,
        password_expired,
    }))
}

fn locked_for(until_ms: i64, now_ms: i64) -> SignIn {
    let ms = u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0);
    SignIn::Locked {
        retry_after_secs: ms.div_ceil(1000).max(1),
    }
}

/// 429 `account-locked` with `Retry-After`, answered after [`REFUSAL_HOLD`]: the same for
/// a real account and an unknown name.
async fn locked(retry_after_secs: u64) -> Response {
    tokio::time::sleep(REFUSAL_HOLD).await;
    let mut response = AppError::problem(
        StatusCode::TOO_MANY_REQUESTS,
        "account-locked",
        "Sign-in locked",
        "Too many failed sign-ins in a row for this sign-in name: it is locked for a while; \
         try again after the time in Retry-After.",
    )
    .with_rule("A01")
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry_after_secs.max(1)),
    );
    response
}

/// How long a refused sign-in is held before its answer. A flood that ignores
/// `Retry-After` and asks again at once would otherwise turn each connection into
/// thousands of cheap-but-not-free requests per second; held, each connection gets at most
/// one refusal a second, and the number of connections is capped per address.
pub(crate) const REFUSAL_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// 429 or 503 problem+json with `Retry-After`, answered after [`REFUSAL_HOLD`].
pub(crate) async fn refused(refusal: Refusal) -> Response {
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
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    SessionAuth(user): SessionAuth,
) -> Result<Response, AppError> {
    sign_out(&state, &user, client, "api").await?;
    let clear = session_cookie_header("", 0, secure_cookie(&state.config, &headers, &uri));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// Ends the session of `user` and writes `sign-out` to the audit log (the JSON sign-out
/// and the console's share it).
pub(crate) async fn sign_out(
    state: &AppState,
    user: &UserAuth,
    client: Option<std::net::IpAddr>,
    via: &'static str,
) -> Result<(), AppError> {
    let now = state.now_ms();
    if state.db.end_session(&user.token_hash, now).await? {
        let id = user.user.user_id;
        let entry = AuditEntry::about_user(now, AuditAction::SignOut, Some(id))
            .by(id)
            .from_addr(client)
            .detail(json!({ "via": via }));
        state.db.append_audit(&entry).await?;
    }
    Ok(())
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
