//! Visit audio in WAV segments: splitting, crash recovery, spool hygiene (rule V07).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_core::capture::audio::{
    AnomalyKind, AudioError, AudioRecorder, ClosedSegment, GapReason, RecordingParams, recover,
};

const RATE: u32 = 16_000;
const START_MS: i64 = 1_795_000_000_000;
const VISIT: &str = "visit-0193";

/// A deterministic, non-repeating signal: sample `n` of a recording.
fn signal(n: u64) -> i16 {
    (n.wrapping_mul(2_654_435_761) >> 13) as u16 as i16
}

fn signal_range(from: u64, len: usize) -> Vec<i16> {
    (from..from + len as u64).map(signal).collect()
}

fn params(segment_ms: u32, flush_interval_ms: u32) -> RecordingParams {
    RecordingParams {
        segment_ms,
        flush_interval_ms,
        ..RecordingParams::new(VISIT, RATE, START_MS)
    }
}

/// Pushes `total` samples of the signal in chunks of `chunk`, collecting closed segments.
fn push_signal(rec: &mut AudioRecorder, total: u64, chunk: usize) -> Vec<ClosedSegment> {
    let mut closed = Vec::new();
    let mut at = 0;
    while at < total {
        let n = chunk.min((total - at) as usize);
        closed.extend(rec.push_pcm(&signal_range(at, n)).unwrap());
        at += n as u64;
    }
    closed
}

fn read_samples(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample, spec.sample_rate),
        (1, 16, RATE)
    );
    reader.samples::<i16>().map(Result::unwrap).collect()
}

fn sha256_of(path: &Path) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, &fs::read(path).unwrap());
    digest.as_ref().try_into().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Copies the spool as a killed process would leave it: whatever the OS has at this instant.
fn snapshot(spool: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    for name in files_in(spool) {
        fs::copy(spool.join(&name), into.join(&name)).unwrap();
    }
}

fn only_wav(dir: &Path) -> PathBuf {
    let wavs: Vec<_> = files_in(dir)
        .into_iter()
        .filter(|n| n.ends_with(".wav"))
        .collect();
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    dir.join(&wavs[0])
}

#[test]
fn sixty_second_segments_split_exactly_across_4096_sample_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec =
        AudioRecorder::start(dir.path(), RecordingParams::new(VISIT, RATE, START_MS)).unwrap();
    let per_segment = 960_000u64;
    assert_eq!(rec.segment_samples(), per_segment);
    let total = 2 * per_segment + 123_457;
    let mut closed = push_signal(&mut rec, total, 4096);
    assert_eq!(closed.len(), 2, "two full segments close while recording");
    closed.push(rec.finish().unwrap().expect("the partial last segment"));

    let mut offset = 0u64;
    for (i, seg) in closed.iter().enumerate() {
        assert_eq!(seg.index, i as u32);
        assert_eq!(seg.visit_id, VISIT);
        assert!(!seg.recovered);
        let expected_len = if i < 2 { per_segment } else { 123_457 };
        assert_eq!(seg.samples, expected_len);
        assert_eq!(
            seg.start_ms,
            START_MS + (offset * 1000 / u64::from(RATE)) as i64
        );
        assert_eq!(
            seg.end_ms(),
            START_MS + ((offset + expected_len) * 1000 / 16_000) as i64
        );
        assert_eq!(
            read_samples(&seg.path),
            signal_range(offset, expected_len as usize)
        );
        assert_eq!(seg.sha256, sha256_of(&seg.path));
        assert_eq!(seg.size, fs::metadata(&seg.path).unwrap().len());
        assert_eq!(seg.size, 44 + 2 * expected_len);
        offset += expected_len;
    }
    assert_eq!(closed[0].duration_ms, 60_000);
    assert_eq!(closed[1].start_ms, closed[0].end_ms());
    assert_eq!(closed[2].start_ms, closed[1].end_ms());
}

