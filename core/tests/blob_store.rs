//! Scenarios for the encrypted blob store: what a crash, a thief or a careless copy does to
//! stored evidence, and what the store reports.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tandem_core::blobs::{BlobError, BlobKey, BlobStore, Digest, FilePart};

// The v1 layout (see core/src/blobs/format.rs): the tests edit files at these offsets.
const HEADER: usize = 98;
const RECORD: usize = 64 * 1024;
const RECORD_HEADER: usize = 37;
const TAG: usize = 16;
const SLOT: usize = RECORD_HEADER + RECORD + TAG;

fn key() -> BlobKey {
    BlobKey::from_bytes([7; 32])
}

fn open_store(dir: &Path) -> BlobStore {
    BlobStore::open(dir, key()).unwrap()
}

/// Deterministic bytes that do not repeat within a record.
fn evidence(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Offset of record `index` in a file whose earlier records are all full.
fn record_offset(index: usize) -> usize {
    HEADER + index * SLOT
}

fn flip_bit(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: usize) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len as u64).unwrap();
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.parse::<Digest>().is_ok() {
            found.push(entry);
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn blobs_of_every_awkward_size_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    for len in [
        0,
        1,
        RECORD - 1,
        RECORD,
        RECORD + 1,
        16 * RECORD,
        5 * 1024 * 1024 + 123,
    ] {
        let bytes = evidence(len, len as u64);
        let stored = store.put_bytes(&bytes).unwrap();
        assert_eq!(
            stored.digest,
            tandem_core::crypto::sha256(&bytes),
            "len {len}"
        );
        assert_eq!(stored.size, len as u64);
        assert!(!stored.already_present);
        assert_eq!(
            store.read_to_vec(&stored.digest).unwrap(),
            bytes,
            "len {len}"
        );
        assert_eq!(store.verify(&stored.digest).unwrap().size, len as u64);
        assert!(store.contains(&stored.digest).unwrap());
    }
}

#[test]
fn blob_streams_back_in_small_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = evidence(3 * RECORD + 999, 1);
    let stored = store.put(&bytes[..]).unwrap();
    let mut reader = store.open_blob(&stored.digest).unwrap();
    assert_eq!(reader.size(), bytes.len() as u64);
    let mut back = Vec::new();
    let mut small = [0u8; 1000];
    loop {
        let n = reader.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&small[..n]);
    }
    assert_eq!(back, bytes);
}

#[test]
fn storing_the_same_evidence_twice_keeps_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = evidence(100_000, 2);
    let first = store.put_bytes(&bytes).unwrap();
    let second = store.put_bytes(&bytes).unwrap();
    assert_eq!(first.digest, second.digest);
    assert!(second.already_present);
    assert_eq!(blob_files(dir.path()), vec![store.blob_path(&first.digest)]);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn blob_is_stored_under_its_address_and_not_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = b"debtor: Zhang San, ID 110101199003077777".repeat(50);
    let stored = store.put_bytes(&bytes).unwrap();
    let hex = stored.digest.to_string();
    let path = store.blob_path(&stored.digest);
    assert_eq!(path, dir.path().join(&hex[..2]).join(&hex[2..4]).join(&hex));
    let on_disk = fs::read(&path).unwrap();
    assert!(!on_disk.windows(9).any(|w| w == b"Zhang San"));
}

#[test]
fn flipped_bit_in_the_header_is_reported_as_tampered_header() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(1000, 3)).unwrap();
    // Inside the file id.
    flip_bit(&store.blob_path(&stored.digest), 20);
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(err, BlobError::Tampered { digest, part: FilePart::Header } if digest == stored.digest),
        "{err:?}"
    );
}

