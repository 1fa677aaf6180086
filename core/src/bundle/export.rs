//! Writing a sealed bundle out: the folder or ZIP legal staff receive, checkable with
//! `sha256sum` and `openssl` alone (`VERIFY.txt`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::export_note::{EXPORT_DIR, ExportAttachment};
use super::openssl::{ecdsa_fixed_to_der, public_key_pem};
use super::verify::blob_file_name;
use super::{
    BlobEntry, BundleError, BundleSignature, Manifest, ServerReceipt, signatures_to_bytes,
};
use crate::blobs::BlobStore;
use crate::canonical;
use crate::crypto::{Digest, PublicKey, Sha256Stream, SignatureAlgorithm, signing_input};
use crate::model::{Approval, DeviceCertificate, Signed};

mod verify_txt;

pub use verify_txt::{COMMAND_PREFIX as VERIFY_COMMAND_PREFIX, FINGERPRINT_PLACEHOLDER};

/// A manifest with its exact bytes and the agents' signatures over them.
#[derive(Debug, Clone)]
pub struct SealedBundle {
    /// The manifest.
    pub manifest: Manifest,
    /// Its canonical bytes: `manifest.json`.
    pub manifest_bytes: Vec<u8>,
    /// `signatures.json`'s entries.
    pub signatures: Vec<BundleSignature>,
    /// The server's receipt, inclusion proof and checkpoint, once the server took it in
    /// (exported as `receipt/`).
    pub receipt: Option<ServerReceipt>,
    /// The server's certificates of the signing keys (exported as `certificates/`).
    pub certificates: Vec<Signed<DeviceCertificate>>,
    /// The report and the server's signed export note (exported as `export/`).
    pub export: Option<ExportAttachment>,
}

impl SealedBundle {
    /// Keeps the manifest's bytes as read (they are what was signed).
    pub fn from_bytes(
        manifest_bytes: Vec<u8>,
        signatures: Vec<BundleSignature>,
    ) -> Result<Self, BundleError> {
        Ok(Self {
            manifest: Manifest::parse(&manifest_bytes)?,
            manifest_bytes,
            signatures,
            receipt: None,
            certificates: Vec::new(),
            export: None,
        })
    }

    /// The same bundle with the server's receipt.
    #[must_use]
    pub fn with_receipt(mut self, receipt: ServerReceipt) -> Self {
        self.receipt = Some(receipt);
        self
    }

    /// The same bundle with the server's certificates of its signing keys.
    #[must_use]
    pub fn with_certificates(mut self, certificates: Vec<Signed<DeviceCertificate>>) -> Self {
        self.certificates = certificates;
        self
    }

    /// The same bundle with the report and the note that binds it.
    #[must_use]
    pub fn with_export(mut self, export: ExportAttachment) -> Self {
        self.export = Some(export);
        self
    }
}

/// Where the bytes of each blob come from when exporting.
pub trait BlobSupply {
    /// The original bytes of a blob.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, BundleError>;

    /// Whether [`BlobSupply::open_blob`]'s readers return only bytes proven to be the
    /// blob of that digest (a sealed store: every record authenticated under its key, in
    /// its place, behind a header that names the digest), failing rather than returning
    /// anything else. The exporter then checks each blob's size but does not hash it
    /// again: one pass of SHA-256 over every exported byte saved. By default `false`: the
    /// exporter hashes every blob against the signed manifest.
    fn authenticates(&self) -> bool {
        false
    }
}

impl BlobSupply for BlobStore {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, BundleError> {
        let reader = BlobStore::open_blob(self, digest).map_err(|e| BundleError::Blob {
            digest: digest.to_hex(),
            reason: e.to_string(),
        })?;
        Ok(Box::new(reader))
    }

    /// The store's reader authenticates every record and checks the digest itself.
    fn authenticates(&self) -> bool {
        true
    }
}

impl BlobSupply for BTreeMap<Digest, Vec<u8>> {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, BundleError> {
        match self.get(digest) {
            Some(bytes) => Ok(Box::new(bytes.as_slice())),
            None => Err(BundleError::Blob {
                digest: digest.to_hex(),
                reason: "not available".into(),
            }),
        }
    }
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub enum ExportTarget<'a> {
    /// A new folder (must not exist yet).
    Folder(&'a Path),
    /// A new ZIP file (must not exist yet).
    Zip(&'a Path),
}

/// The file extension of a media type, as used in `blobs/<sha256>.<ext>`; `bin` for any
/// type not in the table.
pub fn media_extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "application/pdf" => "pdf",
        "application/json" => "json",
        "text/plain" => "txt",
        _ => "bin",
    }
}

