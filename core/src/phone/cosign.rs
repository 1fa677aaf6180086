//! Co-signing between the two phones (DESIGN.md §5), as the phone runs it.
//!
//! The lead phone begins (shows a challenge as QR frames); the partner phone reviews it (a
//! summary its agent reads) and answers once (reply frames); the lead completes, which runs
//! the action's rules and records it with both signatures. Shells only show and scan.

use std::collections::HashSet;

use super::Phone;
use super::lifecycle::{CheckIn, CheckOut, Recorded};
use super::loaded::Loaded;
use crate::canonical::to_canonical_vec;
use crate::handshake::{
    self, ApprovedVisit, ChallengeSummary, CheckInStatement, CheckOutStatement, CheckedChallenge,
    CoSigned, HandshakeError, Limits, LocalAgent, Nonce, OutstandingChallenge, Purpose,
    StatementView,
};
use crate::model::{AddressId, CoSignature, EventKind, ReceiptSerial, VisitId, VisitState};
use crate::place::Fix;
use crate::rules::{PartnerPresence, RuleId, Violation};
use crate::{Error, Result};

/// Challenges shown and not yet answered, at most: an abandoned one is forgotten first.
const MAX_PENDING: usize = 8;

/// What the lead will do once the partner has co-signed.
pub(super) enum PendingAction {
    CheckIn {
        address: AddressId,
        outside_fence_reason: Option<String>,
    },
    CheckOut,
    Seal,
    Receipt {
        serial: ReceiptSerial,
    },
    Void {
        serial: ReceiptSerial,
        reason: String,
    },
}

pub(super) struct Pending {
    visit: VisitId,
    challenge: OutstandingChallenge,
    pub(super) action: PendingAction,
}

/// A challenge checked on the partner phone, waiting for its agent to agree.
pub struct Review {
    visit: VisitId,
    checked: CheckedChallenge,
    check_in: Option<CheckInReview>,
    warnings: Vec<Violation>,
}

/// What the partner reads before co-signing a check-in: where the lead stands against the
/// approved address, and why, if outside the fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInReview {
    /// The lead's distance to the nearest approved address, metres (from the lead's fix).
    pub lead_distance_m: u32,
    /// The policy's fence radius around the address, metres.
    pub fence_m: u32,
    /// The lead's stated reason for checking in outside the fence.
    pub outside_fence_reason: Option<String>,
}

impl std::fmt::Debug for Review {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The statement may name the payer: show only which visit it is for.
        f.debug_struct("Review")
            .field("visit", &self.visit)
            .finish_non_exhaustive()
    }
}

impl Review {
    /// What the partner's screen shows before signing: purpose, lead, and the statement.
    pub fn summary(&self) -> &ChallengeSummary {
        self.checked.summary()
    }

    /// The visit concerned.
    pub fn visit(&self) -> VisitId {
        self.visit
    }

    /// For a check-in: the lead's distance to the address, the fence and the reason.
    pub fn check_in(&self) -> Option<&CheckInReview> {
        self.check_in.as_ref()
    }

    /// The warnings and flags this phone's own rules raise on what it is asked to sign
    /// (a statement its rules would block is never shown: `review_challenge` refuses it).
    pub fn warnings(&self) -> &[Violation] {
        &self.warnings
    }
}

/// What a completed co-signing recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// The team checked in.
    CheckedIn(Recorded),
    /// The team checked out.
    CheckedOut(Recorded),
    /// The visit was sealed into a co-signed bundle.
    Sealed(crate::store::SealRecord),
    /// A receipt was issued with both signatures.
    ReceiptIssued(Recorded),
    /// A receipt was voided with both signatures.
    ReceiptVoided(Recorded),
}

