//! Who is calling: enrolled devices (bearer `tdv_…` tokens) and console users (sessions,
//! `tss_…` bearer tokens or the `tandem_session` cookie); enrollment, sign-in, sign-out,
//! new enrollment codes and device revocation.
//!
//! Handlers take [`DeviceAuth`] or [`UserAuth`] as an extractor. A user only ever sees the
//! banks they are scoped to: anything of another bank answers 404, exactly as if it did
//! not exist ([`UserAuth::check_bank`]).

use axum::Router;
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::AppState;
use crate::db::Role;

pub mod account;
mod enrollment;
mod extractors;
pub(crate) mod sessions;
pub(crate) mod users;

pub use account::{AccountPolicy, PasswordChangeRequest, change_password_json};
pub use enrollment::{
    DeviceInfo, EnrollRequest, EnrollResponse, NewCodeResponse, RevokeRequest, RevokeResponse,
    device_self, enroll, new_code, revoke,
};
pub(crate) use enrollment::{issue_enrollment_code, revoke_device, shared_banks};
pub use extractors::{DeviceAuth, SessionAuth, UserAuth};
pub(crate) use extractors::{SessionLookup, cookie, lookup_session};
pub use sessions::{LoginRequest, LoginResponse, Me, login, logout, me};

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
        .route("/v1/password", post(change_password_json))
        .route("/v1/me", get(me))
        .route("/v1/device", get(device_self))
        .route("/v1/devices/{id}/revoke", post(revoke))
        .route("/v1/agents/{id}/enrollment-codes", post(new_code))
}

/// The OpenAPI part of this module.
#[derive(OpenApi)]
#[openapi(
    paths(
        enrollment::enroll,
        sessions::login,
        sessions::logout,
        account::change_password_json,
        sessions::me,
        enrollment::device_self,
        enrollment::revoke,
        enrollment::new_code
    ),
    components(schemas(
        EnrollRequest,
        EnrollResponse,
        LoginRequest,
        LoginResponse,
        PasswordChangeRequest,
        Me,
        DeviceInfo,
        RevokeRequest,
        RevokeResponse,
        NewCodeResponse,
        Role
    ))
)]
pub struct AuthDoc;
