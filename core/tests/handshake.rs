//! The two-person handshake between two real phones' keys, through QR frames.
//! Actors: a lone agent (V03), an agent faking place (V05), anyone replaying or forging a
//! code, anyone sending bad input (THREATS.md).

use std::collections::HashSet;

use proptest::prelude::*;
use tandem_core::canonical::to_canonical_vec;
use tandem_core::crypto::{Digest, PublicKey, SignatureAlgorithm, Signer, SoftwareSigner, sha256};
use tandem_core::handshake::{
    ApprovedVisit, Challenge, CheckInStatement, CheckOutStatement, CheckedChallenge, CoSigned,
    FrameAssembler, FrameError, FrameProgress, HandshakeError, Limits, LocalAgent, Message, Nonce,
    OutstandingChallenge, Party, PayloadError, Purpose, Reply, Role, StatementView, VoidStatement,
    check_challenge, create_challenge, from_frames, to_frames,
};
use tandem_core::model::{
    AddressId, AgentId, Approval, ApprovalId, AuthorisationLetter, BankId, CaseId,
    CashAuthorisation, DerivedBlob, DeviceId, Event, EventKind, EventTime, Fen, PaymentMethod,
    PersonMet, PromiseAuthorisation, Signed, TeamMember, VisitId,
};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use tandem_core::rules::RuleId;

const NOW: i64 = 1_796_000_000_000;
const TTL: i64 = 300_000;
const LIMITS: Limits = Limits {
    partner_max_distance_m: 50,
    handshake_ttl_ms: TTL,
};
/// Shanghai, in 1e-7 degrees.
const LAT: i32 = 312_304_000;
const LON: i32 = 1_214_737_000;

struct Phone {
    agent: AgentId,
    device: DeviceId,
    signer: SoftwareSigner,
}

impl Phone {
    fn new() -> Self {
        Self {
            agent: AgentId::new(),
            device: DeviceId::new(),
            signer: SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
                .unwrap()
                .0,
        }
    }

    fn me(&self) -> LocalAgent<'_> {
        LocalAgent {
            agent_id: self.agent,
            device_id: self.device,
            signer: &self.signer,
        }
    }

    fn member(&self) -> TeamMember {
        TeamMember {
            agent_id: self.agent,
            device_id: self.device,
            public_key: self.signer.public_key(),
        }
    }

    fn key(&self) -> PublicKey {
        self.signer.public_key()
    }
}

/// A fix `north_e7` (1e-7 degree ≈ 1.1 cm) north of the address.
fn fix(north_e7: i32) -> Fix {
    Fix {
        coordinate: Coordinate::new(LAT + north_e7, LON, Datum::Wgs84).unwrap(),
        accuracy_m: 8,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: NOW,
    }
}

fn at(ms: i64) -> EventTime {
    EventTime {
        wall_ms: ms + 40,
        anchor_ms: Some(ms - 60_000),
        since_anchor_ms: Some(60_000),
    }
}

fn approval(team: Vec<TeamMember>, address: AddressId) -> Approval {
    Approval {
        id: ApprovalId::new(),
        bank_id: BankId::new(),
        case_id: CaseId::new(),
        address_ids: vec![address],
        team,
        valid_from_ms: NOW - 86_400_000,
        valid_until_ms: NOW + 86_400_000,
        letter: AuthorisationLetter {
            number: "WT-2026-0042".into(),
            valid_until_ms: NOW + 30 * 86_400_000,
        },
        cash: Some(CashAuthorisation {
            limit: Fen(500_000),
            currency: "CNY".into(),
            designated_account: "6222****1234".into(),
            methods: vec![PaymentMethod::Cash],
        }),
        promise: PromiseAuthorisation::default(),
        appointment: None,
        templates: vec![],
        health_review_done: false,
        policy_version: 1,
        approved_at_ms: NOW - 86_400_000,
    }
}

/// Two agents on an approved visit, each with their own phone.
struct Scene {
    server: SoftwareSigner,
    lead: Phone,
    partner: Phone,
    address: AddressId,
    visit_id: VisitId,
    signed: Signed<Approval>,
    visit: ApprovedVisit,
}

impl Scene {
    fn new() -> Self {
        Self::with_extra_members(|_, _| vec![])
    }

    /// A scene whose team also has the members `extra` builds from the lead and partner.
    fn with_extra_members(extra: impl FnOnce(&Phone, &Phone) -> Vec<TeamMember>) -> Self {
        let server = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
            .unwrap()
            .0;
        let (lead, partner) = (Phone::new(), Phone::new());
        let address = AddressId::new();
        let mut team = vec![lead.member(), partner.member()];
        team.extend(extra(&lead, &partner));
        let signed = Signed::sign(&approval(team, address), &server).unwrap();
        let visit_id = VisitId::new();
        let visit = ApprovedVisit::verify(visit_id, &signed, &server.public_key()).unwrap();
        Self {
            server,
            lead,
            partner,
            address,
            visit_id,
            signed,
            visit,
        }
    }

