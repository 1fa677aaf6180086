//! Who is looking at a console page, in which language, and whether a form came from one
//! of our pages.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tandem_core::crypto::{sha256, to_hex};

use super::i18n::{LANG_COOKIE, Lang};
use crate::AppState;
use crate::auth::UserAuth;
pub(crate) use crate::auth::cookie;
use crate::error::AppError;

/// The double-submit cookie of the sign-in form (before there is a session to bind to).
pub const CSRF_COOKIE: &str = "tandem_csrf";
/// The hidden field every console form carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// The page's language, from the browser's cookie or `Accept-Language`.
#[derive(Debug, Clone, Copy)]
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Self(Lang::negotiate(
            cookie(&parts.headers, LANG_COOKIE),
            accept,
        )))
    }
}

/// A signed-in console user, or `None`: pages send the signed-out to the sign-in form
/// instead of answering 401.
pub struct Viewer(pub Option<UserAuth>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match UserAuth::from_request_parts(parts, state).await {
            Ok(user) => Ok(Self(Some(user))),
            Err(AppError::Unauthorized) => Ok(Self(None)),
            Err(other) => Err(other),
        }
    }
}

/// The CSRF token of a signed-in user's forms: a digest of the session under its own
/// purpose. Only a page of this session can know it; it changes with every sign-in.
pub(crate) fn session_csrf(user: &UserAuth) -> String {
    let input = format!("tandem/console-csrf/v1\n{}", user.session_digest());
    to_hex(&sha256(input.as_bytes()).0)
}

/// Whether `sent` (a form's field) is `expected`. Their digests are compared, so the time
/// the comparison takes says nothing about how much of a guess was right.
pub(crate) fn csrf_matches(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && sha256(sent.as_bytes()) == sha256(expected.as_bytes())
}
