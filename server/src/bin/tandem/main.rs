//! `tandem`: the command-line entry of Tandem's server. `tandem serve` runs the server;
//! `tandem verify` checks an evidence bundle with the same routine the phone and the server
//! use; `tandem field` drives one phone from the terminal.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod bank;
mod blobs;
mod check;
mod field;
mod serve;
mod verify;

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
    Verify(verify::VerifyArgs),
    /// Run the server (SQLite in ./tandem-data by default, or PostgreSQL via DATABASE_URL).
    Serve(serve::ServeArgs),
    /// Check the audit log: its hash chain, its head and its anchors in the transparency
    /// log. Exit 0 all holds, 1 something was changed or removed, 2 cannot check.
    Audit(audit::AuditArgs),
    /// The evidence store: copy the data folder's blobs into an S3-compatible bucket.
    Blobs(blobs::BlobsArgs),
    /// A bank's contract ended: destroy its key and evidence after retention (E04), with a
    /// certificate signed by the server key.
    Bank(bank::BankArgs),
    /// One phone in the terminal: enrol, sync, check in with a partner's phone, capture,
    /// co-sign receipts, seal and push (run twice, with two --dir folders, for a visit).
    Field(field::FieldArgs),
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
        Command::Verify(args) => verify::run(&args),
        Command::Serve(args) if args.check => check(&args),
        Command::Serve(args) => serve(args),
        Command::Field(args) => field::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Blobs(args) => blobs::run(args),
        Command::Bank(args) => bank::run(args),
    }
}

fn serve(args: serve::ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem serve: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            eprintln!("tandem serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tandem serve --check`: one line on stdout and exit 0, or one line on stderr and exit 1.
fn check(args: &serve::ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem serve --check: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(check::run(args)) {
        Ok(summary) => {
            println!("tandem serve --check: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tandem serve --check: {e}");
            ExitCode::FAILURE
        }
    }
}
