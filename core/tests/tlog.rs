//! The transparency log: RFC 6962 hashing, proofs that verify for every index and size,
//! tampering that every proof exposes, and the server's signed receipt checked offline.

use std::cell::Cell;

use proptest::prelude::*;
use tandem_core::crypto::{Digest, SignatureAlgorithm, SoftwareSigner, sha256};
use tandem_core::model::{BundleId, Signed};
use tandem_core::tlog::{
    Checkpoint, IngestReceipt, LogError, MemoryNodeStore, MerkleLog, NodeStore, Verdict,
    empty_root, leaf_hash, manifest_leaf_hash, node_hash, tree_root, verify_consistency,
    verify_inclusion, verify_receipt,
};

// ---- helpers ----------------------------------------------------------------------------

fn d(hex: &str) -> Digest {
    hex.parse()
        .unwrap_or_else(|_| panic!("test vector is not a digest: {hex}"))
}

/// The manifest digest of the `i`-th bundle of a test log.
fn manifest(i: u64) -> Digest {
    sha256(format!("manifest {i}").as_bytes())
}

fn leaves(n: u64) -> Vec<Digest> {
    (0..n).map(|i| manifest_leaf_hash(&manifest(i))).collect()
}

fn log_of(leaf_hashes: &[Digest]) -> MerkleLog {
    let mut log = MerkleLog::new();
    for (i, h) in leaf_hashes.iter().enumerate() {
        assert_eq!(log.append(*h).expect("append"), i as u64);
    }
    log
}

/// Deterministic sampling (splitmix64), so a failure names a reproducible pair.
struct Sampler(u64);

impl Sampler {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}

fn flip(proof: &[Digest], at: usize) -> Vec<Digest> {
    let mut out = proof.to_vec();
    out[at].0[at % 32] ^= 0x10;
    out
}

// ---- known answers ----------------------------------------------------------------------
//
// The eight-leaf test tree used across Certificate Transparency implementations, with its
// roots and proofs, as published in transparency-dev/merkle `proof/verify_test.go`
// (Apache-2.0; the same values as the original google/certificate-transparency C++ tests).

const CT_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// Roots of the trees of the first 1..=8 leaves.
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path).
const CT_INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CT_CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn ct_log() -> (Vec<Digest>, MerkleLog) {
    let hashes: Vec<Digest> = CT_LEAVES.iter().map(|l| leaf_hash(l)).collect();
    let log = log_of(&hashes);
    (hashes, log)
}

