//! The extractors that say who is calling: [`DeviceAuth`] (an enrolled phone's `tdv_…`
//! bearer token) and [`UserAuth`] (a console session's `tss_…` bearer token or cookie),
//! with the bank scope every console route checks.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use tandem_core::model::BankId;

use super::{DEVICE_TOKEN_PREFIX, SESSION_COOKIE, SESSION_TOKEN_PREFIX};
use crate::db::Role;
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

/// A signed-in console user, from a `tss_` bearer token or the session cookie.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The user.
    pub user: SessionUser,
    /// The session token's hash (for sign-out).
    pub(super) token_hash: String,
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