#[test]
fn one_chunk_spanning_several_segments_is_split_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // 10 ms segments are 160 samples; one push of 1000 closes six of them.
    let mut rec = AudioRecorder::start(dir.path(), params(10, 1_000)).unwrap();
    let closed = rec.push_pcm(&signal_range(0, 1000)).unwrap();
    assert_eq!(
        closed.iter().map(|s| s.samples).collect::<Vec<_>>(),
        vec![160; 6]
    );
    let last = rec.finish().unwrap().unwrap();
    assert_eq!(last.samples, 40);
    let all: Vec<i16> = closed
        .iter()
        .chain([&last])
        .flat_map(|s| read_samples(&s.path))
        .collect();
    assert_eq!(all, signal_range(0, 1000));
}

#[test]
fn bytes_with_odd_chunk_lengths_give_the_same_wav_as_samples() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let samples = signal_range(0, 5_000);
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();

    let mut by_samples = AudioRecorder::start(a.path(), params(100, 0)).unwrap();
    let mut expected = by_samples.push_pcm(&samples).unwrap();
    expected.extend(by_samples.finish().unwrap());

    let mut by_bytes = AudioRecorder::start(b.path(), params(100, 0)).unwrap();
    let mut got = Vec::new();
    let mut rest = &bytes[..];
    for len in [1usize, 3, 7, 0, 1, 1, 4093, 9, 2, 1].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(len.min(rest.len()));
        got.extend(by_bytes.push_pcm_le(now).unwrap());
        rest = later;
    }
    got.extend(by_bytes.finish().unwrap());

    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (g.index, g.samples, g.start_ms),
            (e.index, e.samples, e.start_ms)
        );
        assert_eq!(
            g.sha256, e.sha256,
            "identical audio gives identical WAV bytes"
        );
    }
}

#[test]
fn a_trailing_half_sample_is_dropped_at_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = AudioRecorder::start(dir.path(), params(1_000, 0)).unwrap();
    rec.push_pcm_le(&[0x34, 0x12, 0x78]).unwrap();
    let seg = rec.finish().unwrap().unwrap();
    assert_eq!(read_samples(&seg.path), vec![0x1234]);
}

#[test]
fn invalid_params_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let start = |p: RecordingParams| AudioRecorder::start(&spool, p).unwrap_err();

    let zero_rate = RecordingParams::new(VISIT, 0, START_MS);
    assert!(matches!(
        start(zero_rate),
        AudioError::SampleRateOutOfRange { sample_rate: 0 }
    ));
    let huge_rate = RecordingParams::new(VISIT, 10_000_000, START_MS);
    assert!(matches!(
        start(huge_rate),
        AudioError::SampleRateOutOfRange { .. }
    ));
    assert!(matches!(
        start(params(0, 1_000)),
        AudioError::SegmentLengthOutOfRange {
            segment_ms: 0,
            sample_rate: RATE
        }
    ));
    // 5 ms at 100 Hz is half a sample.
    let below_one_sample = RecordingParams {
        sample_rate: 100,
        ..params(5, 0)
    };
    assert!(matches!(
        start(below_one_sample),
        AudioError::SegmentLengthOutOfRange { .. }
    ));
    let too_long_for_wav = RecordingParams {
        sample_rate: 384_000,
        ..params(u32::MAX, 1_000)
    };
    assert!(matches!(
        start(too_long_for_wav),
        AudioError::SegmentLengthOutOfRange { .. }
    ));
    let no_visit = RecordingParams::new("", RATE, START_MS);
    assert!(matches!(start(no_visit), AudioError::EmptyVisitId));
    let end_of_time = RecordingParams::new(VISIT, RATE, i64::MAX - 10);
    assert!(matches!(
        start(end_of_time),
        AudioError::TimeOutOfRange { .. }
    ));

    assert!(
        !spool.exists(),
        "no spool directory for a recording that never started"
    );
}

#[test]
fn finishing_with_an_empty_open_segment_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = AudioRecorder::start(dir.path(), params(10, 1_000)).unwrap();
    let closed = rec.push_pcm(&signal_range(0, 320)).unwrap();
    assert_eq!(closed.len(), 2);
    assert_eq!(rec.finish().unwrap(), None);
    for seg in &closed {
        seg.remove_spool_file().unwrap();
        seg.remove_spool_file().unwrap();
    }
    assert!(files_in(dir.path()).is_empty());
    assert!(recover(dir.path()).unwrap().segments.is_empty());
}