#[test]
fn empty_tree_hash_is_sha256_of_nothing() {
    let expected = d("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(empty_root(), expected);
    assert_eq!(tree_root(&[]), expected);
    assert_eq!(MerkleLog::new().root(0).expect("root"), expected);
}

#[test]
fn certificate_transparency_test_tree_has_the_published_roots() {
    let (hashes, log) = ct_log();
    for (size, root) in (1..=8u64).zip(CT_ROOTS) {
        let prefix = &hashes[..size as usize];
        assert_eq!(tree_root(prefix), d(root), "tree_root, size {size}");
        assert_eq!(
            log.root(size).expect("root"),
            d(root),
            "log root, size {size}"
        );
    }
}

#[test]
fn certificate_transparency_inclusion_proofs_are_reproduced_and_verify() {
    let (hashes, log) = ct_log();
    for (index, size, path) in CT_INCLUSION {
        let expected: Vec<Digest> = path.iter().map(|h| d(h)).collect();
        let proof = log.inclusion_proof(index, size).expect("proof");
        assert_eq!(proof, expected, "index {index} size {size}");
        let root = d(CT_ROOTS[size as usize - 1]);
        verify_inclusion(&hashes[index as usize], index, size, &expected, &root)
            .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
    }
}

#[test]
fn certificate_transparency_consistency_proofs_are_reproduced_and_verify() {
    let (_, log) = ct_log();
    for (old, new, path) in CT_CONSISTENCY {
        let expected: Vec<Digest> = path.iter().map(|h| d(h)).collect();
        let proof = log.consistency_proof(old, new).expect("proof");
        assert_eq!(proof, expected, "{old} -> {new}");
        let old_root = d(CT_ROOTS[old as usize - 1]);
        let new_root = d(CT_ROOTS[new as usize - 1]);
        verify_consistency(old, new, &old_root, &new_root, &expected)
            .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
    }
}

#[test]
fn leaf_and_node_hashes_are_domain_separated() {
    let a = sha256(b"a");
    let b = sha256(b"b");
    let mut node_input = vec![0x01];
    node_input.extend_from_slice(a.as_bytes());
    node_input.extend_from_slice(b.as_bytes());
    assert_eq!(node_hash(&a, &b), sha256(&node_input));
    let mut leaf_input = vec![0x00];
    leaf_input.extend_from_slice(a.as_bytes());
    assert_eq!(manifest_leaf_hash(&a), sha256(&leaf_input));
    // The same 64 bytes as a leaf and as a node's children never collide.
    assert_ne!(leaf_hash(&node_input[1..]), node_hash(&a, &b));
}

// ---- every proof verifies -----------------------------------------------------------------

#[test]
fn inclusion_proofs_verify_for_every_index_of_every_tree_up_to_64() {
    let hashes = leaves(64);
    let log = log_of(&hashes);
    for size in 1..=64u64 {
        let root = log.root(size).expect("root");
        assert_eq!(root, tree_root(&hashes[..size as usize]), "size {size}");
        for index in 0..size {
            let proof = log.inclusion_proof(index, size).expect("proof");
            verify_inclusion(&hashes[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
        }
    }
}

#[test]
fn consistency_proofs_verify_for_every_pair_of_sizes_up_to_64() {
    let log = log_of(&leaves(64));
    let roots: Vec<Digest> = (0..=64).map(|n| log.root(n).expect("root")).collect();
    for new in 1..=64u64 {
        for old in 0..=new {
            let proof = log.consistency_proof(old, new).expect("proof");
            verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
        }
    }
}

#[test]
fn sampled_proofs_verify_in_a_thousand_entry_log() {
    let hashes = leaves(1000);
    let log = log_of(&hashes);
    let roots: Vec<Digest> = (0..=1000).map(|n| log.root(n).expect("root")).collect();
    assert_eq!(roots[1000], tree_root(&hashes));
    let mut sample = Sampler(2026);
    for _ in 0..1000 {
        let size = 1 + sample.below(1000);
        let index = sample.below(size);
        let proof = log.inclusion_proof(index, size).expect("proof");
        verify_inclusion(
            &hashes[index as usize],
            index,
            size,
            &proof,
            &roots[size as usize],
        )
        .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));

        let new = 1 + sample.below(1000);
        let old = 1 + sample.below(new);
        let proof = log.consistency_proof(old, new).expect("proof");
        verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof)
            .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
    }
}

/// A real store, counting its reads: proofs must cost O(log n) of them.
struct CountingStore {
    inner: MemoryNodeStore,
    reads: Cell<u64>,
}

impl NodeStore for CountingStore {
    fn leaf_count(&self) -> Result<u64, LogError> {
        self.inner.leaf_count()
    }
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Digest, LogError> {
        self.reads.set(self.reads.get() + 1);
        self.inner.subtree_hash(level, index)
    }
    fn append(&mut self, leaf_hash: Digest, completed: &[Digest]) -> Result<(), LogError> {
        self.inner.append(leaf_hash, completed)
    }
}

