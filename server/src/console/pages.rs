//! The console's pages: sign-in and sign-out, and the language switch.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::frame::{Page, csrf_refused, error_page, render, to_sign_in};
use super::i18n::{LANG_COOKIE, Lang};
use super::secure_page_headers;
use super::session::{
    CSRF_COOKIE, HasCsrf, PageLang, Posted, Posters, Viewer, cookie, csrf_matches,
};
use crate::AppState;
use crate::auth::SESSION_TTL_MS;
use crate::auth::sessions::{
    NewSession, REFUSAL_HOLD, SignIn, authenticate, secure_cookie, session_cookie_header, sign_out,
};
use crate::error::AppError;
use crate::throttle::{ClientAddr, Refusal};

/// `/`: the signed-in user's start page (an admin's is the administration), or the
/// sign-in form.
pub async fn home(Viewer(viewer): Viewer, headers: HeaderMap) -> Response {
    match viewer {
        Some(user) if user.user.role == crate::db::Role::Admin => {
            Redirect::to("/admin/users").into_response()
        }
        Some(user) => Redirect::to(start_page(user.user.role)).into_response(),
        None => to_sign_in(&headers),
    }
}

/// Where a user starts after signing in: legal staff at the evidence search (the requests
/// queue is not theirs), everyone else at the requests queue.
fn start_page(role: crate::db::Role) -> &'static str {
    match role {
        crate::db::Role::Legal => "/evidence",
        _ => "/requests",
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
    /// `ended` (the session ended), `elsewhere` (a sign-in elsewhere ended it), `out`
    /// (signed out).
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
    if let Some(user) = viewer {
        return Redirect::to(start_page(user.user.role)).into_response();
    }
    let notice = match query.why.as_deref() {
        Some("ended") => Some((lang.t("signin-ended"), "warn")),
        // A01: one session per account; this browser's was ended by a sign-in elsewhere.
        Some("elsewhere") => Some((lang.t("signin-elsewhere"), "warn")),
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
    let outcome = match authenticate(&state, client, &login, form.password, "console").await {
        Ok(outcome) => outcome,
        Err(e) => return error_page(lang, &uri, None, &e),
    };
    let (status, notice) = match outcome {
        SignIn::Session(session) => return signed_in(&state, &headers, &uri, session),
        // 422 rather than 401: a form page, not an HTTP authentication challenge.
        SignIn::Wrong => (StatusCode::UNPROCESSABLE_ENTITY, lang.t("signin-failed")),
        // A01: the same answer for a real account and an unknown name.
        SignIn::Locked { retry_after_secs } => {
            tokio::time::sleep(REFUSAL_HOLD).await;
            let minutes = retry_after_secs.div_ceil(60).max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                lang.t_args("signin-locked", &[("minutes", minutes.into())]),
            )
        }
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
    let mut response = Redirect::to(start_page(session.user.role)).into_response();
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

impl HasCsrf for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Whoever is signed in, their password expired or not; a browser that is not is simply
/// sent to the sign-in form (there is nothing to end).
pub struct SigningOut;

impl Posters for SigningOut {
    const EXPIRED_PASSWORD: bool = true;

    fn signed_out(_: &HeaderMap) -> Response {
        Redirect::to("/login").into_response()
    }
}

/// `POST /logout`: ends the session (its form token must match), writes it to the audit
/// log and clears the cookie; open to a user whose password expired.
pub async fn signout(
    State(state): State<AppState>,
    Posted {
        user,
        lang,
        client,
        headers,
        uri,
        ..
    }: Posted<TokenForm, SigningOut>,
) -> Response {
    if let Err(e) = sign_out(&state, &user, client, "console").await {
        return error_page(lang, &uri, Some(&user), &e);
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