/// Writes the export of `bundle`: `manifest.json`, `signatures.json`,
/// `blobs/<sha256>.<ext>`, `keys/<kid>.pem` (each signer and the server key when given),
/// `documents/` (the server-signed bodies), `signatures/` (each signing input and raw
/// signature, DER too for P-256), `receipt/`, `certificates/` and `export/` when the bundle
/// has them, `SHA256SUMS` and `VERIFY.txt`. Every blob is checked
/// against its digest and size while it is copied; the export appears only when complete.
pub fn write_export(
    bundle: &SealedBundle,
    blobs: &dyn BlobSupply,
    server_key: Option<&PublicKey>,
    target: ExportTarget<'_>,
) -> Result<(), BundleError> {
    let final_path = match target {
        ExportTarget::Folder(p) | ExportTarget::Zip(p) => p,
    };
    if final_path.exists() {
        return Err(BundleError::io(
            final_path,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "export target exists"),
        ));
    }
    let mut partial = final_path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    remove_leftover(&partial)?;
    let mut out = match target {
        ExportTarget::Folder(_) => Writer::folder(&partial)?,
        ExportTarget::Zip(_) => Writer::zip(&partial)?,
    };
    write_contents(bundle, blobs, server_key, &mut out)?;
    out.finish()?;
    std::fs::rename(&partial, final_path).map_err(|e| BundleError::io(final_path, e))
}

/// Writes the export of `bundle` as a ZIP into `out` as it goes (a download, a pipe),
/// nothing kept but the entry being written: the same entries as [`write_export`], each
/// blob checked against its digest and size while it is copied. On an error the stream
/// stops short and is no valid ZIP (it has no central directory).
pub fn write_export_stream<W: Write>(
    bundle: &SealedBundle,
    blobs: &dyn BlobSupply,
    server_key: Option<&PublicKey>,
    out: W,
) -> Result<(), BundleError> {
    let mut out = Writer::Stream(Box::new(zip::ZipWriter::new_stream(Box::new(out))));
    write_contents(bundle, blobs, server_key, &mut out)?;
    out.finish()
}

fn remove_leftover(partial: &Path) -> Result<(), BundleError> {
    let result = match std::fs::symlink_metadata(partial) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(partial),
        Ok(_) => std::fs::remove_file(partial),
        Err(_) => Ok(()),
    };
    result.map_err(|e| BundleError::io(partial, e))
}

/// One signature to be checkable with openssl: what was signed and by which key.
pub(super) struct OpensslCheck {
    /// File stem in `signatures/`: `lead`, `partner`, `approval`, `ticket`, `policy`.
    pub name: String,
    /// Signature purpose.
    pub purpose: &'static str,
    /// The signed document's file in the export.
    pub document: String,
    /// Who signed, for the reader.
    pub signer: String,
    /// The key, when the export carries it.
    pub key: Option<PublicKey>,
    /// The kid the signature names.
    pub kid: String,
    /// The file whose signature record holds the `sig` (its base64 is checked there).
    pub listed_in: &'static str,
    /// The algorithm.
    pub alg: SignatureAlgorithm,
}

/// Where the export's entries go: the folder or ZIP being written, or (for the verifier)
/// a collection of the derived files.
trait ExportSink {
    /// A whole file.
    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError>;
    /// A blob, checked against its entry while it is copied (its size always, its digest
    /// unless `authenticated`: the reader proves its bytes itself).
    fn blob(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        entry: &BlobEntry,
        authenticated: bool,
    ) -> Result<(), BundleError>;
}

