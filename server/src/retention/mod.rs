//! Retention, legal hold and destruction of evidence (E04): evidence is kept at least two
//! years or the bank's longer period (its policy's `retention_days`), a legal hold stops
//! its deletion, and a destruction at the bank's request needs a second person and ends in
//! a certificate signed by the server key.
//!
//! The rules are here, independent of HTML; the console's pages (`console::retention`)
//! call these functions, and the database area (`db::retention`) only stores.
//!
//! - A visit's retention runs from the commit of its newest bundle (the server's clock
//!   when the evidence entered the transparency log; `docs/decisions.md`), counted in whole
//!   days of the bank's zone, and never ends before two calendar years have passed (730
//!   days alone fall a day short across a 29 February).
//! - Holds: legal or admin staff of the case's bank, with a reference and a reason; lifted
//!   by a person with a reason; a hold on a case covers all its visits.
//! - Destruction: asked by legal or admin staff of the bank (refused at once, and audited,
//!   inside retention or under a hold); approved by an administrator of the bank who did
//!   not ask. The approval checks retention and holds again in the transaction that marks
//!   the evidence destroyed, deletes every blob of the visit's bundles that no other
//!   evidence still lists, keeps the bundle rows (manifest digests, receipts) and the
//!   transparency log, and signs a certificate.
//!
//! Threats: a malicious insider who would delete evidence early or alone (retention, holds,
//! a second person, the audit log, the signed certificate naming both); a user of another
//! bank guessing ids (the "not found" of a random id, D03).

use std::net::IpAddr;

use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use serde_json::json;
use tandem_core::model::{BankId, CaseId, Policy, VisitId};
use uuid::Uuid;

use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::retention::{EvidenceBundle, NewHold};
use crate::db::{DbError, Role};
use crate::error::AppError;
use crate::visits::policy::MIN_RETENTION_DAYS;

pub mod bank;
mod destruction;

pub use destruction::{
    CERTIFICATE_FORMAT, DestroyedBlob, approve_destruction, certificate, request_destruction,
    server_key_pem,
};

/// Longest reference (a court's case number, a bank's letter number), in characters.
pub const MAX_REFERENCE_CHARS: usize = 100;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why a retention action was refused. The three E04 refusals carry what the page names.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// No such case, visit, hold, request or certificate among the user's banks.
    #[error("not found")]
    NotFound,
    /// This role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Inside retention: kept through `until` (the bank's zone).
    #[error("E04: retention runs until {until}")]
    InsideRetention {
        /// The last day the evidence is kept.
        until: NaiveDate,
    },
    /// Under a legal hold.
    #[error("E04: legal hold {reference}")]
    UnderHold {
        /// The hold's reference.
        reference: String,
    },
    /// The person who asked for a destruction cannot approve it.
    #[error("E04: a destruction needs a second person")]
    SamePerson,
    /// Nothing of this case or visit is left to destroy.
    #[error("nothing to destroy")]
    NothingToDestroy,
    /// The request was decided already.
    #[error("already decided")]
    NotPending,
    /// The hold was lifted already.
    #[error("hold not active")]
    HoldNotActive,
    /// A form field is missing or too long.
    #[error("invalid {field}")]
    Invalid {
        /// `reference`, `reason`, `subject`.
        field: &'static str,
    },
    /// Anything else (database, signing).
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<DbError> for RetentionError {
    fn from(e: DbError) -> Self {
        Self::App(AppError::from(e))
    }
}

impl RetentionError {
    /// The refusal a stored text names ([`RetentionError::refusal_text`] read back).
    pub fn from_refusal(text: &str) -> Self {
        if let Some(until) = text
            .strip_prefix("E04: retention runs until ")
            .and_then(|d| d.parse().ok())
        {
            Self::InsideRetention { until }
        } else if let Some(reference) = text.strip_prefix("E04: legal hold ") {
            Self::UnderHold {
                reference: reference.to_owned(),
            }
        } else {
            Self::NothingToDestroy
        }
    }

    /// The language-neutral text of an E04 refusal (audit detail, stored refusal).
    pub fn refusal_text(&self) -> Option<String> {
        match self {
            Self::InsideRetention { .. } | Self::UnderHold { .. } | Self::SamePerson => {
                Some(self.to_string())
            }
            _ => None,
        }
    }
}

