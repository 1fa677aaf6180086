//! `tandem field` as two phones in two processes against a real `tandem serve --demo` on
//! 127.0.0.1, on every backend: enrolment, the manager's approval over HTTP, sync, the
//! check-in handshake through files, photo, audio, note, a co-signed receipt, check-out,
//! seal, push — and the legal export verifies with `tandem verify`. Refusals name the
//! actor they stop (THREATS.md) and the rule id the terminal prints.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_server::testing::console::Console;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const DAY_MS: i64 = 86_400_000;
const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/fixtures/photos/gps-DSCN0010.jpg"
);
/// The demo's first case, 上海市黄浦区南京东路300号, as AMap shows it (GCJ-02).
const AT_THE_DOOR: &str = "31.2380500,121.4817400,8";
/// Six metres north of the lead.
const BESIDE_THE_LEAD: &str = "31.2381000,121.4817400,8";

/// A `tandem serve --demo` process and what it printed once.
struct Server {
    child: Child,
    base: String,
    passwords: Vec<(String, String)>,
    codes: Vec<String>,
    /// Server time minus real time: the server is at 10:00 in Shanghai today.
    offset_ms: i64,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn real_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

impl Server {
    /// Starts the server with its clock at `utc_minute` (minutes after 00:00 UTC) today —
    /// whenever the test runs — and reads its logins and codes.
    fn start(b: &common::TestBackend, utc_minute: i64) -> Server {
        let now = real_now_ms();
        let offset_ms = now.div_euclid(DAY_MS) * DAY_MS + utc_minute * 60_000 - now;
        let mut cmd = Command::new(TANDEM);
        cmd.args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(b.dir.path().join("data"))
            .arg(format!("--clock-offset-ms={offset_ms}"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if b.label == "postgres" {
            cmd.arg("--database-url").arg(&b.url);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut passwords, mut codes, mut section) = (Vec::new(), Vec::new(), "");
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(
                Instant::now() < deadline,
                "the server did not start in 60 s"
            );
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "tandem serve exited before listening"
            );
            if let Some(url) = line.trim().strip_prefix("tandem: listening on ") {
                break url.to_owned();
            }
            if line.starts_with("Console users") {
                section = "users";
            } else if line.starts_with("Agent enrollment codes") {
                section = "agents";
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match (section, words.as_slice()) {
                ("users", [login, _role, password]) => {
                    passwords.push((login.to_string(), password.to_string()))
                }
                ("agents", [_no, _name, code]) => codes.push(code.to_string()),
                _ => {}
            }
        };
        assert_eq!(codes.len(), 4, "four demo agents");
        Server {
            child,
            base,
            passwords,
            codes,
            offset_ms,
            _stdout: stdout,
        }
    }

    fn now_ms(&self) -> i64 {
        real_now_ms() + self.offset_ms
    }

    /// The demo's console user `login`, signed in.
    fn console(&self, login: &str) -> Console {
        let password = &self.passwords.iter().find(|(l, _)| l == login).unwrap().1;
        Console::sign_in(&self.base, login, password)
    }
}

/// One phone: a folder and the flags its commands always carry.
struct PhoneDir {
    dir: PathBuf,
}

impl PhoneDir {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(TANDEM);
        cmd.arg("field").arg("--dir").arg(&self.dir).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a command to its end.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its JSON result.
    fn ok(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "tandem field {args:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "tandem field {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    fn refused(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "tandem field {args:?}: {stderr}"
        );
        stderr
    }
}

/// 10:00 in Shanghai (02:00 UTC): inside visiting hours.
const MORNING: i64 = 2 * 60;
/// 22:30 in Shanghai (14:30 UTC): after visiting hours.
const LATE_EVENING: i64 = 14 * 60 + 30;

/// Enrols both phones, has the manager approve a visit for them and syncs both.
/// A server with its clock at `utc_minute` today, two phone folders and a work folder in
/// `b`'s folder, and a visit approved for both phones: (server, work, lead, partner, visit).
fn two_phones(
    b: &common::TestBackend,
    utc_minute: i64,
) -> (Server, PathBuf, PhoneDir, PhoneDir, String) {
    let server = Server::start(b, utc_minute);
    let work = b.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let lead = PhoneDir {
        dir: b.dir.path().join("lead-phone"),
    };
    let partner = PhoneDir {
        dir: b.dir.path().join("partner-phone"),
    };
    let visit = assigned_visit(&server, &lead, &partner);
    (server, work, lead, partner, visit)
}

fn assigned_visit(server: &Server, lead: &PhoneDir, partner: &PhoneDir) -> String {
    let a = lead.ok(&["enroll", &server.codes[0], "--server", &server.base]);
    let p = partner.ok(&["enroll", &server.codes[1], "--server", &server.base]);
    let manager = server.console("manager");
    let case = manager
        .cases()
        .into_iter()
        .find(|c| c.case_ref == "PJ-2026-0001")
        .unwrap();
    let team = [&a, &p].map(|phone| phone["agent_id"].as_str().unwrap().parse().unwrap());
    let visit = manager
        .approve_visit(server.now_ms(), &case.id, &team, Some(100_000))
        .unwrap();
    manager.serial_range(a["device_id"].as_str().unwrap().parse().unwrap(), 10);
    // The URL was stored at enrolment: no --server from here on.
    for phone in [lead, partner] {
        let synced = phone.ok(&["sync"]);
        assert_eq!(synced["pulled"]["assignments"], json!([visit]));
    }
    visit
}

/// Waits (bounded) for the lead to write its challenge.
fn wait_for_file(path: &Path, lead: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Some(status) = lead.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(lead.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the lead exited before showing its challenge: {status}: {err}");
        }
        assert!(Instant::now() < deadline, "no challenge in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lead shows a challenge for `args`, the partner answers it from its file, the lead
/// completes: what two agents do with two screens. Returns the lead's JSON result.
fn co_sign(lead: &PhoneDir, partner: &PhoneDir, work: &Path, name: &str, args: &[&str]) -> Value {
    let out = try_co_sign(lead, partner, work, name, args);
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The same, returning what the lead's process ended with.
fn try_co_sign(
    lead: &PhoneDir,
    partner: &PhoneDir,
    work: &Path,
    name: &str,
    args: &[&str],
) -> Output {
    let challenge = work.join(format!("{name}-challenge.txt"));
    let reply = work.join(format!("{name}-reply.txt"));
    let mut all = args.to_vec();
    let (c, r) = (challenge.to_str().unwrap(), reply.to_str().unwrap());
    all.extend([
        "--position",
        AT_THE_DOOR,
        "--challenge-out",
        c,
        "--reply-in",
        r,
        "--timeout",
        "60",
        "--json",
    ]);
    let mut child = lead
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&challenge, &mut child);
    let answered = partner.run(&[
        "answer",
        "--in",
        c,
        "--out",
        r,
        "--position",
        BESIDE_THE_LEAD,
    ]);
    assert!(
        answered.status.success(),
        "{name}: the partner did not answer: {}",
        String::from_utf8_lossy(&answered.stderr)
    );
    let summary = String::from_utf8_lossy(&answered.stdout);
    assert!(summary.contains("co-signing"), "{name}: {summary}");
    child.wait_with_output().unwrap()
}

/// Three seconds of a 440 Hz tone, mono 16-bit at 16 kHz, as a phone's recorder writes it.
fn tone_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..48_000u32 {
        let t = f64::from(i) / 16_000.0;
        w.write_sample(
            (t * 440.0 * std::f64::consts::TAU)
                .sin()
                .mul_add(8_000.0, 0.0) as i16,
        )
        .unwrap();
    }
    w.finalize().unwrap();
}

/// A payer's signature drawn on the phone's screen.
fn signature_png(path: &Path) {
    let img = image::GrayImage::from_fn(160, 60, |x, y| {
        image::Luma([if (x * 3 + y * 5) % 11 == 0 { 0 } else { 255 }])
    });
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_terminal_phones_run_a_visit_whose_export_verifies() {
    for b in common::backends().await {
        let started = Instant::now();
        let (server, work, lead, partner, visit) = two_phones(&b, MORNING);
        let list = lead.ok(&["visits", "--position", AT_THE_DOOR]);
        assert_eq!(list[0]["visit_id"], visit.as_str());
        assert_eq!(list[0]["state"], "assigned");
        assert_eq!(list[0]["check_in_now"], json!([]), "{}: {list}", b.label);
        assert_eq!(list[0]["case"]["card"], "**** **** **** 4821");

        // Actor: an agent faking presence. No --position is no fix: V05.
        let c0 = work.join("c0.txt");
        let r0 = work.join("r0.txt");
        let err = lead.refused(
            &[
                "checkin",
                &visit,
                "--challenge-out",
                c0.to_str().unwrap(),
                "--reply-in",
                r0.to_str().unwrap(),
            ],
            1,
        );
        assert!(err.contains("refused (V05)"), "{err}");
        assert!(err.contains("--position"), "the hint names the flag: {err}");
        // ...and a mock-location app: V05 too.
        let err = lead.refused(
            &[
                "checkin",
                &visit,
                "--position",
                AT_THE_DOOR,
                "--mock-location",
                "--challenge-out",
                c0.to_str().unwrap(),
                "--reply-in",
                r0.to_str().unwrap(),
            ],
            1,
        );
        assert!(err.contains("refused (V05)"), "{err}");

        // Actor: a lone agent. Nobody answers the challenge, and the agent's own phone
        // cannot answer it either: V03.
        let c1 = work.join("c1.txt");
        let r1 = work.join("r1.txt");
        let (c1s, r1s) = (c1.to_str().unwrap(), r1.to_str().unwrap());
        let err = lead.refused(
            &[
                "checkin",
                &visit,
                "--position",
                AT_THE_DOOR,
                "--challenge-out",
                c1s,
                "--reply-in",
                r1s,
                "--timeout",
                "1",
            ],
            5,
        );
        assert!(err.contains("no reply within 1 s"), "{err}");
        let err = lead.refused(
            &[
                "answer",
                "--in",
                c1s,
                "--out",
                r1s,
                "--position",
                AT_THE_DOOR,
            ],
            1,
        );
        assert!(err.contains("refused (V03)"), "{err}");
        assert!(!r1.exists(), "a refused answer writes no reply");

        let checked_in = co_sign(&lead, &partner, &work, "checkin", &["checkin", &visit]);
        assert_eq!(checked_in["type"], "checked_in", "{checked_in}");

        lead.ok(&["identity", &visit, "--person", "debtor"]);
        let photo = lead.ok(&["photo", &visit, PHOTO, "--position", AT_THE_DOOR]);
        assert_eq!(photo["original_sha256"].as_str().unwrap().len(), 64);
        let wav = work.join("door.wav");
        tone_wav(&wav);
        let audio = lead.ok(&["audio", &visit, wav.to_str().unwrap()]);
        assert_eq!(audio["samples"], 48_000);
        assert_eq!(audio["segments"].as_array().unwrap().len(), 1);
        lead.ok(&["note", &visit, "债务人在家，当面还款五百元。"]);

        let png = work.join("payer.png");
        signature_png(&png);
        let receipt = co_sign(
            &lead,
            &partner,
            &work,
            "receipt",
            &[
                "receipt",
                &visit,
                "--amount-fen",
                "50000",
                "--payer-name",
                "林晓虹",
                "--payer-signature",
                png.to_str().unwrap(),
            ],
        );
        assert_eq!(receipt["type"], "receipt_issued", "{receipt}");
        assert_eq!(receipt["amount_fen"], 50_000);

        co_sign(&lead, &partner, &work, "checkout", &["checkout", &visit]);
        let sealed = co_sign(&lead, &partner, &work, "seal", &["seal", &visit]);
        let bundle = sealed["bundle_id"].as_str().unwrap().to_owned();
        assert_eq!(lead.ok(&["status"])["pending"], 1);

        let pushed = lead.ok(&["push"]);
        assert_eq!(pushed["pushed"]["acknowledged"], 1, "{pushed}");
        assert_eq!(pushed["status"]["pending"], 0);
        assert_eq!(pushed["status"]["bytes_left"], 0);

        let zip = work.join("export.zip");
        std::fs::write(&zip, server.console("legal").export(&bundle)).unwrap();
        let verified = Command::new(TANDEM)
            .arg("verify")
            .arg(&zip)
            .output()
            .unwrap();
        assert_eq!(
            verified.status.code(),
            Some(0),
            "{}: {}",
            b.label,
            String::from_utf8_lossy(&verified.stdout)
        );
        eprintln!("{}: the whole visit took {:?}", b.label, started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_clock_set_back_into_visiting_hours_does_not_fool_check_in() {
    // Actor: an agent who cheats the clock: at 22:30 in Shanghai, both phones' wall clocks
    // set to 10:00. The server-anchored time the phones took at sync still says 22:30: V04.
    let b = common::sqlite();
    let (_server, work, lead, partner, visit) = two_phones(&b, LATE_EVENING);
    let morning = "2026-11-30T10:00:00+08:00";
    let list = lead.ok(&["visits", "--position", AT_THE_DOOR, "--wall-clock", morning]);
    let rules: Vec<&str> = list[0]["check_in_now"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["V04"], "{list}");
    // The lead refuses before it shows a challenge: the partner is never asked to co-sign
    // what the lead would refuse, and nothing is written on either phone.
    let challenge = work.join("late-challenge.txt");
    let reply = work.join("late-reply.txt");
    let stderr = lead.refused(
        &[
            "checkin",
            &visit,
            "--wall-clock",
            morning,
            "--position",
            AT_THE_DOOR,
            "--challenge-out",
            challenge.to_str().unwrap(),
            "--reply-in",
            reply.to_str().unwrap(),
        ],
        1,
    );
    assert!(stderr.contains("refused (V04)"), "{stderr}");
    assert_eq!(
        stderr.matches("V04").count(),
        1,
        "the rule is named once: {stderr}"
    );
    assert!(!challenge.exists(), "no challenge is shown");
    for phone in [&lead, &partner] {
        let list = phone.ok(&["visits"]);
        assert_eq!(list[0]["state"], "assigned", "a refusal records nothing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_clock_eight_hours_ahead_is_shown_to_the_agent_at_check_in() {
    // Actor: an agent who cheats the clock (or a phone whose clock is simply wrong): at 10:00
    // in Shanghai both phones' wall clocks say 18:00. The anchored time counts (the check-in
    // goes ahead inside visiting hours), and V15 is shown to the agent and recorded.
    let b = common::sqlite();
    let (_server, work, lead, partner, visit) = two_phones(&b, MORNING);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    let ahead = chrono::DateTime::from_timestamp_millis(today + (MORNING + 8 * 60) * 60_000)
        .unwrap()
        .to_rfc3339();
    let out = try_co_sign(
        &lead,
        &partner,
        &work,
        "ahead",
        &["checkin", &visit, "--wall-clock", &ahead],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning (V15)"), "{stderr}");
    assert!(stderr.contains("480 min ahead"), "{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        result.to_string().contains("V15"),
        "the JSON result carries the warning: {result}"
    );
}
