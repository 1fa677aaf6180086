//! The one verification routine: every check of DESIGN.md §7, each reported by name.

use std::collections::BTreeSet;

use super::export_note::check_export_note;
use super::manifest::MANIFEST_PURPOSE;
use super::signatures::MAX_SIGNATURES_BYTES;
use super::{
    BundleSource, Check, CheckName, CheckResult, Manifest, SignerRole, Trust, VerificationReport,
    parse_signatures,
};
use crate::canonical::{self, MAX_DOCUMENT_BYTES};
use crate::crypto::sha256;
use crate::model::{Approval, Policy, Signed, SignedPurpose, VisitTicket, verify_chain};

pub(crate) const NO_TRUST: &str = "not checked (no trust given)";

/// Most failures listed in one check's reason; the rest are counted.
const MAX_LISTED: usize = 3;

mod blobs;
mod entries;
mod receipt;

pub(crate) use blobs::blob_file_name;
use blobs::check_blobs;
pub use receipt::{CHECKPOINT_FILE, INCLUSION_PROOF_FILE, RECEIPT_FILE, ServerReceipt};

/// Verifies a bundle: reads `manifest.json` and `signatures.json`, streams every blob
/// (hashed on up to four threads, 1 MiB at a time) and reports every check by name.
///
/// A bundle that cannot be read at all still gets a report: its `canonical_bytes` check
/// fails and the checks that need the manifest are "not checked".
pub fn verify_bundle(source: &dyn BundleSource, trust: &Trust) -> VerificationReport {
    let bytes = match source.read_small("manifest.json", MAX_DOCUMENT_BYTES as u64) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return unreadable(source, "manifest.json is missing".into()),
        Err(e) => return unreadable(source, e.to_string()),
    };
    let manifest = match Manifest::parse(&bytes) {
        Ok(manifest) => manifest,
        Err(e) => return unreadable(source, e.to_string()),
    };
    let docs = Documents::read(&manifest);
    let mut checks = vec![
        Check {
            name: CheckName::CanonicalBytes,
            result: CheckResult::Pass,
        },
        Check {
            name: CheckName::BlobDigests,
            result: check_blobs(source, &manifest),
        },
        Check {
            name: CheckName::EventChain,
            result: check_event_chain(&manifest),
        },
        Check {
            name: CheckName::Signatures,
            result: check_signatures(source, &bytes, &manifest, &docs, trust),
        },
        Check {
            name: CheckName::ApprovalSignature,
            result: check_approval(&manifest, &docs, trust),
        },
        Check {
            name: CheckName::TicketSignature,
            result: check_ticket(&manifest, &docs, trust),
        },
        Check {
            name: CheckName::Rules,
            result: check_rules(&manifest, &docs),
        },
        Check {
            name: CheckName::DeviceChain,
            result: check_device_chain(&manifest, &docs),
        },
    ];
    let server = receipt::check_receipt(source, &bytes, &manifest, trust);
    for (name, result) in [
        (CheckName::ServerReceipt, server.server_receipt),
        (CheckName::InclusionProof, server.inclusion_proof),
        (CheckName::Checkpoint, server.checkpoint),
    ] {
        checks.push(Check { name, result });
    }
    checks.push(Check {
        name: CheckName::TimeWindow,
        result: check_time_window(&manifest, &docs, server.checkpoint_ms),
    });
    checks.push(Check {
        name: CheckName::ExportFiles,
        result: entries::check_entries(source, &bytes, &manifest),
    });
    checks.push(Check {
        name: CheckName::ExportNote,
        result: check_export_note(source, &bytes, manifest.bundle_id, trust),
    });
    VerificationReport::new(
        Some(manifest.bundle_id),
        Some(sha256(&bytes).to_hex()),
        checks,
    )
}

