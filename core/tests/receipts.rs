//! Signed cash receipts on the phone, end to end: serial ranges, a receipt co-signed by
//! two phones through QR frames, voids, the rules that refuse or flag a receipt, and the
//! payer's receipt image whose QR code anyone can check offline.

use std::sync::Arc;

use tandem_core::Error;
use tandem_core::crypto::PublicKey;
use tandem_core::handshake::{Purpose, StatementView};
use tandem_core::model::{
    Approval, DisputeKind, EventKind, Fen, Payer, PaymentMethod, PersonMet, PromiseKind,
    ReceiptSerial,
};
use tandem_core::phone::{Completed, ManualLocation, ReceiptRequest, VisitAction};
use tandem_core::receipts::{ABANDONED_REASON, ReceiptError, check_receipt_qr, encode_receipt_qr};
use tandem_core::rules::{Outcome, RuleId};
use tandem_core::store::SerialState;
use tandem_core::testing::{Member, Team, World, refusal, signature_png};

/// Two agents on one visit; the approval comes from `approve`; the lead phone holds
/// receipt numbers 100–199; the team is checked in and has confirmed the debtor's identity.
fn team_with(approve: impl Fn(&World, &[&Member]) -> Approval) -> Team {
    let t = Team::approved(approve);
    t.lead
        .accept_serial_range(&t.world.serial_range(t.lead_member.device, 100, 199))
        .unwrap();
    // Checked in the only way there is: the partner's phone answers the lead's challenge.
    t.check_in().unwrap();
    t.lead
        .record(
            t.visit,
            &VisitAction::IdentityConfirmed {
                person: PersonMet::Debtor,
            },
        )
        .unwrap();
    t
}

/// Cash up to ¥5,000.00.
fn team() -> Team {
    team_with(|w, members| w.approval_with_cash(members, Fen(500_000)))
}

fn request(amount: i64) -> ReceiptRequest {
    ReceiptRequest {
        payer: Payer {
            role: PersonMet::Debtor,
            name: "张三".into(),
        },
        amount: Fen(amount),
        method: PaymentMethod::Cash,
        payer_signature_png: signature_png(),
    }
}

/// What these tests do with a team, beyond what the test world gives.
trait ReceiptTeam {
    fn team_keys(&self) -> Vec<PublicKey>;
    /// Shows `frames` to the partner phone, which reviews and answers; the lead completes.
    fn completed(&self, frames: &[String]) -> Completed;
    fn issue(&self, amount: i64) -> ReceiptSerial;
    fn serials(&self) -> Vec<(u64, SerialState)>;
}

impl ReceiptTeam for Team {
    fn team_keys(&self) -> Vec<PublicKey> {
        vec![
            self.lead_member.key.clone(),
            self.partner_member.key.clone(),
        ]
    }

    fn completed(&self, frames: &[String]) -> Completed {
        self.co_sign(frames.to_vec()).unwrap()
    }

    fn issue(&self, amount: i64) -> ReceiptSerial {
        let frames = self
            .lead
            .begin_receipt(self.visit, &request(amount))
            .unwrap();
        match self.completed(&frames) {
            Completed::ReceiptIssued(recorded) => match recorded.event.kind {
                EventKind::ReceiptIssued { serial, .. } => serial,
                other => panic!("expected a receipt event, got {other:?}"),
            },
            other => panic!("expected a receipt, got {other:?}"),
        }
    }

    fn serials(&self) -> Vec<(u64, SerialState)> {
        self.lead
            .receipt_serials()
            .unwrap()
            .into_iter()
            .map(|e| (e.serial.0, e.state))
            .collect()
    }
}

