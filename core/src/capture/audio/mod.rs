//! Continuous visit audio, spooled as crash-safe WAV segments (rule V07).
//!
//! The platform shell pushes 16-bit mono PCM from check-in to check-out; [`AudioRecorder`]
//! writes it with `hound` into segments of the policy length (default 60 s). Every closed
//! segment except a recording's last holds exactly `segment_samples` samples, so segment
//! times tile the recording without drift. The caller stores each [`ClosedSegment`] in the
//! blob store, chains its event, then calls [`ClosedSegment::remove_spool_file`].
//!
//! # Crash safety
//! A phone process can be killed at any instant, so the spool is always in a state that
//! [`recover`] can finish:
//! - a segment's JSON sidecar (visit, recording, index, sample rate, start time) is written
//!   atomically (temp file, fsync, rename, directory fsync) *before* its WAV exists;
//! - the open WAV's header is rewritten and buffered samples handed to the OS every
//!   `flush_interval_ms` of audio (default 1 s). A killed process therefore loses at most
//!   the samples pushed since the last flush, and never more than the 8 KiB write buffer
//!   (256 ms at 16 kHz), because full buffers reach the file by themselves;
//! - the next segment is opened before the previous one is closed, so while a recording
//!   runs there is always an open segment on disk and a crash can never hide its gap;
//! - a closed segment is finalized, fsynced and hashed, and its sidecar marked closed,
//!   before it is returned.
//!
//! [`recover`] (run at the next start, before any recorder) repairs each segment left open
//! to the file's real data length and returns it with the [`Gap`] the caller must record.
//!
//! # Cost
//! Measured on the 2-core dev VM (release build; 60 min of 16 kHz audio in 20 ms chunks,
//! segments removed as they close): 0.45–2.0 s in all with a header rewrite every 1 s,
//! 1.0–2.5 s when rewriting after every chunk (about +3 µs a chunk). The push that closes
//! a segment fsyncs, hashes and renames, taking 10–70 ms, so the shell should push from a
//! worker thread, not from the real-time audio callback.
//!
//! # Confidentiality
//! Recorded speech is personal data. `spool_dir` must be in app-private storage (Android
//! `Context.getNoBackupFilesDir()`, iOS Application Support excluded from backup, with file
//! protection). It holds at most the open segment (two for an instant at a boundary) plus
//! closed segments the caller has not yet moved into the encrypted blob store; nothing here
//! is encrypted, which is why segments are short and removed as soon as they are stored.
//! Sidecars hold the opaque visit id only, file names a random recording id.

mod recorder;
mod recover;
mod spool;

use std::path::PathBuf;

pub use recorder::AudioRecorder;
pub use recover::{recover, remove_leftover};

/// Highest sample rate accepted; far above any phone microphone, low enough for WAV fields.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// Default segment length of the policy: 60 s.
pub const DEFAULT_SEGMENT_MS: u32 = 60_000;

/// Default interval between header rewrites of the open segment: 1 s of audio.
pub const DEFAULT_FLUSH_INTERVAL_MS: u32 = 1_000;

/// What a recording needs to know when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingParams {
    /// The visit being recorded; opaque to this module, never used in file names.
    pub visit_id: String,
    /// Samples per second of the mono 16-bit stream.
    pub sample_rate: u32,
    /// Segment length of the policy, in milliseconds of audio.
    pub segment_ms: u32,
    /// Audio between header rewrites of the open segment; 0 rewrites after every push.
    pub flush_interval_ms: u32,
    /// Anchored UTC time of the first sample, in milliseconds.
    pub start_ms: i64,
}

impl RecordingParams {
    /// Parameters with the default segment length and flush interval.
    pub fn new(visit_id: impl Into<String>, sample_rate: u32, start_ms: i64) -> Self {
        Self {
            visit_id: visit_id.into(),
            sample_rate,
            segment_ms: DEFAULT_SEGMENT_MS,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            start_ms,
        }
    }
}

/// A finished WAV segment in the spool, ready to be stored and chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSegment {
    /// The visit the audio belongs to.
    pub visit_id: String,
    /// Random id of the recording (UUIDv7); a visit interrupted by a crash has several.
    pub recording_id: String,
    /// Position of the segment in its recording: 0, 1, 2…
    pub index: u32,
    /// The finished WAV file in the spool.
    pub path: PathBuf,
    /// SHA-256 of the WAV file's bytes.
    pub sha256: [u8; 32],
    /// Size of the WAV file in bytes.
    pub size: u64,
    /// Samples per second.
    pub sample_rate: u32,
    /// Anchored UTC time of the segment's first sample, in milliseconds.
    pub start_ms: i64,
    /// Length of the audio in milliseconds (segments of a recording tile exactly).
    pub duration_ms: i64,
    /// Number of samples in the segment.
    pub samples: u64,
    /// True when the segment was left open by a crash and repaired by [`recover`].
    pub recovered: bool,
}

impl ClosedSegment {
    /// The segment's metadata file next to the WAV.
    pub fn sidecar_path(&self) -> PathBuf {
        self.path.with_extension(spool::SIDECAR_EXT)
    }

