//! Rules at sync: upload deadlines (E03) and what the phone must delete (D01).

use serde::{Deserialize, Serialize};

use super::{RuleId, Violation};
use crate::model::{CaseId, Policy, VisitId, VisitState};

/// E03 for sealed visits not yet uploaded (their anchored seal times): warns in the last
/// quarter of the upload deadline; blocks new check-ins once a deadline has passed.
pub fn check_upload_deadlines(
    policy: &Policy,
    now_ms: i64,
    unsent_sealed_at_ms: &[i64],
) -> Vec<Violation> {
    let deadline = policy.upload_deadline_ms;
    let warn_from = deadline.saturating_sub(deadline / 4);
    let elapsed = |sealed: &i64| now_ms.saturating_sub(*sealed);
    let overdue = unsent_sealed_at_ms
        .iter()
        .filter(|s| elapsed(s) > deadline)
        .count();
    let nearing = unsent_sealed_at_ms
        .iter()
        .filter(|s| (warn_from..=deadline).contains(&elapsed(s)))
        .count();
    let within = duration_text(deadline);
    let mut out = Vec::new();
    if overdue > 0 {
        out.push(Violation::block(
            RuleId::E03,
            format!(
                "{overdue} sealed visit(s) did not reach the server within {within}: connect \
                 and sync; no new check-in until they are uploaded."
            ),
        ));
    }
    if nearing > 0 {
        out.push(Violation::warn(
            RuleId::E03,
            format!(
                "{nearing} sealed visit(s) must reach the server within {within} of sealing \
                 and the deadline is near: connect and sync soon."
            ),
        ));
    }
    out
}

/// A policy duration as the agent reads it: whole hours when it is some, else minutes.
fn duration_text(ms: i64) -> String {
    const HOUR_MS: i64 = 3_600_000;
    if ms % HOUR_MS == 0 {
        format!("{} h", ms / HOUR_MS)
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// A visit held on the phone, as the purge plan needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldVisit {
    /// The visit.
    pub visit_id: VisitId,
    /// Its case.
    pub case_id: CaseId,
    /// Where it stands.
    pub state: VisitState,
    /// Whether the server's receipt and its inclusion proof verified on this phone.
    pub receipt_verified: bool,
}

/// What D01 says to delete now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgePlan {
    /// Visits whose local media may be deleted: acknowledged, receipt verified.
    pub media: Vec<VisitId>,
    /// Cases whose data must go: assignment ended, and no evidence of theirs is still
    /// waiting for the server.
    pub cases: Vec<CaseId>,
    /// Cases whose assignment ended but which still hold evidence not yet acknowledged:
    /// their data goes as soon as that evidence is (evidence is never dropped).
    pub cases_waiting: Vec<CaseId>,
}

/// D01: media of acknowledged visits are purged once their server receipt verified; the
/// data of every case no longer assigned is purged, but never evidence still on its way.
pub fn purge_plan(visits: &[HeldVisit], held_cases: &[CaseId], assigned: &[CaseId]) -> PurgePlan {
    let acknowledged = |v: &HeldVisit| v.state == VisitState::Acknowledged && v.receipt_verified;
    // Evidence that exists and has not reached the server: from check-in until acknowledged.
    let pending = |v: &HeldVisit| {
        !matches!(v.state, VisitState::Assigned | VisitState::Purged) && !acknowledged(v)
    };
    let mut plan = PurgePlan {
        media: visits
            .iter()
            .filter(|v| acknowledged(v))
            .map(|v| v.visit_id)
            .collect(),
        ..PurgePlan::default()
    };
    for case in held_cases {
        if assigned.contains(case) {
            continue;
        }
        let waiting = visits.iter().any(|v| v.case_id == *case && pending(v));
        if waiting {
            plan.cases_waiting.push(*case);
        } else {
            plan.cases.push(*case);
        }
    }
    plan
}
