//! Rules during the visit, checked before each action is recorded.

use serde::{Deserialize, Serialize};

use super::context::VisitContext;
use super::{RuleId, Violation, audio, hours};
use crate::model::{
    ConsentScope, DisputeKind, EventKind, HealthFlag, PersonMet, PromiseKind, TemplateId,
    TemplateKind,
};

/// Something the agents are about to do during the visit, as its rules see it: each variant
/// is named as the event it records ([`EventKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionInput {
    /// Take a photo; `interior` when inside the premises.
    Photo {
        /// Inside the premises (V08).
        interior: bool,
    },
    /// Type a note.
    Note,
    /// Record the occupant's consent.
    Consent {
        /// To what.
        scope: ConsentScope,
    },
    /// Record whose identity was confirmed.
    #[serde(rename = "identity_confirmation")]
    IdentityConfirmed {
        /// Who.
        person: PersonMet,
    },
    /// Record a dispute.
    Dispute {
        /// What is disputed.
        kind: DisputeKind,
    },
    /// Record illness or pregnancy in the household.
    #[serde(rename = "health_flag")]
    HealthFlagged {
        /// Which.
        flag: HealthFlag,
    },
    /// Use a bank template.
    #[serde(rename = "template_use")]
    TemplateUsed {
        /// Which template.
        template_id: TemplateId,
        /// Which version.
        version: u32,
    },
    /// Record a promise to pay.
    Promise {
        /// What is promised.
        kind: PromiseKind,
    },
    /// Record a complaint.
    Complaint,
    /// The recorder's state now: the start of the segment being recorded, or `None` when
    /// it is stopped.
    AudioStatus {
        /// Start of the open segment, anchored UTC ms.
        open_since_ms: Option<i64>,
    },
}

/// Every rule during the visit: V04, V07, V08, V09, V10, V12, V13.
pub fn check_action(ctx: &VisitContext<'_>, action: &ActionInput) -> Vec<Violation> {
    let mut out = Vec::new();
    hours::during(ctx, &mut out);
    match action {
        ActionInput::Photo { interior: true } => consent_for_interior(ctx, &mut out),
        ActionInput::Promise { kind } => {
            debt_discussed(ctx, "A promise", &mut out);
            collection_stopped(ctx, "promise", &mut out);
            promise_authorised(ctx, *kind, &mut out);
        }
        ActionInput::TemplateUsed {
            template_id,
            version,
        } => template_approved(ctx, *template_id, *version, &mut out),
        ActionInput::AudioStatus { open_since_ms } => audio::during(ctx, *open_since_ms, &mut out),
        ActionInput::Photo { interior: false }
        | ActionInput::Note
        | ActionInput::Consent { .. }
        | ActionInput::IdentityConfirmed { .. }
        | ActionInput::Dispute { .. }
        | ActionInput::HealthFlagged { .. }
        | ActionInput::Complaint => {}
    }
    out
}

/// V08: interior photos need recorded consent first.
fn consent_for_interior(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let consented = ctx.any_event(|k| {
        matches!(
            k,
            EventKind::Consent {
                scope: ConsentScope::InteriorPhotos | ConsentScope::EnterPremises
            }
        )
    });
    if !consented {
        out.push(Violation::flag(
            RuleId::V08,
            "Interior photo without the occupant's recorded consent: ask for consent aloud \
             and record it first. Flagged for review.",
        ));
    }
}

/// V09: the debt is discussed only with the debtor or guarantor, after confirming who they
/// are. The last identity confirmation says who the agents are talking to.
pub(crate) fn debt_discussed(ctx: &VisitContext<'_>, what: &str, out: &mut Vec<Violation>) {
    let person = ctx.events.iter().rev().find_map(|e| match e.kind {
        EventKind::IdentityConfirmed { person } => Some(person),
        _ => None,
    });
    match person {
        None => out.push(Violation::flag(
            RuleId::V09,
            format!(
                "{what} before the identity of the person met was confirmed: confirm identity \
                 before discussing the debt. Flagged for review."
            ),
        )),
        Some(PersonMet::ThirdParty) => out.push(Violation::flag(
            RuleId::V09,
            format!(
                "{what} with a third party: nothing about the debt may be disclosed to anyone \
                 but the debtor or guarantor. Flagged for review."
            ),
        )),
        Some(PersonMet::Debtor | PersonMet::Guarantor) => {}
    }
}

/// V10: after a dispute, collection stops: no promise, no receipt.
pub(crate) fn collection_stopped(ctx: &VisitContext<'_>, what: &str, out: &mut Vec<Violation>) {
    if ctx.any_event(|k| matches!(k, EventKind::Dispute { .. })) {
        out.push(Violation::block(
            RuleId::V10,
            format!(
                "The debtor disputed the debt on this visit: collection stops, no {what} may \
                 follow. The case goes on hold."
            ),
        ));
    }
}

/// V13: waivers, instalments and reinstatement only with the bank's authorisation.
fn promise_authorised(ctx: &VisitContext<'_>, kind: PromiseKind, out: &mut Vec<Violation>) {
    let auth = ctx.approval.promise;
    let (allowed, what) = match kind {
        PromiseKind::PayInFull => (true, ""),
        PromiseKind::Waiver => (auth.waiver, "a waiver"),
        PromiseKind::Instalments => (auth.instalments, "instalments"),
        PromiseKind::Reinstatement => (auth.reinstatement, "card reinstatement"),
    };
    if !allowed {
        out.push(Violation::block(
            RuleId::V13,
            format!("The bank has not authorised {what} on this visit: do not promise it."),
        ));
    }
}

/// V12: only the approved templates, in the approved version. A promise or statement
/// template is also a debt discussion (V09), and a promise one stops after a dispute (V10).
fn template_approved(
    ctx: &VisitContext<'_>,
    template_id: TemplateId,
    version: u32,
    out: &mut Vec<Violation>,
) {
    let approved = ctx.approval.templates.iter().find(|t| t.id == template_id);
    match approved {
        None => out.push(Violation::block(
            RuleId::V12,
            "This template is not approved for the visit: use only the bank's approved templates.",
        )),
        Some(t) if t.version != version => out.push(Violation::block(
            RuleId::V12,
            format!(
                "Template version {version} is not the approved version {}: sync and use the \
                 approved version.",
                t.version
            ),
        )),
        Some(t) => match t.kind {
            TemplateKind::Promise => {
                debt_discussed(ctx, "A promise", out);
                collection_stopped(ctx, "promise", out);
            }
            TemplateKind::Statement => debt_discussed(ctx, "A statement", out),
            TemplateKind::Letter | TemplateKind::ImpersonationStatement => {}
        },
    }
}