    /// The SHA-256 as lowercase hex, the form used in manifests.
    pub fn sha256_hex(&self) -> String {
        crate::crypto::to_hex(&self.sha256)
    }

    /// Anchored UTC time just after the segment's last sample, in milliseconds.
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.duration_ms)
    }

    /// Deletes the WAV and then its sidecar once the caller has stored the segment.
    ///
    /// The WAV goes first so that a crash in between leaves only a stale sidecar (reported
    /// by [`recover`]) and never audio without its metadata. Removing twice is not an error.
    pub fn remove_spool_file(&self) -> Result<(), AudioError> {
        spool::remove_if_exists(&self.path)?;
        spool::remove_if_exists(&self.sidecar_path())?;
        if let Some(dir) = self.path.parent() {
            spool::sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Why audio is missing from a visit (V07 requires a reason for every gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The app was killed or crashed while a recording was open.
    AppTerminated,
}

impl GapReason {
    /// The reason as recorded in the visit's event log.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::AppTerminated => "app terminated while recording",
        }
    }
}

/// A stretch of the visit without audio, starting at `from_ms`; the caller records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The visit that lost audio.
    pub visit_id: String,
    /// The recording that was interrupted.
    pub recording_id: String,
    /// Anchored UTC time just after the last sample kept, in milliseconds.
    pub from_ms: i64,
    /// Why the audio stops there.
    pub reason: GapReason,
}

/// A segment found in the spool by [`recover`], with the gap it ends on, if any.
///
/// The gap is returned with its segment until the spool file is removed, so the caller
/// should record the gap in the same step as it stores the segment. A recovered segment may
/// hold zero samples (a crash right after it opened); it then only carries the gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    /// The finished segment, `recovered` set when this call or an earlier one repaired it.
    pub segment: ClosedSegment,
    /// Present on the last segment of a recording that a crash interrupted.
    pub gap: Option<Gap>,
}

/// A spool file that [`recover`] could not account for; it is left in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolAnomaly {
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: AnomalyKind,
}

/// The kinds of spool files [`recover`] reports instead of deleting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnomalyKind {
    /// Not a file this module writes.
    Unrecognized,
    /// A WAV without its sidecar: its visit and start time are unknown.
    WavWithoutSidecar,
    /// A closed segment's sidecar whose WAV was already removed (crash during removal).
    StaleSidecar,
    /// A temporary sidecar left by a crash during an atomic write; the real one is intact.
    LeftoverTemp,
    /// A sidecar that does not parse or contradicts its file name.
    BadSidecar {
        /// What is wrong, without personal data.
        reason: String,
    },
    /// A closed segment whose bytes no longer match the digest recorded when it closed.
    DigestMismatch {
        /// Lowercase hex SHA-256 recorded at close.
        expected: String,
        /// Lowercase hex SHA-256 of the file now.
        actual: String,
    },
    /// An open segment whose data would not fit a WAV header.
    TooLarge,
    /// An open segment still locked by a live recorder; left alone.
    InUse,
}

/// What [`recover`] found in the spool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments to store, ordered by recording and index.
    pub segments: Vec<RecoveredSegment>,
    /// Files left in place for a person or the caller to look at.
    pub anomalies: Vec<SpoolAnomaly>,
}

/// Everything that can go wrong while recording or recovering audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The visit id is empty, so segments could not be attributed.
    #[error("visit id is empty")]
    EmptyVisitId,
    /// The sample rate is zero or implausibly high.
    #[error("sample rate {sample_rate} Hz is outside 1..={MAX_SAMPLE_RATE} Hz")]
    SampleRateOutOfRange {
        /// The rate given.
        sample_rate: u32,
    },
    /// The segment length gives no whole sample or more than a WAV file can hold.
    #[error(
        "segment length {segment_ms} ms at {sample_rate} Hz is empty or too long for a WAV file"
    )]
    SegmentLengthOutOfRange {
        /// The length given.
        segment_ms: u32,
        /// The rate it was combined with.
        sample_rate: u32,
    },
    /// A sample time does not fit UTC milliseconds in an `i64`.
    #[error("sample time overflows i64 milliseconds (start {start_ms} ms)")]
    TimeOutOfRange {
        /// The recording's start time.
        start_ms: i64,
    },
    /// The recording reached `u32::MAX` segments.
    #[error("recording has too many segments")]
    TooManySegments,
    /// An earlier write failed; the open segment is left for [`recover`].
    #[error("recorder stopped after an earlier failure; run recovery on the spool")]
    RecorderBroken,
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// hound refused to write or read a WAV file.
    #[error("{action} {path}: {source}")]
    Wav {
        /// What was being done.
        action: &'static str,
        /// The WAV file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: hound::Error,
    },
    /// A sidecar could not be encoded.
    #[error("encode sidecar {path}: {source}")]
    Sidecar {
        /// The sidecar file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A WAV that recovery repaired does not read back as the segment's format.
    #[error("repaired segment {path} does not read back as 16-bit mono at the sidecar's rate")]
    RepairFailed {
        /// The WAV file.
        path: PathBuf,
    },
}
