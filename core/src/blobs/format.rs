//! The on-disk format of one blob file (version 1).
//!
//! ```text
//! file    = header record* final-record
//! header  = magic "TNDMBLOB" | version u16 | record_size u32 | file_id [16]
//!           | plaintext_size u64 | sha256 [32] | nonce [12] | tag [16]        (98 bytes)
//! record  = nonce [12] | file_id [16] | index u64 | flags u8 | ciphertext | tag [16]
//! ```
//! Integers are big-endian. The header tag is AES-256-GCM over an empty plaintext with the
//! 70 header bytes before the nonce as associated data. Each record is AES-256-GCM over its
//! plaintext with `file_id | index | flags` as associated data, so a record only verifies
//! in its own file, at its own position, with its own final flag. Every record but the last
//! holds exactly `record_size` bytes; the last (flag bit 0 set) holds the remainder, which
//! may be empty. Because the record header is authenticated, a record found at the wrong
//! position can be told apart from a corrupted one.

use ring::aead::{self, Aad, LessSafeKey, Nonce};

use super::Digest;

/// Marks a Tandem blob file.
pub(crate) const MAGIC: [u8; 8] = *b"TNDMBLOB";
/// The only format version this build writes and reads.
pub(crate) const VERSION: u16 = 1;
/// Plaintext bytes per record written by this build.
pub(crate) const RECORD_SIZE: u32 = 64 * 1024;
/// Bounds on a record size accepted when reading, so memory stays flat.
const MIN_RECORD_SIZE: u32 = 1024;
const MAX_RECORD_SIZE: u32 = 1024 * 1024;

pub(crate) const NONCE_LEN: usize = aead::NONCE_LEN;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const FILE_ID_LEN: usize = 16;

/// Header bytes covered by the header tag.
const HEADER_SIGNED_LEN: usize = 8 + 2 + 4 + FILE_ID_LEN + 8 + 32;
/// Total header length.
pub(crate) const HEADER_LEN: usize = HEADER_SIGNED_LEN + NONCE_LEN + TAG_LEN;

/// Record header: nonce, then the authenticated `file_id | index | flags`.
pub(crate) const RECORD_HEADER_LEN: usize = NONCE_LEN + FILE_ID_LEN + 8 + 1;
/// Bytes a record adds around its plaintext.
pub(crate) const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + TAG_LEN;
const FLAG_FINAL: u8 = 1;

/// A per-file random id that ties records to their file.
pub(crate) type FileId = [u8; FILE_ID_LEN];

/// The parsed, authenticated file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub record_size: u32,
    pub file_id: FileId,
    pub plaintext_size: u64,
    pub digest: Digest,
}

/// Why a header could not be accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Not our magic, a bad tag or impossible fields.
    Tampered,
    /// A format version this build does not know.
    UnsupportedVersion(u16),
}

impl FileHeader {
    /// Encodes and authenticates the header under `key` with a fresh `nonce`.
    pub fn seal(&self, key: &LessSafeKey, nonce: [u8; NONCE_LEN]) -> Option<[u8; HEADER_LEN]> {
        let mut out = [0u8; HEADER_LEN];
        let (signed, rest) = out.split_at_mut(HEADER_SIGNED_LEN);
        let mut w = Cursor(&mut *signed);
        w.put(&MAGIC);
        w.put(&VERSION.to_be_bytes());
        w.put(&self.record_size.to_be_bytes());
        w.put(&self.file_id);
        w.put(&self.plaintext_size.to_be_bytes());
        w.put(self.digest.as_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*signed),
                &mut [],
            )
            .ok()?;
        let (nonce_part, tag_part) = rest.split_at_mut(NONCE_LEN);
        nonce_part.copy_from_slice(&nonce);
        tag_part.copy_from_slice(tag.as_ref());
        Some(out)
    }

    /// Parses and authenticates a header.
    pub fn open(bytes: &[u8; HEADER_LEN], key: &LessSafeKey) -> Result<Self, HeaderProblem> {
        let mut r = Reader(bytes);
        if r.take::<8>() != MAGIC {
            return Err(HeaderProblem::Tampered);
        }
        let version = u16::from_be_bytes(r.take());
        if version != VERSION {
            return Err(HeaderProblem::UnsupportedVersion(version));
        }
        let record_size = u32::from_be_bytes(r.take());
        let file_id = r.take::<FILE_ID_LEN>();
        let plaintext_size = u64::from_be_bytes(r.take());
        let digest = Digest(r.take());
        let nonce = r.take::<NONCE_LEN>();
        let mut tag = r.take::<TAG_LEN>();
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&bytes[..HEADER_SIGNED_LEN]),
            &mut tag,
        )
        .map_err(|_| HeaderProblem::Tampered)?;
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&record_size) {
            return Err(HeaderProblem::Tampered);
        }
        let header = Self {
            record_size,
            file_id,
            plaintext_size,
            digest,
        };
        header.file_len().ok_or(HeaderProblem::Tampered)?;
        Ok(header)
    }

    /// How many records the file holds: full ones plus one final, possibly empty, record.
    pub fn record_count(&self) -> u64 {
        self.plaintext_size / u64::from(self.record_size) + 1
    }

    /// Plaintext length of the record with this index.
    pub fn record_len(&self, index: u64) -> usize {
        if index.saturating_add(1) >= self.record_count() {
            (self.plaintext_size % u64::from(self.record_size)) as usize
        } else {
            self.record_size as usize
        }
    }

    /// The exact length of a well-formed file with this header; `None` on overflow.
    pub fn file_len(&self) -> Option<u64> {
        (HEADER_LEN as u64)
            .checked_add(self.plaintext_size)?
            .checked_add(self.record_count().checked_mul(RECORD_OVERHEAD as u64)?)
    }
}