/// The files an export derives from its bundle, by name: `documents/`, `keys/`,
/// `signatures/`, `SHA256SUMS` and `VERIFY.txt`, exactly as [`write_export`] writes them
/// with `server_key`. The verifier compares an export's entries with these, so a changed
/// convenience copy, a swapped `VERIFY.txt` or an added key is caught.
pub fn derived_files(
    bundle: &SealedBundle,
    server_key: Option<&PublicKey>,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    /// Records files; blobs are the bundle's own, checked by digest elsewhere.
    struct Derived(BTreeMap<String, Vec<u8>>);
    impl ExportSink for Derived {
        fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
            self.0.insert(name.to_owned(), bytes.to_vec());
            Ok(())
        }
        fn blob(
            &mut self,
            _: &str,
            _: &mut dyn Read,
            _: &BlobEntry,
            _: bool,
        ) -> Result<(), BundleError> {
            Ok(())
        }
    }
    /// Supplies no bytes: the collector never reads a blob.
    struct NoBlobs;
    impl BlobSupply for NoBlobs {
        fn open_blob(&self, _: &Digest) -> Result<Box<dyn Read + '_>, BundleError> {
            Ok(Box::new(std::io::empty()))
        }
    }
    let mut derived = Derived(BTreeMap::new());
    write_contents(bundle, &NoBlobs, server_key, &mut derived)?;
    let mut files = derived.0;
    // The bundle's own documents are checked by the verifier itself, not re-derived.
    files.remove("manifest.json");
    files.remove("signatures.json");
    for name in [
        super::RECEIPT_FILE,
        super::INCLUSION_PROOF_FILE,
        super::CHECKPOINT_FILE,
    ] {
        files.remove(name);
    }
    // So are the server's certificates (checked by signature with the trusted key), and the
    // export's report and note (the `export_note` check).
    files.retain(|name, _| {
        !name.starts_with(super::CERTIFICATES_DIR) && !name.starts_with(EXPORT_DIR)
    });
    Ok(files)
}

fn write_contents(
    bundle: &SealedBundle,
    blobs: &dyn BlobSupply,
    server_key: Option<&PublicKey>,
    out: &mut dyn ExportSink,
) -> Result<(), BundleError> {
    let manifest = &bundle.manifest;
    out.file("manifest.json", &bundle.manifest_bytes)?;
    out.file("signatures.json", &signatures_to_bytes(&bundle.signatures)?)?;

    let mut sums = String::new();
    for entry in &manifest.blobs {
        let name = format!("blobs/{}", blob_file_name(entry));
        let mut reader = blobs.open_blob(&entry.sha256)?;
        out.blob(&name, &mut reader, entry, blobs.authenticates())?;
        sums.push_str(&format!("{}  {name}\n", entry.sha256));
    }
    out.file("SHA256SUMS", sums.as_bytes())?;

    let approval: Option<Approval> =
        canonical::from_canonical_slice(manifest.visit.approval.body.as_bytes()).ok();
    let mut keys: BTreeMap<String, PublicKey> = BTreeMap::new();
    let mut checks = Vec::new();
    for s in &bundle.signatures {
        let key = approval
            .as_ref()
            .and_then(|a| a.member(s.agent_id))
            .map(|m| m.public_key.clone())
            .filter(|k| k.kid() == s.kid);
        let name = s.role.as_str().to_owned();
        write_signature_files(
            out,
            &name,
            "manifest",
            &bundle.manifest_bytes,
            s.alg,
            &s.sig,
        )?;
        checks.push(OpensslCheck {
            name,
            purpose: "manifest",
            document: "manifest.json".into(),
            signer: format!("{} agent {}", s.role.as_str(), s.agent_id),
            key,
            kid: s.kid.to_string(),
            alg: s.alg,
            listed_in: "signatures.json",
        });
    }
    let visit = &manifest.visit;
    let server_docs = [
        ("approval", &visit.approval.body, &visit.approval.signature),
        ("ticket", &visit.ticket.body, &visit.ticket.signature),
        ("policy", &visit.policy.body, &visit.policy.signature),
    ];
    for (name, body, record) in server_docs {
        let document = format!("documents/{name}.json");
        out.file(&document, body.as_bytes())?;
        write_signature_files(out, name, name, body.as_bytes(), record.alg, &record.sig)?;
        checks.push(OpensslCheck {
            name: name.to_owned(),
            purpose: match name {
                "approval" => "approval",
                "ticket" => "ticket",
                _ => "policy",
            },
            document,
            signer: "the server".into(),
            key: server_key.filter(|k| k.kid() == record.kid).cloned(),
            kid: record.kid.to_string(),
            alg: record.alg,
            listed_in: "manifest.json",
        });
    }
    if let Some(receipt) = &bundle.receipt {
        for (name, bytes) in receipt.entries()? {
            out.file(name, &bytes)?;
        }
        let server_docs = [
            (
                "receipt",
                "ingest-receipt",
                &receipt.receipt.body,
                &receipt.receipt.signature,
                super::RECEIPT_FILE,
            ),
            (
                "checkpoint",
                "checkpoint",
                &receipt.checkpoint.body,
                &receipt.checkpoint.signature,
                super::CHECKPOINT_FILE,
            ),
        ];
        for (name, purpose, body, record, listed_in) in server_docs {
            let document = format!("documents/{name}.json");
            out.file(&document, body.as_bytes())?;
            write_signature_files(out, name, purpose, body.as_bytes(), record.alg, &record.sig)?;
            checks.push(OpensslCheck {
                name: name.to_owned(),
                purpose,
                document,
                signer: "the server".into(),
                key: server_key.filter(|k| k.kid() == record.kid).cloned(),
                kid: record.kid.to_string(),
                alg: record.alg,
                listed_in,
            });
        }
    }
    for signed in &bundle.certificates {
        let kid = canonical::from_canonical_slice::<DeviceCertificate>(signed.body.as_bytes())
            .map_err(|source| BundleError::Canonical {
                name: "certificate",
                source,
            })?
            .public_key
            .kid();
        let bytes =
            canonical::to_canonical_vec(signed).map_err(|source| BundleError::Canonical {
                name: "certificate",
                source,
            })?;
        out.file(&super::certificate_file(&kid), &bytes)?;
    }
    for key in checks.iter().filter_map(|c| c.key.as_ref()) {
        keys.insert(key.kid().to_string(), key.clone());
    }
    for (kid, key) in &keys {
        out.file(&format!("keys/{kid}.pem"), public_key_pem(key).as_bytes())?;
    }
    let text = verify_txt::render(bundle, &checks);
    out.file("VERIFY.txt", text.as_bytes())?;
    if let Some(export) = &bundle.export {
        for (name, bytes) in export.entries()? {
            out.file(name, &bytes)?;
        }
    }
    Ok(())
}

