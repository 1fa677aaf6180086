//! The store: a folder of encrypted blob files named by their digest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::format::{FileHeader, HEADER_LEN, NONCE_LEN, TAG_LEN};
use super::reader::BlobReader;
use super::{BlobError, BlobKey, Digest, writer};

const LOCK_FILE: &str = "store.lock";
const KEY_CHECK_FILE: &str = "key-check";
const KEY_CHECK_MAGIC: [u8; 8] = *b"TNDMKEY1";
const KEY_CHECK_LEN: usize = KEY_CHECK_MAGIC.len() + NONCE_LEN + TAG_LEN;
pub(crate) const TMP_DIR: &str = "tmp";

/// What `put` stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlob {
    /// SHA-256 of the original bytes: the blob's address.
    pub digest: Digest,
    /// Length of the original bytes.
    pub size: u64,
    /// True when the store already held these bytes and the new copy was discarded.
    pub already_present: bool,
}

/// An encrypted, content-addressed blob store in one folder; share it between threads by reference.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp_dir: PathBuf,
    key: Arc<LessSafeKey>,
    rng: SystemRandom,
    /// Held for the store's lifetime so that no other store cleans our temp files.
    _lock: File,
}

impl BlobStore {
    /// Opens (or creates) the store in `dir`, removes temp files left by a crash and checks the key.
    pub fn open(dir: &Path, key: BlobKey) -> Result<Self, BlobError> {
        fs::create_dir_all(dir).map_err(|e| BlobError::io("creating store folder", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BlobError::io("opening lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(BlobError::StoreInUse { dir: dir.into() });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(BlobError::io("locking store", &lock_path, e));
            }
        }
        let tmp_dir = dir.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir)
            .map_err(|e| BlobError::io("creating temp folder", &tmp_dir, e))?;
        remove_stale_temp_files(&tmp_dir)?;

        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| BlobError::Seal)?;
        drop(key);
        let store = Self {
            dir: dir.into(),
            tmp_dir,
            key: Arc::new(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
            _lock: lock,
        };
        store.check_key()?;
        Ok(store)
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores everything `reader` yields; memory stays flat whatever the size.
    pub fn put(&self, reader: impl Read) -> Result<StoredBlob, BlobError> {
        writer::put(self, reader)
    }

    /// Stores a byte slice.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<StoredBlob, BlobError> {
        self.put(bytes)
    }

