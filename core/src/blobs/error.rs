//! What can go wrong in the blob store.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::Digest;

/// Where in a blob file a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePart {
    /// The file header (format, sizes, digest).
    Header,
    /// The record at this position in the file (0-based).
    Record(u64),
}

impl fmt::Display for FilePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header => f.write_str("header"),
            Self::Record(index) => write!(f, "record {index}"),
        }
    }
}

/// Errors of the encrypted blob store; verification failures name the blob and the place.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A file-system operation failed on a named path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The caller's reader failed while a blob was being stored; nothing was stored.
    #[error("reading the bytes to store failed: {0}")]
    Input(#[source] io::Error),
    /// The store's folder was written under a different key.
    #[error("blob store {dir} was written under a different key")]
    WrongKey {
        /// The store's folder.
        dir: PathBuf,
    },
    /// Another `BlobStore` already has this folder open.
    #[error("blob store {dir} is already open elsewhere")]
    StoreInUse {
        /// The store's folder.
        dir: PathBuf,
    },
    /// No blob with this digest is stored.
    #[error("blob {digest} is not in the store")]
    NotFound {
        /// The address asked for.
        digest: Digest,
    },
    /// Authentication failed: the bytes were altered or corrupted (or written under another key).
    #[error("blob {digest}: {part} failed authentication (tampered or corrupted)")]
    Tampered {
        /// The blob.
        digest: Digest,
        /// Where the check failed.
        part: FilePart,
    },
    /// The file ends before the length its authenticated header declares.
    #[error("blob {digest} is truncated: {actual} of {expected} bytes present")]
    Truncated {
        /// The blob.
        digest: Digest,
        /// Bytes the file should hold (at least).
        expected: u64,
        /// Bytes it holds.
        actual: u64,
    },
    /// Bytes follow the final record.
    #[error("blob {digest} has {extra} unexpected bytes after its final record")]
    TrailingData {
        /// The blob.
        digest: Digest,
        /// How many extra bytes (at least).
        extra: u64,
    },
    /// An authentic record of this blob sits at the wrong position.
    #[error(
        "blob {digest}: record {found} found where record {expected} belongs (records reordered)"
    )]
    RecordsReordered {
        /// The blob.
        digest: Digest,
        /// The position read.
        expected: u64,
        /// The index the record carries.
        found: u64,
    },
    /// An authentic record that belongs to another blob file.
    #[error("blob {digest}: record {record} was taken from another blob file")]
    ForeignRecord {
        /// The blob.
        digest: Digest,
        /// The position read.
        record: u64,
    },
    /// The content does not hash to the address it is stored under.
    #[error("blob stored as {expected} holds content with digest {found}")]
    DigestMismatch {
        /// The address (file name).
        expected: Digest,
        /// The digest of what the file holds.
        found: Digest,
    },
    /// A blob file in a format version this build does not read.
    #[error("blob {digest} uses format version {version}, which this build cannot read")]
    UnsupportedVersion {
        /// The blob.
        digest: Digest,
        /// The version in its header.
        version: u16,
    },
    /// A read on a blob reader that already reported an error.
    #[error("blob {digest}: read after an earlier verification error")]
    ReadAfterError {
        /// The blob.
        digest: Digest,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// AES-GCM refused to seal (input beyond its limits).
    #[error("encryption failed")]
    Seal,
}

impl BlobError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BlobError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
