//! The phone app is SIGKILLed at random moments while it syncs, over a hundred times: two
//! phones with sealed visits are handed to the `sim-phone` binary (its own process, core's
//! real sync client), which is killed after a random delay (seeded, printed) and started
//! again; then it is let finish. Afterwards every visit is on the server exactly once,
//! none is lost, each phone's outbox is empty and its visits acknowledged, the server's
//! log holds one entry per visit and every blob reads back whole through the server's
//! store — on SQLite, PostgreSQL, and PostgreSQL with the blobs in a bucket of a real
//! 3-node Garage cluster (all 110 kills there too: about 20 s). Every run found its
//! time anchor still valid: the boot id and the monotonic count go on across runs of the
//! app (the child's clock starts where the last run's left off, plus the real time since).
//!
//! Threat (THREATS.md): the phone's OS killing the app (or the battery dying) in the
//! middle of an upload — evidence must neither be lost nor stored twice.

mod faults_support;

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faults_support::{
    Sealed, approve_visits, assert_exactly_once, distinct_blob_bytes, pull_all, record_visits, seed,
};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tandem_core::clock::Clock as _;
use tandem_e2e::proxy::{FaultProxy, Plan};
use tandem_e2e::{Backend, Server, SimPhone, backends_with_garage};
use tandem_server::db::Role;

/// Runs that end in a SIGKILL.
const KILLS: usize = 110;
/// Visits per phone, and their audio: enough work that the phones are still pushing after
/// [`KILLS`] runs (with 16, both phones once finished after 99 kills).
const VISITS_PER_PHONE: usize = 20;
const AUDIO_S: u32 = 30;
/// Each piece through the proxy is held this long: a phone network, slow enough that a
/// kill lands during the push rather than after it.
const LINK_DELAY: Duration = Duration::from_millis(8);
/// SIGKILL's number on Linux.
const SIGKILL: i32 = 9;
/// The longest a run may take when it is let finish.
const FINISH_WITHIN: Duration = Duration::from_secs(60);

/// A phone folder handed to the child process, and the clock readings it goes on from.
struct Folder {
    dir: PathBuf,
    wall_ms: i64,
    monotonic_ms: i64,
    /// When those readings were taken (real time passes between runs too).
    at: Instant,
}

impl Folder {
    fn of(phone: &SimPhone) -> Folder {
        Folder {
            dir: phone.dir().to_owned(),
            wall_ms: phone.clock.wall_ms(),
            monotonic_ms: phone.clock.monotonic_ms(),
            at: Instant::now(),
        }
    }