#[test]
fn a_receipt_is_co_signed_by_two_phones_through_qr_frames_and_kept_with_both_signatures() {
    let t = team();
    let frames = t.lead.begin_receipt(t.visit, &request(120_000)).unwrap();
    let review = t.partner.review_challenge(&frames).unwrap();
    let StatementView::Receipt(view) = &review.summary().statement else {
        panic!("the partner must be shown a receipt")
    };
    assert_eq!(review.summary().purpose, Purpose::Receipt);
    assert_eq!((view.serial, view.amount), (100, Fen(120_000)));
    assert_eq!(view.payer_role, PersonMet::Debtor);
    assert_eq!(view.currency, "CNY");
    let reply = t.partner.answer_challenge(&review).unwrap();
    let Completed::ReceiptIssued(recorded) = t.lead.complete(&reply).unwrap() else {
        panic!("expected a receipt")
    };
    assert!(recorded.violations.is_empty(), "{:?}", recorded.violations);
    let EventKind::ReceiptIssued {
        serial,
        amount,
        payer_signature,
        cosignature,
    } = &recorded.event.kind
    else {
        panic!("expected a receipt event")
    };
    assert_eq!((*serial, *amount), (ReceiptSerial(100), Fen(120_000)));
    // C02: both agents' signatures over the statement.
    cosignature
        .lead
        .verify(
            &t.lead_member.key,
            "receipt",
            cosignature.statement.as_bytes(),
        )
        .unwrap();
    cosignature
        .partner
        .verify(
            &t.partner_member.key,
            "receipt",
            cosignature.statement.as_bytes(),
        )
        .unwrap();
    // The payer's signature image is evidence of the visit.
    assert!(t.lead.blobs().contains(payer_signature).unwrap());
    let evidence = t.lead.store().read(|tx| tx.evidence(t.visit)).unwrap();
    assert!(evidence.iter().any(|e| e.item.digest == *payer_signature
        && e.item.role == tandem_core::store::EvidenceRole::Signature
        && e.item.media_type == "image/png"));
    let receipt = t.lead.receipt(ReceiptSerial(100)).unwrap();
    let content = receipt.content().unwrap();
    assert_eq!(content.fee, Fen(0));
    assert_eq!(content.designated_account, "6222 0210 0012 3456 789");
    assert_eq!(content.payer_signature, *payer_signature);
    assert_eq!(t.serials(), vec![(100, SerialState::Issued)]);
    assert!(t.lead.events(t.visit).unwrap().contains(&recorded.event));
}

#[test]
fn serials_are_gapless_across_receipts_a_reopen_and_an_abandoned_reservation() {
    let t = team();
    assert_eq!(t.issue(10_000), ReceiptSerial(100));
    assert_eq!(t.issue(10_000), ReceiptSerial(101));
    // A receipt begun, never co-signed, and the app killed.
    t.lead.begin_receipt(t.visit, &request(10_000)).unwrap();
    let t = t.reopen_lead();
    assert_eq!(t.serials().last(), Some(&(102, SerialState::Reserved)));
    // The next receipt voids the abandoned number instead of reusing it.
    assert_eq!(t.issue(10_000), ReceiptSerial(103));
    assert_eq!(
        t.serials(),
        vec![
            (100, SerialState::Issued),
            (101, SerialState::Issued),
            (102, SerialState::Voided),
            (103, SerialState::Issued),
        ]
    );
    let voided = t.lead.receipt_serials().unwrap()[2].clone();
    assert_eq!(voided.void_reason.as_deref(), Some(ABANDONED_REASON));
    let void_event = t
        .lead
        .events(t.visit)
        .unwrap()
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::ReceiptVoided {
                serial,
                reason,
                statement,
                lead,
                partner,
            } => Some((serial, reason, statement, lead, partner)),
            _ => None,
        })
        .expect("the abandoned number is voided in the visit's log");
    let (serial, reason, statement, lead, partner) = void_event;
    assert_eq!(
        (serial, reason.as_str()),
        (ReceiptSerial(102), ABANDONED_REASON)
    );
    assert!(
        partner.is_none(),
        "an abandoned number is voided by the lead alone"
    );
    lead.verify(&t.lead_member.key, "void", statement.as_bytes())
        .unwrap();
}