/// The header in front of each record's ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub nonce: [u8; NONCE_LEN],
    pub file_id: FileId,
    pub index: u64,
    pub flags: u8,
}

impl RecordHeader {
    /// A record of this file at `index`.
    pub fn new(nonce: [u8; NONCE_LEN], file_id: FileId, index: u64, is_final: bool) -> Self {
        Self {
            nonce,
            file_id,
            index,
            flags: if is_final { FLAG_FINAL } else { 0 },
        }
    }

    /// Whether the record says it is the last one.
    pub fn is_final(&self) -> bool {
        self.flags == FLAG_FINAL
    }

    /// Writes the header; `out` must be `RECORD_HEADER_LEN` long.
    pub fn encode(&self, out: &mut [u8; RECORD_HEADER_LEN]) {
        let mut w = Cursor(out);
        w.put(&self.nonce);
        w.put(&self.file_id);
        w.put(&self.index.to_be_bytes());
        w.put(&[self.flags]);
    }

    /// Reads a header (not yet authenticated).
    pub fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Self {
        let mut r = Reader(bytes);
        Self {
            nonce: r.take(),
            file_id: r.take(),
            index: u64::from_be_bytes(r.take()),
            flags: r.take::<1>()[0],
        }
    }

    /// The authenticated part: everything after the nonce.
    pub fn associated_data(encoded: &[u8; RECORD_HEADER_LEN]) -> Aad<&[u8]> {
        Aad::from(&encoded[NONCE_LEN..])
    }
}

/// Writes consecutive fields into a fixed buffer whose size the caller sums exactly.
struct Cursor<'a>(&'a mut [u8]);

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let buf = std::mem::take(&mut self.0);
        let (head, tail) = buf.split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = tail;
    }
}

/// Reads consecutive fixed-size fields from a buffer of the matching constant length.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let (head, tail) = self.0.split_at(N);
        out.copy_from_slice(head);
        self.0 = tail;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::{AES_256_GCM, UnboundKey};

    fn key(byte: u8) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[byte; 32]).unwrap())
    }

    fn header(size: u64) -> FileHeader {
        FileHeader {
            record_size: RECORD_SIZE,
            file_id: [7; FILE_ID_LEN],
            plaintext_size: size,
            digest: crate::crypto::sha256(b"x"),
        }
    }

    #[test]
    fn header_round_trips_under_its_key() {
        let h = header(123_456);
        let bytes = h.seal(&key(1), [3; NONCE_LEN]).unwrap();
        assert_eq!(FileHeader::open(&bytes, &key(1)), Ok(h));
    }

    #[test]
    fn header_under_another_key_or_with_a_flipped_bit_is_tampered() {
        let bytes = header(5).seal(&key(1), [3; NONCE_LEN]).unwrap();
        assert_eq!(
            FileHeader::open(&bytes, &key(2)),
            Err(HeaderProblem::Tampered)
        );
        for bit in (0..HEADER_LEN * 8).filter(|b| !(64..80).contains(b)) {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                FileHeader::open(&flipped, &key(1)),
                Err(HeaderProblem::Tampered),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn unknown_version_is_reported_as_such() {
        let mut bytes = header(5).seal(&key(1), [3; NONCE_LEN]).unwrap();
        bytes[9] = 2;
        assert_eq!(
            FileHeader::open(&bytes, &key(1)),
            Err(HeaderProblem::UnsupportedVersion(2))
        );
    }

    #[test]
    fn final_record_holds_the_remainder_even_when_empty() {
        let r = u64::from(RECORD_SIZE);
        assert_eq!(header(0).record_count(), 1);
        assert_eq!(header(0).record_len(0), 0);
        assert_eq!(header(r).record_count(), 2);
        assert_eq!(header(r).record_len(0), RECORD_SIZE as usize);
        assert_eq!(header(r).record_len(1), 0);
        assert_eq!(header(r + 1).record_len(1), 1);
        assert_eq!(
            header(r + 1).file_len(),
            Some(HEADER_LEN as u64 + r + 1 + 2 * RECORD_OVERHEAD as u64)
        );
        assert_eq!(header(u64::MAX).file_len(), None);
    }

    #[test]
    fn record_header_round_trips() {
        let h = RecordHeader::new([1; NONCE_LEN], [2; FILE_ID_LEN], 42, true);
        let mut bytes = [0u8; RECORD_HEADER_LEN];
        h.encode(&mut bytes);
        assert_eq!(RecordHeader::decode(&bytes), h);
        assert!(h.is_final());
    }
}
