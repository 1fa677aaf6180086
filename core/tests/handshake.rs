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
const SKEW: i64 = 120_000;
const LIMITS: Limits = Limits {
    partner_max_distance_m: 50,
    handshake_ttl_ms: TTL,
    clock_skew_ms: SKEW,
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
            outside_fence_reason: None,
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
            outside_fence_reason: None,
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

#[path = "handshake/any_message.rs"]
mod any_message;
#[path = "handshake/lead_refusals.rs"]
mod lead_refusals;
#[path = "handshake/malformed.rs"]
mod malformed;
#[path = "handshake/partner_refusals.rs"]
mod partner_refusals;
