//! `tandem bank destroy --bank CODE --requested-by LOGIN --approved-by LOGIN --out DIR`:
//! a bank's contract ended (seed 5.2.5). After its retention and with no legal hold (E04),
//! destroys the bank's key and with it every blob only that bank held, and writes the
//! certificate signed by the server key (`…json`, its raw Ed25519 signature `…sig`, and the
//! server key as `server-key.pem`, so that `openssl pkeyutl -verify` checks it without us).
//! Exit 0: destroyed; 1: refused (the rule named) or failed; 2: cannot run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tandem_server::blobstore::keys::resolve_master;
use tandem_server::blobstore::{BlobStore, Keyring};
use tandem_server::retention::bank::{BankDestroyError, BankDestruction, destroy_bank};
use tandem_server::{db, key};

#[derive(Debug, clap::Args)]
pub struct BankArgs {
    #[command(subcommand)]
    command: BankCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BankCommand {
    /// The bank's contract ended: destroy its key and evidence after its retention (E04),
    /// with a signed certificate. Exit 0 destroyed, 1 refused or failed, 2 cannot run.
    Destroy(DestroyArgs),
}

#[derive(Debug, clap::Args)]
struct DestroyArgs {
    /// The bank's code.
    #[arg(long)]
    bank: String,
    /// The administrator of the bank asking (a console login).
    #[arg(long)]
    requested_by: String,
    /// A second administrator of the bank approving (another console login).
    #[arg(long)]
    approved_by: String,
    /// Folder to write the certificate, its signature and the server key into.
    #[arg(long)]
    out: PathBuf,
    /// The server's data folder (SQLite database, keys, blobs).
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = tandem_server::serve::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; default: `tandem.db` in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The server's key, which signs the certificate; default: `server-key.p8` in the data
    /// folder.
    #[arg(long, env = "TANDEM_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The master key; default: `master.key` in the data folder (or `TANDEM_MASTER_KEY`).
    #[arg(long, env = "TANDEM_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Evidence in an S3-compatible bucket, as `tandem serve` is given it.
    #[command(flatten)]
    s3: crate::blobs::S3Args,
}

pub fn run(args: BankArgs) -> ExitCode {
    let BankCommand::Destroy(args) = args.command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(2, &format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(destroy(args))
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("tandem bank destroy: {message}");
    ExitCode::from(code)
}

async fn destroy(args: DestroyArgs) -> ExitCode {
    let opened = match &args.database_url {
        Some(url) => db::open_existing(url).await,
        None => db::open_existing_sqlite_file(&args.data_dir.join("tandem.db")).await,
    };
    let db = match opened {
        Ok(db) => db,
        Err(e) => return fail(2, &e.to_string()),
    };
    let key_path = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server-key.p8"));
    let signer = match key::load(&key_path) {
        Ok(s) => s,
        Err(e) => return fail(2, &e.to_string()),
    };
    let master = match resolve_master(
        args.master_key_file.as_deref(),
        &args.data_dir.join("master.key"),
        db.as_ref(),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => return fail(2, &e.to_string()),
    };
    let keys = Keyring::new(db.clone(), master);
    let now_ms = tandem_server::clock::system_now_ms();
    if let Err(e) = keys.check_master(now_ms).await {
        return fail(2, &e.to_string());
    }
    let root = args.data_dir.join("blobs");
    let store = match args.s3.config() {
        Some(s3) => BlobStore::open_s3(root, &s3, keys),
        None => BlobStore::open(root, keys),
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => return fail(2, &e.to_string()),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return fail(2, &format!("{}: {e}", args.out.display()));
    }
    let request = BankDestruction {
        bank_code: &args.bank,
        requested_by: &args.requested_by,
        approved_by: &args.approved_by,
        now_ms,
    };
    let done = destroy_bank(Arc::clone(&db), &store, &signer, request).await;
    db.close().await;
    let cert = match done {
        Ok(cert) => cert,
        Err(e @ BankDestroyError::Db(_)) => return fail(2, &e.to_string()),
        Err(e) => return fail(1, &e.to_string()),
    };
    let stem = format!("bank-{}-destruction-{}", args.bank, cert.id);
    let json = args.out.join(format!("{stem}.json"));
    let sig = args.out.join(format!("{stem}.sig"));
    let pem = args.out.join("server-key.pem");
    let written = write(&json, &cert.document)
        .and_then(|()| write(&sig, &cert.signature))
        .and_then(|()| {
            write(
                &pem,
                tandem_core::bundle::public_key_pem(&tandem_core::crypto::Signer::public_key(
                    &signer,
                ))
                .as_bytes(),
            )
        });
    if let Err(e) = written {
        // The key is gone already: say where the certificate could not go, loudly.
        return fail(
            1,
            &format!(
                "bank {} destroyed (certificate {}), but writing the certificate failed: {e}",
                args.bank, cert.id
            ),
        );
    }
    println!(
        "bank {}: key destroyed; {} blobs made unreadable and removed ({} left in storage, \
         sealed for good); {} held by other banks too, kept for them",
        args.bank,
        cert.shredded,
        cert.left_in_storage.len(),
        cert.kept_for_others
    );
    println!("certificate: {}", json.display());
    println!(
        "check it: openssl pkeyutl -verify -pubin -inkey {} -rawin -in {} -sigfile {}",
        pem.display(),
        json.display(),
        sig.display()
    );
    ExitCode::SUCCESS
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
