//! The visit lifecycle: check-in, actions during the visit, check-out, purge.

use super::Phone;
use super::action::VisitAction;
use super::loaded::Loaded;
use crate::clock::discrepancy_event;
use crate::model::{
    AddressId, ApprovedAddress, Case, CaseId, CoSignature, Event, EventKind, EventTime, Policy,
    VisitId, VisitState,
};
use crate::place::{Fix, distance_m};
use crate::rules::{
    self, ActionInput, CheckInInput, CheckOutInput, HeldVisit, PartnerPresence, PurgePlan, RuleId,
    Violation, VisitContext,
};
use crate::store::{ReadTx, VisitRecord, WriteTx};
use crate::{Error, Result};

/// Check-in, after the handshake with the partner's phone.
#[derive(Debug, Clone, Default)]
pub(super) struct CheckIn {
    /// The partner as the verified handshake reply showed them.
    pub partner: Option<PartnerPresence>,
    /// The check-in statement as both phones signed it.
    pub cosignature: Option<CoSignature>,
    /// Why the team checks in outside the geofence, when it does (V05).
    pub outside_fence_reason: Option<String>,
    /// The approved address both phones signed for; by default the nearest one.
    pub address: Option<AddressId>,
}

/// Check-out, after the handshake with the partner's phone.
#[derive(Debug, Clone, Default)]
pub(super) struct CheckOut {
    /// The partner as the verified handshake reply showed them.
    pub partner: Option<PartnerPresence>,
    /// The check-out statement as both phones signed it.
    pub cosignature: Option<CoSignature>,
}

/// What an accepted action left: its event and any warnings or flags the agent should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The action's event.
    pub event: Event,
    /// Warnings and flags (recorded as events too).
    pub violations: Vec<Violation>,
}

/// Refuses on any blocking violation; otherwise returns the warnings and flags.
pub(super) fn refuse_if_blocked(violations: Vec<Violation>) -> Result<Vec<Violation>> {
    if rules::has_blocking(&violations) {
        Err(Error::Blocked { violations })
    } else {
        Ok(violations)
    }
}

/// Appends an action's event, then its warnings and flags and any clock discrepancy, so
/// that reviewers find each next to what it concerns.
pub(super) fn record(
    tx: &WriteTx<'_>,
    loaded: &Loaded,
    kind: EventKind,
    at: EventTime,
    fix: Option<Fix>,
    violations: Vec<Violation>,
) -> Result<Recorded> {
    let visit = loaded.record.visit.id;
    let by = loaded.record.visit.agent_id;
    let event = tx.append_event(visit, kind, at, fix.clone(), by)?;
    for v in &violations {
        let flag = EventKind::RuleFlag {
            rule: v.rule,
            outcome: v.outcome,
            message: v.message.clone(),
        };
        tx.append_event(visit, flag, at, fix.clone(), by)?;
    }
    let mut violations = violations;
    if let Some((discrepancy, warning)) = clock_off(&at, loaded.policy.clock_tolerance_ms) {
        tx.append_event(visit, discrepancy, at, fix, by)?;
        // V15: shown to the agent now (the event above is the flag reviewers see).
        violations.push(warning);
    }
    if loaded.state() == VisitState::CheckedIn {
        tx.set_visit_state(visit, VisitState::Active, at.best_ms())?;
    }
    Ok(Recorded { event, violations })
}

/// V15 when this phone's wall clock is off its anchored time beyond `tolerance_ms`: the
/// `clock_discrepancy` event to record, and the warning its agent is shown now.
pub(super) fn clock_off(at: &EventTime, tolerance_ms: i64) -> Option<(EventKind, Violation)> {
    let event = discrepancy_event(at, tolerance_ms)?;
    let EventKind::ClockDiscrepancy {
        wall_ms,
        anchored_ms,
    } = event
    else {
        return None;
    };
    let warning = Violation::warn(RuleId::V15, clock_off_message(wall_ms - anchored_ms));
    Some((event, warning))
}

/// What V15 tells the agent: how far the phone's clock is off, and that it does not count.
fn clock_off_message(off_ms: i64) -> String {
    // Rounded: the anchor's own uncertainty is seconds, and people read whole minutes.
    let minutes = off_ms.saturating_abs().saturating_add(30_000) / 60_000;
    let way = if off_ms > 0 { "ahead of" } else { "behind" };
    format!(
        "This phone's clock is {minutes} min {way} the server-anchored time; the anchored time \
         is the one recorded and judged. Set the phone's clock right."
    )
}

