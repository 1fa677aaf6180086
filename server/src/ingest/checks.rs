//! What only the server can check at ingest, beside core's `verify_bundle`: the check-in
//! against the case's approved address as the server holds it (docs/decisions.md: a v1
//! manifest carries no address position). Outside the fence is a flag (DOMAIN.md V05: F),
//! never a rejection; an unknown case or an address not approved for it is a failure.

use serde::{Deserialize, Serialize};
use tandem_core::bundle::{CheckResult, Manifest, VerificationReport};
use tandem_core::model::{Approval, BankId, EventKind, Policy};
use tandem_core::place::{Fix, GeofenceOutcome, check_geofence};

use crate::db::ledger::CaseAddress;

/// The server check's name in answers and stored reports.
pub const CASE_ADDRESS: &str = "case_address";

/// Checks core's verifier leaves "not checked" without trust; the server always has its
/// trust, so for it these must pass.
const MUST_BE_CHECKED: [tandem_core::bundle::CheckName; 3] = [
    tandem_core::bundle::CheckName::Signatures,
    tandem_core::bundle::CheckName::ApprovalSignature,
    tandem_core::bundle::CheckName::TicketSignature,
];

/// Core's report and the server's own check: what ingest decided on.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Core's verification report.
    #[serde(flatten)]
    pub core: VerificationReport,
    /// The check-in against the case's address, as the server holds it.
    pub case_address: CheckResult,
}

impl IngestReport {
    /// The checks that failed, by name: core's, the server's, and a check that needed a key
    /// and was left unchecked (the server has every key it trusts: unchecked means failed).
    pub fn failed(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .core
            .checks
            .iter()
            .filter(|c| {
                c.result.is_fail()
                    || (MUST_BE_CHECKED.contains(&c.name)
                        && matches!(c.result, CheckResult::NotChecked { .. }))
            })
            .map(|c| c.name.as_str().to_owned())
            .collect();
        if self.case_address.is_fail() {
            out.push(CASE_ADDRESS.to_owned());
        }
        out
    }

    /// Flags a reviewer must see (each names its check).
    pub fn flags(&self) -> Vec<String> {
        let core = self.core.checks.iter().filter_map(|c| match &c.result {
            CheckResult::Flagged { flags } => Some((c.name.as_str(), flags)),
            _ => None,
        });
        let server = match &self.case_address {
            CheckResult::Flagged { flags } => Some((CASE_ADDRESS, flags)),
            _ => None,
        };
        core.chain(server)
            .flat_map(|(name, flags)| flags.iter().map(move |f| format!("{name}: {f}")))
            .collect()
    }
}

/// What a commit stores as the bundle's report (`bundles.report`, JSON) and answers from on
/// every retry: the failing checks' names, the review flags, and every check by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    /// The failing checks' names; empty when the bundle was accepted.
    #[serde(default)]
    pub failed_checks: Vec<String>,
    /// Flags a reviewer will see (each names its check).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Every check by name: the [`IngestReport`] as JSON, served as stored.
    #[serde(default)]
    pub report: serde_json::Value,
}

impl StoredReport {
    /// What ingest decided on, as it is stored.
    pub fn new(report: &IngestReport) -> Result<Self, serde_json::Error> {
        Ok(Self {
            failed_checks: report.failed(),
            flags: report.flags(),
            report: serde_json::to_value(report)?,
        })
    }
}

