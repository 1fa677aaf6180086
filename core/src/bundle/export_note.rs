//! The export's own part, `export/`: `report.html` (what a judge reads first: the timeline,
//! photos, positions, receipts and every check, self-contained) and `note.json`, the
//! server's signed note of who exported the bundle, when and why (the watermark, A03),
//! which binds `report.html` by its digest and the bundle by its manifest's digest.
//!
//! The note is not part of the evidence: the bundle verifies exactly as before without it.
//! With it, the `export_note` check says whether the report travelling with the evidence is
//! the one the server produced for this bundle.
//!
//! Threat: a reader of an export received from someone else — a report rewritten to say
//! what the evidence does not (its digest no longer matches the signed note), a note
//! copied from another bundle's export, or a purpose and requester changed after the fact.

use serde::{Deserialize, Serialize};

use super::verify::{NO_TRUST, failures};
use super::{BundleError, BundleSource, CheckResult, Trust};
use crate::canonical;
use crate::crypto::{Digest, sha256};
use crate::model::{BundleId, Signed, SignedPurpose, VisitId};

/// `export/note.json`: the signed export note (`{body, signature}`, canonical JSON).
pub const EXPORT_NOTE_FILE: &str = "export/note.json";
/// `export/report.html`: the report the note binds.
pub const EXPORT_REPORT_FILE: &str = "export/report.html";
/// The folder, as a ZIP may list it.
pub(crate) const EXPORT_DIR: &str = "export/";

/// Largest note read: a few hundred bytes in practice.
const MAX_NOTE_BYTES: u64 = 64 * 1024;
/// Largest report read: thumbnails inlined as data URIs make it a few MiB at most.
pub const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

/// Who took the evidence out, when and why; signed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportNote {
    /// The exported bundle.
    pub bundle_id: BundleId,
    /// Its visit.
    pub visit_id: VisitId,
    /// SHA-256 of the bundle's `manifest.json`.
    pub manifest_sha256: Digest,
    /// The requester's account id on the server.
    pub requester_id: String,
    /// The requester's name as the server knows it.
    pub requester_name: String,
    /// The requester's role (`legal`, `admin`).
    pub requester_role: String,
    /// The purpose stated for this export.
    pub purpose: String,
    /// When the server wrote the export, UTC ms.
    pub exported_at_ms: i64,
    /// The report's language (`zh-CN`, `en`).
    pub language: String,
    /// SHA-256 of `export/report.html`.
    pub report_sha256: Digest,
    /// Its size in bytes.
    pub report_size: u64,
}

impl SignedPurpose for ExportNote {
    const PURPOSE: &'static str = "export-note";
}

/// What an export carries besides the bundle: the report and the note that binds it.
#[derive(Debug, Clone)]
pub struct ExportAttachment {
    /// The signed note.
    pub note: Signed<ExportNote>,
    /// The bytes of `report.html`, as the note's digest names them.
    pub report_html: Vec<u8>,
}

impl ExportAttachment {
    /// The two entries as (name, bytes).
    pub(crate) fn entries(&self) -> Result<[(&'static str, Vec<u8>); 2], BundleError> {
        let note =
            canonical::to_canonical_vec(&self.note).map_err(|source| BundleError::Canonical {
                name: EXPORT_NOTE_FILE,
                source,
            })?;
        Ok([
            (EXPORT_REPORT_FILE, self.report_html.clone()),
            (EXPORT_NOTE_FILE, note),
        ])
    }
}

/// The `export_note` check: absent is "not present"; present, the note must be signed by a
/// trusted server key, name this bundle and its manifest, and bind the report's exact bytes.
pub(crate) fn check_export_note(
    source: &dyn BundleSource,
    manifest_bytes: &[u8],
    bundle_id: BundleId,
    trust: &Trust,
) -> CheckResult {
    let note = source.read_small(EXPORT_NOTE_FILE, MAX_NOTE_BYTES);
    let report = source.read_small(EXPORT_REPORT_FILE, MAX_REPORT_BYTES);
    let (note, report) = match (note, report) {
        (Ok(None), Ok(None)) => return CheckResult::NotPresent,
        (Err(e), _) | (_, Err(e)) => return CheckResult::fail(e.to_string()),
        (Ok(None), Ok(Some(_))) => {
            return CheckResult::fail(format!(
                "{EXPORT_REPORT_FILE} without the server's note ({EXPORT_NOTE_FILE}) that binds it"
            ));
        }
        (Ok(Some(_)), Ok(None)) => {
            return CheckResult::fail(format!(
                "{EXPORT_NOTE_FILE} without the report it binds ({EXPORT_REPORT_FILE})"
            ));
        }
        (Ok(Some(note)), Ok(Some(report))) => (note, report),
    };
    let signed: Signed<ExportNote> = match canonical::from_canonical_slice(&note) {
        Ok(s) => s,
        Err(e) => return CheckResult::fail(format!("{EXPORT_NOTE_FILE}: {e}")),
    };
    let body: ExportNote = match canonical::from_canonical_slice(signed.body.as_bytes()) {
        Ok(b) => b,
        Err(e) => return CheckResult::fail(format!("{EXPORT_NOTE_FILE} body: {e}")),
    };
    let mut problems = Vec::new();
    if body.bundle_id != bundle_id {
        problems.push(format!(
            "the note is for bundle {}, not this one",
            body.bundle_id
        ));
    }
    if body.manifest_sha256 != sha256(manifest_bytes) {
        problems.push("the note names another manifest".to_owned());
    }
    if body.report_size != report.len() as u64 || body.report_sha256 != sha256(&report) {
        problems.push(format!(
            "{EXPORT_REPORT_FILE} is not the report the note binds (its digest or size differs)"
        ));
    }
    if !trust.has_server_keys() {
        return match failures(problems) {
            CheckResult::Pass => CheckResult::not_checked(format!(
                "the note binds this bundle and its report; the server's signature {NO_TRUST}"
            )),
            other => other,
        };
    }
    match trust.server_key(&signed.signature.kid) {
        None => problems.push(format!(
            "the note is signed by key {}, not a trusted server key",
            signed.signature.kid
        )),
        Some(key) => {
            if let Err(e) = signed.verify(key) {
                problems.push(e.to_string());
            }
        }
    }
    failures(problems)
}
