//! Evidence bundles, format v1: the sealed, co-signed record of one visit (DESIGN.md §7).
//!
//! A bundle is `manifest.json` (canonical JSON, stored as the exact bytes signed),
//! `signatures.json` (the two agents' signatures over it) and `blobs/<sha256>.<ext>` (the
//! original bytes of every photo, audio segment and document). One routine,
//! [`verify_bundle`], checks a bundle from a folder or a ZIP for the phone, for the server at
//! ingest and for `tandem verify`; [`write_export`] writes the folder or ZIP legal staff
//! receive, with `VERIFY.txt` showing how to check it with `sha256sum` and `openssl` alone.
//! The byte-level format is in `docs/bundle-format.md`.

mod certificates;
mod error;
mod export;
mod export_note;
mod manifest;
mod openssl;
mod report;
mod signatures;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod trust;
mod verify;

pub use certificates::{CERTIFICATES_DIR, certificate_file, parse_fingerprint};
pub use error::BundleError;
pub use export::{
    BlobSupply, ExportTarget, FINGERPRINT_PLACEHOLDER, SealedBundle, VERIFY_COMMAND_PREFIX,
    derived_files, media_extension, write_export, write_export_stream,
};
pub use export_note::{
    EXPORT_NOTE_FILE, EXPORT_REPORT_FILE, ExportAttachment, ExportNote, MAX_REPORT_BYTES,
};
pub use manifest::{
    BlobEntry, BlobRole, DeviceHeader, FORMAT_V1, MANIFEST_PURPOSE, Manifest, VisitHeader,
};
pub use openssl::public_key_pem;
pub use report::{Check, CheckName, CheckResult, VerificationReport};
pub use signatures::{BundleSignature, SignerRole, parse_signatures, signatures_to_bytes};
pub use source::{BundleSource, FolderSource, ZipSource, open_source, pump};
pub use trust::{DeviceEnrolment, Trust};
pub use verify::{
    CHECKPOINT_FILE, INCLUSION_PROOF_FILE, RECEIPT_FILE, ServerReceipt, verify_bundle,
};