    /// Starts `sim-phone` on this folder, its clocks moved on by the real time since.
    fn spawn(&self, server: &str) -> std::process::Child {
        let passed = i64::try_from(self.at.elapsed().as_millis()).unwrap_or(0);
        Command::new(env!("CARGO_BIN_EXE_sim-phone"))
            .arg("--dir")
            .arg(&self.dir)
            .args(["--server", server])
            .args(["--wall-ms", &(self.wall_ms + passed).to_string()])
            .args(["--monotonic-ms", &(self.monotonic_ms + passed).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sim-phone")
    }

    /// Takes the last clock reading a run printed (it moved its clock past a backoff).
    fn follow(&mut self, out: &str) {
        let passed = i64::try_from(self.at.elapsed().as_millis()).unwrap_or(0);
        let (mut wall, mut mono) = (self.wall_ms + passed, self.monotonic_ms + passed);
        for line in out.lines() {
            let mut words = line.split(' ');
            if words.next() == Some("clock") {
                let w: i64 = words.next().and_then(|w| w.parse().ok()).expect("wall");
                let m: i64 = words.next().and_then(|m| m.parse().ok()).expect("mono");
                wall = wall.max(w);
                mono = mono.max(m);
            }
        }
        (self.wall_ms, self.monotonic_ms, self.at) = (wall, mono, Instant::now());
    }
}

/// How far a run got before it ended.
#[derive(Debug, Default)]
struct Phases {
    before_open: u32,
    pulling: u32,
    pushing: u32,
    finished: u32,
}

fn phase_of(out: &str) -> &'static str {
    let has = |marker: &str| out.lines().any(|l| l == marker);
    if has("done") {
        "finished"
    } else if has("pulled") {
        "pushing"
    } else if has("opened") {
        "pulling"
    } else {
        "before open"
    }
}

fn read_all(child: &mut std::process::Child) -> (String, String) {
    use std::io::Read as _;
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (out, err)
}

/// Lets a run finish: it must exit 0 with an empty outbox within [`FINISH_WITHIN`].
fn finish(folder: &mut Folder, server: &str) {
    let mut child = folder.spawn(server);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < FINISH_WITHIN,
            "sim-phone did not finish within {FINISH_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = read_all(&mut child);
    assert!(status.success(), "sim-phone failed: {status}\n{out}\n{err}");
    assert_eq!(phase_of(&out), "finished", "{out}");
    folder.follow(&out);
}

#[test]
fn sigkilled_mid_sync_over_a_hundred_times_no_visit_is_lost_or_doubled() {
    for backend in backends_with_garage("faults_sigkill") {
        kill_and_restart(backend);
    }
}

/// The whole scenario on one backend.
fn kill_and_restart(backend: Backend) {
    let server = Server::start(backend);
    let label = server.label;
    let manager = server.console(Role::Manager);
    let legal = server.console(Role::Legal);
    let root = tempfile::tempdir().unwrap();
    let now = server.now_ms();
    let enrol = |i: usize| {
        SimPhone::enrolled(
            &root.path().join(format!("phone-{i}")),
            &server.base,
            now,
            server.code(i),
        )
    };
    let cases = manager.cases();
    let (a, b, c, d) = (enrol(0), enrol(1), enrol(2), enrol(3));
    let for_a = approve_visits(&server, &manager, (&a, &b), &cases, VISITS_PER_PHONE);
    let for_c = approve_visits(&server, &manager, (&c, &d), &cases, VISITS_PER_PHONE);
    pull_all(&[&a, &b, &c, &d]);
    let (a, _b, sealed_a) = record_visits(&server, (a, b), for_a, AUDIO_S);
    let (c, _d, sealed_c) = record_visits(&server, (c, d), for_c, AUDIO_S);
    // The app is closed: the phones are handed over as folders.
    let mut folders = [Folder::of(&a), Folder::of(&c)];
    drop((a, c));

    let seed = seed(&format!("sigkill ({label})"));
    let mut rng = StdRng::seed_from_u64(seed);
    let proxy = FaultProxy::start(&server.base, Plan::Slow(LINK_DELAY)).unwrap();
    let url = proxy.url();
    let mut phases = Phases::default();
    let mut unanchored = 0;
    let t0 = Instant::now();
    let mut kills = 0;
    let mut runs = 0;
    let mut done = [false, false];
    // Bounded: every run ends within its delay; a phone whose outbox emptied is left alone.
    while kills < KILLS && runs < 3 * KILLS && done.contains(&false) {
        let which = if done[runs % 2] {
            1 - runs % 2
        } else {
            runs % 2
        };
        let folder = &mut folders[which];
        runs += 1;
        let mut child = folder.spawn(&url);
        let delay = Duration::from_millis(rng.random_range(20..200));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        let (out, err) = read_all(&mut child);
        if status.signal() == Some(SIGKILL) {
            kills += 1;
        } else {
            assert!(status.success(), "sim-phone failed: {status}\n{out}\n{err}");
        }
        if out.lines().any(|l| l == "unanchored") {
            unanchored += 1;
        }
        match phase_of(&out) {
            "finished" => {
                phases.finished += 1;
                done[which] = true;
            }
            "pushing" => phases.pushing += 1,
            "pulling" => phases.pulling += 1,
            _ => phases.before_open += 1,
        }
        folder.follow(&out);
    }
    let killing_took = t0.elapsed();
    for folder in &mut folders {
        finish(folder, &url);
    }

    // Open the phones again, as the app would, and check with the server.
    let phone_a = SimPhone::open(&folders[0].dir, &server.base, folders[0].wall_ms);
    let phone_c = SimPhone::open(&folders[1].dir, &server.base, folders[1].wall_ms);
    let visits = assert_exactly_once(
        &server,
        &legal,
        &[(&phone_a, &sealed_a[..]), (&phone_c, &sealed_c[..])],
    );
    assert_eq!(visits, 2 * VISITS_PER_PHONE as u64, "{label}");
    assert_eq!(
        unanchored, 0,
        "{label}: every run kept the time anchor of the last"
    );
    assert!(
        kills >= 100,
        "{label}: only {kills} runs were killed ({phases:?})"
    );
    assert!(
        phases.pushing >= 50,
        "{label}: most kills land during the push: {phases:?}"
    );

    let stats = proxy.stats();
    let all: Vec<&Sealed> = sealed_a.iter().chain(&sealed_c).collect();
    let blobs = distinct_blob_bytes(all.iter().copied());
    let evidence = blobs + all.iter().map(|s| s.manifest_bytes).sum::<u64>();
    println!(
        "{label}: {runs} runs, {kills} SIGKILLed in {:.1} s (before opening {}, pulling {}, \
         pushing {}; {} finished first), then each phone let finish; {visits} visits of {} \
         bytes ({blobs} in distinct blobs, the rest manifests): bytes sent {} (re-sent, \
         headers and pulls {}); duplicates 0, lost 0",
        killing_took.as_secs_f64(),
        phases.before_open,
        phases.pulling,
        phases.pushing,
        phases.finished,
        evidence,
        stats.client_bytes,
        stats.client_bytes.saturating_sub(evidence),
    );
}