    /// Opens a blob for streaming; it verifies as it reads and fails at the end rather than lie.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, BlobError> {
        BlobReader::open(self.blob_path(digest), *digest, Arc::clone(&self.key))
    }

    /// Reads and verifies a whole blob into memory (for small blobs).
    pub fn read_to_vec(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut reader = self.open_blob(digest)?;
        let mut out = Vec::new();
        // The size comes from the authenticated header; a failed reservation is not fatal.
        if let Ok(size) = usize::try_from(reader.size()) {
            let _ = out.try_reserve_exact(size);
        }
        reader
            .read_to_end(&mut out)
            .map_err(|e| reader.recover_error(e))?;
        Ok(out)
    }

    /// Reads a blob through, checking every record and its digest, without keeping the bytes.
    pub fn verify(&self, digest: &Digest) -> Result<StoredBlob, BlobError> {
        let mut reader = self.open_blob(digest)?;
        reader.read_through()?;
        Ok(StoredBlob {
            digest: *digest,
            size: reader.size(),
            already_present: true,
        })
    }

    /// Whether a blob file exists under this digest (not verified).
    pub fn contains(&self, digest: &Digest) -> Result<bool, BlobError> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::io("looking up blob", path, e)),
        }
    }

    /// Deletes a blob (purge after the server's receipt); returns whether it was there.
    pub fn remove(&self, digest: &Digest) -> Result<bool, BlobError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(BlobError::io("removing blob", path, e)),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(true)
    }

    /// Where a blob with this digest lives: `ab/cd/abcd…`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_string();
        let (first, rest) = hex.split_at(2);
        let (second, _) = rest.split_at(2);
        self.dir.join(first).join(second).join(&hex)
    }

    pub(crate) fn key(&self) -> &LessSafeKey {
        &self.key
    }

    pub(crate) fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    pub(crate) fn random<const N: usize>(&self) -> Result<[u8; N], BlobError> {
        let mut out = [0u8; N];
        self.rng.fill(&mut out).map_err(|_| BlobError::Random)?;
        Ok(out)
    }

    /// Whether the file at `path` has an authentic header for `digest` and the right length:
    /// a cheap check that lets `put` replace a damaged copy instead of keeping it.
    pub(crate) fn looks_intact(&self, digest: &Digest) -> bool {
        BlobReader::open(self.blob_path(digest), *digest, Arc::clone(&self.key)).is_ok()
    }

    /// Moves a finished, fsynced temp file to its address; discards it if the blob is already there.
    pub(crate) fn publish(
        &self,
        temp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<bool, BlobError> {
        if self.contains(digest)? && self.looks_intact(digest) {
            // Dropping the temp file deletes it.
            return Ok(true);
        }
        let path = self.blob_path(digest);
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        create_dir_durably(&parent, &self.dir)?;
        temp.persist(&path)
            .map_err(|e| BlobError::io("publishing blob", &path, e.error))?;
        sync_dir(&parent)?;
        Ok(false)
    }

    /// Refuses a key that did not write this store, so a wrong key is a clear error at open.
    fn check_key(&self) -> Result<(), BlobError> {
        let path = self.dir.join(KEY_CHECK_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                if self.key_check_matches(&bytes) {
                    Ok(())
                } else {
                    Err(BlobError::WrongKey {
                        dir: self.dir.clone(),
                    })
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A store from before the check, or one whose check file was lost: accept the
                // key only if it opens an existing blob, so a wrong key never gets recorded.
                if let Some((blob, digest)) = self.any_blob()? {
                    let mut header = [0u8; HEADER_LEN];
                    let readable = File::open(&blob)
                        .and_then(|mut f| f.read_exact(&mut header))
                        .is_ok();
                    let authentic = readable
                        && FileHeader::open(&header, &self.key).is_ok_and(|h| h.digest == digest);
                    if !authentic {
                        return Err(BlobError::WrongKey {
                            dir: self.dir.clone(),
                        });
                    }
                }
                self.write_key_check(&path)
            }
            Err(e) => Err(BlobError::io("reading key check", path, e)),
        }
    }

    fn key_check_matches(&self, bytes: &[u8]) -> bool {
        let Some((magic, rest)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let Some((nonce, tag)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return false;
        };
        if *magic != KEY_CHECK_MAGIC || tag.len() != TAG_LEN {
            return false;
        }
        let mut tag = tag.to_vec();
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(&KEY_CHECK_MAGIC),
                &mut tag,
            )
            .is_ok()
    }

    fn write_key_check(&self, path: &Path) -> Result<(), BlobError> {
        let nonce: [u8; NONCE_LEN] = self.random()?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&KEY_CHECK_MAGIC),
                &mut [],
            )
            .map_err(|_| BlobError::Seal)?;
        let mut bytes = Vec::with_capacity(KEY_CHECK_LEN);
        bytes.extend_from_slice(&KEY_CHECK_MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(tag.as_ref());
        let mut temp = tempfile::Builder::new()
            .prefix("key-check-")
            .tempfile_in(&self.tmp_dir)
            .map_err(|e| BlobError::io("creating temp file in", &self.tmp_dir, e))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| BlobError::io("writing key check", temp.path().to_path_buf(), e))?;
        temp.persist(path)
            .map_err(|e| BlobError::io("publishing key check", path, e.error))?;
        sync_dir(&self.dir)
    }

    /// Some blob file of the store with its digest, if there is one.
    fn any_blob(&self) -> Result<Option<(PathBuf, Digest)>, BlobError> {
        for first in read_dir_names(&self.dir)? {
            if first.len() != 2 {
                continue;
            }
            let first_dir = self.dir.join(&first);
            for second in read_dir_names(&first_dir)? {
                let second_dir = first_dir.join(&second);
                for name in read_dir_names(&second_dir)? {
                    if let Ok(digest) = name.parse::<Digest>() {
                        return Ok(Some((second_dir.join(name), digest)));
                    }
                }
            }
        }
        Ok(None)
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, BlobError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(BlobError::io("listing", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| BlobError::io("listing", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Temp files are only ever half-written blobs (or key checks) of a store that crashed.
fn remove_stale_temp_files(tmp_dir: &Path) -> Result<(), BlobError> {
    let entries =
        fs::read_dir(tmp_dir).map_err(|e| BlobError::io("listing temp folder", tmp_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BlobError::io("listing temp folder", tmp_dir, e))?;
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| BlobError::io("removing stale temp file", &path, e))?;
    }
    Ok(())
}

/// Creates `dir` (and its parents up to `root`), fsyncing each parent so the entry survives a crash.
fn create_dir_durably(dir: &Path, root: &Path) -> Result<(), BlobError> {
    if dir == root || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(root);
    create_dir_durably(parent, root)?;
    match fs::create_dir(dir) {
        // Another thread may have created it a moment ago and not yet fsynced its parent.
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => sync_dir(parent),
        Err(e) => Err(BlobError::io("creating folder", dir, e)),
    }
}

/// Makes a rename or creation inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlobError::io("syncing folder", dir, e))
}
