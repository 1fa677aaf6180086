//! RFC 6962 §2.1 hashing: domain-separated leaves and interior nodes, so no leaf can pose
//! as a node (second-preimage resistance across levels).

use crate::crypto::{Digest, Sha256Stream, sha256};

/// Prefix of a leaf hash input.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash input.
const NODE_PREFIX: u8 = 0x01;

/// The leaf hash `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Digest {
    let mut h = Sha256Stream::default();
    h.update(&[LEAF_PREFIX]);
    h.update(leaf);
    h.finish()
}

/// The leaf hash of a Tandem log entry: the leaf data is the manifest digest's 32 raw bytes.
pub fn manifest_leaf_hash(manifest_digest: &Digest) -> Digest {
    leaf_hash(manifest_digest.as_bytes())
}

/// What an audit-log anchor's leaf data starts with. Its leaf data is longer than a
/// manifest leaf's 32 bytes, so no anchor can pose as a bundle entry or the other way
/// round, and both verify with the same RFC 6962 proofs.
pub const AUDIT_HEAD_LEAF_PREFIX: &[u8] = b"tandem audit-log head v1\n";

/// The leaf data of an audit-log anchor: the prefix, then the position of the log's newest
/// entry (8 bytes, big-endian) and that entry's chain hash.
pub fn audit_head_leaf(seq: u64, head: &Digest) -> Vec<u8> {
    let mut leaf = Vec::with_capacity(AUDIT_HEAD_LEAF_PREFIX.len() + 8 + 32);
    leaf.extend_from_slice(AUDIT_HEAD_LEAF_PREFIX);
    leaf.extend_from_slice(&seq.to_be_bytes());
    leaf.extend_from_slice(head.as_bytes());
    leaf
}

/// The leaf hash of an audit-log anchor ([`audit_head_leaf`]).
pub fn audit_head_leaf_hash(seq: u64, head: &Digest) -> Digest {
    leaf_hash(&audit_head_leaf(seq, head))
}

/// The interior node hash `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256Stream::default();
    h.update(&[NODE_PREFIX]);
    h.update(left.as_bytes());
    h.update(right.as_bytes());
    h.finish()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Digest {
    sha256(b"")
}

/// The largest power of two strictly below `n`, for `n >= 2`: where RFC 6962 splits a tree.
pub(crate) fn split_point(n: u64) -> u64 {
    let bits = 63 - (n.saturating_sub(1) | 1).leading_zeros();
    1u64 << bits
}

/// The Merkle Tree Hash (MTH) of a list of leaf hashes, computed directly: for tests,
/// small trees, and checking a log against its entries.
pub fn tree_root(leaf_hashes: &[Digest]) -> Digest {
    match leaf_hashes {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = usize::try_from(split_point(leaf_hashes.len() as u64)).unwrap_or(usize::MAX);
            let (left, right) = leaf_hashes.split_at(k.min(leaf_hashes.len()));
            node_hash(&tree_root(left), &tree_root(right))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_anchor_leaf_never_equals_a_manifest_leaf() {
        let head = sha256(b"head");
        let leaf = audit_head_leaf(7, &head);
        assert_eq!(leaf.len(), AUDIT_HEAD_LEAF_PREFIX.len() + 40);
        assert_eq!(&leaf[leaf.len() - 32..], head.as_bytes());
        // Another length than a manifest leaf's 32 bytes: the two kinds never share input.
        assert_ne!(leaf.len(), 32);
        assert_ne!(audit_head_leaf_hash(7, &head), manifest_leaf_hash(&head));
        assert_ne!(
            audit_head_leaf_hash(7, &head),
            audit_head_leaf_hash(8, &head)
        );
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }
}
