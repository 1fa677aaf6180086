//! Console users of the admin's banks: the list with the form that creates one (the
//! one-time initial password shown once, on the answer), and each user's page — role and
//! banks, disable and enable.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::model::BankId;

use super::{
    AdminPage, AdminPost, BankOption, Fields, account_problem_text, bank_list, bank_options,
};
use crate::AppState;
use crate::auth::UserAuth;
use crate::auth::account::account_key;
use crate::auth::users::{
    AccountProblem, NewConsoleUser, create_user, new_user_problems, set_user_access,
    set_user_disabled, visible_user,
};
use crate::console::frame::{Page, error_page, render, role_name};
use crate::console::i18n::Lang;
use crate::db::Role;
use crate::db::admin::UserRecord;
use crate::error::AppError;

/// A role a form offers.
pub struct RoleOption {
    value: &'static str,
    label: String,
    selected: bool,
}

fn role_options(lang: Lang, selected: Role) -> Vec<RoleOption> {
    [Role::Manager, Role::Legal, Role::Admin]
        .into_iter()
        .map(|r| RoleOption {
            value: r.as_str(),
            label: role_name(lang, r),
            selected: r == selected,
        })
        .collect()
}

/// One row of the users' list.
pub struct UserRow {
    href: String,
    login: String,
    name: String,
    role: String,
    banks: String,
    disabled: bool,
    password_age: String,
    locked: bool,
}

