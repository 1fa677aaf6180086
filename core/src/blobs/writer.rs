//! Storing a blob: hash, encrypt and write in fixed buffers, then publish atomically.
//!
//! Hashing (on the caller's thread) and sealing + writing (on a helper thread) run as a
//! two-stage pipeline over a few recycled chunk buffers, because SHA-256 alone takes about
//! as long as AES-GCM and the write together. Blobs that fit in one chunk skip the helper.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::sync_channel;

use ring::aead::{LessSafeKey, Nonce};
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use super::format::{
    FileHeader, FileId, HEADER_LEN, NONCE_LEN, RECORD_HEADER_LEN, RECORD_OVERHEAD, RECORD_SIZE,
    RecordHeader, TAG_LEN,
};
use super::store::{BlobStore, StoredBlob};
use super::{BlobError, Sha256Digest};

const RECORD: usize = RECORD_SIZE as usize;
/// One record as written: header, plaintext (sealed in place), tag.
const SLOT: usize = RECORD + RECORD_OVERHEAD;
/// Records per chunk handed from the hashing stage to the writing stage.
const CHUNK_RECORDS: usize = 16;
const CHUNK_BYTES: usize = CHUNK_RECORDS * SLOT;
/// Chunk buffers in circulation: one being hashed, one being written, one queued.
const BUFFERS: usize = 3;

/// A run of consecutive records laid out exactly as they go to disk.
struct Chunk {
    buf: Vec<u8>,
    first_index: u64,
    records: usize,
    last_len: usize,
    ends_blob: bool,
}

impl Chunk {
    fn new(buf: Vec<u8>, first_index: u64) -> Self {
        Self {
            buf,
            first_index,
            records: 0,
            last_len: 0,
            ends_blob: false,
        }
    }

    /// Bytes of `buf` to write once sealed.
    fn encoded_len(&self) -> usize {
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
    fill(&mut input, &mut first, &mut hasher, &mut size)?;
    let sealer = Sealer {
        key: store.key(),
        rng: store.rng(),
        file_id,
    };
    if first.ends_blob {
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

    let digest = Sha256Digest::from_ring(hasher.finish());
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

/// Hashes on this thread while a helper seals and writes the previous chunk.
fn pipeline(
    sealer: &Sealer<'_>,
    file: &std::fs::File,
    path: &std::path::Path,
    input: &mut impl Read,
    first: Chunk,
    hasher: &mut Context,
    size: &mut u64,
) -> Result<(), BlobError> {
    std::thread::scope(|scope| {
        let (to_writer, filled) = sync_channel::<Chunk>(BUFFERS);
        let (to_reader, free) = sync_channel::<Vec<u8>>(BUFFERS);
        let writer = scope.spawn(move || -> Result<bool, BlobError> {
            let mut out = file;
            for mut chunk in filled {
                sealer.seal(&mut chunk)?;
                out.write_all(&chunk.buf[..chunk.encoded_len()])
                    .map_err(|e| BlobError::io("writing temp file", path, e))?;
                if chunk.ends_blob {
                    return Ok(true);
                }
                // The hashing stage may have stopped; then the buffer is simply dropped.
                let _ = to_reader.send(chunk.buf);
            }
            Ok(false)
        });

        let mut allocated = 1;
        let mut chunk = first;
        let read_result = loop {
            let ends_blob = chunk.ends_blob;
            let next_index = chunk.first_index + chunk.records as u64;
            if to_writer.send(chunk).is_err() || ends_blob {
                // A closed channel means the writer failed: its error is the one to report.
                break Ok(());
            }
            let buf = if allocated < BUFFERS {
                allocated += 1;
                vec![0u8; CHUNK_BYTES]
            } else {
                match free.recv() {
                    Ok(buf) => buf,
                    Err(_) => break Ok(()),
                }
            };
            chunk = Chunk::new(buf, next_index);
            if let Err(e) = fill(input, &mut chunk, hasher, size) {
                break Err(e);
            }
        };
        drop(to_writer);
        let write_result = match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        read_result?;
        match write_result? {
            true => Ok(()),
            // Only reachable if the hashing stage stopped without an error, which it does not.
            false => Err(BlobError::Input(io::Error::other("blob input ended early"))),
        }
    })
}

/// Reads plaintext straight into the chunk's record slots and hashes it.
fn fill(
    input: &mut impl Read,
    chunk: &mut Chunk,
    hasher: &mut Context,
    size: &mut u64,
) -> Result<(), BlobError> {
    for k in 0..CHUNK_RECORDS {
        let start = k * SLOT + RECORD_HEADER_LEN;
        let body = &mut chunk.buf[start..start + RECORD];
        let got = read_full(input, body).map_err(BlobError::Input)?;
        hasher.update(&body[..got]);
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
struct Sealer<'a> {
    key: &'a LessSafeKey,
    rng: &'a SystemRandom,
    file_id: FileId,
}

impl Sealer<'_> {
    fn seal(&self, chunk: &mut Chunk) -> Result<(), BlobError> {
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
