//! Each bank's policy (every DOMAIN.md limit as a value the server signs for phones): the
//! admin's banks with their current version, and a bank's form — visiting hours in the
//! bank's zone, the zone from a list, the distances, counts and deadlines in the units
//! people think in (minutes, hours, days) — saved as a new version through the JSON API's
//! own service, each field's error shown beside it in the page's language.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::model::{BankId, Policy};

use super::{AdminPage, AdminPost, Fields};
use crate::AppState;
use crate::auth::UserAuth;
use crate::console::frame::{Page, error_page, local_time, render};
use crate::console::i18n::Lang;
use crate::error::AppError;
use crate::visits::policy::{POLICY_BOUNDS, PolicyView, current, policy_problems, set_policy};

/// The zones the form offers (mainland China's banks and their neighbours'); a stored zone
/// not among them is offered too.
const ZONES: &[&str] = &[
    "Asia/Shanghai",
    "Asia/Urumqi",
    "Asia/Hong_Kong",
    "Asia/Macau",
    "Asia/Taipei",
];

/// A whole-number field of the form: its name in the form, the policy's field, the unit
/// it is typed in (a message id) and how many stored units one typed unit is.
struct NumberField {
    name: &'static str,
    field: &'static str,
    unit: &'static str,
    factor: i64,
}

const fn number(
    name: &'static str,
    field: &'static str,
    unit: &'static str,
    factor: i64,
) -> NumberField {
    NumberField {
        name,
        field,
        unit,
        factor,
    }
}

/// The form's groups: a legend (message id), the rules it serves, its whole-number fields.
const GROUPS: &[(&str, &str, &[NumberField])] = &[
    (
        "admin-policy-group-hours",
        "V04",
        &[number(
            "visit_end_warning_minutes",
            "visit_end_warning_minutes",
            "admin-unit-minutes",
            1,
        )],
    ),
    (
        "admin-policy-group-place",
        "V05",
        &[
            number("geofence_radius_m", "geofence_radius_m", "admin-unit-m", 1),
            number(
                "max_fix_accuracy_m",
                "max_fix_accuracy_m",
                "admin-unit-m",
                1,
            ),
            number(
                "partner_max_distance_m",
                "partner_max_distance_m",
                "admin-unit-m",
                1,
            ),
        ],
    ),
    (
        "admin-policy-group-visit",
        "V03 V07 V14 V15",
        &[
            number(
                "max_visits_per_debtor_per_day",
                "max_visits_per_debtor_per_day",
                "admin-unit-visits",
                1,
            ),
            number(
                "clock_tolerance_minutes",
                "clock_tolerance_ms",
                "admin-unit-minutes",
                60_000,
            ),
            number(
                "handshake_ttl_minutes",
                "handshake_ttl_ms",
                "admin-unit-minutes",
                60_000,
            ),
            number(
                "audio_segment_seconds",
                "audio_segment_ms",
                "admin-unit-seconds",
                1_000,
            ),
            number(
                "audio_gap_tolerance_seconds",
                "audio_gap_tolerance_ms",
                "admin-unit-seconds",
                1_000,
            ),
        ],
    ),
    (
        "admin-policy-group-evidence",
        "C03 E03 E04",
        &[
            number(
                "deposit_deadline_business_days",
                "deposit_deadline_business_days",
                "admin-unit-business-days",
                1,
            ),
            number(
                "upload_deadline_hours",
                "upload_deadline_ms",
                "admin-unit-hours",
                3_600_000,
            ),
            number("retention_days", "retention_days", "admin-unit-days", 1),
        ],
    ),
];

fn stored(p: &Policy, field: &str) -> i64 {
    match field {
        "visit_end_warning_minutes" => i64::from(p.visit_end_warning_minutes),
        "geofence_radius_m" => i64::from(p.geofence_radius_m),
        "max_fix_accuracy_m" => i64::from(p.max_fix_accuracy_m),
        "partner_max_distance_m" => i64::from(p.partner_max_distance_m),
        "max_visits_per_debtor_per_day" => i64::from(p.max_visits_per_debtor_per_day),
        "clock_tolerance_ms" => p.clock_tolerance_ms,
        "handshake_ttl_ms" => p.handshake_ttl_ms,
        "audio_segment_ms" => i64::from(p.audio_segment_ms),
        "audio_gap_tolerance_ms" => p.audio_gap_tolerance_ms,
        "deposit_deadline_business_days" => i64::from(p.deposit_deadline_business_days),
        "upload_deadline_ms" => p.upload_deadline_ms,
        "retention_days" => i64::from(p.retention_days),
        _ => 0,
    }
}

