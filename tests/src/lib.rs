//! End-to-end test harness: a real Tandem server on 127.0.0.1 (SQLite, or PostgreSQL when
//! `TANDEM_TEST_DATABASE_URL` is set), its console used over HTTP by a manager and legal
//! staff, and simulated phones — real `tandem_core::phone::Phone` instances with their own
//! folders, talking to the server through core's own sync client.
//!
//! Time: each server runs on its own shifted clock (`tandem_server::clock::ShiftedClock`)
//! whose day starts at 10:00 Asia/Shanghai, inside visiting hours, whenever the tests run;
//! the phones' clocks are [`ManualClock`]s set to the server's time, and a team's
//! [`Team::wait`] moves its phones and its server on together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod console;
pub mod field;
pub mod proxy;
pub mod serve;
pub mod server;

pub use console::Console;
pub use field::{SimPhone, Team};
pub use server::{Backend, Server, backends, backends_with_garage};

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The `tandem` binary built next to the test binaries (cargo builds every binary of the
/// workspace before running its tests; `-p tandem-e2e` alone does not build it).
pub fn tandem_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("tandem"))
        .expect("target folder");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tandem-server --bin tandem`",
        bin.display()
    );
    bin
}