fn write_signature_files(
    out: &mut dyn ExportSink,
    name: &str,
    purpose: &str,
    document: &[u8],
    alg: SignatureAlgorithm,
    sig: &[u8],
) -> Result<(), BundleError> {
    out.file(
        &format!("signatures/{name}.input"),
        &signing_input(purpose, document),
    )?;
    out.file(&format!("signatures/{name}.sig"), sig)?;
    if alg == SignatureAlgorithm::EcdsaP256Sha256
        && let Some(der) = ecdsa_fixed_to_der(sig)
    {
        out.file(&format!("signatures/{name}.der"), &der)?;
    }
    Ok(())
}

/// A ZIP written into a stream: nothing is sought back, each entry's sizes follow its data.
type StreamZip<'a> = zip::ZipWriter<zip::write::StreamWriter<Box<dyn Write + 'a>>>;

/// Where a streamed export's errors are said to be.
const STREAM_NAME: &str = "export stream";

/// The export being written: a folder, a ZIP file, or a ZIP streamed out.
enum Writer<'a> {
    Folder(PathBuf),
    Zip {
        path: PathBuf,
        // Boxed: the writer is large and the folder variant tiny.
        zip: Box<zip::ZipWriter<BufWriter<File>>>,
    },
    Stream(Box<StreamZip<'a>>),
}