#[test]
fn flipped_bit_in_a_record_is_reported_as_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(3 * RECORD, 4)).unwrap();
    flip_bit(
        &store.blob_path(&stored.digest),
        record_offset(1) + RECORD_HEADER + 500,
    );
    let err = store.verify(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Tampered {
                part: FilePart::Record(1),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn flipped_bit_in_a_tag_is_reported_as_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(2 * RECORD, 5)).unwrap();
    flip_bit(
        &store.blob_path(&stored.digest),
        record_offset(0) + SLOT - 3,
    );
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Tampered {
                part: FilePart::Record(0),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn flipped_bit_in_a_record_index_is_tampering_not_reordering() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(3 * RECORD, 6)).unwrap();
    // Last byte of record 1's index: 1 becomes 0x11.
    flip_bit(
        &store.blob_path(&stored.digest),
        record_offset(1) + RECORD_HEADER - 2,
    );
    let err = store.verify(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Tampered {
                part: FilePart::Record(1),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn flipped_bit_in_the_final_record_fails_before_its_bytes_are_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = evidence(RECORD + 10, 7);
    let stored = store.put_bytes(&bytes).unwrap();
    flip_bit(
        &store.blob_path(&stored.digest),
        record_offset(1) + RECORD_HEADER + 5,
    );
    let mut reader = store.open_blob(&stored.digest).unwrap();
    let mut back = Vec::new();
    let err = reader.read_to_end(&mut back).unwrap_err();
    assert_eq!(
        back.len(),
        RECORD,
        "only the authentic first record was handed out"
    );
    assert!(matches!(
        reader.recover_error(err),
        BlobError::Tampered {
            part: FilePart::Record(1),
            ..
        }
    ));
    let again = reader.read(&mut [0u8; 10]).unwrap_err();
    assert!(matches!(
        reader.recover_error(again),
        BlobError::ReadAfterError { .. }
    ));
}

#[test]
fn blob_truncated_at_a_record_boundary_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(3 * RECORD + 10, 8)).unwrap();
    truncate(&store.blob_path(&stored.digest), record_offset(2));
    let err = store.verify(&stored.digest).unwrap_err();
    let full = (HEADER + 3 * SLOT + RECORD_HEADER + 10 + TAG) as u64;
    assert!(
        matches!(err, BlobError::Truncated { expected, actual, .. }
            if expected == full && actual == record_offset(2) as u64),
        "{err:?}"
    );
}

#[test]
fn blob_truncated_mid_record_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(2 * RECORD, 9)).unwrap();
    truncate(&store.blob_path(&stored.digest), record_offset(1) + 1000);
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(matches!(err, BlobError::Truncated { .. }), "{err:?}");
}

#[test]
fn blob_truncated_inside_its_header_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(10, 10)).unwrap();
    truncate(&store.blob_path(&stored.digest), 40);
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Truncated {
                expected: 98,
                actual: 40,
                ..
            }
        ),
        "{err:?}"
    );
}

fn swap_ranges(bytes: &mut Vec<u8>, a: std::ops::Range<usize>, b: std::ops::Range<usize>) {
    assert!(a.end <= b.start);
    let first = bytes[a.clone()].to_vec();
    let second = bytes[b.clone()].to_vec();
    let middle = bytes[a.end..b.start].to_vec();
    let mut rebuilt = bytes[..a.start].to_vec();
    rebuilt.extend(second);
    rebuilt.extend(middle);
    rebuilt.extend(first);
    rebuilt.extend_from_slice(&bytes[b.end..]);
    *bytes = rebuilt;
}