    fn check_in(&self) -> Vec<u8> {
        to_canonical_vec(&CheckInStatement {
            visit_id: self.visit_id,
            address_id: self.address,
            at_ms: NOW,
        })
        .unwrap()
    }

    fn challenge(&self, purpose: Purpose, statement: Vec<u8>) -> OutstandingChallenge {
        create_challenge(
            &self.visit,
            &self.lead.me(),
            purpose,
            statement,
            fix(0),
            at(NOW),
            &LIMITS,
        )
        .unwrap()
    }

    /// The partner, 10 s later and about 2 m away, checks a payload.
    fn partner_checks(&self, payload: &[u8]) -> Result<CheckedChallenge, HandshakeError> {
        check_challenge(
            payload,
            &self.visit,
            &self.partner.me(),
            fix(180),
            at(NOW + 10_000),
            &LIMITS,
            &HashSet::new(),
        )
    }

    /// A check-in challenge changed by `edit` and signed again with the lead's real key.
    fn resigned(&self, edit: impl FnOnce(&mut Challenge)) -> Vec<u8> {
        let mut c = self
            .challenge(Purpose::CheckIn, self.check_in())
            .challenge()
            .clone();
        edit(&mut c);
        c.sign(&self.lead.signer).unwrap();
        c.encode().unwrap()
    }

    /// A check-in challenge and the partner's reply payload.
    fn replied(&self) -> (OutstandingChallenge, Vec<u8>) {
        let out = self.challenge(Purpose::CheckIn, self.check_in());
        let checked = self.partner_checks(out.payload()).unwrap();
        let reply = checked
            .reply(&self.partner.signer, &mut HashSet::new())
            .unwrap();
        (out, reply.payload().to_vec())
    }

    fn lead_accepts(
        &self,
        out: &OutstandingChallenge,
        reply: &[u8],
    ) -> Result<CoSigned, HandshakeError> {
        out.accept_reply(&self.visit, reply, at(NOW + 20_000), &LIMITS)
    }
}

/// Shows frames, scans them on the other phone (reversed, each shown twice) and reassembles.
fn scan(frames: &[String]) -> Vec<u8> {
    let mut assembler = FrameAssembler::new();
    let mut last = None;
    for frame in frames.iter().rev().chain(frames.iter()) {
        last = Some(assembler.accept(frame).unwrap());
    }
    match last {
        Some(FrameProgress::Complete(payload)) => payload,
        other => panic!("not complete: {other:?}"),
    }
}

/// The whole handshake through QR frames; returns the summary shown and the co-signed result.
fn full_round(scene: &Scene, purpose: Purpose, statement: Vec<u8>) -> (StatementView, CoSigned) {
    let out = scene.challenge(purpose, statement.clone());
    let challenge_frames = out.frames().unwrap();
    let checked = scene.partner_checks(&scan(&challenge_frames)).unwrap();
    let summary = checked.summary().clone();
    assert_eq!(summary.purpose, purpose);
    assert_eq!(summary.visit_id, scene.visit_id);
    assert_eq!(summary.lead_agent, scene.lead.agent);
    assert_eq!(summary.statement_digest, sha256(&statement));
    let mut seen = HashSet::new();
    let reply = checked.reply(&scene.partner.signer, &mut seen).unwrap();
    assert!(seen.contains(&out.challenge().nonce));
    let co = scene
        .lead_accepts(&out, &scan(&reply.frames().unwrap()))
        .unwrap();
    assert_eq!(co.statement, statement);
    assert_eq!(co.lead.agent_id, scene.lead.agent);
    assert_eq!(co.partner.agent_id, scene.partner.agent);
    // Both signatures are ordinary `tandem/v1/<purpose>` signatures over the statement.
    let sp = purpose.signature_purpose();
    co.lead_signature
        .verify(&scene.lead.key(), sp, &statement)
        .unwrap();
    co.partner_signature
        .verify(&scene.partner.key(), sp, &statement)
        .unwrap();
    (summary.statement, co)
}

fn event(visit: VisitId, seq: u64, by: AgentId, kind: EventKind) -> Event {
    Event {
        visit_id: visit,
        seq,
        prev: Digest::ZERO,
        at: at(NOW + seq as i64 * 1000),
        fix: Some(fix(0)),
        by,
        kind,
    }
}

fn manifest(scene: &Scene) -> Vec<u8> {
    let mut events = Vec::new();
    for seq in 0..12u64 {
        let digest = sha256(&seq.to_be_bytes());
        let kind = match seq % 3 {
            0 => EventKind::Photo {
                original: digest,
                size: 2_000_000,
                media_type: "image/jpeg".into(),
                width: 4000,
                height: 3000,
                exif_time_ms: Some(NOW),
                thumbnail: DerivedBlob {
                    digest,
                    size: 20_000,
                    media_type: "image/jpeg".into(),
                },
                interior: false,
            },
            1 => EventKind::AudioSegment {
                index: seq as u32,
                digest,
                size: 1_920_044,
                start_ms: NOW,
                duration_ms: 60_000,
                recovered: false,
            },
            _ => EventKind::Note {
                text: format!("note {seq}"),
            },
        };
        events.push(event(scene.visit_id, seq, scene.lead.agent, kind));
    }
    let doc = serde_json::json!({
        "format": "tandem-bundle/v1",
        "visit": { "visit_id": scene.visit_id, "approval_digest": scene.signed.digest() },
        "events": events,
        "blobs": [{ "sha256": sha256(b"a") }, { "sha256": sha256(b"b") }],
    });
    to_canonical_vec(&doc).unwrap()
}

