//! The verification report: one named result per check of DESIGN.md §7.

use serde::Serialize;

use crate::model::BundleId;

/// The checks, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// `manifest.json` is canonical JSON of a v1 manifest.
    CanonicalBytes,
    /// Every blob is present with its digest and size; nothing missing or extra.
    BlobDigests,
    /// The event log is one unbroken hash chain ending at its head.
    EventChain,
    /// Lead and partner, two distinct agents of the team, signed with enrolled, unrevoked keys.
    Signatures,
    /// The approval (and the policy) are signed by the server and match the visit.
    ApprovalSignature,
    /// The visit ticket is signed by the server and matches the approval and visit.
    TicketSignature,
    /// The rules re-evaluated over the visit.
    Rules,
    /// The device's chain of manifests (`seq`, `prev_manifest`).
    DeviceChain,
    /// The server's signed ingest receipt.
    ServerReceipt,
    /// The manifest's inclusion proof in the transparency log.
    InclusionProof,
    /// The log's signed checkpoint.
    Checkpoint,
    /// Events lie between the ticket's issue time and the sealed time.
    TimeWindow,
    /// Every entry is accounted for: the bundle's own files, and derived files
    /// (`documents/`, `keys/`, `signatures/`, `SHA256SUMS`, `VERIFY.txt`) byte-identical to
    /// what the exporter derives; no other entry, no name that escapes its folder.
    ExportFiles,
    /// The export's `report.html` is the one the server's signed note (requester, purpose,
    /// time) binds to this bundle; "not present" in a bundle exported without them.
    ExportNote,
}

impl CheckName {
    /// Every check, in report order.
    pub const ALL: [CheckName; 14] = [
        Self::CanonicalBytes,
        Self::BlobDigests,
        Self::EventChain,
        Self::Signatures,
        Self::ApprovalSignature,
        Self::TicketSignature,
        Self::Rules,
        Self::DeviceChain,
        Self::ServerReceipt,
        Self::InclusionProof,
        Self::Checkpoint,
        Self::TimeWindow,
        Self::ExportFiles,
        Self::ExportNote,
    ];

    /// The name shown and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CanonicalBytes => "canonical_bytes",
            Self::BlobDigests => "blob_digests",
            Self::EventChain => "event_chain",
            Self::Signatures => "signatures",
            Self::ApprovalSignature => "approval_signature",
            Self::TicketSignature => "ticket_signature",
            Self::Rules => "rules",
            Self::DeviceChain => "device_chain",
            Self::ServerReceipt => "server_receipt",
            Self::InclusionProof => "inclusion_proof",
            Self::Checkpoint => "checkpoint",
            Self::TimeWindow => "time_window",
            Self::ExportFiles => "export_files",
            Self::ExportNote => "export_note",
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CheckResult {
    /// Checked and holds.
    Pass,
    /// Checked and holds, with flags a reviewer must see (evidence is never refused for a
    /// business reason: it is kept with its flags).
    Flagged {
        /// Each flag, naming its rule.
        flags: Vec<String>,
    },
    /// Checked and does not hold.
    Fail {
        /// What is wrong (no personal data).
        reason: String,
    },
    /// Could not be checked, e.g. no trusted key was given; never counts as a pass.
    NotChecked {
        /// Why not.
        why: String,
    },
    /// The bundle has nothing to check here yet (e.g. no server receipt).
    NotPresent,
}

impl CheckResult {
    /// A failure with a reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self::Fail {
            reason: reason.into(),
        }
    }

    /// Not checked, with why.
    pub fn not_checked(why: impl Into<String>) -> Self {
        Self::NotChecked { why: why.into() }
    }

    /// Whether this is a failure.
    pub fn is_fail(&self) -> bool {
        matches!(self, Self::Fail { .. })
    }

    /// Short label: `pass`, `FAIL`, `not checked`, `not present`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Flagged { .. } => "flagged",
            Self::Fail { .. } => "FAIL",
            Self::NotChecked { .. } => "not checked",
            Self::NotPresent => "not present",
        }
    }

    /// The reason or why, if any.
    pub fn detail(&self) -> String {
        match self {
            Self::Fail { reason } => reason.clone(),
            Self::NotChecked { why } => why.clone(),
            Self::Flagged { flags } => flags.join("; "),
            Self::Pass | Self::NotPresent => String::new(),
        }
    }
}

/// One named check and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// Its result.
    #[serde(flatten)]
    pub result: CheckResult,
}

/// Every check's result for one bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationReport {
    /// The bundle's id, when the manifest could be read.
    pub bundle_id: Option<BundleId>,
    /// SHA-256 of `manifest.json` (hex), when it could be read.
    pub manifest_digest: Option<String>,
    /// One entry per check, in [`CheckName::ALL`] order.
    pub checks: Vec<Check>,
    /// No check failed (checks not performed are listed, never counted as passes).
    pub valid: bool,
}

impl VerificationReport {
    pub(crate) fn new(
        bundle_id: Option<BundleId>,
        manifest_digest: Option<String>,
        checks: Vec<Check>,
    ) -> Self {
        let valid = !checks.iter().any(|c| c.result.is_fail());
        Self {
            bundle_id,
            manifest_digest,
            checks,
            valid,
        }
    }

    /// Whether no check failed. Checks that could not be performed (no trust given, rules
    /// not wired, server parts absent) do not fail the bundle but are reported as such.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Whether every check passed or had nothing to check: nothing was left unchecked.
    pub fn is_fully_checked(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.result, CheckResult::Pass | CheckResult::NotPresent))
    }

    /// The result of one check.
    pub fn result(&self, name: CheckName) -> &CheckResult {
        const MISSING: &CheckResult = &CheckResult::NotPresent;
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map_or(MISSING, |c| &c.result)
    }

    /// The names of the failed checks.
    pub fn failed(&self) -> Vec<CheckName> {
        self.checks
            .iter()
            .filter(|c| c.result.is_fail())
            .map(|c| c.name)
            .collect()
    }
}
