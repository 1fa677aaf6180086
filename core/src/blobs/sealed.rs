//! The blob file format for a store other than this folder: the server seals each blob it
//! keeps (in its folder or a bucket) under that blob's own key, in exactly the phone's
//! format (`format.rs`), and opens it again as a stream or record by record for `Range`
//! reads. The plaintext's size and digest are known before sealing (the server checked the
//! upload against its address), so the header is written first and nothing is hashed
//! again: sealing is one pass of AES-GCM.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::format::{
    FileHeader, HEADER_LEN, RECORD_HEADER_LEN, RECORD_OVERHEAD, RECORD_SIZE, RecordHeader,
};
use super::reader::{BlobReader, open_header};
use super::writer::{CHUNK_BYTES, Chunk, ChunkSealer, fill};
use super::{BlobError, BlobKey, Digest, FilePart};

/// Bytes of the sealed header in front of the first record.
pub const SEALED_HEADER_LEN: usize = HEADER_LEN;

/// Seals and opens blobs under one key.
pub struct Sealer {
    key: Arc<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer under `key` (which is wiped when dropped here).
    pub fn new(key: BlobKey) -> Result<Self, BlobError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| BlobError::Seal)?;
        Ok(Self {
            key: Arc::new(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
        })
    }

    /// The sealed length of a blob of `plaintext` bytes sealed by this build.
    pub fn sealed_len(plaintext: u64) -> u64 {
        header_for(plaintext, Digest([0; 32]))
            .file_len()
            .unwrap_or(u64::MAX)
    }

    /// The plaintext length of a blob sealed by this build into `sealed` bytes; `None` when
    /// no plaintext length seals to exactly that many.
    pub fn plaintext_len(sealed: u64) -> Option<u64> {
        let slot = u64::from(RECORD_SIZE) + RECORD_OVERHEAD as u64;
        let body = sealed.checked_sub(HEADER_LEN as u64)?;
        // Every record but the final one is full; the final one holds less than a record.
        let full = body.checked_sub(RECORD_OVERHEAD as u64)? / slot;
        let plain = body - (full + 1) * RECORD_OVERHEAD as u64;
        (Self::sealed_len(plain) == sealed).then_some(plain)
    }

    /// Seals the `size` bytes `input` yields, whose SHA-256 is `digest`, into `output`;
    /// returns the sealed length. An input that ends early or runs on is an error (and what
    /// was written must be discarded).
    pub fn seal(
        &self,
        digest: Digest,
        size: u64,
        mut input: impl Read,
        mut output: impl Write,
    ) -> Result<u64, BlobError> {
        let file_id = self.random()?;
        let header = FileHeader {
            file_id,
            ..header_for(size, digest)
        };
        let head = header
            .seal(&self.key, self.random()?)
            .ok_or(BlobError::Seal)?;
        output.write_all(&head).map_err(BlobError::Input)?;
        let sealer = ChunkSealer {
            key: &self.key,
            rng: &self.rng,
            file_id,
        };
        let mut read = 0u64;
        let mut written = HEADER_LEN as u64;
        let mut chunk = Chunk::new(vec![0u8; CHUNK_BYTES], 0);
        loop {
            fill(&mut input, &mut chunk, &mut read)?;
            if read > size {
                return Err(BlobError::Input(std::io::Error::other(format!(
                    "blob {digest} runs past its {size} bytes"
                ))));
            }
            if chunk.ends_blob && read < size {
                return Err(BlobError::Input(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("blob {digest} ends after {read} of its {size} bytes"),
                )));
            }
            sealer.seal(&mut chunk)?;
            let encoded = chunk.encoded_len();
            output
                .write_all(&chunk.buf[..encoded])
                .map_err(BlobError::Input)?;
            written += encoded as u64;
            if chunk.ends_blob {
                break;
            }
            let next = chunk.first_index + chunk.records as u64;
            let buf = std::mem::take(&mut chunk.buf);
            chunk = Chunk::new(buf, next);
        }
        output.flush().map_err(BlobError::Input)?;
        Ok(written)
    }

    /// Starts sealing the blob `digest` of `size` bytes piece by piece (a server's upload
    /// arriving chunk by chunk): its sealed header, to be written first, and its layout,
    /// which seals the records in turn ([`SealedLayout::seal_record`]).
    pub fn begin(
        &self,
        digest: Digest,
        size: u64,
    ) -> Result<([u8; HEADER_LEN], SealedLayout), BlobError> {
        let header = FileHeader {
            file_id: self.random()?,
            ..header_for(size, digest)
        };
        let head = header
            .seal(&self.key, self.random()?)
            .ok_or(BlobError::Seal)?;
        Ok((
            head,
            SealedLayout {
                header,
                key: Arc::clone(&self.key),
            },
        ))
    }

    /// The sealed bytes in front of the plaintext offset `offset` rounded down to a whole
    /// record: the header and the full records before it (where a blob sealed by this
    /// build is resumed from).
    pub fn sealed_prefix_len(offset: u64) -> u64 {
        HEADER_LEN as u64
            + (offset / u64::from(RECORD_SIZE)) * (u64::from(RECORD_SIZE) + RECORD_OVERHEAD as u64)
    }

    /// Plaintext bytes per record of blobs sealed by this build.
    pub const RECORD_SIZE: u64 = RECORD_SIZE as u64;

    /// A streaming reader of the blob `digest` sealed in `source` (`stored_len` bytes in
    /// all; `label` names it in errors): it authenticates every record and checks the
    /// digest before handing out the last bytes.
    pub fn reader<R: Read>(
        &self,
        digest: Digest,
        source: R,
        stored_len: u64,
        label: PathBuf,
    ) -> Result<BlobReader<R>, BlobError> {
        BlobReader::over(source, stored_len, label, digest, Arc::clone(&self.key))
    }

    /// Authenticates the header of the blob `digest` (its first [`SEALED_HEADER_LEN`]
    /// bytes), for reading parts of it.
    pub fn layout(&self, digest: Digest, head: &[u8]) -> Result<SealedLayout, BlobError> {
        let raw: &[u8; HEADER_LEN] = head.try_into().map_err(|_| BlobError::Truncated {
            digest,
            expected: HEADER_LEN as u64,
            actual: head.len() as u64,
        })?;
        let header = open_header(raw, &self.key, digest)?;
        Ok(SealedLayout {
            header,
            key: Arc::clone(&self.key),
        })
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], BlobError> {
        let mut out = [0u8; N];
        self.rng.fill(&mut out).map_err(|_| BlobError::Random)?;
        Ok(out)
    }
}

