//! Rules during the visit, one table per rule, each action checked before it is recorded.
//! Actors: an agent who cheats the clock, who pressures or discloses, who promises what the
//! bank did not authorise (THREATS.md).

mod rules_support;

use rules_support::*;
use tandem_core::model::{
    Appointment, ConsentScope, DisputeKind, EventKind, PersonMet, PromiseKind, TemplateId,
};
use tandem_core::rules::{ActionInput, Outcome, RuleId, check_action};

type Scenario = (&'static str, fn(&mut World) -> ActionInput, Option<Outcome>);

/// A visit checked in together at 10:00 local.
fn visiting() -> World {
    let mut world = World::new();
    world.record_check_in();
    world
}

fn run(rule: RuleId, table: &[Scenario]) {
    for (name, setup, expected) in table {
        let mut world = visiting();
        let action = setup(&mut world);
        let violations = check_action(&world.ctx(), &action);
        assert_rule(name, &violations, rule, *expected);
    }
}

fn promise(kind: PromiseKind) -> ActionInput {
    ActionInput::Promise { kind }
}

fn confirmed(w: &mut World, person: PersonMet) {
    w.record(EventKind::IdentityConfirmed { person });
}

fn promise_template(w: &World) -> ActionInput {
    let t = &w.approval.templates[0];
    ActionInput::TemplateUsed {
        template_id: t.id,
        version: t.version,
    }
}

#[test]
fn v04_warns_before_the_end_of_hours_and_flags_after() {
    run(
        RuleId::V04,
        &[
            ("a note at 10:00 local", |_| ActionInput::Note, None),
            (
                "a note at 20:50 local warns: hours end in 10 min",
                |w| {
                    w.advance_to_local(20, 50);
                    ActionInput::Note
                },
                Some(Outcome::Warn),
            ),
            (
                "a photo at 21:10 local is flagged",
                |w| {
                    w.advance_to_local(21, 10);
                    ActionInput::Photo { interior: false }
                },
                Some(Outcome::Flag),
            ),
            (
                "21:10 local within a recorded appointment",
                |w| {
                    w.approval.appointment = Some(Appointment {
                        from_ms: shanghai(20, 0),
                        until_ms: shanghai(22, 0),
                    });
                    w.advance_to_local(21, 10);
                    ActionInput::Note
                },
                None,
            ),
            (
                "a reboot mid-visit loses anchored time: flagged, capture goes on",
                |w| {
                    w.clock.reboot();
                    ActionInput::Note
                },
                Some(Outcome::Flag),
            ),
        ],
    );
}

#[test]
fn v07_warns_on_every_audio_gap_without_a_reason() {
    run(
        RuleId::V07,
        &[
            (
                "recording since check-in",
                |w| {
                    w.clock.advance_ms(10 * MINUTE);
                    ActionInput::AudioStatus {
                        open_since_ms: Some(shanghai(10, 0)),
                    }
                },
                None,
            ),
            (
                "recorder stopped ten minutes ago warns",
                |w| {
                    w.record_audio(0, shanghai(10, 0), 5 * MINUTE);
                    w.clock.advance_ms(15 * MINUTE);
                    ActionInput::AudioStatus {
                        open_since_ms: None,
                    }
                },
                Some(Outcome::Warn),
            ),
            (
                "a 30 s gap between segments without a reason warns",
                |w| {
                    w.record_audio(0, shanghai(10, 0), MINUTE);
                    w.record_audio(1, shanghai(10, 1) + 30_000, MINUTE);
                    w.clock.advance_ms(3 * MINUTE);
                    ActionInput::AudioStatus {
                        open_since_ms: Some(shanghai(10, 2) + 30_000),
                    }
                },
                Some(Outcome::Warn),
            ),
            (
                "the same gap with its reason recorded",
                |w| {
                    w.record_audio(0, shanghai(10, 0), MINUTE);
                    w.record(EventKind::AudioGap {
                        from_ms: shanghai(10, 1),
                        until_ms: shanghai(10, 1) + 30_000,
                        reason: "incoming call interrupted the recorder".into(),
                    });
                    w.record_audio(1, shanghai(10, 1) + 30_000, MINUTE);
                    w.clock.advance_ms(3 * MINUTE);
                    ActionInput::AudioStatus {
                        open_since_ms: Some(shanghai(10, 2) + 30_000),
                    }
                },
                None,
            ),
            (
                "a 3 s pause between segments is within tolerance",
                |w| {
                    w.record_audio(0, shanghai(10, 0), MINUTE);
                    w.record_audio(1, shanghai(10, 1) + 3_000, MINUTE);
                    w.clock.advance_ms(3 * MINUTE);
                    ActionInput::AudioStatus {
                        open_since_ms: Some(shanghai(10, 2) + 3_000),
                    }
                },
                None,
            ),
        ],
    );
}

#[test]
fn v08_interior_photos_need_recorded_consent() {
    run(
        RuleId::V08,
        &[
            (
                "a photo outside",
                |_| ActionInput::Photo { interior: false },
                None,
            ),
            (
                "an interior photo without consent is flagged",
                |_| ActionInput::Photo { interior: true },
                Some(Outcome::Flag),
            ),
            (
                "an interior photo after consent to enter",
                |w| {
                    w.record(EventKind::Consent {
                        scope: ConsentScope::EnterPremises,
                    });
                    ActionInput::Photo { interior: true }
                },
                None,
            ),
            (
                "an interior photo after consent to interior photos",
                |w| {
                    w.record(EventKind::Consent {
                        scope: ConsentScope::InteriorPhotos,
                    });
                    ActionInput::Photo { interior: true }
                },
                None,
            ),
        ],
    );
}

#[test]
fn v09_the_debt_is_discussed_only_with_the_confirmed_debtor_or_guarantor() {
    run(
        RuleId::V09,
        &[
            (
                "a promise after the debtor's identity was confirmed",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    promise(PromiseKind::PayInFull)
                },
                None,
            ),
            (
                "a promise from the confirmed guarantor",
                |w| {
                    confirmed(w, PersonMet::Guarantor);
                    promise(PromiseKind::PayInFull)
                },
                None,
            ),
            (
                "a promise before identity was confirmed is flagged",
                |_| promise(PromiseKind::PayInFull),
                Some(Outcome::Flag),
            ),
            (
                "a promise with a third party is flagged",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    confirmed(w, PersonMet::ThirdParty);
                    promise(PromiseKind::PayInFull)
                },
                Some(Outcome::Flag),
            ),
            (
                "the promise template before identity was confirmed is flagged",
                |w| promise_template(w),
                Some(Outcome::Flag),
            ),
        ],
    );
}