#[test]
fn roots_and_proofs_read_a_logarithmic_number_of_stored_nodes() {
    let mut log = MerkleLog::with_store(CountingStore {
        inner: MemoryNodeStore::new(),
        reads: Cell::new(0),
    });
    let n = 100_000u64;
    for i in 0..n {
        log.append(manifest_leaf_hash(&manifest(i)))
            .expect("append");
    }
    // ⌈log2 100 000⌉ = 17: a path reads one sibling per level plus the right edge.
    let bound = 2 * 17 + 2;
    let mut sample = Sampler(7);
    for _ in 0..200 {
        let size = 1 + sample.below(n);
        let index = sample.below(size);
        log.store().reads.set(0);
        let root = log.root(size).expect("root");
        let proof = log.inclusion_proof(index, size).expect("proof");
        assert!(
            log.store().reads.get() <= 2 * bound,
            "index {index} size {size}"
        );
        let leaf = log.store().inner.leaf_hash(index).expect("leaf");
        verify_inclusion(&leaf, index, size, &proof, &root).expect("verifies");

        let old = 1 + sample.below(size);
        log.store().reads.set(0);
        let proof = log.consistency_proof(old, size).expect("proof");
        assert!(log.store().reads.get() <= bound, "{old} -> {size}");
        let old_root = log.root(old).expect("root");
        verify_consistency(old, size, &old_root, &root, &proof).expect("verifies");
    }
}

// ---- tampering is exposed -----------------------------------------------------------------

const HONEST: u64 = 40;
const OLD: u64 = 20;
const TOUCHED: usize = 13;

/// A tampered copy of the honest log must fail both checks a verifier holding the honest
/// checkpoint at `OLD` (and the honest root now) would make.
fn assert_tampering_detected(what: &str, tampered: &[Digest], entry: usize) {
    let honest_leaves = leaves(HONEST);
    let honest = log_of(&honest_leaves);
    let forged = log_of(tampered);
    let size = forged.size().expect("size");

    // The forged log proves its own entry fine: the forgery is internally consistent...
    let forged_root = forged.root(size).expect("root");
    let proof = forged.inclusion_proof(entry as u64, size).expect("proof");
    verify_inclusion(&tampered[entry], entry as u64, size, &proof, &forged_root)
        .unwrap_or_else(|e| panic!("{what}: forged log is not self-consistent: {e}"));

    // ...but not against the honest root of the same size...
    let honest_root = honest.root(size).expect("root");
    match verify_inclusion(&tampered[entry], entry as u64, size, &proof, &honest_root) {
        Err(LogError::RootMismatch { tree_size, .. }) => assert_eq!(tree_size, size, "{what}"),
        other => panic!("{what}: inclusion against the honest root gave {other:?}"),
    }

    // ...and it cannot be shown to extend the honest checkpoint taken before the change.
    let honest_old_root = honest.root(OLD).expect("root");
    let proof = forged.consistency_proof(OLD, size).expect("proof");
    match verify_consistency(OLD, size, &honest_old_root, &forged_root, &proof) {
        Err(LogError::RootMismatch { tree_size, .. }) => assert_eq!(tree_size, OLD, "{what}"),
        other => panic!("{what}: consistency from the honest checkpoint gave {other:?}"),
    }
}

#[test]
fn an_altered_leaf_is_detected() {
    let mut tampered = leaves(HONEST);
    tampered[TOUCHED] = manifest_leaf_hash(&sha256(b"a different manifest"));
    assert_tampering_detected("altered leaf", &tampered, TOUCHED);
}

#[test]
fn a_removed_leaf_is_detected() {
    let mut tampered = leaves(HONEST);
    tampered.remove(TOUCHED);
    // Shorter by one: compare with the honest tree of the same (smaller) size.
    assert_tampering_detected("removed leaf", &tampered, TOUCHED);
}

#[test]
fn a_swapped_pair_of_leaves_is_detected() {
    let mut tampered = leaves(HONEST);
    tampered.swap(TOUCHED, TOUCHED + 1);
    assert_tampering_detected("swapped leaves", &tampered, TOUCHED);
}

#[test]
fn a_rewritten_history_is_detected_and_appending_is_not() {
    let honest = leaves(HONEST);
    let mut rewritten: Vec<Digest> = honest[..TOUCHED].to_vec();
    rewritten.extend((0..HONEST + 10).map(|i| manifest_leaf_hash(&sha256(&i.to_be_bytes()))));
    let rewritten = &rewritten[..HONEST as usize];
    assert_tampering_detected("rewritten history", rewritten, TOUCHED);

    // A checkpoint taken before the fork is still consistent: only history was rewritten.
    let honest_log = log_of(&honest);
    let forked = log_of(rewritten);
    let old = TOUCHED as u64;
    let proof = forked.consistency_proof(old, HONEST).expect("proof");
    let new_root = forked.root(HONEST).expect("root");
    verify_consistency(
        old,
        HONEST,
        &honest_log.root(old).expect("root"),
        &new_root,
        &proof,
    )
    .expect("the shared prefix is consistent");
}

