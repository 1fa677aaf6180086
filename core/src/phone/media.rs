//! Photos and audio: bytes go to the encrypted blob store (fsynced) before the event that
//! references them is committed, so a recorded item always has its bytes.

use super::lifecycle::{Recorded, record, refuse_if_blocked};
use super::loaded::Loaded;
use super::{Phone, Recording};
use crate::capture::audio::{self, AudioRecorder, ClosedSegment, RecordingParams};
use crate::capture::photo::{PhotoLimits, inspect_photo};
use crate::crypto::Digest;
use crate::model::{DerivedBlob, EventKind, VisitId};
use crate::rules::{self, ActionInput};
use crate::store::{EvidenceItem, EvidenceRole};
use crate::{Error, Result};

/// A photo kept: its original and thumbnail digests and what was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPhoto {
    /// SHA-256 of the photo as taken.
    pub original: Digest,
    /// SHA-256 of its thumbnail.
    pub thumbnail: Digest,
    /// The event and any warnings or flags.
    pub recorded: Recorded,
}

/// Audio between header rewrites of the open segment: 0 rewrites after every push, so a
/// killed app loses nothing it had handed to core.
const AUDIO_FLUSH_INTERVAL_MS: u32 = 0;

impl Phone {
    /// Keeps a photo as taken (JPEG or PNG), with its EXIF time and an upright thumbnail.
    /// A refused photo (not an image, truncated, a decompression bomb, or a blocking rule)
    /// leaves nothing behind.
    pub fn capture_photo(
        &self,
        visit: VisitId,
        bytes: &[u8],
        interior: bool,
    ) -> Result<CapturedPhoto> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        let action = ActionInput::Photo { interior };
        let zone = self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("take a photo")?;
            refuse_if_blocked(rules::check_action(&loaded.context(now), &action))?;
            Ok::<_, Error>(loaded.policy.zone()?)
        })?;
        let photo = inspect_photo(bytes, &PhotoLimits::default(), zone)?;
        let original = self.blobs.put_bytes(bytes)?;
        let thumbnail = self.blobs.put_bytes(&photo.thumbnail.jpeg)?;
        if original.digest != Digest(photo.sha256) {
            return Err(Error::NotReady(
                "the photo changed while it was stored".into(),
            ));
        }
        let media_type = photo.media_type.mime().to_owned();
        let recorded = self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("take a photo")?;
            let violations = refuse_if_blocked(rules::check_action(&loaded.context(now), &action))?;
            tx.add_evidence(
                visit,
                &EvidenceItem {
                    digest: original.digest,
                    size: original.size,
                    media_type: media_type.clone(),
                    role: EvidenceRole::Original,
                },
            )?;
            tx.add_evidence(
                visit,
                &EvidenceItem {
                    digest: thumbnail.digest,
                    size: thumbnail.size,
                    media_type: "image/jpeg".into(),
                    role: EvidenceRole::Thumbnail,
                },
            )?;
            let kind = EventKind::Photo {
                original: original.digest,
                size: original.size,
                media_type,
                width: photo.width,
                height: photo.height,
                exif_time_ms: photo.exif_capture_time.map(|t| t.utc_ms),
                thumbnail: DerivedBlob {
                    digest: thumbnail.digest,
                    size: thumbnail.size,
                    media_type: "image/jpeg".into(),
                },
                interior,
            };
            record(tx, &loaded, kind, now, fix, violations)
        })?;
        Ok(CapturedPhoto {
            original: original.digest,
            thumbnail: thumbnail.digest,
            recorded,
        })
    }

    /// Starts continuous audio for a visit (V07), in segments of the policy's length.
    pub fn start_audio(&self, visit: VisitId, sample_rate: u32) -> Result<()> {
        let now = self.now()?;
        let segment_ms = self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("record audio")?;
            Ok::<_, Error>(loaded.policy.audio_segment_ms)
        })?;
        let mut recording = self.recording();
        if let Some(active) = recording.as_ref() {
            return Err(Error::NotReady(format!(
                "audio is already being recorded for visit {}",
                active.visit
            )));
        }
        let params = RecordingParams {
            segment_ms,
            flush_interval_ms: AUDIO_FLUSH_INTERVAL_MS,
            ..RecordingParams::new(visit.to_string(), sample_rate, now.best_ms())
        };
        let recorder = AudioRecorder::start(&self.spool_dir(), params)?;
        *recording = Some(Recording {
            visit,
            recorder,
            open_since_ms: now.best_ms(),
        });
        Ok(())
    }

    /// Appends 16-bit PCM samples; each segment that fills up is stored and chained.
    /// Returns the segments closed by this call.
    pub fn push_audio(&self, visit: VisitId, samples: &[i16]) -> Result<Vec<Digest>> {
        let mut recording = self.recording();
        let active = recording
            .as_mut()
            .filter(|r| r.visit == visit)
            .ok_or_else(|| {
                Error::NotReady(format!("no audio is being recorded for visit {visit}"))
            })?;
        let closed = active.recorder.push_pcm(samples)?;
        let mut digests = Vec::with_capacity(closed.len());
        for segment in &closed {
            active.open_since_ms = segment.end_ms();
            digests.push(self.store_segment(visit, segment, None)?);
        }
        Ok(digests)
    }

    /// Stops audio for a visit, storing the open segment.
    pub fn stop_audio(&self, visit: VisitId) -> Result<Option<Digest>> {
        let mut recording = self.recording();
        match recording.take() {
            Some(active) if active.visit == visit => match active.recorder.finish()? {
                Some(segment) => Ok(Some(self.store_segment(visit, &segment, None)?)),
                None => Ok(None),
            },
            other => {
                *recording = other;
                Ok(None)
            }
        }
    }

    /// Start of the audio segment being recorded for `visit`, if audio is running.
    pub(super) fn audio_open_since(&self, visit: VisitId) -> Option<i64> {
        self.recording()
            .as_ref()
            .filter(|r| r.visit == visit)
            .map(|r| r.open_since_ms)
    }

    /// Stores a closed segment, chains it (with the gap a crash left, if any) and removes
    /// it from the spool. Idempotent: a segment already chained is only removed.
    fn store_segment(
        &self,
        visit: VisitId,
        segment: &ClosedSegment,
        gap: Option<&audio::Gap>,
    ) -> Result<Digest> {
        let digest = Digest(segment.sha256);
        let now = self.now()?;
        if segment.samples > 0 {
            let file = std::fs::File::open(&segment.path).map_err(|source| Error::Io {
                action: "open audio segment",
                path: segment.path.clone(),
                source,
            })?;
            let stored = self.blobs.put(file)?;
            if stored.digest != digest {
                return Err(Error::NotReady(format!(
                    "audio segment {} changed in the spool before it was stored",
                    segment.path.display()
                )));
            }
        }
        let fix = self.location.current_fix();
        self.store.write(|tx| {
            // A segment is its recording and position, never its bytes and start: a
            // constant tone or silence, with a start time repeated by a clock that
            // restarted, is still a new segment.
            if !tx.claim_audio_segment(visit, &segment.recording_id, segment.index)? {
                return Ok(());
            }
            let record = tx.visit(visit)?.ok_or_else(|| Error::NotFound {
                what: format!("visit {visit}"),
            })?;
            let by = record.visit.agent_id;
            if segment.samples > 0 {
                tx.add_evidence(
                    visit,
                    &EvidenceItem {
                        digest,
                        size: segment.size,
                        media_type: "audio/wav".into(),
                        role: EvidenceRole::Audio,
                    },
                )?;
                let kind = EventKind::AudioSegment {
                    index: segment.index,
                    digest,
                    size: segment.size,
                    start_ms: segment.start_ms,
                    duration_ms: segment.duration_ms,
                    recovered: segment.recovered,
                };
                tx.append_event(visit, kind, now, fix.clone(), by)?;
            }
            if let Some(gap) = gap {
                let kind = EventKind::AudioGap {
                    from_ms: gap.from_ms,
                    until_ms: now.best_ms().max(gap.from_ms),
                    reason: gap.reason.as_str().to_owned(),
                };
                tx.append_event(visit, kind, now, fix, by)?;
            }
            Ok::<_, Error>(())
        })?;
        segment.remove_spool_file()?;
        Ok(digest)
    }

    /// After a crash: repairs, stores and chains every segment left in the spool, with the
    /// gap it leaves (V07). Segments of a visit no longer capturing stay in the spool and
    /// are reported, never dropped.
    pub(super) fn recover_audio(&self) -> Result<()> {
        let spool = self.spool_dir();
        if !spool.exists() {
            return Ok(());
        }
        let report = audio::recover(&spool)?;
        for anomaly in &report.anomalies {
            match anomaly.kind {
                // Only metadata is left: a sidecar write that never committed, or the
                // sidecar of a segment whose WAV went after it was stored and chained.
                audio::AnomalyKind::LeftoverTemp | audio::AnomalyKind::StaleSidecar => {
                    audio::remove_leftover(&anomaly.path)?;
                }
                _ => tracing::warn!(
                    path = %anomaly.path.display(),
                    kind = ?anomaly.kind,
                    "audio spool anomaly left in place"
                ),
            }
        }
        for recovered in &report.segments {
            let segment = &recovered.segment;
            let visit: Option<VisitId> = segment.visit_id.parse().ok();
            let capturing = match visit {
                Some(v) => self
                    .store
                    .read(|tx| Ok::<_, Error>(tx.visit(v)?))?
                    .is_some_and(|r| r.visit.state.is_capturing()),
                None => false,
            };
            match visit {
                Some(visit) if capturing => {
                    self.store_segment(visit, segment, recovered.gap.as_ref())?;
                }
                _ => tracing::warn!(
                    path = %segment.path.display(),
                    "recovered audio segment of a visit not capturing: kept in the spool"
                ),
            }
        }
        Ok(())
    }
}
