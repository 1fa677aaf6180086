//! The frame every console page shares: its [`Page`] (language, title, who is signed in,
//! form token), rendering, the error pages, and how values are shown and read back — times
//! in the bank's zone, money as `¥1,234.56`, a refusal as a sentence in the page's language
//! naming its rule.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::model::Fen;

use super::html;
use super::i18n::Lang;
use super::session::{cookie, session_csrf};
use crate::AppState;
use crate::auth::{SESSION_COOKIE, UserAuth};
use crate::db::Role;
use crate::error::AppError;
use crate::visits::policy::current;

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
    /// The signed-in user is an admin (the navigation offers the administration).
    pub is_admin: bool,
    /// The signed-in user reads evidence: legal staff or an admin (the navigation offers
    /// the evidence search).
    pub reads_evidence: bool,
    /// The signed-in user works on visits and money: a manager or an admin (the navigation
    /// offers requests, cases, visits, receipts, reports and the review queue).
    pub manages: bool,
}

impl Page {
    pub(super) fn new(lang: Lang, title_id: &str, uri: &Uri) -> Self {
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
            is_admin: false,
            reads_evidence: false,
            manages: false,
        }
    }

    pub(super) fn signed_in(mut self, user: &UserAuth, section: &'static str) -> Self {
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
        self.is_admin = user.user.role == Role::Admin;
        self.reads_evidence = matches!(user.user.role, Role::Admin | Role::Legal);
        self.manages = matches!(user.user.role, Role::Admin | Role::Manager);
        self
    }

    /// The message `id` in the page's language (templates call this).
    pub fn t(&self, id: &str) -> String {
        self.lang.t(id)
    }
}

pub(super) fn role_name(lang: Lang, role: Role) -> String {
    lang.t(match role {
        Role::Manager => "role-manager",
        Role::Admin => "role-admin",
        Role::Legal => "role-legal",
        Role::Agent => "role-agent",
    })
}

/// Percent-encodes a local path for a query value (only what a query value cannot hold
/// as it is).
pub(super) fn urlencoding_path(path: &str) -> String {
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
pub(super) fn render(status: StatusCode, template: &impl Template) -> Response {
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
pub(super) struct ErrorPage {
    pub(super) page: Page,
    pub(super) message: String,
}

/// The console's answer to an error: a page in the user's language, never the JSON
/// problem. Another bank's record and a random id get the same "not found".
pub(super) fn error_page(
    lang: Lang,
    uri: &Uri,
    viewer: Option<&UserAuth>,
    error: &AppError,
) -> Response {
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
pub(super) fn csrf_refused(lang: Lang, uri: &Uri) -> Response {
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
pub(super) fn to_sign_in(headers: &HeaderMap) -> Response {
    if cookie(headers, SESSION_COOKIE).is_some() {
        Redirect::to("/login?why=ended").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// The bank's time zone, from its current policy (Asia/Shanghai when it has none yet or
/// names a zone the server does not know).
pub(super) async fn bank_zone(
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

/// The banks' zones, each read once per page.
#[derive(Default)]
pub(super) struct Zones(std::collections::HashMap<tandem_core::model::BankId, chrono_tz::Tz>);

impl Zones {
    /// `bank`'s zone ([`bank_zone`]), read on first use.
    pub(super) async fn of(
        &mut self,
        state: &AppState,
        bank: tandem_core::model::BankId,
    ) -> Result<chrono_tz::Tz, AppError> {
        if let Some(zone) = self.0.get(&bank) {
            return Ok(*zone);
        }
        let zone = bank_zone(state, bank).await?;
        self.0.insert(bank, zone);
        Ok(zone)
    }

    /// The zone [`Zones::of`] read for `bank` (Asia/Shanghai, as [`bank_zone`]'s default,
    /// for one it did not).
    pub(super) fn read(&self, bank: tandem_core::model::BankId) -> chrono_tz::Tz {
        self.0
            .get(&bank)
            .copied()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }
}

/// `2026-12-03 10:00` in `zone`.
pub(super) fn local_time(at_ms: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// `¥1,234.56`.
pub(super) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}¥{}", Fen(fen).grouped_abs())
}

/// What went wrong with a form, in the page's language: the problem's own message when the
/// message files have one (`problem-<kind>`), else a general sentence; the rule it names
/// (DOMAIN.md id) leads.
pub(super) fn problem_text(lang: Lang, error: &AppError) -> String {
    match error {
        AppError::Problem { kind, rule, .. } => {
            let id = format!("problem-{kind}");
            let text = if lang.has(&id) {
                lang.t(&id)
            } else {
                lang.t("problem-other")
            };
            match rule {
                Some(rule) => lang.t_args(
                    "problem-with-rule",
                    &[("text", text.into()), ("rule", (*rule).into())],
                ),
                None => text,
            }
        }
        AppError::NotFound => lang.t("error-not-found"),
        AppError::Forbidden => lang.t("error-forbidden"),
        AppError::Malformed(_) => lang.t("problem-malformed"),
        _ => lang.t("error-internal"),
    }
}

/// A `datetime-local` value (`2026-12-03T09:30`) read in the bank's zone, as UTC ms; `None`
/// when it is not one, or names a time the zone skips.
pub(super) fn parse_local_time(value: &str, zone: chrono_tz::Tz) -> Option<i64> {
    let naive = chrono::NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M").ok()?;
    naive
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// A `date` value (`2026-12-31`) as the end of that day in the bank's zone (the next
/// midnight), UTC ms.
pub(super) fn parse_local_day_end(value: &str, zone: chrono_tz::Tz) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok()?;
    let next = day.succ_opt()?.and_hms_opt(0, 0, 0)?;
    next.and_local_timezone(zone)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// UTC ms as a `datetime-local` value in `zone`.
pub(super) fn input_time(at_ms: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// UTC ms as a `date` value in `zone`.
pub(super) fn input_day(at_ms: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// An amount in yuan as typed (`1234.5`, `¥1,234.56`, `1 234`) in fen; `None` when it is
/// not a non-negative amount with at most two decimals.
pub(super) fn parse_yuan(value: &str) -> Option<i64> {
    let cleaned: String = value
        .trim()
        .trim_start_matches(['¥', '￥'])
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' '))
        .collect();
    let (whole, frac) = match cleaned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (cleaned.as_str(), ""),
    };
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(frac)
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

    #[test]
    fn amounts_typed_in_yuan_read_as_fen() {
        assert_eq!(parse_yuan("1234.5"), Some(123_450));
        assert_eq!(parse_yuan("¥1,234.56"), Some(123_456));
        assert_eq!(parse_yuan("500"), Some(50_000));
        assert_eq!(parse_yuan("0.05"), Some(5));
        for bad in ["", "-1", "1.234", "abc", "1e3", "¥", "1.2.3"] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn form_times_are_read_in_the_banks_zone() {
        let zone = chrono_tz::Asia::Shanghai;
        assert_eq!(
            parse_local_time("2026-11-30T10:00", zone),
            Some(1_796_004_000_000)
        );
        assert_eq!(input_time(1_796_004_000_000, zone), "2026-11-30T10:00");
        // The end of 2026-11-30 in Shanghai is 16:00 UTC that day.
        assert_eq!(
            parse_local_day_end("2026-11-30", zone),
            Some(1_796_004_000_000 + 14 * 3_600_000)
        );
        assert_eq!(parse_local_time("30/11/2026", zone), None);
    }
}
