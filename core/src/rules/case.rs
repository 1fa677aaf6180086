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
