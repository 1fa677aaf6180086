//! A content-addressed store that checked every blob when it stored it (the server's, at
//! upload) lets the verifier skip hashing: it checks each blob's presence and size and reads
//! no byte of it. Any other source has every blob hashed.

use std::path::Path;

use tandem_core::bundle::testing::SampleBundle;
use tandem_core::bundle::{
    BundleError, BundleSource, CheckName, CheckResult, ExportTarget, FolderSource, verify_bundle,
};

/// The size a store vouches for, by entry name.
type Sizes = Box<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// An export folder that vouches for its blobs' addresses, with the sizes it is given, and
/// refuses to have any blob read.
struct VouchingStore {
    folder: FolderSource,
    size: Sizes,
}

impl BundleSource for VouchingStore {
    fn location(&self) -> &Path {
        self.folder.location()
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        self.folder.read_small(name, limit)
    }

    fn blob_names(&self) -> Result<Vec<String>, BundleError> {
        self.folder.blob_names()
    }

    fn verified_size(&self, name: &str) -> Option<u64> {
        (self.size)(name)
    }

    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError> {
        assert!(!name.starts_with("blobs/"), "{name} was read");
        self.folder.stream(name, limit, sink)
    }
}

fn exported() -> (SampleBundle, tempfile::TempDir) {
    let sample = SampleBundle::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    sample
        .export(ExportTarget::Folder(&dir.path().join("b")))
        .unwrap();
    (sample, dir)
}

#[test]
fn blobs_a_store_vouches_for_are_checked_by_size_without_a_byte_read() {
    let (sample, dir) = exported();
    let root = dir.path().join("b");
    let sizes = root.clone();
    let store = VouchingStore {
        folder: FolderSource::new(&root),
        size: Box::new(move |name| std::fs::metadata(sizes.join(name)).ok().map(|m| m.len())),
    };
    let report = verify_bundle(&store, &sample.trust);
    assert_eq!(report.result(CheckName::BlobDigests), &CheckResult::Pass);
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn a_vouched_blob_of_another_size_fails_blob_digests() {
    let (sample, dir) = exported();
    let root = dir.path().join("b");
    let store = VouchingStore {
        folder: FolderSource::new(&root),
        size: Box::new(|_| Some(7)),
    };
    let report = verify_bundle(&store, &sample.trust);
    match report.result(CheckName::BlobDigests) {
        CheckResult::Fail { reason } => {
            assert!(reason.contains("stored with 7 bytes"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
