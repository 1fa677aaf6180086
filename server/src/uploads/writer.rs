//! The blocking side of a PATCH: opening the partial file at the committed offset (cut
//! back to it after a crash, with the hash of what precedes it), and sealing, writing and
//! hashing the chunk's buffers as they arrive.
//!
//! The partial file is the blob sealed at rest in the making: the store's header (the
//! blob's own key, its known digest and length) and its 64 KiB records in order, so the
//! finished file is placed as it is, each byte written once. The bytes of a record not yet
//! full when a chunk ends wait in a small tail file beside it, sealed under a key of its
//! own ([`super::spool`]), and open the next chunk's first record.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tandem_core::blobs::{SEALED_HEADER_LEN, SealedLayout, Sealer};
use tandem_core::crypto::{Digest, Sha256Stream};
use uuid::Uuid;

use super::patch::WRITE_QUEUE;
use super::spool::{Spool, SpoolReader};
use super::tus::ChunkHasher;
use crate::blobstore::Keyring;

/// Plaintext bytes per record of the sealed blob.
const RECORD: usize = Sealer::RECORD_SIZE as usize;

/// An upload's files in `blobs/tmp/`: the sealed blob in the making (`upload-<id>`), and
/// the tail of each offset that ends inside a record (`upload-<id>.<offset>.tail`).
#[derive(Debug, Clone)]
pub(super) struct Partial {
    pub(super) id: Uuid,
    pub(super) digest: Digest,
    pub(super) length: u64,
    pub(super) path: PathBuf,
}

impl Partial {
    pub(super) fn new(tmp: &Path, id: Uuid, digest: Digest, length: u64) -> Self {
        Self {
            id,
            digest,
            length,
            path: tmp.join(format!("upload-{}", id.simple())),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The tail file of offset `offset`. A tail is named by its offset, so the committed
    /// offset's tail stays untouched until a new offset is committed: a crash or a lost
    /// lease between a chunk's write and its commit leaves the committed state whole.
    pub(super) fn tail(&self, offset: u64) -> PathBuf {
        self.dir()
            .join(format!("upload-{}.{offset}.tail", self.id.simple()))
    }

    /// Keeps `tail`, the plaintext of offset `offset` after its last whole record, for the
    /// next chunk: sealed into a new file, synced and renamed into place (nothing to keep
    /// on a record boundary).
    pub(super) fn keep_tail(&self, keys: &Keyring, offset: u64, tail: &[u8]) -> io::Result<()> {
        if tail.is_empty() {
            return Ok(());
        }
        let at = offset - tail.len() as u64;
        let name = self.tail(offset);
        let fresh = name.with_extension(format!("tail-{}", Uuid::now_v7().simple()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&fresh)?;
            let spool = Spool::create(&mut file, self.id, keys)?;
            let mut scratch = Vec::with_capacity(tail.len() + 64);
            spool.append(&mut file, at, tail, &mut scratch)?;
            file.sync_data()?;
            std::fs::rename(&fresh, &name)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&fresh);
        }
        written?;
        File::open(self.dir())?.sync_all()
    }

    /// Removes the tail of an offset no longer committed; a missing one is fine.
    pub(super) fn drop_tail(&self, offset: u64) {
        let _ = std::fs::remove_file(self.tail(offset));
    }

    /// The tail kept for the committed offset `offset` (empty on a record boundary);
    /// `None` when it is missing or does not open as exactly those bytes.
    fn read_tail(&self, keys: &Keyring, offset: u64) -> io::Result<Option<Vec<u8>>> {
        let at = offset - offset % RECORD as u64;
        let want = (offset - at) as usize;
        if want == 0 {
            return Ok(Some(Vec::new()));
        }
        let gone = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            )
        };
        let mut reader = match SpoolReader::open(&self.tail(offset), self.id, keys, at) {
            Ok(r) => r,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut tail = Vec::with_capacity(RECORD);
        match reader.read_to_end(&mut tail) {
            Ok(_) if tail.len() == want => Ok(Some(tail)),
            Ok(_) => Ok(None),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tail files present and their offsets.
    fn tails(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let prefix = format!("upload-{}.", self.id.simple());
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.dir())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if let Some(offset) = rest.strip_suffix(".tail").and_then(|o| o.parse().ok()) {
                found.push((offset, entry.path()));
            }
        }
        Ok(found)
    }