/// Starts an entry of a ZIP: blobs stored as they are (photos and audio do not compress),
/// documents deflated.
fn start_entry<W: Write + std::io::Seek>(
    zip: &mut zip::ZipWriter<W>,
    name: &str,
    stored: bool,
    large: bool,
) -> zip::result::ZipResult<()> {
    let method = if stored {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(large)
        .unix_permissions(0o644);
    zip.start_file(name, options)
}

impl Writer<'_> {
    fn folder(path: &Path) -> Result<Self, BundleError> {
        std::fs::create_dir_all(path).map_err(|e| BundleError::io(path, e))?;
        Ok(Self::Folder(path.to_owned()))
    }

    fn zip(path: &Path) -> Result<Self, BundleError> {
        let file = File::create(path).map_err(|e| BundleError::io(path, e))?;
        Ok(Self::Zip {
            path: path.to_owned(),
            zip: Box::new(zip::ZipWriter::new(BufWriter::new(file))),
        })
    }

    fn zip_error(path: &Path, e: zip::result::ZipError) -> BundleError {
        BundleError::Zip {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }

    /// Opens `name` for writing and passes the writer to `fill`.
    fn write_with(
        &mut self,
        name: &str,
        stored: bool,
        large: bool,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<(), BundleError>,
    ) -> Result<(), BundleError> {
        match self {
            Self::Folder(root) => {
                let path = root.join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
                }
                let file = File::create(&path).map_err(|e| BundleError::io(&path, e))?;
                let mut w = BufWriter::new(file);
                fill(&mut w)?;
                let file = w
                    .into_inner()
                    .map_err(|e| BundleError::io(&path, e.into_error()))?;
                file.sync_all().map_err(|e| BundleError::io(&path, e))
            }
            Self::Zip { path, zip } => {
                start_entry(zip, name, stored, large).map_err(|e| Self::zip_error(path, e))?;
                fill(zip.as_mut())
            }
            Self::Stream(zip) => {
                start_entry(zip, name, stored, large)
                    .map_err(|e| Self::zip_error(Path::new(STREAM_NAME), e))?;
                fill(zip.as_mut())
            }
        }
    }

    fn finish(self) -> Result<(), BundleError> {
        match self {
            Self::Folder(_) => Ok(()),
            Self::Zip { path, zip } => {
                let w = zip.finish().map_err(|e| Self::zip_error(&path, e))?;
                let file = w
                    .into_inner()
                    .map_err(|e| BundleError::io(&path, e.into_error()))?;
                file.sync_all().map_err(|e| BundleError::io(&path, e))
            }
            Self::Stream(zip) => {
                let mut w = zip
                    .finish()
                    .map_err(|e| Self::zip_error(Path::new(STREAM_NAME), e))?;
                w.flush().map_err(|e| BundleError::io(STREAM_NAME, e))
            }
        }
    }
}

impl ExportSink for Writer<'_> {
    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let at = name.to_owned();
        self.write_with(name, false, false, &mut |w| {
            w.write_all(bytes).map_err(|e| BundleError::io(&at, e))
        })
    }

    /// Copies a blob, checking its size and (unless the reader proves it) its digest
    /// against the manifest on the way.
    fn blob(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        entry: &BlobEntry,
        authenticated: bool,
    ) -> Result<(), BundleError> {
        let blob_error = |reason: String| BundleError::Blob {
            digest: entry.sha256.to_hex(),
            reason,
        };
        let large = entry.size >= u64::from(u32::MAX);
        self.write_with(name, true, large, &mut |w| {
            if authenticated {
                copy_authenticated(&mut *reader, w, entry).map_err(blob_error)
            } else {
                copy_blob(&mut *reader, w, entry).map_err(blob_error)
            }
        })
    }
}

/// Blobs at least this large are hashed on a thread of their own while they are copied:
/// the hash is the export's slowest step, and the copy (and its sending) need not wait.
const PARALLEL_HASH_FROM: u64 = 8 * 1024 * 1024;
/// Chunks queued for the hashing thread.
const HASH_QUEUE: usize = 4;