#[test]
fn crash_mid_segment_recovers_every_flushed_sample_and_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let crashed = dir.path().join("crashed");
    // Header rewritten after every push.
    let mut rec = AudioRecorder::start(&spool, params(60_000, 0)).unwrap();
    push_signal(&mut rec, 10 * 320, 320);
    snapshot(&spool, &crashed);
    // The kill also tore the last sample in half.
    let wav = only_wav(&crashed);
    let len = fs::metadata(&wav).unwrap().len();
    assert_eq!(len, 44 + 2 * 3200, "every pushed sample reached the file");
    assert_eq!(
        read_samples(&wav),
        signal_range(0, 3200),
        "and the header is current"
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&wav)
        .unwrap()
        .set_len(len - 1)
        .unwrap();

    let report = recover(&crashed).unwrap();
    assert!(report.anomalies.is_empty(), "{:?}", report.anomalies);
    let [found] = &report.segments[..] else {
        panic!("{:?}", report.segments)
    };
    let seg = &found.segment;
    assert!(seg.recovered);
    assert_eq!(
        (seg.index, seg.samples, seg.recording_id.as_str()),
        (0, 3199, rec.recording_id())
    );
    assert_eq!(read_samples(&seg.path), signal_range(0, 3199));
    assert_eq!(seg.sha256, sha256_of(&seg.path));
    assert_eq!(seg.size, 44 + 2 * 3199);
    let gap = found.gap.as_ref().expect("a crash is a gap");
    assert_eq!(gap.visit_id, VISIT);
    assert_eq!(gap.from_ms, START_MS + 3199 * 1000 / 16_000);
    assert_eq!(gap.reason, GapReason::AppTerminated);
    assert_eq!(gap.reason.as_str(), "app terminated while recording");

    // Recovering again (a crash before the caller stored it) returns the same thing.
    let again = recover(&crashed).unwrap();
    assert_eq!(again.segments, report.segments);
    drop(rec);
}

#[test]
fn header_never_written_is_rebuilt_from_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let rec = AudioRecorder::start(&spool, params(60_000, 1_000)).unwrap();
    for (case, wav_len) in [
        ("empty", Some(0u64)),
        ("half-header", Some(30)),
        ("missing", None),
    ] {
        let crashed = dir.path().join(case);
        snapshot(&spool, &crashed);
        let wav = only_wav(&crashed);
        match wav_len {
            Some(len) => fs::OpenOptions::new()
                .write(true)
                .open(&wav)
                .unwrap()
                .set_len(len)
                .unwrap(),
            None => fs::remove_file(&wav).unwrap(),
        }
        let report = recover(&crashed).unwrap();
        let [found] = &report.segments[..] else {
            panic!("{case}: {:?}", report)
        };
        assert_eq!(found.segment.samples, 0, "{case}");
        assert_eq!(found.segment.size, 44, "{case}");
        assert!(read_samples(&wav).is_empty(), "{case}");
        assert_eq!(found.gap.as_ref().unwrap().from_ms, START_MS, "{case}");
    }
    drop(rec);
}

#[test]
fn crash_between_opening_the_next_segment_and_closing_the_full_one_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let crashed = dir.path().join("crashed");
    let mut rec = AudioRecorder::start(&spool, params(100, 1_000)).unwrap();
    let closed = rec.push_pcm(&signal_range(0, 1600)).unwrap();
    assert_eq!(closed.len(), 1);
    snapshot(&spool, &crashed);
    // Put segment 0 back into the state it had before its sidecar was marked closed.
    let sidecar = crashed.join(closed[0].sidecar_path().file_name().unwrap());
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&sidecar).unwrap()).unwrap();
    json["state"] = serde_json::json!({ "state": "open" });
    fs::write(&sidecar, serde_json::to_vec(&json).unwrap()).unwrap();

    let report = recover(&crashed).unwrap();
    let [full, next] = &report.segments[..] else {
        panic!("{report:?}")
    };
    assert_eq!((full.segment.index, full.segment.samples), (0, 1600));
    assert_eq!(
        full.segment.sha256, closed[0].sha256,
        "repair rewrote hound's exact header"
    );
    assert_eq!(full.gap, None, "audio went on into the next segment");
    assert_eq!((next.segment.index, next.segment.samples), (1, 0));
    assert_eq!(next.gap.as_ref().unwrap().from_ms, START_MS + 100);
    drop(rec);
}