impl Phone {
    /// The signed approval of a visit, checked, with the handshake limits of its policy.
    fn approved_visit(&self, visit: VisitId) -> Result<(ApprovedVisit, Limits)> {
        self.store.read(|tx| {
            let key = tx
                .server_public_key()?
                .ok_or_else(|| Error::NotEnrolled("no server key: enrol first".into()))?;
            let record = tx.visit(visit)?.ok_or_else(|| Error::NotFound {
                what: format!("visit {visit}"),
            })?;
            let approval =
                tx.approval(record.visit.approval_id)?
                    .ok_or_else(|| Error::NotFound {
                        what: format!("approval of visit {visit}"),
                    })?;
            let case = tx
                .case(record.visit.case_id)?
                .ok_or_else(|| Error::NotFound {
                    what: format!("case of visit {visit}"),
                })?
                .verify(&key)?;
            let policy = tx
                .policy(case.bank_id)?
                .ok_or_else(|| Error::NotReady("no policy for this bank: sync first".into()))?
                .verify(&key)?;
            let approved = ApprovedVisit::verify(visit, &approval, &key)?;
            Ok((approved, Limits::from_policy(&policy)))
        })
    }

    fn fix_for_handshake(&self) -> Result<Fix> {
        self.location.current_fix().ok_or_else(|| Error::Blocked {
            violations: vec![Violation::block(
                RuleId::V05,
                "No position fix: wait for the phone to find its position.",
            )],
        })
    }

    pub(super) fn begin(
        &self,
        visit: VisitId,
        purpose: Purpose,
        statement: Vec<u8>,
        action: PendingAction,
    ) -> Result<Vec<String>> {
        let (approved, limits) = self.approved_visit(visit)?;
        let (device, agent) = self.identity()?;
        let lead = LocalAgent {
            agent_id: agent,
            device_id: device,
            signer: self.signer.as_ref(),
        };
        let challenge = handshake::create_challenge(
            &approved,
            &lead,
            purpose,
            statement,
            self.fix_for_handshake()?,
            self.now()?,
            &limits,
        )?;
        let frames = challenge.frames()?;
        let mut pending = self.pending();
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(Pending {
            visit,
            challenge,
            action,
        });
        Ok(frames)
    }

