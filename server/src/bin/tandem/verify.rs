//! `tandem verify <bundle.zip | folder> [--server-key FINGERPRINT] [--trust keys.json] [--json]`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use tandem_core::bundle::{
    BundleError, CheckResult, Trust, VerificationReport, open_source, parse_fingerprint,
    verify_bundle,
};

/// Exit code of a bundle with no failed check.
const VALID: u8 = 0;
/// Exit code of a bundle with a failed check.
const INVALID: u8 = 1;
/// Exit code of a usage or I/O error (nothing was verified).
const ERROR: u8 = 2;

/// Arguments of `tandem verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle: a ZIP export, or a folder holding manifest.json.
    bundle: PathBuf,
    /// The server key's fingerprint (its kid: 64 hex digits, from the export note, the
    /// bank's letter or /v1/server-key). The export's key with that fingerprint and its
    /// certificates of the signing phones then check every server signature, enrolment and
    /// revocation.
    #[arg(long, value_name = "FINGERPRINT")]
    server_key: Option<String>,
    /// Trusted keys obtained separately: server public keys and the device-key registry
    /// (JSON). Without it or --server-key, checks that need a key are reported "not checked
    /// (no trust given)".
    #[arg(long, value_name = "keys.json")]
    trust: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the verification and prints the report.
pub fn run(args: &VerifyArgs) -> ExitCode {
    let mut trust = match &args.trust {
        Some(path) => match Trust::load(path) {
            Ok(trust) => trust,
            Err(e) => return error(&format!("cannot read trust file: {e}")),
        },
        None => Trust::none(),
    };
    let fingerprint = match args.server_key.as_deref().map(parse_fingerprint) {
        None => None,
        Some(Ok(kid)) => Some(kid),
        Some(Err(e)) => return error(&format!("--server-key: {e}")),
    };
    let source = match open_source(&args.bundle) {
        Ok(source) => source,
        Err(e) => return refused(e, "cannot open bundle"),
    };
    if let Some(fingerprint) = fingerprint {
        match Trust::from_server_key(source.as_ref(), &fingerprint) {
            Ok(given) => {
                trust.server_keys.extend(given.server_keys);
                trust.devices.extend(given.devices);
            }
            Err(e) => return refused(e, "cannot read the server's certificates"),
        }
    }
    let report = verify_bundle(source.as_ref(), &trust);
    let text = if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => return error(&format!("cannot encode the report: {e}")),
        }
    } else {
        table(&report)
    };
    if std::io::stdout().write_all(text.as_bytes()).is_err() {
        return ExitCode::from(ERROR);
    }
    ExitCode::from(if report.is_valid() { VALID } else { INVALID })
}

/// A bundle that cannot be tied to what the reader trusts, or whose directory no honest
/// export has, is invalid (exit 1); any other error leaves it unverified (exit 2).
fn refused(e: BundleError, context: &str) -> ExitCode {
    match e {
        BundleError::Tampered { .. } | BundleError::ServerKeyAbsent { .. } => {
            println!("INVALID: {}", e.to_string().replace('\n', " "));
            ExitCode::from(INVALID)
        }
        e => error(&format!("{context}: {e}")),
    }
}

fn error(message: &str) -> ExitCode {
    // One readable line: no backtrace, no debug formatting.
    eprintln!("tandem verify: {}", message.replace('\n', " "));
    ExitCode::from(ERROR)
}

/// The human-readable report: one row per check.
fn table(report: &VerificationReport) -> String {
    let mut out = String::new();
    match (&report.bundle_id, &report.manifest_digest) {
        (Some(id), Some(digest)) => {
            out.push_str(&format!("bundle {id}\nmanifest sha256 {digest}\n\n"))
        }
        _ => out.push_str("bundle: manifest unreadable\n\n"),
    }
    let width = report
        .checks
        .iter()
        .map(|c| c.name.as_str().len())
        .max()
        .unwrap_or(0)
        .max("check".len());
    out.push_str(&format!("{:<width$}  {:<11}  detail\n", "check", "result"));
    for check in &report.checks {
        let row = format!(
            "{:<width$}  {:<11}  {}",
            check.name.as_str(),
            check.result.label(),
            check.result.detail()
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    let count = |f: fn(&CheckResult) -> bool| report.checks.iter().filter(|c| f(&c.result)).count();
    let failed = count(|r| r.is_fail());
    let unchecked = count(|r| matches!(r, CheckResult::NotChecked { .. }));
    out.push('\n');
    if failed == 0 {
        out.push_str(&format!(
            "VALID: no check failed ({unchecked} not checked, see above)\n"
        ));
    } else {
        out.push_str(&format!("INVALID: {failed} check(s) failed\n"));
    }
    out
}
