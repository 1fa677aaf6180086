//! Rules at check-in: may this team start this visit, here and now?

use serde::{Deserialize, Serialize};

use super::case::case_unworkable;
use super::context::VisitContext;
use super::{RuleId, Violation, hours, sync};
use crate::model::{AgentId, DeviceId};
use crate::place::check_partner_distance;
use crate::place::{Fix, GeofenceOutcome, MockSide, PartnerOutcome, check_geofence};

/// The partner phone as the handshake showed it: who, on which phone, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerPresence {
    /// The partner agent.
    pub agent_id: AgentId,
    /// The partner's phone.
    pub device_id: DeviceId,
    /// The partner phone's fix at the handshake.
    pub fix: Option<Fix>,
}

/// What the agent brings to check-in.
#[derive(Debug, Clone, Default)]
pub struct CheckInInput<'a> {
    /// This phone's fix.
    pub fix: Option<Fix>,
    /// The partner, from the verified handshake reply.
    pub partner: Option<PartnerPresence>,
    /// The agent's reason for checking in outside the geofence (V05).
    pub outside_fence_reason: Option<String>,
    /// Anchored seal times of this phone's visits that are sealed but not yet uploaded (E03).
    pub unsent_sealed_at_ms: &'a [i64],
}

/// Every rule of check-in: V01, V02, V03, V04, V05, V06, V11, E03, D01.
pub fn check_check_in(ctx: &VisitContext<'_>, input: &CheckInInput<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    case_active(ctx, &mut out);
    approval_holds(ctx, &mut out);
    team_together(ctx, input.partner.as_ref(), "check in", &mut out);
    hours::at_check_in(ctx, &mut out);
    place(ctx, input, &mut out);
    letter_valid(ctx, &mut out);
    health_reviewed(ctx, &mut out);
    out.extend(sync::check_upload_deadlines(
        ctx.policy,
        ctx.now_ms(),
        input.unsent_sealed_at_ms,
    ));
    assigned(ctx, &mut out);
    out
}

/// The check-in rules that need no partner yet, with this phone's own fix: what a visit
/// list shows before the handshake starts (V01, V02, V03 team, V04, V05 own fix, V06, V11,
/// E03, D01). Nothing blocking here means a check-in can go ahead once the partner answers.
///
/// The lead's phone runs them, with the reason the agent gave, before it shows a challenge:
/// the partner is never asked to co-sign a check-in this phone would then refuse.
pub fn check_check_in_readiness(
    ctx: &VisitContext<'_>,
    fix: Option<Fix>,
    outside_fence_reason: Option<String>,
    unsent_sealed_at_ms: &[i64],
) -> Vec<Violation> {
    let mut out = Vec::new();
    case_active(ctx, &mut out);
    approval_holds(ctx, &mut out);
    team_approved(ctx, &mut out);
    hours::at_check_in(ctx, &mut out);
    let input = CheckInInput {
        fix,
        partner: None,
        outside_fence_reason,
        unsent_sealed_at_ms,
    };
    place(ctx, &input, &mut out);
    letter_valid(ctx, &mut out);
    health_reviewed(ctx, &mut out);
    out.extend(sync::check_upload_deadlines(
        ctx.policy,
        ctx.now_ms(),
        unsent_sealed_at_ms,
    ));
    assigned(ctx, &mut out);
    out
}

/// V01: the case is entrusted, not settled, not on hold.
fn case_active(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    out.extend(
        case_unworkable(ctx.case, ctx.now_ms())
            .into_iter()
            .map(|why| Violation::block(RuleId::V01, why.message())),
    );
}

/// V02: a valid approval for this case covers now, and the ticket is this visit's.
fn approval_holds(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let (a, now) = (ctx.approval, ctx.now_ms());
    if a.case_id != ctx.case.id || a.bank_id != ctx.case.bank_id {
        out.push(Violation::block(
            RuleId::V02,
            "The approval is for another case: visit only under this case's approval.",
        ));
    }
    if now < a.valid_from_ms {
        out.push(Violation::block(
            RuleId::V02,
            "The approval is not valid yet: wait for its validity window.",
        ));
    } else if now >= a.valid_until_ms {
        out.push(Violation::block(
            RuleId::V02,
            "The approval has expired: ask the manager for a new approval.",
        ));
    }
    if ctx.ticket.approval_id != a.id || ctx.ticket.visit_id != ctx.visit {
        out.push(Violation::block(
            RuleId::V02,
            "The visit ticket does not belong to this approval and visit: sync to fetch the \
             right ticket.",
        ));
    }
    if ctx.approved_addresses().next().is_none() {
        out.push(Violation::block(
            RuleId::V02,
            "The approval names no address of this case: ask the manager to correct it.",
        ));
    }
}

/// V03: two different agents of the approved team, each on their own enrolled phone.
/// `action` names the step for messages ("check in", "check out").
pub(crate) fn team_together(
    ctx: &VisitContext<'_>,
    partner: Option<&PartnerPresence>,
    action: &str,
    out: &mut Vec<Violation>,
) {
    team_approved(ctx, out);
    let Some(partner) = partner else {
        out.push(Violation::block(
            RuleId::V03,
            format!("{action} together: scan your partner's reply code first."),
        ));
        return;
    };
    if partner.agent_id == ctx.agent {
        out.push(Violation::block(
            RuleId::V03,
            "The partner must be a different agent from you.",
        ));
        return;
    }
    match ctx.approval.member(partner.agent_id) {
        None => out.push(Violation::block(
            RuleId::V03,
            "The partner is not on this visit's approved team.",
        )),
        Some(m) if m.device_id != partner.device_id || partner.device_id == ctx.device => {
            out.push(Violation::block(
                RuleId::V03,
                "The partner is not using their own enrolled phone: each agent uses their own.",
            ))
        }
        Some(_) => {}
    }
}

