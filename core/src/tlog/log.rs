//! An append-only Merkle log: roots and proofs for any past tree size, from stored nodes.

use super::hash::{empty_root, node_hash, split_point};
use super::store::{MemoryNodeStore, NodeStore};
use super::{LogError, manifest_leaf_hash};
use crate::crypto::Digest;

/// An append-only RFC 6962 log over a [`NodeStore`].
///
/// Every root and proof is assembled from stored perfect-subtree hashes: at most one
/// imperfect right edge is hashed on the fly, so each costs O(log n) store reads.
#[derive(Debug, Clone, Default)]
pub struct MerkleLog<S: NodeStore = MemoryNodeStore> {
    store: S,
}

impl MerkleLog<MemoryNodeStore> {
    /// An empty log held in memory.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S: NodeStore> MerkleLog<S> {
    /// A log over an existing store (e.g. the server's database).
    pub fn with_store(store: S) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How many entries the log holds: the size of its newest tree.
    pub fn size(&self) -> Result<u64, LogError> {
        self.store.leaf_count()
    }

    /// Appends a leaf hash; returns its index.
    pub fn append(&mut self, leaf_hash: Digest) -> Result<u64, LogError> {
        let index = self.store.leaf_count()?;
        let mut completed = Vec::new();
        let mut acc = leaf_hash;
        let mut level = 0u32;
        let mut position = index;
        // Each trailing one bit of the index closes a perfect subtree one level up.
        while position & 1 == 1 {
            let left = self.store.subtree_hash(level, position - 1)?;
            acc = node_hash(&left, &acc);
            completed.push(acc);
            level += 1;
            position >>= 1;
        }
        self.store.append(leaf_hash, &completed)?;
        Ok(index)
    }

    /// Appends a bundle's manifest digest (the Tandem leaf); returns its index.
    pub fn append_manifest(&mut self, manifest_digest: &Digest) -> Result<u64, LogError> {
        self.append(manifest_leaf_hash(manifest_digest))
    }

    /// The root of the tree made of the first `tree_size` entries.
    pub fn root(&self, tree_size: u64) -> Result<Digest, LogError> {
        self.check_size(tree_size)?;
        if tree_size == 0 {
            return Ok(empty_root());
        }
        self.range_hash(0, tree_size)
    }

    /// The audit path (RFC 6962 §2.1.1) for entry `index` in the tree of size `tree_size`.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Digest>, LogError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(LogError::IndexOutOfRange { index, tree_size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, tree_size, &mut proof)?;
        Ok(proof)
    }

    /// The consistency proof (RFC 6962 §2.1.2) from the tree of size `old_size` to the tree
    /// of size `new_size`; empty when either tree is trivially consistent with the other.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Digest>, LogError> {
        if old_size > new_size {
            return Err(LogError::SizesOutOfOrder { old_size, new_size });
        }
        self.check_size(new_size)?;
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut proof)?;
        }
        Ok(proof)
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        let log_size = self.store.leaf_count()?;
        if tree_size > log_size {
            return Err(LogError::TreeSizeBeyondLog {
                tree_size,
                log_size,
            });
        }
        Ok(())
    }

    /// MTH of leaves `start..end` (`start < end`): one stored read when the range is a
    /// perfect aligned subtree, else split where RFC 6962 splits.
    fn range_hash(&self, start: u64, end: u64) -> Result<Digest, LogError> {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.store.subtree_hash(n.trailing_zeros(), start / n);
        }
        let k = split_point(n);
        let left = self.range_hash(start, start + k)?;
        let right = self.range_hash(start + k, end)?;
        Ok(node_hash(&left, &right))
    }

    /// PATH(m, D[start:end]) of RFC 6962 §2.1.1, `m` relative to `start`.
    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Digest>) -> Result<(), LogError> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.range_hash(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.range_hash(start, start + k)?);
        }
        Ok(())
    }

    /// SUBPROOF(m, D[start:end], b) of RFC 6962 §2.1.2, for `0 < m <= end - start`.
    fn subproof(
        &self,
        m: u64,
        start: u64,
        end: u64,
        whole_old_tree: bool,
        out: &mut Vec<Digest>,
    ) -> Result<(), LogError> {
        let n = end - start;
        if m == n {
            if !whole_old_tree {
                out.push(self.range_hash(start, end)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, whole_old_tree, out)?;
            out.push(self.range_hash(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.range_hash(start, start + k)?);
        }
        Ok(())
    }
}