#[test]
fn every_damaged_inclusion_proof_fails() {
    let hashes = leaves(33);
    let log = log_of(&hashes);
    for size in 1..=33u64 {
        let root = log.root(size).expect("root");
        for index in 0..size {
            let leaf = &hashes[index as usize];
            let proof = log.inclusion_proof(index, size).expect("proof");
            for at in 0..proof.len() {
                let bad = flip(&proof, at);
                assert!(
                    matches!(
                        verify_inclusion(leaf, index, size, &bad, &root),
                        Err(LogError::RootMismatch { .. })
                    ),
                    "flipped byte in hash {at}, index {index} size {size}"
                );
                let mut short = proof.clone();
                short.remove(at);
                assert!(matches!(
                    verify_inclusion(leaf, index, size, &short, &root),
                    Err(LogError::WrongProofLength { expected, actual })
                        if expected == proof.len() && actual == proof.len() - 1
                ));
            }
            for extra in [root, *leaf] {
                let mut long = proof.clone();
                long.push(extra);
                assert!(matches!(
                    verify_inclusion(leaf, index, size, &long, &root),
                    Err(LogError::WrongProofLength { .. })
                ));
                long.pop();
                long.insert(0, extra);
                assert!(matches!(
                    verify_inclusion(leaf, index, size, &long, &root),
                    Err(LogError::WrongProofLength { .. })
                ));
            }
            if index + 1 < size {
                assert!(
                    verify_inclusion(leaf, index + 1, size, &proof, &root).is_err(),
                    "proof for {index} accepted at {} (size {size})",
                    index + 1
                );
            }
            assert!(matches!(
                verify_inclusion(leaf, size, size, &proof, &root),
                Err(LogError::IndexOutOfRange { index, tree_size }) if index == size && tree_size == size
            ));
        }
    }
}

#[test]
fn every_damaged_consistency_proof_fails() {
    let log = log_of(&leaves(33));
    let roots: Vec<Digest> = (0..=33).map(|n| log.root(n).expect("root")).collect();
    for new in 1..=33u64 {
        for old in 0..=new {
            let (r1, r2) = (&roots[old as usize], &roots[new as usize]);
            let proof = log.consistency_proof(old, new).expect("proof");
            for at in 0..proof.len() {
                assert!(
                    matches!(
                        verify_consistency(old, new, r1, r2, &flip(&proof, at)),
                        Err(LogError::RootMismatch { .. })
                    ),
                    "flipped byte in hash {at}, {old} -> {new}"
                );
                let mut short = proof.clone();
                short.remove(at);
                assert!(matches!(
                    verify_consistency(old, new, r1, r2, &short),
                    Err(LogError::WrongProofLength { .. })
                ));
            }
            for extra in [*r1, *r2] {
                let mut long = proof.clone();
                long.push(extra);
                assert!(matches!(
                    verify_consistency(old, new, r1, r2, &long),
                    Err(LogError::WrongProofLength { .. })
                ));
                long.pop();
                long.insert(0, extra);
                assert!(matches!(
                    verify_consistency(old, new, r1, r2, &long),
                    Err(LogError::WrongProofLength { .. })
                ));
            }
            if r1 != r2 {
                assert!(
                    verify_consistency(old, new, r2, r1, &proof).is_err(),
                    "swapped roots accepted, {old} -> {new}"
                );
            }
        }
    }
}

