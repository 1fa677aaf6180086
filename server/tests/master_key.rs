//! The master key that wraps the keys evidence is sealed under at rest (issue 16): created
//! with a new database, then required. Actor: an operator who lost or swapped the key
//! file, or an attacker starting a server on a copied database with a key of their own —
//! the server refuses to start with one line instead of sealing blobs nobody can open.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn serve(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("TANDEM_MASTER_KEY")
        .env_remove("TANDEM_MASTER_KEY_FILE")
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts a server until it listens, then stops it.
fn start_and_stop(data: &Path) {
    let mut child = serve(data, &[], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("tandem: listening on ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("tandem serve listens within 30 s");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn without_its_master_key_or_with_another_the_server_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    start_and_stop(&data);
    let key_file = data.join("master.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim().len(), 44, "32 bytes in base64");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the master key is the server user's alone");
    }
    // Moved elsewhere and named: the server starts, and so does --check.
    let moved = dir.path().join("master.key");
    std::fs::rename(&key_file, &moved).unwrap();
    let moved_arg = moved.to_str().unwrap();
    let check = serve(&data, &["--check", "--master-key-file", moved_arg], &[])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("opens the keyring"), "{stdout}");

    // Removed: refused, naming what to give, and no new key is made in its place.
    let stderr = refused(&serve(&data, &[], &[]).output().unwrap());
    assert!(stderr.contains("no master key"), "{stderr}");
    assert!(stderr.contains("--master-key-file"), "{stderr}");
    assert!(!key_file.exists(), "no fresh key replaces the lost one");
    let stderr = refused(&serve(&data, &["--check"], &[]).output().unwrap());
    assert!(stderr.contains("no master key"), "{stderr}");

    // Another key: refused, and the key is never printed.
    let other = "A".repeat(43) + "=";
    let stderr = refused(
        &serve(&data, &[], &[("TANDEM_MASTER_KEY", &other)])
            .output()
            .unwrap(),
    );
    assert!(
        stderr.contains("does not open this database's keyring"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&other) && !stderr.contains(key.trim()),
        "{stderr}"
    );
    // Not a key at all: named by where it came from.
    let stderr = refused(
        &serve(&data, &[], &[("TANDEM_MASTER_KEY", "not base64 at all")])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("TANDEM_MASTER_KEY"), "{stderr}");
    // The right key in the environment: the server starts.
    let check = serve(&data, &["--check"], &[("TANDEM_MASTER_KEY", key.trim())])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