fn receipt(scene: &Scene, visit: VisitId) -> Vec<u8> {
    let doc = serde_json::json!({
        "serial": 1_000_000_042u64,
        "visit_id": visit,
        "case_id": scene.visit.approval().case_id,
        "payer": { "role": "debtor", "name": "张三" },
        "amount": 150_000,
        "currency": "CNY",
        "method": "cash",
        "designated_account": "6222****1234",
        "fee": 0,
        "time": at(NOW),
        "place": fix(0),
        "payer_signature": sha256(b"signature image"),
    });
    to_canonical_vec(&doc).unwrap()
}

// ---- round trips ----

#[test]
fn two_agents_check_in_together_through_qr_frames() {
    let scene = Scene::new();
    let (view, co) = full_round(&scene, Purpose::CheckIn, scene.check_in());
    assert_eq!(
        view,
        StatementView::CheckIn(CheckInStatement {
            visit_id: scene.visit_id,
            address_id: scene.address,
            at_ms: NOW,
        })
    );
    assert_eq!(co.purpose, Purpose::CheckIn);
    assert!(co.partner_distance_m <= 3, "{}", co.partner_distance_m);
    assert_eq!(co.partner_fix, fix(180));
}

#[test]
fn a_receipt_is_co_signed_and_the_partner_sees_serial_amount_payer_and_method() {
    let scene = Scene::new();
    let (view, co) = full_round(&scene, Purpose::Receipt, receipt(&scene, scene.visit_id));
    let StatementView::Receipt(r) = view else {
        panic!("not a receipt view: {view:?}");
    };
    assert_eq!(r.serial, 1_000_000_042);
    assert_eq!(r.amount, Fen(150_000));
    assert_eq!(r.method, PaymentMethod::Cash);
    assert_eq!(
        (r.payer_role, r.payer_name.as_str()),
        (PersonMet::Debtor, "张三")
    );
    assert_eq!(co.partner_signature.kid, scene.partner.key().kid());
    // The payer's name never reaches a debug log.
    assert!(!format!("{r:?}").contains("张三"));
}

#[test]
fn a_seal_spans_several_frames_and_its_partner_signature_is_a_manifest_signature() {
    let scene = Scene::new();
    let manifest = manifest(&scene);
    assert!(manifest.len() > 2_000, "{}", manifest.len());
    let out = scene.challenge(Purpose::Seal, manifest.clone());
    assert!(out.frames().unwrap().len() >= 3);
    let (view, co) = full_round(&scene, Purpose::Seal, manifest.clone());
    assert_eq!(
        view,
        StatementView::Seal {
            events: 12,
            photos: 4,
            audio_segments: 4,
            blobs: 2,
            manifest_digest: sha256(&manifest),
        }
    );
    // Exactly what signatures.json holds: `"tandem/v1/manifest\n" || sha256(manifest.json)`.
    let mut input = b"tandem/v1/manifest\n".to_vec();
    input.extend_from_slice(sha256(&manifest).as_bytes());
    scene
        .partner
        .key()
        .verify_raw(&input, &co.partner_signature.sig, "manifest")
        .unwrap();
}

#[test]
fn check_out_and_void_statements_are_shown_as_typed() {
    let scene = Scene::new();
    let out = CheckOutStatement {
        visit_id: scene.visit_id,
        address_id: scene.address,
        checked_in_at_ms: NOW - 3_600_000,
        at_ms: NOW,
    };
    let (view, _) = full_round(&scene, Purpose::CheckOut, to_canonical_vec(&out).unwrap());
    assert_eq!(view, StatementView::CheckOut(out));
    let void = VoidStatement {
        visit_id: scene.visit_id,
        serial: 1_000_000_042,
        reason: "amount written wrongly".into(),
    };
    let (view, _) = full_round(&scene, Purpose::Void, to_canonical_vec(&void).unwrap());
    assert_eq!(view, StatementView::Void(void));
}