    /// Removes every file of the upload; missing ones are fine.
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
        let prefix = format!("upload-{}.", self.id.simple());
        if let Ok(entries) = std::fs::read_dir(self.dir()) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Plaintext bytes an upload's files hold in whole records and its newest tail (tests,
/// and an operator's look at `blobs/tmp/`): 0 for none.
pub fn received_len(tmp: &Path, id: Uuid) -> io::Result<u64> {
    let part = Partial::new(tmp, id, Digest([0; 32]), 0);
    let sealed = match std::fs::metadata(&part.path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let slot = Sealer::sealed_prefix_len(RECORD as u64) - SEALED_HEADER_LEN as u64;
    let whole = sealed.saturating_sub(SEALED_HEADER_LEN as u64) / slot * RECORD as u64;
    let mut received = whole;
    for (offset, path) in part.tails()? {
        let at = offset - offset % RECORD as u64;
        if at == whole && super::spool::plaintext_len(&path)? == offset - at {
            received = received.max(offset);
        }
    }
    Ok(received)
}

/// What the writer did.
pub(super) struct Written {
    pub(super) file: File,
    pub(super) blob_hash: Sha256Stream,
    pub(super) chunk_hash: Option<ChunkHasher>,
    /// Plaintext bytes written.
    pub(super) bytes: u64,
    /// The plaintext after the last whole record, when the blob is not complete.
    pub(super) tail: Vec<u8>,
}

/// The partial file opened for a chunk.
pub(super) struct Prepared {
    file: File,
    layout: SealedLayout,
    tail: Vec<u8>,
    hash: Sha256Stream,
    /// The file position where the chunk's records begin.
    pub(super) position: u64,
}

/// What [`prepare`] found.
pub(super) enum Prepare {
    /// The upload goes on from its committed offset.
    Ready(Box<Prepared>),
    /// The bytes after `resume_at` are gone or damaged (the files are cut back to it): the
    /// upload resumes from there.
    Lost { resume_at: u64 },
}

/// Opens the partial file at the committed offset, cut back to it when a crash left more,
/// with the hash of everything before it (continued from `cached`, or read again, every
/// record opened on the way) and the tail. At offset 0 the file starts afresh.
pub(super) fn prepare(
    part: &Partial,
    keys: &Keyring,
    sealer: &Sealer,
    offset: u64,
    cached: Option<Sha256Stream>,
) -> io::Result<Prepare> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&part.path)?;
    // Held until the chunk's file is closed. The lease already keeps one writer at a time;
    // this also covers a writer of another server that lost its lease while stalled in a
    // write: its last write lands before this one starts, never inside a sealed record.
    file.lock()?;
    let lost = |file: &File, resume_at: u64| -> io::Result<Prepare> {
        let keep = if resume_at == 0 {
            0
        } else {
            Sealer::sealed_prefix_len(resume_at)
        };
        file.set_len(keep)?;
        tracing::warn!(
            resume_at,
            "upload partial file damaged or short; resuming earlier"
        );
        Ok(Prepare::Lost { resume_at })
    };
    if offset == 0 {
        let (head, layout) = sealer
            .begin(part.digest, part.length)
            .map_err(io::Error::other)?;
        file.set_len(0)?;
        file.write_all(&head)?;
        return Ok(Prepare::Ready(Box::new(Prepared {
            file,
            layout,
            tail: Vec::new(),
            hash: Sha256Stream::default(),
            position: SEALED_HEADER_LEN as u64,
        })));
    }
    let mut head = [0u8; SEALED_HEADER_LEN];
    let layout = match file.read_exact(&mut head) {
        Ok(()) => sealer.layout(part.digest, &head).ok(),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(e),
    };
    let Some(layout) = layout.filter(|l| l.plaintext_size() == part.length) else {
        return lost(&file, 0);
    };
    let position = Sealer::sealed_prefix_len(offset);
    let len = file.metadata()?.len();
    if len < position {
        return lost(&file, 0);
    }
    if len > position {
        file.set_len(position)?;
    }
    let full = offset - offset % RECORD as u64;
    let Some(tail) = part.read_tail(keys, offset)? else {
        return lost(&file, full);
    };
    let hash = match cached {
        Some(h) => h,
        None => match rehash(&mut file, &layout, full) {
            Ok(mut h) => {
                h.update(&tail);
                h
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return lost(&file, 0),
            Err(e) => return Err(e),
        },
    };
    file.seek(SeekFrom::Start(position))?;
    Ok(Prepare::Ready(Box::new(Prepared {
        file,
        layout,
        tail,
        hash,
        position,
    })))
}

/// The hash of the first `full` bytes (whole records), every record read and opened again.
fn rehash(file: &mut File, layout: &SealedLayout, full: u64) -> io::Result<Sha256Stream> {
    file.seek(SeekFrom::Start(SEALED_HEADER_LEN as u64))?;
    let mut input = io::BufReader::with_capacity(1 << 20, file);
    let mut hash = Sha256Stream::default();
    let mut raw = vec![0u8; layout.record_sealed_len(0)];
    for index in 0..full / RECORD as u64 {
        raw.resize(layout.record_sealed_len(index), 0);
        input.read_exact(&mut raw)?;
        let plain = layout
            .open_record(index, &mut raw)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        hash.update(plain);
    }
    Ok(hash)
}

/// Written bytes are handed to the disk in steps of this size while the chunk still
/// arrives, so the fsync that must precede the offset's commit finds little left to write.
const WRITEBACK_STEP: u64 = 16 << 20;

/// The blocking writer: seals and writes each buffer (the chunk starting at plaintext
/// offset `offset` of a blob of `length` bytes) while the blob's hash and, when a checksum
/// was sent for a chunk that does not start the blob, the chunk's hash run on threads of
/// their own; another thread starts the disk's writeback of what was written (never
/// waiting). The last byte of the blob seals its final record.
pub(super) fn write_all(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    prepared: Prepared,
    offset: u64,
    length: u64,
    chunk_hash: Option<ChunkHasher>,
) -> io::Result<Written> {
    let Prepared {
        mut file,
        layout,
        tail,
        hash: blob_hash,
        position: start,
    } = prepared;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // Every thread of the scope has ended before `file` can be dropped, so the flusher's
    // descriptor stays valid while it is used.
    let (written, chunk_hash, tail) = std::thread::scope(|scope| {
        let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel::<(u64, u64)>(4);
        scope.spawn(move || {
            for (from, len) in flush_rx {
                start_writeback(fd, from, len);
            }
        });
        let chunk = chunk_hash.map(|mut chunk_hash| {
            let (tx, chunk_rx) = std::sync::mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
            let hasher = scope.spawn(move || {
                for buf in chunk_rx {
                    chunk_hash.update(&buf);
                }
                chunk_hash
            });
            (tx, hasher)
        });
        let (chunk_tx, hasher) = match chunk {
            Some((tx, hasher)) => (Some(tx), Some(hasher)),
            None => (None, None),
        };
        // The blob's hash runs beside the writes too: hashing is the heaviest work here,
        // and on its own thread it overlaps with receiving, sealing and writing.
        let (blob_tx, blob_rx) = std::sync::mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
        let blob_hasher = scope.spawn(move || {
            let mut blob_hash = blob_hash;
            for buf in blob_rx {
                blob_hash.update(&buf);
            }
            blob_hash
        });
        let mut records = Records {
            layout: &layout,
            index: offset / RECORD as u64,
            pending: tail,
            out: Vec::with_capacity(2 << 20),
        };
        let sinks = Sinks {
            blob: blob_tx,
            chunk: chunk_tx,
            flush: flush_tx,
        };
        let written =
            write_all_bytes(rx, &mut file, &mut records, start, sinks).and_then(|bytes| {
                if offset + bytes == length {
                    records.seal_final()?;
                    file.write_all(&records.out)?;
                }
                Ok(bytes)
            });
        let blob_hash = blob_hasher
            .join()
            .map_err(|_| io::Error::other("blob hasher panicked"))?;
        let written = written.map(|bytes| (blob_hash, bytes));
        let chunk_hash = match hasher {
            Some(h) => Some(
                h.join()
                    .map_err(|_| io::Error::other("chunk hasher panicked"))?,
            ),
            None => None,
        };
        Ok::<_, io::Error>((written, chunk_hash, records.pending))
    })?;
    let (blob_hash, bytes) = written?;
    Ok(Written {
        file,
        blob_hash,
        chunk_hash,
        bytes,
        tail,
    })
}

/// The records a chunk seals: whole ones as soon as their bytes are in, the rest pending.
struct Records<'a> {
    layout: &'a SealedLayout,
    /// The index of the next record.
    index: u64,
    /// Bytes of the next record so far (less than a record).
    pending: Vec<u8>,
    /// Sealed bytes to write.
    out: Vec<u8>,
}

