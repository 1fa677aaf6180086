//! Who is looking at a console page, in which language, and whether a form came from one
//! of our pages.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::crypto::{sha256, to_hex};

use super::i18n::{LANG_COOKIE, Lang};
use crate::AppState;
pub(crate) use crate::auth::cookie;
use crate::auth::sessions::{secure_cookie, session_cookie_header};
use crate::auth::{SessionLookup, UserAuth, lookup_session};

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
///
/// It also enforces A01 for every page that takes it, so a page added later needs no code
/// of its own: a user whose password expired is sent (303) to `/password`, and a browser
/// whose session a sign-in elsewhere ended is sent to the sign-in form saying so (its stale
/// cookie cleared). Only the password page and sign-out take [`SessionViewer`] instead.
pub struct Viewer(pub Option<UserAuth>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let SessionViewer(viewer) = SessionViewer::from_request_parts(parts, state).await?;
        match viewer {
            Some(user) if user.password_expired(state) => {
                Err(Redirect::to(PASSWORD_PATH).into_response())
            }
            other => Ok(Self(other)),
        }
    }
}

/// Where a user whose password expired is sent.
pub(crate) const PASSWORD_PATH: &str = "/password";

/// A signed-in console user whatever the age of their password, or `None`: for the
/// password page and sign-out only (every other page takes [`Viewer`]).
pub struct SessionViewer(pub Option<UserAuth>);

impl FromRequestParts<AppState> for SessionViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match lookup_session(parts, state).await {
            Ok(SessionLookup::Live(user)) => Ok(Self(Some(user))),
            Ok(SessionLookup::None) => Ok(Self(None)),
            Ok(SessionLookup::Replaced) => {
                let secure = secure_cookie(&state.config, &parts.headers, &parts.uri);
                let mut response = Redirect::to("/login?why=elsewhere").into_response();
                let clear = session_cookie_header("", 0, secure);
                if let Ok(value) = HeaderValue::from_str(&clear) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(response)
            }
            Err(e) => Err(e.into_response()),
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