#[test]
fn a_challenge_abandoned_on_screen_cannot_be_completed_after_its_number_is_voided() {
    let t = team();
    let first = t.lead.begin_receipt(t.visit, &request(10_000)).unwrap();
    let review = t.partner.review_challenge(&first).unwrap();
    let late_reply = t.partner.answer_challenge(&review).unwrap();
    let second = t.lead.begin_receipt(t.visit, &request(20_000)).unwrap();
    // The first number was voided when the second receipt began: its reply finds nothing.
    assert!(matches!(
        t.lead.complete(&late_reply),
        Err(Error::NotFound { .. })
    ));
    let Completed::ReceiptIssued(_) = t.completed(&second) else {
        panic!("expected a receipt")
    };
    assert_eq!(
        t.serials(),
        vec![(100, SerialState::Voided), (101, SerialState::Issued)]
    );
}

#[test]
fn a_void_is_co_signed_and_the_receipt_stays_marked_voided() {
    let t = team();
    let serial = t.issue(30_000);
    let frames = t
        .lead
        .begin_void(t.visit, serial, "wrong amount written")
        .unwrap();
    let review = t.partner.review_challenge(&frames).unwrap();
    let StatementView::Void(statement) = &review.summary().statement else {
        panic!("the partner must be shown a void")
    };
    assert_eq!(statement.serial, serial.0);
    let reply = t.partner.answer_challenge(&review).unwrap();
    let Completed::ReceiptVoided(recorded) = t.lead.complete(&reply).unwrap() else {
        panic!("expected a void")
    };
    let EventKind::ReceiptVoided {
        reason,
        partner: Some(partner),
        statement,
        ..
    } = &recorded.event.kind
    else {
        panic!("expected a co-signed void")
    };
    assert_eq!(reason, "wrong amount written");
    partner
        .verify(&t.partner_member.key, "void", statement.as_bytes())
        .unwrap();
    // The receipt is still there, voided, and its amount no longer counts towards C01.
    assert!(t.lead.receipt(serial).is_ok());
    assert_eq!(t.serials(), vec![(100, SerialState::Voided)]);
    assert!(t.lead.events(t.visit).unwrap().iter().any(|e| matches!(
        e.kind,
        EventKind::ReceiptIssued { serial: s, .. } if s == serial
    )));
    assert!(matches!(
        t.lead.begin_void(t.visit, serial, "again"),
        Err(Error::Receipt(ReceiptError::AlreadyVoided { .. }))
    ));
    assert_eq!(t.issue(500_000), ReceiptSerial(101));
}

#[test]
fn without_cash_authorisation_no_receipt_is_begun_and_no_number_is_taken() {
    let t = team_with(|w, members| w.approval(members));
    let (rule, _) = refusal(t.lead.begin_receipt(t.visit, &request(10_000)));
    assert_eq!(rule, RuleId::C01);
    assert!(t.serials().is_empty());
}

#[test]
fn an_amount_over_the_limit_counting_earlier_receipts_is_refused_c01() {
    let t = team();
    t.issue(400_000);
    let (rule, message) = refusal(t.lead.begin_receipt(t.visit, &request(100_001)));
    assert_eq!(rule, RuleId::C01);
    assert!(message.contains("limit"), "{message}");
    assert_eq!(t.serials(), vec![(100, SerialState::Issued)]);
    // Exactly up to the limit is fine.
    assert_eq!(t.issue(100_000), ReceiptSerial(101));
}

#[test]
fn a_method_the_bank_did_not_authorise_is_refused_c01() {
    let t = team();
    let cheque = ReceiptRequest {
        method: PaymentMethod::Cheque,
        ..request(10_000)
    };
    assert_eq!(
        refusal(t.lead.begin_receipt(t.visit, &cheque)).0,
        RuleId::C01
    );
}

