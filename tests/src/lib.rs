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
pub mod server;

pub use console::Console;
pub use field::{SimPhone, Team};
pub use server::{Server, backends};

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;
