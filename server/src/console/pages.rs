//! The console's pages: sign-in and sign-out, the language switch, and the visit requests
//! awaiting a manager's decision.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tandem_core::model::Fen;
use tandem_core::text::visible;

use super::i18n::{LANG_COOKIE, Lang};
use super::session::{CSRF_COOKIE, PageLang, Viewer, cookie, csrf_matches, session_csrf};
use super::{html, secure_page_headers};
use crate::AppState;
use crate::auth::sessions::{
    NewSession, REFUSAL_HOLD, SignIn, authenticate, secure_cookie, session_cookie_header,
};
use crate::auth::{SESSION_COOKIE, SESSION_TTL_MS, UserAuth};
use crate::db::Role;
use crate::error::AppError;
use crate::throttle::{ClientAddr, Refusal};
use crate::visits::policy::current;
use crate::visits::requests::queue;

/// What every page's frame needs: the language, the title, who is signed in, the form
/// token, the section to mark in the navigation, the language switch's link.
pub struct Page {
    /// The page's language.
    pub lang: Lang,
    /// The page's title (in `lang`).
    pub title: String,
    /// "Name (role)" of the signed-in user.
    pub user: Option<String>,
    /// The CSRF token of this page's forms.
    pub csrf: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// The language switch: back to this page in the other language.
    pub switch_href: String,
}

impl Page {
    fn new(lang: Lang, title_id: &str, uri: &Uri) -> Self {
        let back = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Self {
            lang,
            title: lang.t(title_id),
            user: None,
            csrf: String::new(),
            section: "",
            switch_href: format!(
                "/lang/{}?back={}",
                lang.other().tag(),
                urlencoding_path(&back)
            ),
        }
    }

    fn signed_in(mut self, user: &UserAuth, section: &'static str) -> Self {
        let role = role_name(self.lang, user.user.role);
        self.user = Some(self.lang.t_args(
            "signed-in-as",
            &[
                ("name", user.user.display_name.clone().into()),
                ("role", role.into()),
            ],
        ));
        self.csrf = session_csrf(user);
        self.section = section;
        self
    }

    /// The message `id` in the page's language (templates call this).
    pub fn t(&self, id: &str) -> String {
        self.lang.t(id)
    }
}

fn role_name(lang: Lang, role: Role) -> String {
    lang.t(match role {
        Role::Manager => "role-manager",
        Role::Admin => "role-admin",
        Role::Legal => "role-legal",
        Role::Agent => "role-agent",
    })
}

/// Percent-encodes a local path for a query value (only what a query value cannot hold
/// as it is).
fn urlencoding_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Renders `template` as a page with `status`.
fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    page: Page,
    message: String,
}

/// The console's answer to an error: a page in the user's language, never the JSON
/// problem. Another bank's record and a random id get the same "not found".
fn error_page(lang: Lang, uri: &Uri, viewer: Option<&UserAuth>, error: &AppError) -> Response {
    let (status, id) = match error {
        AppError::NotFound => (StatusCode::NOT_FOUND, "error-not-found"),
        AppError::Forbidden => (StatusCode::FORBIDDEN, "error-forbidden"),
        other => {
            tracing::error!(error = %other, "console page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error-internal")
        }
    };
    let mut page = Page::new(lang, "error-title", uri);
    if let Some(user) = viewer {
        page = page.signed_in(user, "");
    }
    render(
        status,
        &ErrorPage {
            message: lang.t(id),
            page,
        },
    )
}

/// A refused form (its CSRF token missing or wrong): 403 with a page saying so.
fn csrf_refused(lang: Lang, uri: &Uri) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ErrorPage {
            message: lang.t("error-csrf"),
            page: Page::new(lang, "error-title", uri),
        },
    )
}

