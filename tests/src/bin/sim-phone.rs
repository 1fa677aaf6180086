//! A simulated phone as its own process, for tests that SIGKILL it: opens an existing
//! phone folder and runs core's sync until the outbox is empty, then exits 0.
//!
//! Time comes by argument (the server's clock is shifted only inside the test process):
//! the wall clock, and the monotonic count since boot. The device has not rebooted between
//! two runs, so the boot id stays and the monotonic count must go on from where the last
//! run left it — the anchor the phone received from the server then still holds. Retries
//! wait out core's backoff by moving the clock forward; each move is printed
//! (`clock WALL MONO`) so the next run can start from there.
//!
//! Lines on stdout mark how far a run got: `opened`, `anchored SINCE` or `unanchored`,
//! `pulled`, `pushing` (the first blob bytes), `round N acknowledged A deferred D pending
//! P`, `clock WALL MONO`, `done`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tandem_core::clock::{Clock as _, ManualClock};
use tandem_core::phone::ManualLocation;
use tandem_core::sync::{HttpTransport, Timeouts};
use tandem_core::testing::World;

/// Sync rounds before giving up (each round waits out the backoff on the manual clock).
const MAX_ROUNDS: u32 = 200;

#[derive(Parser)]
#[command(about = "Sync an existing phone folder until its outbox is empty")]
struct Args {
    /// The phone's folder.
    #[arg(long)]
    dir: PathBuf,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    #[arg(long)]
    server: String,
    /// The phone's wall clock, UTC ms.
    #[arg(long, allow_negative_numbers = true)]
    wall_ms: i64,
    /// Milliseconds since the device booted (goes on across runs of the app).
    #[arg(long)]
    monotonic_ms: i64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => {
            println!("done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sim-phone: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), tandem_core::Error> {
    let clock = Arc::new(ManualClock::new(args.wall_ms, args.monotonic_ms));
    let phone = World::reopen_phone(
        &args.dir,
        clock.clone(),
        Arc::new(ManualLocation::default()),
    )?;
    println!("opened");
    match phone.now()?.since_anchor_ms {
        Some(since) => println!("anchored {since}"),
        None => println!("unanchored"),
    }
    let transport = HttpTransport::new(
        &args.server,
        Timeouts {
            connect: std::time::Duration::from_secs(5),
            read: std::time::Duration::from_secs(10),
            write: std::time::Duration::from_secs(10),
        },
    );
    // One pull first, so the output tells a kill in the pull from one in the push.
    match phone
        .device_token()
        .and_then(|token| tandem_core::sync::pull(&phone, &transport, &token))
    {
        Ok(_) => println!("pulled"),
        Err(e) => println!("pull failed: {e}"),
    }
    for round in 1..=MAX_ROUNDS {
        let mut announced = false;
        let report = tandem_core::sync::sync_now(&phone, &transport, &mut |_, _| {
            if !announced {
                println!("pushing");
                announced = true;
            }
        });
        let status = match report {
            Ok(report) => {
                println!(
                    "round {round} acknowledged {} deferred {} pending {}",
                    report.pushed.acknowledged,
                    report.pushed.deferred,
                    report.status.outbox.pending
                );
                report.status
            }
            Err(e) => {
                println!("round {round} failed: {e}");
                phone.sync_status()?
            }
        };
        if status.outbox.pending == 0 {
            return Ok(());
        }
        // Wait out the backoff: the next attempt is due then (at least a second on).
        let due = status.outbox.next_attempt_ms.unwrap_or(0);
        clock.advance_ms((due - clock.wall_ms()).max(1_000));
        println!("clock {} {}", clock.wall_ms(), clock.monotonic_ms());
    }
    Err(tandem_core::Error::NotReady(format!(
        "the outbox is not empty after {MAX_ROUNDS} sync rounds"
    )))
}