impl Records<'_> {
    fn seal(&mut self, plain: &[u8]) -> io::Result<()> {
        self.layout
            .seal_record(self.index, plain, &mut self.out)
            .map_err(io::Error::other)?;
        self.index += 1;
        Ok(())
    }

    /// Seals the whole records `buf` completes into `out` (cleared first).
    fn take(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.clear();
        let mut data = buf;
        if !self.pending.is_empty() {
            let take = (RECORD - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == RECORD {
                let full = std::mem::take(&mut self.pending);
                self.seal(&full)?;
                self.pending = full;
                self.pending.clear();
            }
        }
        while data.len() >= RECORD {
            self.seal(&data[..RECORD])?;
            data = &data[RECORD..];
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// Seals the blob's final record from the pending bytes into `out` (cleared first).
    fn seal_final(&mut self) -> io::Result<()> {
        self.out.clear();
        let last = std::mem::take(&mut self.pending);
        self.seal(&last)
    }
}

/// Where the writer hands what it wrote.
struct Sinks {
    blob: std::sync::mpsc::SyncSender<Bytes>,
    chunk: Option<std::sync::mpsc::SyncSender<Bytes>>,
    flush: std::sync::mpsc::SyncSender<(u64, u64)>,
}

/// Asks the kernel to start writing `len` bytes from `from` to the disk, without waiting.
fn start_writeback(fd: std::os::fd::RawFd, from: u64, len: u64) {
    let (Ok(from), Ok(len)) = (libc::off64_t::try_from(from), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: `fd` is an open file descriptor for the duration of the call (the file
    // outlives the flusher thread); sync_file_range only reads its arguments. A failure
    // only means the final fsync has more to write.
    unsafe {
        libc::sync_file_range(fd, from, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Seals and writes each buffer's whole records and hands the buffer to the hashers;
/// returns the plaintext bytes received.
fn write_all_bytes(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    file: &mut File,
    records: &mut Records<'_>,
    start: u64,
    sinks: Sinks,
) -> io::Result<u64> {
    let stopped = |_| io::Error::other("a hasher stopped");
    let mut bytes = 0u64;
    let mut sealed = 0u64;
    let mut flushed = 0u64;
    while let Some(buf) = rx.blocking_recv() {
        // The hashers take the buffer first, so they hash it while it is sealed here.
        if let Some(chunk) = &sinks.chunk {
            chunk.send(buf.clone()).map_err(stopped)?;
        }
        sinks.blob.send(buf.clone()).map_err(stopped)?;
        records.take(&buf)?;
        file.write_all(&records.out)?;
        sealed += records.out.len() as u64;
        bytes += buf.len() as u64;
        // Never block the writer on the disk: a busy flusher takes the range next time.
        if sealed - flushed >= WRITEBACK_STEP
            && sinks
                .flush
                .try_send((start + flushed, sealed - flushed))
                .is_ok()
        {
            flushed = sealed;
        }
    }
    Ok(bytes)
}