#[test]
fn a_receipt_without_the_payers_signature_is_incomplete_c02() {
    let t = team();
    let unsigned = ReceiptRequest {
        payer_signature_png: Vec::new(),
        ..request(10_000)
    };
    let (rule, message) = refusal(t.lead.begin_receipt(t.visit, &unsigned));
    assert_eq!(rule, RuleId::C02);
    assert!(message.contains("payer's signature"), "{message}");
    assert!(t.serials().is_empty());
}

#[test]
fn a_signature_image_that_is_not_a_png_is_refused_and_not_kept() {
    let t = team();
    let mut png = signature_png();
    png.truncate(png.len() / 2);
    let bad = ReceiptRequest {
        payer_signature_png: png,
        ..request(10_000)
    };
    let err = t.lead.begin_receipt(t.visit, &bad).unwrap_err();
    assert!(
        matches!(&err, Error::Receipt(ReceiptError::NotPng(_))),
        "{err}"
    );
    assert!(t.serials().is_empty());
}

#[test]
fn a_receipt_after_a_recorded_dispute_is_refused_v10() {
    let t = team();
    t.lead
        .record(
            t.visit,
            &VisitAction::Dispute {
                kind: DisputeKind::DisputesAmount,
                statement: None,
                id_front: None,
                id_back: None,
            },
        )
        .unwrap();
    assert_eq!(
        refusal(t.lead.begin_receipt(t.visit, &request(10_000))).0,
        RuleId::V10
    );
    assert!(t.serials().is_empty());
}

#[test]
fn a_dispute_recorded_while_the_partner_co_signs_still_stops_the_receipt_v10() {
    let t = team();
    let frames = t.lead.begin_receipt(t.visit, &request(10_000)).unwrap();
    let review = t.partner.review_challenge(&frames).unwrap();
    let reply = t.partner.answer_challenge(&review).unwrap();
    t.lead
        .record(
            t.visit,
            &VisitAction::Dispute {
                kind: DisputeKind::DeniesCard,
                statement: None,
                id_front: None,
                id_back: None,
            },
        )
        .unwrap();
    assert_eq!(refusal(t.lead.complete(&reply)).0, RuleId::V10);
    assert_eq!(t.serials(), vec![(100, SerialState::Reserved)]);
}

#[test]
fn money_from_a_third_party_is_flagged_v09_and_recorded() {
    let t = team();
    let third = ReceiptRequest {
        payer: Payer {
            role: PersonMet::ThirdParty,
            name: "李四".into(),
        },
        ..request(10_000)
    };
    let frames = t.lead.begin_receipt(t.visit, &third).unwrap();
    let Completed::ReceiptIssued(recorded) = t.completed(&frames) else {
        panic!("expected a receipt")
    };
    assert!(
        recorded
            .violations
            .iter()
            .any(|v| v.rule == RuleId::V09 && v.outcome == Outcome::Flag)
    );
    assert!(t.lead.events(t.visit).unwrap().iter().any(|e| matches!(
        e.kind,
        EventKind::RuleFlag {
            rule: RuleId::V09,
            outcome: Outcome::Flag,
            ..
        }
    )));
}

#[test]
fn a_promise_of_a_waiver_without_the_banks_authorisation_is_refused_v13() {
    let t = team();
    let promise = VisitAction::Promise {
        kind: PromiseKind::Waiver,
        amount: Fen(100_000),
        due_ms: t.world.start_ms + 86_400_000,
    };
    assert_eq!(refusal(t.lead.record(t.visit, &promise)).0, RuleId::V13);
}

