//! Proof verification, trusting nothing the server says: RFC 9162 §2.1.3.2 (inclusion) and
//! §2.1.4.2 (consistency).

use super::LogError;
use super::hash::{empty_root, node_hash};
use crate::crypto::Digest;

/// Where each proof hash goes when folding a path, walking up from node `fn_` in a tree
/// whose last node is `sn` (the shared walk of RFC 9162's two algorithms): `true` when the
/// proof hash is the left child.
///
/// Knowing the walk before hashing lets a proof of the wrong length be named as such, and
/// bounds the work by 64 steps whatever the input.
fn walk(mut fn_: u64, mut sn: u64) -> Vec<bool> {
    let mut sides = Vec::with_capacity(64);
    while sn > 0 {
        if fn_ & 1 == 1 || fn_ == sn {
            sides.push(true);
            // On the right edge: skip the levels where this node has no right sibling.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sides.push(false);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sides
}

fn check_len(expected: usize, proof: &[Digest]) -> Result<(), LogError> {
    if proof.len() == expected {
        Ok(())
    } else {
        Err(LogError::WrongProofLength {
            expected,
            actual: proof.len(),
        })
    }
}

fn check_root(tree_size: u64, expected: &Digest, computed: Digest) -> Result<(), LogError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(LogError::RootMismatch {
            tree_size,
            expected: *expected,
            computed,
        })
    }
}

/// Checks that `leaf_hash` is entry `index` of the tree of size `tree_size` whose root is
/// `root`, given its audit path `proof`.
pub fn verify_inclusion(
    leaf_hash: &Digest,
    index: u64,
    tree_size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), LogError> {
    if index >= tree_size {
        return Err(LogError::IndexOutOfRange { index, tree_size });
    }
    let sides = walk(index, tree_size - 1);
    check_len(sides.len(), proof)?;
    let computed = proof
        .iter()
        .zip(sides)
        .fold(*leaf_hash, |r, (p, proof_on_left)| {
            if proof_on_left {
                node_hash(p, &r)
            } else {
                node_hash(&r, p)
            }
        });
    check_root(tree_size, root, computed)
}

/// Checks that the tree of size `new_size` with root `new_root` extends the tree of size
/// `old_size` with root `old_root` (nothing in it was changed or removed), given `proof`.
///
/// Equal sizes need an empty proof and equal roots; an empty old tree is consistent with
/// every tree, given its root is the empty-tree hash and the proof is empty.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), LogError> {
    if old_size > new_size {
        return Err(LogError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        check_len(0, proof)?;
        return check_root(0, old_root, empty_root());
    }
    if old_size == new_size {
        check_len(0, proof)?;
        return check_root(new_size, new_root, *old_root);
    }
    // Walk up from the old tree's last leaf past the levels where it is a right child: the
    // node reached is the largest perfect subtree the old tree ends with.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let sides = walk(fn_, sn);
    // When the old tree is itself a perfect subtree, its root starts the path and the
    // server leaves it out of the proof.
    let (seed, rest) = if old_size.is_power_of_two() {
        check_len(sides.len(), proof)?;
        (*old_root, proof)
    } else {
        check_len(sides.len() + 1, proof)?;
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => {
                return Err(LogError::WrongProofLength {
                    expected: sides.len() + 1,
                    actual: 0,
                });
            }
        }
    };
    let (mut fr, mut sr) = (seed, seed);
    for (c, proof_on_left) in rest.iter().zip(sides) {
        if proof_on_left {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
        } else {
            sr = node_hash(&sr, c);
        }
    }
    check_root(old_size, old_root, fr)?;
    check_root(new_size, new_root, sr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_stay_within_64_steps_at_the_largest_sizes() {
        assert_eq!(walk(0, u64::MAX).len(), 64);
        assert_eq!(walk(u64::MAX, u64::MAX).len(), 64);
        assert!(walk(0, 0).is_empty());
    }
}
