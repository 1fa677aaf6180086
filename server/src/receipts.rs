//! Receipts on the server (DOMAIN.md C02, C03): what a committed bundle issued and voided,
//! read from its verified manifest with core's own types ([`money_of`]); the deposit a
//! manager reconciles each receipt with ([`mark_deposited`]); and the deposit check
//! ([`flag_overdue`]), which `tandem serve` runs on an interval ([`run_deposit_checks`]).
//!
//! The deadline is the policy's `deposit_deadline_business_days` after the receipt's day,
//! business days being Monday to Friday in the bank's zone (no holiday list: a bank whose
//! holidays matter sets more days), and ends at the end of that day in the bank's zone. It
//! is fixed when the receipt is recorded, from the policy the visit ran under (signed into
//! its manifest).
//!
//! Threats: an agent who pockets cash (every receipt reconciled, the late ones flagged and
//! escalated); a colluding pair (a receipt counts only under a serial the server issued to
//! a phone of the visit's approved team: `db::receipts`); a user of another bank (the
//! deposit of another bank's receipt is the "not found" of an unknown one, D03).

use std::time::Duration;

use chrono::{Datelike as _, NaiveDate, Weekday};
use tandem_core::bundle::Manifest;
use tandem_core::model::{EventKind, PaymentMethod, PersonMet, Policy};
use tandem_core::receipts::ReceiptStatement;

use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::receipts::{BundleMoney, Deposit, NewReceipt, NewVoid, OverdueFlag, ReceiptRecord};
use crate::error::AppError;

/// Most business days a deadline may span (the loop that counts them stays bounded).
const MAX_DEADLINE_DAYS: u32 = 60;
/// Longest deposit reference a manager may type.
pub const MAX_REFERENCE_CHARS: usize = 64;
/// How long one run of the deposit check may take before it is abandoned for this tick.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `day` is a business day: Monday to Friday.
pub fn is_business_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The end (the next midnight, in `zone`) of the `business_days`-th business day after the
/// day of `issued_ms` in `zone`; with 0, the end of the issue day itself. `None` for a time
/// or zone the calendar cannot place.
pub fn deposit_due_ms(issued_ms: i64, zone: chrono_tz::Tz, business_days: u32) -> Option<i64> {
    let mut day = chrono::DateTime::from_timestamp_millis(issued_ms)?
        .with_timezone(&zone)
        .date_naive();
    let mut left = business_days.min(MAX_DEADLINE_DAYS);
    while left > 0 {
        day = day.succ_opt()?;
        if is_business_day(day) {
            left -= 1;
        }
    }
    day.succ_opt()?
        .and_hms_opt(0, 0, 0)?
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// The day of `at_ms` in `zone`, `YYYY-MM-DD` (`None` outside years 0–9999).
pub fn local_day(at_ms: i64, zone: chrono_tz::Tz) -> Option<String> {
    let day = chrono::DateTime::from_timestamp_millis(at_ms)?
        .with_timezone(&zone)
        .format("%Y-%m-%d")
        .to_string();
    (day.len() == 10).then_some(day)
}

fn method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Cash => "cash",
        PaymentMethod::Cheque => "cheque",
    }
}

fn role_name(role: PersonMet) -> &'static str {
    match role {
        PersonMet::Debtor => "debtor",
        PersonMet::Guarantor => "guarantor",
        PersonMet::ThirdParty => "third_party",
    }
}

