//! The server's part of a bundle, `receipt/`: the signed ingest receipt, its inclusion proof
//! and the signed checkpoint, checked offline with `tlog::verify_receipt` against a trusted
//! server key.

use serde::{Deserialize, Serialize};

use super::{NO_TRUST, failures};
use crate::bundle::{BundleError, BundleSource, CheckResult, Manifest, Trust};
use crate::canonical;
use crate::crypto::{Digest, sha256};
use crate::model::Signed;
use crate::tlog::{Checkpoint, IngestReceipt, LogError, Verdict, verify_receipt};

/// `receipt/receipt.json`: the signed ingest receipt (`{body, signature}`, canonical JSON).
pub const RECEIPT_FILE: &str = "receipt/receipt.json";
/// `receipt/inclusion-proof.json`: the audit path, an array of lowercase hex digests.
pub const INCLUSION_PROOF_FILE: &str = "receipt/inclusion-proof.json";
/// `receipt/checkpoint.json`: the signed checkpoint the proof leads to.
pub const CHECKPOINT_FILE: &str = "receipt/checkpoint.json";

/// Largest `receipt/` entry read: a few hundred bytes in practice.
const MAX_RECEIPT_ENTRY: u64 = 64 * 1024;

/// What the server answered when it took a bundle in: the three entries of `receipt/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReceipt {
    /// The signed ingest receipt.
    pub receipt: Signed<IngestReceipt>,
    /// The inclusion proof of the manifest's entry in the checkpoint's tree.
    pub inclusion_proof: Vec<Digest>,
    /// The signed checkpoint of the tree the receipt names.
    pub checkpoint: Signed<Checkpoint>,
}

impl ServerReceipt {
    /// The three `receipt/` entries as (name, canonical JSON bytes).
    pub fn entries(&self) -> Result<[(&'static str, Vec<u8>); 3], BundleError> {
        let encode = |name: &'static str, r: Result<Vec<u8>, canonical::CanonicalError>| {
            r.map_err(|source| BundleError::Canonical { name, source })
        };
        Ok([
            (
                RECEIPT_FILE,
                encode(RECEIPT_FILE, canonical::to_canonical_vec(&self.receipt))?,
            ),
            (
                INCLUSION_PROOF_FILE,
                encode(
                    INCLUSION_PROOF_FILE,
                    canonical::to_canonical_vec(&self.inclusion_proof),
                )?,
            ),
            (
                CHECKPOINT_FILE,
                encode(
                    CHECKPOINT_FILE,
                    canonical::to_canonical_vec(&self.checkpoint),
                )?,
            ),
        ])
    }
}

/// The results of the three server checks, and the checkpoint's time when they hold.
pub(super) struct ReceiptChecks {
    pub server_receipt: CheckResult,
    pub inclusion_proof: CheckResult,
    pub checkpoint: CheckResult,
    /// The verified checkpoint's time: the upper bound of the visit's time window.
    pub checkpoint_ms: Option<i64>,
}

impl ReceiptChecks {
    fn all(result: CheckResult) -> Self {
        Self {
            server_receipt: result.clone(),
            inclusion_proof: result.clone(),
            checkpoint: result,
            checkpoint_ms: None,
        }
    }
}

