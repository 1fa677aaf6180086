//! Storing a blob: hash, encrypt and write in fixed buffers, then publish atomically.
//!
//! SHA-256 (in ring) costs more than reading, AES-GCM and writing together, so a helper
//! thread hashes each chunk while the caller's thread, which owns the input, reads the next
//! one and seals and writes the previous one, over a few recycled chunk buffers. A second
//! helper calls `fdatasync` as the file grows, so the disk writes while we compute and the
//! final fsync only waits for the tail. Blobs that fit in one chunk skip the helpers.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use ring::aead::{LessSafeKey, Nonce};
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use super::format::{
    FileHeader, FileId, HEADER_LEN, NONCE_LEN, RECORD_HEADER_LEN, RECORD_OVERHEAD, RECORD_SIZE,
    RecordHeader, TAG_LEN,
};
use super::store::{BlobStore, StoredBlob};
use super::{BlobError, Digest};

const RECORD: usize = RECORD_SIZE as usize;
/// One record as written: header, plaintext (sealed in place), tag.
const SLOT: usize = RECORD + RECORD_OVERHEAD;
/// Records per chunk handed from the hashing stage to the writing stage.
const CHUNK_RECORDS: usize = 16;
pub(super) const CHUNK_BYTES: usize = CHUNK_RECORDS * SLOT;
/// Chunk buffers in circulation: being read, queued, hashed, sealed and written.
const BUFFERS: usize = 4;
/// Bytes written between requests to the flusher to start writing them back.
const FLUSH_EVERY: usize = 32 * 1024 * 1024;

/// A run of consecutive records laid out exactly as they go to disk.
pub(super) struct Chunk {
    pub(super) buf: Vec<u8>,
    pub(super) first_index: u64,
    pub(super) records: usize,
    last_len: usize,
    pub(super) ends_blob: bool,
}

impl Chunk {
    pub(super) fn new(buf: Vec<u8>, first_index: u64) -> Self {
        Self {
            buf,
            first_index,
            records: 0,
            last_len: 0,
            ends_blob: false,
        }
    }

    /// Bytes of `buf` to write once sealed.
    pub(super) fn encoded_len(&self) -> usize {
        (self.records - 1) * SLOT + RECORD_HEADER_LEN + self.last_len + TAG_LEN
    }
}

pub(crate) fn put(store: &BlobStore, mut input: impl Read) -> Result<StoredBlob, BlobError> {
    let tmp_dir = store.tmp_dir();
    let mut temp = tempfile::Builder::new()
        .prefix("put-")
        .suffix(".partial")
        .tempfile_in(tmp_dir)
        .map_err(|e| BlobError::io("creating temp file in", tmp_dir, e))?;
    let write_err = |e: io::Error| BlobError::io("writing temp file", tmp_dir, e);
    // The header needs the size and digest, so it is written last, over this placeholder.
    temp.write_all(&[0u8; HEADER_LEN]).map_err(write_err)?;

    let file_id: FileId = store.random()?;
    let mut hasher = Context::new(&SHA256);
    let mut size = 0u64;
    let mut first = Chunk::new(vec![0u8; CHUNK_BYTES], 0);
    fill(&mut input, &mut first, &mut size)?;
    let sealer = ChunkSealer {
        key: store.key(),
        rng: store.rng(),
        file_id,
    };
    if first.ends_blob {
        hash_chunk(&mut hasher, &first);
        sealer.seal(&mut first)?;
        temp.write_all(&first.buf[..first.encoded_len()])
            .map_err(write_err)?;
    } else {
        let path = temp.path().to_path_buf();
        pipeline(
            &sealer,
            temp.as_file(),
            &path,
            &mut input,
            first,
            &mut hasher,
            &mut size,
        )?;
    }

    let digest = Digest::from_ring(hasher.finish());
    let header = FileHeader {
        record_size: RECORD_SIZE,
        file_id,
        plaintext_size: size,
        digest,
    }
    .seal(store.key(), store.random()?)
    .ok_or(BlobError::Seal)?;
    let file = temp.as_file_mut();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header))
        .and_then(|()| file.sync_all())
        .map_err(write_err)?;
    let already_present = store.publish(temp, &digest)?;
    Ok(StoredBlob {
        digest,
        size,
        already_present,
    })
}

