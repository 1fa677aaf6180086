//! Rules for a receipt before both phones sign it: C01, C02, V09, V10.

use super::context::VisitContext;
use super::during::{collection_stopped, debt_discussed};
use super::{RuleId, Violation};
use crate::model::{Fen, PersonMet, ReceiptDraft};

/// Every rule of a receipt: C01 (authorised), C02 (complete), V10 (not after a dispute),
/// V09 (from the debtor or guarantor, after identity was confirmed).
pub fn check_receipt(ctx: &VisitContext<'_>, draft: &ReceiptDraft) -> Vec<Violation> {
    let mut out = Vec::new();
    authorised(ctx, draft, &mut out);
    complete(ctx, draft, &mut out);
    collection_stopped(ctx, "receipt", &mut out);
    debt_discussed(ctx, "A payment", &mut out);
    if draft
        .payer
        .as_ref()
        .is_some_and(|p| p.role == PersonMet::ThirdParty)
    {
        out.push(Violation::flag(
            RuleId::V09,
            "The payer is a third party: collect only from the debtor or guarantor. Flagged \
             for review.",
        ));
    }
    out
}

/// C01: cash only under the approval's authorisation: method, currency, limit.
fn authorised(ctx: &VisitContext<'_>, draft: &ReceiptDraft, out: &mut Vec<Violation>) {
    let Some(auth) = ctx.approval.cash.as_ref() else {
        out.push(Violation::block(
            RuleId::C01,
            "This visit has no cash-collection authorisation from the bank: do not accept \
             money. Ask the debtor to pay through the bank.",
        ));
        return;
    };
    if !auth.methods.contains(&draft.method) {
        out.push(Violation::block(
            RuleId::C01,
            "This payment method is not authorised for the visit: accept only the authorised \
             methods.",
        ));
    }
    if draft.currency != auth.currency {
        out.push(Violation::block(
            RuleId::C01,
            format!("Only {} may be accepted on this visit.", auth.currency),
        ));
    }
    let total = ctx
        .receipts
        .iter()
        .try_fold(draft.amount.0, |sum, r| sum.checked_add(r.amount.0));
    match total {
        Some(total) if total <= auth.limit.0 => {}
        _ => {
            let earlier = ctx
                .receipts
                .iter()
                .fold(0i64, |sum, r| sum.saturating_add(r.amount.0));
            out.push(Violation::block(
                RuleId::C01,
                format!(
                    "The amount exceeds the visit's authorised limit of {} ({} already \
                     received): accept no more than the limit.",
                    auth.limit,
                    Fen(earlier)
                ),
            ));
        }
    }
}

/// C02: every field of the receipt is there and right.
fn complete(ctx: &VisitContext<'_>, draft: &ReceiptDraft, out: &mut Vec<Violation>) {
    let mut missing: Vec<&str> = Vec::new();
    match draft.serial {
        None => missing.push("serial number"),
        Some(serial) => {
            let issued = ctx
                .serial_ranges
                .iter()
                .any(|r| r.device_id == ctx.device && r.contains(serial));
            if !issued {
                out.push(Violation::block(
                    RuleId::C02,
                    format!(
                        "Receipt number {serial} is not from a range the server issued to this \
                         phone: sync to get receipt numbers."
                    ),
                ));
            }
            if ctx.receipts.iter().any(|r| r.serial == Some(serial)) {
                out.push(Violation::block(
                    RuleId::C02,
                    format!("Receipt number {serial} is already used: take the next number."),
                ));
            }
        }
    }
    if draft.visit_id != ctx.visit || draft.case_id != ctx.case.id {
        out.push(Violation::block(
            RuleId::C02,
            "The receipt names another visit or case: write it for this visit's case.",
        ));
    }
    if draft
        .payer
        .as_ref()
        .is_none_or(|p| p.name.trim().is_empty())
    {
        missing.push("payer");
    }
    if draft.amount.0 <= 0 {
        missing.push("amount");
    }
    if draft.time.is_none() {
        missing.push("time");
    }
    if draft.place.is_none() {
        missing.push("place");
    }
    if draft.payer_signature.is_none() {
        missing.push("payer's signature");
    }
    if !missing.is_empty() {
        out.push(Violation::block(
            RuleId::C02,
            format!("The receipt is incomplete: add the {}.", missing.join(", ")),
        ));
    }
    if let Some(auth) = ctx.approval.cash.as_ref()
        && draft.designated_account != auth.designated_account
    {
        out.push(Violation::block(
            RuleId::C02,
            "The receipt must name the bank's designated account for this visit.",
        ));
    }
    if draft.fee.0 != 0 {
        out.push(Violation::block(
            RuleId::C02,
            "No fee may be charged to the payer: the fee must be zero.",
        ));
    }
}
