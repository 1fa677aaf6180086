//! Where `tandem serve` keeps evidence (its `--s3-…` flags), and `tandem blobs migrate`:
//! copies the data folder's blobs into a bucket and verifies every object read back.
//! Exit 0: every blob is in the bucket and verified; 1: some blob failed (each named);
//! 2: cannot run (usage, settings, folder).

use std::path::PathBuf;
use std::process::ExitCode;

use tandem_server::blobstore::migrate::migrate_folder;
use tandem_server::blobstore::{BlobStoreError, S3Blobs, S3Config};

/// The bucket flags of `tandem serve` and `tandem blobs migrate`; each can also come from
/// the environment. Without `--s3-bucket` blobs stay in the data folder.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// Keep evidence in this S3-compatible bucket instead of the data folder's `blobs/`
    /// (uploads in progress stay in the data folder).
    #[arg(long = "s3-bucket", env = "TANDEM_S3_BUCKET")]
    pub bucket: Option<String>,
    /// The S3 API's address, e.g. `https://garage.internal:3900` (default: AWS S3).
    #[arg(long = "s3-endpoint", env = "TANDEM_S3_ENDPOINT", default_value = "")]
    pub endpoint: String,
    /// The region the store signs with (Garage: its `s3_region`).
    #[arg(
        long = "s3-region",
        env = "TANDEM_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Access key id.
    #[arg(
        long = "s3-access-key-id",
        env = "TANDEM_S3_ACCESS_KEY_ID",
        default_value = ""
    )]
    pub access_key_id: String,
    /// Secret access key (prefer the environment: a flag shows in the process list).
    #[arg(
        long = "s3-secret-access-key",
        env = "TANDEM_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub secret_access_key: String,
    /// Address the bucket as `bucket.host` (AWS); self-hosted stores take `host/bucket`.
    #[arg(
        long = "s3-virtual-hosted-style",
        env = "TANDEM_S3_VIRTUAL_HOSTED_STYLE"
    )]
    pub virtual_hosted_style: bool,
    /// Allow a plain `http://` endpoint (a store on this machine; never across a network).
    #[arg(long = "s3-allow-http", env = "TANDEM_S3_ALLOW_HTTP")]
    pub allow_http: bool,
}

impl S3Args {
    /// The bucket's settings, `None` when no bucket is named.
    pub fn config(&self) -> Option<S3Config> {
        let bucket = self.bucket.clone().filter(|b| !b.is_empty())?;
        Some(S3Config {
            endpoint: self.endpoint.clone(),
            bucket,
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            virtual_hosted_style: self.virtual_hosted_style,
            allow_http: self.allow_http,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct BlobsArgs {
    #[command(subcommand)]
    command: BlobsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BlobsCommand {
    /// Copy the data folder's blobs into the bucket named by the `--s3-…` flags and
    /// verify every object read back. Exit 0 all verified, 1 a blob failed, 2 cannot run.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// The server's data folder, whose `blobs/` is copied.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = tandem_server::serve::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(flatten)]
    s3: S3Args,
}

pub fn run(args: BlobsArgs) -> ExitCode {
    let BlobsCommand::Migrate(args) = args.command;
    let Some(config) = args.s3.config() else {
        eprintln!("tandem blobs migrate: name the bucket (--s3-bucket or TANDEM_S3_BUCKET)");
        return ExitCode::from(2);
    };
    let folder = args.data_dir.join("blobs");
    let report = S3Blobs::open(&config).and_then(|bucket| {
        if !folder.is_dir() {
            return Err(BlobStoreError::Io {
                path: folder.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        migrate_folder(&folder, &bucket)
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem blobs migrate: {e}");
            return ExitCode::from(2);
        }
    };
    for (key, reason) in &report.failed {
        println!("FAILED {key}: {reason}");
    }
    println!(
        "{} blobs verified in s3://{}/ ({} bytes): {} copied, {} there already; {} failed; {} other files left alone",
        report.verified,
        config.bucket,
        report.bytes,
        report.copied,
        report.present,
        report.failed.len(),
        report.skipped
    );
    ExitCode::from(if report.failed.is_empty() { 0 } else { 1 })
}
