//! The `export_files` check: every entry of a bundle or its export is accounted for. The
//! bundle's own files are checked by the other checks; the server's certificates of the
//! signing keys must be well formed (their signatures are checked with the trusted server
//! key); the export's `export/` is checked by `export_note`; every derived file (`documents/`, `keys/`, `signatures/`, `SHA256SUMS`,
//! `VERIFY.txt`) must be byte-identical to what the exporter derives from this very bundle;
//! anything else, and any name that could escape the folder it is unpacked into, fails.
//!
//! Threat: a reader of an export received from someone else — a doctored `VERIFY.txt` that
//! runs a script and prints "verified", a convenience copy of the approval showing another
//! cash limit, a key added to `keys/`, an entry named `../evil.txt`.

use std::collections::{BTreeMap, BTreeSet};

use super::failures;
use super::receipt::read_entry;
use crate::bundle::certificates::{key_file, read_certificate, signer_kids};
use crate::bundle::export_note::EXPORT_DIR;
use crate::bundle::signatures::MAX_SIGNATURES_BYTES;
use crate::bundle::{
    BundleSource, CERTIFICATES_DIR, CHECKPOINT_FILE, CheckResult, EXPORT_NOTE_FILE,
    EXPORT_REPORT_FILE, INCLUSION_PROOF_FILE, Manifest, RECEIPT_FILE, SealedBundle, ServerReceipt,
    certificate_file, derived_files, parse_signatures,
};

use super::blob_file_name;

/// Largest derived file compared (`VERIFY.txt` of a visit with hundreds of blobs).
const MAX_DERIVED_BYTES: u64 = 4 * 1024 * 1024;
/// The folders an export has; a ZIP may list them as entries of their own.
const FOLDERS: [&str; 7] = [
    "blobs/",
    EXPORT_DIR,
    "receipt/",
    "documents/",
    "keys/",
    "signatures/",
    CERTIFICATES_DIR,
];

/// Why a name cannot be an entry of a bundle, if it cannot: it would land outside the
/// folder it is unpacked into, or hide what it is.
pub(super) fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') {
        Some("is an absolute path")
    } else if name.contains('\\') {
        Some("contains a backslash")
    } else if name.split('/').any(|part| part == "..") {
        Some("climbs out of the bundle (`..`)")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

pub(super) fn check_entries(
    source: &dyn BundleSource,
    manifest_bytes: &[u8],
    manifest: &Manifest,
) -> CheckResult {
    let names = match source.entry_names() {
        Ok(None) => return CheckResult::Pass,
        Ok(Some(names)) => names,
        Err(e) => return CheckResult::fail(e.to_string()),
    };
    let mut problems = Vec::new();
    for name in &names {
        if let Some(why) = unsafe_name(name) {
            problems.push(format!("entry {} {why}", name.escape_debug()));
        }
    }
    let own: BTreeSet<String> = ["manifest.json", "signatures.json"]
        .into_iter()
        .chain([RECEIPT_FILE, INCLUSION_PROOF_FILE, CHECKPOINT_FILE])
        // Checked by `export_note`.
        .chain([EXPORT_NOTE_FILE, EXPORT_REPORT_FILE])
        .map(str::to_owned)
        .chain(
            manifest
                .blobs
                .iter()
                .map(|b| format!("blobs/{}", blob_file_name(b))),
        )
        .collect();
    // The server's certificates of the signing keys: each well formed and for its key;
    // their signatures are checked with the server key the reader trusts.
    let mut certificates = BTreeSet::new();
    for kid in signer_kids(source) {
        match read_certificate(source, &kid) {
            None => {}
            Some(Ok(_)) => {
                certificates.insert(certificate_file(&kid));
            }
            Some(Err(e)) => {
                certificates.insert(certificate_file(&kid));
                problems.push(e);
            }
        }
    }
    let derived = derive(source, manifest_bytes, manifest);
    for name in names.iter().filter(|n| unsafe_name(n).is_none()) {
        if own.contains(name) || certificates.contains(name) || FOLDERS.contains(&name.as_str()) {
            continue;
        }
        if name.starts_with("blobs/") {
            // The blob check reports a file in blobs/ that the manifest does not list.
            continue;
        }
        match derived.get(name) {
            Some(expected) => match source.read_small(name, MAX_DERIVED_BYTES) {
                Ok(Some(bytes)) if &bytes == expected => {}
                Ok(_) => problems.push(format!(
                    "{name} differs from what the exporter derives from this bundle"
                )),
                Err(e) => problems.push(format!("{name}: {e}")),
            },
            None => problems.push(format!(
                "{name} is not part of the bundle or of what its export derives"
            )),
        }
    }
    failures(problems)
}

/// What the exporter derives from the bundle as found: its signatures, its receipt when
/// complete, and the server key when the export carries it under its own kid.
fn derive(
    source: &dyn BundleSource,
    manifest_bytes: &[u8],
    manifest: &Manifest,
) -> BTreeMap<String, Vec<u8>> {
    let signatures = match source.read_small("signatures.json", MAX_SIGNATURES_BYTES) {
        Ok(Some(bytes)) => parse_signatures(&bytes).ok(),
        _ => None,
    };
    // Without readable signatures the signatures check fails; nothing derived is trusted.
    let Some(signatures) = signatures else {
        return BTreeMap::new();
    };
    let receipt = match (
        read_entry(source, RECEIPT_FILE),
        read_entry(source, INCLUSION_PROOF_FILE),
        read_entry(source, CHECKPOINT_FILE),
    ) {
        (Some(Ok(receipt)), Some(Ok(inclusion_proof)), Some(Ok(checkpoint))) => {
            Some(ServerReceipt {
                receipt,
                inclusion_proof,
                checkpoint,
            })
        }
        _ => None,
    };
    // `VERIFY.txt` says what certificates/ holds when the export has any.
    let certificates = signatures
        .iter()
        .filter_map(|s| read_certificate(source, &s.kid)?.ok())
        .map(|(signed, _)| signed)
        .collect();
    let bundle = SealedBundle {
        manifest: manifest.clone(),
        manifest_bytes: manifest_bytes.to_vec(),
        signatures,
        receipt,
        certificates,
        export: None,
    };
    let server_key = server_kids(&bundle)
        .into_iter()
        .find_map(|kid| key_file(source, &kid));
    derived_files(&bundle, server_key.as_ref()).unwrap_or_default()
}

/// The kids of every server signature the export may carry a key for.
fn server_kids(bundle: &SealedBundle) -> Vec<String> {
    let visit = &bundle.manifest.visit;
    let mut kids = vec![
        visit.approval.signature.kid.to_string(),
        visit.ticket.signature.kid.to_string(),
        visit.policy.signature.kid.to_string(),
    ];
    if let Some(r) = &bundle.receipt {
        kids.push(r.receipt.signature.kid.to_string());
        kids.push(r.checkpoint.signature.kid.to_string());
    }
    kids.dedup();
    kids
}

#[cfg(test)]
mod tests {
    use super::unsafe_name;

    #[test]
    fn names_that_escape_or_hide_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/abs/x",
            "C:/x",
            "a\\b",
            "x\u{7}",
            "x\nVERIFY.txt",
            "",
        ] {
            assert!(unsafe_name(bad).is_some(), "{bad:?}");
        }
        for good in ["manifest.json", "blobs/ab.jpg", "keys/0a.pem", "a..b"] {
            assert!(unsafe_name(good).is_none(), "{good:?}");
        }
    }
}