/// The report for a bundle whose manifest cannot be read. The server's checks are "not
/// present" only when `receipt/` is: a receipt that is there but cannot be checked without
/// the manifest is "not checked".
fn unreadable(source: &dyn BundleSource, reason: String) -> VerificationReport {
    let has_receipt = [RECEIPT_FILE, INCLUSION_PROOF_FILE, CHECKPOINT_FILE]
        .iter()
        .any(|name| !matches!(source.read_small(name, 1 << 16), Ok(None)));
    let checks = CheckName::ALL
        .iter()
        .map(|&name| Check {
            name,
            result: match name {
                CheckName::CanonicalBytes => CheckResult::fail(reason.clone()),
                CheckName::ServerReceipt | CheckName::InclusionProof | CheckName::Checkpoint
                    if !has_receipt =>
                {
                    CheckResult::NotPresent
                }
                _ => CheckResult::not_checked("manifest.json unreadable"),
            },
        })
        .collect();
    VerificationReport::new(None, None, checks)
}

/// The server-signed documents embedded in the manifest, read (not yet verified).
struct Documents {
    approval: Result<Approval, String>,
    ticket: Result<VisitTicket, String>,
    policy: Result<Policy, String>,
}

impl Documents {
    fn read(manifest: &Manifest) -> Self {
        Self {
            approval: read_body(&manifest.visit.approval),
            ticket: read_body(&manifest.visit.ticket),
            policy: read_body(&manifest.visit.policy),
        }
    }
}

fn read_body<T: SignedPurpose + serde::Serialize + serde::de::DeserializeOwned>(
    signed: &Signed<T>,
) -> Result<T, String> {
    canonical::from_canonical_slice(signed.body.as_bytes())
        .map_err(|e| format!("{} body: {e}", T::PURPOSE))
}

/// Joins failures into one reason, listing the first few.
pub(crate) fn failures(mut problems: Vec<String>) -> CheckResult {
    if problems.is_empty() {
        return CheckResult::Pass;
    }
    let total = problems.len();
    problems.truncate(MAX_LISTED);
    let mut reason = problems.join("; ");
    if total > MAX_LISTED {
        reason.push_str(&format!("; and {} more", total - MAX_LISTED));
    }
    CheckResult::fail(reason)
}

fn check_event_chain(manifest: &Manifest) -> CheckResult {
    match verify_chain(
        manifest.visit.visit_id,
        &manifest.events,
        Some(manifest.events_head),
    ) {
        Ok(()) => CheckResult::Pass,
        Err(e) => CheckResult::fail(e.to_string()),
    }
}

fn check_signatures(
    source: &dyn BundleSource,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    docs: &Documents,
    trust: &Trust,
) -> CheckResult {
    let signatures = match source.read_small("signatures.json", MAX_SIGNATURES_BYTES) {
        Ok(Some(bytes)) => match parse_signatures(&bytes) {
            Ok(signatures) => signatures,
            Err(e) => return CheckResult::fail(e.to_string()),
        },
        Ok(None) => return CheckResult::fail("signatures.json is missing"),
        Err(e) => return CheckResult::fail(e.to_string()),
    };
    let approval = match &docs.approval {
        Ok(approval) => approval,
        Err(e) => return CheckResult::fail(format!("no team to check signers against: {e}")),
    };
    let visit = &manifest.visit;
    let mut problems = Vec::new();
    let roles: Vec<SignerRole> = signatures.iter().map(|s| s.role).collect();
    if roles.len() != 2
        || !roles.contains(&SignerRole::Lead)
        || !roles.contains(&SignerRole::Partner)
    {
        problems.push(format!(
            "expected one lead and one partner signature, found {roles:?}"
        ));
    }
    if visit.lead == visit.partner {
        problems.push("lead and partner are the same agent".into());
    }
    let mut agents = BTreeSet::new();
    for s in &signatures {
        let role = s.role.as_str();
        if !agents.insert(s.agent_id) {
            problems.push(format!("agent {} signs more than once", s.agent_id));
        }
        let named = match s.role {
            SignerRole::Lead => visit.lead,
            SignerRole::Partner => visit.partner,
        };
        if s.agent_id != named {
            problems.push(format!(
                "{role} signature is by agent {}, the manifest names {named}",
                s.agent_id
            ));
        }
        let Some(member) = approval.member(s.agent_id) else {
            problems.push(format!(
                "{role} signer {} is not on the approved team",
                s.agent_id
            ));
            continue;
        };
        if let Err(e) = s
            .record()
            .verify(&member.public_key, MANIFEST_PURPOSE, manifest_bytes)
        {
            problems.push(format!("{role} signature: {e}"));
            continue;
        }
        if trust.has_devices() {
            match trust.devices.get(&s.kid) {
                None => problems.push(format!("{role} key {} is not enrolled", s.kid)),
                Some(enrolment) => {
                    if enrolment.agent_id != s.agent_id || enrolment.device_id != member.device_id {
                        problems.push(format!(
                            "{role} key {} is enrolled to another agent or phone",
                            s.kid
                        ));
                    }
                    if manifest.sealed_at_ms < enrolment.enrolled_at_ms {
                        problems.push(format!("{role} key {} signed before its enrolment", s.kid));
                    }
                    if let Some(revoked) = enrolment.revoked_at_ms
                        && manifest.sealed_at_ms >= revoked
                    {
                        problems.push(format!(
                            "{role} key {} was revoked at {revoked}, before sealing at {}",
                            s.kid, manifest.sealed_at_ms
                        ));
                    }
                }
            }
        }
    }
    match failures(problems) {
        CheckResult::Pass if !trust.has_devices() => CheckResult::not_checked(format!(
            "both signatures verify with the team keys in the approval; enrolment and revocation {NO_TRUST}"
        )),
        other => other,
    }
}