/// V03, the part known before any handshake: a team of two agents, this agent on it with
/// this very phone.
fn team_approved(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let team = &ctx.approval.team;
    let distinct = team
        .iter()
        .enumerate()
        .filter(|(i, m)| !team.iter().take(*i).any(|o| o.agent_id == m.agent_id))
        .count();
    if distinct < 2 {
        out.push(Violation::block(
            RuleId::V03,
            "The approved team has fewer than two agents: ask the manager to assign a team of two.",
        ));
    }
    match ctx.approval.member(ctx.agent) {
        None => out.push(Violation::block(
            RuleId::V03,
            "You are not on this visit's approved team.",
        )),
        Some(me) if me.device_id != ctx.device => out.push(Violation::block(
            RuleId::V03,
            "This phone is not the one enrolled for you on this team: use your own enrolled phone.",
        )),
        Some(_) => {}
    }
}

/// V05: a real, accurate fix inside the geofence (or a reason), partner phones close.
fn place(ctx: &VisitContext<'_>, input: &CheckInInput<'_>, out: &mut Vec<Violation>) {
    let p = ctx.policy;
    let Some(fix) = input.fix.as_ref() else {
        out.push(Violation::block(
            RuleId::V05,
            "No location fix: wait for a position (go outdoors if needed) and try again.",
        ));
        return;
    };
    if let Some((address, _)) = ctx.nearest_approved_address(fix) {
        match check_geofence(
            fix,
            &address.position,
            p.geofence_radius_m,
            p.max_fix_accuracy_m,
        ) {
            GeofenceOutcome::Inside { .. } => {}
            GeofenceOutcome::Mock => out.push(mock_location()),
            GeofenceOutcome::AccuracyTooPoor { accuracy_m, max_m } => out.push(Violation::block(
                RuleId::V05,
                format!(
                    "The location fix is too vague ({accuracy_m} m, at most {max_m} m \
                         accepted): wait for a better fix."
                ),
            )),
            GeofenceOutcome::Outside {
                distance_m,
                allowed_m,
            } => {
                let has_reason = input
                    .outside_fence_reason
                    .as_deref()
                    .is_some_and(|r| !r.trim().is_empty());
                let what = format!(
                    "You are {distance_m} m from the nearest approved address (allowed \
                     {allowed_m} m)"
                );
                out.push(if has_reason {
                    Violation::flag(
                        RuleId::V05,
                        format!("{what}: checked in with a reason, flagged for review."),
                    )
                } else {
                    Violation::block(
                        RuleId::V05,
                        format!("{what}: give the reason to check in here."),
                    )
                });
            }
        }
    } else if fix.mock {
        out.push(mock_location());
    }
    let Some(partner) = input.partner.as_ref() else {
        return;
    };
    let Some(partner_fix) = partner.fix.as_ref() else {
        out.push(Violation::block(
            RuleId::V05,
            "The partner phone has no location fix: it must have one to check in.",
        ));
        return;
    };
    if partner_fix.accuracy_m > p.max_fix_accuracy_m {
        out.push(Violation::block(
            RuleId::V05,
            format!(
                "The partner phone's fix is too vague ({} m, at most {} m accepted).",
                partner_fix.accuracy_m, p.max_fix_accuracy_m
            ),
        ));
    }
    match check_partner_distance(fix, partner_fix, p.partner_max_distance_m) {
        PartnerOutcome::Within { .. }
        | PartnerOutcome::Mock {
            side: MockSide::First,
        } => {}
        PartnerOutcome::Mock { .. } => out.push(Violation::block(
            RuleId::V05,
            "The partner phone reports a mock location: turn off mock locations on it.",
        )),
        PartnerOutcome::TooFar { distance_m, max_m } => out.push(Violation::block(
            RuleId::V05,
            format!(
                "The two phones are {distance_m} m apart (at most {max_m} m): check in \
                 together, side by side."
            ),
        )),
    }
}

fn mock_location() -> Violation {
    Violation::block(
        RuleId::V05,
        "This phone reports a mock location: turn off mock locations and use the real position.",
    )
}

/// V06: the bank's authorisation letter is still valid.
fn letter_valid(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    if ctx.now_ms() >= ctx.approval.letter.valid_until_ms {
        out.push(Violation::block(
            RuleId::V06,
            "The bank's authorisation letter has expired: do not visit until a valid letter is \
             part of the approval.",
        ));
    }
}

/// V11: a case flagged for illness or pregnancy needs the manager's explicit review.
fn health_reviewed(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    if ctx.case.health_flag.is_some() && !ctx.approval.health_review_done {
        out.push(Violation::block(
            RuleId::V11,
            "An earlier visit flagged a health circumstance in the household: the manager must \
             review it on the approval before the next visit.",
        ));
    }
}

/// D01: the phone works only cases assigned to its agent.
fn assigned(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    if !ctx.assigned_cases.contains(&ctx.case.id) || ctx.approval.member(ctx.agent).is_none() {
        out.push(Violation::block(
            RuleId::D01,
            "This case is not assigned to you: sync, and the phone will remove its data.",
        ));
    }
}
