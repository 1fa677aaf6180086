//! `tandem audit verify [--data-dir DIR | --database-url URL] [--key-file FILE]
//! [--server-key FINGERPRINT] [--checkpoint FILE]… [--json]`: checks the audit log's hash
//! chain, its head and its anchors in the transparency log (`tandem_server::audit::verify`).
//! Exit 0: everything holds; 1: something was changed or removed (each finding named);
//! 2: the check could not be made (usage, unreadable database or key).

use std::path::PathBuf;
use std::process::ExitCode;

use tandem_core::crypto::Signer as _;
use tandem_core::model::Signed;
use tandem_core::tlog::Checkpoint;
use tandem_server::audit::verify::{Verification, verify};
use tandem_server::{db, key};

const VALID: u8 = 0;
const INVALID: u8 = 1;
const ERROR: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check the chain of every entry, the head, and each anchor in the transparency log.
    /// Exit 0 all holds, 1 a finding (altered, missing or cut-off entries), 2 cannot check.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The server's data folder (its SQLite database and key).
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = tandem_server::serve::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; default: `tandem.db` in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The server's key (read only, never created); default: `server-key.p8` in the data
    /// folder. Checkpoints must verify with it.
    #[arg(long, env = "TANDEM_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The server key's fingerprint (64 hex digits) as known from elsewhere: the key file
    /// must be that key.
    #[arg(long, value_name = "FINGERPRINT")]
    server_key: Option<String>,
    /// A signed checkpoint kept outside this database (a phone's receipt, an earlier
    /// export, a copy taken by the bank): today's log must extend it. Repeatable.
    #[arg(long, value_name = "checkpoint.json")]
    checkpoint: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AuditArgs) -> ExitCode {
    let AuditCommand::Verify(args) = args.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return error(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(verify_command(args))
}

async fn verify_command(args: VerifyArgs) -> ExitCode {
    let key_path = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server-key.p8"));
    let signer = match key::load(&key_path) {
        Ok(s) => s,
        Err(e) => return error(&e.to_string()),
    };
    let public = signer.public_key();
    if let Some(expected) = &args.server_key
        && !public
            .kid()
            .to_string()
            .eq_ignore_ascii_case(expected.trim())
    {
        return error(&format!(
            "the key file {} is not the server key {expected}",
            key_path.display()
        ));
    }
    let mut held = Vec::new();
    for path in &args.checkpoint {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<Signed<Checkpoint>>(&b).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(c) => held.push(c),
            Err(e) => return error(&format!("checkpoint {}: {e}", path.display())),
        }
    }
    let opened = match &args.database_url {
        Some(url) => db::open_existing(url).await,
        None => db::open_existing_sqlite_file(&args.data_dir.join("tandem.db")).await,
    };
    let database = match opened {
        Ok(d) => d,
        Err(e) => return error(&format!("cannot open the database: {e}")),
    };
    let started = std::time::Instant::now();
    let result = verify(database.as_ref(), &public, &held).await;
    database.close().await;
    let verification = match result {
        Ok(v) => v,
        Err(e) => return error(&e.to_string()),
    };
    let text = if args.json {
        json(&verification)
    } else {
        table(&verification, started.elapsed())
    };
    print!("{text}");
    ExitCode::from(if verification.holds() { VALID } else { INVALID })
}

fn table(v: &Verification, took: std::time::Duration) -> String {
    let mut out = String::new();
    out.push_str(&format!("audit log entries      {}\n", v.entries));
    out.push_str(&format!("last entry             {}\n", v.last_seq));
    out.push_str(&format!("anchors checked        {}\n", v.anchors));
    match &v.newest_anchor {
        Some(a) => out.push_str(&format!(
            "newest anchor          entry {} at transparency log index {}\n",
            a.audit_seq, a.log_index
        )),
        None => out.push_str("newest anchor          none yet\n"),
    }
    out.push_str(&format!(
        "not yet anchored       {} (anchored at the next hourly anchoring)\n",
        v.unanchored
    ));
    out.push_str(&format!("transparency log       {} entries\n", v.log_size));
    out.push_str(&format!("held checkpoints       {}\n", v.held_checkpoints));
    out.push_str(&format!(
        "checked in             {:.2} s\n\n",
        took.as_secs_f64()
    ));
    if v.holds() {
        out.push_str("VALID: the chain, its head and every anchor hold\n");
    } else {
        for f in &v.findings {
            out.push_str(&format!("FINDING: {f}\n"));
        }
        out.push_str(&format!(
            "INVALID: {} finding(s): the audit log was changed or cut\n",
            v.findings.len()
        ));
    }
    out
}

fn json(v: &Verification) -> String {
    let doc = serde_json::json!({
        "valid": v.holds(),
        "entries": v.entries,
        "last_seq": v.last_seq,
        "anchors": v.anchors,
        "newest_anchor": v.newest_anchor.as_ref().map(|a| serde_json::json!({
            "log_index": a.log_index,
            "audit_seq": a.audit_seq,
            "head_hash": a.head_hash,
            "anchored_ms": a.anchored_ms,
        })),
        "unanchored": v.unanchored,
        "log_size": v.log_size,
        "held_checkpoints": v.held_checkpoints,
        "findings": v.findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn error(message: &str) -> ExitCode {
    eprintln!("tandem audit verify: {}", message.replace('\n', " "));
    ExitCode::from(ERROR)
}
