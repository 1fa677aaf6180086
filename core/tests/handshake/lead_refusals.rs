//! Every refusal of a reply on the lead phone, with its exact error and rule.

use super::*;

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
