//! The tail of an upload in progress (`blobs/tmp/upload-<id>.tail`): the bytes after its
//! last whole 64 KiB record, sealed too, so not one plaintext byte of evidence lies in
//! `blobs/tmp/` even while a blob is still arriving (its whole records are in the sealed
//! blob in the making, `upload-<id>`).
//!
//! ```text
//! spool   = header record*
//! header  = magic "TNDMSPL1" | wrapped_len u16 | wrapped key [wrapped_len]
//! record  = nonce [12] | len u32 | ciphertext [len] | tag [16]
//! ```
//! Integers are big-endian. The file's key is random, drawn for this file alone, and kept
//! in its header wrapped by the master key with the upload's id as associated data
//! ([`Keyring::new_spool_key`]), so any server of the deployment can resume the upload and
//! a header moved onto another upload's file does not open. Each record is AES-256-GCM
//! with `upload id | plaintext offset u64 | len u32` as associated data: it opens only in
//! its own upload, for its own place in the blob, so a tail left from an earlier offset
//! (a crash between its write and the offset's commit) is told apart. Each file is
//! written whole and renamed into place; its nonces are random.

use std::fs::File;
use std::io::{self, Read, Seek as _, SeekFrom, Write};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use uuid::Uuid;

use crate::blobstore::Keyring;

const MAGIC: [u8; 8] = *b"TNDMSPL1";
/// Plaintext bytes per record at most (a chunk's buffers are cut at this size).
const RECORD_MAX: usize = 1 << 20;
const TAG_LEN: usize = 16;
const RECORD_HEAD_LEN: usize = NONCE_LEN + 4;
/// A wrapped key longer than this is no header of ours.
const WRAPPED_MAX: usize = 1024;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// An upload's data key, for sealing and opening the records of its partial file.
pub struct Spool {
    id: Uuid,
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Spool {
    fn with_key(id: Uuid, key: &[u8; 32]) -> io::Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| io::Error::other("upload spool key rejected"))?;
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Starts the partial file of upload `id` afresh: cuts `file` to nothing and writes a
    /// header holding a new data key; the file is left positioned after it.
    pub fn create(file: &mut File, id: Uuid, keys: &Keyring) -> io::Result<Self> {
        let (key, wrapped) = keys.new_spool_key(id).map_err(io::Error::other)?;
        let wrapped_len = u16::try_from(wrapped.len())
            .ok()
            .filter(|n| usize::from(*n) <= WRAPPED_MAX)
            .ok_or_else(|| io::Error::other("wrapped upload key too long"))?;
        let mut header = Vec::with_capacity(MAGIC.len() + 2 + wrapped.len());
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&wrapped_len.to_be_bytes());
        header.extend_from_slice(&wrapped);
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        Self::with_key(id, &key)
    }

    /// Opens the data key in the header `input` starts with (leaving `input` after it).
    pub fn open(input: &mut impl Read, id: Uuid, keys: &Keyring) -> io::Result<Self> {
        let wrapped = read_header(input)?;
        let key = keys
            .open_spool_key(id, &wrapped)
            .map_err(|e| invalid(format!("upload spool header: {e}")))?;
        Self::with_key(id, &key)
    }

    fn aad(&self, at: u64, len: u32) -> [u8; 28] {
        let mut aad = [0u8; 28];
        aad[..16].copy_from_slice(self.id.as_bytes());
        aad[16..24].copy_from_slice(&at.to_be_bytes());
        aad[24..].copy_from_slice(&len.to_be_bytes());
        aad
    }

    /// Seals `plain` (the bytes from plaintext offset `at`) as records of at most
    /// [`RECORD_MAX`] bytes and writes them to `out`; returns the bytes written. `scratch`
    /// is reused between calls.
    pub fn append(
        &self,
        out: &mut impl Write,
        at: u64,
        plain: &[u8],
        scratch: &mut Vec<u8>,
    ) -> io::Result<u64> {
        let mut written = 0u64;
        let mut at = at;
        for piece in plain.chunks(RECORD_MAX) {
            let len = u32::try_from(piece.len()).map_err(|_| invalid("record too long"))?;
            let mut nonce = [0u8; NONCE_LEN];
            self.rng
                .fill(&mut nonce)
                .map_err(|_| io::Error::other("no random nonce"))?;
            scratch.clear();
            scratch.extend_from_slice(&nonce);
            scratch.extend_from_slice(&len.to_be_bytes());
            scratch.extend_from_slice(piece);
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(self.aad(at, len)),
                    &mut scratch[RECORD_HEAD_LEN..],
                )
                .map_err(|_| io::Error::other("sealing an upload record failed"))?;
            scratch.extend_from_slice(tag.as_ref());
            out.write_all(scratch)?;
            written += scratch.len() as u64;
            at += u64::from(len);
        }
        Ok(written)
    }

    /// Opens a record read by [`next_record`] in place; its plaintext.
    fn open_record<'a>(
        &self,
        at: u64,
        head: RecordHead,
        body: &'a mut [u8],
    ) -> io::Result<&'a [u8]> {
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(head.nonce),
                Aad::from(self.aad(at, head.len)),
                body,
            )
            .map(|plain| &*plain)
            .map_err(|_| {
                invalid(format!(
                    "upload spool record at offset {at} does not authenticate"
                ))
            })
    }
}