/// The approved address both phones signed for, and this phone's distance to it; the
/// nearest approved one when none was named.
fn signed_address<'c>(
    ctx: &VisitContext<'c>,
    named: Option<AddressId>,
    own_fix: &Fix,
) -> Result<(&'c ApprovedAddress, u32)> {
    match named {
        Some(id) => {
            let signed = ctx
                .approved_addresses()
                .find(|a| a.id == id)
                .ok_or_else(|| Error::NotFound {
                    what: "the signed address among the approved ones".into(),
                })?;
            Ok((signed, distance_m(&own_fix.coordinate, &signed.position)))
        }
        None => ctx
            .nearest_approved_address(own_fix)
            .ok_or_else(|| Error::NotFound {
                what: "approved address".into(),
            }),
    }
}

pub(super) fn unsent_sealed_at(tx: &ReadTx<'_>) -> Result<Vec<i64>> {
    Ok(tx
        .visits(&[VisitState::Sealed, VisitState::Uploading])?
        .iter()
        .filter_map(|r| r.visit.sealed_at_ms)
        .collect())
}

impl Phone {
    /// Checks the team in (V01–V06, V11, E03, D01) once the partner's phone co-signed
    /// (`begin_check_in` … `complete`: there is no other way in). Blocking rules refuse it;
    /// a flag (e.g. outside the fence, with a reason) is recorded with it.
    pub(super) fn check_in(&self, visit: VisitId, input: &CheckIn) -> Result<Recorded> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_state(VisitState::Assigned, "check in")?;
            let unsent = unsent_sealed_at(tx)?;
            let ctx = loaded.context(now);
            let violations = refuse_if_blocked(rules::check_check_in(
                &ctx,
                &CheckInInput {
                    fix: fix.clone(),
                    partner: input.partner.clone(),
                    outside_fence_reason: input.outside_fence_reason.clone(),
                    unsent_sealed_at_ms: &unsent,
                },
            ))?;
            // The rules passed, so there is a fix and a partner; the nearest address is
            // what the fence was measured against.
            let own_fix = fix
                .clone()
                .ok_or_else(|| Error::NotReady("no fix".into()))?;
            let partner = input
                .partner
                .clone()
                .ok_or_else(|| Error::NotReady("no partner".into()))?;
            let (address, distance) = signed_address(&ctx, input.address, &own_fix)?;
            let kind = EventKind::CheckedIn {
                address_id: address.id,
                partner: partner.agent_id,
                partner_device: partner.device_id,
                partner_distance_m: partner
                    .fix
                    .as_ref()
                    .map(|p| distance_m(&own_fix.coordinate, &p.coordinate)),
                partner_fix: partner.fix,
                distance_m: distance,
                outside_fence_reason: input.outside_fence_reason.clone(),
                cosignature: input.cosignature.clone(),
            };
            // Recorded while still `assigned`, so `record` does not move the visit on to
            // active: that happens with the first capture.
            let recorded = record(tx, &loaded, kind, now, fix, violations)?;
            tx.set_visit_state(visit, VisitState::CheckedIn, now.best_ms())?;
            Ok(recorded)
        })
    }

    /// Records an action during the visit, after its rules (V04, V07–V13).
    pub fn record(&self, visit: VisitId, action: &VisitAction) -> Result<Recorded> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.check_recordable(action)?;
        let rule_action = ActionInput::from(action);
        let kind = EventKind::from(action.clone());
        let open_since = self.audio_open_since(visit);
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("record an action")?;
            let ctx = loaded.context(now);
            let mut violations = rules::check_action(&ctx, &rule_action);
            violations.extend(rules::check_action(
                &ctx,
                &ActionInput::AudioStatus {
                    open_since_ms: open_since,
                },
            ));
            dedup(&mut violations);
            let violations = refuse_if_blocked(violations)?;
            record(tx, &loaded, kind, now, fix, violations)
        })
    }

    /// Checks the team out (V03, V07) once the partner's phone co-signed. Audio stops only
    /// once the rules allow check-out.
    pub(super) fn check_out(&self, visit: VisitId, input: &CheckOut) -> Result<Recorded> {
        let now = self.now()?;
        let input_for = |open| CheckOutInput {
            partner: input.partner.clone(),
            audio_open_since_ms: open,
        };
        // First with the recorder still running: a refused check-out must not stop audio.
        let open_since = self.audio_open_since(visit);
        self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("check out")?;
            refuse_if_blocked(rules::check_check_out(
                &loaded.context(now),
                &input_for(open_since),
            ))
        })?;
        self.stop_audio(visit)?;
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("check out")?;
            let violations = refuse_if_blocked(rules::check_check_out(
                &loaded.context(now),
                &input_for(None),
            ))?;
            let partner = input
                .partner
                .clone()
                .ok_or_else(|| Error::NotReady("no partner".into()))?;
            let kind = EventKind::CheckedOut {
                partner: partner.agent_id,
                partner_device: partner.device_id,
                partner_fix: partner.fix,
                cosignature: input.cosignature.clone(),
            };
            let recorded = record(tx, &loaded, kind, now, fix, violations)?;
            tx.set_visit_state(visit, VisitState::CheckedOut, now.best_ms())?;
            Ok(recorded)
        })
    }

    /// The visit's events, decrypted and checked against the stored chain head.
    pub fn events(&self, visit: VisitId) -> Result<Vec<Event>> {
        self.store.read(|tx| {
            tx.verify_visit_chain(visit)?;
            Ok::<_, Error>(tx.events(visit)?)
        })
    }

    /// The visit as stored.
    pub fn visit(&self, visit: VisitId) -> Result<VisitRecord> {
        self.store
            .read(|tx| Ok::<_, Error>(tx.visit(visit)?))?
            .ok_or_else(|| Error::NotFound {
                what: format!("visit {visit}"),
            })
    }

    /// The case of a visit, checked against the server's key (card and ID numbers masked).
    pub fn case_of(&self, visit: VisitId) -> Result<Case> {
        self.store.read(|tx| {
            let key = tx
                .server_public_key()?
                .ok_or_else(|| Error::NotEnrolled("no server key: enrol first".into()))?;
            let record = tx.visit(visit)?.ok_or_else(|| Error::NotFound {
                what: format!("visit {visit}"),
            })?;
            let case = tx
                .case(record.visit.case_id)?
                .ok_or_else(|| Error::NotFound {
                    what: format!("case of visit {visit}"),
                })?;
            Ok(case.verify(&key)?)
        })
    }

    /// E03 at this moment: warnings for sealed visits nearing their upload deadline.
    pub fn upload_deadlines(&self, bank_policy: &Policy) -> Result<Vec<Violation>> {
        let now = self.now()?;
        let unsent = self.store.read(unsent_sealed_at)?;
        Ok(rules::check_upload_deadlines(
            bank_policy,
            now.best_ms(),
            &unsent,
        ))
    }

    /// D01: deletes the media of acknowledged visits whose receipt verified, and the data
    /// of cases no longer assigned (never evidence still on its way to the server).
    pub fn purge(&self, assigned: &[CaseId]) -> Result<PurgePlan> {
        let now = self.now()?.best_ms();
        let (held, cases) = self.store.read(held_visits)?;
        let plan = rules::purge_plan(&held, &cases, assigned);
        for visit in &plan.media {
            // Marks the visit purged and returns the blobs no other visit still needs.
            let digests = self
                .store
                .write(|tx| Ok::<_, Error>(tx.purge_visit(*visit, now)?))?;
            for digest in digests {
                if !self
                    .store
                    .read(|tx| Ok::<_, Error>(tx.blob_is_needed(digest)?))?
                {
                    self.blobs.remove(&digest)?;
                }
            }
        }
        for case in &plan.cases {
            self.store
                .write(|tx| Ok::<_, Error>(tx.purge_case_documents(*case)?))?;
        }
        Ok(plan)
    }
}

/// Every visit this phone holds, as the purge plan weighs it, and the cases they belong to.
fn held_visits(tx: &ReadTx<'_>) -> Result<(Vec<HeldVisit>, Vec<CaseId>)> {
    let visits = tx.visits(&[])?;
    let held: Vec<HeldVisit> = visits
        .iter()
        .map(|r| HeldVisit {
            visit_id: r.visit.id,
            case_id: r.visit.case_id,
            state: r.visit.state,
            receipt_verified: r.acknowledged_at_ms.is_some(),
        })
        .collect();
    let mut cases: Vec<_> = visits.iter().map(|r| r.visit.case_id).collect();
    cases.sort();
    cases.dedup();
    Ok((held, cases))
}

fn dedup(violations: &mut Vec<Violation>) {
    let mut seen = Vec::new();
    violations.retain(|v| {
        let fresh = !seen.contains(v);
        if fresh {
            seen.push(v.clone());
        }
        fresh
    });
}
