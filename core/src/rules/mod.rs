//! The rules engine: every rule of DOMAIN.md a phone can decide, at the visit's transitions.
//!
//! Each check is a pure function of a [`VisitContext`] (built by the caller from verified
//! documents and the anchored clock) and the step's own input, and returns every violation
//! found, not just the first: the agent sees all that is wrong at once. A step may go ahead
//! when nothing blocks ([`has_blocking`]); warnings are shown, flags are recorded as
//! `RuleFlag` events for review.

mod audio;
mod case;
mod check_in;
mod context;
mod during;
mod hours;
mod receipt;
mod review;
mod seal;
mod sync;
mod violation;

pub use audio::{AudioGapSpan, audio_gaps};
pub use case::{Unworkable, case_unworkable, debtor_day_full};
pub use check_in::{CheckInInput, PartnerPresence, check_check_in, check_check_in_readiness};
pub use context::VisitContext;
pub use during::{ActionInput, check_action};
pub use receipt::check_receipt;
pub use review::review_sealed_visit;
pub use seal::{CheckOutInput, SealInput, SealSigner, check_check_out, check_seal};
pub use sync::{HeldVisit, PurgePlan, check_upload_deadlines, purge_plan};
pub use violation::{Outcome, RuleId, Violation};

/// Whether any violation refuses the action.
pub fn has_blocking(violations: &[Violation]) -> bool {
    violations.iter().any(|v| v.outcome == Outcome::Block)
}

/// The violations that refuse the action.
pub fn blocking(violations: &[Violation]) -> Vec<&Violation> {
    violations
        .iter()
        .filter(|v| v.outcome == Outcome::Block)
        .collect()
}

/// The warnings and flags: what is shown or recorded while the action goes ahead.
pub fn non_blocking(violations: &[Violation]) -> Vec<&Violation> {
    violations
        .iter()
        .filter(|v| v.outcome != Outcome::Block)
        .collect()
}
