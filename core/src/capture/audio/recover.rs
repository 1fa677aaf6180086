//! The restart side: finish what a killed process left in the spool.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::recorder::closed_segment;
use super::spool::{self, Sidecar, SidecarState, SpoolName, io_err};
use super::{
    AnomalyKind, AudioError, Gap, GapReason, RecoveredSegment, RecoveryReport, SpoolAnomaly,
};

/// Finishes every segment a crash left open and lists every segment not yet stored.
///
/// Run it at start, before any [`super::AudioRecorder`] writes to `spool_dir` (segments a
/// live recorder holds are skipped as [`AnomalyKind::InUse`]). Each open segment's WAV is cut
/// back to whole samples, its header rewritten from the real data length and its sidecar
/// (so a header that was never written is rebuilt), fsynced, and returned with
/// `recovered: true`; the last one of each interrupted recording carries the [`Gap`].
/// Closed segments are returned unchanged after their digest is checked. Nothing is deleted:
/// files that cannot be accounted for are listed in [`RecoveryReport::anomalies`].
/// A missing `spool_dir` is an empty spool.
pub fn recover(spool_dir: &Path) -> Result<RecoveryReport, AudioError> {
    let mut report = RecoveryReport::default();
    let entries = match fs::read_dir(spool_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        other => other.map_err(io_err("list spool directory", spool_dir))?,
    };
    let mut wavs = BTreeSet::new();
    let mut sidecar_files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list spool directory", spool_dir))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(io_err("inspect spool entry", &path))?
            .is_file();
        let name = entry.file_name();
        let kind = match name.to_str() {
            Some(name) if is_file => spool::classify(name),
            _ => SpoolName::Unrecognized,
        };
        match kind {
            SpoolName::Wav(key) => {
                wavs.insert(key);
            }
            SpoolName::Sidecar(key) => {
                sidecar_files.insert(key, path);
            }
            SpoolName::Temp(_) => report.anomaly(path, AnomalyKind::LeftoverTemp),
            SpoolName::Unrecognized => report.anomaly(path, AnomalyKind::Unrecognized),
        }
    }

    let mut sidecars = BTreeMap::new();
    for (key, path) in sidecar_files {
        match spool::read_sidecar(&path)?.and_then(|s| s.check(&key).map(|()| s)) {
            Ok(sidecar) => {
                sidecars.insert(key, sidecar);
            }
            Err(reason) => report.anomaly(path, AnomalyKind::BadSidecar { reason }),
        }
    }
    for key in wavs.iter().filter(|k| !sidecars.contains_key(*k)) {
        report.anomaly(key.wav_path(spool_dir), AnomalyKind::WavWithoutSidecar);
    }

    // Only the newest open segment of a recording ends where the audio stopped; an older
    // one is a segment the crash caught between opening its successor and closing it.
    let mut last_open: BTreeMap<String, u32> = BTreeMap::new();
    for sidecar in sidecars.values() {
        if sidecar.state == SidecarState::Open {
            let last = last_open.entry(sidecar.recording_id.clone()).or_default();
            *last = (*last).max(sidecar.index);
        }
    }

    for (key, sidecar) in sidecars {
        let wav = key.wav_path(spool_dir);
        let outcome = match &sidecar.state {
            SidecarState::Open => {
                let ends_recording = last_open.get(&key.recording_id) == Some(&key.index);
                repair_open(spool_dir, sidecar, &wav, ends_recording)?
            }
            SidecarState::Closed { .. } if !wavs.contains(&key) => {
                report.anomaly(key.sidecar_path(spool_dir), AnomalyKind::StaleSidecar);
                continue;
            }
            SidecarState::Closed { .. } => check_closed(&sidecar, &wav)?,
        };
        match outcome {
            Ok(found) => report.segments.push(found),
            Err(kind) => report.anomaly(wav, kind),
        }
    }
    Ok(report)
}

/// Removes a spool file that holds only metadata ([`AnomalyKind::LeftoverTemp`] or
/// [`AnomalyKind::StaleSidecar`], whose segment was stored before its WAV was removed), and
/// makes the removal durable. Never call it for an anomaly that may hold audio.
pub fn remove_leftover(path: &Path) -> Result<(), AudioError> {
    spool::remove_if_exists(path)?;
    match path.parent() {
        Some(dir) => spool::sync_dir(dir),
        None => Ok(()),
    }
}

impl RecoveryReport {
    fn anomaly(&mut self, path: PathBuf, kind: AnomalyKind) {
        self.anomalies.push(SpoolAnomaly { path, kind });
    }
}