#[test]
fn when_the_range_is_used_up_the_phone_says_so_c02() {
    let t = team_with(|w, members| w.approval_with_cash(members, Fen(500_000)));
    // A second, small range: 100–199 is held; take a phone whose only range is tiny.
    let world = &t.world;
    let dir = tempfile::tempdir().unwrap();
    let location = Arc::new(ManualLocation::new(Some(world.fix_near_address(20, 10))));
    let (phone, member) = world
        .open_phone(dir.path(), t.clock.clone(), location)
        .unwrap();
    let approval = world.approval_with_cash(&[&member, &t.partner_member], Fen(500_000));
    let ticket = world.ticket(&approval);
    let visit = world
        .assign(&phone, &member, &approval, &ticket, world.start_ms)
        .unwrap();
    world
        .assign(
            &t.partner,
            &t.partner_member,
            &approval,
            &ticket,
            world.start_ms,
        )
        .unwrap();
    phone
        .accept_serial_range(&world.serial_range(member.device, 7, 8))
        .unwrap();
    let shown = phone.begin_check_in(visit, None).unwrap();
    let review = t.partner.review_challenge(&shown).unwrap();
    let reply = t.partner.answer_challenge(&review).unwrap();
    assert!(matches!(
        phone.complete(&reply).unwrap(),
        Completed::CheckedIn(_)
    ));
    for expected in [7, 8] {
        let frames = phone.begin_receipt(visit, &request(1_000)).unwrap();
        let review = t.partner.review_challenge(&frames).unwrap();
        let reply = t.partner.answer_challenge(&review).unwrap();
        let Completed::ReceiptIssued(r) = phone.complete(&reply).unwrap() else {
            panic!("expected a receipt")
        };
        assert!(
            matches!(r.event.kind, EventKind::ReceiptIssued { serial, .. } if serial.0 == expected)
        );
    }
    let (rule, message) = refusal(phone.begin_receipt(visit, &request(1_000)));
    assert_eq!(rule, RuleId::C02);
    assert!(message.contains("no receipt numbers left"), "{message}");
    // A new range carries on where the server says.
    phone
        .accept_serial_range(&world.serial_range(member.device, 500, 599))
        .unwrap();
    assert!(phone.begin_receipt(visit, &request(1_000)).is_ok());
}

#[test]
fn a_range_for_another_phone_or_overlapping_one_held_is_refused() {
    let t = team();
    let err = t
        .lead
        .accept_serial_range(&t.world.serial_range(t.partner_member.device, 1, 10))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Receipt(ReceiptError::RangeForAnotherDevice { .. })
        ),
        "{err}"
    );
    let err = t
        .lead
        .accept_serial_range(&t.world.serial_range(t.lead_member.device, 150, 250))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Receipt(ReceiptError::RangeRefused { .. })),
        "{err}"
    );
    // The same range again is harmless.
    t.lead
        .accept_serial_range(&t.world.serial_range(t.lead_member.device, 100, 199))
        .unwrap();
}

fn qr_text_in(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        img.width() as usize,
        img.height() as usize,
        |x, y| img.get_pixel(x as u32, y as u32)[0],
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the receipt image");
    grids[0].decode().unwrap().1
}

#[test]
fn the_receipt_image_carries_a_qr_code_that_checks_offline() {
    let t = team();
    let serial = t.issue(123_456);
    let png = t.lead.receipt_png(t.visit, serial).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let text = qr_text_in(&png);
    assert_eq!(
        text,
        encode_receipt_qr(&t.lead.receipt(serial).unwrap()).unwrap()
    );
    let check = check_receipt_qr(&text, &t.team_keys()).unwrap();
    assert_eq!(check.serial, serial);
    assert_eq!(check.amount, Fen(123_456));
    assert_eq!(check.currency, "CNY");
    assert_eq!(check.visit_id, t.visit);
    assert_eq!(
        check.signers,
        [t.lead_member.key.kid(), t.partner_member.key.kid()]
    );
}