#[test]
fn finished_segment_left_in_the_spool_is_returned_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = AudioRecorder::start(dir.path(), params(100, 1_000)).unwrap();
    let mut closed = rec.push_pcm(&signal_range(0, 2000)).unwrap();
    closed.extend(rec.finish().unwrap());
    let before: Vec<Vec<u8>> = closed.iter().map(|s| fs::read(&s.path).unwrap()).collect();

    let report = recover(dir.path()).unwrap();
    assert!(report.anomalies.is_empty());
    let found: Vec<ClosedSegment> = report.segments.iter().map(|f| f.segment.clone()).collect();
    assert_eq!(found, closed);
    assert!(
        report.segments.iter().all(|f| f.gap.is_none()),
        "a finished recording has no gap"
    );
    let after: Vec<Vec<u8>> = closed.iter().map(|s| fs::read(&s.path).unwrap()).collect();
    assert_eq!(after, before);
}

#[test]
fn garbage_in_the_spool_is_reported_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path();
    let mut rec = AudioRecorder::start(spool, params(100, 1_000)).unwrap();
    let closed = rec.push_pcm(&signal_range(0, 3 * 1600)).unwrap();
    rec.finish().unwrap();
    let [stored, tampered, orphaned] = &closed[..] else {
        panic!()
    };
    // Crash between removing a stored segment's WAV and its sidecar.
    fs::remove_file(&stored.path).unwrap();
    let mut bytes = fs::read(&tampered.path).unwrap();
    bytes[100] ^= 1;
    fs::write(&tampered.path, bytes).unwrap();
    fs::remove_file(orphaned.sidecar_path()).unwrap();
    fs::write(spool.join("notes.txt"), b"hello").unwrap();
    fs::create_dir(spool.join("subdir")).unwrap();
    let bad_sidecar = spool.join("seg-01936b2e-0000-7000-8000-000000000000-000000.json");
    fs::write(&bad_sidecar, b"{not json").unwrap();
    let temp = spool.join("seg-01936b2e-0000-7000-8000-000000000000-000001.json.tmp");
    fs::write(&temp, b"{").unwrap();
    let files_before = files_in(spool);

    let report = recover(spool).unwrap();
    assert!(report.segments.is_empty(), "{:?}", report.segments);
    let mut kinds: Vec<(String, AnomalyKind)> = report
        .anomalies
        .iter()
        .map(|a| {
            (
                a.path.file_name().unwrap().to_string_lossy().into_owned(),
                a.kind.clone(),
            )
        })
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let mut expected = vec![
        ("notes.txt".to_owned(), AnomalyKind::Unrecognized),
        ("subdir".to_owned(), AnomalyKind::Unrecognized),
        (name(&temp), AnomalyKind::LeftoverTemp),
        (name(&stored.sidecar_path()), AnomalyKind::StaleSidecar),
        (name(&orphaned.path), AnomalyKind::WavWithoutSidecar),
        (
            name(&tampered.path),
            AnomalyKind::DigestMismatch {
                expected: tampered.sha256_hex(),
                actual: tampered_digest(&tampered.path),
            },
        ),
    ];
    let bad = kinds
        .iter()
        .position(|(n, _)| *n == name(&bad_sidecar))
        .unwrap();
    assert!(
        matches!(&kinds.remove(bad).1, AnomalyKind::BadSidecar { reason } if reason.starts_with("unparseable"))
    );
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(kinds, expected);
    assert_eq!(files_in(spool), files_before, "nothing deleted");
}

fn tampered_digest(path: &Path) -> String {
    tandem_core::crypto::to_hex(&sha256_of(path))
}