type Outcome = Result<RecoveredSegment, AnomalyKind>;

/// Cuts the WAV to whole samples, writes the header the data implies, and closes it.
fn repair_open(
    dir: &Path,
    mut sidecar: Sidecar,
    wav: &Path,
    ends_recording: bool,
) -> Result<Outcome, AudioError> {
    // A crash between writing the sidecar and creating the WAV leaves no file: that is an
    // empty segment, created here so the gap it marks is stored like any other.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(wav)
        .map_err(io_err("open segment to repair", wav))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Err(AnomalyKind::InUse)),
        Err(TryLockError::Error(e)) => return Err(io_err("lock segment", wav)(e)),
    }
    let len = file
        .metadata()
        .map_err(io_err("inspect segment", wav))?
        .len();
    let data_bytes = len.saturating_sub(spool::HEADER_LEN) & !(spool::FRAME_BYTES - 1);
    let Some(data_len) = u32::try_from(data_bytes)
        .ok()
        .filter(|_| data_bytes <= spool::MAX_DATA_BYTES)
    else {
        return Ok(Err(AnomalyKind::TooLarge));
    };
    file.set_len(spool::HEADER_LEN + data_bytes)
        .map_err(io_err("truncate segment", wav))?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&spool::wav_header(sidecar.sample_rate, data_len)))
        .map_err(io_err("rewrite segment header", wav))?;
    file.sync_all().map_err(io_err("sync segment", wav))?;
    drop(file);
    spool::sync_dir(dir)?;

    let samples = data_bytes / spool::FRAME_BYTES;
    check_reads_back(wav, sidecar.sample_rate, samples)?;
    let (sha256, size) = spool::digest_file(wav)?;
    let segment = closed_segment(&sidecar, wav.to_path_buf(), sha256, size, samples, true)?;
    let gap_from_ms = ends_recording.then(|| segment.end_ms());
    sidecar.state = SidecarState::Closed {
        samples,
        size,
        sha256: crate::crypto::to_hex(&sha256),
        recovered: true,
        gap_from_ms,
    };
    spool::write_sidecar(dir, &sidecar)?;
    Ok(Ok(RecoveredSegment {
        gap: gap_from_ms.map(|from_ms| gap(&sidecar, from_ms)),
        segment,
    }))
}

/// Returns a finished segment as it is, provided its bytes are still the ones closed.
fn check_closed(sidecar: &Sidecar, wav: &Path) -> Result<Outcome, AudioError> {
    let SidecarState::Closed {
        samples,
        size: expected_size,
        sha256: expected,
        recovered,
        gap_from_ms,
    } = &sidecar.state
    else {
        return Ok(Err(AnomalyKind::BadSidecar {
            reason: "segment is not closed".into(),
        }));
    };
    let (sha256, size) = spool::digest_file(wav)?;
    let actual = crate::crypto::to_hex(&sha256);
    if &actual != expected || size != *expected_size {
        return Ok(Err(AnomalyKind::DigestMismatch {
            expected: expected.clone(),
            actual,
        }));
    }
    let segment = closed_segment(
        sidecar,
        wav.to_path_buf(),
        sha256,
        size,
        *samples,
        *recovered,
    )?;
    Ok(Ok(RecoveredSegment {
        gap: gap_from_ms.map(|from_ms| gap(sidecar, from_ms)),
        segment,
    }))
}

fn gap(sidecar: &Sidecar, from_ms: i64) -> Gap {
    Gap {
        visit_id: sidecar.visit_id.clone(),
        recording_id: sidecar.recording_id.clone(),
        from_ms,
        reason: GapReason::AppTerminated,
    }
}

/// Proves the repaired file is a WAV any reader accepts, with exactly the samples kept.
fn check_reads_back(wav: &Path, sample_rate: u32, samples: u64) -> Result<(), AudioError> {
    let reader = hound::WavReader::open(wav).map_err(|source| AudioError::Wav {
        action: "read back repaired segment",
        path: wav.to_path_buf(),
        source,
    })?;
    let spec = reader.spec();
    let matches = spec.channels == spool::CHANNELS
        && spec.bits_per_sample == spool::BITS_PER_SAMPLE
        && spec.sample_format == hound::SampleFormat::Int
        && spec.sample_rate == sample_rate
        && u64::from(reader.len()) == samples;
    if matches {
        Ok(())
    } else {
        Err(AudioError::RepairFailed {
            path: wav.to_path_buf(),
        })
    }
}