/// Text the databases store as it is (PostgreSQL refuses NUL in text).
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// The receipts and voids of a manifest, from its events and each receipt's co-signed
/// statement (core's own types and parser). A receipt whose statement does not read, or
/// does not match its event, is left out (the bundle is quarantined for it, C02), as is one
/// no database could store; the serial and bundle are logged, never the payer.
pub fn money_of(manifest: &Manifest) -> BundleMoney {
    let visit = &manifest.visit;
    let policy: Option<Policy> =
        tandem_core::canonical::from_canonical_slice(visit.policy.body.as_bytes()).ok();
    let zone = policy
        .as_ref()
        .and_then(|p| p.time_zone.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let days = policy.map_or(1, |p| p.deposit_deadline_business_days);
    let mut money = BundleMoney::default();
    for event in &manifest.events {
        match &event.kind {
            EventKind::ReceiptIssued {
                serial,
                amount,
                cosignature,
                ..
            } => {
                let receipt = ReceiptStatement::parse(cosignature.statement.as_bytes())
                    .ok()
                    .filter(|s| {
                        s.serial == serial.0 && s.amount == *amount && s.visit_id == visit.visit_id
                    })
                    .and_then(|s| {
                        let serial = i64::try_from(s.serial).ok().filter(|n| *n >= 1)?;
                        let issued_day = local_day(s.at_ms, zone)?;
                        let due_ms = deposit_due_ms(s.at_ms, zone, days)?;
                        let texts = [&s.payer.name, &s.currency, &visit.case_ref];
                        if s.amount.0 <= 0 || !texts.iter().all(|t| storable(t)) {
                            return None;
                        }
                        Some(NewReceipt {
                            serial,
                            bank_id: visit.bank_id,
                            case_id: s.case_id,
                            case_ref: visit.case_ref.clone(),
                            visit_id: visit.visit_id,
                            device_id: s.device_id,
                            amount_fen: s.amount.0,
                            currency: s.currency,
                            method: method_name(s.method),
                            payer_name: s.payer.name,
                            payer_role: role_name(s.payer.role),
                            issued_ms: s.at_ms,
                            issued_day,
                            due_ms,
                        })
                    });
                match receipt {
                    Some(r) => money.receipts.push(r),
                    None => tracing::warn!(
                        bundle = %manifest.bundle_id,
                        serial = serial.0,
                        "receipt left out: its statement does not read or match its event"
                    ),
                }
            }
            EventKind::ReceiptVoided { serial, reason, .. } => match i64::try_from(serial.0) {
                Ok(n) if n >= 1 && storable(reason) => money.voids.push(NewVoid {
                    serial: n,
                    bank_id: visit.bank_id,
                    visit_id: visit.visit_id,
                    reason: reason.clone(),
                    voided_ms: event.at.best_ms(),
                }),
                _ => tracing::warn!(
                    bundle = %manifest.bundle_id,
                    "void left out: its serial or reason cannot be stored"
                ),
            },
            _ => {}
        }
    }
    money
}

/// Why a deposit was refused (each the console's message, by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepositRefusal {
    /// No reference, or too long, or with control characters.
    #[error("the deposit reference must be 1 to 64 characters")]
    Reference,
    /// Not a date.
    #[error("the deposit date is not a date")]
    Day,
    /// Before the receipt's day, or after today in the bank's zone.
    #[error("the deposit date must lie between the receipt's day and today")]
    DayOutOfRange,
    /// The amount deposited is not the receipt's (one deposit covers one receipt).
    #[error("the amount deposited must be the receipt's amount")]
    Amount,
    /// Deposited already (a deposit is marked once).
    #[error("the receipt is marked deposited already")]
    Already,
    /// Voided: nothing to deposit.
    #[error("the receipt is voided")]
    Voided,
}

impl DepositRefusal {
    /// The console's message id.
    pub fn message_id(self) -> &'static str {
        match self {
            Self::Reference => "deposit-bad-reference",
            Self::Day => "deposit-bad-day",
            Self::DayOutOfRange => "deposit-day-out-of-range",
            Self::Amount => "deposit-bad-amount",
            Self::Already => "deposit-already",
            Self::Voided => "deposit-voided",
        }
    }
}

/// A deposit as a manager enters it.
#[derive(Debug, Clone)]
pub struct DepositInput {
    /// The bank's reference of the deposit (slip or transaction number).
    pub reference: String,
    /// The day, `YYYY-MM-DD`, in the bank's zone.
    pub day: String,
    /// The amount deposited, fen.
    pub amount_fen: i64,
}

/// A receipt of one of the user's banks, for a manager or admin; any other serial, or
/// another bank's, is "not found" (D03).
pub async fn visible_receipt(
    state: &AppState,
    user: &UserAuth,
    serial: &str,
) -> Result<ReceiptRecord, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let serial: i64 = serial.parse().map_err(|_| AppError::NotFound)?;
    let receipt = state.db.receipt(serial).await?.ok_or(AppError::NotFound)?;
    user.check_bank(receipt.bank_id)?;
    Ok(receipt)
}

/// Marks a receipt deposited (a manager of its bank): once, with the deposit's reference
/// and day (in `zone`, the bank's), for exactly the receipt's amount.
pub async fn mark_deposited(
    state: &AppState,
    user: &UserAuth,
    receipt: &ReceiptRecord,
    input: &DepositInput,
    zone: chrono_tz::Tz,
) -> Result<Result<(), DepositRefusal>, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    user.check_bank(receipt.bank_id)?;
    let reference = input.reference.trim();
    let chars = reference.chars().count();
    if chars == 0 || chars > MAX_REFERENCE_CHARS || reference.chars().any(char::is_control) {
        return Ok(Err(DepositRefusal::Reference));
    }
    let Ok(day) = NaiveDate::parse_from_str(input.day.trim(), "%Y-%m-%d") else {
        return Ok(Err(DepositRefusal::Day));
    };
    let day = day.format("%Y-%m-%d").to_string();
    let now = state.now_ms();
    let today = local_day(now, zone).unwrap_or_default();
    if day < receipt.issued_day || day > today {
        return Ok(Err(DepositRefusal::DayOutOfRange));
    }
    if input.amount_fen != receipt.amount_fen {
        return Ok(Err(DepositRefusal::Amount));
    }
    if receipt.void_reason.is_some() {
        return Ok(Err(DepositRefusal::Voided));
    }
    let marked = state
        .db
        .mark_deposited(&Deposit {
            serial: receipt.serial,
            reference: reference.to_owned(),
            day: day.clone(),
            by: user.user.user_id,
            at_ms: now,
        })
        .await?;
    if !marked {
        return Ok(Err(DepositRefusal::Already));
    }
    audit_deposit(state, user, receipt, &day, now).await?;
    Ok(Ok(()))
}

