//! The blocking side of a PATCH: opening the partial file at the committed offset (cut
//! back to it after a crash, with the hash of what precedes it), and writing and hashing
//! the chunk's buffers as they arrive.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};

use bytes::Bytes;
use tandem_core::crypto::Sha256Stream;

use super::patch::WRITE_QUEUE;
use super::tus::ChunkHasher;

/// What the writer did.
pub(super) struct Written {
    pub(super) file: File,
    pub(super) blob_hash: Sha256Stream,
    pub(super) chunk_hash: Option<ChunkHasher>,
    pub(super) bytes: u64,
}

/// Opens the partial file at the committed offset, cut back to it when a crash left more,
/// with the hash of everything before it (continued from `cached`, or read again).
/// `None` when the file holds less than the committed offset (its bytes were lost).
pub(super) fn prepare(
    path: &std::path::Path,
    offset: u64,
    cached: Option<Sha256Stream>,
) -> io::Result<Option<(File, Sha256Stream)>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    if len < offset {
        file.set_len(0)?;
        return Ok(None);
    }
    if len > offset {
        file.set_len(offset)?;
    }
    let hash = match cached {
        Some(h) => h,
        None => {
            let mut h = Sha256Stream::default();
            let mut buf = vec![0u8; 1 << 20];
            let mut prefix = (&mut file).take(offset);
            loop {
                let n = prefix.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            h
        }
    };
    file.seek(SeekFrom::Start(offset))?;
    Ok(Some((file, hash)))
}

/// Written bytes are handed to the disk in steps of this size while the chunk still
/// arrives, so the fsync that must precede the offset's commit finds little left to write.
const WRITEBACK_STEP: u64 = 16 << 20;

/// The blocking writer: writes each buffer while the blob's hash and, when a checksum was
/// sent for a chunk that does not start the blob, the chunk's hash run on threads of their
/// own; another thread starts the disk's writeback of what was written (never waiting).
pub(super) fn write_all(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    mut file: File,
    blob_hash: Sha256Stream,
    chunk_hash: Option<ChunkHasher>,
) -> io::Result<Written> {
    let start = file.stream_position()?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // Every thread of the scope has ended before `file` can be dropped, so the flusher's
    // descriptor stays valid while it is used.
    let (written, chunk_hash) = std::thread::scope(|scope| {
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
        // and on its own thread it overlaps with receiving and writing.
        let (blob_tx, blob_rx) = std::sync::mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
        let blob_hasher = scope.spawn(move || {
            let mut blob_hash = blob_hash;
            for buf in blob_rx {
                blob_hash.update(&buf);
            }
            blob_hash
        });
        let written = write_all_bytes(rx, &mut file, blob_tx, chunk_tx, start, flush_tx);
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
        Ok::<_, io::Error>((written, chunk_hash))
    })?;
    let (blob_hash, bytes) = written?;
    Ok(Written {
        file,
        blob_hash,
        chunk_hash,
        bytes,
    })
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

/// Writes each buffer and hands it to the hashers; returns the bytes written.
fn write_all_bytes(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    file: &mut File,
    blob: std::sync::mpsc::SyncSender<Bytes>,
    chunk: Option<std::sync::mpsc::SyncSender<Bytes>>,
    start: u64,
    flush: std::sync::mpsc::SyncSender<(u64, u64)>,
) -> io::Result<u64> {
    let stopped = |_| io::Error::other("a hasher stopped");
    let mut bytes = 0u64;
    let mut flushed = 0u64;
    while let Some(buf) = rx.blocking_recv() {
        file.write_all(&buf)?;
        if let Some(chunk) = &chunk {
            chunk.send(buf.clone()).map_err(stopped)?;
        }
        bytes += buf.len() as u64;
        blob.send(buf).map_err(stopped)?;
        // Never block the writer on the disk: a busy flusher takes the range next time.
        if bytes - flushed >= WRITEBACK_STEP
            && flush.try_send((start + flushed, bytes - flushed)).is_ok()
        {
            flushed = bytes;
        }
    }
    Ok(bytes)
}