/// Copies a blob from `reader` to `w`, and checks what was copied against its size and
/// SHA-256 in the manifest; a reader that runs past the size is cut one byte after it.
fn copy_blob(reader: &mut dyn Read, w: &mut dyn Write, entry: &BlobEntry) -> Result<(), String> {
    let mut limited = reader.take(entry.size.saturating_add(1));
    let mut total = 0u64;
    let digest = if entry.size >= PARALLEL_HASH_FROM {
        std::thread::scope(|scope| {
            // Chunks go to the hasher once written, and come back to be filled again: a
            // few buffers serve the whole blob (no allocation, zeroing or page faults per
            // chunk).
            let (to_hash, hash_queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
            let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
            let hasher = scope.spawn(move || {
                let mut hasher = Sha256Stream::default();
                for chunk in hash_queue {
                    hasher.update(&chunk);
                    let _ = give_back.send(chunk);
                }
                hasher.finish()
            });
            let copied: Result<(), String> = (|| loop {
                let mut buf = returned.try_recv().unwrap_or_default();
                buf.resize(super::source::CHUNK, 0);
                let n = read_some(&mut limited, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                total += n as u64;
                w.write_all(&buf).map_err(|e| e.to_string())?;
                to_hash
                    .send(buf)
                    .map_err(|_| "the hashing thread stopped".to_owned())?;
            })();
            drop(to_hash);
            let digest = hasher
                .join()
                .map_err(|_| "the hashing thread panicked".to_owned())?;
            copied.map(|()| digest)
        })?
    } else {
        let mut hasher = Sha256Stream::default();
        let mut buf = vec![0u8; super::source::CHUNK];
        loop {
            let n = read_some(&mut limited, &mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        hasher.finish()
    };
    if total != entry.size {
        return Err(format!("{total} bytes, listed as {}", entry.size));
    }
    if digest != entry.sha256 {
        return Err(format!("bytes have digest {digest}"));
    }
    Ok(())
}

/// Copies a blob from a reader that proves its bytes itself (see
/// [`BlobSupply::authenticates`]), checking its size; a reader that runs past the size is
/// cut one byte after it.
fn copy_authenticated(
    reader: &mut dyn Read,
    w: &mut dyn Write,
    entry: &BlobEntry,
) -> Result<(), String> {
    let mut limited = reader.take(entry.size.saturating_add(1));
    let mut buf = vec![0u8; super::source::CHUNK];
    let mut total = 0u64;
    loop {
        let n = read_some(&mut limited, &mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        w.write_all(&buf[..n]).map_err(|e| e.to_string())?;
    }
    if total != entry.size {
        return Err(format!("{total} bytes, listed as {}", entry.size));
    }
    Ok(())
}

/// One read into `buf` (retried when interrupted); 0 at the end.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BlobEntry, PARALLEL_HASH_FROM, copy_authenticated, copy_blob};
    use crate::bundle::BlobRole;
    use crate::crypto::sha256;

    fn entry(bytes: &[u8]) -> BlobEntry {
        BlobEntry {
            sha256: sha256(bytes),
            size: bytes.len() as u64,
            media_type: "image/jpeg".into(),
            role: BlobRole::Original,
            derived_from: None,
            captured_at_ms: 0,
            fix: None,
        }
    }

    /// Both paths — hashed while copying, and hashed on a thread of its own — copy every
    /// byte and refuse a blob that is not the one listed.
    #[test]
    fn a_blob_is_copied_whole_and_refused_when_it_is_not_the_listed_one() {
        let sizes = [1_000, PARALLEL_HASH_FROM as usize + 3 * 1024 * 1024 + 17];
        for size in sizes {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let listed = entry(&bytes);
            let mut out = Vec::new();
            copy_blob(&mut bytes.as_slice(), &mut out, &listed).unwrap();
            assert!(out == bytes, "{size}: copied whole");

            let mut flipped = bytes.clone();
            flipped[size / 2] ^= 1;
            let err = copy_blob(&mut flipped.as_slice(), &mut Vec::new(), &listed).unwrap_err();
            assert!(err.contains("digest"), "{size}: {err}");

            let mut longer = bytes.clone();
            longer.extend_from_slice(b"tail");
            let mut out = Vec::new();
            let err = copy_blob(&mut longer.as_slice(), &mut out, &listed).unwrap_err();
            assert!(err.contains("listed as"), "{size}: {err}");
            assert_eq!(out.len(), size + 1, "{size}: cut one byte past the size");

            let err = copy_blob(&mut &bytes[..size - 1], &mut Vec::new(), &listed).unwrap_err();
            assert!(err.contains("listed as"), "{size}: {err}");
        }
    }

    /// From a reader that proves its bytes itself, the size is still checked: a reader
    /// that runs long is cut one byte past it and refused, one that ends early is refused.
    #[test]
    fn an_authenticated_blob_is_copied_whole_and_still_held_to_its_size() {
        let bytes: Vec<u8> = (0..300_000).map(|i| (i * 7 % 253) as u8).collect();
        let listed = entry(&bytes);
        let mut out = Vec::new();
        copy_authenticated(&mut bytes.as_slice(), &mut out, &listed).unwrap();
        assert!(out == bytes);
        let mut longer = bytes.clone();
        longer.push(0);
        let mut out = Vec::new();
        let err = copy_authenticated(&mut longer.as_slice(), &mut out, &listed).unwrap_err();
        assert!(err.contains("listed as"), "{err}");
        assert_eq!(out.len(), bytes.len() + 1);
        let err = copy_authenticated(&mut &bytes[..10], &mut Vec::new(), &listed).unwrap_err();
        assert!(err.contains("listed as"), "{err}");
    }
}