/// Sets a field from a typed value in stored units; `false` when it does not fit its type.
fn set(p: &mut Policy, field: &str, value: i64) -> bool {
    fn fit<T: TryFrom<i64>>(slot: &mut T, value: i64) -> bool {
        T::try_from(value).map(|v| *slot = v).is_ok()
    }
    match field {
        "visit_end_warning_minutes" => fit(&mut p.visit_end_warning_minutes, value),
        "geofence_radius_m" => fit(&mut p.geofence_radius_m, value),
        "max_fix_accuracy_m" => fit(&mut p.max_fix_accuracy_m, value),
        "partner_max_distance_m" => fit(&mut p.partner_max_distance_m, value),
        "max_visits_per_debtor_per_day" => fit(&mut p.max_visits_per_debtor_per_day, value),
        "clock_tolerance_ms" => fit(&mut p.clock_tolerance_ms, value),
        "handshake_ttl_ms" => fit(&mut p.handshake_ttl_ms, value),
        "audio_segment_ms" => fit(&mut p.audio_segment_ms, value),
        "audio_gap_tolerance_ms" => fit(&mut p.audio_gap_tolerance_ms, value),
        "deposit_deadline_business_days" => fit(&mut p.deposit_deadline_business_days, value),
        "upload_deadline_ms" => fit(&mut p.upload_deadline_ms, value),
        "retention_days" => fit(&mut p.retention_days, value),
        _ => false,
    }
}

/// `HH:MM` of a minute of the day (`24:00` for the end of the day).
fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A minute of the day from `HH:MM` (`24:00` allowed).
fn parse_hhmm(value: &str) -> Option<u16> {
    let (h, m) = value.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && (h < 24 || m == 0)).then_some(h * 60 + m)
}

/// One whole-number field as the form shows it.
pub struct FieldView {
    name: &'static str,
    label: String,
    unit: String,
    hint: String,
    value: String,
    error: Option<String>,
}

/// A group of fields with its legend.
pub struct GroupView {
    legend: String,
    rules: &'static str,
    fields: Vec<FieldView>,
}

