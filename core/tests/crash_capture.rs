//! Crash test: a phone process capturing photos and audio is SIGKILLed at random moments,
//! at least 200 times. After each kill the store reopens without corruption, every item
//! whose capture returned is present with the right digest, and no acknowledged audio is
//! lost (at most the open segment's unacknowledged tail may be).
//!
//! The test binary re-executes itself as the child phone (`TANDEM_CRASH_CHILD` set), so the
//! child is the real library in a real process. Loops are bounded in count and time.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::clock::SystemClock;
use tandem_core::crypto::Digest;
use tandem_core::model::{EventKind, VisitId};
use tandem_core::phone::{Completed, ManualLocation};
use tandem_core::place::Fix;
use tandem_core::testing::{World, co_sign};

const RUNS: usize = 200;
const SAMPLE_RATE: u32 = 16_000;
const CHUNK: usize = 320; // 20 ms
/// The child stops by itself after this long, if the parent never kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

#[test]
fn captures_survive_sigkill_at_random_moments() {
    if let Ok(spec) = std::env::var("TANDEM_CRASH_CHILD") {
        run_child(&spec);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let phone_dir = dir.path().join("lead");
    let (visit, fix) = set_up_visit(&phone_dir, &dir.path().join("partner"));
    let spec = format!(
        "{}|{}|{}",
        phone_dir.display(),
        visit,
        serde_json::to_string(&fix).unwrap()
    );

    // `TANDEM_CRASH_SEED` replays a failed run's kill schedule (the timings still vary).
    let seed = match std::env::var("TANDEM_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("TANDEM_CRASH_SEED is a u64"),
        Err(_) => u64::from_le_bytes(tandem_core::crypto::random_bytes::<8>().unwrap()),
    };
    println!("crash test seed {seed}");
    let mut rng = XorShift(seed | 1);
    let mut acknowledged_photos: BTreeSet<Digest> = BTreeSet::new();
    let mut acknowledged_audio_ms: i64 = 0;
    let mut killed_before_opening = 0;
    // What each run acknowledged, for a failure's message.
    let mut acknowledged_runs: Vec<(usize, i64)> = Vec::new();
    for run in 0..RUNS {
        // Most kills land while capturing; one in five lands anywhere from the start,
        // often during start-up and the recovery of the previous kill's leftovers.
        let kill = if rng.next().is_multiple_of(5) {
            Kill::AfterSpawn(Duration::from_millis(rng.next() % 40))
        } else {
            Kill::AfterOpened(Duration::from_millis(10 + rng.next() % 300))
        };
        let outcome = run_once(&spec, kill);
        if !outcome.opened {
            killed_before_opening += 1;
        }
        acknowledged_photos.extend(outcome.photos.iter().copied());
        let run_ms = outcome.audio_samples as i64 * 1_000 / i64::from(SAMPLE_RATE);
        acknowledged_audio_ms += run_ms;
        acknowledged_runs.push((run, run_ms));
        let stored = check_store(&phone_dir, visit, &outcome.photos, fix.clone());
        let left: Vec<_> = std::fs::read_dir(phone_dir.join("audio-spool"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "run {run}: spool not emptied by recovery: {left:?} (seed {seed})"
        );
        assert!(
            stored.audio_ms >= acknowledged_audio_ms,
            "run {run}: audio lost beyond the open segment: acknowledged {acknowledged_audio_ms} ms, \
             stored {} ms (seed {seed}); acknowledged per run (run, ms): {acknowledged_runs:?}; \
             stored segments (start, ms, recovered): {:?}",
            stored.audio_ms,
            stored.timeline
        );
    }
    // Finally every item ever acknowledged is there, and every blob verifies.
    let stored = check_store(&phone_dir, visit, &[], fix);
    let missing: Vec<_> = acknowledged_photos.difference(&stored.photos).collect();
    assert!(missing.is_empty(), "photos lost: {missing:?} (seed {seed})");
    // Straight to stderr: libtest captures `println!` of passing tests, and these figures
    // belong in every run's output.
    use std::io::Write as _;
    writeln!(
        std::io::stderr(),
        "crash test: runs = {RUNS}, killed before opening = {killed_before_opening}, photos \
         acknowledged = {}, photos stored = {}, audio acknowledged = {acknowledged_audio_ms} ms, \
         audio stored = {} ms, audio segments = {} ({} recovered), items lost beyond the open \
         segment = 0",
        acknowledged_photos.len(),
        stored.photos.len(),
        stored.audio_ms,
        stored.segments,
        stored.recovered_segments,
    )
    .unwrap();
}

/// Enrols two phones and checks the team in, so the child only has to capture.
fn set_up_visit(lead_dir: &Path, partner_dir: &Path) -> (VisitId, Fix) {
    let mut world = World::new();
    // Short segments, so segments close (and are stored) between kills, not only at recovery.
    world.policy.audio_segment_ms = 1_000;
    let clock = Arc::new(SystemClock::new());
    let fix = world.fix_near_address(15, 8);
    let location = Arc::new(ManualLocation::new(Some(fix.clone())));
    let (lead, lead_member) = world
        .open_phone(lead_dir, clock.clone(), location.clone())
        .unwrap();
    let (partner, partner_member) = world.open_phone(partner_dir, clock, location).unwrap();
    let approval = world.approval(&[&lead_member, &partner_member]);
    let visit = world
        .assign_team(
            [(&lead, &lead_member), (&partner, &partner_member)],
            &approval,
        )
        .unwrap();
    // Check in the only way there is: the partner's phone answers the lead's challenge.
    let shown = lead.begin_check_in(visit, None).unwrap();
    assert!(matches!(
        co_sign(&lead, &partner, shown).unwrap(),
        Completed::CheckedIn(_)
    ));
    (visit, fix)
}

#[derive(Default)]
struct RunOutcome {
    opened: bool,
    photos: Vec<Digest>,
    audio_samples: u64,
}

enum Kill {
    AfterSpawn(Duration),
    AfterOpened(Duration),
}

fn run_once(spec: &str, kill: Kill) -> RunOutcome {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "captures_survive_sigkill_at_random_moments",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANDEM_CRASH_CHILD", spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut outcome = RunOutcome::default();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // A line is acknowledged only when complete: the child printed it after the call
        // returned.
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') {
                let text = line.trim_end();
                // libtest may print its own "test … " prefix on the first line.
                if text.ends_with("OPENED") {
                    outcome.opened = true;
                    let _ = opened_tx.send(());
                } else if let Some(d) = text.strip_prefix("PHOTO ") {
                    outcome.photos.push(d.parse().unwrap());
                } else if let Some(n) = text.strip_prefix("AUDIO ") {
                    outcome.audio_samples = n.parse().unwrap();
                }
            }
            line.clear();
        }
        outcome
    });
    match kill {
        Kill::AfterSpawn(delay) => std::thread::sleep(delay),
        Kill::AfterOpened(delay) => {
            // Bounded: a child that never opens is caught by `try_wait` below.
            let _ = opened_rx.recv_timeout(Duration::from_secs(20));
            std::thread::sleep(delay);
        }
    }
    if let Some(status) = child.try_wait().unwrap() {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        panic!("the child phone exited by itself ({status}):\n{err}");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

struct Stored {
    photos: BTreeSet<Digest>,
    audio_ms: i64,
    segments: usize,
    recovered_segments: usize,
    /// Each stored segment as (start, duration, recovered), for a failure's message.
    timeline: Vec<(i64, i64, bool)>,
}

/// Reopens the phone (running recovery) and checks the store and blobs.
fn check_store(dir: &Path, visit: VisitId, expect_photos: &[Digest], fix: Fix) -> Stored {
    let phone = World::reopen_phone(
        dir,
        Arc::new(SystemClock::new()),
        Arc::new(ManualLocation::new(Some(fix))),
    )
    .expect("the store reopens after a kill");
    let events = phone
        .events(visit)
        .expect("the event chain verifies after a kill");
    let mut stored = Stored {
        photos: BTreeSet::new(),
        audio_ms: 0,
        segments: 0,
        recovered_segments: 0,
        timeline: Vec::new(),
    };
    let verify_all = expect_photos.is_empty();
    for event in &events {
        match &event.kind {
            EventKind::Photo {
                original,
                thumbnail,
                ..
            } => {
                stored.photos.insert(*original);
                if verify_all || expect_photos.contains(original) {
                    phone.blobs().verify(original).expect("photo bytes verify");
                    phone
                        .blobs()
                        .verify(&thumbnail.digest)
                        .expect("thumbnail verifies");
                }
            }
            EventKind::AudioSegment {
                digest,
                start_ms,
                duration_ms,
                recovered,
                ..
            } => {
                stored.audio_ms += duration_ms;
                stored.timeline.push((*start_ms, *duration_ms, *recovered));
                stored.segments += 1;
                stored.recovered_segments += usize::from(*recovered);
                if verify_all {
                    phone
                        .blobs()
                        .verify(digest)
                        .expect("audio segment verifies");
                }
            }
            _ => {}
        }
    }
    for photo in expect_photos {
        assert!(
            stored.photos.contains(photo),
            "photo {photo} acknowledged but not stored"
        );
    }
    stored
}

fn run_child(spec: &str) {
    let mut parts = spec.splitn(3, '|');
    let dir = PathBuf::from(parts.next().unwrap());
    let visit: VisitId = parts.next().unwrap().parse().unwrap();
    let fix: Fix = serde_json::from_str(parts.next().unwrap()).unwrap();
    let phone = World::reopen_phone(
        &dir,
        Arc::new(SystemClock::new()),
        Arc::new(ManualLocation::new(Some(fix))),
    )
    .expect("child opens the phone");
    println!("OPENED");
    phone.start_audio(visit, SAMPLE_RATE).expect("start audio");
    let tone: Vec<i16> = (0..CHUNK)
        .map(|i| ((i as f64 * 0.07).sin() * 6_000.0) as i16)
        .collect();
    let started = Instant::now();
    let mut pushed: u64 = 0;
    let mut i: u64 = 0;
    while started.elapsed() < CHILD_LIFETIME {
        phone.push_audio(visit, &tone).expect("push audio");
        pushed += CHUNK as u64;
        println!("AUDIO {pushed}");
        if i.is_multiple_of(10) {
            let jpeg = distinct_jpeg(std::process::id(), i);
            let photo = phone
                .capture_photo(visit, &jpeg, false)
                .expect("capture photo");
            println!("PHOTO {}", photo.original);
        }
        i += 1;
    }
}

/// A small JPEG whose bytes differ for every (process, index).
fn distinct_jpeg(pid: u32, index: u64) -> Vec<u8> {
    let salt = u64::from(pid).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index;
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        let v = salt.rotate_left(x + y) as u8;
        image::Rgb([v, (x * 4) as u8, (y * 5) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&image)
        .unwrap();
    out
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
