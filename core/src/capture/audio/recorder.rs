//! The live side: PCM in, WAV segments out.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavSpec, WavWriter};

use super::spool::{self, SegmentKey, Sidecar, SidecarState, io_err};
use super::{AudioError, ClosedSegment, MAX_SAMPLE_RATE, RecordingParams};

/// Samples handed to hound per write, so its scratch buffer stays small whatever the chunk.
const WRITE_BLOCK: usize = 4096;

/// Records one continuous stream of a visit into WAV segments in a spool directory.
///
/// Dropping a recorder without [`AudioRecorder::finish`] leaves its open segment on disk,
/// and [`super::recover`] treats it as an interruption (a gap).
pub struct AudioRecorder {
    spool_dir: PathBuf,
    recording_id: String,
    sample_rate: u32,
    recording_start_ms: i64,
    segment_samples: u64,
    flush_interval_samples: u64,
    open: OpenSegment,
    pending_byte: Option<u8>,
    broken: bool,
}

impl std::fmt::Debug for AudioRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioRecorder")
            .field("recording_id", &self.recording_id)
            .field("index", &self.open.key.index)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

struct OpenSegment {
    key: SegmentKey,
    wav_path: PathBuf,
    sidecar: Sidecar,
    writer: WavWriter<BufWriter<File>>,
    /// A second handle on the same open file, because hound cannot give its file back for
    /// the fsync at close.
    sync_handle: File,
    samples: u64,
    since_flush: u64,
}

