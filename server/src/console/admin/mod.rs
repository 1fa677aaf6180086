//! The administrators' pages: console users and their roles and banks ([`users`]), agents
//! and their phones ([`agents`]), each bank's policy ([`policy`]) and the audit log of the
//! admin's banks ([`audit`]). Admins only (others get the "forbidden" page); an admin sees
//! and changes only what belongs to their banks (D03), and another bank's record by URL
//! gets the same "not found" page as a random id. Every form calls the same service as the
//! JSON API, which writes the change to the audit log with who, which bank and from where.

pub mod agents;
pub mod audit;
pub mod policy;
pub mod users;

use axum::extract::{FromRequestParts, Request};
use axum::http::Uri;
use axum::http::request::Parts;
use axum::response::Response;
use tandem_core::model::BankId;

use super::frame::{error_page, to_sign_in};
use super::i18n::Lang;
use super::session::{CSRF_FIELD, ConsoleForm, PageLang, Posted, Posters, Viewer, form_body};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::error::AppError;

/// A page of the administration as a signed-in admin asks for it: who, in which language,
/// at which address. The signed-out are sent to the sign-in form, any other role gets the
/// "forbidden" page (the extractor's rejection).
pub struct AdminPage {
    /// The admin.
    pub admin: UserAuth,
    /// The page's language.
    pub lang: Lang,
    /// The page's address.
    pub uri: Uri,
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(PageLang(lang)) = PageLang::from_request_parts(parts, state).await;
        let Viewer(viewer) = Viewer::from_request_parts(parts, state).await?;
        let Some(admin) = viewer else {
            return Err(to_sign_in(&parts.headers));
        };
        if let Err(e) = admin.require(Admins::ROLES) {
            return Err(error_page(lang, &parts.uri, Some(&admin), &e));
        }
        Ok(Self {
            admin,
            lang,
            uri: parts.uri.clone(),
        })
    }
}

/// A form posted to the administration by a signed-in admin, its CSRF token checked first
/// (a refused form is refused before anything else; [`Posted`]).
pub type AdminPost = Posted<Fields, Admins>;

/// Admins only.
pub struct Admins;

impl Posters for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// A posted form: its pairs in order (a field such as `bank` may repeat).
pub(super) struct Fields(Vec<(String, String)>);

impl ConsoleForm for Fields {
    fn csrf(&self) -> &str {
        self.get(CSRF_FIELD)
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        Ok(Some(Self::parse(&form_body(req, state).await?)))
    }
}

impl Fields {
    pub(super) fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`, or empty.
    pub(super) fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every `bank` chosen. One that is not a bank id reads as a bank nobody has, so the
    /// service refuses the choice rather than ignoring it.
    pub(super) fn banks(&self) -> Vec<BankId> {
        self.0
            .iter()
            .filter(|(k, _)| k == "bank")
            .map(|(_, v)| v.parse().unwrap_or_else(|_| BankId::new()))
            .collect()
    }
}

/// A bank a form offers: checked or not.
pub struct BankOption {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Chosen.
    pub checked: bool,
}

/// The admin's banks as checkboxes, `checked` ticked.
pub(super) async fn bank_options(
    state: &AppState,
    admin: &UserAuth,
    checked: &[BankId],
) -> Result<Vec<BankOption>, AppError> {
    Ok(state
        .db
        .bank_names(&admin.user.bank_ids)
        .await?
        .into_iter()
        .map(|b| BankOption {
            id: b.id.to_string(),
            checked: checked.contains(&b.id),
            name: b.name,
        })
        .collect())
}

/// The names of `banks` the admin serves, joined for a table cell (others are not shown:
/// they are not the admin's to know).
pub(super) fn bank_list(
    lang: Lang,
    names: &[crate::db::admin::BankName],
    banks: &[BankId],
) -> String {
    let separator = match lang {
        Lang::ZhCn => "、",
        Lang::En => ", ",
    };
    names
        .iter()
        .filter(|b| banks.contains(&b.id))
        .map(|b| b.name.as_str())
        .collect::<Vec<_>>()
        .join(separator)
}

/// The wording of an account problem in the page's language.
pub(super) fn account_problem_text(lang: Lang, p: crate::auth::users::AccountProblem) -> String {
    lang.t(&format!("admin-problem-{}", p.kind()))
}
