//! The spool's file layout: names, sidecars, atomic writes, hashing and the WAV header.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AudioError;

/// Extension of a segment's audio.
pub(super) const WAV_EXT: &str = "wav";
/// Extension of a segment's metadata.
pub(super) const SIDECAR_EXT: &str = "json";
/// Extension of a sidecar being written atomically.
pub(super) const TEMP_EXT: &str = "json.tmp";
/// Format id written into every sidecar, so a later version can tell old spools apart.
pub(super) const SIDECAR_FORMAT: &str = "tandem/audio-segment/v1";
/// Only mono 16-bit PCM is recorded.
pub(super) const CHANNELS: u16 = 1;
/// Bits per sample of every segment.
pub(super) const BITS_PER_SAMPLE: u16 = 16;
/// Bytes of one mono 16-bit frame.
pub(super) const FRAME_BYTES: u64 = 2;
/// Length of the canonical PCM header hound writes for mono 16-bit.
pub(super) const HEADER_LEN: u64 = 44;
/// Largest data chunk a WAV header can describe (RIFF size is data + 36, a u32).
pub(super) const MAX_DATA_BYTES: u64 = (u32::MAX - 36) as u64 & !(FRAME_BYTES - 1);

const PREFIX: &str = "seg-";
const HASH_BUF: usize = 64 * 1024;

/// Identifies a segment across its files: `seg-<recording uuid>-<index>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SegmentKey {
    pub recording_id: String,
    pub index: u32,
}

impl SegmentKey {
    pub fn stem(&self) -> String {
        format!("{PREFIX}{}-{:06}", self.recording_id, self.index)
    }

    pub fn wav_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{WAV_EXT}", self.stem()))
    }

    pub fn sidecar_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{SIDECAR_EXT}", self.stem()))
    }

    fn temp_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{TEMP_EXT}", self.stem()))
    }
}

/// What a spool file name says it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SpoolName {
    Wav(SegmentKey),
    Sidecar(SegmentKey),
    Temp(SegmentKey),
    Unrecognized,
}

/// Classifies a file name; only the exact names this module writes are recognized.
pub(super) fn classify(file_name: &str) -> SpoolName {
    let Some((stem, ext)) = file_name.split_once('.') else {
        return SpoolName::Unrecognized;
    };
    let Some(key) = parse_stem(stem) else {
        return SpoolName::Unrecognized;
    };
    match ext {
        WAV_EXT => SpoolName::Wav(key),
        SIDECAR_EXT => SpoolName::Sidecar(key),
        TEMP_EXT => SpoolName::Temp(key),
        _ => SpoolName::Unrecognized,
    }
}

fn parse_stem(stem: &str) -> Option<SegmentKey> {
    let (recording_id, index) = stem.strip_prefix(PREFIX)?.rsplit_once('-')?;
    let uuid = uuid::Uuid::try_parse(recording_id).ok()?;
    let key = SegmentKey {
        recording_id: uuid.hyphenated().to_string(),
        index: index.parse().ok()?,
    };
    // Only the canonical spelling counts, so two names never map to one segment.
    (key.stem() == stem).then_some(key)
}

/// The lifecycle state recorded in a sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum SidecarState {
    /// Being written, or left open by a crash.
    Open,
    /// Finalized and fsynced; the digest lets recovery detect later changes.
    Closed {
        samples: u64,
        size: u64,
        sha256: String,
        recovered: bool,
        gap_from_ms: Option<i64>,
    },
}

/// The metadata written next to each segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Sidecar {
    pub format: String,
    pub visit_id: String,
    pub recording_id: String,
    pub index: u32,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// Start of the whole recording; segment times derive from it so they never drift.
    pub recording_start_ms: i64,
    /// Offset of the segment's first sample within the recording.
    pub first_sample: u64,
    /// Start of this segment (derived, kept for people reading the spool).
    pub start_ms: i64,
    pub state: SidecarState,
}

impl Sidecar {
    pub fn key(&self) -> SegmentKey {
        SegmentKey {
            recording_id: self.recording_id.clone(),
            index: self.index,
        }
    }

    /// Checks what recovery relies on; the reason never contains personal data.
    pub fn check(&self, key: &SegmentKey) -> Result<(), String> {
        if self.format != SIDECAR_FORMAT {
            return Err(format!("unknown format {:?}", self.format));
        }
        if &self.key() != key {
            return Err("recording id or index differs from the file name".into());
        }
        if self.sample_rate == 0 || self.sample_rate > super::MAX_SAMPLE_RATE {
            return Err(format!("sample rate {} out of range", self.sample_rate));
        }
        if self.channels != CHANNELS || self.bits_per_sample != BITS_PER_SAMPLE {
            return Err("not 16-bit mono".into());
        }
        if ms_at(self.recording_start_ms, self.first_sample, self.sample_rate)
            != Some(self.start_ms)
        {
            return Err("start time contradicts recording start and offset".into());
        }
        Ok(())
    }
}

