//! Reading a blob back: a streaming reader that authenticates every record before use.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use ring::aead::{LessSafeKey, Nonce};
use ring::digest::{Context, SHA256};

use super::format::{
    FileHeader, HEADER_LEN, HeaderProblem, RECORD_HEADER_LEN, RecordHeader, TAG_LEN,
};
use super::{BlobError, Digest, FilePart};

/// Streams a blob's original bytes, verifying each record; errors are `io::Error`s wrapping
/// a [`BlobError`] (see [`BlobReader::recover_error`]). Nothing unverified is ever returned,
/// and the digest check runs before the last bytes are handed out. The sealed bytes come
/// from a file of this store or, for the server's store, any reader
/// ([`super::Sealer::reader`]).
pub struct BlobReader<R = File> {
    file: R,
    /// The sealed bytes' length, as their file or object reported it when opened.
    stored_len: u64,
    path: PathBuf,
    digest: Digest,
    header: FileHeader,
    key: Arc<LessSafeKey>,
    /// Hashes the plaintext for the digest check at the end (`None`: left to the caller).
    hasher: Option<Context>,
    /// The final record was read and checked.
    done: bool,
    next_record: u64,
    /// Holds one record's ciphertext and tag; the plaintext is opened in place.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    failed: bool,
}

impl BlobReader {
    /// Opens the blob file at `path`, authenticating its header and checking its length.
    pub(crate) fn open(
        path: PathBuf,
        digest: Digest,
        key: Arc<LessSafeKey>,
    ) -> Result<Self, BlobError> {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound { digest });
            }
            Err(e) => return Err(BlobError::io("opening blob", path, e)),
        };
        let actual = file
            .metadata()
            .map_err(|e| BlobError::io("reading size of blob", &path, e))?
            .len();
        Self::over(file, actual, path, digest, key)
    }
}

impl<R: Read> BlobReader<R> {
    /// Reads the sealed bytes of `digest` from `file`, which holds `actual` bytes in all;
    /// `path` names them in errors.
    pub(crate) fn over(
        mut file: R,
        actual: u64,
        path: PathBuf,
        digest: Digest,
        key: Arc<LessSafeKey>,
    ) -> Result<Self, BlobError> {
        let mut raw = [0u8; HEADER_LEN];
        let got =
            read_full(&mut file, &mut raw).map_err(|e| BlobError::io("reading blob", &path, e))?;
        if got < HEADER_LEN {
            return Err(BlobError::Truncated {
                digest,
                expected: HEADER_LEN as u64,
                actual: got as u64,
            });
        }
        let header = open_header(&raw, &key, digest)?;
        // `open` refused headers whose file length overflows.
        let expected = header.file_len().unwrap_or(u64::MAX);
        if actual < expected {
            return Err(BlobError::Truncated {
                digest,
                expected,
                actual,
            });
        }
        if actual > expected {
            return Err(BlobError::TrailingData {
                digest,
                extra: actual - expected,
            });
        }
        let buf = vec![0u8; header.record_size as usize + TAG_LEN];
        Ok(Self {
            file,
            stored_len: actual,
            path,
            digest,
            header,
            key,
            hasher: Some(Context::new(&SHA256)),
            done: false,
            next_record: 0,
            buf,
            pos: 0,
            end: 0,
            failed: false,
        })
    }

    /// Length of the original bytes, from the authenticated header.
    pub fn size(&self) -> u64 {
        self.header.plaintext_size
    }

    /// The blob's address.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Turns an error returned by `read` back into the `BlobError` it carries.
    pub fn recover_error(&self, err: io::Error) -> BlobError {
        if err.get_ref().is_some_and(|inner| inner.is::<BlobError>()) {
            if let Some(Ok(blob)) = err.into_inner().map(|inner| inner.downcast::<BlobError>()) {
                return *blob;
            }
            return BlobError::ReadAfterError {
                digest: self.digest,
            };
        }
        BlobError::io("reading blob", self.path.clone(), err)
    }

    /// Verifies the rest of the blob without copying it out.
    pub(crate) fn read_through(&mut self) -> Result<(), BlobError> {
        while !self.done {
            self.next()?;
        }
        Ok(())
    }

    /// Authenticates the next record into `buf[pos..end]`; after the last, checks the digest.
    fn next(&mut self) -> Result<(), BlobError> {
        if self.failed {
            return Err(BlobError::ReadAfterError {
                digest: self.digest,
            });
        }
        let result = self.load_record();
        self.failed = result.is_err();
        result
    }

