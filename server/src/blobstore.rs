//! The server's content-addressed blob folder: `blobs/<first two hex>/<sha256 hex>`, each
//! file the exact original bytes. A blob appears under its address only complete and
//! fsynced: it is written to `blobs/tmp/`, synced, checked against its address and renamed,
//! and the folder is synced, so a crash leaves either nothing or the whole blob.

use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use tandem_core::crypto::Digest;

/// What can go wrong storing a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// A file operation failed.
    #[error("blob store {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The bytes do not hash to the address they were meant for; nothing was stored.
    #[error("blob content is {actual}, not its address {expected}")]
    DigestMismatch {
        /// The address.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobStoreError + '_ {
    move |source| BlobStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The blob folder.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the folder and its `tmp/` part.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobStoreError> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where partial files live (uploads in progress, blobs being installed).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The path of a blob's address (whether or not it is stored).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// The stored size of a blob, `None` when it is not stored.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest))
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
    }

    /// Whether a blob is stored.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.size(digest).is_some()
    }

    /// Opens a stored blob for reading.
    pub fn open_read(&self, digest: &Digest) -> Result<File, BlobStoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(io_err(&path))
    }

    /// Installs a complete temp file (in [`Self::tmp_dir`]) under `digest` after hashing it:
    /// fsyncs it, renames it into place and fsyncs the folder. A file whose bytes are not
    /// `digest` is removed and reported. Installing a blob that is present already just
    /// removes the temp file.
    pub fn install(&self, temp: &Path, digest: &Digest) -> Result<(), BlobStoreError> {
        let actual = hash_file(temp)?;
        if actual != *digest {
            let _ = fs::remove_file(temp);
            return Err(BlobStoreError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        self.install_verified(temp, digest)
    }

    /// As [`Self::install`], for a temp file the caller has hashed while writing it.
    pub fn install_verified(&self, temp: &Path, digest: &Digest) -> Result<(), BlobStoreError> {
        if self.contains(digest) {
            fs::remove_file(temp).map_err(io_err(temp))?;
            return Ok(());
        }
        File::open(temp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(temp))?;
        let dest = self.path(digest);
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        fs::rename(temp, &dest).map_err(io_err(&dest))?;
        sync_dir(&dir)?;
        Ok(())
    }

    /// Stores `bytes` (small blobs, tests); returns their address.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, BlobStoreError> {
        let digest = tandem_core::crypto::sha256(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let temp = self
            .tmp_dir()
            .join(format!("put-{}", uuid::Uuid::now_v7().simple()));
        let mut f = File::create(&temp).map_err(io_err(&temp))?;
        f.write_all(bytes).map_err(io_err(&temp))?;
        f.sync_all().map_err(io_err(&temp))?;
        drop(f);
        self.install_verified(&temp, &digest)?;
        Ok(digest)
    }
}

/// SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> Result<Digest, BlobStoreError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut ctx = tandem_core::crypto::Sha256Stream::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish())
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), BlobStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
