//! The extractors that say who is calling: [`DeviceAuth`] (an enrolled phone's `tdv_…`
//! bearer token) and [`UserAuth`] (a console session's `tss_…` bearer token or cookie),
//! with the bank scope every console route checks.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use tandem_core::model::BankId;

use super::{DEVICE_TOKEN_PREFIX, SESSION_COOKIE, SESSION_TOKEN_PREFIX};
use crate::db::Role;
use crate::db::account::SessionEnd;
use crate::db::auth::{DeviceRecord, SessionUser};
use crate::error::AppError;
use crate::{AppState, secrets};

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`, if the request has it (and it is not empty).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The session cookie of a request, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
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

/// A signed-in console user, from a `tss_` bearer token or the session cookie, whose
/// password has not expired (A01): 401 without a live session (`session-replaced` when a
/// sign-in elsewhere ended it), 403 `password-expired` when the password must be changed
/// first. Every route taking it gets both checks; only changing the password and signing
/// out take [`SessionAuth`] instead.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The user.
    pub user: SessionUser,
    /// The session token's hash (for sign-out).
    pub(super) token_hash: String,
}

/// What the request's session token comes to.
pub(crate) enum SessionLookup {
    /// A live session.
    Live(UserAuth),
    /// A session a sign-in elsewhere ended (one session per account).
    Replaced,
    /// No token, or no live session for it.
    None,
}

/// Looks up the request's session (bearer token first, then the cookie).
pub(crate) async fn lookup_session(
    parts: &Parts,
    state: &AppState,
) -> Result<SessionLookup, AppError> {
    let Some(token) = bearer(&parts.headers)
        .or_else(|| session_cookie(&parts.headers))
        .filter(|t| t.starts_with(SESSION_TOKEN_PREFIX))
    else {
        return Ok(SessionLookup::None);
    };
    let token_hash = secrets::token_hash(token);
    if let Some(user) = state.db.session_user(&token_hash, state.now_ms()).await? {
        return Ok(SessionLookup::Live(UserAuth { user, token_hash }));
    }
    Ok(match state.db.session_end_reason(&token_hash).await? {
        Some(SessionEnd::Replaced) => SessionLookup::Replaced,
        _ => SessionLookup::None,
    })
}

/// 401 `session-replaced`: the account signed in elsewhere.
pub(crate) fn session_replaced() -> AppError {
    AppError::problem(
        StatusCode::UNAUTHORIZED,
        "session-replaced",
        "Session replaced",
        "This account signed in elsewhere, which ended this session (one session per \
         account); sign in again.",
    )
    .with_rule("A01")
}

/// 403 `password-expired`: the password must be changed before anything else.
pub(crate) fn password_expired() -> AppError {
    AppError::problem(
        StatusCode::FORBIDDEN,
        "password-expired",
        "Password expired",
        "The password is older than the policy allows: change it with POST /v1/password \
         before anything else.",
    )
    .with_rule("A01")
}

/// A live console session whatever its password's age: only for changing the password and
/// signing out. Everything else takes [`UserAuth`].
#[derive(Debug, Clone)]
pub struct SessionAuth(pub UserAuth);

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match lookup_session(parts, state).await? {
            SessionLookup::Live(user) => Ok(Self(user)),
            SessionLookup::Replaced => Err(session_replaced()),
            SessionLookup::None => Err(AppError::Unauthorized),
        }
    }
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let SessionAuth(user) = SessionAuth::from_request_parts(parts, state).await?;
        if user.password_expired(state) {
            return Err(password_expired());
        }
        Ok(user)
    }
}

impl UserAuth {
    /// Whether the user's password must be changed before anything else (A01).
    pub fn password_expired(&self, state: &AppState) -> bool {
        state
            .config
            .account
            .password_expired(self.user.password_changed_ms, state.now_ms())
    }

    /// The stored digest of the session's token: names this session without revealing the
    /// token (the console derives its forms' CSRF token from it).
    pub fn session_digest(&self) -> &str {
        &self.token_hash
    }

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