/// The wrapped key of a spool header.
fn read_header(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut fixed = [0u8; MAGIC.len() + 2];
    input.read_exact(&mut fixed)?;
    if fixed[..MAGIC.len()] != MAGIC {
        return Err(invalid("not an upload spool file"));
    }
    let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    if len > WRAPPED_MAX {
        return Err(invalid("upload spool header too long"));
    }
    let mut wrapped = vec![0u8; len];
    input.read_exact(&mut wrapped)?;
    Ok(wrapped)
}

#[derive(Clone, Copy)]
struct RecordHead {
    nonce: [u8; NONCE_LEN],
    len: u32,
}

impl RecordHead {
    /// The record's bytes after its head: ciphertext and tag.
    fn body_len(self) -> usize {
        self.len as usize + TAG_LEN
    }
}

/// The next record's head, `None` at the end of the file or before a record cut short
/// by a crash (its head incomplete).
fn next_head(input: &mut impl Read) -> io::Result<Option<RecordHead>> {
    let mut raw = [0u8; RECORD_HEAD_LEN];
    let mut filled = 0;
    while filled < raw.len() {
        match input.read(&mut raw[filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&raw[..NONCE_LEN]);
    let len = u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]);
    if len as usize > RECORD_MAX {
        return Err(invalid("upload spool record longer than any written"));
    }
    Ok(Some(RecordHead { nonce, len }))
}

/// Where a spool's records stand: the file position after the header, and, walking the
/// record heads only (no key needed), each record's plaintext offset and file position.
struct Walk {
    file_len: u64,
    pos: u64,
    plain: u64,
}

impl Walk {
    fn start(file: &mut File) -> io::Result<Self> {
        let file_len = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        let wrapped = read_header(file)?;
        Ok(Self {
            file_len,
            pos: (MAGIC.len() + 2 + wrapped.len()) as u64,
            plain: 0,
        })
    }

    /// Steps over the next whole record; `false` at the end (or before a partial record).
    fn step(&mut self, file: &mut File) -> io::Result<bool> {
        file.seek(SeekFrom::Start(self.pos))?;
        let Some(head) = next_head(file)? else {
            return Ok(false);
        };
        let end = self.pos + (RECORD_HEAD_LEN + head.body_len()) as u64;
        if end > self.file_len {
            return Ok(false);
        }
        self.pos = end;
        self.plain += u64::from(head.len);
        Ok(true)
    }
}

/// The plaintext bytes held by the whole records of the spool at `path` (0 when there is
/// none or it has no valid header).
pub fn plaintext_len(path: &Path) -> io::Result<u64> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let Ok(mut walk) = Walk::start(&mut file) else {
        return Ok(0);
    };
    while walk.step(&mut file)? {}
    Ok(walk.plain)
}

/// Reads a spool's plaintext: every record opened and checked to stand at its own place.
/// Ends after the last whole record; the caller checks the length it expected.
pub struct SpoolReader<R> {
    input: R,
    spool: Spool,
    at: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> SpoolReader<R> {
    /// A reader of the records `input` holds after the header `spool` was opened from,
    /// the first of which holds the plaintext from offset `at`.
    pub fn new(input: R, spool: Spool, at: u64) -> Self {
        Self {
            input,
            spool,
            at,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Reads and opens the next record; `false` at the end.
    fn fill(&mut self) -> io::Result<bool> {
        let Some(head) = next_head(&mut self.input)? else {
            return Ok(false);
        };
        self.buf.resize(head.body_len(), 0);
        self.input.read_exact(&mut self.buf)?;
        let plain_len = self.spool.open_record(self.at, head, &mut self.buf)?.len();
        self.start = 0;
        self.end = plain_len;
        Ok(true)
    }
}

impl SpoolReader<io::BufReader<File>> {
    /// Opens the spool file of upload `id`, whose records hold the plaintext from `at`.
    pub fn open(path: &Path, id: Uuid, keys: &Keyring, at: u64) -> io::Result<Self> {
        let mut input = io::BufReader::new(File::open(path)?);
        let spool = Spool::open(&mut input, id, keys)?;
        Ok(Self::new(input, spool, at))
    }
}

impl<R: Read> Read for SpoolReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.start == self.end {
            if out.is_empty() || !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        self.at += n as u64;
        Ok(n)
    }
}