#[test]
fn two_swapped_records_are_reported_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(3 * RECORD + 5, 11)).unwrap();
    let path = store.blob_path(&stored.digest);
    let mut bytes = fs::read(&path).unwrap();
    swap_ranges(
        &mut bytes,
        record_offset(0)..record_offset(1),
        record_offset(1)..record_offset(2),
    );
    fs::write(&path, bytes).unwrap();
    let err = store.verify(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::RecordsReordered {
                expected: 0,
                found: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn final_record_moved_before_a_full_one_is_reported_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(2 * RECORD + 300, 12)).unwrap();
    let path = store.blob_path(&stored.digest);
    let mut bytes = fs::read(&path).unwrap();
    let end = bytes.len();
    swap_ranges(
        &mut bytes,
        record_offset(1)..record_offset(2),
        record_offset(2)..end,
    );
    fs::write(&path, bytes).unwrap();
    let err = store.verify(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::RecordsReordered {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn record_taken_from_another_blob_file_is_reported_as_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let victim = store.put_bytes(&evidence(3 * RECORD, 13)).unwrap();
    let donor = store.put_bytes(&evidence(3 * RECORD, 14)).unwrap();
    let victim_path = store.blob_path(&victim.digest);
    let donor_bytes = fs::read(store.blob_path(&donor.digest)).unwrap();
    let mut bytes = fs::read(&victim_path).unwrap();
    let record = record_offset(1)..record_offset(2);
    bytes[record.clone()].copy_from_slice(&donor_bytes[record]);
    fs::write(&victim_path, bytes).unwrap();
    let err = store.verify(&victim.digest).unwrap_err();
    assert!(
        matches!(err, BlobError::ForeignRecord { record: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn bytes_after_the_final_record_are_reported_as_trailing_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(&evidence(RECORD + 1, 15)).unwrap();
    let path = store.blob_path(&stored.digest);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"xyz").unwrap();
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(err, BlobError::TrailingData { extra: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn blob_file_renamed_to_another_digest_is_reported_as_digest_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let real = store.put_bytes(&evidence(5000, 16)).unwrap();
    let claimed = tandem_core::crypto::sha256(b"the photo the thief wants to replace");
    let target = store.blob_path(&claimed);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::rename(store.blob_path(&real.digest), &target).unwrap();
    let err = store.read_to_vec(&claimed).unwrap_err();
    assert!(
        matches!(err, BlobError::DigestMismatch { expected, found }
            if expected == claimed && found == real.digest),
        "{err:?}"
    );
}

#[test]
fn store_opened_with_the_wrong_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store.put_bytes(b"signature image").unwrap();
    drop(store);
    let err = BlobStore::open(dir.path(), BlobKey::from_bytes([8; 32])).unwrap_err();
    assert!(matches!(err, BlobError::WrongKey { .. }), "{err:?}");
}

#[test]
fn wrong_key_is_refused_even_when_the_key_check_file_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(b"audio segment").unwrap();
    drop(store);
    fs::remove_file(dir.path().join("key-check")).unwrap();
    let err = BlobStore::open(dir.path(), BlobKey::from_bytes([8; 32])).unwrap_err();
    assert!(matches!(err, BlobError::WrongKey { .. }), "{err:?}");
    // The right key still opens it and recreates the check.
    let store = open_store(dir.path());
    assert_eq!(store.read_to_vec(&stored.digest).unwrap(), b"audio segment");
    assert!(dir.path().join("key-check").exists());
}

#[test]
fn blob_written_under_another_key_reads_as_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let other = BlobStore::open(other_dir.path(), BlobKey::from_bytes([9; 32])).unwrap();
    let stored = other.put_bytes(b"photo from another phone").unwrap();
    let target = store.blob_path(&stored.digest);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(other.blob_path(&stored.digest), &target).unwrap();
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Tampered {
                part: FilePart::Header,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Yields some bytes, then fails, like a camera stream that dies mid-photo.
struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("camera stream died"));
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(0xAB);
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn interrupted_write_leaves_no_visible_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // In the first chunk, while buffers are still being allocated, and after they are recycled.
    for left in [10, 3 * 1024 * 1024, 8 * 1024 * 1024 + 5] {
        let err = store.put(FailingReader { left }).unwrap_err();
        assert!(matches!(err, BlobError::Input(_)), "{err:?}");
    }
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn temp_files_left_by_a_crash_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    drop(store);
    let stale = dir.path().join("tmp").join("put-crashed.partial");
    fs::write(&stale, evidence(5000, 17)).unwrap();
    let store = open_store(dir.path());
    assert!(!stale.exists());
    assert!(blob_files(store.dir()).is_empty());
}

#[test]
fn two_threads_storing_the_same_bytes_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = evidence(3 * 1024 * 1024 + 17, 18);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| store.put_bytes(&bytes)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in &results {
        assert_eq!(
            result.as_ref().unwrap().digest,
            tandem_core::crypto::sha256(&bytes)
        );
    }
    assert_eq!(
        store
            .read_to_vec(&tandem_core::crypto::sha256(&bytes))
            .unwrap(),
        bytes
    );
    assert_eq!(blob_files(dir.path()).len(), 1);
}

#[test]
fn a_second_store_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open_store(dir.path());
    let err = BlobStore::open(dir.path(), key()).unwrap_err();
    assert!(matches!(err, BlobError::StoreInUse { .. }), "{err:?}");
}

#[test]
fn purged_blob_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let stored = store.put_bytes(b"acknowledged by the server").unwrap();
    assert!(store.remove(&stored.digest).unwrap());
    assert!(!store.contains(&stored.digest).unwrap());
    assert!(!store.remove(&stored.digest).unwrap());
    let err = store.read_to_vec(&stored.digest).unwrap_err();
    assert!(
        matches!(err, BlobError::NotFound { digest } if digest == stored.digest),
        "{err:?}"
    );
}

#[test]
fn storing_again_repairs_a_damaged_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let bytes = evidence(2 * RECORD, 19);
    let stored = store.put_bytes(&bytes).unwrap();
    truncate(&store.blob_path(&stored.digest), record_offset(1));
    let again = store.put_bytes(&bytes).unwrap();
    assert!(!again.already_present);
    assert_eq!(store.read_to_vec(&stored.digest).unwrap(), bytes);
}
