//! `tandem`: the command-line entry of Tandem's server. For now it has one subcommand,
//! `tandem verify`, which checks an evidence bundle with the same routine the phone and the
//! server use.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod verify_cmd;

/// Tandem: field-visit evidence for collection agencies.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check an evidence bundle (a ZIP export or its folder): digests, event chain,
    /// signatures, server documents. Exit 0 valid, 1 a check failed, 2 usage or I/O error.
    Verify(verify_cmd::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with success; usage errors exit 2 (clap's rule).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Verify(args) => verify_cmd::run(&args),
    }
}
