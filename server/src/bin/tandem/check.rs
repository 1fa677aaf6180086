//! `tandem serve --check`: validates what `tandem serve` would start with — the database
//! reachable and migrated or migratable by this binary, the key file readable and the one
//! that signed this database's transparency log, the data folder writable, the listen
//! address free, the bucket reachable with its credentials when evidence is in S3 —
//! changing nothing, and says so in one line. For a deployment's pre-start step
//! (`ExecStartPre=` in docs/deploy.md) and for operators.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tandem_core::crypto::Signer as _;
use tandem_core::model::Signed;
use tandem_core::tlog::Checkpoint;
use tandem_server::db::{self, Db, SchemaState};

use crate::serve::ServeArgs;

/// What is wrong with a configuration: each message is one line naming the thing to fix
/// (never a password: URLs are not printed).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `--clock-offset-ms` without `--demo`.
    #[error("--clock-offset-ms (TANDEM_CLOCK_OFFSET_MS) is allowed only with --demo")]
    ShiftedClock,
    /// The data folder cannot be created or written.
    #[error("data folder {path} is not writable: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database cannot be reached or read.
    #[error("database ({backend}) not usable: {source}")]
    Database {
        /// `postgres` or `sqlite`.
        backend: &'static str,
        /// What failed.
        source: db::DbError,
    },
    /// A newer server migrated the database.
    #[error(
        "database has migration {version}, which this tandem does not know: a newer version \
         migrated it; run that version"
    )]
    NewerSchema {
        /// The unknown version.
        version: i64,
    },
    /// An applied migration differs from this binary's.
    #[error("database migration {version} differs from this tandem's or failed half-way")]
    ChangedSchema {
        /// Its version.
        version: i64,
    },
    /// The key file exists but cannot be read or parsed.
    #[error(transparent)]
    Key(#[from] tandem_server::key::KeyError),
    /// The key file is missing while the database's log was signed by some key.
    #[error(
        "no key file at {0}, but this database's transparency log is signed: give every \
         server the key that signed it (--key-file)"
    )]
    KeyMissing(PathBuf),
    /// The key file is not the key that signed the database's log.
    #[error(
        "key file {path} ({log_id}) did not sign this database's transparency log ({signed_by}): \
         every server on one database needs the same key"
    )]
    KeyMismatch {
        /// The key file.
        path: PathBuf,
        /// The log id of its key.
        log_id: String,
        /// The log id in the newest checkpoint.
        signed_by: String,
    },
    /// The newest checkpoint cannot be read.
    #[error("the newest checkpoint of the transparency log is unreadable")]
    CheckpointUnreadable,
    /// The evidence bucket cannot be reached, or refuses the credentials.
    #[error(transparent)]
    Bucket(#[from] tandem_server::blobstore::BlobStoreError),
    /// The master key is missing, malformed or not this database's.
    #[error(transparent)]
    MasterKey(#[from] tandem_server::blobstore::KeyringError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Runs every check in order and returns the one-line summary, or the first failure.
pub async fn run(args: &ServeArgs) -> Result<String, CheckError> {
    if args.clock_offset_ms != 0 && !args.demo {
        return Err(CheckError::ShiftedClock);
    }
    writable(&args.data_dir)?;
    let (backend, db) = open(args).await?;
    let schema = match &db {
        Some(db) => db
            .schema_state()
            .await
            .map_err(|source| CheckError::Database { backend, source })?,
        None => SchemaState::Pending {
            applied: 0,
            pending: 0,
        },
    };
    let schema_line = match schema {
        SchemaState::Current { applied } => format!("migrated ({applied} migrations)"),
        SchemaState::Pending { applied: 0, .. } if db.is_none() => {
            "new (created at start)".to_owned()
        }
        SchemaState::Pending { applied, pending } => {
            format!("migratable ({applied} applied, {pending} to apply at start)")
        }
        SchemaState::Newer { version } => return Err(CheckError::NewerSchema { version }),
        SchemaState::Changed { version } => return Err(CheckError::ChangedSchema { version }),
    };
    let key_path = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server-key.p8"));
    let newest = match &db {
        // A database not yet migrated this far has no log to match.
        Some(db) if matches!(schema, SchemaState::Current { .. }) => db
            .checkpoint(None)
            .await
            .map_err(|source| CheckError::Database { backend, source })?,
        _ => None,
    };
    let master_line = match &db {
        Some(db) if matches!(schema, SchemaState::Current { .. }) => {
            master(args, db.clone()).await?
        }
        _ => "master key: set up on first start".to_owned(),
    };
    if let Some(db) = db {
        db.close().await;
    }
    let key_line = key(&key_path, newest.as_deref())?;
    let listener =
        std::net::TcpListener::bind(args.listen).map_err(|source| CheckError::Listen {
            addr: args.listen,
            source,
        })?;
    drop(listener);
    let store_line = match args.s3.config() {
        Some(s3) => {
            tandem_server::blobstore::S3Blobs::open(&s3)?
                .probe()
                .await?;
            format!("bucket {} reachable", s3.bucket)
        }
        None => "evidence in the data folder".to_owned(),
    };
    Ok(format!(
        "ok: {backend} database {schema_line}; {key_line}; {master_line}; data folder {} \
         writable; {store_line}; {} free",
        args.data_dir.display(),
        args.listen
    ))
}

/// The master key as `tandem serve` would find it, checked against the database's keyring
/// without creating either.
async fn master(args: &ServeArgs, db: std::sync::Arc<dyn Db>) -> Result<String, CheckError> {
    use tandem_server::blobstore::keys::{LocalMasterKey, MASTER_KEY_ENV, MasterKey};
    use tandem_server::blobstore::{Keyring, KeyringError};
    let default = args.data_dir.join("master.key");
    let path = args.master_key_file.as_deref().unwrap_or(&default);
    let (key, from): (std::sync::Arc<dyn MasterKey>, String) =
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            let key = LocalMasterKey::from_base64(&text, MASTER_KEY_ENV)?;
            (std::sync::Arc::new(key), MASTER_KEY_ENV.to_owned())
        } else {
            match LocalMasterKey::load(path) {
                Ok(key) => (std::sync::Arc::new(key), path.display().to_string()),
                Err(KeyringError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return match db.keyring_check().await {
                        Ok(None) => Ok(format!(
                            "master key {} created on first start",
                            path.display()
                        )),
                        Ok(Some(_)) => Err(KeyringError::Missing(path.to_owned()).into()),
                        Err(e) => Err(KeyringError::Db(e).into()),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        };
    match Keyring::new(db, key).opens_keyring().await? {
        Some(true) => Ok(format!("master key ({from}) opens the keyring")),
        Some(false) => Err(KeyringError::WrongMaster.into()),
        None => Ok(format!(
            "master key ({from}) sets up the keyring on first start"
        )),
    }
}

/// Creates the folder if needed (as the server would), and writes, syncs and removes a file.
fn writable(dir: &Path) -> Result<(), CheckError> {
    use std::io::Write as _;
    use std::os::unix::fs::DirBuilderExt as _;
    let err = |source| CheckError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let probe = dir.join(format!(".tandem-check-{}", std::process::id()));
    let written = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(b"tandem serve --check\n")?;
        f.sync_all()
    });
    let removed = std::fs::remove_file(&probe);
    written.map_err(err)?;
    removed.map_err(err)
}

/// Opens the database without creating or migrating it; `None` for a SQLite file that does
/// not exist yet (the server creates it).
async fn open(
    args: &ServeArgs,
) -> Result<(&'static str, Option<std::sync::Arc<dyn Db>>), CheckError> {
    match &args.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let db = db::open_existing(url)
                .await
                .map_err(|source| CheckError::Database {
                    backend: "postgres",
                    source,
                })?;
            Ok(("postgres", Some(db)))
        }
        Some(url) => {
            let opened = db::open_existing(url).await;
            match opened {
                Ok(db) => Ok(("sqlite", Some(db))),
                // A missing file is created at start (its folder was checked above, or is
                // the URL's own and the server reports it).
                Err(db::DbError::Sqlx(sqlx::Error::Database(_))) if url.starts_with("sqlite:") => {
                    Ok(("sqlite", None))
                }
                Err(source) => Err(CheckError::Database {
                    backend: "sqlite",
                    source,
                }),
            }
        }
        None => {
            let file = args.data_dir.join("tandem.db");
            if !file.exists() {
                return Ok(("sqlite", None));
            }
            let db = db::open_existing_sqlite_file(&file)
                .await
                .map_err(|source| CheckError::Database {
                    backend: "sqlite",
                    source,
                })?;
            Ok(("sqlite", Some(db)))
        }
    }
}

/// Reads the key (never creating it) and matches it with the log's newest checkpoint.
fn key(path: &Path, newest: Option<&str>) -> Result<String, CheckError> {
    if !path.exists() {
        return match newest {
            Some(_) => Err(CheckError::KeyMissing(path.to_owned())),
            None => Ok(format!("key {} created at start", path.display())),
        };
    }
    let signer = tandem_server::key::load_or_create(path)?;
    let public = signer.public_key();
    let log_id = tandem_server::tlog::log_id(&public);
    if let Some(json) = newest {
        let checkpoint: Signed<Checkpoint> =
            serde_json::from_str(json).map_err(|_| CheckError::CheckpointUnreadable)?;
        if checkpoint.verify(&public).is_err() {
            let signed_by = serde_json::from_str::<Checkpoint>(&checkpoint.body)
                .map_or_else(|_| "another key".to_owned(), |c| c.log_id);
            return Err(CheckError::KeyMismatch {
                path: path.to_owned(),
                log_id,
                signed_by,
            });
        }
    }
    Ok(format!("key {} ({log_id})", path.display()))
}