#[test]
fn p256_phones_complete_the_handshake() {
    let mut scene = Scene::new();
    scene.partner.signer = SoftwareSigner::generate(SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap()
        .0;
    let team = vec![scene.lead.member(), scene.partner.member()];
    scene.signed = Signed::sign(&approval(team, scene.address), &scene.server).unwrap();
    scene.visit =
        ApprovedVisit::verify(scene.visit_id, &scene.signed, &scene.server.public_key()).unwrap();
    let (_, co) = full_round(&scene, Purpose::CheckIn, scene.check_in());
    assert_eq!(co.partner.alg, SignatureAlgorithm::EcdsaP256Sha256);
}

// ---- refusals on the partner phone ----

fn refused(result: Result<CheckedChallenge, HandshakeError>) -> HandshakeError {
    match result {
        Ok(_) => panic!("the partner accepted a challenge it must refuse"),
        Err(e) => e,
    }
}

#[test]
fn a_challenge_for_another_visit_is_refused_under_v03() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let other =
        ApprovedVisit::verify(VisitId::new(), &scene.signed, &scene.server.public_key()).unwrap();
    let err = refused(check_challenge(
        out.payload(),
        &other,
        &scene.partner.me(),
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(err, HandshakeError::WrongVisit { found, .. } if found == scene.visit_id));
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn phones_holding_different_approvals_are_refused_under_v03() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let mut newer = scene.visit.approval().clone();
    newer.policy_version = 2;
    let signed = Signed::sign(&newer, &scene.server).unwrap();
    let partner_visit =
        ApprovedVisit::verify(scene.visit_id, &signed, &scene.server.public_key()).unwrap();
    let err = refused(check_challenge(
        out.payload(),
        &partner_visit,
        &scene.partner.me(),
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(
        matches!(err, HandshakeError::ApprovalMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn an_approval_not_signed_by_the_server_is_refused_under_v02() {
    let scene = Scene::new();
    let forger = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
        .unwrap()
        .0;
    let forged = Signed::sign(scene.visit.approval(), &forger).unwrap();
    let err = ApprovedVisit::verify(scene.visit_id, &forged, &scene.server.public_key())
        .err()
        .unwrap();
    assert!(matches!(err, HandshakeError::Approval(_)), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V02));
}

#[test]
fn a_lead_who_is_not_on_the_team_is_refused_under_v03() {
    let scene = Scene::new();
    let stranger = AgentId::new();
    let err = refused(scene.partner_checks(&scene.resigned(|c| c.lead.agent_id = stranger)));
    assert!(matches!(
        err,
        HandshakeError::NotOnTeam { role: Role::Lead, agent } if agent == stranger
    ));
    assert_eq!(err.rule(), Some(RuleId::V03));
    // The lead's own phone will not even make the challenge.
    let outsider = Phone::new();
    let err = create_challenge(
        &scene.visit,
        &outsider.me(),
        Purpose::CheckIn,
        scene.check_in(),
        fix(0),
        at(NOW),
        &LIMITS,
    )
    .err()
    .unwrap();
    assert!(matches!(
        err,
        HandshakeError::NotOnTeam {
            role: Role::Lead,
            ..
        }
    ));
}

#[test]
fn a_lead_on_the_team_but_with_another_phone_is_refused_under_v03() {
    let scene = Scene::new();
    let err =
        refused(scene.partner_checks(&scene.resigned(|c| c.lead.device_id = DeviceId::new())));
    assert!(matches!(
        err,
        HandshakeError::UnknownDevice {
            role: Role::Lead,
            ..
        }
    ));
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_partner_who_is_not_on_the_team_is_refused_under_v03() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let outsider = Phone::new();
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &outsider.me(),
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(
        err,
        HandshakeError::NotOnTeam { role: Role::Partner, agent } if agent == outsider.agent
    ));
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_partner_using_a_phone_not_enrolled_for_them_is_refused_under_v03() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let borrowed = Phone::new();
    let me = LocalAgent {
        agent_id: scene.partner.agent,
        device_id: borrowed.device,
        signer: &borrowed.signer,
    };
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &me,
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(
        err,
        HandshakeError::UnknownDevice {
            role: Role::Partner,
            ..
        }
    ));
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_lone_agent_answering_their_own_challenge_is_refused_under_v03() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.lead.me(),
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(err, HandshakeError::SameAgent), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn two_agents_sharing_one_phone_are_refused_under_v03() {
    let third = AgentId::new();
    let scene = Scene::with_extra_members(|lead, _| {
        vec![TeamMember {
            agent_id: third,
            ..lead.member()
        }]
    });
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let me = LocalAgent {
        agent_id: third,
        ..scene.lead.me()
    };
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &me,
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(err, HandshakeError::SameDevice), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_challenge_altered_after_signing_is_refused_as_a_bad_lead_signature() {
    let scene = Scene::new();
    let mut c = scene
        .challenge(Purpose::CheckIn, scene.check_in())
        .challenge()
        .clone();
    c.expires_at_ms += 3_600_000;
    let err = refused(scene.partner_checks(&c.encode().unwrap()));
    assert!(matches!(err, HandshakeError::BadLeadSignature(_)), "{err}");
    assert_eq!(err.rule(), None);
    let mut c = scene
        .challenge(Purpose::CheckIn, scene.check_in())
        .challenge()
        .clone();
    c.lead_statement_sig[0] ^= 1;
    let err = refused(scene.partner_checks(&c.encode().unwrap()));
    assert!(matches!(err, HandshakeError::BadLeadSignature(_)), "{err}");
}

#[test]
fn a_statement_that_does_not_hash_to_its_digest_is_never_signed() {
    let scene = Scene::new();
    let claimed = sha256(b"something else");
    let err = refused(scene.partner_checks(&scene.resigned(|c| c.statement_digest = claimed)));
    assert!(
        matches!(err, HandshakeError::DigestMismatch { claimed: c, computed }
            if c == claimed && computed == sha256(&scene.check_in())),
        "{err}"
    );
    assert_eq!(err.rule(), None);
}

#[test]
fn an_expired_challenge_is_refused_by_the_partners_anchored_time() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let late = at(NOW + TTL + 1);
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        fix(180),
        late,
        &LIMITS,
        &HashSet::new(),
    ));
    assert_eq!(
        (
            err.rule(),
            matches!(err, HandshakeError::Expired { expires_at_ms, now_ms }
            if expires_at_ms == NOW + TTL && now_ms == NOW + TTL + 1)
        ),
        (None, true),
        "{err}"
    );
    // A wall clock set back does not help: only the anchored time counts.
    let wall_set_back = EventTime {
        wall_ms: NOW,
        ..late
    };
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        fix(180),
        wall_set_back,
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(err, HandshakeError::Expired { .. }), "{err}");
}

#[test]
fn a_challenge_expiring_beyond_the_policy_ttl_or_a_phone_without_anchor_is_refused() {
    let scene = Scene::new();
    let err = refused(scene.partner_checks(&scene.resigned(|c| c.expires_at_ms += 86_400_000)));
    assert!(matches!(err, HandshakeError::ExpiryTooFar { .. }), "{err}");
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let unanchored = EventTime {
        wall_ms: NOW,
        anchor_ms: None,
        since_anchor_ms: None,
    };
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        fix(180),
        unanchored,
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(matches!(err, HandshakeError::Unanchored), "{err}");
}

#[test]
fn a_replayed_challenge_is_refused() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let mut seen = HashSet::new();
    let checked = scene.partner_checks(out.payload()).unwrap();
    checked.reply(&scene.partner.signer, &mut seen).unwrap();
    // Answering the same checked challenge again, or checking it again, is refused.
    let err = checked
        .reply(&scene.partner.signer, &mut seen)
        .err()
        .unwrap();
    assert!(matches!(err, HandshakeError::ReplayedNonce), "{err}");
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        fix(180),
        at(NOW + 10_000),
        &LIMITS,
        &seen,
    ));
    assert!(matches!(err, HandshakeError::ReplayedNonce), "{err}");
    assert_eq!(err.rule(), None);
}

