//! A [`BundleSource`] over what the server holds: the stored `manifest.json` and
//! `signatures.json` bytes and the content-addressed blob store (folder or bucket).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tandem_core::bundle::{BundleError, BundleSource, Manifest, media_extension, pump};
use tandem_core::crypto::Digest;

use crate::blobstore::BlobStore;

/// A stored bundle as core's verifier reads it. `blobs/` lists exactly the manifest's blobs
/// that the store holds: the folder is shared by every bundle, so "extra" files there are
/// other bundles' and not this one's.
pub struct StoredSource {
    manifest: Vec<u8>,
    signatures: Vec<u8>,
    blobs: BTreeMap<String, Digest>,
    store: Arc<BlobStore>,
    reading: Reading,
}

/// How the verifier is to take the stored blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// As the store checked them: a blob is only ever installed under its address after
    /// its bytes hashed to it (at upload), so a commit checks each blob's presence and
    /// size and hashes nothing again.
    TrustAddresses,
    /// Every byte read and hashed again: "verify again", which is there to catch what
    /// changed on disk since.
    Rehash,
}

impl StoredSource {
    /// The bundle made of these bytes and the blobs its manifest lists.
    pub fn new(
        manifest_bytes: Vec<u8>,
        manifest: &Manifest,
        signatures: Vec<u8>,
        store: Arc<BlobStore>,
        reading: Reading,
    ) -> Self {
        let blobs = manifest
            .blobs
            .iter()
            .map(|b| {
                (
                    format!("{}.{}", b.sha256, media_extension(&b.media_type)),
                    b.sha256,
                )
            })
            .collect();
        Self {
            manifest: manifest_bytes,
            signatures,
            blobs,
            store,
            reading,
        }
    }

    fn digest_of(&self, name: &str) -> Option<&Digest> {
        self.blobs.get(name.strip_prefix("blobs/")?)
    }
}

fn too_large(name: &str, limit: u64) -> BundleError {
    BundleError::TooLarge {
        name: name.to_owned(),
        limit,
    }
}

impl BundleSource for StoredSource {
    fn location(&self) -> &Path {
        self.store.root()
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        let bytes = match name {
            "manifest.json" => &self.manifest,
            "signatures.json" => &self.signatures,
            // The receipt is what this very ingest produces.
            _ => return Ok(None),
        };
        if bytes.len() as u64 > limit {
            return Err(too_large(name, limit));
        }
        Ok(Some(bytes.clone()))
    }

    fn verified_size(&self, name: &str) -> Option<u64> {
        match self.reading {
            Reading::TrustAddresses => self.store.size(self.digest_of(name)?),
            Reading::Rehash => None,
        }
    }

    fn blob_names(&self) -> Result<Vec<String>, BundleError> {
        let mut names = Vec::with_capacity(self.blobs.len());
        for (name, digest) in &self.blobs {
            // A store that cannot answer is an error, not a missing blob.
            let size = self.store.try_size(digest).map_err(|e| BundleError::Io {
                path: self.store.location(digest),
                source: std::io::Error::other(e),
            })?;
            if size.is_some() {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError> {
        let digest = self.digest_of(name).ok_or_else(|| BundleError::Missing {
            name: name.to_owned(),
        })?;
        let path = self.store.location(digest);
        // Core's verifier hashes what it reads against the manifest; the reader authenticates
        // each record.
        let mut blob = self
            .store
            .open_read(digest)
            .map_err(|e| BundleError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?
            .digest_checked_by_caller();
        // Core's loop: one reused 1 MiB buffer, so memory stays flat whatever the blob size.
        pump(&mut blob, limit, sink, &path)
    }
}