/// Checks a server signature on an embedded document, when a server key is trusted.
fn server_signature<T: SignedPurpose + serde::Serialize + serde::de::DeserializeOwned>(
    signed: &Signed<T>,
    trust: &Trust,
) -> Option<String> {
    let key = match trust.server_key(&signed.signature.kid) {
        Some(key) => key,
        None => {
            return Some(format!(
                "{} signed by key {}, not a trusted server key",
                T::PURPOSE,
                signed.signature.kid
            ));
        }
    };
    // The body was already read strictly (`Documents`): only the signature is left.
    signed
        .signature
        .verify(key, T::PURPOSE, signed.body.as_bytes())
        .err()
        .map(|e| format!("{} signature: {e}", T::PURPOSE))
}

fn check_approval(manifest: &Manifest, docs: &Documents, trust: &Trust) -> CheckResult {
    let visit = &manifest.visit;
    let mut problems = Vec::new();
    if visit.approval.digest() != visit.approval_digest {
        problems.push("approval_digest is not the digest of the approval body".to_owned());
    }
    if visit.policy.digest() != visit.policy_digest {
        problems.push("policy_digest is not the digest of the policy body".to_owned());
    }
    match &docs.approval {
        Err(e) => problems.push(e.clone()),
        Ok(a) => {
            if a.bank_id != visit.bank_id || a.case_id != visit.case_id {
                problems.push("the approval is for another bank or case".into());
            }
            let team: Vec<_> = a.team.iter().map(|m| m.agent_id).collect();
            if team != visit.team {
                problems.push("the visit's team is not the approved team".into());
            }
            for (role, agent) in [("lead", visit.lead), ("partner", visit.partner)] {
                if a.member(agent).is_none() {
                    problems.push(format!("the {role} is not on the approved team"));
                }
            }
            match &docs.policy {
                Err(e) => problems.push(e.clone()),
                Ok(p) => {
                    if p.bank_id != visit.bank_id || p.version != a.policy_version {
                        problems.push(format!(
                            "policy is version {} of its bank, the approval names version {}",
                            p.version, a.policy_version
                        ));
                    }
                }
            }
        }
    }
    if !problems.is_empty() || !trust.has_server_keys() {
        return match failures(problems) {
            CheckResult::Pass => CheckResult::not_checked(format!(
                "approval and policy match the visit; server signature {NO_TRUST}"
            )),
            other => other,
        };
    }
    problems.extend(server_signature(&visit.approval, trust));
    problems.extend(server_signature(&visit.policy, trust));
    failures(problems)
}

fn check_ticket(manifest: &Manifest, docs: &Documents, trust: &Trust) -> CheckResult {
    let visit = &manifest.visit;
    let mut problems = Vec::new();
    if visit.ticket.digest() != visit.ticket_digest {
        problems.push("ticket_digest is not the digest of the ticket body".to_owned());
    }
    match &docs.ticket {
        Err(e) => problems.push(e.clone()),
        Ok(t) => {
            if t.visit_id != visit.visit_id {
                problems.push("the ticket is for another visit".into());
            }
            match &docs.approval {
                Ok(a) if a.id != t.approval_id => {
                    problems.push("the ticket names another approval".into());
                }
                Err(_) => problems.push("approval unreadable: ticket cannot be matched".into()),
                Ok(_) => {}
            }
        }
    }
    if !problems.is_empty() || !trust.has_server_keys() {
        return match failures(problems) {
            CheckResult::Pass => CheckResult::not_checked(format!(
                "ticket matches the visit and approval; server signature {NO_TRUST}"
            )),
            other => other,
        };
    }
    problems.extend(server_signature(&visit.ticket, trust));
    failures(problems)
}

