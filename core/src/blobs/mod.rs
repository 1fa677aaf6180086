//! Encrypted, content-addressed blob store.
//!
//! Photos, audio segments and signature images are confidential debtor data: on the phone
//! they are kept encrypted (AES-256-GCM in authenticated records; the layout is in `format.rs`;
//! the server keeps its copies in the same format, [`Sealer`]) under their
//! SHA-256, written atomically (temp file, fsync, rename, fsync of the folder) so a crash
//! never leaves a half-written blob visible, and checked on every read so that truncation,
//! reordering, foreign records, bit flips and swapped files are reported, never returned
//! as data.

mod error;
mod format;
mod key;
mod reader;
mod sealed;
mod store;
mod writer;

pub use crate::crypto::Digest;
pub use error::{BlobError, FilePart};
pub use key::BlobKey;
pub use reader::BlobReader;
pub use sealed::{RecordSpan, SEALED_HEADER_LEN, SealedLayout, Sealer};
pub use store::{BlobStore, StoredBlob};