#[test]
fn v10_after_a_dispute_no_promise_may_follow() {
    run(
        RuleId::V10,
        &[
            (
                "a promise without any dispute",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    promise(PromiseKind::PayInFull)
                },
                None,
            ),
            (
                "a promise after the debtor disputed the amount blocks",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    w.record(EventKind::Dispute {
                        kind: DisputeKind::DisputesAmount,
                        statement: None,
                        id_front: None,
                        id_back: None,
                    });
                    promise(PromiseKind::PayInFull)
                },
                Some(Outcome::Block),
            ),
            (
                "the promise template after a denied card blocks",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    w.record(EventKind::Dispute {
                        kind: DisputeKind::DeniesCard,
                        statement: None,
                        id_front: None,
                        id_back: None,
                    });
                    promise_template(w)
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v12_only_approved_templates_in_their_approved_version() {
    run(
        RuleId::V12,
        &[
            (
                "the approved letter template",
                |w| {
                    let t = &w.approval.templates[1];
                    ActionInput::TemplateUsed {
                        template_id: t.id,
                        version: t.version,
                    }
                },
                None,
            ),
            (
                "a template not on the approval blocks",
                |_| ActionInput::TemplateUsed {
                    template_id: TemplateId::new(),
                    version: 1,
                },
                Some(Outcome::Block),
            ),
            (
                "an older version of an approved template blocks",
                |w| ActionInput::TemplateUsed {
                    template_id: w.approval.templates[0].id,
                    version: 1,
                },
                Some(Outcome::Block),
            ),
        ],
    );
}

#[test]
fn v13_waiver_instalments_reinstatement_need_the_banks_authorisation() {
    run(
        RuleId::V13,
        &[
            (
                "a promise to pay in full",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    promise(PromiseKind::PayInFull)
                },
                None,
            ),
            (
                "an unauthorised waiver blocks",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    promise(PromiseKind::Waiver)
                },
                Some(Outcome::Block),
            ),
            (
                "an authorised waiver",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    w.approval.promise.waiver = true;
                    promise(PromiseKind::Waiver)
                },
                None,
            ),
            (
                "unauthorised instalments block",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    w.approval.promise.waiver = true;
                    promise(PromiseKind::Instalments)
                },
                Some(Outcome::Block),
            ),
            (
                "an unauthorised reinstatement blocks",
                |w| {
                    confirmed(w, PersonMet::Debtor);
                    promise(PromiseKind::Reinstatement)
                },
                Some(Outcome::Block),
            ),
        ],
    );
}