    fn load_record(&mut self) -> Result<(), BlobError> {
        let digest = self.digest;
        let position = self.next_record;
        let count = self.header.record_count();
        let tampered = BlobError::Tampered {
            digest,
            part: FilePart::Record(position),
        };

        let mut raw = [0u8; RECORD_HEADER_LEN];
        if self.read_exact_or_eof(&mut raw)? < RECORD_HEADER_LEN {
            return Err(self.truncated());
        }
        let record = RecordHeader::decode(&raw);
        // Size the body by the index the record claims, so a moved final record still verifies
        // and is reported as moved rather than as garbage.
        let claimed = if record.index < count {
            record.index
        } else {
            position
        };
        let body_len = self.header.record_len(claimed) + TAG_LEN;
        let mut body = std::mem::take(&mut self.buf);
        let got = self.read_exact_or_eof(&mut body[..body_len]);
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                self.buf = body;
                return Err(e);
            }
        };
        if got < body_len {
            self.buf = body;
            return Err(if record.index == position {
                self.truncated()
            } else {
                tampered
            });
        }
        let opened = self.key.open_in_place(
            Nonce::assume_unique_for_key(record.nonce),
            RecordHeader::associated_data(&raw),
            &mut body[..body_len],
        );
        let plain_len = match opened {
            Ok(plain) => plain.len(),
            Err(_) => {
                self.buf = body;
                return Err(tampered);
            }
        };
        self.buf = body;

        // Authentic from here on: whatever is wrong was put there on purpose or by mistake,
        // not by corruption.
        if record.file_id != self.header.file_id {
            return Err(BlobError::ForeignRecord {
                digest,
                record: position,
            });
        }
        if record.index != position {
            return Err(BlobError::RecordsReordered {
                digest,
                expected: position,
                found: record.index,
            });
        }
        let is_last = position + 1 == count;
        if record.is_final() != is_last {
            return Err(tampered);
        }
        self.next_record += 1;
        self.pos = 0;
        self.end = plain_len;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&self.buf[..plain_len]);
        }
        if is_last {
            self.finish()?;
            self.done = true;
        }
        Ok(())
    }

    /// Leaves the check of the whole plaintext's digest to the caller, who hashes what it
    /// reads anyway (an export, a verification): every record is still authenticated under
    /// the key, in its place, with the header that names the digest, so no byte that was
    /// not sealed as this blob is returned; only the second SHA-256 pass is saved.
    #[must_use]
    pub fn digest_checked_by_caller(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// The checks after the final record: the content hashes to the address, nothing follows.
    fn finish(&mut self) -> Result<(), BlobError> {
        if let Some(hasher) = self.hasher.take() {
            let found = Digest::from_ring(hasher.finish());
            if found != self.digest {
                return Err(BlobError::DigestMismatch {
                    expected: self.digest,
                    found,
                });
            }
        }
        let mut probe = [0u8; 1];
        if self.read_exact_or_eof(&mut probe)? > 0 {
            let actual = self.file_len()?;
            let expected = self.header.file_len().unwrap_or(u64::MAX);
            return Err(BlobError::TrailingData {
                digest: self.digest,
                extra: actual.saturating_sub(expected).max(1),
            });
        }
        Ok(())
    }

    fn truncated(&self) -> BlobError {
        BlobError::Truncated {
            digest: self.digest,
            expected: self.header.file_len().unwrap_or(u64::MAX),
            actual: self.file_len().unwrap_or(0),
        }
    }

    fn file_len(&self) -> Result<u64, BlobError> {
        Ok(self.stored_len)
    }

    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> Result<usize, BlobError> {
        read_full(&mut self.file, buf)
            .map_err(|e| BlobError::io("reading blob", self.path.clone(), e))
    }
}

impl<R> std::fmt::Debug for BlobReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("size", &self.header.plaintext_size)
            .field("next_record", &self.next_record)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for BlobReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.end {
            if self.done && !self.failed {
                return Ok(0);
            }
            self.next().map_err(io::Error::other)?;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Authenticates the header of the blob `digest` and checks that it names that digest.
pub(crate) fn open_header(
    raw: &[u8; HEADER_LEN],
    key: &LessSafeKey,
    digest: Digest,
) -> Result<FileHeader, BlobError> {
    let header = match FileHeader::open(raw, key) {
        Ok(header) => header,
        Err(HeaderProblem::Tampered) => {
            return Err(BlobError::Tampered {
                digest,
                part: FilePart::Header,
            });
        }
        Err(HeaderProblem::UnsupportedVersion(version)) => {
            return Err(BlobError::UnsupportedVersion { digest, version });
        }
    };
    if header.digest != digest {
        return Err(BlobError::DigestMismatch {
            expected: digest,
            found: header.digest,
        });
    }
    Ok(header)
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
