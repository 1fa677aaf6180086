//! Capturing evidence from files, as the phone's camera and microphone would hand it to
//! core: photos as taken, audio pushed in 20 ms chunks, notes, identity, disputes.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::model::VisitId;
use tandem_core::phone::{Phone, VisitAction};

use super::device::Device;
use super::error::{FieldError, FieldResult};
use super::output::{Out, recorded_json};

/// Largest photo read: core refuses larger photos anyway, this keeps memory bounded.
const MAX_PHOTO_BYTES: u64 = 64 << 20;
/// Largest audio file read.
const MAX_AUDIO_BYTES: u64 = 1 << 30;
/// Chunks per second pushed to the recorder (20 ms, as a phone's audio callback).
const CHUNKS_PER_SECOND: u32 = 50;

fn read_file(path: &Path, limit: u64) -> FieldResult<Vec<u8>> {
    let file_err = |source| FieldError::File {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(file_err)?.len();
    if size > limit {
        return Err(FieldError::usage(format!(
            "{}: {size} bytes is over the {limit}-byte limit",
            path.display()
        )));
    }
    std::fs::read(path).map_err(file_err)
}

/// Keeps a photo file; returns its digest (hex) for a dispute.
fn take_photo(
    phone: &Phone,
    out: Out,
    visit: VisitId,
    path: &Path,
    interior: bool,
) -> FieldResult<(String, serde_json::Value)> {
    let bytes = read_file(path, MAX_PHOTO_BYTES)?;
    let captured = phone.capture_photo(visit, &bytes, interior)?;
    out.violations(&captured.recorded.violations);
    let mut value = recorded_json(&captured.recorded);
    value["original_sha256"] = json!(captured.original.to_hex());
    value["thumbnail_sha256"] = json!(captured.thumbnail.to_hex());
    Ok((captured.original.to_hex(), value))
}

/// `photo VISIT FILE`.
pub fn photo(
    device: &Device,
    out: Out,
    visit: VisitId,
    path: &Path,
    interior: bool,
) -> FieldResult<()> {
    let (digest, value) = take_photo(&device.phone, out, visit, path, interior)?;
    out.result(&format!("photo kept: sha256 {digest}"), &value)
}

/// `audio VISIT FILE [--rate HZ]`.
pub fn audio(
    device: &Device,
    out: Out,
    visit: VisitId,
    path: &Path,
    rate: Option<u32>,
) -> FieldResult<()> {
    let (samples, sample_rate) = match rate {
        Some(rate) => (raw_pcm(path)?, rate),
        None => wav(path)?,
    };
    if sample_rate == 0 {
        return Err(FieldError::usage("a sample rate of 0 Hz is no rate"));
    }
    let phone = &device.phone;
    let seconds = samples.len() as f64 / f64::from(sample_rate);
    out.note(&format!(
        "recording {seconds:.1} s of audio at the pace a microphone delivers it"
    ));
    phone.start_audio(visit, sample_rate)?;
    let chunk = usize::try_from((sample_rate / CHUNKS_PER_SECOND).max(1)).unwrap_or(320);
    let mut segments = Vec::new();
    let started = Instant::now();
    let mut pushed: u64 = 0;
    for part in samples.chunks(chunk) {
        match phone.push_audio(visit, part) {
            Ok(closed) => segments.extend(closed),
            Err(e) => {
                // What was pushed is evidence: stored before the error is reported.
                let _ = phone.stop_audio(visit);
                return Err(e.into());
            }
        }
        // Core times each segment from its sample count since the start: samples pushed
        // faster than they were spoken would date the audio after the seal, and the server
        // would quarantine the bundle (time window). So the file plays at its own pace.
        pushed += part.len() as u64;
        let due = Duration::from_secs_f64(pushed as f64 / f64::from(sample_rate));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    segments.extend(phone.stop_audio(visit)?);
    let digests: Vec<String> = segments.iter().map(|d| d.to_hex()).collect();
    out.result(
        &format!(
            "audio kept: {seconds:.1} s at {sample_rate} Hz in {} segment(s)",
            digests.len()
        ),
        &json!({
            "visit_id": visit.to_string(),
            "samples": samples.len(),
            "sample_rate": sample_rate,
            "segments": digests,
        }),
    )
}

fn raw_pcm(path: &Path) -> FieldResult<Vec<i16>> {
    let bytes = read_file(path, MAX_AUDIO_BYTES)?;
    if bytes.len() % 2 != 0 {
        return Err(FieldError::usage(format!(
            "{}: raw s16le PCM has an even number of bytes",
            path.display()
        )));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

fn wav(path: &Path) -> FieldResult<(Vec<i16>, u32)> {
    let bad = |e: &dyn std::fmt::Display| FieldError::usage(format!("{}: {e}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|source| FieldError::File {
            action: "read",
            path: path.to_owned(),
            source,
        })?
        .len();
    if size > MAX_AUDIO_BYTES {
        return Err(bad(&format!("{size} bytes is over the limit")));
    }
    let reader = hound::WavReader::open(path).map_err(|e| bad(&e))?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(bad(&format!(
            "the phone records mono 16-bit PCM; this WAV has {} channel(s) of {}-bit {:?}",
            spec.channels, spec.bits_per_sample, spec.sample_format
        )));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    Ok((samples, spec.sample_rate))
}

/// `note VISIT TEXT`; `-` reads the text from stdin.
pub fn note(device: &Device, out: Out, visit: VisitId, text: &str) -> FieldResult<()> {
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut buf)
            .map_err(|source| FieldError::File {
                action: "read",
                path: "<stdin>".into(),
                source,
            })?;
        buf
    } else {
        text.to_owned()
    };
    record(
        device,
        out,
        visit,
        &VisitAction::Note { text },
        "note recorded",
    )
}

/// Records one action and prints what it left.
pub fn record(
    device: &Device,
    out: Out,
    visit: VisitId,
    action: &VisitAction,
    done: &str,
) -> FieldResult<()> {
    let recorded = device.phone.record(visit, action)?;
    out.violations(&recorded.violations);
    out.result(
        &format!("{done} (event {})", recorded.event.seq),
        &recorded_json(&recorded),
    )
}

/// `dispute VISIT --kind … [photos]`: the photos first, then the dispute naming them.
pub fn dispute(
    device: &Device,
    out: Out,
    visit: VisitId,
    kind: tandem_core::model::DisputeKind,
    photos: [Option<&Path>; 3],
) -> FieldResult<()> {
    let mut digests = [None, None, None];
    for (slot, path) in digests.iter_mut().zip(photos) {
        if let Some(path) = path {
            let bytes = read_file(path, MAX_PHOTO_BYTES)?;
            let captured = device.phone.capture_photo(visit, &bytes, false)?;
            out.violations(&captured.recorded.violations);
            *slot = Some(captured.original);
        }
    }
    let [statement, id_front, id_back] = digests;
    record(
        device,
        out,
        visit,
        &VisitAction::Dispute {
            kind,
            statement,
            id_front,
            id_back,
        },
        "dispute recorded: collection stops on this case (V10)",
    )
}