#[test]
fn a_tampered_receipt_code_fails_the_check() {
    let t = team();
    let serial = t.issue(10_000);
    let receipt = t.lead.receipt(serial).unwrap();
    // The amount raised in the statement: the signatures no longer match.
    let forged = tandem_core::receipts::SignedReceipt {
        statement: receipt
            .statement
            .replace("\"amount\":10000", "\"amount\":90000"),
        ..receipt.clone()
    };
    assert_ne!(forged.statement, receipt.statement);
    let text = encode_receipt_qr(&forged).unwrap();
    assert!(matches!(
        check_receipt_qr(&text, &t.team_keys()),
        Err(ReceiptError::BadSignature { which: "lead" })
    ));
    // A character changed in the code text itself.
    let good = encode_receipt_qr(&receipt).unwrap();
    let mut chars: Vec<char> = good.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert!(check_receipt_qr(&tampered, &t.team_keys()).is_err());
    // Checked against keys outside the team.
    assert!(matches!(
        check_receipt_qr(&good, std::slice::from_ref(&t.lead_member.key)),
        Err(ReceiptError::BadSignature { which: "partner" })
    ));
    // Both signatures by one agent's key are not a receipt.
    let doubled = tandem_core::receipts::SignedReceipt {
        partner: receipt.lead.clone(),
        ..receipt
    };
    assert!(matches!(
        check_receipt_qr(&encode_receipt_qr(&doubled).unwrap(), &t.team_keys()),
        Err(ReceiptError::SameSigner)
    ));
}

#[test]
fn receipt_numbers_cannot_be_deleted_or_taken_back_even_by_editing_the_database() {
    // Actor: someone with the phone's files trying to hide a receipt.
    let t = team();
    let serial = t.issue(10_000);
    let conn = rusqlite::Connection::open(t.lead_dir.join("device.db")).unwrap();
    let deleted = conn.execute(
        "DELETE FROM receipt_serials WHERE serial = ?1",
        [serial.0 as i64],
    );
    assert!(deleted.unwrap_err().to_string().contains("never deleted"));
    let reverted = conn.execute(
        "UPDATE receipt_serials SET state = 'reserved', receipt = NULL WHERE serial = ?1",
        [serial.0 as i64],
    );
    assert!(reverted.unwrap_err().to_string().contains("only moves"));
    assert_eq!(t.serials(), vec![(100, SerialState::Issued)]);
}

#[test]
fn the_receipt_code_fits_one_qr_code_comfortably() {
    let t = team();
    let serial = t.issue(10_000);
    let text = encode_receipt_qr(&t.lead.receipt(serial).unwrap()).unwrap();
    // Base45 text only (QR alphanumeric mode), well under a version-40 code's 4,296.
    assert!(text.len() < 1_600, "{} characters", text.len());
    assert!(
        text.chars()
            .all(|c| "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(c))
    );
}

#[test]
fn a_signature_image_too_large_to_decode_safely_is_refused() {
    // Actor: a tampered shell feeding a decompression bomb as the payer's signature.
    let t = team();
    let img = image::GrayImage::new(5_000, 10);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let bomb = ReceiptRequest {
        payer_signature_png: png.into_inner(),
        ..request(10_000)
    };
    let err = t.lead.begin_receipt(t.visit, &bomb).unwrap_err();
    assert!(
        matches!(&err, Error::Receipt(ReceiptError::NotPng(_))),
        "{err}"
    );
    assert!(t.serials().is_empty());
}

proptest::proptest! {
    /// Whatever a scanner hands over, the check answers with an error, never a panic.
    #[test]
    fn any_code_text_is_checked_without_panicking(text in "[0-9A-Z $%*+./:-]{0,400}") {
        let keys = Vec::new();
        proptest::prop_assert!(check_receipt_qr(&text, &keys).is_err());
    }

    /// Any bytes under the base45 layer are refused cleanly too.
    #[test]
    fn any_decoded_bytes_are_checked_without_panicking(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let text = base45::encode(&bytes);
        proptest::prop_assert!(check_receipt_qr(&text, &[]).is_err());
    }
}