/// Re-evaluates the rules over the visit with the rules engine (the same code the phone
/// ran): blocking violations fail, flags and warnings are shown.
fn check_rules(manifest: &Manifest, docs: &Documents) -> CheckResult {
    let (Ok(approval), Ok(policy)) = (&docs.approval, &docs.policy) else {
        return CheckResult::not_checked("the approval or policy cannot be read");
    };
    let violations = crate::rules::review_sealed_visit(
        manifest.visit.visit_id,
        policy,
        approval,
        &manifest.events,
    );
    let line = |v: &crate::rules::Violation| format!("{} {:?}: {}", v.rule, v.outcome, v.message);
    if crate::rules::has_blocking(&violations) {
        let blocking: Vec<String> = crate::rules::blocking(&violations)
            .into_iter()
            .map(line)
            .collect();
        CheckResult::fail(blocking.join("; "))
    } else if violations.is_empty() {
        CheckResult::Pass
    } else {
        CheckResult::Flagged {
            flags: violations.iter().map(line).collect(),
        }
    }
}

fn check_device_chain(manifest: &Manifest, docs: &Documents) -> CheckResult {
    let device = &manifest.device;
    let mut problems = Vec::new();
    match (device.seq, device.prev_manifest) {
        (0, Some(_)) => problems.push("seq 0 must have no previous manifest".to_owned()),
        (seq, None) if seq > 0 => {
            problems.push(format!("seq {seq} must name its previous manifest"));
        }
        _ => {}
    }
    match &docs.approval {
        Ok(a) => match a.member(manifest.visit.lead) {
            Some(m) if m.device_id == device.device_id && m.public_key.kid() == device.kid => {}
            _ => problems.push("the sealing device is not the lead's phone on the team".into()),
        },
        Err(_) => return CheckResult::not_checked("approval unreadable"),
    }
    match failures(problems) {
        CheckResult::Pass if device.seq > 0 => CheckResult::not_checked(format!(
            "needs the device's manifest seq {} to check prev_manifest (gaps and forks show across bundles)",
            device.seq - 1
        )),
        other => other,
    }
}

/// The window is [ticket issued, sealed]; with a verified server receipt its upper bound is
/// the checkpoint's time instead (the phone's own sealing time proves nothing), and the
/// sealing time must lie inside it too.
fn check_time_window(
    manifest: &Manifest,
    docs: &Documents,
    checkpoint_ms: Option<i64>,
) -> CheckResult {
    let ticket = match &docs.ticket {
        Ok(ticket) => ticket,
        Err(_) => return CheckResult::not_checked("ticket unreadable"),
    };
    let from = ticket.issued_at_ms;
    let until = checkpoint_ms.unwrap_or(manifest.sealed_at_ms);
    let mut problems = Vec::new();
    if manifest.sealed_at_ms < from {
        problems.push(format!(
            "sealed at {}, before the ticket was issued at {from}",
            manifest.sealed_at_ms
        ));
    }
    if let Some(checkpoint) = checkpoint_ms
        && manifest.sealed_at_ms > checkpoint
    {
        problems.push(format!(
            "sealed at {}, after the server's checkpoint at {checkpoint}",
            manifest.sealed_at_ms
        ));
    }
    for event in &manifest.events {
        let at = event.at.best_ms();
        if at < from || at > until {
            problems.push(format!(
                "event {} at {at} is outside [{from}, {until}]",
                event.seq
            ));
        }
    }
    for blob in &manifest.blobs {
        if blob.captured_at_ms < from || blob.captured_at_ms > until {
            problems.push(format!(
                "blob {} captured at {} is outside [{from}, {until}]",
                blob.sha256, blob.captured_at_ms
            ));
        }
    }
    failures(problems)
}
