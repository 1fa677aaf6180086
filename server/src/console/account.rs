//! The password page (A01): a password older than the policy allows must be changed here
//! before any other page opens ([`super::session::Viewer`] sends the user here), and any
//! user may change theirs at will. Each field says what is wrong with it; the change ends
//! the user's other sessions and is written to the audit log (the same service as
//! `POST /v1/password`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::frame::{Page, error_page, render, to_sign_in};
use super::i18n::Lang;
use super::session::{HasCsrf, PASSWORD_PATH, PageLang, Posted, Posters, SessionViewer};
use crate::AppState;
use crate::auth::UserAuth;
use crate::auth::account::{PasswordOutcome, PasswordProblem, change_password};
use crate::throttle::Refusal;

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    page: Page,
    /// The password expired: nothing else opens until it is changed.
    forced: bool,
    /// The password was just changed.
    changed: bool,
    /// What went wrong with the form as a whole (throttled, busy).
    notice: Option<String>,
    /// The rules a new password follows.
    rules: String,
    current_error: Option<String>,
    /// Each on its own line.
    new_errors: Vec<String>,
    confirm_error: Option<String>,
}

impl PasswordPage {
    fn new(state: &AppState, lang: Lang, uri: &Uri, user: &UserAuth) -> Self {
        let policy = &state.config.account;
        let forced = user.password_expired(state);
        let days = policy.password_max_age.as_secs() / 86_400;
        Self {
            page: Page::new(lang, "password-title", uri).signed_in(user, "password"),
            forced,
            changed: false,
            notice: forced.then(|| lang.t_args("password-expired", &[("days", days.into())])),
            rules: lang.t_args(
                "password-rules",
                &[
                    ("min", policy.password_min_chars.into()),
                    ("count", policy.password_history.into()),
                ],
            ),
            current_error: None,
            new_errors: Vec::new(),
            confirm_error: None,
        }
    }
}

/// What the page was asked to say.
#[derive(Debug, Deserialize)]
pub struct PasswordQuery {
    /// `1` after a change.
    #[serde(default)]
    pub changed: Option<String>,
}

/// `GET /password`: the change form (or, after a change, that it is done).
pub async fn password_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    SessionViewer(viewer): SessionViewer,
    Query(query): Query<PasswordQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    let mut page = PasswordPage::new(&state, lang, &uri, &user);
    page.changed = !page.forced && query.changed.is_some();
    render(StatusCode::OK, &page)
}

/// The form's fields.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

impl HasCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Any signed-in user, their password expired or not: the password form is where an
/// expired password is changed.
pub struct ExpiredPassword;

impl Posters for ExpiredPassword {
    const EXPIRED_PASSWORD: bool = true;
}

/// `POST /password`: changes the password (form token required), or shows the form again
/// with what is wrong with each field.
pub async fn change(
    State(state): State<AppState>,
    Posted {
        user,
        form,
        lang,
        client,
        uri,
        ..
    }: Posted<PasswordForm, ExpiredPassword>,
) -> Response {
    let mut page = PasswordPage::new(&state, lang, &uri, &user);
    if form.new != form.confirm {
        page.confirm_error = Some(lang.t("password-error-confirm"));
    }
    let outcome = if page.confirm_error.is_some() {
        // Nothing is checked (or counted) until the two new passwords agree.
        None
    } else {
        match change_password(&state, &user, client, form.current, form.new).await {
            Ok(outcome) => Some(outcome),
            Err(e) => return error_page(lang, &uri, Some(&user), &e),
        }
    };
    let status = match outcome {
        Some(PasswordOutcome::Changed) => {
            return Redirect::to(&format!("{PASSWORD_PATH}?changed=1")).into_response();
        }
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(PasswordOutcome::Refused(problems)) => {
            field_errors(&state, lang, &mut page, &problems);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(PasswordOutcome::Throttled(Refusal::RateLimited { retry_after_secs })) => {
            let minutes = retry_after_secs.div_ceil(60).max(1);
            page.notice = Some(lang.t_args("signin-throttled", &[("minutes", minutes.into())]));
            StatusCode::TOO_MANY_REQUESTS
        }
        Some(PasswordOutcome::Throttled(Refusal::Busy)) => {
            page.notice = Some(lang.t("signin-busy"));
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    render(status, &page)
}

/// Puts each problem under the field it concerns.
fn field_errors(
    state: &AppState,
    lang: Lang,
    page: &mut PasswordPage,
    problems: &[PasswordProblem],
) {
    let policy = &state.config.account;
    let mut new = Vec::new();
    for problem in problems {
        match problem {
            PasswordProblem::CurrentWrong => {
                page.current_error = Some(lang.t("password-error-current"));
            }
            PasswordProblem::TooShort => new.push(lang.t_args(
                "password-error-short",
                &[("min", policy.password_min_chars.into())],
            )),
            PasswordProblem::ContainsLogin => new.push(lang.t("password-error-login")),
            PasswordProblem::Reused => new.push(lang.t_args(
                "password-error-reused",
                &[("count", policy.password_history.into())],
            )),
        }
    }
    page.new_errors = new;
}
