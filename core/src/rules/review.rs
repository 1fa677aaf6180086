//! A sealed visit's rules, evaluated again from the record alone: what a verifier (the
//! server at ingest, `tandem verify`, a lawyer years later) can decide without the phone.
//!
//! The check-in and check-out must be co-signed by two different agents of the approved
//! team (V03), at an anchored time within visiting hours (V04), the approval and letter
//! valid then (V02, V06), with honest fixes (V05). Warnings and flags the phone recorded are
//! reported again. Receipts must be co-signed statements of this visit within the cash
//! authorisation (C01, C02). The geofence distance is the one both agents signed in the check-in
//! event; the server also checks it against its own record of the address at ingest.

use chrono::Timelike as _;

use super::{RuleId, Violation};
use crate::canonical::from_canonical_slice;
use crate::handshake::{CheckInStatement, CheckOutStatement};
use crate::model::{AgentId, Approval, CoSignature, Event, EventKind, Policy, VisitId};
use crate::place::{Fix, distance_m};
use crate::receipts::ReceiptStatement;

/// Re-evaluates a sealed visit's rules; blocking violations mean the phone was bypassed.
pub fn review_sealed_visit(
    visit: VisitId,
    policy: &Policy,
    approval: &Approval,
    events: &[Event],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let find = |f: fn(&EventKind) -> bool| events.iter().find(|e| f(&e.kind));
    match find(|k| matches!(k, EventKind::CheckedIn { .. })) {
        Some(check_in) => review_check_in(visit, policy, approval, check_in, &mut out),
        None => out.push(Violation::block(
            RuleId::V03,
            "The visit has no joint check-in.",
        )),
    }
    match find(|k| matches!(k, EventKind::CheckedOut { .. })) {
        Some(check_out) => {
            if let EventKind::CheckedOut {
                partner,
                cosignature,
                ..
            } = &check_out.kind
            {
                co_signed(
                    visit,
                    approval,
                    check_out.by,
                    *partner,
                    cosignature.as_ref(),
                    "check-out",
                    &mut out,
                );
            }
        }
        None => out.push(Violation::block(
            RuleId::V03,
            "The visit has no joint check-out.",
        )),
    }
    review_receipts(visit, approval, events, &mut out);
    review_clocks(policy, events, &mut out);
    for event in events {
        if let EventKind::RuleFlag {
            rule,
            outcome,
            message,
        } = &event.kind
        {
            let v = Violation {
                rule: *rule,
                outcome: *outcome,
                message: message.clone(),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

fn review_check_in(
    visit: VisitId,
    policy: &Policy,
    approval: &Approval,
    event: &Event,
    out: &mut Vec<Violation>,
) {
    let EventKind::CheckedIn {
        partner,
        partner_fix,
        distance_m: recorded_distance,
        outside_fence_reason,
        cosignature,
        ..
    } = &event.kind
    else {
        return;
    };
    co_signed(
        visit,
        approval,
        event.by,
        *partner,
        cosignature.as_ref(),
        "check-in",
        out,
    );
    match event.at.anchored_ms() {
        None => out.push(Violation::block(
            RuleId::V04,
            "Check-in time is not server-anchored.",
        )),
        Some(at) => {
            let appointment = approval
                .appointment
                .is_some_and(|a| a.from_ms <= at && at < a.until_ms);
            match local_minute(policy, at) {
                None => out.push(Violation::block(
                    RuleId::V04,
                    "The policy's time zone is unknown.",
                )),
                Some(m)
                    if !appointment
                        && (m < policy.visit_start_minute || m >= policy.visit_end_minute) =>
                {
                    out.push(Violation::block(
                        RuleId::V04,
                        "Checked in outside visiting hours without an appointment.",
                    ))
                }
                Some(_) => {}
            }
            if !(approval.valid_from_ms <= at && at < approval.valid_until_ms) {
                out.push(Violation::block(
                    RuleId::V02,
                    "Checked in outside the approval's validity.",
                ));
            }
            if at >= approval.letter.valid_until_ms {
                out.push(Violation::block(
                    RuleId::V06,
                    "The authorisation letter had expired at check-in.",
                ));
            }
        }
    }
    let own = honest_fix(event.fix.as_ref(), policy, "this phone", out);
    let theirs = honest_fix(partner_fix.as_ref(), policy, "the partner's phone", out);
    if let Some(own) = own {
        let allowed = policy.geofence_radius_m.saturating_add(own.accuracy_m);
        if *recorded_distance > allowed {
            match outside_fence_reason.as_deref().map(str::trim) {
                Some(r) if !r.is_empty() => out.push(Violation::flag(
                    RuleId::V05,
                    format!("Checked in {recorded_distance} m from the address (allowed {allowed} m), with a reason."),
                )),
                _ => out.push(Violation::block(
                    RuleId::V05,
                    format!("Checked in {recorded_distance} m from the address (allowed {allowed} m) without a reason."),
                )),
            }
        }
        if let Some(theirs) = theirs {
            let apart = distance_m(&own.coordinate, &theirs.coordinate);
            if apart > policy.partner_max_distance_m {
                out.push(Violation::block(
                    RuleId::V05,
                    format!(
                        "The two phones were {apart} m apart at check-in (at most {} m).",
                        policy.partner_max_distance_m
                    ),
                ));
            }
        }
    }
}

/// C01 and C02 from the record: each receipt is this visit's statement, signed by two
/// different agents of the team; receipts not voided stay within the cash authorisation.
fn review_receipts(
    visit: VisitId,
    approval: &Approval,
    events: &[Event],
    out: &mut Vec<Violation>,
) {
    let voided: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ReceiptVoided { serial, .. } => Some(*serial),
            _ => None,
        })
        .collect();
    let mut total: i64 = 0;
    let mut issued = 0;
    for event in events {
        let EventKind::ReceiptIssued {
            serial,
            amount,
            payer_signature,
            cosignature,
        } = &event.kind
        else {
            continue;
        };
        issued += 1;
        let statement = from_canonical_slice::<ReceiptStatement>(cosignature.statement.as_bytes());
        let matches = statement.as_ref().is_ok_and(|s| {
            s.visit_id == visit
                && s.serial == serial.0
                && s.amount == *amount
                && s.payer_signature == *payer_signature
                && s.fee.0 == 0
        });
        if !matches {
            out.push(Violation::block(
                RuleId::C02,
                format!(
                    "Receipt {}: its signed statement does not match the record.",
                    serial.0
                ),
            ));
        }
        let signer = |record: &crate::crypto::SignatureRecord| {
            approval.team.iter().find(|m| {
                m.public_key.kid() == record.kid
                    && record
                        .verify(&m.public_key, "receipt", cosignature.statement.as_bytes())
                        .is_ok()
            })
        };
        match (signer(&cosignature.lead), signer(&cosignature.partner)) {
            (Some(a), Some(b)) if a.agent_id != b.agent_id => {}
            _ => out.push(Violation::block(
                RuleId::C02,
                format!(
                    "Receipt {} is not signed by two agents of the team.",
                    serial.0
                ),
            )),
        }
        if !voided.contains(serial) {
            total = total.saturating_add(amount.0);
        }
    }
    match &approval.cash {
        None if issued > 0 => out.push(Violation::block(
            RuleId::C01,
            "Receipts were issued but the approval carries no cash authorisation.",
        )),
        Some(cash) if total > cash.limit.0 => out.push(Violation::block(
            RuleId::C01,
            format!(
                "Receipts total {} over the authorised limit {}.",
                crate::model::Fen(total),
                cash.limit
            ),
        )),
        _ => {}
    }
}

fn honest_fix<'a>(
    fix: Option<&'a Fix>,
    policy: &Policy,
    whose: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a Fix> {
    match fix {
        None => out.push(Violation::block(
            RuleId::V05,
            format!("No position from {whose} at check-in."),
        )),
        Some(f) if f.mock => out.push(Violation::block(
            RuleId::V05,
            format!("Mock location on {whose} at check-in."),
        )),
        Some(f) if f.accuracy_m > policy.max_fix_accuracy_m => out.push(Violation::block(
            RuleId::V05,
            format!(
                "The fix of {whose} was too imprecise ({} m) at check-in.",
                f.accuracy_m
            ),
        )),
        Some(f) => return Some(f),
    }
    None
}

/// V03: a statement of this visit signed by the recording agent and by a different agent,
/// both of the approved team, each with the key the approval lists for them.
fn co_signed(
    visit: VisitId,
    approval: &Approval,
    lead: AgentId,
    partner: AgentId,
    cosignature: Option<&CoSignature>,
    purpose: &'static str,
    out: &mut Vec<Violation>,
) {
    let Some(c) = cosignature else {
        out.push(Violation::block(
            RuleId::V03,
            format!("The {purpose} is not co-signed by the partner's phone."),
        ));
        return;
    };
    if lead == partner {
        out.push(Violation::block(
            RuleId::V03,
            format!("The {purpose} names the same agent twice."),
        ));
        return;
    }
    let statement_visit = match purpose {
        "check-in" => {
            from_canonical_slice::<CheckInStatement>(c.statement.as_bytes()).map(|s| s.visit_id)
        }
        _ => from_canonical_slice::<CheckOutStatement>(c.statement.as_bytes()).map(|s| s.visit_id),
    };
    if statement_visit.ok() != Some(visit) {
        out.push(Violation::block(
            RuleId::V03,
            format!("The {purpose} statement is not this visit's."),
        ));
        return;
    }
    for (agent, signature, role) in [(lead, &c.lead, "lead"), (partner, &c.partner, "partner")] {
        let verified = approval.member(agent).is_some_and(|m| {
            signature
                .verify(&m.public_key, purpose, c.statement.as_bytes())
                .is_ok()
        });
        if !verified {
            out.push(Violation::block(
                RuleId::V03,
                format!("The {role}'s signature on the {purpose} is not by an agent of the approved team."),
            ));
        }
    }
}

fn local_minute(policy: &Policy, at_ms: i64) -> Option<u16> {
    let zone = policy.zone().ok()?;
    let local = chrono::DateTime::from_timestamp_millis(at_ms)?.with_timezone(&zone);
    u16::try_from(local.hour() * 60 + local.minute()).ok()
}

/// V15: a phone whose wall clock was off from the server-anchored time beyond the policy's
/// tolerance is flagged, computed from the events' own times (not from what the phone chose
/// to record), once per visit with the largest difference.
fn review_clocks(policy: &Policy, events: &[Event], out: &mut Vec<Violation>) {
    let worst = events
        .iter()
        .filter_map(|e| {
            crate::clock::clock_discrepancy(&e.at, policy.clock_tolerance_ms).map(|d| (e, d))
        })
        .max_by_key(|(_, d)| d.saturating_abs());
    if let Some((event, off)) = worst {
        out.push(Violation::flag(
            RuleId::V15,
            format!(
                "A phone's wall clock was {} min off the server-anchored time (event {}, \
                 tolerance {} min); the anchored times count.",
                off.saturating_abs().saturating_add(30_000) / 60_000,
                event.seq,
                policy.clock_tolerance_ms / 60_000
            ),
        ));
    }
}
