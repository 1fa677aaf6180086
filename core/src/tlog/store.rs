//! Where a log keeps its nodes: leaf hashes and the hashes of full subtrees.
//!
//! Only *perfect* subtrees (2^level leaves, aligned on a multiple of 2^level) are stored:
//! once complete they never change, so a store is append-only, and every root or proof
//! of any past tree size is assembled from O(log n) of them.

use super::LogError;
use crate::crypto::Digest;

/// Storage for a [`MerkleLog`](super::MerkleLog): the in-memory one here, a database on the
/// server.
///
/// The subtree at `(level, index)` covers leaves `index·2^level .. (index+1)·2^level`;
/// level 0 holds the leaf hashes.
pub trait NodeStore {
    /// How many leaves are stored.
    fn leaf_count(&self) -> Result<u64, LogError>;

    /// The hash of the perfect subtree at `(level, index)`, which must be complete.
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Digest, LogError>;

    /// The leaf hash at `index`.
    fn leaf_hash(&self, index: u64) -> Result<Digest, LogError> {
        self.subtree_hash(0, index)
    }

    /// Stores the next leaf hash and the subtree hashes it completes, in one step:
    /// `completed[j]` is the new subtree at level `j + 1` (a database does this in one
    /// transaction, so a crash never leaves a leaf without its parents).
    fn append(&mut self, leaf_hash: Digest, completed: &[Digest]) -> Result<(), LogError>;
}

/// A node store held in memory: one vector per level.
#[derive(Debug, Clone, Default)]
pub struct MemoryNodeStore {
    levels: Vec<Vec<Digest>>,
}

impl MemoryNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NodeStore for MemoryNodeStore {
    fn leaf_count(&self) -> Result<u64, LogError> {
        Ok(self.levels.first().map_or(0, |leaves| leaves.len() as u64))
    }

    fn subtree_hash(&self, level: u32, index: u64) -> Result<Digest, LogError> {
        let missing = || LogError::MissingNode { level, index };
        let row = usize::try_from(level)
            .ok()
            .and_then(|l| self.levels.get(l))
            .ok_or_else(missing)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| row.get(i))
            .copied()
            .ok_or_else(missing)
    }

    fn append(&mut self, leaf_hash: Digest, completed: &[Digest]) -> Result<(), LogError> {
        for (level, hash) in std::iter::once(&leaf_hash).chain(completed).enumerate() {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            if let Some(row) = self.levels.get_mut(level) {
                row.push(*hash);
            }
        }
        Ok(())
    }
}
