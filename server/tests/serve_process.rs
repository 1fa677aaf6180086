//! `tandem serve --demo` as a real process on a free port, on every backend.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A minimal HTTP/1.1 GET: status code and body, or `None` while nothing listens.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

fn start(b: &common::TestBackend, addr: SocketAddr, with_url: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(["serve", "--demo", "--listen", &addr.to_string()])
        .env("TANDEM_DATA_DIR", b.dir.path().join("data"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if with_url {
        cmd.env("DATABASE_URL", &b.url);
    }
    cmd.spawn().unwrap()
}

/// Polls /healthz for at most 30 s.
fn wait_healthy(child: &mut Child, addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, body)) = http_get(addr, "/healthz") {
            return body;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tandem serve exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no healthy answer on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit status (graceful shutdown exits 0).
fn terminate(mut child: Child) -> (std::process::ExitStatus, String) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tandem serve did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_demo_answers_on_a_real_port_and_stops_on_sigterm() {
    for b in common::backends().await {
        // SQLite through the defaults (a file in the data folder), PostgreSQL by its URL.
        let with_url = b.label == "postgres";
        let addr = free_port();
        let mut child = start(&b, addr, with_url);
        let health = wait_healthy(&mut child, addr);
        assert!(health.contains(b.label), "{}: {health}", b.label);
        let (status, _) = http_get(addr, "/nope").unwrap();
        assert_eq!(status, 404);
        let (status, out) = terminate(child);
        assert!(status.success(), "{}: {status}", b.label);
        assert!(out.contains("浦江银行信用卡中心"), "{}: {out}", b.label);
        assert!(out.contains("manager"), "{}", b.label);
        assert!(out.contains("valid 7 days"), "{}: {out}", b.label);
        assert!(b.dir.path().join("data/server-key.p8").exists());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(b.dir.path().join("data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{}", b.label);

        // Second start with --demo: same key, nothing seeded or printed again.
        let key_before = std::fs::read(b.dir.path().join("data/server-key.p8")).unwrap();
        let addr = free_port();
        let mut child = start(&b, addr, with_url);
        wait_healthy(&mut child, addr);
        let (status, out) = terminate(child);
        assert!(status.success(), "{}", b.label);
        assert!(
            !out.contains("Demo organisation created"),
            "{}: {out}",
            b.label
        );
        let key_after = std::fs::read(b.dir.path().join("data/server-key.p8")).unwrap();
        assert_eq!(key_before, key_after);
    }
}

#[test]
fn the_server_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k/server-key.p8");
    let a = tandem_server::key::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let b = tandem_server::key::load_or_create(&path).unwrap();
    use tandem_core::crypto::Signer as _;
    assert_eq!(a.public_key(), b.public_key());
    std::fs::write(&path, b"not a key").unwrap();
    assert!(matches!(
        tandem_server::key::load_or_create(&path),
        Err(tandem_server::key::KeyError::Invalid { .. })
    ));
}

/// Actor: an operator who leaves `TANDEM_CLOCK_OFFSET_MS` set from a demo — production
/// never runs on a shifted clock; only `--demo` may shift it.
#[test]
fn a_shifted_clock_is_refused_without_demo() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("TANDEM_DATA_DIR", dir.path().join("data"))
            .env("TANDEM_CLOCK_OFFSET_MS", "3600000")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("only with --demo"), "{stderr}");
    // Nothing was created: refused before the database or the key.
    assert!(!dir.path().join("data/tandem.db").exists());
    assert!(!dir.path().join("data/server-key.p8").exists());
}