#[test]
fn a_mock_fix_on_either_phone_is_refused_under_v05() {
    let scene = Scene::new();
    let err = refused(scene.partner_checks(&scene.resigned(|c| c.lead_fix.mock = true)));
    assert!(
        matches!(err, HandshakeError::MockFix { side: Role::Lead }),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V05));
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    let mocked = Fix {
        mock: true,
        ..fix(180)
    };
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        mocked.clone(),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(
        matches!(
            err,
            HandshakeError::MockFix {
                side: Role::Partner
            }
        ),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V05));
    let err = create_challenge(
        &scene.visit,
        &scene.lead.me(),
        Purpose::CheckIn,
        scene.check_in(),
        mocked,
        at(NOW),
        &LIMITS,
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, HandshakeError::MockFix { side: Role::Lead }),
        "{err}"
    );
}

#[test]
fn a_partner_two_hundred_metres_away_is_refused_under_v05() {
    let scene = Scene::new();
    let out = scene.challenge(Purpose::CheckIn, scene.check_in());
    // 18,000 e-7 degrees of latitude ≈ 200 m.
    let err = refused(check_challenge(
        out.payload(),
        &scene.visit,
        &scene.partner.me(),
        fix(18_000),
        at(NOW + 10_000),
        &LIMITS,
        &HashSet::new(),
    ));
    assert!(
        matches!(err, HandshakeError::PartnerTooFar { distance_m, max_m: 50 } if (195..=205).contains(&distance_m)),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V05));
}

#[test]
fn a_statement_that_is_not_valid_for_its_purpose_or_names_another_visit_is_refused() {
    let scene = Scene::new();
    let not_canonical = b"{ \"visit_id\": 1 }".to_vec();
    let err = create_challenge(
        &scene.visit,
        &scene.lead.me(),
        Purpose::CheckIn,
        not_canonical.clone(),
        fix(0),
        at(NOW),
        &LIMITS,
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            HandshakeError::StatementInvalid {
                purpose: "check_in",
                ..
            }
        ),
        "{err}"
    );
    // A receipt shown as a check-in, smuggled past the lead's own phone.
    let receipt = receipt(&scene, scene.visit_id);
    let err = refused(scene.partner_checks(&scene.resigned(|c| {
        c.statement_digest = sha256(&receipt);
        c.statement = receipt.clone();
    })));
    assert!(
        matches!(err, HandshakeError::StatementInvalid { .. }),
        "{err}"
    );
    // A receipt of another visit.
    let elsewhere = VisitId::new();
    let other = self::receipt(&scene, elsewhere);
    let err = refused(scene.partner_checks(&scene.resigned(|c| {
        c.purpose = Purpose::Receipt;
        c.statement_digest = sha256(&other);
        c.statement = other.clone();
    })));
    assert!(
        matches!(err, HandshakeError::WrongVisit { found, .. } if found == elsewhere),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V03));
}