/// A zone the form offers.
pub struct ZoneOption {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/admin_policy.html")]
struct PolicyPage {
    page: Page,
    action: String,
    bank_name: String,
    version_text: String,
    notice: Option<String>,
    error_summary: Option<String>,
    zones: Vec<ZoneOption>,
    zone_error: Option<String>,
    start: String,
    end: String,
    hours_error: Option<String>,
    groups: Vec<GroupView>,
}

fn bounds(field: &str) -> (i64, i64) {
    POLICY_BOUNDS
        .iter()
        .find(|(f, _, _)| *f == field)
        .map_or((0, i64::MAX), |(_, least, most)| (*least, *most))
}

/// What the form shows: the stored values, or those typed; errors by form field.
struct Shown {
    zone: String,
    start: String,
    end: String,
    numbers: std::collections::HashMap<&'static str, String>,
    errors: std::collections::HashMap<&'static str, String>,
}

impl Shown {
    fn of(policy: &Policy) -> Self {
        let mut numbers = std::collections::HashMap::new();
        for (_, _, fields) in GROUPS {
            for f in *fields {
                numbers.insert(f.name, (stored(policy, f.field) / f.factor).to_string());
            }
        }
        Self {
            zone: policy.time_zone.clone(),
            start: hhmm(policy.visit_start_minute),
            end: hhmm(policy.visit_end_minute),
            numbers,
            errors: std::collections::HashMap::new(),
        }
    }
}

async fn bank_name(state: &AppState, bank: BankId) -> Result<String, AppError> {
    Ok(state
        .db
        .bank_names(&[bank])
        .await?
        .into_iter()
        .next()
        .map(|b| b.name)
        .unwrap_or_default())
}

/// The bank's current policy, or the defaults (version 0) when it has none yet.
async fn current_or_default(state: &AppState, bank: BankId) -> Result<PolicyView, AppError> {
    match current(state, bank).await {
        Ok(view) => Ok(view),
        Err(AppError::NotFound) => Ok(PolicyView {
            version: 0,
            created_ms: 0,
            policy: Policy::defaults(bank),
        }),
        Err(e) => Err(e),
    }
}

impl PolicyPage {
    async fn build(
        state: &AppState,
        admin: &UserAuth,
        lang: Lang,
        bank: BankId,
        shown: Shown,
    ) -> Result<Self, AppError> {
        let view = current_or_default(state, bank).await?;
        let zone: chrono_tz::Tz = view
            .policy
            .time_zone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai);
        let version_text = if view.version == 0 {
            lang.t("admin-policy-no-version")
        } else {
            lang.t_args(
                "admin-policy-version",
                &[
                    ("version", view.version.into()),
                    ("at", local_time(view.created_ms, zone).into()),
                ],
            )
        };
        let mut zones: Vec<ZoneOption> = ZONES
            .iter()
            .map(|z| ZoneOption {
                value: (*z).to_owned(),
                label: lang.t(&format!(
                    "admin-zone-{}",
                    z.to_ascii_lowercase().replace(['/', '_'], "-")
                )),
                selected: *z == shown.zone,
            })
            .collect();
        if !ZONES.contains(&shown.zone.as_str()) {
            zones.push(ZoneOption {
                value: shown.zone.clone(),
                label: shown.zone.clone(),
                selected: true,
            });
        }
        let groups = GROUPS
            .iter()
            .map(|(legend, rules, fields)| GroupView {
                legend: lang.t(legend),
                rules,
                fields: fields
                    .iter()
                    .map(|f| {
                        let (least, most) = bounds(f.field);
                        FieldView {
                            name: f.name,
                            label: lang.t(&format!("admin-policy-{}", f.name.replace('_', "-"))),
                            unit: lang.t(f.unit),
                            hint: lang.t_args(
                                "admin-policy-range-hint",
                                &[
                                    ("min", (least / f.factor).into()),
                                    ("max", (most / f.factor).into()),
                                ],
                            ),
                            value: shown.numbers.get(f.name).cloned().unwrap_or_default(),
                            error: shown.errors.get(f.name).cloned(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let uri: Uri = format!("/admin/policy/{bank}").parse().unwrap_or_default();
        let error_summary = (!shown.errors.is_empty()).then(|| {
            lang.t_args(
                "admin-policy-errors",
                &[("count", shown.errors.len().into())],
            )
        });
        Ok(Self {
            page: Page::new(lang, "admin-policy-title", &uri).signed_in(admin, "admin-policy"),
            action: format!("/admin/policy/{bank}"),
            bank_name: bank_name(state, bank).await?,
            version_text,
            notice: None,
            error_summary,
            zones,
            zone_error: shown.errors.get("time_zone").cloned(),
            start: shown.start,
            end: shown.end,
            hours_error: shown.errors.get("visit_hours").cloned(),
            groups,
        })
    }
}

/// One bank of the policy list.
pub struct BankRow {
    href: String,
    name: String,
    version: String,
    set_at: String,
    zone: String,
}

#[derive(Template)]
#[template(path = "console/admin_policies.html")]
struct PoliciesPage {
    page: Page,
    rows: Vec<BankRow>,
}

/// `GET /admin/policy`: the admin's banks with their current policy version.
pub async fn list(
    State(state): State<AppState>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    let shown = async {
        let mut rows = Vec::new();
        for bank in state.db.bank_names(&admin.user.bank_ids).await? {
            let view = current_or_default(&state, bank.id).await?;
            let zone: chrono_tz::Tz = view
                .policy
                .time_zone
                .parse()
                .unwrap_or(chrono_tz::Asia::Shanghai);
            rows.push(BankRow {
                href: format!("/admin/policy/{}", bank.id),
                name: bank.name,
                version: view.version.to_string(),
                set_at: if view.version == 0 {
                    String::new()
                } else {
                    local_time(view.created_ms, zone)
                },
                zone: view.policy.time_zone,
            });
        }
        Ok::<_, AppError>(PoliciesPage {
            page: Page::new(lang, "admin-policies-title", &uri).signed_in(&admin, "admin-policy"),
            rows,
        })
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// A bank of the admin's; any other id is "not found".
fn admin_bank(admin: &UserAuth, bank: &str) -> Result<BankId, AppError> {
    let bank: BankId = bank.parse().map_err(|_| AppError::NotFound)?;
    admin.check_bank(bank)?;
    Ok(bank)
}

/// What the policy page was sent back with after a change.
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    /// `saved`.
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/policy/{bank}`: the bank's policy as a form.
pub async fn policy_page(
    State(state): State<AppState>,
    Path(bank): Path<String>,
    Query(query): Query<DoneQuery>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    let shown = async {
        let bank = admin_bank(&admin, &bank)?;
        let view = current_or_default(&state, bank).await?;
        let mut page =
            PolicyPage::build(&state, &admin, lang, bank, Shown::of(&view.policy)).await?;
        if query.done.as_deref() == Some("saved") {
            page.notice = Some(lang.t("admin-policy-saved"));
        }
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// The policy the form describes, over `base`; or what the form shows again with each
/// field's error.
fn read_form(lang: Lang, base: &Policy, form: &Fields) -> Result<Policy, Box<Shown>> {
    let mut policy = base.clone();
    let mut shown = Shown {
        zone: form.get("time_zone").trim().to_owned(),
        start: form.get("visit_start").trim().to_owned(),
        end: form.get("visit_end").trim().to_owned(),
        numbers: std::collections::HashMap::new(),
        errors: std::collections::HashMap::new(),
    };
    policy.time_zone.clone_from(&shown.zone);
    match (parse_hhmm(&shown.start), parse_hhmm(&shown.end)) {
        (Some(start), Some(end)) => {
            policy.visit_start_minute = start;
            policy.visit_end_minute = end;
        }
        _ => {
            shown
                .errors
                .insert("visit_hours", lang.t("admin-policy-error-hours"));
        }
    }
    let mut by_field = std::collections::HashMap::new();
    for (_, _, fields) in GROUPS {
        for f in *fields {
            let typed = form.get(f.name).trim().to_owned();
            let value = typed
                .parse::<i64>()
                .ok()
                .and_then(|v| v.checked_mul(f.factor));
            match value {
                Some(v) if set(&mut policy, f.field, v) => {}
                _ => {
                    shown
                        .errors
                        .insert(f.name, lang.t("admin-policy-error-number"));
                }
            }
            by_field.insert(f.field, f);
            shown.numbers.insert(f.name, typed);
        }
    }
    for problem in policy_problems(&policy) {
        let (key, text) = match problem.field {
            "time_zone" => ("time_zone", lang.t("admin-policy-error-zone")),
            "visit_end_minute" | "visit_start_minute" | "visit_hours" => {
                ("visit_hours", lang.t("admin-policy-error-hours"))
            }
            "retention_days" => ("retention_days", lang.t("admin-policy-error-retention")),
            field => match by_field.get(field) {
                Some(f) => {
                    let (least, most) = bounds(f.field);
                    (
                        f.name,
                        lang.t_args(
                            "admin-policy-error-range",
                            &[
                                ("min", (least / f.factor).into()),
                                ("max", (most / f.factor).into()),
                            ],
                        ),
                    )
                }
                None => ("visit_hours", lang.t("admin-policy-error-other")),
            },
        };
        // A value that did not read keeps that error.
        shown.errors.entry(key).or_insert(text);
    }
    if shown.errors.is_empty() {
        Ok(policy)
    } else {
        Err(Box::new(shown))
    }
}

/// `POST /admin/policy/{bank}`: saves the form as the bank's new policy version (signed,
/// pulled by phones, audited).
pub async fn save(
    State(state): State<AppState>,
    Path(bank): Path<String>,
    AdminPost {
        user: admin,
        form,
        lang,
        client,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let outcome = async {
        let bank = admin_bank(&admin, &bank)?;
        let base = current_or_default(&state, bank).await?.policy;
        match read_form(lang, &base, &form) {
            Ok(policy) => {
                set_policy(&state, &admin, bank, policy, client).await?;
                Ok(Ok(format!("/admin/policy/{bank}?done=saved")))
            }
            Err(shown) => Ok(Err(
                PolicyPage::build(&state, &admin, lang, bank, *shown).await?
            )),
        }
    };
    match outcome.await {
        Ok(Ok(to)) => Redirect::to(&to).into_response(),
        Ok(Err(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visiting_hours_read_as_minutes_of_the_day() {
        assert_eq!(parse_hhmm("08:00"), Some(480));
        assert_eq!(parse_hhmm("21:30"), Some(1290));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        for bad in ["24:01", "8", "ab:cd", "12:60", ""] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
        assert_eq!(hhmm(1260), "21:00");
    }

    #[test]
    fn every_bounded_field_is_on_the_form() {
        let on_form: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, _, fields)| fields.iter().map(|f| f.field))
            .collect();
        for (field, _, _) in POLICY_BOUNDS {
            assert!(on_form.contains(field), "{field}");
        }
    }
}
