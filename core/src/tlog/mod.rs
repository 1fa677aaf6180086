//! The server's transparency log, as every verifier sees it (DESIGN.md §7, THREATS.md).
//!
//! The server appends each accepted bundle's manifest digest to an append-only Merkle log
//! hashed exactly as RFC 6962 §2.1 says, and answers with a signed [`IngestReceipt`], an
//! inclusion proof and a signed [`Checkpoint`]. Phones and `tandem verify` check all three
//! offline with [`verify_receipt`], trusting nothing but the server's public key; a later
//! checkpoint is tied to an earlier one with [`verify_consistency`], which is what exposes a
//! server (or an insider) that rewrote history. Proof verification follows RFC 9162
//! §2.1.3.2 and §2.1.4.2, the corrected forms of RFC 6962's algorithms.
//!
//! [`MerkleLog`] builds the tree and its proofs over a [`NodeStore`]; the in-memory
//! [`MemoryNodeStore`] serves tests, and the server backs the same trait with its database.

mod hash;
mod log;
mod receipt;
mod store;
mod verify;

pub use hash::{
    AUDIT_HEAD_LEAF_PREFIX, audit_head_leaf, audit_head_leaf_hash, empty_root, leaf_hash,
    manifest_leaf_hash, node_hash, tree_root,
};
pub use log::MerkleLog;
pub use receipt::{
    Checkpoint, IngestReceipt, Verdict, VerifiedReceipt, verify_checkpoint_consistency,
    verify_receipt,
};
pub use store::{MemoryNodeStore, NodeStore};
pub use verify::{verify_consistency, verify_inclusion};

use crate::crypto::Digest;
use crate::model::ModelError;

/// Why a log operation or a proof check failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not in a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The index asked about.
        index: u64,
        /// The tree size.
        tree_size: u64,
    },
    /// A consistency check from a larger tree to a smaller one.
    #[error("tree sizes out of order: old size {old_size} is larger than new size {new_size}")]
    SizesOutOfOrder {
        /// The size claimed to be older.
        old_size: u64,
        /// The size claimed to be newer.
        new_size: u64,
    },
    /// A proof asked of the log for a tree it has not grown to yet.
    #[error("tree size {tree_size} is beyond the log's {log_size} entries")]
    TreeSizeBeyondLog {
        /// The size asked for.
        tree_size: u64,
        /// How many entries the log holds.
        log_size: u64,
    },
    /// A proof with more or fewer hashes than the index and sizes call for.
    #[error("proof has {actual} hashes where {expected} are needed")]
    WrongProofLength {
        /// How many the sizes call for.
        expected: usize,
        /// How many the proof holds.
        actual: usize,
    },
    /// The root computed from a proof is not the root claimed for that tree size.
    #[error("root of the tree of size {tree_size} is {expected}, the proof gives {computed}")]
    RootMismatch {
        /// The size of the tree whose root did not match.
        tree_size: u64,
        /// The root claimed (signed checkpoint or caller).
        expected: Digest,
        /// The root the proof leads to.
        computed: Digest,
    },
    /// A receipt issued for a different tree than the checkpoint shows.
    #[error("receipt is for tree size {receipt_tree_size}, checkpoint for {checkpoint_tree_size}")]
    TreeSizeMismatch {
        /// The receipt's tree size.
        receipt_tree_size: u64,
        /// The checkpoint's tree size.
        checkpoint_tree_size: u64,
    },
    /// A receipt for another manifest than the bundle's.
    #[error("receipt is for manifest {receipt}, the bundle's manifest is {expected}")]
    ManifestDigestMismatch {
        /// The digest of the bundle's manifest.
        expected: Digest,
        /// The digest the receipt names.
        receipt: Digest,
    },
    /// A signed receipt or checkpoint that does not verify or does not parse.
    #[error("{purpose} document rejected: {source}")]
    Document {
        /// `ingest-receipt` or `checkpoint`.
        purpose: &'static str,
        /// The signature or parse failure.
        #[source]
        source: ModelError,
    },
    /// Two checkpoints of different logs compared with each other.
    #[error("checkpoints are of different logs: {older} and {newer}")]
    LogIdMismatch {
        /// The older checkpoint's log.
        older: String,
        /// The newer checkpoint's log.
        newer: String,
    },
    /// A node the log needs is not in its store: the store is incomplete or corrupt.
    #[error("log store has no node at level {level}, index {index}")]
    MissingNode {
        /// Height of the subtree (0 = leaf).
        level: u32,
        /// Index of the subtree at that level.
        index: u64,
    },
    /// The node store failed (e.g. a database error on the server).
    #[error("log store failed: {reason}")]
    Store {
        /// What went wrong.
        reason: String,
    },
}
