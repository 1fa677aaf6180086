//! The web console for managers, administrators and legal staff, served by `tandem serve`
//! at `/`: server-rendered HTML (askama templates in `server/templates/console/`, checked
//! at compile time), forms that work without JavaScript, one stylesheet
//! (`server/assets/console.css`), every string from the message files ([`i18n`]).
//!
//! Every page answers with a strict Content-Security-Policy (no inline script or style, no
//! other origin, no framing) and `Referrer-Policy: no-referrer`; like every answer of the
//! server, with `Cache-Control: no-store` (pages show debtor data). Every form carries a CSRF token: the session's own (a digest of
//! its token under the purpose `console-csrf`) once signed in, a double-submit cookie on
//! the sign-in form. Console handlers call the same services as the JSON API, never a
//! second copy of a rule.
//!
//! Threats: a thief of a shared computer or a proxy cache (no-store, HttpOnly cookies); a
//! malicious web page a signed-in manager visits (CSRF tokens, SameSite=Strict, framing
//! refused); a case file crafted to inject markup (every value escaped by the templates,
//! no inline script allowed to run); a user of another bank guessing ids (the same "not
//! found" page as for a random id).

pub mod i18n;
mod pages;
mod session;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use i18n::Lang;
pub use session::{CSRF_COOKIE, CSRF_FIELD};

use crate::AppState;

/// The stylesheet, embedded.
const CSS: &str = include_str!("../../assets/console.css");

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::signin_page).post(pages::signin))
        .route("/logout", axum::routing::post(pages::signout))
        .route("/lang/{tag}", get(pages::switch_language))
        .route("/requests", get(pages::requests))
        .route("/assets/console.css", get(stylesheet))
}

/// `Content-Security-Policy` of every page: this origin only, no inline script or style,
/// no plugins, never framed, forms post back here only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// An HTML page with the console's headers.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_page_headers(headers);
    response
}

/// The headers every console answer carries besides those of every answer
/// (`nosniff`, `no-store`: [`crate::headers::harden`]).
pub(crate) fn secure_page_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The stylesheet: cached by the browser for a day (it holds no data).
async fn stylesheet() -> Response {
    let mut response = CSS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}