fn header_for(plaintext: u64, digest: Digest) -> FileHeader {
    FileHeader {
        record_size: RECORD_SIZE,
        file_id: [0; super::format::FILE_ID_LEN],
        plaintext_size: plaintext,
        digest,
    }
}

/// Which sealed bytes hold a range of a blob's plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpan {
    /// The sealed bytes to fetch: whole records.
    pub sealed: Range<u64>,
    /// The index of the first of them.
    pub first_record: u64,
    /// Plaintext bytes of the first record before the range starts.
    pub skip: u64,
}

/// A sealed blob's authenticated header: where its records lie, and opening them one by
/// one (for `Range` reads, which cannot check the whole blob's digest but check every
/// record they return).
pub struct SealedLayout {
    header: FileHeader,
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for SealedLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedLayout")
            .field("plaintext_size", &self.header.plaintext_size)
            .finish_non_exhaustive()
    }
}

impl SealedLayout {
    /// The plaintext's length.
    pub fn plaintext_size(&self) -> u64 {
        self.header.plaintext_size
    }

    /// The sealed length of the whole blob.
    pub fn sealed_len(&self) -> u64 {
        self.header.file_len().unwrap_or(u64::MAX)
    }

    fn slot(&self) -> u64 {
        u64::from(self.header.record_size) + RECORD_OVERHEAD as u64
    }

    /// The records holding `plain` (clamped to the blob).
    pub fn span(&self, plain: Range<u64>) -> RecordSpan {
        let size = self.header.plaintext_size;
        let start = plain.start.min(size);
        let end = plain.end.clamp(start, size);
        let record = u64::from(self.header.record_size);
        let first = start / record;
        // The record holding the last byte; an empty range still reads one record.
        let last = (end.max(start + 1) - 1) / record;
        let last = last.min(self.header.record_count() - 1).max(first);
        let sealed_start = HEADER_LEN as u64 + first * self.slot();
        let sealed_end = (HEADER_LEN as u64 + (last + 1) * self.slot()).min(self.sealed_len());
        RecordSpan {
            sealed: sealed_start..sealed_end,
            first_record: first,
            skip: start - first * record,
        }
    }

    /// The sealed length of record `index`.
    pub fn record_sealed_len(&self, index: u64) -> usize {
        self.header.record_len(index) + RECORD_OVERHEAD
    }