/// When a visit's retention ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionEnd {
    /// The last day (bank's zone) the evidence is kept.
    pub last_day: NaiveDate,
    /// The first moment it may be destroyed: the next local midnight, UTC ms.
    pub ends_ms: i64,
}

/// The end of the retention of evidence committed at `committed_ms`, kept `days` days (at
/// least [`MIN_RETENTION_DAYS`]) in `zone`: the later of the commit's local day plus `days`
/// and the same day two calendar years on (a 29 February's is 1 March), kept through that
/// whole day. `None` only for times beyond the calendar.
pub fn retention_end(committed_ms: i64, days: u32, zone: chrono_tz::Tz) -> Option<RetentionEnd> {
    let days = i64::from(days).max(MIN_RETENTION_DAYS);
    let day = zone
        .timestamp_millis_opt(committed_ms)
        .single()?
        .date_naive();
    let by_days = day.checked_add_signed(chrono::Duration::days(days))?;
    let by_years = match NaiveDate::from_ymd_opt(day.year() + 2, day.month(), day.day()) {
        Some(d) => d,
        // 29 February: two years on there is none; the day after 28 February.
        None => NaiveDate::from_ymd_opt(day.year() + 2, 3, 1)?,
    };
    let last_day = by_days.max(by_years);
    let next = last_day.succ_opt()?;
    Some(RetentionEnd {
        last_day,
        ends_ms: local_midnight(next, zone)?,
    })
}

/// The first moment of `day` in `zone` (the first hour that exists when midnight is
/// skipped).
fn local_midnight(day: NaiveDate, zone: chrono_tz::Tz) -> Option<i64> {
    (0..3).find_map(|h| {
        day.and_hms_opt(h, 0, 0)?
            .and_local_timezone(zone)
            .earliest()
            .map(|t| t.timestamp_millis())
    })
}

/// The bank's retention days and zone from its stored policy (the defaults when it has
/// none).
fn retention_terms(policy: Option<&str>, bank: BankId) -> (u32, chrono_tz::Tz) {
    let policy = policy
        .and_then(|p| serde_json::from_str::<Policy>(p).ok())
        .unwrap_or_else(|| Policy::defaults(bank));
    let zone = policy
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    (policy.retention_days, zone)
}

/// When the retention of a set of bundles ends: that of the newest commit (a bundle never
/// committed counts from its arrival).
fn evidence_retention(
    bundles: &[EvidenceBundle],
    days: u32,
    zone: chrono_tz::Tz,
) -> Option<RetentionEnd> {
    let newest = bundles
        .iter()
        .map(|b| b.committed_ms.unwrap_or(b.received_ms))
        .max()?;
    retention_end(newest, days, zone)
}

/// What a form names: a case (by id or reference) or a visit (by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A whole case.
    Case(CaseId),
    /// One visit of a case.
    Visit(CaseId, VisitId),
}

impl Subject {
    fn case(self) -> CaseId {
        match self {
            Self::Case(c) | Self::Visit(c, _) => c,
        }
    }

    fn visit(self) -> Option<VisitId> {
        match self {
            Self::Case(_) => None,
            Self::Visit(_, v) => Some(v),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Case(_) => "case",
            Self::Visit(..) => "visit",
        }
    }

    fn id(self) -> String {
        match self {
            Self::Case(c) => c.to_string(),
            Self::Visit(_, v) => v.to_string(),
        }
    }
}

/// Resolves what a form names among `user`'s banks: `kind` `case` (an id or a case
/// reference) or `visit` (an id). Another bank's, or nothing, is "not found".
pub async fn resolve_subject(
    state: &AppState,
    user: &UserAuth,
    kind: &str,
    value: &str,
) -> Result<(BankId, Subject), RetentionError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RetentionError::Invalid { field: "subject" });
    }
    let (bank, subject) = match kind {
        "visit" => {
            let visit: Uuid = value.parse().map_err(|_| RetentionError::NotFound)?;
            let visit = VisitId(visit);
            let (bank, case) = state
                .db
                .visit_case(visit)
                .await?
                .ok_or(RetentionError::NotFound)?;
            (bank, Subject::Visit(case, visit))
        }
        "case" => {
            let case = match value.parse::<CaseId>() {
                Ok(id) => id,
                Err(_) => state
                    .db
                    .case_by_ref(&user.user.bank_ids, value)
                    .await?
                    .ok_or(RetentionError::NotFound)?,
            };
            let bank = state
                .db
                .case_bank(case)
                .await?
                .ok_or(RetentionError::NotFound)?;
            (bank, Subject::Case(case))
        }
        _ => return Err(RetentionError::Invalid { field: "subject" }),
    };
    user.check_bank(bank)
        .map_err(|_| RetentionError::NotFound)?;
    Ok((bank, subject))
}