/// Where a page sends a browser that is not signed in: the sign-in form, saying the
/// session ended when the browser still holds a session cookie (expired, or ended).
fn to_sign_in(headers: &HeaderMap) -> Response {
    if cookie(headers, SESSION_COOKIE).is_some() {
        Redirect::to("/login?why=ended").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// `/`: the signed-in user's start page, or the sign-in form.
pub async fn home(Viewer(viewer): Viewer, headers: HeaderMap) -> Response {
    match viewer {
        Some(_) => Redirect::to("/requests").into_response(),
        None => to_sign_in(&headers),
    }
}

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SigninPage {
    page: Page,
    login: String,
    notice: Option<String>,
    notice_kind: &'static str,
}

/// Why the sign-in form is shown again.
#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    /// `ended` (the session ended), `out` (signed out).
    #[serde(default)]
    pub why: Option<String>,
}

/// The `Set-Cookie` value of the sign-in form's double-submit cookie (`max_age_secs` 0
/// clears it; none lasts the browser's session).
fn csrf_cookie_header(token: &str, max_age_secs: Option<u32>, secure: bool) -> String {
    let max_age = max_age_secs.map_or(String::new(), |s| format!("; Max-Age={s}"));
    let secure = if secure { "; Secure" } else { "" };
    format!("{CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{max_age}{secure}")
}

/// A fresh double-submit token and its cookie.
fn csrf_cookie(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, String), AppError> {
    let token =
        crate::secrets::new_token("csrf_").map_err(|e| AppError::Internal(e.to_string()))?;
    let secure = secure_cookie(&state.config, headers, uri);
    let set = csrf_cookie_header(&token, None, secure);
    Ok((token, set))
}

fn signin_form(
    state: &AppState,
    lang: Lang,
    headers: &HeaderMap,
    uri: &Uri,
    status: StatusCode,
    login: String,
    notice: Option<(String, &'static str)>,
) -> Response {
    let (token, set_cookie) = match csrf_cookie(state, headers, uri) {
        Ok(pair) => pair,
        Err(e) => return error_page(lang, uri, None, &e),
    };
    let mut page = Page::new(lang, "signin-title", uri);
    page.csrf = token;
    let (notice, notice_kind) = match notice {
        Some((text, kind)) => (Some(text), kind),
        None => (None, ""),
    };
    let mut response = render(
        status,
        &SigninPage {
            page,
            login,
            notice,
            notice_kind,
        },
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /login`: the sign-in form (a signed-in user goes to the start page).
pub async fn signin_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<SigninQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if viewer.is_some() {
        return Redirect::to("/requests").into_response();
    }
    let notice = match query.why.as_deref() {
        Some("ended") => Some((lang.t("signin-ended"), "warn")),
        Some("out") => Some((lang.t("signin-signed-out"), "ok")),
        _ => None,
    };
    signin_form(
        &state,
        lang,
        &headers,
        &uri,
        StatusCode::OK,
        String::new(),
        notice,
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SigninForm {
    csrf: String,
    login: String,
    password: String,
}

/// `POST /login`: signs in (the same check and throttle as `POST /v1/login`) and sets the
/// session cookie; a wrong password shows the form again with one answer for an unknown
/// name and a wrong password alike.
pub async fn signin(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<SigninForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return csrf_refused(lang, &uri);
    };
    if !csrf_matches(
        &form.csrf,
        cookie(&headers, CSRF_COOKIE).unwrap_or_default(),
    ) {
        return csrf_refused(lang, &uri);
    }
    let login = form.login.trim().to_owned();
    let outcome = match authenticate(&state, client, &login, form.password).await {
        Ok(outcome) => outcome,
        Err(e) => return error_page(lang, &uri, None, &e),
    };
    let (status, notice) = match outcome {
        SignIn::Session(session) => return signed_in(&state, &headers, &uri, session),
        // 422 rather than 401: a form page, not an HTTP authentication challenge.
        SignIn::Wrong => (StatusCode::UNPROCESSABLE_ENTITY, lang.t("signin-failed")),
        SignIn::Refused(Refusal::RateLimited { retry_after_secs }) => {
            tokio::time::sleep(REFUSAL_HOLD).await;
            let minutes = retry_after_secs.div_ceil(60).max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                lang.t_args("signin-throttled", &[("minutes", minutes.into())]),
            )
        }
        SignIn::Refused(Refusal::Busy) => {
            tokio::time::sleep(REFUSAL_HOLD).await;
            (StatusCode::SERVICE_UNAVAILABLE, lang.t("signin-busy"))
        }
    };
    signin_form(
        &state,
        lang,
        &headers,
        &uri,
        status,
        login,
        Some((notice, "bad")),
    )
}

fn signed_in(state: &AppState, headers: &HeaderMap, uri: &Uri, session: NewSession) -> Response {
    let secure = secure_cookie(&state.config, headers, uri);
    let cookie = session_cookie_header(&session.token, SESSION_TTL_MS / 1000, secure);
    let mut response = Redirect::to("/requests").into_response();
    let h = response.headers_mut();
    // The sign-in form's token has served its purpose.
    for set in [cookie, csrf_cookie_header("", Some(0), secure)] {
        if let Ok(value) = HeaderValue::from_str(&set) {
            h.append(header::SET_COOKIE, value);
        }
    }
    secure_page_headers(h);
    response
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
}

/// `POST /logout`: ends the session (its form token must match) and clears the cookie.
pub async fn signout(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(user) = viewer else {
        return Redirect::to("/login").into_response();
    };
    let Ok(Form(form)) = form else {
        return csrf_refused(lang, &uri);
    };
    if !csrf_matches(&form.csrf, &session_csrf(&user)) {
        return csrf_refused(lang, &uri);
    }
    if let Err(e) = state
        .db
        .end_session(user.session_digest(), state.now_ms())
        .await
    {
        return error_page(lang, &uri, Some(&user), &e.into());
    }
    let clear = session_cookie_header("", 0, secure_cookie(&state.config, &headers, &uri));
    let mut response = Redirect::to("/login?why=out").into_response();
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Where to go back to after switching language.
#[derive(Deserialize)]
pub struct SwitchQuery {
    #[serde(default)]
    back: Option<String>,
}

/// `GET /lang/{tag}`: keeps the browser's choice of language for a year and goes back to
/// the page it came from (a path of this site only).
pub async fn switch_language(Path(tag): Path<String>, Query(q): Query<SwitchQuery>) -> Response {
    let Some(lang) = Lang::from_tag(&tag) else {
        return Redirect::to("/").into_response();
    };
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let mut response = Redirect::to(&back).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.tag()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// One row of the requests queue, formatted for the page.
pub struct RequestRow {
    requested: String,
    case_ref: String,
    debtor: String,
    card: String,
    outstanding: String,
    window_from: String,
    window_until: String,
    purpose: String,
    requested_by: String,
}

#[derive(Template)]
#[template(path = "console/requests.html")]
struct RequestsPage {
    page: Page,
    count_text: String,
    rows: Vec<RequestRow>,
}

/// `GET /requests`: the visit requests of the manager's banks awaiting a decision, oldest
/// first, with each case's summary (card masked), times in the bank's zone, and the bank's
/// text with its direction controls shown as codes.
pub async fn requests(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match request_rows(&state, &user, lang).await {
        Ok(rows) => {
            let count_text = lang.t_args("requests-count", &[("count", rows.len().into())]);
            let page = Page::new(lang, "requests-title", &uri).signed_in(&user, "requests");
            render(
                StatusCode::OK,
                &RequestsPage {
                    page,
                    count_text,
                    rows,
                },
            )
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn request_rows(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
) -> Result<Vec<RequestRow>, AppError> {
    let pending = queue(state, user, &user.user.bank_ids, Some("pending"), 500).await?;
    let mut zones = std::collections::HashMap::new();
    let mut rows = Vec::with_capacity(pending.len());
    for r in pending {
        let bank = r.request.bank_id;
        let zone = match zones.get(&bank) {
            Some(zone) => *zone,
            None => *zones.entry(bank).or_insert(bank_zone(state, bank).await?),
        };
        let Some(case) = state.db.case(r.request.case_id).await? else {
            continue;
        };
        rows.push(RequestRow {
            requested: local_time(r.request.created_ms, zone),
            case_ref: visible(&case.case_ref).into_owned(),
            debtor: visible(&case.debtor_name).into_owned(),
            card: case.card.as_str().to_owned(),
            outstanding: yuan(case.outstanding_fen),
            window_from: local_time(r.request.wanted_from_ms, zone),
            window_until: local_time(r.request.wanted_until_ms, zone),
            purpose: visible(&r.request.purpose).into_owned(),
            requested_by: lang.t(if r.request.requested_device.is_some() {
                "requested-by-phone"
            } else {
                "requested-by-console"
            }),
        });
    }
    Ok(rows)
}

/// The bank's time zone, from its current policy (Asia/Shanghai when it has none yet or
/// names a zone the server does not know).
async fn bank_zone(
    state: &AppState,
    bank: tandem_core::model::BankId,
) -> Result<chrono_tz::Tz, AppError> {
    let zone = match current(state, bank).await {
        Ok(view) => view.policy.time_zone.parse::<chrono_tz::Tz>().ok(),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(e),
    };
    Ok(zone.unwrap_or(chrono_tz::Asia::Shanghai))
}

/// `2026-12-03 10:00` in `zone`.
fn local_time(at_ms: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// `¥1,234.56`.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}¥{}", Fen(fen).grouped_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_as_yuan_with_thousands_separators() {
        assert_eq!(yuan(0), "¥0.00");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(123_456), "¥1,234.56");
        assert_eq!(yuan(100_000_000), "¥1,000,000.00");
        assert_eq!(yuan(-99_999), "-¥999.99");
    }

    #[test]
    fn times_are_shown_in_the_banks_zone() {
        // 2026-11-30 02:00 UTC is 10:00 in Shanghai.
        assert_eq!(
            local_time(1_796_004_000_000, chrono_tz::Asia::Shanghai),
            "2026-11-30 10:00"
        );
    }

    #[test]
    fn a_path_is_encoded_for_a_query_value() {
        assert_eq!(urlencoding_path("/requests?x=1&y"), "/requests%3Fx%3D1%26y");
    }
}