/// Reads and parses a sidecar; `Ok(Err(reason))` for content that is not a valid sidecar.
pub(super) fn read_sidecar(path: &Path) -> Result<Result<Sidecar, String>, AudioError> {
    let bytes = fs::read(path).map_err(io_err("read sidecar", path))?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| format!("unparseable: {e}")))
}

/// Replaces a sidecar atomically: temp file, fsync, rename, directory fsync.
pub(super) fn write_sidecar(dir: &Path, sidecar: &Sidecar) -> Result<(), AudioError> {
    let key = sidecar.key();
    let path = key.sidecar_path(dir);
    let temp = key.temp_path(dir);
    let bytes = serde_json::to_vec_pretty(sidecar).map_err(|source| AudioError::Sidecar {
        path: path.clone(),
        source,
    })?;
    let mut file = File::create(&temp).map_err(io_err("create sidecar", &temp))?;
    file.write_all(&bytes)
        .map_err(io_err("write sidecar", &temp))?;
    file.sync_all().map_err(io_err("sync sidecar", &temp))?;
    drop(file);
    fs::rename(&temp, &path).map_err(io_err("rename sidecar into", &path))?;
    sync_dir(dir)
}

/// Makes renames and new files in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), AudioError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync spool directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes a file, treating "already gone" as done.
pub(super) fn remove_if_exists(path: &Path) -> Result<(), AudioError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(AudioError::Io {
            action: "remove spool file",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// SHA-256 and size of a file, streamed so a segment is never held in memory.
pub(super) fn digest_file(path: &Path) -> Result<([u8; 32], u64), AudioError> {
    let mut file = File::open(path).map_err(io_err("open segment to hash", path))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; HASH_BUF];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read segment to hash", path)(e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        ctx.update(chunk);
        size += chunk.len() as u64;
    }
    let mut sha = [0u8; 32];
    sha.copy_from_slice(ctx.finish().as_ref());
    Ok((sha, size))
}

/// The exact 44-byte header hound writes for 16-bit mono PCM with `data_bytes` of samples.
pub(super) fn wav_header(sample_rate: u32, data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = CHANNELS * BITS_PER_SAMPLE / 8;
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &data_bytes.saturating_add(36).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &CHANNELS.to_le_bytes(),
        &sample_rate.to_le_bytes(),
        &sample_rate
            .saturating_mul(u32::from(block_align))
            .to_le_bytes(),
        &block_align.to_le_bytes(),
        &BITS_PER_SAMPLE.to_le_bytes(),
        b"data",
        &data_bytes.to_le_bytes(),
    ];
    let mut header = [0u8; HEADER_LEN as usize];
    let mut at = 0;
    for field in fields {
        if let Some(slot) = header.get_mut(at..at + field.len()) {
            slot.copy_from_slice(field);
        }
        at += field.len();
    }
    header
}

/// Anchored time of sample `offset` of a recording; `None` if it overflows `i64`.
pub(super) fn ms_at(recording_start_ms: i64, offset: u64, sample_rate: u32) -> Option<i64> {
    let rate = u128::from(sample_rate);
    if rate == 0 {
        return None;
    }
    let elapsed = i64::try_from(u128::from(offset) * 1000 / rate).ok()?;
    recording_start_ms.checked_add(elapsed)
}

/// Maps an I/O error to [`AudioError::Io`] naming the action and path.
pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AudioError {
    let path = path.to_path_buf();
    move |source| AudioError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_segment_names_are_recognized() {
        let key = SegmentKey {
            recording_id: uuid::Uuid::now_v7().hyphenated().to_string(),
            index: 7,
        };
        let stem = key.stem();
        assert_eq!(
            classify(&format!("{stem}.wav")),
            SpoolName::Wav(key.clone())
        );
        assert_eq!(
            classify(&format!("{stem}.json")),
            SpoolName::Sidecar(key.clone())
        );
        assert_eq!(
            classify(&format!("{stem}.json.tmp")),
            SpoolName::Temp(key.clone())
        );
        assert_eq!(classify(&format!("{stem}.mp3")), SpoolName::Unrecognized);
        let padded = stem.replace("-000007", "-0000007");
        assert_eq!(classify(&format!("{padded}.wav")), SpoolName::Unrecognized);
        assert_eq!(classify("seg-nope-000001.wav"), SpoolName::Unrecognized);
        assert_eq!(classify("notes.txt"), SpoolName::Unrecognized);
    }

    #[test]
    fn segment_times_tile_without_drift() {
        // 44.1 kHz does not divide into ms: end of one segment is the start of the next.
        let start = 1_700_000_000_000;
        assert_eq!(ms_at(start, 44_100 * 60, 44_100), Some(start + 60_000));
        assert_eq!(ms_at(start, 441, 44_100), Some(start + 10));
        assert_eq!(ms_at(start, 440, 44_100), Some(start + 9));
        assert_eq!(ms_at(i64::MAX, 16_000, 16_000), None);
        assert_eq!(ms_at(start, 1, 0), None);
    }
}
