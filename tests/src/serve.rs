//! `tandem serve` as its own process, taking over from a test's [`Server`]: the same data
//! folder (server key, master key), database and blob store (folder or Garage bucket), its
//! clock shifted to the test server's time, listening on 127.0.0.1.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tandem_server::clock::ServerClock as _;

use crate::Server;

/// How long `tandem serve` may take to say it listens.
const START_WITHIN: Duration = Duration::from_secs(60);

/// A running `tandem serve`; dropping it kills it.
pub struct ServeProcess {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
    log: std::path::PathBuf,
}

impl ServeProcess {
    /// Starts `tandem serve --demo` (the demo is there already, so nothing is seeded; the
    /// flag only allows the shifted clock) on `server`'s data folder, database and store.
    /// Call [`Server::stop_serving`] first so that only this process answers.
    pub fn start(server: &Server) -> ServeProcess {
        let log = server.data_dir().join("tandem-serve.log");
        let mut cmd = Command::new(crate::tandem_binary());
        // Only what this test sets: no bucket, key or listen address from the environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TANDEM_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(server.data_dir())
            .env("DATABASE_URL", server.database_url())
            .env(
                "TANDEM_CLOCK_OFFSET_MS",
                server.clock.shift_ms().to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("serve log"));
        if let Some(cluster) = server.garage() {
            cmd.envs(cluster.env());
        }
        let mut child = cmd.spawn().expect("start tandem serve");
        // Its stdout, line by line, until it names its address.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.strip_prefix("tandem: listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let mut serve = ServeProcess {
            base: String::new(),
            child,
            log,
        };
        match rx.recv_timeout(START_WITHIN) {
            Ok(base) => serve.base = base,
            Err(_) => panic!(
                "tandem serve did not listen within {START_WITHIN:?} ({:?}):\n{}",
                serve.child.try_wait(),
                serve.log_text()
            ),
        }
        serve
    }

    /// What it logged on stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