/// The audit record of a deposit marked: who, which receipt and bank, the deposit's day;
/// never the payer or the reference.
async fn audit_deposit(
    state: &AppState,
    user: &UserAuth,
    receipt: &ReceiptRecord,
    day: &str,
    at_ms: i64,
) -> Result<(), AppError> {
    let entry = AuditEntry::new(
        at_ms,
        AuditAction::ReceiptDeposited,
        "receipt",
        Some(receipt.serial.to_string()),
    )
    .by(user.user.user_id)
    .bank(receipt.bank_id)
    .detail(serde_json::json!({ "day": day, "amount_fen": receipt.amount_fen }));
    state.db.append_audit(&entry).await?;
    Ok(())
}

/// The deposit check (C03), once: flags every receipt not deposited by its deadline as of
/// the server's clock, and escalates each (an `overdue` flag the console shows, and a log
/// line with ids only). Harmless when several servers run it at once: each receipt is
/// flagged by exactly one of them.
pub async fn flag_overdue(state: &AppState) -> Result<Vec<OverdueFlag>, AppError> {
    let flagged = state.db.flag_overdue(state.now_ms()).await?;
    for f in &flagged {
        tracing::warn!(
            bank = %f.bank_id,
            serial = f.serial,
            rule = "C03",
            "receipt not deposited by its deadline: flagged overdue"
        );
        let entry = AuditEntry::new(
            state.now_ms(),
            AuditAction::ReceiptOverdue,
            "receipt",
            Some(f.serial.to_string()),
        )
        .bank(f.bank_id);
        state.db.append_audit(&entry).await?;
    }
    Ok(flagged)
}

/// Runs the scheduled checks — complaints open past 24 hours (P01), then receipts not
/// deposited by their deadline (C03) — every `every` until `stop` resolves (`tandem serve`
/// starts it);
/// a run that fails or takes longer than a minute is logged and the next tick tries again.
pub async fn run_deposit_checks<F>(state: AppState, every: Duration, stop: F)
where
    F: Future<Output = ()> + Send,
{
    let every = every.max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticks.tick() => {}
        }
        // Several servers on one database: one of them runs the check per period.
        if !crate::schedule::claim(&state, crate::schedule::Job::DepositCheck, every).await {
            continue;
        }
        // P01: complaints still open past their 24 hours, escalated once.
        match tokio::time::timeout(
            CHECK_TIMEOUT,
            crate::visits::complaints::escalate_breaches(&state),
        )
        .await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::warn!(
                count = n,
                "complaint check: tickets past 24 hours escalated"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "complaint check failed"),
            Err(_) => tracing::error!("complaint check took over a minute; abandoned this tick"),
        }
        match tokio::time::timeout(CHECK_TIMEOUT, flag_overdue(&state)).await {
            Ok(Ok(flagged)) if !flagged.is_empty() => {
                tracing::info!(
                    count = flagged.len(),
                    "deposit check: receipts flagged overdue"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "deposit check failed"),
            Err(_) => tracing::error!("deposit check took over a minute; abandoned this tick"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

    fn at(day: &str, hm: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(&format!("{day} {hm}"), "%Y-%m-%d %H:%M")
            .unwrap()
            .and_local_timezone(SHANGHAI)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn a_receipt_is_due_by_the_end_of_the_next_business_day_in_the_banks_zone() {
        // 2026-12-02 is a Wednesday: due by the end of Thursday.
        let due = deposit_due_ms(at("2026-12-02", "10:00"), SHANGHAI, 1).unwrap();
        assert_eq!(due, at("2026-12-04", "00:00"));
        // Late on Wednesday evening still counts as Wednesday in Shanghai (15:30 UTC).
        let due = deposit_due_ms(at("2026-12-02", "23:30"), SHANGHAI, 1).unwrap();
        assert_eq!(due, at("2026-12-04", "00:00"));
    }

    #[test]
    fn weekends_are_skipped() {
        // Friday 2026-12-04 → Monday 2026-12-07; Saturday too.
        for issued in [at("2026-12-04", "16:00"), at("2026-12-05", "11:00")] {
            let due = deposit_due_ms(issued, SHANGHAI, 1).unwrap();
            assert_eq!(due, at("2026-12-08", "00:00"));
        }
        // Two business days from Thursday: Monday.
        let due = deposit_due_ms(at("2026-12-03", "09:00"), SHANGHAI, 2).unwrap();
        assert_eq!(due, at("2026-12-08", "00:00"));
        // Zero: the end of the day itself.
        let due = deposit_due_ms(at("2026-12-03", "09:00"), SHANGHAI, 0).unwrap();
        assert_eq!(due, at("2026-12-04", "00:00"));
    }

    #[test]
    fn days_are_read_in_the_banks_zone() {
        assert_eq!(
            local_day(at("2026-12-02", "07:00"), SHANGHAI).as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(local_day(i64::MAX, SHANGHAI), None);
    }
}
