//! Receipt rules, one table per rule, checked before both phones sign a receipt.
//! Actors: an agent who pockets cash or under-reports a payment (THREATS.md).

mod rules_support;

use rules_support::*;
use tandem_core::model::{
    DeviceId, DisputeKind, EventKind, Fen, PaymentMethod, PersonMet, ReceiptDraft, ReceiptSerial,
};
use tandem_core::rules::{Outcome, RuleId, check_receipt, has_blocking};

type Scenario = (
    &'static str,
    fn(&mut World, &mut ReceiptDraft),
    Option<Outcome>,
);

/// A visit under way, the debtor's identity confirmed.
fn visiting() -> World {
    let mut world = World::new();
    world.record_check_in();
    world.record(EventKind::IdentityConfirmed {
        person: PersonMet::Debtor,
    });
    world
}

fn run(rule: RuleId, table: &[Scenario]) {
    for (name, change, expected) in table {
        let mut world = visiting();
        let mut draft = world.receipt();
        change(&mut world, &mut draft);
        let violations = check_receipt(&world.ctx(), &draft);
        assert_rule(name, &violations, rule, *expected);
    }
}

fn earlier_receipt(w: &mut World, serial: u64, amount: i64) {
    let mut r = w.receipt();
    r.serial = Some(ReceiptSerial(serial));
    r.amount = Fen(amount);
    w.receipts.push(r);
}

#[test]
fn a_complete_authorised_receipt_from_the_debtor_passes() {
    let world = visiting();
    let violations = check_receipt(&world.ctx(), &world.receipt());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn c01_cash_only_under_the_banks_authorisation_and_limit() {
    run(
        RuleId::C01,
        &[
            ("¥1000 in cash under a ¥5000 authorisation", |_, _| {}, None),
            (
                "no cash authorisation on the approval blocks",
                |w, _| w.approval.cash = None,
                Some(Outcome::Block),
            ),
            (
                "a cheque when only cash is authorised blocks",
                |_, d| d.method = PaymentMethod::Cheque,
                Some(Outcome::Block),
            ),
            (
                "US dollars when CNY is authorised blocks",
                |_, d| d.currency = "USD".into(),
                Some(Outcome::Block),
            ),
            (
                "¥1000 after ¥4500 already received exceeds the limit and blocks",
                |w, d| {
                    earlier_receipt(w, 1_500, 450_000);
                    d.amount = Fen(100_000);
                },
                Some(Outcome::Block),
            ),
            (
                "¥500 after ¥4500 reaches the limit exactly",
                |w, d| {
                    earlier_receipt(w, 1_500, 450_000);
                    d.amount = Fen(50_000);
                },
                None,
            ),
            (
                "an amount that would overflow blocks",
                |w, d| {
                    earlier_receipt(w, 1_500, i64::MAX);
                    d.amount = Fen(1);
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn c02_every_receipt_is_complete() {
    run(
        RuleId::C02,
        &[
            ("every field present and right", |_, _| {}, None),
            (
                "no serial number blocks",
                |_, d| d.serial = None,
                Some(Outcome::Block),
            ),
            (
                "a serial outside the issued range blocks",
                |_, d| d.serial = Some(ReceiptSerial(2_000)),
                Some(Outcome::Block),
            ),
            (
                "a serial from another phone's range blocks",
                |w, _| w.ranges[0].device_id = DeviceId::new(),
                Some(Outcome::Block),
            ),
            (
                "a serial already used on this visit blocks",
                |w, d| {
                    earlier_receipt(w, 1_000, 10_000);
                    d.serial = Some(ReceiptSerial(1_000));
                },
                Some(Outcome::Block),
            ),
            (
                "no payer blocks",
                |_, d| d.payer = None,
                Some(Outcome::Block),
            ),
            (
                "a zero amount blocks",
                |_, d| d.amount = Fen(0),
                Some(Outcome::Block),
            ),
            (
                "another deposit account blocks",
                |_, d| d.designated_account = "6217 **** **** 9999".into(),
                Some(Outcome::Block),
            ),
            (
                "a fee charged to the payer blocks",
                |_, d| d.fee = Fen(500),
                Some(Outcome::Block),
            ),
            ("no time blocks", |_, d| d.time = None, Some(Outcome::Block)),
            (
                "no place blocks",
                |_, d| d.place = None,
                Some(Outcome::Block),
            ),
            (
                "no payer's signature blocks",
                |_, d| d.payer_signature = None,
                Some(Outcome::Block),
            ),
            (
                "a receipt written for another visit blocks",
                |_, d| d.visit_id = tandem_core::model::VisitId::new(),
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v10_no_receipt_after_a_dispute() {
    run(
        RuleId::V10,
        &[
            ("no dispute on the visit", |_, _| {}, None),
            (
                "a receipt after the debtor denied applying blocks",
                |w, _| {
                    w.record(EventKind::Dispute {
                        kind: DisputeKind::DeniesApplication,
                        statement: None,
                        id_front: None,
                        id_back: None,
                    })
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v09_money_is_collected_only_from_the_debtor_or_guarantor() {
    run(
        RuleId::V09,
        &[
            ("the debtor pays", |_, _| {}, None),
            (
                "the guarantor pays",
                |_, d| {
                    if let Some(p) = d.payer.as_mut() {
                        p.role = PersonMet::Guarantor;
                    }
                },
                None,
            ),
            (
                "a third party paying is flagged",
                |_, d| {
                    if let Some(p) = d.payer.as_mut() {
                        p.role = PersonMet::ThirdParty;
                    }
                },
                Some(Outcome::Flag),
            ),
            (
                "a payment before anyone's identity was confirmed is flagged",
                |w, _| {
                    w.events.truncate(1);
                },
                Some(Outcome::Flag),
            ),
        ],
    );
}

#[test]
fn an_incomplete_receipt_names_every_missing_field_at_once() {
    let world = visiting();
    let mut draft = world.receipt();
    draft.payer = None;
    draft.time = None;
    draft.payer_signature = None;
    let violations = check_receipt(&world.ctx(), &draft);
    assert!(has_blocking(&violations));
    let c02: Vec<_> = violations
        .iter()
        .filter(|v| v.rule == RuleId::C02)
        .collect();
    assert_eq!(c02.len(), 1, "{violations:#?}");
    for field in ["payer", "time", "payer's signature"] {
        assert!(c02[0].message.contains(field), "{}", c02[0].message);
    }
    assert!(!c02[0].message.contains("张三"));
}