// ---- refusals on the lead phone ----

fn edited_reply(scene: &Scene, payload: &[u8], edit: impl FnOnce(&mut Reply)) -> Vec<u8> {
    let mut reply = Reply::decode(payload).unwrap();
    edit(&mut reply);
    reply.sign(&scene.partner.signer).unwrap();
    reply.encode()
}

fn lead_refuses(scene: &Scene, out: &OutstandingChallenge, reply: &[u8]) -> HandshakeError {
    scene.lead_accepts(out, reply).err().unwrap()
}

#[test]
fn a_reply_altered_after_signing_is_refused_as_a_bad_partner_signature() {
    let scene = Scene::new();
    let (out, reply) = scene.replied();
    let mut bad = Reply::decode(&reply).unwrap();
    bad.partner_fix.accuracy_m = 3;
    let err = lead_refuses(&scene, &out, &bad.encode());
    assert!(
        matches!(err, HandshakeError::BadPartnerSignature(_)),
        "{err}"
    );
    let mut bad = Reply::decode(&reply).unwrap();
    bad.partner_statement_sig[5] ^= 0x80;
    let err = lead_refuses(&scene, &out, &bad.encode());
    assert!(
        matches!(err, HandshakeError::BadPartnerSignature(_)),
        "{err}"
    );
    assert_eq!(err.rule(), None);
}

#[test]
fn a_reply_to_another_challenge_is_refused() {
    let scene = Scene::new();
    let (_, old_reply) = scene.replied();
    let (out, reply) = scene.replied();
    let err = lead_refuses(&scene, &out, &old_reply);
    assert!(
        matches!(err, HandshakeError::NotThisChallenge { what: "nonce" }),
        "{err}"
    );
    let nonce = out.challenge().nonce;
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &old_reply, |r| r.nonce = nonce),
    );
    assert!(
        matches!(
            err,
            HandshakeError::NotThisChallenge {
                what: "challenge digest"
            }
        ),
        "{err}"
    );
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &reply, |r| r.statement_digest = Digest::ZERO),
    );
    assert!(
        matches!(err, HandshakeError::DigestMismatch { claimed, .. } if claimed == Digest::ZERO),
        "{err}"
    );
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &reply, |r| r.visit_id = VisitId::new()),
    );
    assert!(matches!(err, HandshakeError::WrongVisit { .. }), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_reply_from_off_the_team_or_from_the_lead_itself_is_refused_under_v03() {
    let scene = Scene::new();
    let (out, reply) = scene.replied();
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &reply, |r| r.partner.agent_id = AgentId::new()),
    );
    assert!(
        matches!(
            err,
            HandshakeError::NotOnTeam {
                role: Role::Partner,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V03));
    // The lead signs a reply to its own challenge with its own key.
    let mut own = Reply::decode(&reply).unwrap();
    own.partner = Party::new(scene.lead.agent, scene.lead.device, &scene.lead.key());
    own.sign(&scene.lead.signer).unwrap();
    let err = lead_refuses(&scene, &out, &own.encode());
    assert!(matches!(err, HandshakeError::SameAgent), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V03));
}

#[test]
fn a_late_reply_or_one_from_far_away_or_a_mock_fix_is_refused_by_the_lead() {
    let scene = Scene::new();
    let (out, reply) = scene.replied();
    let err = out
        .accept_reply(&scene.visit, &reply, at(NOW + TTL + 1), &LIMITS)
        .err()
        .unwrap();
    assert!(matches!(err, HandshakeError::Expired { .. }), "{err}");
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &reply, |r| r.partner_fix = fix(18_000)),
    );
    assert!(matches!(err, HandshakeError::PartnerTooFar { .. }), "{err}");
    assert_eq!(err.rule(), Some(RuleId::V05));
    let err = lead_refuses(
        &scene,
        &out,
        &edited_reply(&scene, &reply, |r| r.partner_fix.mock = true),
    );
    assert!(
        matches!(
            err,
            HandshakeError::MockFix {
                side: Role::Partner
            }
        ),
        "{err}"
    );
    assert_eq!(err.rule(), Some(RuleId::V05));
}

// ---- malformed payloads and frames ----