#[test]
fn sizes_out_of_order_and_trees_not_yet_grown_are_refused() {
    let log = log_of(&leaves(10));
    let root = log.root(10).expect("root");
    assert!(matches!(
        verify_consistency(10, 9, &root, &root, &[]),
        Err(LogError::SizesOutOfOrder {
            old_size: 10,
            new_size: 9
        })
    ));
    assert!(matches!(
        log.consistency_proof(5, 4),
        Err(LogError::SizesOutOfOrder {
            old_size: 5,
            new_size: 4
        })
    ));
    assert!(matches!(
        log.consistency_proof(5, 11),
        Err(LogError::TreeSizeBeyondLog {
            tree_size: 11,
            log_size: 10
        })
    ));
    assert!(matches!(
        log.inclusion_proof(3, 11),
        Err(LogError::TreeSizeBeyondLog {
            tree_size: 11,
            log_size: 10
        })
    ));
    assert!(matches!(
        log.inclusion_proof(10, 10),
        Err(LogError::IndexOutOfRange {
            index: 10,
            tree_size: 10
        })
    ));
    assert!(matches!(
        verify_inclusion(&root, 0, 0, &[], &empty_root()),
        Err(LogError::IndexOutOfRange {
            index: 0,
            tree_size: 0
        })
    ));
    // The empty tree is consistent with any tree, but only under its own root.
    verify_consistency(0, 10, &empty_root(), &root, &[]).expect("empty is a prefix of all");
    assert!(matches!(
        verify_consistency(0, 10, &root, &root, &[]),
        Err(LogError::RootMismatch { tree_size: 0, .. })
    ));
    // Equal sizes: the same root, and nothing to prove.
    verify_consistency(10, 10, &root, &root, &[]).expect("same tree");
    assert!(matches!(
        verify_consistency(10, 10, &root, &empty_root(), &[]),
        Err(LogError::RootMismatch { tree_size: 10, .. })
    ));
    assert!(matches!(
        verify_consistency(10, 10, &root, &root, &[root]),
        Err(LogError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    ));
}

proptest! {
    #[test]
    fn arbitrary_proofs_never_panic_and_never_verify(
        index in any::<u64>(),
        size in any::<u64>(),
        old in any::<u64>(),
        seeds in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let proof: Vec<Digest> = seeds.iter().map(|s| sha256(&[*s])).collect();
        let root = sha256(b"root");
        prop_assert!(verify_inclusion(&sha256(b"leaf"), index, size, &proof, &root).is_err());
        let other = sha256(b"other root");
        prop_assert!(verify_consistency(old, size, &root, &other, &proof).is_err());
    }
}

#[test]
fn proofs_at_the_largest_sizes_fail_cleanly() {
    let h = sha256(b"x");
    let proof = vec![h; 64];
    for (index, size) in [(0, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
        assert!(matches!(
            verify_inclusion(&h, index, size, &proof, &h),
            Err(LogError::RootMismatch { .. } | LogError::WrongProofLength { .. })
        ));
    }
    for (old, new) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
        assert!(verify_consistency(old, new, &h, &h, &proof).is_err());
    }
}

// ---- proofs in JSON -----------------------------------------------------------------------

#[test]
fn proofs_travel_as_arrays_of_lowercase_hex() {
    let (_, log) = ct_log();
    let proof = log.inclusion_proof(2, 3).expect("proof");
    let json = serde_json::to_string(&proof).expect("json");
    assert_eq!(
        json,
        "[\"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125\"]"
    );
    let back: Vec<Digest> = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, proof);
    assert!(serde_json::from_str::<Vec<Digest>>(&json.to_uppercase()).is_err());
}

// ---- signed receipt and checkpoint ----------------------------------------------------------

struct Server {
    key: SoftwareSigner,
    log: MerkleLog,
}

struct Issued {
    receipt: Signed<IngestReceipt>,
    proof: Vec<Digest>,
    checkpoint: Signed<Checkpoint>,
    manifest: Digest,
}

fn server_with_history() -> Server {
    let (key, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).expect("key");
    let mut log = MerkleLog::new();
    for i in 0..57 {
        log.append_manifest(&manifest(i)).expect("append");
    }
    Server { key, log }
}

