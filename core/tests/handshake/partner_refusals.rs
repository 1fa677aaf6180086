//! Every refusal on the partner phone, with its exact error and rule.

use super::*;

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
    let err = refused(scene.partner_checks(&scene.resigned(|c| c.expires_at_ms += SKEW + 60_000)));
    assert!(matches!(err, HandshakeError::ExpiryTooFar { .. }), "{err}");
    // The two phones anchored their clocks on different syncs: a challenge that looks a
    // little further ahead to the partner, within the policy's clock tolerance, is fine.
    assert!(
        scene
            .partner_checks(&scene.resigned(|c| c.expires_at_ms += 30_000))
            .is_ok()
    );
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
