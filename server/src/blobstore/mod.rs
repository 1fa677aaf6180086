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
//! Either way the stored bytes are sealed ([`keys`]): AES-256-GCM records under a key of
//! the blob's own, in the phone's format, so the folder and the bucket hold no plaintext
//! evidence; sizes and reads are of the plaintext. Uploads in progress stay in the local
//! `blobs/tmp/` until installed, sealed too (`uploads::spool`). The methods that may wait on
//! the network for a bucket are blocking, for the blocking threads that verify, export and
//! install blobs, except the `async` ones ([`BlobStore::stat`], [`BlobStore::stream_range`])
//! meant for handlers.

pub mod keys;
pub mod migrate;
pub mod s3;

use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use tandem_core::blobs::{BlobError, SEALED_HEADER_LEN, Sealer};
use tandem_core::crypto::Digest;

pub use keys::{Keyring, KeyringError};
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
    /// The blob's key cannot be had (see [`KeyringError`]).
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// The stored bytes do not open as the sealed blob of their address.
    #[error("stored blob {location}: {source}")]
    Sealed {
        /// Its file or object.
        location: String,
        /// What the check found.
        source: BlobError,
    },
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
    keys: Keyring,
}

/// A stored blob's sealed bytes, from the folder or streamed from the bucket.
pub enum SealedSource {
    /// A file of the folder.
    File(File),
    /// An object's body as the bucket sends it.
    Remote(s3::ObjectReader),
}

impl Read for SealedSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.read(buf),
            Self::Remote(r) => r.read(buf),
        }
    }
}

/// A stored blob opened for reading: its plaintext, every record authenticated and the
/// digest checked before the last bytes are handed out (an `io::Error` says otherwise).
pub type BlobReader = tandem_core::blobs::BlobReader<SealedSource>;

/// The content address's key: `<first two hex>/<sha256 hex>`, in the folder and the bucket.
pub fn key_of(digest: &Digest) -> String {
    let hex = digest.to_hex();
    format!("{}/{hex}", &hex[..2])
}

