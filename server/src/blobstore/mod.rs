//! The server's content-addressed blobs, behind one interface with two homes: the local
//! folder (the default) and an S3-compatible bucket ([`s3`]). Either way a blob's address
//! is the SHA-256 of its bytes, its key `<first two hex>/<sha256 hex>`, and it appears under
//! that address only complete and checked:
//! - in the folder it is written to `blobs/tmp/`, synced, checked against its address and
//!   renamed, and the folder is synced, so a crash leaves either nothing or the whole blob;
//! - in a bucket the checked temp file is put in one request, or as a multipart upload
//!   for large blobs, and S3 shows an object only once its PUT or its multipart upload
//!   completed.
//!
//! Uploads in progress always stay in the local `blobs/tmp/`. The methods that may wait on
//! the network for a bucket are blocking, for the blocking threads that verify, export and
//! install blobs, except the `async` ones ([`BlobStore::stat`], [`BlobStore::stream_range`])
//! meant for handlers.

pub mod migrate;
pub mod s3;

use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use tandem_core::crypto::Digest;

pub use s3::{S3Blobs, S3Config};

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
    /// The object store answered with an error, or could not be reached.
    #[error("object store {location}: {source}")]
    Remote {
        /// The bucket and key (never credentials).
        location: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The object store's settings are incomplete or wrong.
    #[error("object store settings: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobStoreError + '_ {
    move |source| BlobStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The blob store: the local folder, and the bucket when one is configured. The folder
/// always holds `tmp/` (uploads in progress); with a bucket it holds no blob.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    bucket: Option<S3Blobs>,
}

/// A stored blob opened for reading, from the folder or streamed from the bucket.
pub enum BlobReader {
    /// A file of the folder.
    File(File),
    /// An object's body as the bucket sends it.
    Remote(s3::ObjectReader),
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.read(buf),
            Self::Remote(r) => r.read(buf),
        }
    }
}

/// The content address's key: `<first two hex>/<sha256 hex>`, in the folder and the bucket.
pub fn key_of(digest: &Digest) -> String {
    let hex = digest.to_hex();
    format!("{}/{hex}", &hex[..2])
}

impl BlobStore {
    /// Opens (creating) the folder and its `tmp/` part.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobStoreError> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self { root, bucket: None })
    }

    /// Blobs in a bucket; `root` keeps uploads in progress (`tmp/`).
    pub fn open_s3(root: impl Into<PathBuf>, config: &S3Config) -> Result<Self, BlobStoreError> {
        let mut store = Self::open(root)?;
        store.bucket = Some(S3Blobs::open(config)?);
        Ok(store)
    }

    /// The bucket, when blobs live in one.
    pub fn bucket(&self) -> Option<&S3Blobs> {
        self.bucket.as_ref()
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where partial files live (uploads in progress, blobs being installed).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The file of a blob's address in the local folder (whether or not it is stored
    /// there; with a bucket, blobs are not in the folder).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Where a blob is, for messages: its file or `s3://bucket/key`.
    pub fn location(&self, digest: &Digest) -> PathBuf {
        match &self.bucket {
            Some(b) => PathBuf::from(b.location(&key_of(digest))),
            None => self.path(digest),
        }
    }

    /// The stored size of a blob, `None` when it is not stored or cannot be asked
    /// (blocking).
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        self.try_size(digest).ok().flatten()
    }

    /// The stored size of a blob, `None` when it is not stored (blocking).
    pub fn try_size(&self, digest: &Digest) -> Result<Option<u64>, BlobStoreError> {
        match &self.bucket {
            Some(b) => b.block_on(b.head(key_of(digest))),
            None => Ok(fs::metadata(self.path(digest))
                .ok()
                .filter(fs::Metadata::is_file)
                .map(|m| m.len())),
        }
    }

    /// As [`Self::try_size`], for async code.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobStoreError> {
        match &self.bucket {
            Some(b) => b.run(b.head(key_of(digest))).await,
            None => self.try_size(digest),
        }
    }

    /// Whether a blob is stored (blocking).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.size(digest).is_some()
    }

    /// Opens a stored blob for reading (blocking; a bucket's object streams as it is read).
    pub fn open_read(&self, digest: &Digest) -> Result<BlobReader, BlobStoreError> {
        match &self.bucket {
            Some(b) => b.open_read(&key_of(digest)).map(BlobReader::Remote),
            None => {
                let path = self.path(digest);
                File::open(&path)
                    .map(BlobReader::File)
                    .map_err(io_err(&path))
            }
        }
    }

    /// `length` bytes of a stored blob from `first`, as a stream of chunks for a response
    /// body (never the whole blob in memory).
    pub async fn stream_range(
        &self,
        digest: &Digest,
        first: u64,
        length: u64,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, BlobStoreError> {
        if let Some(b) = &self.bucket {
            return b.stream_range(key_of(digest), first..first + length).await;
        }
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let path = self.path(digest);
        let mut file = tokio::fs::File::open(&path).await.map_err(io_err(&path))?;
        if first > 0 {
            file.seek(io::SeekFrom::Start(first))
                .await
                .map_err(io_err(&path))?;
        }
        Ok(tokio_util::io::ReaderStream::with_capacity(file.take(length), 1 << 16).boxed())
    }

    /// Removes a stored blob; one that is not stored is no error (blocking).
    pub fn remove(&self, digest: &Digest) -> Result<(), BlobStoreError> {
        if let Some(b) = &self.bucket {
            return b.block_on(b.delete(key_of(digest)));
        }
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => match path.parent() {
                Some(dir) => sync_dir(dir),
                None => Ok(()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Installs a complete temp file (in [`Self::tmp_dir`]) under `digest` after hashing it:
    /// fsyncs it, renames it into place and fsyncs the folder, or puts it into the bucket
    /// and removes it. A file whose bytes are not `digest` is removed and reported.
    /// Installing a blob that is present already just removes the temp file (blocking).
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
        if let Some(b) = &self.bucket {
            let len = fs::metadata(temp).map_err(io_err(temp))?.len();
            if b.block_on(b.head(key_of(digest)))? != Some(len) {
                b.put_file(temp, &key_of(digest))?;
            }
            return fs::remove_file(temp).map_err(io_err(temp));
        }
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

    /// Stores `bytes` (small blobs, tests); returns their address (blocking).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, BlobStoreError> {
        let digest = tandem_core::crypto::sha256(bytes);
        if let Some(b) = &self.bucket {
            let key = key_of(&digest);
            if b.block_on(b.head(key.clone()))? != Some(bytes.len() as u64) {
                let body = Bytes::copy_from_slice(bytes);
                b.block_on(b.put(key, body))?;
            }
            return Ok(digest);
        }
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
