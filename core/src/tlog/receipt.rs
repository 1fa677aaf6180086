//! What the server signs about its log: checkpoints and ingest receipts, and the offline
//! check a phone or a lawyer runs on them.

use serde::{Deserialize, Serialize};

use super::LogError;
use super::hash::manifest_leaf_hash;
use super::verify::{verify_consistency, verify_inclusion};
use crate::crypto::{Digest, PublicKey};
use crate::model::{BundleId, Signed, SignedPurpose};

/// The server's signed statement of its log at one moment: "my tree of `tree_size`
/// entries has root `root`". Two checkpoints are tied together by a consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Which log (one per deployment), so checkpoints of two logs are never compared.
    pub log_id: String,
    /// Number of entries in the tree.
    pub tree_size: u64,
    /// RFC 6962 root of that tree.
    pub root: Digest,
    /// When the server signed it, UTC ms: the upper bound of a visit's time window.
    pub timestamp_ms: i64,
}

impl SignedPurpose for Checkpoint {
    const PURPOSE: &'static str = "checkpoint";
}

/// What the server decided about an uploaded bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Verified and filed.
    Accepted,
    /// Kept and logged, but held for review (a failed check or a flag).
    Quarantined,
}

/// The server's signed receipt for one uploaded bundle: its manifest is entry `log_index`
/// of the tree of `tree_size` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestReceipt {
    /// The bundle received.
    pub bundle_id: BundleId,
    /// SHA-256 of the bundle's manifest: the log entry.
    pub manifest_digest: Digest,
    /// Index of the entry in the log.
    pub log_index: u64,
    /// The tree size the receipt's inclusion proof and checkpoint are for.
    pub tree_size: u64,
    /// When the server received the bundle, UTC ms.
    pub received_at_ms: i64,
    /// Accepted or quarantined.
    pub verdict: Verdict,
}

impl SignedPurpose for IngestReceipt {
    const PURPOSE: &'static str = "ingest-receipt";
}

/// A receipt and checkpoint whose signatures and inclusion proof all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The receipt.
    pub receipt: IngestReceipt,
    /// The checkpoint whose root includes the receipt's entry.
    pub checkpoint: Checkpoint,
}

fn open<T>(signed: &Signed<T>, key: &PublicKey) -> Result<T, LogError>
where
    T: SignedPurpose + Serialize + serde::de::DeserializeOwned,
{
    signed.verify(key).map_err(|source| LogError::Document {
        purpose: T::PURPOSE,
        source,
    })
}

/// Checks a receipt offline: both documents signed by `server_key`, the receipt for
/// `expected_manifest_digest` and for the checkpoint's tree size, and the inclusion proof
/// leading from the manifest's leaf to the checkpoint's root.
pub fn verify_receipt(
    receipt: &Signed<IngestReceipt>,
    proof: &[Digest],
    checkpoint: &Signed<Checkpoint>,
    server_key: &PublicKey,
    expected_manifest_digest: &Digest,
) -> Result<VerifiedReceipt, LogError> {
    let receipt = open(receipt, server_key)?;
    let checkpoint = open(checkpoint, server_key)?;
    if receipt.manifest_digest != *expected_manifest_digest {
        return Err(LogError::ManifestDigestMismatch {
            expected: *expected_manifest_digest,
            receipt: receipt.manifest_digest,
        });
    }
    if receipt.tree_size != checkpoint.tree_size {
        return Err(LogError::TreeSizeMismatch {
            receipt_tree_size: receipt.tree_size,
            checkpoint_tree_size: checkpoint.tree_size,
        });
    }
    verify_inclusion(
        &manifest_leaf_hash(&receipt.manifest_digest),
        receipt.log_index,
        checkpoint.tree_size,
        proof,
        &checkpoint.root,
    )?;
    Ok(VerifiedReceipt {
        receipt,
        checkpoint,
    })
}

/// Checks that a newer signed checkpoint extends an older one of the same log: both signed
/// by `server_key`, and `proof` shows the older tree is a prefix of the newer (nothing the
/// older one covered was changed, removed or reordered). Returns (older, newer).
pub fn verify_checkpoint_consistency(
    older: &Signed<Checkpoint>,
    newer: &Signed<Checkpoint>,
    proof: &[Digest],
    server_key: &PublicKey,
) -> Result<(Checkpoint, Checkpoint), LogError> {
    let older = open(older, server_key)?;
    let newer = open(newer, server_key)?;
    if older.log_id != newer.log_id {
        return Err(LogError::LogIdMismatch {
            older: older.log_id,
            newer: newer.log_id,
        });
    }
    verify_consistency(
        older.tree_size,
        newer.tree_size,
        &older.root,
        &newer.root,
        proof,
    )?;
    Ok((older, newer))
}