    /// Seals record `index` of the blob (`plain` holds exactly its plaintext: a full
    /// record, or the final remainder) and appends its sealed bytes to `out`.
    pub fn seal_record(
        &self,
        index: u64,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BlobError> {
        let count = self.header.record_count();
        if index >= count || plain.len() != self.header.record_len(index) {
            return Err(BlobError::Input(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "record {index} of blob {} cannot hold {} bytes",
                    self.header.digest,
                    plain.len()
                ),
            )));
        }
        let mut nonce = [0u8; super::format::NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| BlobError::Random)?;
        let mut head = [0u8; RECORD_HEADER_LEN];
        RecordHeader::new(nonce, self.header.file_id, index, index + 1 == count).encode(&mut head);
        out.extend_from_slice(&head);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                RecordHeader::associated_data(&head),
                &mut out[start..],
            )
            .map_err(|_| BlobError::Seal)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens record `index` in place (`raw` is exactly [`Self::record_sealed_len`] bytes as
    /// stored) and returns its plaintext.
    pub fn open_record<'a>(&self, index: u64, raw: &'a mut [u8]) -> Result<&'a [u8], BlobError> {
        let digest = self.header.digest;
        let tampered = BlobError::Tampered {
            digest,
            part: FilePart::Record(index),
        };
        if raw.len() != self.record_sealed_len(index) {
            return Err(tampered);
        }
        let (head, body) = raw.split_at_mut(RECORD_HEADER_LEN);
        let head: &[u8; RECORD_HEADER_LEN] = (&*head).try_into().map_err(|_| BlobError::Seal)?;
        let record = RecordHeader::decode(head);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(record.nonce),
                RecordHeader::associated_data(head),
                body,
            )
            .map_err(|_| BlobError::Tampered {
                digest,
                part: FilePart::Record(index),
            })?;
        if record.file_id != self.header.file_id {
            return Err(BlobError::ForeignRecord {
                digest,
                record: index,
            });
        }
        if record.index != index {
            return Err(BlobError::RecordsReordered {
                digest,
                expected: index,
                found: record.index,
            });
        }
        if record.is_final() != (index + 1 == self.header.record_count()) {
            return Err(tampered);
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(BlobKey::from_bytes([byte; 32])).unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn sealed(s: &Sealer, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = s
            .seal(sha256(plain), plain.len() as u64, plain, &mut out)
            .unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    #[test]
    fn lengths_round_trip_at_every_record_boundary() {
        let record = u64::from(RECORD_SIZE);
        for plain in [
            0,
            1,
            record - 1,
            record,
            record + 1,
            16 * record,
            40 * record + 3,
        ] {
            let sealed = Sealer::sealed_len(plain);
            assert_eq!(Sealer::plaintext_len(sealed), Some(plain), "{plain}");
        }
        // A full final record cannot be: between one record's blob and the next size up
        // lie lengths no plaintext seals to.
        let (below, above) = (Sealer::sealed_len(record - 1), Sealer::sealed_len(record));
        assert_eq!(above - below, 1 + RECORD_OVERHEAD as u64);
        for gap in below + 1..above {
            assert_eq!(Sealer::plaintext_len(gap), None, "{gap}");
        }
        assert_eq!(Sealer::plaintext_len(3), None);
    }

    #[test]
    fn a_blob_sealed_record_by_record_reads_back_as_one_sealed_whole() {
        let s = sealer(4);
        let record = RECORD_SIZE as usize;
        for len in [0, 10, record, 3 * record + 17] {
            let plain = sample(len);
            let digest = sha256(&plain);
            let (head, layout) = s.begin(digest, len as u64).unwrap();
            let mut bytes = head.to_vec();
            let mut at = 0;
            for index in 0..=(len / record) as u64 {
                let n = layout.record_sealed_len(index) - RECORD_OVERHEAD;
                layout
                    .seal_record(index, &plain[at..at + n], &mut bytes)
                    .unwrap();
                at += n;
                if index < (len / record) as u64 {
                    assert_eq!(
                        bytes.len() as u64,
                        Sealer::sealed_prefix_len(at as u64),
                        "{len}"
                    );
                }
            }
            assert_eq!(bytes.len() as u64, Sealer::sealed_len(len as u64), "{len}");
            let mut back = Vec::new();
            s.reader(digest, &bytes[..], bytes.len() as u64, "t".into())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, plain, "{len}");
        }
        // A record of the wrong length, or past the end, is refused.
        let (_, layout) = s.begin(sha256(b"abc"), 3).unwrap();
        assert!(layout.seal_record(0, b"ab", &mut Vec::new()).is_err());
        assert!(layout.seal_record(1, b"", &mut Vec::new()).is_err());
    }

    #[test]
    fn a_sealed_blob_reads_back_whole_and_holds_no_plaintext() {
        let s = sealer(1);
        for len in [0, 10, 65_536, 65_536 * 17 + 5] {
            let plain = sample(len);
            let bytes = sealed(&s, &plain);
            assert_eq!(bytes.len() as u64, Sealer::sealed_len(len as u64));
            if len >= 64 {
                assert!(!bytes.windows(64).any(|w| w == &plain[..64]));
            }
            let mut reader = s
                .reader(sha256(&plain), &bytes[..], bytes.len() as u64, "t".into())
                .unwrap();
            let mut back = Vec::new();
            reader.read_to_end(&mut back).unwrap();
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn another_key_or_a_flipped_bit_is_refused() {
        // Threat: an insider with the bucket but not the key, or a corrupting disk.
        let plain = sample(200_000);
        let mut bytes = sealed(&sealer(1), &plain);
        let digest = sha256(&plain);
        let other = sealer(2);
        assert!(matches!(
            other.reader(digest, &bytes[..], bytes.len() as u64, "t".into()),
            Err(BlobError::Tampered { .. })
        ));
        bytes[HEADER_LEN + 70_000] ^= 1;
        let mut reader = sealer(1)
            .reader(digest, &bytes[..], bytes.len() as u64, "t".into())
            .unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(
            reader.recover_error(err),
            BlobError::Tampered {
                part: FilePart::Record(1),
                ..
            }
        ));
    }

    #[test]
    fn leaving_the_digest_to_the_caller_still_authenticates_every_record() {
        // Threat: a disk or insider altering sealed bytes under an export that skips the
        // second hash.
        let s = sealer(4);
        let plain = sample(65_536 * 3 + 7);
        let digest = sha256(&plain);
        let mut bytes = sealed(&s, &plain);
        let len = bytes.len() as u64;
        let mut back = Vec::new();
        s.reader(digest, &bytes[..], len, "t".into())
            .unwrap()
            .digest_checked_by_caller()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
        bytes[HEADER_LEN + 3 * (65_536 + RECORD_OVERHEAD) + 2] ^= 0x80;
        let mut reader = s
            .reader(digest, &bytes[..], len, "t".into())
            .unwrap()
            .digest_checked_by_caller();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(
            reader.recover_error(err),
            BlobError::Tampered {
                part: FilePart::Record(3),
                ..
            }
        ));
    }

    #[test]
    fn an_input_shorter_or_longer_than_announced_is_refused() {
        let s = sealer(1);
        let plain = sample(100_000);
        let digest = sha256(&plain);
        assert!(s.seal(digest, 100_001, &plain[..], Vec::new()).is_err());
        assert!(s.seal(digest, 99_999, &plain[..], Vec::new()).is_err());
    }

    #[test]
    fn any_range_opens_from_its_records_alone() {
        let s = sealer(3);
        let plain = sample(65_536 * 5 + 100);
        let digest = sha256(&plain);
        let bytes = sealed(&s, &plain);
        let layout = s.layout(digest, &bytes[..SEALED_HEADER_LEN]).unwrap();
        assert_eq!(layout.plaintext_size(), plain.len() as u64);
        for (a, b) in [
            (0, 1),
            (65_535, 65_537),
            (100, 300_000),
            (327_000, 327_780),
            (0, 327_780),
        ] {
            let span = layout.span(a..b);
            let mut out = Vec::new();
            let mut at = span.sealed.start as usize;
            let mut index = span.first_record;
            while at < span.sealed.end as usize {
                let len = layout.record_sealed_len(index);
                let mut raw = bytes[at..at + len].to_vec();
                out.extend_from_slice(layout.open_record(index, &mut raw).unwrap());
                at += len;
                index += 1;
            }
            let skip = span.skip as usize;
            assert_eq!(
                &out[skip..skip + (b - a) as usize],
                &plain[a as usize..b as usize]
            );
        }
        // A record moved to another place is named as such.
        let span = layout.span(65_536..65_537);
        let len = layout.record_sealed_len(0);
        let mut moved = bytes[HEADER_LEN..HEADER_LEN + len].to_vec();
        assert!(matches!(
            layout.open_record(span.first_record, &mut moved),
            Err(BlobError::RecordsReordered { .. })
        ));
        assert!(matches!(
            s.layout(sha256(b"other"), &bytes[..SEALED_HEADER_LEN]),
            Err(BlobError::DigestMismatch { .. })
        ));
    }
}