impl AudioRecorder {
    /// Validates `params`, creates `spool_dir` if needed and opens segment 0.
    pub fn start(spool_dir: &Path, params: RecordingParams) -> Result<Self, AudioError> {
        let RecordingParams {
            visit_id,
            sample_rate,
            segment_ms,
            flush_interval_ms,
            start_ms,
        } = params;
        if visit_id.is_empty() {
            return Err(AudioError::EmptyVisitId);
        }
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
            return Err(AudioError::SampleRateOutOfRange { sample_rate });
        }
        let segment_samples = u64::from(sample_rate) * u64::from(segment_ms) / 1000;
        if segment_samples == 0 || segment_samples * spool::FRAME_BYTES > spool::MAX_DATA_BYTES {
            return Err(AudioError::SegmentLengthOutOfRange {
                segment_ms,
                sample_rate,
            });
        }
        // A start time at the very end of i64 would overflow within the first segment.
        if spool::ms_at(start_ms, segment_samples, sample_rate).is_none() {
            return Err(AudioError::TimeOutOfRange { start_ms });
        }
        let flush_interval_samples = u64::from(sample_rate) * u64::from(flush_interval_ms) / 1000;
        fs::create_dir_all(spool_dir).map_err(io_err("create spool directory", spool_dir))?;
        let recording_id = uuid::Uuid::now_v7().hyphenated().to_string();
        let sidecar = Sidecar {
            format: spool::SIDECAR_FORMAT.to_owned(),
            visit_id,
            recording_id: recording_id.clone(),
            index: 0,
            sample_rate,
            channels: spool::CHANNELS,
            bits_per_sample: spool::BITS_PER_SAMPLE,
            recording_start_ms: start_ms,
            first_sample: 0,
            start_ms,
            state: SidecarState::Open,
        };
        let open = OpenSegment::create(spool_dir, sidecar)?;
        Ok(Self {
            spool_dir: spool_dir.to_path_buf(),
            recording_id,
            sample_rate,
            recording_start_ms: start_ms,
            segment_samples,
            flush_interval_samples,
            open,
            pending_byte: None,
            broken: false,
        })
    }

    /// The random id of this recording, also in every segment's file name.
    pub fn recording_id(&self) -> &str {
        &self.recording_id
    }

    /// Samples per segment: every closed segment but the last holds exactly this many.
    pub fn segment_samples(&self) -> u64 {
        self.segment_samples
    }

    /// Appends samples; returns the segments that reached their length, finalized.
    ///
    /// After an error the recorder refuses further audio ([`AudioError::RecorderBroken`]);
    /// its open segment stays in the spool for [`super::recover`].
    pub fn push_pcm(&mut self, samples: &[i16]) -> Result<Vec<ClosedSegment>, AudioError> {
        let mut closed = Vec::new();
        self.guarded(|rec| rec.write_samples(samples, &mut closed))?;
        Ok(closed)
    }

    /// Appends little-endian 16-bit samples given as bytes; an odd last byte waits for the
    /// next call (and is dropped by [`AudioRecorder::finish`], being half a sample).
    pub fn push_pcm_le(&mut self, bytes: &[u8]) -> Result<Vec<ClosedSegment>, AudioError> {
        let mut closed = Vec::new();
        self.guarded(|rec| {
            let mut bytes = bytes;
            if let Some(low) = rec.pending_byte.take() {
                match bytes.split_first() {
                    Some((&high, rest)) => {
                        rec.write_samples(&[i16::from_le_bytes([low, high])], &mut closed)?;
                        bytes = rest;
                    }
                    None => rec.pending_byte = Some(low),
                }
            }
            let mut block = [0i16; WRITE_BLOCK];
            while bytes.len() >= 2 {
                let take = (bytes.len() / 2).min(WRITE_BLOCK);
                let (now, later) = bytes.split_at(take * 2);
                for (slot, pair) in block.iter_mut().zip(now.chunks_exact(2)) {
                    if let &[low, high] = pair {
                        *slot = i16::from_le_bytes([low, high]);
                    }
                }
                rec.write_samples(block.get(..take).unwrap_or_default(), &mut closed)?;
                bytes = later;
            }
            if let &[odd] = bytes {
                rec.pending_byte = Some(odd);
            }
            Ok(())
        })?;
        Ok(closed)
    }

    /// Closes the open segment at check-out; `None` when it holds no samples (it is removed).
    pub fn finish(self) -> Result<Option<ClosedSegment>, AudioError> {
        if self.broken {
            return Err(AudioError::RecorderBroken);
        }
        let Self {
            spool_dir, open, ..
        } = self;
        if open.samples == 0 {
            open.discard(&spool_dir)?;
            return Ok(None);
        }
        open.close(&spool_dir).map(Some)
    }

    fn guarded(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), AudioError>,
    ) -> Result<(), AudioError> {
        if self.broken {
            return Err(AudioError::RecorderBroken);
        }
        let result = f(self);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn write_samples(
        &mut self,
        mut samples: &[i16],
        closed: &mut Vec<ClosedSegment>,
    ) -> Result<(), AudioError> {
        while !samples.is_empty() {
            let room = self.segment_samples.saturating_sub(self.open.samples);
            let take = usize::try_from(room)
                .unwrap_or(usize::MAX)
                .min(samples.len());
            let (now, later) = samples.split_at(take);
            for block in now.chunks(WRITE_BLOCK) {
                self.open.write(block)?;
                if self.flush_interval_samples > 0
                    && self.open.since_flush >= self.flush_interval_samples
                {
                    self.open.flush()?;
                }
            }
            samples = later;
            if self.open.samples >= self.segment_samples {
                closed.push(self.rotate()?);
            }
        }
        if self.flush_interval_samples == 0 && self.open.since_flush > 0 {
            self.open.flush()?;
        }
        Ok(())
    }

    /// Opens the next segment before closing the full one, so a crash in between still
    /// leaves an open segment that marks the gap.
    fn rotate(&mut self) -> Result<ClosedSegment, AudioError> {
        self.open.flush()?;
        let index = self
            .open
            .key
            .index
            .checked_add(1)
            .ok_or(AudioError::TooManySegments)?;
        let first_sample = self
            .open
            .sidecar
            .first_sample
            .saturating_add(self.open.samples);
        let ms_at = |offset| spool::ms_at(self.recording_start_ms, offset, self.sample_rate);
        // Checking the next segment's end up front keeps every later time computable.
        let start_ms = ms_at(first_sample.saturating_add(self.segment_samples))
            .and(ms_at(first_sample))
            .ok_or(AudioError::TimeOutOfRange {
                start_ms: self.recording_start_ms,
            })?;
        let sidecar = Sidecar {
            index,
            first_sample,
            start_ms,
            state: SidecarState::Open,
            ..self.open.sidecar.clone()
        };
        let next = OpenSegment::create(&self.spool_dir, sidecar)?;
        let full = std::mem::replace(&mut self.open, next);
        full.close(&self.spool_dir)
    }
}