impl BlobStore {
    /// Opens (creating) the folder and its `tmp/` part; blobs are sealed under `keys`.
    pub fn open(root: impl Into<PathBuf>, keys: Keyring) -> Result<Self, BlobStoreError> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self {
            root,
            bucket: None,
            keys,
        })
    }

    /// Blobs in a bucket; `root` keeps uploads in progress (`tmp/`).
    pub fn open_s3(
        root: impl Into<PathBuf>,
        config: &S3Config,
        keys: Keyring,
    ) -> Result<Self, BlobStoreError> {
        let mut store = Self::open(root, keys)?;
        store.bucket = Some(S3Blobs::open(config)?);
        Ok(store)
    }

    /// The keys the blobs are sealed under.
    pub fn keys(&self) -> &Keyring {
        &self.keys
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

    /// The plaintext size of a blob, `None` when it is not stored (blocking). Stored bytes
    /// of a length no plaintext seals to count as not stored (a new copy replaces them).
    pub fn try_size(&self, digest: &Digest) -> Result<Option<u64>, BlobStoreError> {
        Ok(self.sealed_size(digest)?.and_then(Sealer::plaintext_len))
    }

    /// The length of a blob's sealed bytes, `None` when there are none (blocking).
    pub fn sealed_size(&self, digest: &Digest) -> Result<Option<u64>, BlobStoreError> {
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
        let sealed = match &self.bucket {
            Some(b) => b.run(b.head(key_of(digest))).await?,
            None => self.sealed_size(digest)?,
        };
        Ok(sealed.and_then(Sealer::plaintext_len))
    }

    /// Whether a blob is stored (blocking).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.size(digest).is_some()
    }

    /// The sealer of a stored blob (blocking).
    fn stored_sealer(&self, digest: &Digest) -> Result<Sealer, BlobStoreError> {
        self.keys
            .block_on(self.keys.sealer(digest))??
            .ok_or_else(|| KeyringError::NoKey(*digest).into())
    }

    /// Opens a stored blob for reading its plaintext (blocking; a bucket's object streams
    /// as it is read).
    pub fn open_read(&self, digest: &Digest) -> Result<BlobReader, BlobStoreError> {
        let sealer = self.stored_sealer(digest)?;
        let location = self.location(digest);
        let (source, len) = self.open_sealed(digest)?;
        sealer
            .reader(*digest, source, len, location.clone())
            .map_err(|source| BlobStoreError::Sealed {
                location: location.display().to_string(),
                source,
            })
    }

    /// A stored blob's sealed bytes as they lie in the folder or the bucket, and their
    /// length (blocking; for reading through [`Self::open_read`], audits and tests).
    pub fn open_sealed(&self, digest: &Digest) -> Result<(SealedSource, u64), BlobStoreError> {
        match &self.bucket {
            Some(b) => {
                let reader = b.open_read(&key_of(digest))?;
                let len = reader.size;
                Ok((SealedSource::Remote(reader), len))
            }
            None => {
                let path = self.path(digest);
                let file = File::open(&path).map_err(io_err(&path))?;
                let len = file.metadata().map_err(io_err(&path))?.len();
                Ok((SealedSource::File(file), len))
            }
        }
    }

    /// `range` of a blob's sealed bytes, as a stream of chunks.
    async fn sealed_range(
        &self,
        digest: &Digest,
        range: std::ops::Range<u64>,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, BlobStoreError> {
        if let Some(b) = &self.bucket {
            return b.stream_range(key_of(digest), range).await;
        }
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let path = self.path(digest);
        let mut file = tokio::fs::File::open(&path).await.map_err(io_err(&path))?;
        if range.start > 0 {
            file.seek(io::SeekFrom::Start(range.start))
                .await
                .map_err(io_err(&path))?;
        }
        Ok(tokio_util::io::ReaderStream::with_capacity(
            file.take(range.end.saturating_sub(range.start)),
            1 << 16,
        )
        .boxed())
    }

    /// `length` bytes of a stored blob's plaintext from `first`, as a stream of chunks for
    /// a response body: only the records holding them are fetched, each authenticated
    /// before any of its bytes is sent (never the whole blob in memory).
    pub async fn stream_range(
        &self,
        digest: &Digest,
        first: u64,
        length: u64,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, BlobStoreError> {
        let sealer = self
            .keys
            .sealer(digest)
            .await?
            .ok_or(KeyringError::NoKey(*digest))?;
        let sealed_err = |source| BlobStoreError::Sealed {
            location: self.location(digest).display().to_string(),
            source,
        };
        let mut head = Vec::with_capacity(SEALED_HEADER_LEN);
        let mut header = self
            .sealed_range(digest, 0..SEALED_HEADER_LEN as u64)
            .await?;
        while let Some(chunk) = header.next().await {
            head.extend_from_slice(&chunk.map_err(io_err(&self.location(digest)))?);
        }
        let layout = sealer.layout(*digest, &head).map_err(sealed_err)?;
        if length == 0 {
            return Ok(futures_util::stream::empty().boxed());
        }
        let span = layout.span(first..first.saturating_add(length));
        let records = self.sealed_range(digest, span.sealed.clone()).await?;
        struct Opening {
            records: BoxStream<'static, io::Result<Bytes>>,
            layout: tandem_core::blobs::SealedLayout,
            buf: BytesMut,
            index: u64,
            skip: usize,
            left: u64,
        }
        let state = Opening {
            records,
            layout,
            buf: BytesMut::new(),
            index: span.first_record,
            skip: usize::try_from(span.skip).unwrap_or(usize::MAX),
            left: length,
        };
        Ok(
            futures_util::stream::try_unfold(state, |mut st| async move {
                loop {
                    if st.left == 0 {
                        return Ok(None);
                    }
                    let need = st.layout.record_sealed_len(st.index);
                    if st.buf.len() >= need {
                        let mut raw = st.buf.split_to(need);
                        let plain = st
                            .layout
                            .open_record(st.index, &mut raw)
                            .map_err(io::Error::other)?;
                        let from = st.skip.min(plain.len());
                        let take = (plain.len() - from)
                            .min(usize::try_from(st.left).unwrap_or(usize::MAX));
                        let out = Bytes::copy_from_slice(&plain[from..from + take]);
                        st.skip = 0;
                        st.index += 1;
                        st.left -= take as u64;
                        return Ok(Some((out, st)));
                    }
                    match st.records.next().await {
                        Some(chunk) => st.buf.extend_from_slice(&chunk?),
                        None => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the stored blob ends before the range asked for",
                            ));
                        }
                    }
                }
            })
            .boxed(),
        )
    }

    /// Removes a stored blob and forgets its keys; one that is not stored is no error
    /// (blocking).
    pub fn remove(&self, digest: &Digest) -> Result<(), BlobStoreError> {
        if let Some(b) = &self.bucket {
            b.block_on(b.delete(key_of(digest)))?;
        } else {
            let path = self.path(digest);
            match fs::remove_file(&path) {
                Ok(()) => {
                    if let Some(dir) = path.parent() {
                        sync_dir(dir)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        // Its keys go too: a copy left in a backup or an old object version stays sealed.
        Ok(self.keys.block_on(self.keys.forget(digest))??)
    }

    /// Installs a complete temp file (in [`Self::tmp_dir`]) under `digest` after hashing it:
    /// seals it into a synced temp file, renames that into place and fsyncs the folder, or
    /// puts it into the bucket, and removes the plaintext. A file whose bytes are not
    /// `digest` is removed and reported. Installing a blob that is present already (and
    /// readable) just removes the temp file (blocking).
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

    /// As [`Self::install`], for a temp file the caller has hashed: seals it under the
    /// blob's key (kept first by whichever server stores the blob) into a second temp file,
    /// places that, and removes the plaintext. A blob present already (and readable) is
    /// left as it is.
    pub fn install_verified(&self, temp: &Path, digest: &Digest) -> Result<(), BlobStoreError> {
        let len = fs::metadata(temp).map_err(io_err(temp))?.len();
        let existing = self.keys.block_on(self.keys.sealer(digest))??;
        if existing.is_none() || self.try_size(digest)? != Some(len) {
            let sealer = match existing {
                Some(sealer) => sealer,
                None => self.keys.block_on(self.keys.sealer_for_write(digest))??,
            };
            let input = File::open(temp).map_err(io_err(temp))?;
            let sealed = self.seal_into_temp(&sealer, input, digest, len)?;
            let placed = self.place(&sealed, digest);
            if placed.is_err() {
                let _ = fs::remove_file(&sealed);
            }
            placed?;
        }
        fs::remove_file(temp).map_err(io_err(temp))
    }

    /// Installs a synced temp file that already holds the blob `digest` (`len` bytes)
    /// sealed under its key (an upload written record by record): the header must open
    /// under the key the keyring holds now and the file have the sealed length, then it is
    /// placed as it is. A blob present already (and readable) just removes the file
    /// (blocking).
    pub fn install_sealed(
        &self,
        sealed: &Path,
        digest: &Digest,
        len: u64,
    ) -> Result<(), BlobStoreError> {
        let sealer = self
            .keys
            .block_on(self.keys.sealer(digest))??
            .ok_or(KeyringError::NoKey(*digest))?;
        if self.try_size(digest)? == Some(len) {
            return fs::remove_file(sealed).map_err(io_err(sealed));
        }
        let mut file = File::open(sealed).map_err(io_err(sealed))?;
        let mut head = [0u8; SEALED_HEADER_LEN];
        file.read_exact(&mut head).map_err(io_err(sealed))?;
        let stored_len = file.metadata().map_err(io_err(sealed))?.len();
        let layout = sealer
            .layout(*digest, &head)
            .map_err(|source| BlobStoreError::Sealed {
                location: sealed.display().to_string(),
                source,
            })?;
        if layout.plaintext_size() != len || stored_len != Sealer::sealed_len(len) {
            return Err(BlobStoreError::Sealed {
                location: sealed.display().to_string(),
                source: BlobError::Truncated {
                    digest: *digest,
                    expected: Sealer::sealed_len(len),
                    actual: stored_len,
                },
            });
        }
        drop(file);
        self.place(sealed, digest)
    }

    /// Seals `len` plaintext bytes of `digest` from `input` into a new synced temp file.
    fn seal_into_temp(
        &self,
        sealer: &Sealer,
        input: impl Read,
        digest: &Digest,
        len: u64,
    ) -> Result<PathBuf, BlobStoreError> {
        let sealed = self
            .tmp_dir()
            .join(format!("sealed-{}", uuid::Uuid::now_v7().simple()));
        let output = File::create(&sealed).map_err(io_err(&sealed))?;
        let mut writer = io::BufWriter::with_capacity(1 << 20, output);
        let result = sealer
            .seal(*digest, len, input, &mut writer)
            .map_err(|source| BlobStoreError::Sealed {
                location: sealed.display().to_string(),
                source,
            })
            .and_then(|_| {
                writer
                    .into_inner()
                    .map_err(|e| io_err(&sealed)(e.into_error()))?
                    .sync_all()
                    .map_err(io_err(&sealed))
            });
        match result {
            Ok(()) => Ok(sealed),
            Err(e) => {
                let _ = fs::remove_file(&sealed);
                Err(e)
            }
        }
    }

    /// Places a synced temp file of sealed bytes under `digest`: renames it into the folder
    /// (and syncs the folder) or puts it into the bucket and removes it.
    fn place(&self, sealed: &Path, digest: &Digest) -> Result<(), BlobStoreError> {
        if let Some(b) = &self.bucket {
            b.put_file(sealed, &key_of(digest))?;
            return fs::remove_file(sealed).map_err(io_err(sealed));
        }
        let dest = self.path(digest);
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        fs::rename(sealed, &dest).map_err(io_err(&dest))?;
        sync_dir(&dir)
    }

    /// Stores `bytes` (small blobs, tests); returns their address (blocking).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, BlobStoreError> {
        let digest = tandem_core::crypto::sha256(bytes);
        let len = bytes.len() as u64;
        let existing = self.keys.block_on(self.keys.sealer(&digest))??;
        if existing.is_some() && self.try_size(&digest)? == Some(len) {
            return Ok(digest);
        }
        let sealer = match existing {
            Some(sealer) => sealer,
            None => self.keys.block_on(self.keys.sealer_for_write(&digest))??,
        };
        let mut sealed_bytes = Vec::with_capacity(Sealer::sealed_len(len) as usize);
        sealer
            .seal(digest, len, bytes, &mut sealed_bytes)
            .map_err(|source| BlobStoreError::Sealed {
                location: self.location(&digest).display().to_string(),
                source,
            })?;
        if let Some(b) = &self.bucket {
            b.block_on(b.put(key_of(&digest), sealed_bytes.into()))?;
            return Ok(digest);
        }
        let temp = self
            .tmp_dir()
            .join(format!("sealed-{}", uuid::Uuid::now_v7().simple()));
        let mut f = File::create(&temp).map_err(io_err(&temp))?;
        f.write_all(&sealed_bytes).map_err(io_err(&temp))?;
        f.sync_all().map_err(io_err(&temp))?;
        drop(f);
        self.place(&temp, &digest)?;
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