#[test]
fn malformed_payloads_are_refused_with_the_reason() {
    let scene = Scene::new();
    let (out, reply) = scene.replied();
    let good = out.payload().to_vec();
    let mut v2 = good.clone();
    v2[0] = 2;
    assert_eq!(
        Challenge::decode(&v2),
        Err(PayloadError::UnknownVersion { found: 2 })
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Challenge::decode(&trailing),
        Err(PayloadError::TrailingBytes { count: 1 })
    );
    assert_eq!(
        Challenge::decode(&good[..good.len() - 1]),
        Err(PayloadError::Truncated {
            field: "challenge signature"
        })
    );
    assert_eq!(
        Challenge::decode(&[]),
        Err(PayloadError::Truncated { field: "version" })
    );
    let mut kind = good.clone();
    kind[1] = 9;
    assert_eq!(
        Challenge::decode(&kind),
        Err(PayloadError::UnknownMessageType { found: 9 })
    );
    assert_eq!(
        Challenge::decode(&reply),
        Err(PayloadError::WrongMessageType {
            expected: "challenge",
            found: "reply"
        })
    );
    let mut purpose = good.clone();
    purpose[2] = 0;
    assert!(matches!(
        Challenge::decode(&purpose),
        Err(PayloadError::InvalidField {
            field: "purpose",
            ..
        })
    ));
    // A declared statement length over the limit is refused before anything is allocated.
    let huge = Challenge::decode(&good).unwrap();
    let len_at = good.len() - 64 - 64 - huge.statement.len() - 4;
    let mut big = good.clone();
    big[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Challenge::decode(&big),
        Err(PayloadError::StatementTooLarge { .. })
    ));
    // Through the partner's check the same refusal is a typed handshake error.
    let err = refused(scene.partner_checks(&trailing));
    assert!(matches!(
        err,
        HandshakeError::Payload(PayloadError::TrailingBytes { count: 1 })
    ));
    assert_eq!(err.rule(), None);
}

#[test]
fn frames_of_another_message_inconsistent_counts_and_conflicts_are_refused() {
    let a = to_frames(&[7u8; 2_000]).unwrap();
    let b = to_frames(&[8u8; 2_000]).unwrap();
    assert_eq!(a.len(), 4);
    let mut asm = FrameAssembler::new();
    assert_eq!(
        asm.accept(&a[2]),
        Ok(FrameProgress::Incomplete {
            received: 1,
            total: 4
        })
    );
    assert_eq!(
        asm.accept(&a[2]),
        Ok(FrameProgress::Incomplete {
            received: 1,
            total: 4
        })
    );
    assert!(matches!(
        asm.accept(&b[0]),
        Err(FrameError::OtherMessage { .. })
    ));
    // Same message id with a different count.
    let recount = a[0].replacen("/1/4/", "/1/5/", 1);
    assert_eq!(
        asm.accept(&recount),
        Err(FrameError::InconsistentCount {
            expected: 4,
            found: 5
        })
    );
    // Same index, different chunk (first payload byte changed from 7 to 9).
    let chunk = a[0].splitn(5, '/').nth(4).unwrap();
    let mut other = vec![7u8; 660];
    other[0] = 9;
    let conflicting = a[0].replace(chunk, &base45::encode(&other));
    asm.accept(&a[0]).unwrap();
    assert_eq!(
        asm.accept(&conflicting),
        Err(FrameError::ConflictingDuplicate { index: 1 })
    );
    asm.accept(&a[1]).unwrap();
    assert_eq!(asm.progress(), (3, 4));
    assert_eq!(
        asm.accept(&a[3]),
        Ok(FrameProgress::Complete(vec![7u8; 2_000]))
    );
    // A full set whose chunks were swapped for other bytes does not match its message id.
    let mut forged = a.clone();
    forged[0] = conflicting;
    assert!(matches!(
        from_frames(&forged),
        Err(FrameError::MessageIdMismatch { .. })
    ));
    assert_eq!(
        from_frames(&a[..3]),
        Err(FrameError::Incomplete {
            received: 3,
            total: 4
        })
    );
}

#[test]
fn malformed_frames_are_refused_with_the_reason() {
    let frames = to_frames(b"hello tandem").unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(
        FrameAssembler::new().accept("https://example.com"),
        Err(FrameError::NotAFrame)
    );
    assert_eq!(
        FrameAssembler::new().accept(&f.replacen("TH1/", "TH2/", 1)),
        Err(FrameError::UnknownFrameVersion {
            found: "TH2".into()
        })
    );
    let long = format!("{f}{}", "0".repeat(2_000));
    assert!(matches!(
        FrameAssembler::new().accept(&long),
        Err(FrameError::FrameTooLong { .. })
    ));
    for bad in [
        f.replacen("/1/1/", "/01/1/", 1),
        f.replacen("/1/1/", "/2/1/", 1),
        f.replacen("/1/1/", "/1/513/", 1),
        f.replacen(&f[4..20], &f[4..20].to_lowercase(), 1),
        "TH1/0123456789ABCDEF/1".to_owned(),
    ] {
        assert!(
            matches!(
                FrameAssembler::new().accept(&bad),
                Err(FrameError::BadHeader { .. })
            ),
            "{bad}"
        );
    }
    // `GGW` is 65,535+ in base45, and `ZZ` a final pair beyond one byte: not canonical.
    let prefix = &f[..f.rfind('/').unwrap() + 1];
    for chunk in ["GGW", "ZZ", "a"] {
        assert_eq!(
            FrameAssembler::new().accept(&format!("{prefix}{chunk}")),
            Err(FrameError::BadChunk { index: 1 })
        );
    }
    // A middle frame must carry a full chunk.
    let short = to_frames(&[1u8; 700]).unwrap()[1].replacen("/2/2/", "/1/2/", 1);
    assert!(matches!(
        FrameAssembler::new().accept(&short),
        Err(FrameError::ChunkSize {
            index: 1,
            total: 2,
            len: 40
        })
    ));
    assert!(matches!(
        to_frames(&vec![0u8; 660 * 512 + 1]),
        Err(FrameError::TooManyFrames { .. })
    ));
    let err = HandshakeError::from(FrameError::NotAFrame);
    assert_eq!(err.rule(), None);
}