/// A form's text: trimmed, 1 to `max` characters, no control characters but line breaks.
pub fn clean_text(value: &str, max: usize, field: &'static str) -> Result<String, RetentionError> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.chars().count() <= max
        && !value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(RetentionError::Invalid { field })
    }
}

fn require(user: &UserAuth, roles: &[Role]) -> Result<(), RetentionError> {
    user.require(roles).map_err(|_| RetentionError::Forbidden)
}

/// Places a legal hold (legal or admin staff of the bank), audited `LegalHoldPlaced`.
pub async fn place_hold(
    state: &AppState,
    user: &UserAuth,
    (bank, subject): (BankId, Subject),
    reference: &str,
    reason: &str,
    client: Option<IpAddr>,
) -> Result<Uuid, RetentionError> {
    require(user, &[Role::Legal, Role::Admin])?;
    user.check_bank(bank)
        .map_err(|_| RetentionError::NotFound)?;
    let reference = clean_text(reference, MAX_REFERENCE_CHARS, "reference")?;
    let reason = clean_text(reason, MAX_REASON_CHARS, "reason")?;
    let now = state.now_ms();
    let hold = NewHold {
        id: Uuid::now_v7(),
        bank_id: bank,
        case_id: subject.case(),
        visit_id: subject.visit(),
        reference: reference.clone(),
        reason,
        placed_by: user.user.user_id,
        placed_ms: now,
    };
    let audit = AuditEntry::new(
        now,
        AuditAction::LegalHoldPlaced,
        subject.kind(),
        Some(subject.id()),
    )
    .by(user.user.user_id)
    .bank(bank)
    .from_addr(client)
    .detail(json!({ "hold": hold.id.to_string(), "reference": reference }));
    state.db.place_hold(&hold, &audit).await?;
    tracing::info!(hold = %hold.id, "legal hold placed");
    Ok(hold.id)
}

/// Lifts a hold (legal or admin staff of its bank, with a reason), audited
/// `LegalHoldLifted`.
pub async fn lift_hold(
    state: &AppState,
    user: &UserAuth,
    id: &str,
    reason: &str,
    client: Option<IpAddr>,
) -> Result<(), RetentionError> {
    require(user, &[Role::Legal, Role::Admin])?;
    let id: Uuid = id.parse().map_err(|_| RetentionError::NotFound)?;
    let hold = state.db.hold(id).await?.ok_or(RetentionError::NotFound)?;
    user.check_bank(hold.bank_id)
        .map_err(|_| RetentionError::NotFound)?;
    let reason = clean_text(reason, MAX_REASON_CHARS, "reason")?;
    let now = state.now_ms();
    let (kind, subject) = match hold.visit_id {
        Some(v) => ("visit", v.to_string()),
        None => ("case", hold.case_id.to_string()),
    };
    let audit = AuditEntry::new(now, AuditAction::LegalHoldLifted, kind, Some(subject))
        .by(user.user.user_id)
        .bank(hold.bank_id)
        .from_addr(client)
        .detail(json!({ "hold": id.to_string(), "reference": hold.reference }));
    if !state
        .db
        .lift_hold(id, user.user.user_id, &reason, now, &audit)
        .await?
    {
        return Err(RetentionError::HoldNotActive);
    }
    tracing::info!(hold = %id, "legal hold lifted");
    Ok(())
}

/// What a manager's visit or case page says about retention: evidence destroyed (when, by
/// which certificate) and holds in force.
#[derive(Debug, Clone, Default)]
pub struct EvidenceStatus {
    /// Destructions: (visit, destroyed at, certificate id), one per visit and certificate.
    pub destroyed: Vec<(String, i64, String)>,
    /// References of the holds in force.
    pub holds: Vec<String>,
}

