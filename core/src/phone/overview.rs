//! The visit list: every visit this phone holds, where it stands, and what the rules say
//! about it now — before any handshake, so an agent (or a script) sees at once why a
//! check-in would be refused.

use serde::Serialize;

use super::Phone;
use super::lifecycle::unsent_sealed_at;
use super::loaded::Loaded;
use crate::model::{
    AddressId, EventKind, Fen, MaskedCardNumber, MaskedIdNumber, VisitId, VisitState,
};
use crate::place::Coordinate;
use crate::rules::{self, RuleId, Violation};
use crate::{Error, Result};

/// One visit as the visit list shows it. Card and ID numbers exist here only masked; the
/// debtor's name and phone number are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitOverview {
    /// The visit.
    pub visit_id: VisitId,
    /// Where it stands.
    pub state: VisitState,
    /// The case's details, unless they were purged (D01).
    pub case: Option<CaseOverview>,
    /// For an assigned visit: what the check-in rules say now, with this phone's fix and
    /// before the partner answers (empty: nothing stands in the way).
    pub check_in_now: Vec<Violation>,
    /// Rules recorded on the visit so far as warnings or flags, in order.
    pub recorded_flags: Vec<RuleId>,
}

/// The case and approval behind a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseOverview {
    /// The bank's case reference.
    pub case_ref: String,
    /// `**** **** **** 1234`.
    pub card: MaskedCardNumber,
    /// The debtor's ID number, masked.
    pub id_number: MaskedIdNumber,
    /// Arrears.
    pub outstanding: Fen,
    /// The approved addresses.
    pub addresses: Vec<AddressOverview>,
    /// Start of the approval's validity, UTC ms.
    pub valid_from_ms: i64,
    /// End of the approval's validity, UTC ms.
    pub valid_until_ms: i64,
    /// The most that may be collected, when the approval authorises cash (C01).
    pub cash_limit: Option<Fen>,
}

/// One approved address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressOverview {
    /// Its id.
    pub id: AddressId,
    /// The address text.
    pub text: String,
    /// Where it is, in the datum it was geocoded in.
    pub position: Coordinate,
}

impl Phone {
    /// Every visit held, oldest first, with its rule state now.
    pub fn visit_overviews(&self) -> Result<Vec<VisitOverview>> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.store.read(|tx| {
            let unsent = unsent_sealed_at(tx)?;
            let mut out = Vec::new();
            for record in tx.visits(&[])? {
                let visit_id = record.visit.id;
                let state = record.visit.state;
                if state == VisitState::Purged {
                    out.push(VisitOverview {
                        visit_id,
                        state,
                        case: None,
                        check_in_now: Vec::new(),
                        recorded_flags: Vec::new(),
                    });
                    continue;
                }
                let loaded = Loaded::load(tx, visit_id)?;
                let ctx = loaded.context(now);
                let check_in_now = if state == VisitState::Assigned {
                    rules::check_check_in_readiness(&ctx, fix.clone(), None, &unsent)
                } else {
                    Vec::new()
                };
                let recorded_flags = loaded
                    .events
                    .iter()
                    .filter_map(|e| match e.kind {
                        EventKind::RuleFlag { rule, .. } => Some(rule),
                        _ => None,
                    })
                    .collect();
                let case = CaseOverview {
                    // Shown on a screen: direction controls from the bank's file made visible.
                    case_ref: crate::text::visible(&loaded.case.case_ref).into_owned(),
                    card: loaded.case.card.clone(),
                    id_number: loaded.case.debtor.id_number.clone(),
                    outstanding: loaded.case.outstanding,
                    addresses: ctx
                        .approved_addresses()
                        .map(|a| AddressOverview {
                            id: a.id,
                            text: crate::text::visible(&a.text).into_owned(),
                            position: a.position,
                        })
                        .collect(),
                    valid_from_ms: loaded.approval.valid_from_ms,
                    valid_until_ms: loaded.approval.valid_until_ms,
                    cash_limit: loaded.approval.cash.as_ref().map(|c| c.limit),
                };
                out.push(VisitOverview {
                    visit_id,
                    state,
                    case: Some(case),
                    check_in_now,
                    recorded_flags,
                });
            }
            Ok::<_, Error>(out)
        })
    }
}