// ---- any message survives encode → frames → scan → decode ----

fn e7(max: i32) -> impl Strategy<Value = i32> {
    -max..=max
}

fn any_fix() -> impl Strategy<Value = Fix> {
    (
        e7(900_000_000),
        e7(1_800_000_000),
        prop::sample::select(vec![Datum::Wgs84, Datum::Gcj02, Datum::Bd09]),
        any::<u32>(),
        prop::sample::select(vec![
            Provider::Gnss,
            Provider::Network,
            Provider::Fused,
            Provider::Manual,
            Provider::Other,
        ]),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(
            |(lat, lon, datum, accuracy_m, provider, mock, taken_at_ms)| Fix {
                coordinate: Coordinate::new(lat, lon, datum).unwrap(),
                accuracy_m,
                provider,
                mock,
                taken_at_ms,
            },
        )
}

fn any_time() -> impl Strategy<Value = EventTime> {
    (any::<i64>(), any::<Option<i64>>(), any::<Option<i64>>()).prop_map(
        |(wall_ms, anchor_ms, since_anchor_ms)| EventTime {
            wall_ms,
            anchor_ms,
            since_anchor_ms,
        },
    )
}

fn any_party() -> impl Strategy<Value = Party> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<bool>(),
    )
        .prop_map(|(a, d, k, p256)| Party {
            agent_id: AgentId(uuid::Uuid::from_bytes(a)),
            device_id: DeviceId(uuid::Uuid::from_bytes(d)),
            kid: tandem_core::crypto::Kid(Digest(k)),
            alg: if p256 {
                SignatureAlgorithm::EcdsaP256Sha256
            } else {
                SignatureAlgorithm::Ed25519
            },
        })
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn any_message() -> impl Strategy<Value = Message> {
    let purpose = prop::sample::select(Purpose::ALL.to_vec());
    let challenge = (
        (
            purpose.clone(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            any_party(),
        ),
        (
            any_fix(),
            any_time(),
            any::<[u8; 16]>(),
            any::<i64>(),
            any::<[u8; 32]>(),
        ),
        (prop::collection::vec(any::<u8>(), 0..8_192), sig(), sig()),
    )
        .prop_map(|((p, v, a, lead), (f, t, n, e, d), (s, ss, cs))| {
            Message::Challenge(Challenge {
                purpose: p,
                visit_id: VisitId(uuid::Uuid::from_bytes(v)),
                approval_digest: Digest(a),
                lead,
                lead_fix: f,
                lead_time: t,
                nonce: Nonce(n),
                expires_at_ms: e,
                statement_digest: Digest(d),
                statement: s,
                lead_statement_sig: ss,
                signature: cs,
            })
        });
    let reply = (
        (
            purpose,
            any::<[u8; 16]>(),
            any_party(),
            any_fix(),
            any_time(),
        ),
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            sig(),
            sig(),
        ),
    )
        .prop_map(|((p, v, partner, f, t), (n, d, cd, ss, rs))| {
            Message::Reply(Reply {
                purpose: p,
                visit_id: VisitId(uuid::Uuid::from_bytes(v)),
                partner,
                partner_fix: f,
                partner_time: t,
                nonce: Nonce(n),
                statement_digest: Digest(d),
                challenge_digest: Digest(cd),
                partner_statement_sig: ss,
                signature: rs,
            })
        });
    prop_oneof![3 => challenge, 1 => reply]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_message_survives_frames_scanned_in_any_order_with_repeats(
        message in any_message(),
        order in prop::collection::vec(any::<u16>(), 0..40),
    ) {
        let payload = message.encode().unwrap();
        let frames = to_frames(&payload).unwrap();
        // Every frame once in a shuffled order, with repeats of random frames mixed in.
        let mut scans: Vec<(u16, &String)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (order.get(i).copied().unwrap_or(i as u16), f))
            .collect();
        for (i, key) in order.iter().enumerate() {
            scans.push((key.rotate_left(3), &frames[i % frames.len()]));
        }
        scans.sort_by_key(|(key, _)| *key);
        let texts: Vec<&String> = scans.into_iter().map(|(_, f)| f).collect();
        let assembled = from_frames(&texts).unwrap();
        prop_assert_eq!(&assembled, &payload);
        prop_assert_eq!(Message::decode(&assembled).unwrap(), message);
    }
}