#[test]
fn recovery_leaves_a_live_recorders_segment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = AudioRecorder::start(dir.path(), params(60_000, 0)).unwrap();
    rec.push_pcm(&signal_range(0, 800)).unwrap();
    let report = recover(dir.path()).unwrap();
    assert!(report.segments.is_empty());
    let [anomaly] = &report.anomalies[..] else {
        panic!("{report:?}")
    };
    assert_eq!(anomaly.kind, AnomalyKind::InUse);
    rec.push_pcm(&signal_range(800, 800)).unwrap();
    let seg = rec.finish().unwrap().unwrap();
    assert_eq!(read_samples(&seg.path), signal_range(0, 1600));
}

#[test]
fn recorder_refuses_audio_after_a_failed_write() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut rec = AudioRecorder::start(&spool, params(10, 1_000)).unwrap();
    fs::remove_dir_all(&spool).unwrap();
    let err = rec.push_pcm(&signal_range(0, 200)).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::Io {
                action: "create sidecar",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        rec.push_pcm(&[1]),
        Err(AudioError::RecorderBroken)
    ));
    assert!(matches!(rec.finish(), Err(AudioError::RecorderBroken)));
}

const CHILD_SPOOL: &str = "TANDEM_AUDIO_CHILD_SPOOL";

/// Run by `killed_process_leaves_a_recoverable_segment` in a child process, which it aborts.
#[test]
#[ignore = "helper: runs only as the child process of a crash test"]
fn child_records_then_aborts() {
    let Some(spool) = std::env::var_os(CHILD_SPOOL) else {
        return;
    };
    let mut rec = AudioRecorder::start(Path::new(&spool), params(60_000, 1_000)).unwrap();
    // 1.5 s in 20 ms chunks: the header is current at 1 s, later samples are partly buffered.
    push_signal(&mut rec, 24_000, 320);
    std::process::abort();
}

#[test]
fn killed_process_leaves_a_recoverable_segment() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_records_then_aborts",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_SPOOL, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die mid-recording");

    let report = recover(dir.path()).unwrap();
    assert!(report.anomalies.is_empty(), "{:?}", report.anomalies);
    let [found] = &report.segments[..] else {
        panic!("{report:?}")
    };
    let kept = found.segment.samples;
    // At most the 8 KiB write buffer (4096 samples) since the 1 s flush can be lost.
    assert!((24_000 - 4096..=24_000).contains(&kept), "kept {kept}");
    assert_eq!(
        read_samples(&found.segment.path),
        signal_range(0, kept as usize)
    );
    assert_eq!(found.gap.as_ref().unwrap().from_ms, found.segment.end_ms());
}

/// Writes 60 minutes of 16 kHz audio in 20 ms chunks with three flush policies and prints
/// the wall time of each. Run: `cargo test --release -p tandem-core --test audio_capture
/// -- --ignored --nocapture sixty_minutes`.
#[test]
#[ignore = "measurement: run explicitly in release mode"]
fn sixty_minutes_of_audio_in_20ms_chunks() {
    let chunk: Vec<i16> = signal_range(0, 320);
    let chunks = 60 * 60 * 50;
    for (label, flush_ms) in [
        ("flush every chunk", 0u32),
        ("flush every 1 s", 1_000),
        ("flush at close only", 60_000),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = AudioRecorder::start(dir.path(), params(60_000, flush_ms)).unwrap();
        let started = Instant::now();
        let mut segments = 0;
        let mut slowest = Duration::ZERO;
        for _ in 0..chunks {
            let t = Instant::now();
            for seg in rec.push_pcm(&chunk).unwrap() {
                segments += 1;
                seg.remove_spool_file().unwrap();
            }
            slowest = slowest.max(t.elapsed());
        }
        if let Some(seg) = rec.finish().unwrap() {
            segments += 1;
            seg.remove_spool_file().unwrap();
        }
        let took = started.elapsed();
        println!(
            "{label:>20}: 60 min in {:>7.1} ms ({:.2} us per 20 ms chunk, slowest push {:.2} ms), {segments} segments",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / chunks as f64,
            slowest.as_secs_f64() * 1e3,
        );
        assert_eq!(segments, 60);
    }
}