/// The check-in fixes of both phones against the approved address of the case the server
/// holds (converted to WGS-84 by core's `place` module before any distance).
pub fn check_case_address(
    manifest: &Manifest,
    case: Option<&(BankId, Vec<CaseAddress>)>,
) -> CheckResult {
    let Some((bank, addresses)) = case else {
        return CheckResult::fail("the case is not known to this server");
    };
    if *bank != manifest.visit.bank_id {
        return CheckResult::fail("the case belongs to another bank");
    }
    let approval: Approval =
        match tandem_core::canonical::from_canonical_slice(manifest.visit.approval.body.as_bytes())
        {
            Ok(a) => a,
            Err(_) => return CheckResult::not_checked("approval unreadable"),
        };
    let policy: Policy =
        match tandem_core::canonical::from_canonical_slice(manifest.visit.policy.body.as_bytes()) {
            Ok(p) => p,
            Err(_) => return CheckResult::not_checked("policy unreadable"),
        };
    let Some((event, address_id, partner_fix)) =
        manifest.events.iter().find_map(|e| match &e.kind {
            EventKind::CheckedIn {
                address_id,
                partner_fix,
                ..
            } => Some((e, *address_id, partner_fix.as_ref())),
            _ => None,
        })
    else {
        return CheckResult::not_checked("the visit has no check-in");
    };
    if !approval.address_ids.contains(&address_id) {
        return CheckResult::fail("checked in at an address the approval does not name");
    }
    let Some(address) = addresses.iter().find(|a| a.id == address_id) else {
        return CheckResult::fail("checked in at an address that is not the case's");
    };
    let mut flags = Vec::new();
    for (who, fix) in [("lead", event.fix.as_ref()), ("partner", partner_fix)] {
        flags.extend(measure(who, fix, address, &policy));
    }
    if flags.is_empty() {
        CheckResult::Pass
    } else {
        CheckResult::Flagged { flags }
    }
}

fn measure(who: &str, fix: Option<&Fix>, address: &CaseAddress, policy: &Policy) -> Option<String> {
    let Some(fix) = fix else {
        return Some(format!("V05 the {who} phone had no fix at check-in"));
    };
    match check_geofence(
        fix,
        &address.position,
        policy.geofence_radius_m,
        policy.max_fix_accuracy_m,
    ) {
        GeofenceOutcome::Inside { .. } => None,
        GeofenceOutcome::Outside {
            distance_m,
            allowed_m,
        } => Some(format!(
            "V05 the {who} phone checked in {distance_m} m from the case's address, outside the {allowed_m} m fence"
        )),
        GeofenceOutcome::AccuracyTooPoor { accuracy_m, max_m } => Some(format!(
            "V05 the {who} phone's fix was accurate to {accuracy_m} m only (at most {max_m} m counts)"
        )),
        GeofenceOutcome::Mock => Some(format!("V05 the {who} phone's fix was a mock location")),
    }
}

#[cfg(test)]
mod tests {
    use super::StoredReport;

    /// A report as commits have stored it since ingest began (`serde_json::json!` of the
    /// three keys, every object's keys sorted): read and written again, the same bytes.
    const STORED: &str = r#"{"failed_checks":["signatures","case_address"],"flags":["case_address: V05 the lead phone had no fix at check-in"],"report":{"bundle_id":"0190f5c2-0000-7000-8000-000000000001","case_address":{"detail":"the case is not known to this server","result":"fail"},"checks":[{"detail":"bad","name":"signatures","result":"fail"}]}}"#;

    #[test]
    fn a_stored_report_reads_and_writes_the_same_bytes() {
        let read: StoredReport = serde_json::from_str(STORED).unwrap();
        assert_eq!(read.failed_checks, ["signatures", "case_address"]);
        assert_eq!(
            read.flags,
            ["case_address: V05 the lead phone had no fix at check-in"]
        );
        assert_eq!(
            read.report["case_address"]["detail"],
            "the case is not known to this server"
        );
        assert_eq!(serde_json::to_string(&read).unwrap(), STORED);
    }

    #[test]
    fn a_stored_report_is_written_as_the_json_object_of_its_three_keys() {
        let report = StoredReport {
            failed_checks: vec!["blob_digests".into()],
            flags: Vec::new(),
            report: serde_json::json!({"checks": [], "bundle_id": null}),
        };
        let as_before = serde_json::to_string(&serde_json::json!({
            "failed_checks": report.failed_checks,
            "flags": report.flags,
            "report": report.report,
        }))
        .unwrap();
        assert_eq!(serde_json::to_string(&report).unwrap(), as_before);
    }

    #[test]
    fn a_stored_report_without_a_key_reads_as_empty() {
        let read: StoredReport = serde_json::from_str("{}").unwrap();
        assert!(read.failed_checks.is_empty() && read.flags.is_empty());
        assert!(read.report.is_null());
    }
}
