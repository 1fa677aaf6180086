//! Keys of the blobs at rest. Each stored blob is sealed under a random key of its own (a
//! data key); the data key is kept in the database wrapped (AES-256-GCM) by the key of the
//! bank whose committed visit holds the blob, or by the master key while no visit holds it
//! yet. Bank keys are kept in the database wrapped by the master key, which comes from a
//! file or the environment and never reaches the database ([`MasterKey`] is the seam a KMS
//! would fill). Every wrapping names what it wraps (its associated data), so a wrapped key
//! moved to another row does not open.
//!
//! Destroying a bank's key (`tandem bank destroy`) leaves every blob only that bank held
//! unreadable, in the bucket, the folder and any backup of them, while content addresses
//! stay the digests of the plaintext, so bundles verify as before.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use tandem_core::blobs::{BlobKey, Sealer};
use tandem_core::crypto::Digest;
use zeroize::Zeroizing;

use crate::db::{Db, DbError};

/// The environment variable that may carry the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "TANDEM_MASTER_KEY";

/// What can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The master key file cannot be read or written.
    #[error("master key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master key is not 32 bytes in base64.
    #[error("master key ({0}) is not 32 bytes in base64")]
    Malformed(String),
    /// No master key was given while the database's keyring exists.
    #[error(
        "no master key: this database's blobs are sealed under one; give it with \
         --master-key-file or TANDEM_MASTER_KEY (the file at {0} is missing)"
    )]
    Missing(PathBuf),
    /// The master key given is not the one this database's keyring was set up with.
    #[error(
        "the master key given does not open this database's keyring: every server on one \
         database needs the same master key"
    )]
    WrongMaster,
    /// A wrapped key does not open: tampered, or wrapped under another key.
    #[error("a wrapped key ({0}) does not open under its wrapping key")]
    Unwrap(&'static str),
    /// The blob has no key any live holder can open (never stored, or its holders'
    /// keys were destroyed).
    #[error("blob {0} has no key that can be opened (not stored, or its bank's key was destroyed)")]
    NoKey(Digest),
    /// The bank's key was destroyed: nothing can be stored for it any more.
    #[error("bank {0}'s key was destroyed")]
    BankDestroyed(String),
    /// Random bytes or sealing failed.
    #[error("key material could not be drawn or sealed")]
    Crypto,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Blocking use of the keyring outside a runtime.
    #[error("keyring used outside the server's runtime")]
    NoRuntime,
}

/// Wraps and unwraps 32-byte keys: the master key's job (a file's key today; a KMS would
/// implement it the same way).
pub trait MasterKey: Send + Sync + fmt::Debug {
    /// `key` sealed so that only this master key opens it, bound to `context`.
    fn wrap(&self, key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, KeyringError>;
    /// Opens what [`MasterKey::wrap`] sealed with the same `context`.
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyringError>;
}

/// An AES-256-GCM key wrapping other keys: `nonce | ciphertext | tag`.
struct Wrapper {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wrapper(..)")
    }
}

impl Wrapper {
    fn new(bytes: &[u8; 32]) -> Result<Self, KeyringError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyringError::Crypto)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    fn seal(&self, plain: &[u8], context: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| KeyringError::Crypto)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| KeyringError::Crypto)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(
        &self,
        sealed: &[u8],
        context: &[u8],
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
        let (nonce, body) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(KeyringError::Unwrap(what))?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyringError::Unwrap(what))?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| KeyringError::Unwrap(what))?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    fn unwrap_key(
        &self,
        sealed: &[u8],
        context: &[u8],
        what: &'static str,
    ) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
        let plain = self.open(sealed, context, what)?;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(KeyringError::Unwrap(what));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

/// The master key from a file or the environment (32 random bytes, base64).
#[derive(Debug)]
pub struct LocalMasterKey(Wrapper);

impl LocalMasterKey {
    /// From base64 text; `source` names it in errors (never the key itself).
    pub fn from_base64(text: &str, source: &str) -> Result<Self, KeyringError> {
        let bytes = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| KeyringError::Malformed(source.to_owned()))?,
        );
        let bytes: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::Malformed(source.to_owned()))?;
        Ok(Self(Wrapper::new(bytes)?))
    }

    /// A fresh random master key and its base64 text (for a new file, and tests).
    pub fn generate() -> Result<(Self, Zeroizing<String>), KeyringError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KeyringError::Crypto)?;
        let text = Zeroizing::new(B64.encode(bytes.as_ref()));
        Ok((Self(Wrapper::new(&bytes)?), text))
    }

    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyringError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyringError::Io {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Self::from_base64(&text, &path.display().to_string())
    }

    /// Creates a new key file at `path` (mode 0600; never replaces a file).
    pub fn create(path: &Path) -> Result<Self, KeyringError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        let (key, text) = Self::generate()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(key)
    }
}