fn ingest(server: &mut Server, manifest: Digest, at_ms: i64) -> Issued {
    let log_index = server.log.append_manifest(&manifest).expect("append");
    let tree_size = server.log.size().expect("size");
    let receipt = IngestReceipt {
        bundle_id: BundleId::new(),
        manifest_digest: manifest,
        log_index,
        tree_size,
        received_at_ms: at_ms,
        verdict: Verdict::Accepted,
    };
    let checkpoint = Checkpoint {
        log_id: "tandem-test-log".into(),
        tree_size,
        root: server.log.root(tree_size).expect("root"),
        timestamp_ms: at_ms + 5,
    };
    Issued {
        receipt: Signed::sign(&receipt, &server.key).expect("sign receipt"),
        proof: server
            .log
            .inclusion_proof(log_index, tree_size)
            .expect("proof"),
        checkpoint: Signed::sign(&checkpoint, &server.key).expect("sign checkpoint"),
        manifest,
    }
}

const AT_MS: i64 = 1_796_000_000_000;

#[test]
fn a_signed_receipt_and_checkpoint_verify_offline() {
    let mut server = server_with_history();
    let issued = ingest(&mut server, sha256(b"our bundle's manifest"), AT_MS);
    let key = tandem_core::crypto::Signer::public_key(&server.key);
    let verified = verify_receipt(
        &issued.receipt,
        &issued.proof,
        &issued.checkpoint,
        &key,
        &issued.manifest,
    )
    .expect("verifies");
    assert_eq!(verified.receipt.log_index, 57);
    assert_eq!(verified.receipt.verdict, Verdict::Accepted);
    assert_eq!(verified.checkpoint.tree_size, 58);
    assert_eq!(verified.checkpoint.timestamp_ms, AT_MS + 5);
    // The signed bodies are canonical JSON with the documented field names.
    assert!(
        issued
            .checkpoint
            .body
            .starts_with("{\"log_id\":\"tandem-test-log\",\"root\":\"")
    );
    assert!(issued.receipt.body.contains("\"verdict\":\"accepted\""));
}

