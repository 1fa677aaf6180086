//! Copies a local blob folder into a bucket and verifies every object by reading it back
//! from the bucket and hashing what it returns (`tandem blobs migrate`). Blobs are copied
//! sealed, exactly as they lie in the folder: their keys stay in the database, and the
//! migration needs none of them.

use std::fs;
use std::io::Read as _;
use std::path::Path;

use tandem_core::blobs::Sealer;
use tandem_core::crypto::Digest;

use super::{BlobStoreError, S3Blobs, hash_file, key_of};

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Blobs put into the bucket.
    pub copied: u64,
    /// Blobs the bucket held already with their size (verified all the same).
    pub present: u64,
    /// Blobs read back from the bucket byte for byte as the folder holds them.
    pub verified: u64,
    /// Bytes verified.
    pub bytes: u64,
    /// Files of the folder that are not blobs (`tmp/`, stray names): left alone.
    pub skipped: u64,
    /// Blobs not copied or not verified: key and reason.
    pub failed: Vec<(String, String)>,
}

/// Copies every blob of `folder` (`<2 hex>/<sha256 hex>`) into `bucket` unless it is there
/// with its size, then reads each back from the bucket and checks that it returns the
/// folder's bytes (the same SHA-256 and size). A folder file that is not a sealed blob
/// (not of a sealed length, or not in the format) is reported and not copied. Blocking.
pub fn migrate_folder(folder: &Path, bucket: &S3Blobs) -> Result<MigrationReport, BlobStoreError> {
    let mut report = MigrationReport::default();
    let read_dir = |dir: &Path| {
        fs::read_dir(dir).map_err(|source| BlobStoreError::Io {
            path: dir.to_owned(),
            source,
        })
    };
    let mut shards: Vec<_> = read_dir(folder)?.filter_map(Result::ok).collect();
    shards.sort_by_key(fs::DirEntry::file_name);
    for shard in shards {
        let name = shard.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !shard.path().is_dir() {
            report.skipped += 1;
            continue;
        }
        let mut files: Vec<_> = read_dir(&shard.path())?.filter_map(Result::ok).collect();
        files.sort_by_key(fs::DirEntry::file_name);
        for file in files {
            let file_name = file.file_name().to_string_lossy().into_owned();
            match file_name.parse::<Digest>() {
                Ok(digest) if file_name.starts_with(&name) && file.path().is_file() => {
                    migrate_one(&file.path(), &digest, bucket, &mut report);
                }
                _ => report.skipped += 1,
            }
        }
    }
    Ok(report)
}

fn migrate_one(file: &Path, digest: &Digest, bucket: &S3Blobs, report: &mut MigrationReport) {
    let key = key_of(digest);
    let mut fail = |reason: String| report.failed.push((key.clone(), reason));
    let len = match fs::metadata(file) {
        Ok(m) => m.len(),
        Err(e) => return fail(e.to_string()),
    };
    match looks_sealed(file) {
        Ok(true) if Sealer::plaintext_len(len).is_some() => {}
        Ok(_) => return fail("the folder's file is not a sealed blob; not copied".to_owned()),
        Err(e) => return fail(e.to_string()),
    }
    let local = match hash_file(file) {
        Ok(local) => local,
        Err(e) => return fail(e.to_string()),
    };
    match bucket.block_on(bucket.head(key.clone())) {
        Ok(Some(size)) if size == len => report.present += 1,
        Ok(_) => match bucket.put_file(file, &key) {
            Ok(()) => report.copied += 1,
            Err(e) => return fail(e.to_string()),
        },
        Err(e) => return fail(e.to_string()),
    }
    match read_back(bucket, &key) {
        Ok((actual, size)) if actual == local && size == len => {
            report.verified += 1;
            report.bytes += size;
        }
        Ok((actual, size)) => fail(format!(
            "the bucket returned {size} bytes hashing to {actual}, not the folder's {len} \
             bytes hashing to {local}"
        )),
        Err(e) => fail(e.to_string()),
    }
}

/// Whether the file starts as a sealed blob does (`TNDMBLOB`, format 1).
fn looks_sealed(file: &Path) -> Result<bool, BlobStoreError> {
    let mut head = [0u8; 10];
    let mut f = fs::File::open(file).map_err(|source| BlobStoreError::Io {
        path: file.to_owned(),
        source,
    })?;
    match f.read_exact(&mut head) {
        Ok(()) => Ok(head == *b"TNDMBLOB\x00\x01"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(source) => Err(BlobStoreError::Io {
            path: file.to_owned(),
            source,
        }),
    }
}

/// The digest and size of what the bucket returns for `key`.
fn read_back(bucket: &S3Blobs, key: &str) -> Result<(Digest, u64), BlobStoreError> {
    let mut reader = bucket.open_read(key)?;
    let mut ctx = tandem_core::crypto::Sha256Stream::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|source| BlobStoreError::Io {
            path: bucket.location(key).into(),
            source,
        })?;
        if n == 0 {
            return Ok((ctx.finish(), size));
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
}
