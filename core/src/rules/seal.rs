//! Rules at the end of a visit: check-out (V03, V07) and seal (E01, V07).

use serde::{Deserialize, Serialize};

use super::check_in::{PartnerPresence, team_together};
use super::context::VisitContext;
use super::{RuleId, Violation, audio};
use crate::crypto::{Digest, Kid};
use crate::model::{AgentId, EventKind, verify_chain};

/// What the agent brings to check-out.
#[derive(Debug, Clone, Default)]
pub struct CheckOutInput {
    /// The partner, from the verified handshake reply.
    pub partner: Option<PartnerPresence>,
    /// Start of the audio segment being recorded, or `None` if the recorder is stopped.
    pub audio_open_since_ms: Option<i64>,
}

/// Every rule of check-out: V03 (the partner of check-in, together), V07 (gaps reported).
pub fn check_check_out(ctx: &VisitContext<'_>, input: &CheckOutInput) -> Vec<Violation> {
    let mut out = Vec::new();
    team_together(ctx, input.partner.as_ref(), "check out", &mut out);
    let checked_in_with = ctx.check_in().and_then(|(_, kind)| match kind {
        EventKind::CheckedIn {
            partner,
            partner_device,
            ..
        } => Some((*partner, *partner_device)),
        _ => None,
    });
    match (checked_in_with, input.partner.as_ref()) {
        (None, _) => out.push(Violation::block(
            RuleId::V03,
            "This visit has no joint check-in: it cannot be checked out.",
        )),
        (Some((agent, device)), Some(p)) if p.agent_id != agent || p.device_id != device => out
            .push(Violation::block(
                RuleId::V03,
                "Check out with the same partner, on the same phone, as at check-in.",
            )),
        _ => {}
    }
    audio::at_check_out(ctx, input.audio_open_since_ms, &mut out);
    out
}

/// A signature on the sealed manifest that verified, and whose key made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealSigner {
    /// The agent the signer claims to be.
    pub agent_id: AgentId,
    /// The key that made the verified signature.
    pub kid: Kid,
}

/// What the seal rests on.
pub struct SealInput<'a> {
    /// Digest of the last event: the log's head, signed in the manifest.
    pub head: Digest,
    /// Whether the blob store holds a blob (original bytes) with this digest.
    pub has_blob: &'a dyn Fn(&Digest) -> bool,
    /// Signatures on the manifest that verified.
    pub signers: &'a [SealSigner],
}

/// Every rule of the seal: E01 (chain, blobs, two team signatures), V07 (gaps flagged).
pub fn check_seal(ctx: &VisitContext<'_>, input: &SealInput<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Err(e) = verify_chain(ctx.visit, ctx.events, Some(input.head)) {
        out.push(Violation::block(
            RuleId::E01,
            format!("The event log does not verify ({e}): the visit cannot be sealed."),
        ));
    }
    let missing: Vec<Digest> = referenced_blobs(ctx)
        .into_iter()
        .filter(|d| !(input.has_blob)(d))
        .collect();
    if let Some(first) = missing.first() {
        out.push(Violation::block(
            RuleId::E01,
            format!(
                "{} item(s) of evidence are missing from the phone's store (first: {first}): \
                 the visit cannot be sealed until they are restored.",
                missing.len()
            ),
        ));
    }
    let mut agents: Vec<AgentId> = input
        .signers
        .iter()
        .filter(|s| {
            ctx.approval
                .member(s.agent_id)
                .is_some_and(|m| m.public_key.kid() == s.kid)
        })
        .map(|s| s.agent_id)
        .collect();
    agents.sort_unstable();
    agents.dedup();
    if agents.len() < 2 {
        out.push(Violation::block(
            RuleId::E01,
            "The seal needs the signatures of two different agents of the approved team, each \
             with their own enrolled phone.",
        ));
    }
    audio::at_seal(ctx, &mut out);
    out
}

/// Every blob the visit's events and receipts refer to.
fn referenced_blobs(ctx: &VisitContext<'_>) -> Vec<Digest> {
    let mut blobs: Vec<Digest> = ctx
        .events
        .iter()
        .flat_map(|e| e.kind.blobs())
        .map(|b| b.digest)
        .collect();
    blobs.extend(ctx.receipts.iter().filter_map(|r| r.payer_signature));
    blobs.sort_unstable();
    blobs.dedup();
    blobs
}