/// The retention status of a case, or of one of its visits.
pub async fn evidence_status(
    state: &AppState,
    case: CaseId,
    visit: Option<VisitId>,
) -> Result<EvidenceStatus, AppError> {
    let mut status = EvidenceStatus::default();
    for b in state.db.evidence(case, visit).await? {
        if let (Some(at), Some(cert)) = (b.destroyed_ms, b.certificate_id) {
            let entry = (b.visit_id, at, cert);
            if !status.destroyed.contains(&entry) {
                status.destroyed.push(entry);
            }
        }
    }
    status.holds = state
        .db
        .active_holds(case, visit)
        .await?
        .into_iter()
        .map(|h| h.reference)
        .collect();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

    fn at(zone: chrono_tz::Tz, y: i32, m: u32, d: u32, h: u32) -> i64 {
        zone.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap()
            .timestamp_millis()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn e04_two_years_are_kept_even_across_a_leap_day() {
        // 730 days from 2027-03-01 end on 2029-02-28 (2028 has a 29 February): one day
        // short of two years, so two calendar years win.
        let end = retention_end(at(SHANGHAI, 2027, 3, 1, 10), 730, SHANGHAI).unwrap();
        assert_eq!(end.last_day, day(2029, 3, 1));
        assert_eq!(end.ends_ms, at(SHANGHAI, 2029, 3, 2, 0));
        // Without a leap day between, 730 days are two years to the day.
        let end = retention_end(at(SHANGHAI, 2029, 3, 1, 10), 730, SHANGHAI).unwrap();
        assert_eq!(end.last_day, day(2031, 3, 1));
    }

    #[test]
    fn e04_a_29_february_is_kept_through_1_march_two_years_on() {
        let end = retention_end(at(SHANGHAI, 2028, 2, 29, 9), 730, SHANGHAI).unwrap();
        assert_eq!(end.last_day, day(2030, 3, 1));
    }

    #[test]
    fn e04_less_than_two_years_is_never_used() {
        let short = retention_end(at(SHANGHAI, 2029, 6, 1, 9), 30, SHANGHAI).unwrap();
        let least = retention_end(at(SHANGHAI, 2029, 6, 1, 9), 730, SHANGHAI).unwrap();
        assert_eq!(short, least);
    }

    #[test]
    fn e04_a_banks_longer_period_wins() {
        // Days are days: 1,095 of them from 2027-01-10 cross 29 February 2028.
        let end = retention_end(at(SHANGHAI, 2027, 1, 10, 9), 1_095, SHANGHAI).unwrap();
        assert_eq!(end.last_day, day(2030, 1, 9));
    }

    #[test]
    fn e04_days_are_counted_in_the_banks_zone() {
        // 2027-03-01 20:00 UTC is already 2 March in Shanghai, still 1 March in UTC.
        let utc_evening = chrono::Utc
            .with_ymd_and_hms(2027, 3, 1, 20, 0, 0)
            .single()
            .unwrap()
            .timestamp_millis();
        let shanghai = retention_end(utc_evening, 730, SHANGHAI).unwrap();
        assert_eq!(shanghai.last_day, day(2029, 3, 2));
        assert_eq!(shanghai.ends_ms, at(SHANGHAI, 2029, 3, 3, 0));
        let london = retention_end(utc_evening, 730, chrono_tz::Europe::London).unwrap();
        assert_eq!(london.last_day, day(2029, 3, 1));
    }

    #[test]
    fn a_stored_refusal_reads_back_as_the_refusal_it_names() {
        for e in [
            RetentionError::InsideRetention {
                until: day(2029, 3, 1),
            },
            RetentionError::UnderHold {
                reference: "(2029)沪0101民初123号".into(),
            },
        ] {
            let text = e.refusal_text().unwrap();
            assert_eq!(
                RetentionError::from_refusal(&text).refusal_text(),
                Some(text)
            );
        }
        assert!(matches!(
            RetentionError::from_refusal("E04: nothing left to destroy"),
            RetentionError::NothingToDestroy
        ));
    }

    #[test]
    fn form_text_is_trimmed_and_bounded() {
        assert_eq!(
            clean_text("  (2026)沪0101民初123号 ", 100, "reference").unwrap(),
            "(2026)沪0101民初123号"
        );
        assert!(clean_text("   ", 100, "reference").is_err());
        assert!(clean_text(&"字".repeat(101), 100, "reference").is_err());
        assert!(clean_text("a\u{0}b", 100, "reference").is_err());
        assert!(clean_text("第一行\n第二行", 100, "reason").is_ok());
    }
}
