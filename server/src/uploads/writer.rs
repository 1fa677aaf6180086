//! The blocking side of a PATCH: opening the partial file at the committed offset (cut
//! back to it after a crash, with the hash of what precedes it), and writing and hashing
//! the chunk's buffers as they arrive.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};

use bytes::Bytes;
use tandem_core::crypto::Sha256Stream;

use super::patch::WRITE_QUEUE;

/// What the writer did.
pub(super) struct Written {
    pub(super) file: File,
    pub(super) blob_hash: Sha256Stream,
    pub(super) chunk_hash: Option<Sha256Stream>,
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

/// The blocking writer: writes each buffer and feeds the blob's hash; the chunk's hash,
/// when a checksum was sent, runs on a thread of its own so the two hashes share the cores.
pub(super) fn write_all(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    file: File,
    blob_hash: Sha256Stream,
    chunk_hash: Option<Sha256Stream>,
) -> io::Result<Written> {
    let Some(mut chunk_hash) = chunk_hash else {
        return write_and_hash(rx, file, blob_hash, None);
    };
    std::thread::scope(|scope| {
        let (tx, chunk_rx) = std::sync::mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
        let hasher = scope.spawn(move || {
            for buf in chunk_rx {
                chunk_hash.update(&buf);
            }
            chunk_hash
        });
        let written = write_and_hash(rx, file, blob_hash, Some(tx));
        let chunk_hash = hasher
            .join()
            .map_err(|_| io::Error::other("chunk hasher panicked"))?;
        written.map(|w| Written {
            chunk_hash: Some(chunk_hash),
            ..w
        })
    })
}

fn write_and_hash(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    mut file: File,
    mut blob_hash: Sha256Stream,
    chunk: Option<std::sync::mpsc::SyncSender<Bytes>>,
) -> io::Result<Written> {
    let mut bytes = 0u64;
    while let Some(buf) = rx.blocking_recv() {
        file.write_all(&buf)?;
        if let Some(chunk) = &chunk {
            chunk
                .send(buf.clone())
                .map_err(|_| io::Error::other("chunk hasher stopped"))?;
        }
        blob_hash.update(&buf);
        bytes += buf.len() as u64;
    }
    Ok(Written {
        file,
        blob_hash,
        chunk_hash: None,
        bytes,
    })
}