/// Reads one `receipt/` entry strictly: canonical JSON of exactly the expected type.
pub(super) fn read_entry<T: serde::de::DeserializeOwned + Serialize>(
    source: &dyn BundleSource,
    name: &str,
) -> Option<Result<T, String>> {
    match source.read_small(name, MAX_RECEIPT_ENTRY) {
        Ok(None) => None,
        Ok(Some(bytes)) => {
            Some(canonical::from_canonical_slice(&bytes).map_err(|e| format!("{name}: {e}")))
        }
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Checks `receipt/` against the manifest and the trusted server keys.
pub(super) fn check_receipt(
    source: &dyn BundleSource,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    trust: &Trust,
) -> ReceiptChecks {
    let receipt = read_entry::<Signed<IngestReceipt>>(source, RECEIPT_FILE);
    let proof = read_entry::<Vec<Digest>>(source, INCLUSION_PROOF_FILE);
    let checkpoint = read_entry::<Signed<Checkpoint>>(source, CHECKPOINT_FILE);
    if receipt.is_none() && proof.is_none() && checkpoint.is_none() {
        return ReceiptChecks::all(CheckResult::NotPresent);
    }
    let missing = |name: &str| format!("{name} is missing (receipt/ is incomplete)");
    let (receipt, proof, checkpoint) = match (receipt, proof, checkpoint) {
        (Some(Ok(r)), Some(Ok(p)), Some(Ok(c))) => (r, p, c),
        (r, p, c) => {
            let result = |entry: Option<Result<(), String>>, name: &str| match entry {
                None => CheckResult::fail(missing(name)),
                Some(Err(e)) => CheckResult::fail(e),
                Some(Ok(())) => CheckResult::not_checked("another receipt/ entry is unusable"),
            };
            return ReceiptChecks {
                server_receipt: result(r.map(|x| x.map(drop)), RECEIPT_FILE),
                inclusion_proof: result(p.map(|x| x.map(drop)), INCLUSION_PROOF_FILE),
                checkpoint: result(c.map(|x| x.map(drop)), CHECKPOINT_FILE),
                checkpoint_ms: None,
            };
        }
    };
    if !trust.has_server_keys() {
        return ReceiptChecks::all(CheckResult::not_checked(format!(
            "server signatures {NO_TRUST}"
        )));
    }
    let Some(key) = trust.server_key(&receipt.signature.kid) else {
        let why = format!(
            "ingest receipt signed by key {}, not a trusted server key",
            receipt.signature.kid
        );
        return ReceiptChecks {
            server_receipt: CheckResult::fail(why),
            inclusion_proof: CheckResult::not_checked("the receipt did not verify"),
            checkpoint: CheckResult::not_checked("the receipt did not verify"),
            checkpoint_ms: None,
        };
    };
    let digest = sha256(manifest_bytes);

    // Each document on its own first, so that each check names its own fault.
    let mut receipt_problems = Vec::new();
    let mut verdict = None;
    match receipt.verify(key) {
        Err(e) => receipt_problems.push(format!("ingest receipt: {e}")),
        Ok(r) => {
            if r.manifest_digest != digest {
                receipt_problems.push(format!(
                    "the receipt is for manifest {}, this manifest is {digest}",
                    r.manifest_digest
                ));
            }
            if r.bundle_id != manifest.bundle_id {
                receipt_problems.push(format!(
                    "the receipt is for bundle {}, this bundle is {}",
                    r.bundle_id, manifest.bundle_id
                ));
            }
            verdict = Some(r);
        }
    }
    let mut checkpoint_problems = Vec::new();
    let mut checkpoint_doc = None;
    match checkpoint.verify(key) {
        Err(e) => checkpoint_problems.push(format!("checkpoint: {e}")),
        Ok(c) => {
            if let Some(r) = &verdict
                && r.tree_size != c.tree_size
            {
                checkpoint_problems.push(format!(
                    "the checkpoint is for tree size {}, the receipt for {}",
                    c.tree_size, r.tree_size
                ));
            }
            checkpoint_doc = Some(c);
        }
    }
    let server_receipt = match (failures(receipt_problems), &verdict) {
        (CheckResult::Pass, Some(r)) if r.verdict == Verdict::Quarantined => CheckResult::Flagged {
            flags: vec![format!(
                "the server quarantined this bundle at ingest (log entry {})",
                r.log_index
            )],
        },
        (other, _) => other,
    };
    let checkpoint_result = failures(checkpoint_problems);

    // The whole chain, as a phone or a court checks it: core's one routine.
    let inclusion_proof = match verify_receipt(&receipt, &proof, &checkpoint, key, &digest) {
        Ok(_) => CheckResult::Pass,
        Err(
            e @ (LogError::IndexOutOfRange { .. }
            | LogError::WrongProofLength { .. }
            | LogError::RootMismatch { .. }),
        ) => CheckResult::fail(format!("inclusion proof: {e}")),
        Err(_) => CheckResult::not_checked("the receipt or checkpoint did not verify"),
    };
    let all_hold = !server_receipt.is_fail()
        && matches!(checkpoint_result, CheckResult::Pass)
        && matches!(inclusion_proof, CheckResult::Pass);
    ReceiptChecks {
        server_receipt,
        inclusion_proof,
        checkpoint: checkpoint_result,
        checkpoint_ms: checkpoint_doc.filter(|_| all_hold).map(|c| c.timestamp_ms),
    }
}