/// The create form as typed, with what is wrong with each field.
#[derive(Default)]
pub struct CreateValues {
    login: String,
    name: String,
    login_error: Option<String>,
    name_error: Option<String>,
    role_error: Option<String>,
    banks_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/admin_users.html")]
struct UsersPage {
    page: Page,
    rows: Vec<UserRow>,
    roles: Vec<RoleOption>,
    banks: Vec<BankOption>,
    values: CreateValues,
}

#[derive(Template)]
#[template(path = "console/admin_user_created.html")]
struct CreatedPage {
    page: Page,
    href: String,
    login: String,
    password: String,
}

/// A password's age as the list shows it.
fn password_age(lang: Lang, changed_ms: i64, now_ms: i64) -> String {
    if changed_ms == 0 {
        return lang.t("admin-password-initial");
    }
    let days = (now_ms - changed_ms).max(0) / 86_400_000;
    lang.t_args("admin-password-days", &[("days", days.into())])
}

async fn user_row(
    state: &AppState,
    lang: Lang,
    names: &[crate::db::admin::BankName],
    u: &UserRecord,
) -> Result<UserRow, AppError> {
    let now = state.now_ms();
    let locked = state
        .db
        .login_locked_until(&account_key(state, &u.login), now)
        .await?
        .is_some();
    Ok(UserRow {
        href: format!("/admin/users/{}", u.id),
        login: u.login.clone(),
        name: u.display_name.clone(),
        role: role_name(lang, u.role),
        banks: bank_list(lang, names, &u.bank_ids),
        disabled: u.disabled_ms.is_some(),
        password_age: password_age(lang, u.password_changed_ms, now),
        locked,
    })
}

impl UsersPage {
    async fn load(
        state: &AppState,
        admin: &UserAuth,
        lang: Lang,
        uri: &Uri,
    ) -> Result<Self, AppError> {
        let names = state.db.bank_names(&admin.user.bank_ids).await?;
        let mut rows = Vec::new();
        for u in state.db.users_of_banks(&admin.user.bank_ids).await? {
            rows.push(user_row(state, lang, &names, &u).await?);
        }
        // A single bank is chosen for the admin already.
        let preset: Vec<BankId> = match admin.user.bank_ids.as_slice() {
            [only] => vec![*only],
            _ => Vec::new(),
        };
        Ok(Self {
            page: Page::new(lang, "admin-users-title", uri).signed_in(admin, "admin-users"),
            rows,
            roles: role_options(lang, Role::Manager),
            banks: bank_options(state, admin, &preset).await?,
            values: CreateValues::default(),
        })
    }
}

/// `GET /admin/users`: the console users of the admin's banks, and the form to add one.
pub async fn list(
    State(state): State<AppState>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    match UsersPage::load(&state, &admin, lang, &uri).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// `POST /admin/users`: creates the user; the answer shows the initial password once.
pub async fn create(
    State(state): State<AppState>,
    AdminPost {
        user: admin,
        form,
        lang,
        client,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let role = Role::parse(form.get("role")).unwrap_or(Role::Agent);
    let new = NewConsoleUser {
        login: form.get("login").trim().to_owned(),
        display_name: form.get("name").trim().to_owned(),
        role,
        banks: form.banks(),
    };
    let outcome = async {
        let mut problems = new_user_problems(&admin, &new);
        if problems.is_empty() {
            match create_user(&state, &admin, &new, client).await {
                Ok(created) => {
                    return Ok(Ok(CreatedPage {
                        page: Page::new(lang, "admin-user-created-title", &uri)
                            .signed_in(&admin, "admin-users"),
                        href: format!("/admin/users/{}", created.id),
                        login: new.login.clone(),
                        password: created.initial_password,
                    }));
                }
                Err(AppError::Problem { kind, .. })
                    if kind == AccountProblem::LoginTaken.kind() =>
                {
                    problems.push(AccountProblem::LoginTaken);
                }
                Err(e) => return Err(e),
            }
        }
        let mut page = UsersPage::load(&state, &admin, lang, &uri).await?;
        page.roles = role_options(lang, role);
        page.banks = bank_options(&state, &admin, &new.banks).await?;
        let mut values = CreateValues {
            login: new.login.clone(),
            name: new.display_name.clone(),
            ..CreateValues::default()
        };
        for p in problems {
            let text = Some(account_problem_text(lang, p));
            match p.field() {
                "login" => values.login_error = text,
                "name" => values.name_error = text,
                "banks" => values.banks_error = text,
                _ => values.role_error = text,
            }
        }
        page.values = values;
        Ok::<_, AppError>(Err(page))
    };
    match outcome.await {
        Ok(Ok(created)) => render(StatusCode::CREATED, &created),
        Ok(Err(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

#[derive(Template)]
#[template(path = "console/admin_user.html")]
struct UserPage {
    page: Page,
    id: String,
    login: String,
    name: String,
    role: String,
    banks_text: String,
    disabled: bool,
    password_age: String,
    locked: bool,
    own: bool,
    roles: Vec<RoleOption>,
    banks: Vec<BankOption>,
    notice: Option<String>,
    access_error: Option<String>,
    state_error: Option<String>,
}

impl UserPage {
    async fn load(
        state: &AppState,
        admin: &UserAuth,
        lang: Lang,
        user: &UserRecord,
    ) -> Result<Self, AppError> {
        let names = state.db.bank_names(&admin.user.bank_ids).await?;
        let row = user_row(state, lang, &names, user).await?;
        let uri: Uri = row.href.parse().unwrap_or_default();
        Ok(Self {
            page: Page::new(lang, "admin-user-title", &uri).signed_in(admin, "admin-users"),
            id: user.id.to_string(),
            login: row.login,
            name: row.name,
            role: row.role,
            banks_text: row.banks,
            disabled: row.disabled,
            password_age: row.password_age,
            locked: row.locked,
            own: user.id == admin.user.user_id,
            roles: role_options(lang, user.role),
            banks: bank_options(state, admin, &user.bank_ids).await?,
            notice: None,
            access_error: None,
            state_error: None,
        })
    }
}

/// What a user's page was sent back with after a change.
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    /// `access`, `disabled` or `enabled`.
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/users/{id}`: a console user of the admin's banks.
pub async fn user_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    let shown = async {
        let user = visible_user(&state, &admin, &id).await?;
        let mut page = UserPage::load(&state, &admin, lang, &user).await?;
        page.notice = match query.done.as_deref() {
            Some("access") => Some(lang.t("admin-user-access-saved")),
            Some("disabled") => Some(lang.t("admin-user-disabled-notice")),
            Some("enabled") => Some(lang.t("admin-user-enabled-notice")),
            _ => None,
        };
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// What a change of a user came to: done (where to go), or the page with the refusal.
async fn change(
    state: &AppState,
    admin: &UserAuth,
    lang: Lang,
    id: &str,
    what: Change<'_>,
    client: Option<std::net::IpAddr>,
) -> Result<Result<String, UserPage>, AppError> {
    let user = visible_user(state, admin, id).await?;
    let (result, done) = match what {
        Change::Access(form) => {
            let role = Role::parse(form.get("role")).unwrap_or(Role::Agent);
            (
                set_user_access(state, admin, &user, role, &form.banks(), client).await,
                "access",
            )
        }
        Change::Disabled(disable) => (
            set_user_disabled(state, admin, &user, disable, client).await,
            if disable { "disabled" } else { "enabled" },
        ),
    };
    let problem = match result {
        Ok(()) => return Ok(Ok(format!("/admin/users/{}?done={done}", user.id))),
        Err(AppError::Problem { kind, .. }) => [
            AccountProblem::RoleInvalid,
            AccountProblem::BanksInvalid,
            AccountProblem::OwnAccount,
            AccountProblem::OtherBanks,
        ]
        .into_iter()
        .find(|p| p.kind() == kind),
        Err(e) => return Err(e),
    };
    let Some(problem) = problem else {
        return Err(AppError::Internal("unexpected account problem".into()));
    };
    let mut page = UserPage::load(state, admin, lang, &user).await?;
    let text = Some(account_problem_text(lang, problem));
    if done == "access" {
        page.access_error = text;
    } else {
        page.state_error = text;
    }
    Ok(Err(page))
}

enum Change<'a> {
    Access(&'a Fields),
    Disabled(bool),
}

async fn answer_change(
    state: &AppState,
    post: AdminPost,
    id: &str,
    disabled: Option<bool>,
) -> Response {
    let AdminPost {
        user: admin,
        form,
        lang,
        client,
        uri,
        ..
    } = post;
    let what = match disabled {
        Some(disable) => Change::Disabled(disable),
        None => Change::Access(&form),
    };
    match change(state, &admin, lang, id, what, client).await {
        Ok(Ok(to)) => Redirect::to(&to).into_response(),
        Ok(Err(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// `POST /admin/users/{id}/access`: sets the user's role and banks.
pub async fn access(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: AdminPost,
) -> Response {
    answer_change(&state, post, &id, None).await
}

/// `POST /admin/users/{id}/disable`: disables the user (their sessions end at once).
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: AdminPost,
) -> Response {
    answer_change(&state, post, &id, Some(true)).await
}

/// `POST /admin/users/{id}/enable`: enables the user again.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: AdminPost,
) -> Response {
    answer_change(&state, post, &id, Some(false)).await
}
