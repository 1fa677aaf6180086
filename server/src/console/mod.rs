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

mod account;
mod admin;
mod cases;
pub(crate) mod dossier;
mod flags;
mod frame;
pub mod i18n;
mod manage;
mod pages;
mod receipts;
mod reports;
mod retention;
mod session;
mod visits;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use i18n::Lang;
pub(crate) use session::PageLang;
pub use session::{CSRF_COOKIE, CSRF_FIELD};

use crate::AppState;

/// The stylesheet, embedded.
const CSS: &str = concat!(
    include_str!("../../assets/console.css"),
    include_str!("../../assets/dossier.css"),
    include_str!("../../assets/retention.css")
);

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::signin_page).post(pages::signin))
        .route("/logout", post(pages::signout))
        .route("/lang/{tag}", get(pages::switch_language))
        .route("/requests", get(manage::requests))
        .route("/requests/{id}", get(manage::request_page))
        .route("/requests/{id}/approve", post(manage::approve))
        .route("/requests/{id}/reject", post(manage::reject))
        .route("/cases", get(cases::cases))
        .route(
            "/cases/import",
            get(cases::import_form)
                .post(cases::import)
                .layer(DefaultBodyLimit::max(
                    crate::visits::import::IMPORT_BODY_LIMIT + 64 * 1024,
                )),
        )
        .route("/cases/import/template.csv", get(cases::import_template))
        .route("/cases/{id}", get(cases::case_page))
        .route("/cases/{id}/request", post(cases::request_visit))
        .route("/visits", get(visits::visits))
        .route("/visits/{id}", get(visits::visit_page))
        .route("/cases/{id}/complaint", post(cases::record_complaint))
        .route("/flags", get(flags::flags))
        .route("/complaints/{id}/resolve", post(flags::resolve))
        // Money (C03): receipts and their deposits, receipt-number ranges, reports.
        .route("/receipts", get(receipts::receipts_page))
        .route("/receipts/ranges", get(receipts::ranges_page))
        .route("/receipts/{serial}/deposit", post(receipts::deposit))
        .route("/reports", get(reports::reports_page))
        .route("/reports/{file}", get(reports::download))
        .route("/assets/console.css", get(stylesheet))
        // Account security (A01): the password change, forced once a password expired.
        .route(
            "/password",
            get(account::password_page).post(account::change),
        )
        // Administration (D03: an admin's own banks only), every change audited.
        .route(
            "/admin/users",
            get(admin::users::list).post(admin::users::create),
        )
        .route("/admin/users/{id}", get(admin::users::user_page))
        .route("/admin/users/{id}/access", post(admin::users::access))
        .route("/admin/users/{id}/disable", post(admin::users::disable))
        .route("/admin/users/{id}/enable", post(admin::users::enable))
        .route(
            "/admin/agents",
            get(admin::agents::list).post(admin::agents::create),
        )
        .route("/admin/agents/{id}", get(admin::agents::agent_page))
        .route("/admin/agents/{id}/code", post(admin::agents::issue_code))
        .route("/admin/devices/{id}/revoke", post(admin::agents::revoke))
        .route("/admin/policy", get(admin::policy::list))
        .route(
            "/admin/policy/{bank}",
            get(admin::policy::policy_page).post(admin::policy::save),
        )
        .route("/admin/audit", get(admin::audit::audit))
        .route("/admin/audit/verify", post(admin::audit::verify))
        // Legal staff's evidence (A03): search, a visit's evidence, its blobs.
        .merge(dossier::routes())
        // Retention, legal hold and destruction (E04): legal and admin staff.
        .merge(retention::routes())
}

/// `Content-Security-Policy` of every page: this origin only, no inline script or style,
/// no plugins, never framed, forms post back here only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    media-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

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
