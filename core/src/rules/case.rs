//! V01, decided once: whether a case may be worked at a time. The phone's check-in rules and
//! the server's request and approval routes both ask here.

use crate::model::{Case, CaseStatus, HoldReason};

/// Why a case may not be worked (V01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unworkable {
    /// The case is settled: there is nothing to collect.
    Settled,
    /// The bank paused the case.
    OnHold(HoldReason),
    /// The time is outside the entrustment period and any approved extension.
    NotEntrusted,
}

impl Unworkable {
    /// What the agent is told.
    pub fn message(self) -> String {
        match self {
            Unworkable::Settled => {
                "The case is settled: there is nothing to collect. Do not visit.".to_owned()
            }
            Unworkable::OnHold(reason) => format!(
                "The case is on hold ({}): no visit until the bank releases it.",
                match reason {
                    HoldReason::Dispute => "the debt is disputed",
                    HoldReason::Complaint => "a complaint is open",
                    HoldReason::VulnerabilityReview => "vulnerability review",
                }
            ),
            Unworkable::NotEntrusted => {
                "The case is outside the bank's entrustment period (and any approved extension): \
                 do not visit."
                    .to_owned()
            }
        }
    }
}

/// V01: every reason `case` may not be worked at `at_ms` (entrusted, not settled, not on
/// hold); empty when it may.
pub fn case_unworkable(case: &Case, at_ms: i64) -> Vec<Unworkable> {
    let mut out = Vec::new();
    match case.status {
        CaseStatus::Active => {}
        CaseStatus::Settled => out.push(Unworkable::Settled),
        CaseStatus::OnHold { reason } => out.push(Unworkable::OnHold(reason)),
    }
    if !case.entrustment.covers(at_ms) {
        out.push(Unworkable::NotEntrusted);
    }
    out
}

/// V14 (a warning): the debtor's other visits (their windows, UTC ms, from inclusive to
/// exclusive) on the local day a visit wanted from `wanted_from_ms` starts, in the bank's
/// zone of `policy` — `Some(count)` when they already reach the policy's
/// `max_visits_per_debtor_per_day`, `None` when one more is allowed.
pub fn debtor_day_full(
    policy: &crate::model::Policy,
    wanted_from_ms: i64,
    others: &[(i64, i64)],
) -> Option<usize> {
    let zone: chrono_tz::Tz = policy
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&zone).date_naive())
    };
    let wanted = day(wanted_from_ms)?;
    // Another visit that day: its window starts that day, or spans it.
    let same_day = others
        .iter()
        .filter(|(from, until)| {
            matches!((day(*from), day(*until - 1)), (Some(f), Some(u)) if f <= wanted && wanted <= u)
        })
        .count();
    let allowed = usize::try_from(policy.max_visits_per_debtor_per_day).unwrap_or(usize::MAX);
    (same_day >= allowed).then_some(same_day)
}

#[cfg(test)]
mod v14_tests {
    use super::*;

    #[test]
    fn v14_counts_the_debtors_visits_on_the_local_day_in_the_banks_zone() {
        let policy = crate::model::Policy::defaults(crate::model::BankId::new());
        // 2026-11-30 10:00 in Shanghai (02:00 UTC).
        let ten = 1_796_004_000_000;
        let hour = 3_600_000;
        assert_eq!(debtor_day_full(&policy, ten, &[]), None);
        // Another visit that morning: the day is full (one a day by default).
        assert_eq!(
            debtor_day_full(&policy, ten, &[(ten - 2 * hour, ten - hour)]),
            Some(1)
        );
        // The evening before in Shanghai (15:00 UTC the day before is 23:00 local): not that day.
        assert_eq!(
            debtor_day_full(&policy, ten, &[(ten - 11 * hour, ten - 10 * hour)]),
            None
        );
        // A window spanning the day counts.
        assert_eq!(
            debtor_day_full(&policy, ten, &[(ten - 24 * hour, ten + 24 * hour)]),
            Some(1)
        );
    }
}