impl MasterKey for LocalMasterKey {
    fn wrap(&self, key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, KeyringError> {
        self.0.seal(key, context)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
        self.0.unwrap_key(wrapped, context, "master-wrapped key")
    }
}

/// The master key of a server: `TANDEM_MASTER_KEY` when set, else the file `file`
/// (default `default_file`). A missing file is created only for a database whose keyring
/// is not set up yet (a new deployment, like the server key); otherwise the server must
/// not start without the key its blobs are sealed under.
pub async fn resolve_master(
    file: Option<&Path>,
    default_file: &Path,
    db: &dyn Db,
) -> Result<Arc<dyn MasterKey>, KeyringError> {
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return Ok(Arc::new(LocalMasterKey::from_base64(
            &text,
            MASTER_KEY_ENV,
        )?));
    }
    let path = file.unwrap_or(default_file);
    match LocalMasterKey::load(path) {
        Ok(key) => Ok(Arc::new(key)),
        Err(KeyringError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if db.keyring_check().await?.is_some() {
                return Err(KeyringError::Missing(path.to_owned()));
            }
            Ok(Arc::new(LocalMasterKey::create(path)?))
        }
        Err(e) => Err(e),
    }
}

const CHECK_CONTEXT: &[u8] = b"tandem keyring v1: master key check";
const CHECK_PLAIN: [u8; 32] = *b"tandem master key check value v1";

fn bank_context(bank: &str) -> Vec<u8> {
    format!("tandem bank key v1|{bank}").into_bytes()
}

fn blob_context(holder: Option<&str>, digest: &Digest) -> Vec<u8> {
    format!(
        "tandem blob key v1|{}|{}",
        holder.unwrap_or(""),
        digest.to_hex()
    )
    .into_bytes()
}

fn spool_context(upload: uuid::Uuid) -> Vec<u8> {
    format!("tandem upload spool key v1|{}", upload.simple()).into_bytes()
}

fn b64(text: &str, what: &'static str) -> Result<Vec<u8>, KeyringError> {
    B64.decode(text).map_err(|_| KeyringError::Unwrap(what))
}

