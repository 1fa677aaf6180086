//! The blocking side of a PATCH: opening the partial file at the committed offset (cut
//! back to it after a crash, with the hash of what precedes it), and sealing, writing and
//! hashing the chunk's buffers as they arrive. The partial file is a spool ([`spool`]):
//! its records are sealed under the upload's own key, so no plaintext reaches the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek as _, SeekFrom};

use bytes::Bytes;
use tandem_core::crypto::Sha256Stream;
use uuid::Uuid;

use super::patch::WRITE_QUEUE;
use super::spool::{self, Spool, SpoolReader};
use super::tus::ChunkHasher;
use crate::blobstore::Keyring;

/// What the writer did.
pub(super) struct Written {
    pub(super) file: File,
    pub(super) blob_hash: Sha256Stream,
    pub(super) chunk_hash: Option<ChunkHasher>,
    /// Plaintext bytes written.
    pub(super) bytes: u64,
}

/// The partial file opened for a chunk.
pub(super) struct Prepared {
    pub(super) file: File,
    pub(super) spool: Spool,
    /// The hash of the blob's first `offset` bytes.
    pub(super) hash: Sha256Stream,
    /// The file position of the committed offset, where the chunk's records begin.
    pub(super) position: u64,
}

/// Opens the partial file of upload `id` at the committed offset, cut back to it when a
/// crash left more, with the hash of everything before it (continued from `cached`, or
/// read again). At offset 0 the file starts afresh under a new key. `None` when the file
/// does not hold the committed offset (its bytes were lost or damaged; it is emptied).
pub(super) fn prepare(
    path: &std::path::Path,
    id: Uuid,
    keys: &Keyring,
    offset: u64,
    cached: Option<Sha256Stream>,
) -> io::Result<Option<Prepared>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if offset == 0 {
        let spool = Spool::create(&mut file, id, keys)?;
        let position = file.stream_position()?;
        return Ok(Some(Prepared {
            file,
            spool,
            hash: Sha256Stream::default(),
            position,
        }));
    }
    let Some(position) = spool::locate(&mut file, offset)? else {
        file.set_len(0)?;
        return Ok(None);
    };
    if file.metadata()?.len() > position {
        file.set_len(position)?;
    }
    file.seek(SeekFrom::Start(0))?;
    let spool = Spool::open(&mut file, id, keys);
    let opened = match (spool, cached) {
        (Ok(spool), Some(hash)) => Ok((spool, hash)),
        // Another server wrote the prefix, or this one restarted: read it again, every
        // record opened on the way.
        (Ok(spool), None) => rehash(&mut file, spool, offset),
        (Err(e), _) => Err(e),
    };
    let (spool, hash) = match opened {
        Ok(opened) => opened,
        // A header or record that does not open (a damaged disk, a hand in the folder):
        // those bytes cannot be trusted, and the phone still has them.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(error = %e, "upload spool damaged; the upload starts again");
            file.set_len(0)?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(position))?;
    Ok(Some(Prepared {
        file,
        spool,
        hash,
        position,
    }))
}

/// The hash of a spool's first `offset` bytes (all its records), read and opened again.
fn rehash(file: &mut File, spool: Spool, offset: u64) -> io::Result<(Spool, Sha256Stream)> {
    let mut prefix = SpoolReader::new(io::BufReader::new(file), spool);
    let mut hash = Sha256Stream::default();
    let mut buf = vec![0u8; spool::RECORD_MAX];
    loop {
        let n = io::Read::read(&mut prefix, &mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    if prefix.position() != offset {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "upload spool holds fewer bytes than its records claim",
        ));
    }
    Ok((prefix.into_spool(), hash))
}

/// Written bytes are handed to the disk in steps of this size while the chunk still
/// arrives, so the fsync that must precede the offset's commit finds little left to write.
const WRITEBACK_STEP: u64 = 16 << 20;

/// The blocking writer: seals and writes each buffer (the chunk starting at plaintext
/// offset `offset`) while the blob's hash and, when a checksum was sent for a chunk that
/// does not start the blob, the chunk's hash run on threads of their own; another thread
/// starts the disk's writeback of what was written (never waiting).
pub(super) fn write_all(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    prepared: Prepared,
    offset: u64,
    chunk_hash: Option<ChunkHasher>,
) -> io::Result<Written> {
    let Prepared {
        mut file,
        spool,
        hash: blob_hash,
        position: start,
    } = prepared;
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
        let at = Place {
            plain: offset,
            file: start,
        };
        let written = write_all_bytes(rx, &mut file, &spool, at, blob_tx, chunk_tx, flush_tx);
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

/// Where a chunk starts: its plaintext offset and its file position.
#[derive(Clone, Copy)]
struct Place {
    plain: u64,
    file: u64,
}

/// Seals and writes each buffer and hands it to the hashers; returns the plaintext bytes
/// written.
fn write_all_bytes(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    file: &mut File,
    spool: &Spool,
    start: Place,
    blob: std::sync::mpsc::SyncSender<Bytes>,
    chunk: Option<std::sync::mpsc::SyncSender<Bytes>>,
    flush: std::sync::mpsc::SyncSender<(u64, u64)>,
) -> io::Result<u64> {
    let stopped = |_| io::Error::other("a hasher stopped");
    let mut scratch = Vec::with_capacity(spool::RECORD_MAX + spool::RECORD_OVERHEAD as usize);
    let mut bytes = 0u64;
    let mut sealed = 0u64;
    let mut flushed = 0u64;
    while let Some(buf) = rx.blocking_recv() {
        // The hashers take the buffer first, so they hash it while it is sealed here.
        if let Some(chunk) = &chunk {
            chunk.send(buf.clone()).map_err(stopped)?;
        }
        blob.send(buf.clone()).map_err(stopped)?;
        sealed += spool.append(file, start.plain + bytes, &buf, &mut scratch)?;
        bytes += buf.len() as u64;
        // Never block the writer on the disk: a busy flusher takes the range next time.
        if sealed - flushed >= WRITEBACK_STEP
            && flush
                .try_send((start.file + flushed, sealed - flushed))
                .is_ok()
        {
            flushed = sealed;
        }
    }
    Ok(bytes)
}