/// Reads, seals and writes on this thread (which owns `input`) while a helper hashes the
/// chunks in order and a second helper starts the disk writeback early.
fn pipeline(
    sealer: &ChunkSealer<'_>,
    file: &File,
    path: &Path,
    input: &mut impl Read,
    first: Chunk,
    hasher: &mut Context,
    size: &mut u64,
) -> Result<(), BlobError> {
    let write_err = |e: io::Error| BlobError::io("writing temp file", path, e);
    let flush_error: Mutex<Option<io::Error>> = Mutex::new(None);
    let result = std::thread::scope(|scope| {
        let (to_hasher, unhashed) = sync_channel::<Chunk>(BUFFERS);
        let (to_sealer, hashed) = sync_channel::<Chunk>(BUFFERS);
        let (to_flusher, flush_requests) = sync_channel::<()>(1);
        let hashing = scope.spawn(move || {
            for chunk in unhashed {
                hash_chunk(hasher, &chunk);
                if to_sealer.send(chunk).is_err() {
                    break;
                }
            }
        });
        let flush_error = &flush_error;
        scope.spawn(move || {
            for () in flush_requests {
                if let Err(e) = file.sync_data() {
                    // Linux may report a writeback error only once: keep it for the final fsync.
                    if let Ok(mut slot) = flush_error.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            }
        });

        let mut out = file;
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut allocated = 1;
        let mut in_flight = 0;
        let mut next = Some(first);
        let mut unflushed = 0usize;
        let result = loop {
            if let Some(chunk) = next.take() {
                let ends_blob = chunk.ends_blob;
                let next_index = chunk.first_index + chunk.records as u64;
                if to_hasher.send(chunk).is_err() {
                    break Err(BlobError::Input(io::Error::other("hashing stopped")));
                }
                in_flight += 1;
                if !ends_blob {
                    let buf = match spare.pop() {
                        Some(buf) => Some(buf),
                        None if allocated < BUFFERS => {
                            allocated += 1;
                            Some(vec![0u8; CHUNK_BYTES])
                        }
                        None => None,
                    };
                    if let Some(buf) = buf {
                        let mut chunk = Chunk::new(buf, next_index);
                        if let Err(e) = fill(input, &mut chunk, size) {
                            break Err(e);
                        }
                        next = Some(chunk);
                        continue;
                    }
                    // No free buffer: write one out first, then read on.
                    next = Some(Chunk::new(Vec::new(), next_index));
                }
            }
            let Ok(mut chunk) = hashed.recv() else {
                break Err(BlobError::Input(io::Error::other("hashing stopped")));
            };
            in_flight -= 1;
            if let Err(e) = sealer.seal(&mut chunk) {
                break Err(e);
            }
            let encoded = chunk.encoded_len();
            if let Err(e) = out.write_all(&chunk.buf[..encoded]) {
                break Err(write_err(e));
            }
            unflushed += encoded;
            if unflushed >= FLUSH_EVERY {
                // A busy flusher will pick up these bytes with its next call anyway.
                let _ = to_flusher.try_send(());
                unflushed = 0;
            }
            if chunk.ends_blob {
                break Ok(());
            }
            // A placeholder means a read is waiting for this buffer.
            match next.as_mut() {
                Some(waiting) if waiting.buf.is_empty() => {
                    waiting.buf = chunk.buf;
                    if let Err(e) = fill(input, waiting, size) {
                        break Err(e);
                    }
                }
                _ => spare.push(chunk.buf),
            }
            debug_assert!(in_flight <= BUFFERS);
        };
        drop(to_hasher);
        drop(hashed);
        drop(to_flusher);
        if let Err(panic) = hashing.join() {
            std::panic::resume_unwind(panic);
        }
        result
    });
    result?;
    match flush_error.into_inner() {
        Ok(Some(e)) => Err(write_err(e)),
        _ => Ok(()),
    }
}

/// Reads plaintext straight into the chunk's record slots.
pub(super) fn fill(
    input: &mut impl Read,
    chunk: &mut Chunk,
    size: &mut u64,
) -> Result<(), BlobError> {
    for k in 0..CHUNK_RECORDS {
        let start = k * SLOT + RECORD_HEADER_LEN;
        let body = &mut chunk.buf[start..start + RECORD];
        let got = read_full(input, body).map_err(BlobError::Input)?;
        *size += got as u64;
        chunk.records = k + 1;
        chunk.last_len = got;
        if got < RECORD {
            chunk.ends_blob = true;
            return Ok(());
        }
    }
    Ok(())
}

/// Hashes the plaintext of each record of a chunk, in order.
fn hash_chunk(hasher: &mut Context, chunk: &Chunk) {
    for k in 0..chunk.records {
        let len = if k + 1 == chunk.records {
            chunk.last_len
        } else {
            RECORD
        };
        let start = k * SLOT + RECORD_HEADER_LEN;
        hasher.update(&chunk.buf[start..start + len]);
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
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

/// Seals the records of a chunk in place.
pub(super) struct ChunkSealer<'a> {
    pub(super) key: &'a LessSafeKey,
    pub(super) rng: &'a SystemRandom,
    pub(super) file_id: FileId,
}

impl ChunkSealer<'_> {
    pub(super) fn seal(&self, chunk: &mut Chunk) -> Result<(), BlobError> {
        let mut nonces = [0u8; NONCE_LEN * CHUNK_RECORDS];
        self.rng.fill(&mut nonces).map_err(|_| BlobError::Random)?;
        let slots = chunk.buf.chunks_exact_mut(SLOT).take(chunk.records);
        for (k, (slot, nonce)) in slots.zip(nonces.chunks_exact(NONCE_LEN)).enumerate() {
            let is_last = k + 1 == chunk.records;
            let len = if is_last { chunk.last_len } else { RECORD };
            let (head, rest) = slot.split_at_mut(RECORD_HEADER_LEN);
            let head: &mut [u8; RECORD_HEADER_LEN] =
                head.try_into().map_err(|_| BlobError::Seal)?;
            let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| BlobError::Seal)?;
            let index = chunk.first_index + k as u64;
            RecordHeader::new(nonce, self.file_id, index, is_last && chunk.ends_blob).encode(head);
            let (body, after) = rest.split_at_mut(len);
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    RecordHeader::associated_data(head),
                    body,
                )
                .map_err(|_| BlobError::Seal)?;
            after[..TAG_LEN].copy_from_slice(tag.as_ref());
        }
        Ok(())
    }
}