/// The keys of the blobs at rest, wrapped in the database under the master key.
#[derive(Clone)]
pub struct Keyring {
    master: Arc<dyn MasterKey>,
    db: Arc<dyn Db>,
    /// The runtime it was made on, for blocking use from threads outside any runtime.
    handle: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// The keyring of `db` under `master` (checked by [`Keyring::check_master`]).
    pub fn new(db: Arc<dyn Db>, master: Arc<dyn MasterKey>) -> Self {
        Self {
            master,
            db,
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Sets the keyring up on a new database, or checks that `master` is the key it was set
    /// up with: a server with another master key must not start.
    pub async fn check_master(&self, now_ms: i64) -> Result<(), KeyringError> {
        if self.db.keyring_check().await?.is_none() {
            let check = B64.encode(self.master.wrap(&CHECK_PLAIN, CHECK_CONTEXT)?);
            self.db.init_keyring(&check, now_ms).await?;
        }
        match self.opens_keyring().await? {
            Some(true) => Ok(()),
            _ => Err(KeyringError::WrongMaster),
        }
    }

    /// Whether the master key opens the database's keyring; `None` when it is not set up.
    /// Changes nothing (`tandem serve --check`).
    pub async fn opens_keyring(&self) -> Result<Option<bool>, KeyringError> {
        let Some(check) = self.db.keyring_check().await? else {
            return Ok(None);
        };
        let opened = b64(&check, "keyring check")
            .and_then(|bytes| self.master.unwrap(&bytes, CHECK_CONTEXT));
        Ok(Some(matches!(opened, Ok(plain) if *plain == CHECK_PLAIN)))
    }

    /// A new data key for the partial file of upload `upload`, and that key wrapped by the
    /// master key and bound to the upload (kept in the file's own header: any server with
    /// the master key can resume the upload, and no other upload's file opens with it).
    pub fn new_spool_key(
        &self,
        upload: uuid::Uuid,
    ) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), KeyringError> {
        let mut key = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(key.as_mut())
            .map_err(|_| KeyringError::Crypto)?;
        let wrapped = self.master.wrap(&key, &spool_context(upload))?;
        Ok((key, wrapped))
    }

    /// Opens what [`Keyring::new_spool_key`] wrapped for `upload`.
    pub fn open_spool_key(
        &self,
        upload: uuid::Uuid,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
        self.master.unwrap(wrapped, &spool_context(upload))
    }

    /// A sealer for the blob `digest` under its existing key, if a live holder has one.
    pub async fn sealer(&self, digest: &Digest) -> Result<Option<Sealer>, KeyringError> {
        self.data_key(digest)
            .await?
            .map(|key| Sealer::new(BlobKey::from_bytes(*key)))
            .transpose()
            .map_err(|_| KeyringError::Crypto)
    }

    /// A sealer for storing the blob `digest`: its existing key, or a new one kept staged
    /// (wrapped by the master key) until a bank holds the blob. Of several servers storing
    /// one blob at once, all end up with the key that was kept first.
    pub async fn sealer_for_write(&self, digest: &Digest) -> Result<Sealer, KeyringError> {
        if let Some(sealer) = self.sealer(digest).await? {
            return Ok(sealer);
        }
        let mut fresh = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(fresh.as_mut())
            .map_err(|_| KeyringError::Crypto)?;
        let wrapped = self.master.wrap(&fresh, &blob_context(None, digest))?;
        self.db
            .put_blob_key(digest, None, &B64.encode(wrapped))
            .await?;
        self.sealer(digest)
            .await?
            .ok_or(KeyringError::NoKey(*digest))
    }

    /// Lets `bank` hold the keys of `digests` (a committed visit of that bank holds those
    /// blobs): each key is wrapped by the bank's key (created on first use) and its staged
    /// copy dropped. Idempotent.
    pub async fn grant(
        &self,
        bank: &str,
        digests: &[Digest],
        now_ms: i64,
    ) -> Result<(), KeyringError> {
        let mut grants: std::collections::BTreeMap<Digest, Vec<crate::db::keys::BlobKeyGrant>> =
            std::collections::BTreeMap::new();
        for (digest, grant) in self.db.blob_key_grants_of(digests).await? {
            grants.entry(digest).or_default().push(grant);
        }
        let mut bank_key: Option<Wrapper> = None;
        let mut wrapped = Vec::new();
        let mut unstage = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for digest in digests {
            if !seen.insert(*digest) {
                continue;
            }
            let held = grants.get(digest).map(Vec::as_slice).unwrap_or_default();
            if !held.iter().any(|g| g.bank_id.as_deref() == Some(bank)) {
                let Some(key) = self.open_any(digest, held)? else {
                    return Err(KeyringError::NoKey(*digest));
                };
                if bank_key.is_none() {
                    bank_key = Some(self.bank_wrapper(bank, now_ms).await?);
                }
                let wrapper = bank_key.as_ref().ok_or(KeyringError::Crypto)?;
                let sealed = wrapper.seal(key.as_ref(), &blob_context(Some(bank), digest))?;
                wrapped.push((*digest, B64.encode(sealed)));
            }
            if held.iter().any(|g| g.bank_id.is_none()) {
                unstage.push(*digest);
            }
        }
        if !wrapped.is_empty() || !unstage.is_empty() {
            self.db.grant_blob_keys(bank, &wrapped, &unstage).await?;
        }
        Ok(())
    }

    /// Forgets every key of a blob whose bytes were destroyed: any copy left anywhere stays
    /// sealed for good.
    pub async fn forget(&self, digest: &Digest) -> Result<(), KeyringError> {
        Ok(self.db.drop_blob_keys(digest).await?)
    }

    /// The bank's key, created (random, wrapped by the master key) on first use.
    async fn bank_wrapper(&self, bank: &str, now_ms: i64) -> Result<Wrapper, KeyringError> {
        let row = match self.db.bank_key(bank).await? {
            Some(row) => row,
            None => {
                let mut fresh = Zeroizing::new([0u8; 32]);
                SystemRandom::new()
                    .fill(fresh.as_mut())
                    .map_err(|_| KeyringError::Crypto)?;
                let wrapped = self.master.wrap(&fresh, &bank_context(bank))?;
                self.db
                    .create_bank_key(bank, &B64.encode(wrapped), now_ms)
                    .await?
            }
        };
        let wrapped = row
            .wrapped
            .ok_or_else(|| KeyringError::BankDestroyed(bank.to_owned()))?;
        let key = self
            .master
            .unwrap(&b64(&wrapped, "bank key")?, &bank_context(bank))?;
        Wrapper::new(&key)
    }

    /// The blob's data key from the first holder that can open it.
    async fn data_key(&self, digest: &Digest) -> Result<Option<Zeroizing<[u8; 32]>>, KeyringError> {
        let grants = self.db.blob_key_grants(digest).await?;
        self.open_any(digest, &grants)
    }

    fn open_any(
        &self,
        digest: &Digest,
        grants: &[crate::db::keys::BlobKeyGrant],
    ) -> Result<Option<Zeroizing<[u8; 32]>>, KeyringError> {
        for grant in grants {
            let context = blob_context(grant.bank_id.as_deref(), digest);
            let wrapped = b64(&grant.wrapped, "blob key")?;
            match (&grant.bank_id, &grant.bank_wrapped) {
                (None, _) => return self.master.unwrap(&wrapped, &context).map(Some),
                (Some(bank), Some(bank_wrapped)) => {
                    let bank_key = self
                        .master
                        .unwrap(&b64(bank_wrapped, "bank key")?, &bank_context(bank))?;
                    return Wrapper::new(&bank_key)?
                        .unwrap_key(&wrapped, &context, "bank-wrapped blob key")
                        .map(Some);
                }
                // That bank's key is destroyed: this copy of the key is gone for good.
                (Some(_), None) => {}
            }
        }
        Ok(None)
    }

    /// Destroys a bank's key (creating it first if the bank never had one, so that nothing
    /// can be sealed for it afterwards): every blob key it wrapped can never be opened
    /// again. Returns the key's row as it was and the blobs it held, each with whether no
    /// other holder keeps it readable; `None` when it was destroyed already.
    #[allow(clippy::type_complexity)]
    pub async fn destroy_bank(
        &self,
        bank: &str,
        now_ms: i64,
    ) -> Result<Option<(crate::db::keys::BankKeyRow, Vec<(Digest, bool)>)>, KeyringError> {
        match self.bank_wrapper(bank, now_ms).await {
            Ok(_) => {}
            Err(KeyringError::BankDestroyed(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let row = self
            .db
            .bank_key(bank)
            .await?
            .ok_or(KeyringError::Unwrap("bank key"))?;
        let held = self.db.bank_blob_keys(bank).await?;
        if !self.db.destroy_bank_key(bank, now_ms).await? {
            return Ok(None);
        }
        Ok(Some((row, held)))
    }

    /// Waits for `fut` (a database query) from blocking code: a blocking thread of the
    /// server's runtime, a worker of a multi-threaded one (never a current-thread
    /// runtime's own thread, which would have to drive the query it waits for), or a
    /// thread outside any runtime while the one the keyring was made on runs.
    pub(crate) fn block_on<F: std::future::Future>(
        &self,
        fut: F,
    ) -> Result<F::Output, KeyringError> {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            return Ok(tokio::task::block_in_place(|| handle.block_on(fut)));
        }
        let handle = self.handle.as_ref().ok_or(KeyringError::NoRuntime)?;
        Ok(handle.block_on(fut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_under_its_key_and_context() {
        // Threat: an operator moving a wrapped key to another row, or a wrong master key.
        let (master, text) = LocalMasterKey::generate().unwrap();
        let key = [9u8; 32];
        let wrapped = master.wrap(&key, b"ctx a").unwrap();
        assert_eq!(*master.unwrap(&wrapped, b"ctx a").unwrap(), key);
        assert!(master.unwrap(&wrapped, b"ctx b").is_err());
        let (other, _) = LocalMasterKey::generate().unwrap();
        assert!(other.unwrap(&wrapped, b"ctx a").is_err());
        let again = LocalMasterKey::from_base64(&text, "test").unwrap();
        assert_eq!(*again.unwrap(&wrapped, b"ctx a").unwrap(), key);
        assert!(matches!(
            LocalMasterKey::from_base64("c2hvcnQ=", "env"),
            Err(KeyringError::Malformed(s)) if s == "env"
        ));
        assert!(!format!("{master:?}").contains(text.as_str()));
    }
}