    /// Lead: starts check-in at the nearest approved address; returns the QR frames to show.
    pub fn begin_check_in(
        &self,
        visit: VisitId,
        outside_fence_reason: Option<String>,
    ) -> Result<Vec<String>> {
        let fix = self.fix_for_handshake()?;
        let now = self.now()?;
        let address = self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_state(VisitState::Assigned, "check in")?;
            let unsent = super::lifecycle::unsent_sealed_at(tx)?;
            let ctx = loaded.context(now);
            // Every rule this phone can decide alone, before anyone co-signs anything: a
            // check-in it would refuse is never shown to the partner (nothing is written).
            super::lifecycle::refuse_if_blocked(crate::rules::check_check_in_readiness(
                &ctx,
                Some(fix.clone()),
                outside_fence_reason.clone(),
                &unsent,
            ))?;
            ctx.nearest_approved_address(&fix)
                .map(|(a, _)| a.id)
                .ok_or_else(|| Error::NotFound {
                    what: "an approved address".into(),
                })
        })?;
        let statement = to_canonical_vec(&CheckInStatement {
            visit_id: visit,
            address_id: address,
            at_ms: now.best_ms(),
            outside_fence_reason: outside_fence_reason.clone(),
        })?;
        self.begin(
            visit,
            Purpose::CheckIn,
            statement,
            PendingAction::CheckIn {
                address,
                outside_fence_reason,
            },
        )
    }

    /// Lead: starts co-signing a manifest (built by the seal).
    pub(super) fn begin_manifest_cosign(
        &self,
        visit: VisitId,
        manifest: Vec<u8>,
    ) -> Result<Vec<String>> {
        self.begin(visit, Purpose::Seal, manifest, PendingAction::Seal)
    }

    /// Lead: starts check-out; returns the QR frames to show.
    pub fn begin_check_out(&self, visit: VisitId) -> Result<Vec<String>> {
        let now = self.now()?;
        let (address, checked_in_at_ms) = self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("check out")?;
            let address = loaded.events.iter().find_map(|e| match e.kind {
                EventKind::CheckedIn { address_id, .. } => Some(address_id),
                _ => None,
            });
            match (address, loaded.record.visit.checked_in_at_ms) {
                (Some(a), Some(at)) => Ok((a, at)),
                _ => Err(Error::NotFound {
                    what: "the visit's check-in".into(),
                }),
            }
        })?;
        let statement = to_canonical_vec(&CheckOutStatement {
            visit_id: visit,
            address_id: address,
            checked_in_at_ms,
            at_ms: now.best_ms(),
        })?;
        self.begin(visit, Purpose::CheckOut, statement, PendingAction::CheckOut)
    }

    /// Lead: takes the partner's reply frames, verifies them against the challenge shown,
    /// and records the action with both signatures (after its rules).
    pub fn complete(&self, reply_frames: &[String]) -> Result<Completed> {
        let payload = handshake::from_frames(reply_frames).map_err(HandshakeError::from)?;
        self.complete_payload(&payload)
    }

    /// Lead: as [`complete`](Self::complete), with the reply already reassembled from its
    /// frames (a [`handshake::FrameAssembler`] fed by the camera).
    pub fn complete_payload(&self, payload: &[u8]) -> Result<Completed> {
        let reply = handshake::Reply::decode(payload).map_err(HandshakeError::from)?;
        let pending = {
            let mut pending = self.pending();
            let at = pending
                .iter()
                .position(|p| p.challenge.challenge().nonce == reply.nonce)
                .ok_or_else(|| Error::NotFound {
                    what: "a challenge shown by this phone for this reply".into(),
                })?;
            pending.remove(at)
        };
        let accepted = self
            .approved_visit(pending.visit)
            .and_then(|(approved, limits)| {
                Ok(pending
                    .challenge
                    .accept_reply(&approved, payload, self.now()?, &limits)?)
            });
        let cosigned = match accepted {
            Ok(c) => c,
            Err(e) => {
                // A bad reply does not cancel the challenge: the right partner may still answer.
                self.pending().push(pending);
                return Err(e);
            }
        };
        let (presence, cosignature) = co_signature(&cosigned)?;
        match pending.action {
            PendingAction::CheckIn {
                address,
                outside_fence_reason,
            } => self
                .check_in(
                    pending.visit,
                    &CheckIn {
                        partner: Some(presence),
                        cosignature: Some(cosignature),
                        outside_fence_reason,
                        address: Some(address),
                    },
                )
                .map(Completed::CheckedIn),
            PendingAction::CheckOut => self
                .check_out(
                    pending.visit,
                    &CheckOut {
                        partner: Some(presence),
                        cosignature: Some(cosignature),
                    },
                )
                .map(Completed::CheckedOut),
            PendingAction::Seal => self
                .finish_seal(pending.visit, &cosigned)
                .map(Completed::Sealed),
            PendingAction::Receipt { serial } => self
                .complete_receipt(pending.visit, serial, cosignature)
                .map(Completed::ReceiptIssued),
            PendingAction::Void { serial, reason } => self
                .complete_void(pending.visit, serial, &reason, cosignature)
                .map(Completed::ReceiptVoided),
        }
    }

    /// Partner: reassembles and checks a challenge (same visit, team, places, time,
    /// signature, never answered before), and returns what to show the agent.
    pub fn review_challenge(&self, frames: &[String]) -> Result<Review> {
        let payload = handshake::from_frames(frames).map_err(HandshakeError::from)?;
        self.review_challenge_payload(&payload)
    }

    /// Partner: as [`review_challenge`](Self::review_challenge), with the challenge already
    /// reassembled from its frames (a [`handshake::FrameAssembler`] fed by the camera).
    pub fn review_challenge_payload(&self, payload: &[u8]) -> Result<Review> {
        let challenge = handshake::Challenge::decode(payload).map_err(HandshakeError::from)?;
        let visit = challenge.visit_id;
        let (approved, limits) = self.approved_visit(visit)?;
        let (device, agent) = self.identity()?;
        let me = LocalAgent {
            agent_id: agent,
            device_id: device,
            signer: self.signer.as_ref(),
        };
        let mut seen: HashSet<Nonce> = HashSet::new();
        if self
            .store
            .read(|tx| Ok::<_, Error>(tx.nonce_answered(&challenge.nonce.0)?))?
        {
            seen.insert(challenge.nonce);
        }
        let now = self.now()?;
        let checked = handshake::check_challenge(
            payload,
            &approved,
            &me,
            self.fix_for_handshake()?,
            now,
            &limits,
            &seen,
        )?;
        let (check_in, warnings) = match &checked.summary().statement {
            StatementView::CheckIn(statement) => {
                let (review, warnings) =
                    self.review_check_in(visit, statement, &checked.challenge().lead_fix, now)?;
                (Some(review), warnings)
            }
            _ => (None, Vec::new()),
        };
        Ok(Review {
            visit,
            checked,
            check_in,
            warnings,
        })
    }

    /// Partner: runs this phone's own check-in rules on the lead's statement and fix (the
    /// lead's position against the address, this phone's anchored time, the case and the
    /// approval as this phone holds them): a check-in they would block is refused here,
    /// before its agent is asked to sign.
    fn review_check_in(
        &self,
        visit: VisitId,
        statement: &CheckInStatement,
        lead_fix: &Fix,
        now: crate::model::EventTime,
    ) -> Result<(CheckInReview, Vec<Violation>)> {
        self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_state(VisitState::Assigned, "co-sign a check-in")?;
            let ctx = loaded.context(now);
            // The upload deadlines (E03) bind the phone holding unsent evidence: the lead's.
            let mut violations =
                super::lifecycle::refuse_if_blocked(crate::rules::check_check_in_readiness(
                    &ctx,
                    Some(lead_fix.clone()),
                    statement.outside_fence_reason.clone(),
                    &[],
                ))?;
            // V15: this phone's own clock, shown to its agent now as to the lead's.
            violations.extend(
                super::lifecycle::clock_off(&now, ctx.policy.clock_tolerance_ms)
                    .map(|(_, warning)| warning),
            );
            let (address, lead_distance_m) =
                ctx.nearest_approved_address(lead_fix)
                    .ok_or_else(|| Error::NotFound {
                        what: "an approved address".into(),
                    })?;
            if address.id != statement.address_id {
                return Err(Error::Blocked {
                    violations: vec![Violation::block(
                        RuleId::V05,
                        "The lead names another address than the one nearest its position: \
                         do not co-sign.",
                    )],
                });
            }
            Ok((
                CheckInReview {
                    lead_distance_m,
                    fence_m: ctx.policy.geofence_radius_m,
                    outside_fence_reason: statement.outside_fence_reason.clone(),
                },
                violations,
            ))
        })
    }

    /// Partner: signs what was reviewed; returns the reply frames to show. A challenge is
    /// answered once, even across restarts.
    pub fn answer_challenge(&self, review: &Review) -> Result<Vec<String>> {
        let now = self.now()?.best_ms();
        self.store.write(|tx| {
            let nonce = review.checked.challenge().nonce;
            if !tx.record_answered_nonce(&nonce.0, review.visit, now)? {
                return Err(HandshakeError::ReplayedNonce.into());
            }
            let reply = review
                .checked
                .reply(self.signer.as_ref(), &mut HashSet::new())?;
            Ok(reply.frames()?)
        })
    }
}

fn co_signature(cosigned: &CoSigned) -> Result<(PartnerPresence, CoSignature)> {
    let statement = String::from_utf8(cosigned.statement.clone())
        .map_err(|_| Error::NotReady("a signed statement is not UTF-8".into()))?;
    Ok((
        PartnerPresence {
            agent_id: cosigned.partner.agent_id,
            device_id: cosigned.partner.device_id,
            fix: Some(cosigned.partner_fix.clone()),
        },
        CoSignature {
            statement,
            lead: cosigned.lead_signature.clone(),
            partner: cosigned.partner_signature.clone(),
        },
    ))
}