impl OpenSegment {
    /// Writes the sidecar first, then creates the WAV with its header on disk.
    fn create(dir: &Path, sidecar: Sidecar) -> Result<Self, AudioError> {
        spool::write_sidecar(dir, &sidecar)?;
        let key = sidecar.key();
        let wav_path = key.wav_path(dir);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&wav_path)
            .map_err(io_err("create segment", &wav_path))?;
        // Recovery skips a locked file, so it can never rewrite a segment still recording.
        file.try_lock()
            .map_err(|e| io_err("lock segment", &wav_path)(e.into()))?;
        let sync_handle = file
            .try_clone()
            .map_err(io_err("duplicate segment handle", &wav_path))?;
        let spec = WavSpec {
            channels: spool::CHANNELS,
            sample_rate: sidecar.sample_rate,
            bits_per_sample: spool::BITS_PER_SAMPLE,
            sample_format: SampleFormat::Int,
        };
        let writer =
            WavWriter::new(BufWriter::new(file), spec).map_err(|source| AudioError::Wav {
                action: "start segment",
                path: wav_path.clone(),
                source,
            })?;
        let mut segment = Self {
            key,
            wav_path,
            sidecar,
            writer,
            sync_handle,
            samples: 0,
            since_flush: 0,
        };
        segment.flush()?;
        spool::sync_dir(dir)?;
        Ok(segment)
    }

    fn write(&mut self, block: &[i16]) -> Result<(), AudioError> {
        let n = u32::try_from(block.len()).unwrap_or(u32::MAX);
        let mut sw = self.writer.get_i16_writer(n);
        for &s in block.iter().take(n as usize) {
            sw.write_sample(s);
        }
        sw.flush().map_err(|source| AudioError::Wav {
            action: "write samples to",
            path: self.wav_path.clone(),
            source,
        })?;
        self.samples += u64::from(n);
        self.since_flush += u64::from(n);
        Ok(())
    }

    /// Rewrites the header for the samples so far and hands buffered data to the OS.
    fn flush(&mut self) -> Result<(), AudioError> {
        self.writer.flush().map_err(|source| AudioError::Wav {
            action: "flush segment",
            path: self.wav_path.clone(),
            source,
        })?;
        self.since_flush = 0;
        Ok(())
    }

    /// Finalizes, fsyncs and hashes the WAV, then marks its sidecar closed.
    fn close(self, dir: &Path) -> Result<ClosedSegment, AudioError> {
        let Self {
            wav_path,
            mut sidecar,
            writer,
            sync_handle,
            samples,
            ..
        } = self;
        writer.finalize().map_err(|source| AudioError::Wav {
            action: "finalize segment",
            path: wav_path.clone(),
            source,
        })?;
        sync_handle
            .sync_all()
            .map_err(io_err("sync segment", &wav_path))?;
        drop(sync_handle);
        let (sha256, size) = spool::digest_file(&wav_path)?;
        sidecar.state = SidecarState::Closed {
            samples,
            size,
            sha256: crate::crypto::to_hex(&sha256),
            recovered: false,
            gap_from_ms: None,
        };
        spool::write_sidecar(dir, &sidecar)?;
        closed_segment(&sidecar, wav_path, sha256, size, samples, false)
    }

    /// Removes an empty segment at finish: it holds no audio, only our own metadata.
    fn discard(self, dir: &Path) -> Result<(), AudioError> {
        let Self {
            key,
            wav_path,
            writer,
            sync_handle,
            ..
        } = self;
        drop(writer);
        drop(sync_handle);
        spool::remove_if_exists(&wav_path)?;
        spool::remove_if_exists(&key.sidecar_path(dir))?;
        spool::sync_dir(dir)
    }
}

/// Builds the public view of a closed segment from its sidecar.
pub(super) fn closed_segment(
    sidecar: &Sidecar,
    path: PathBuf,
    sha256: [u8; 32],
    size: u64,
    samples: u64,
    recovered: bool,
) -> Result<ClosedSegment, AudioError> {
    let time_error = AudioError::TimeOutOfRange {
        start_ms: sidecar.recording_start_ms,
    };
    let end = sidecar
        .first_sample
        .checked_add(samples)
        .and_then(|last| spool::ms_at(sidecar.recording_start_ms, last, sidecar.sample_rate))
        .ok_or(time_error)?;
    Ok(ClosedSegment {
        visit_id: sidecar.visit_id.clone(),
        recording_id: sidecar.recording_id.clone(),
        index: sidecar.index,
        path,
        sha256,
        size,
        sample_rate: sidecar.sample_rate,
        start_ms: sidecar.start_ms,
        duration_ms: end.saturating_sub(sidecar.start_ms),
        samples,
        recovered,
    })
}