#[test]
fn a_receipt_is_refused_under_the_wrong_key() {
    let mut server = server_with_history();
    let issued = ingest(&mut server, sha256(b"m"), AT_MS);
    let (impostor, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).expect("key");
    let wrong = tandem_core::crypto::Signer::public_key(&impostor);
    let err = verify_receipt(
        &issued.receipt,
        &issued.proof,
        &issued.checkpoint,
        &wrong,
        &issued.manifest,
    )
    .expect_err("wrong key");
    assert!(
        matches!(
            err,
            LogError::Document {
                purpose: "ingest-receipt",
                ..
            }
        ),
        "{err:?}"
    );

    // A checkpoint signed by someone else is refused even when the receipt is genuine.
    let right = tandem_core::crypto::Signer::public_key(&server.key);
    let body: Checkpoint = issued.checkpoint.verify(&right).expect("genuine");
    let forged = Signed::sign(&body, &impostor).expect("sign");
    let err = verify_receipt(
        &issued.receipt,
        &issued.proof,
        &forged,
        &right,
        &issued.manifest,
    )
    .expect_err("forged checkpoint");
    assert!(
        matches!(
            err,
            LogError::Document {
                purpose: "checkpoint",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_receipt_for_another_tree_size_than_the_checkpoint_is_refused() {
    let mut server = server_with_history();
    let first = ingest(&mut server, sha256(b"first"), AT_MS);
    let later = ingest(&mut server, sha256(b"later"), AT_MS + 1000);
    let key = tandem_core::crypto::Signer::public_key(&server.key);
    let err = verify_receipt(
        &first.receipt,
        &first.proof,
        &later.checkpoint,
        &key,
        &first.manifest,
    )
    .expect_err("sizes differ");
    assert!(matches!(
        err,
        LogError::TreeSizeMismatch {
            receipt_tree_size: 58,
            checkpoint_tree_size: 59
        }
    ));
}

#[test]
fn a_receipt_for_another_manifest_is_refused() {
    let mut server = server_with_history();
    let issued = ingest(&mut server, sha256(b"someone else's bundle"), AT_MS);
    let key = tandem_core::crypto::Signer::public_key(&server.key);
    let ours = sha256(b"our bundle");
    let err = verify_receipt(
        &issued.receipt,
        &issued.proof,
        &issued.checkpoint,
        &key,
        &ours,
    )
    .expect_err("other manifest");
    assert!(matches!(
        err,
        LogError::ManifestDigestMismatch { expected, receipt } if expected == ours && receipt == issued.manifest
    ));
}

#[test]
fn a_receipt_whose_entry_is_not_under_the_checkpoint_root_is_refused() {
    let mut server = server_with_history();
    let issued = ingest(&mut server, sha256(b"m"), AT_MS);
    let key = tandem_core::crypto::Signer::public_key(&server.key);
    // A proof for a neighbouring entry: same length, different path.
    let wrong_proof = server.log.inclusion_proof(56, 58).expect("proof");
    let err = verify_receipt(
        &issued.receipt,
        &wrong_proof,
        &issued.checkpoint,
        &key,
        &issued.manifest,
    )
    .expect_err("wrong proof");
    assert!(
        matches!(err, LogError::RootMismatch { tree_size: 58, .. }),
        "{err:?}"
    );
    let err = verify_receipt(
        &issued.receipt,
        &issued.proof[1..],
        &issued.checkpoint,
        &key,
        &issued.manifest,
    )
    .expect_err("short proof");
    assert!(matches!(err, LogError::WrongProofLength { .. }), "{err:?}");
}

// ---- checkpoints over time -----------------------------------------------------------------

fn checkpoint(server: &Server, log_id: &str, tree_size: u64) -> Signed<Checkpoint> {
    let body = Checkpoint {
        log_id: log_id.into(),
        tree_size,
        root: server.log.root(tree_size).expect("root"),
        timestamp_ms: AT_MS + tree_size as i64,
    };
    Signed::sign(&body, &server.key).expect("sign")
}

#[test]
fn a_later_checkpoint_of_the_same_log_extends_an_earlier_one() {
    let mut server = server_with_history();
    let older = checkpoint(&server, "tandem-test-log", 20);
    for i in 100..130 {
        server.log.append_manifest(&manifest(i)).expect("append");
    }
    let newer = checkpoint(&server, "tandem-test-log", 87);
    let key = tandem_core::crypto::Signer::public_key(&server.key);
    let proof = server.log.consistency_proof(20, 87).expect("proof");
    let (old, new) = tandem_core::tlog::verify_checkpoint_consistency(&older, &newer, &proof, &key)
        .expect("consistent");
    assert_eq!((old.tree_size, new.tree_size), (20, 87));

    let other_log = checkpoint(&server, "another-log", 87);
    assert!(matches!(
        tandem_core::tlog::verify_checkpoint_consistency(&older, &other_log, &proof, &key),
        Err(LogError::LogIdMismatch { .. })
    ));
    assert!(matches!(
        tandem_core::tlog::verify_checkpoint_consistency(&newer, &older, &proof, &key),
        Err(LogError::SizesOutOfOrder {
            old_size: 87,
            new_size: 20
        })
    ));
}

#[test]
fn a_checkpoint_over_a_rewritten_log_does_not_extend_the_honest_one() {
    let honest = server_with_history();
    let older = checkpoint(&honest, "tandem-test-log", 40);
    // The same server key, but entry 30 replaced and the log grown on top of it.
    let mut rewritten = Server {
        key: honest.key,
        log: MerkleLog::new(),
    };
    for i in 0..60 {
        let m = if i == 30 {
            sha256(b"backdated")
        } else {
            manifest(i)
        };
        rewritten.log.append_manifest(&m).expect("append");
    }
    let newer = checkpoint(&rewritten, "tandem-test-log", 60);
    let key = tandem_core::crypto::Signer::public_key(&rewritten.key);
    let proof = rewritten.log.consistency_proof(40, 60).expect("proof");
    assert!(matches!(
        tandem_core::tlog::verify_checkpoint_consistency(&older, &newer, &proof, &key),
        Err(LogError::RootMismatch { tree_size: 40, .. })
    ));
}
