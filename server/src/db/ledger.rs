//! The evidence ledger: uploaded bundles, the transparency log's nodes, head and
//! checkpoints, and flags kept for review.
//!
//! A commit is ONE transaction: it claims the pending bundle (written first), bumps the log
//! head (`UPDATE … RETURNING`: SQLite's write lock, PostgreSQL's row lock, so concurrent
//! commits on several servers get distinct consecutive indexes), reads the O(log n) nodes
//! the append needs, stores the new nodes, signs the checkpoint and the receipt, and stores
//! them with the bundle's verdict and flags, its receipts (C02) and the legal search's row of
//! its visit (`db::dossier`). A crash at any point leaves all or nothing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tandem_core::crypto::{Digest, Signer};
use tandem_core::model::{AddressId, BankId, BundleId, CaseId, DeviceId, Signed, VisitId};
use tandem_core::place::Coordinate;
use tandem_core::tlog::{Checkpoint, IngestReceipt, Verdict};
use uuid::Uuid;

use super::dossier::EvidenceVisit;
use super::{DbError, parse_datum};
use crate::tlog::{self, Appended, LoggedEntry, NodeKey};

/// A bundle as first uploaded (`PUT`), stored pending.
#[derive(Debug, Clone)]
pub struct NewBundle {
    /// Its id.
    pub id: BundleId,
    /// The visit's bank.
    pub bank_id: BankId,
    /// The visit's case.
    pub case_id: CaseId,
    /// The visit.
    pub visit_id: VisitId,
    /// The lead's phone (from the approval's team).
    pub lead_device_id: DeviceId,
    /// The partner's phone.
    pub partner_device_id: DeviceId,
    /// The phone that uploaded it.
    pub uploaded_by: DeviceId,
    /// SHA-256 of the manifest bytes.
    pub manifest_digest: Digest,
    /// `manifest.json`, exactly as signed.
    pub manifest: Vec<u8>,
    /// `signatures.json`, exactly as sent.
    pub signatures: Vec<u8>,
    /// When it arrived.
    pub received_ms: i64,
}

/// What became of a `PUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored, pending.
    Stored,
    /// The same bytes were stored already: nothing changed.
    Same,
    /// Another manifest is stored under this id (its digest): nothing changed.
    OtherManifest(Digest),
    /// The same manifest with other signature bytes: nothing changed.
    OtherSignatures,
}

/// A bundle's state in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleStatus {
    /// Uploaded, not yet committed.
    Pending,
    /// Committed and accepted.
    Accepted,
    /// Committed and quarantined (kept, logged, flagged).
    Quarantined,
}

impl BundleStatus {
    fn parse(s: &str) -> Result<Self, DbError> {
        Ok(match s {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "quarantined" => Self::Quarantined,
            _ => return Err(DbError::Corrupt("bundles.status")),
        })
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Quarantined => "quarantined",
        }
    }
}

/// A stored bundle.
#[derive(Debug, Clone)]
pub struct StoredBundle {
    /// Its id.
    pub id: BundleId,
    /// The visit's bank.
    pub bank_id: BankId,
    /// The lead's phone.
    pub lead_device_id: DeviceId,
    /// The partner's phone.
    pub partner_device_id: DeviceId,
    /// SHA-256 of the manifest.
    pub manifest_digest: Digest,
    /// `manifest.json`.
    pub manifest: Vec<u8>,
    /// `signatures.json`.
    pub signatures: Vec<u8>,
    /// Pending, accepted or quarantined.
    pub status: BundleStatus,
    /// Its log entry, once committed.
    pub log_index: Option<u64>,
    /// The verification report (JSON), once committed.
    pub report: Option<String>,
    /// The signed answer (JSON of `ServerReceipt`), once committed.
    pub answer: Option<String>,
}

/// A flag for review.
#[derive(Debug, Clone)]
pub struct NewFlag {
    /// `quarantine`, `review` or `equivocation`.
    pub kind: &'static str,
    /// What to look at (no personal data).
    pub detail: String,
    /// For equivocation: the other manifest's digest and bytes.
    pub other: Option<(Digest, Vec<u8>)>,
}

/// A stored flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlag {
    /// `quarantine`, `review` or `equivocation`.
    pub kind: String,
    /// What to look at.
    pub detail: String,
    /// For equivocation: the other manifest's digest (hex).
    pub other_digest: Option<String>,
}

/// What a commit stores, besides what it computes under the lock.
pub struct CommitInput<'a> {
    /// The bundle.
    pub id: BundleId,
    /// Its manifest digest (the log entry).
    pub manifest_digest: Digest,
    /// Accepted or quarantined.
    pub verdict: Verdict,
    /// The verification report, JSON.
    pub report: String,
    /// Flags to keep with it.
    pub flags: Vec<NewFlag>,
    /// The receipts and voids its events carry (C02), recorded in the same transaction.
    pub money: super::receipts::BundleMoney,
    /// The verified manifest, when the entry is a visit's (always, but for the log's own
    /// tests): the legal search's row of the visit is written from it in the same
    /// transaction, so committed evidence is never missing from the search.
    pub visit: Option<&'a tandem_core::bundle::Manifest>,
    /// The server's clock: receipt and checkpoint time.
    pub now_ms: i64,
    /// The server key, which signs the receipt and the checkpoint.
    pub signer: &'a dyn Signer,
}

/// The documents a commit signed.
#[derive(Debug, Clone)]
pub struct CommitSigned {
    /// The signed receipt.
    pub receipt: Signed<IngestReceipt>,
    /// The entry's inclusion proof in the new tree.
    pub inclusion_proof: Vec<Digest>,
    /// The signed checkpoint of the new tree.
    pub checkpoint: Signed<Checkpoint>,
}

/// What became of a commit.
#[derive(Debug, Clone)]
pub enum CommitOutcome {
    /// Logged and stored now.
    Committed(CommitSigned),
    /// It was not pending any more (a concurrent or earlier commit): nothing changed.
    NotPending,
}

/// An approved address of a case, as the ingest check needs it.
#[derive(Debug, Clone)]
pub struct CaseAddress {
    /// Its id.
    pub id: AddressId,
    /// Its position with its datum.
    pub position: Coordinate,
}

/// Storage for the evidence ledger and the transparency log.
#[async_trait]
pub trait LedgerDb: Send + Sync {
    /// Stores a bundle pending, unless its id is taken (then nothing changes).
    async fn put_bundle(&self, bundle: &NewBundle) -> Result<PutOutcome, DbError>;
    /// A bundle by id.
    async fn bundle(&self, id: BundleId) -> Result<Option<StoredBundle>, DbError>;
    /// The bundles received for a visit, oldest first.
    async fn visit_bundles(&self, visit: VisitId) -> Result<Vec<StoredBundle>, DbError>;
    /// Keeps a flag on a bundle.
    async fn add_flag(&self, bundle: BundleId, flag: &NewFlag, now_ms: i64) -> Result<(), DbError>;
    /// The flags on a bundle, oldest first.
    async fn flags(&self, bundle: BundleId) -> Result<Vec<StoredFlag>, DbError>;
    /// Commits a pending bundle with its log entry, signed receipt and checkpoint, in one
    /// transaction (see the module comment).
    async fn commit_bundle(&self, input: &CommitInput<'_>) -> Result<CommitOutcome, DbError>;
    /// The bank and approved addresses of a case; `None` when the case is unknown.
    async fn case_addresses(
        &self,
        case: CaseId,
    ) -> Result<Option<(BankId, Vec<CaseAddress>)>, DbError>;
    /// The bank of `visit` as the server approved it, when `device` is on its approved
    /// team; `None` for a visit the server never approved or a device not on its team.
    async fn approved_visit_bank(
        &self,
        visit: VisitId,
        device: DeviceId,
    ) -> Result<Option<BankId>, DbError>;
    /// How many entries the log holds.
    async fn log_size(&self) -> Result<u64, DbError>;
    /// The stored nodes among `keys` (absent ones are left out).
    async fn log_nodes(&self, keys: &[NodeKey]) -> Result<BTreeMap<NodeKey, Digest>, DbError>;
    /// A stored signed checkpoint (JSON), of `tree_size` or the newest.
    async fn checkpoint(&self, tree_size: Option<u64>) -> Result<Option<String>, DbError>;
    /// The manifest digest (hex) logged at `index`.
    async fn logged_entry(&self, index: u64) -> Result<Option<LoggedEntry>, DbError>;
    /// The leaf hashes of entries `from..to` (fewer when the log is shorter), in order.
    async fn log_leaves(&self, from: u64, to: u64) -> Result<Vec<Digest>, DbError>;
    /// The committed bundles' log entries with index in `from..to`: (index, manifest digest).
    async fn bundle_log_entries(&self, from: u64, to: u64) -> Result<Vec<(u64, Digest)>, DbError>;
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Corrupt(what))
}

fn to_u64(v: i64, what: &'static str) -> Result<u64, DbError> {
    u64::try_from(v).map_err(|_| DbError::Corrupt(what))
}

fn digest(bytes: &[u8], what: &'static str) -> Result<Digest, DbError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| DbError::Corrupt(what))
}

fn parse<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, DbError> {
    s.parse().map_err(|_| DbError::Corrupt(what))
}

/// `(level = $1 AND idx = $2) OR …` for `n` keys.
fn nodes_sql(n: usize) -> String {
    let mut sql = String::from("SELECT level, idx, hash FROM tlog_nodes WHERE ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str(&format!(
            "(level = ${} AND idx = ${})",
            2 * i + 1,
            2 * i + 2
        ));
    }
    sql
}

fn log_err(e: tandem_core::tlog::LogError) -> DbError {
    DbError::Log(e.to_string())
}

row_by_name! {
    /// A `bundles` row as [`bundle_select!`] reads it.
    struct BundleRow {
        id: String,
        bank_id: String,
        lead_device_id: String,
        partner_device_id: String,
        manifest_digest: String,
        manifest: Vec<u8>,
        signatures: Vec<u8>,
        status: String,
        log_index: Option<i64>,
        report: Option<String>,
        answer: Option<String>,
    }
}

/// The columns of a [`BundleRow`].
macro_rules! bundle_select {
    () => {
        "SELECT id, bank_id, lead_device_id, partner_device_id, manifest_digest, manifest, \
         signatures, status, log_index, report, answer FROM bundles"
    };
}

fn bundle_from(row: BundleRow) -> Result<StoredBundle, DbError> {
    Ok(StoredBundle {
        id: parse(&row.id, "bundles.id")?,
        bank_id: parse(&row.bank_id, "bundles.bank_id")?,
        lead_device_id: parse(&row.lead_device_id, "bundles.lead_device_id")?,
        partner_device_id: parse(&row.partner_device_id, "bundles.partner_device_id")?,
        manifest_digest: parse(&row.manifest_digest, "bundles.manifest_digest")?,
        manifest: row.manifest,
        signatures: row.signatures,
        status: BundleStatus::parse(&row.status)?,
        log_index: row
            .log_index
            .map(|i| to_u64(i, "bundles.log_index"))
            .transpose()?,
        report: row.report,
        answer: row.answer,
    })
}

macro_rules! impl_ledger_db {
    ($db:ty, $conn:ty) => {
        impl $db {
            /// Appends `leaf_hash` to the transparency log inside `tx`: takes the head (which
            /// serialises appends across every server on this database), stores the nodes
            /// it completes, and signs and stores the new tree's checkpoint.
            pub(super) async fn append_leaf_in(
                tx: &mut $conn,
                leaf_hash: Digest,
                signer: &dyn Signer,
                now_ms: i64,
            ) -> Result<(Appended, Signed<Checkpoint>), DbError> {
                let new_size: i64 = sqlx::query_scalar(
                    "UPDATE tlog_head SET size = size + 1 WHERE id = 1 RETURNING size",
                )
                .fetch_one(&mut *tx)
                .await?;
                let size = to_u64(new_size - 1, "tlog_head.size")?;
                let run = tlog::append_leaf_run(size, leaf_hash);
                let keys = tlog::needed_nodes(size, &run).map_err(log_err)?;
                let nodes = Self::fetch_nodes(&mut *tx, &keys).await?;
                let (appended, new_nodes): (Appended, _) =
                    tlog::compute(size, nodes, &run).map_err(log_err)?;
                for ((level, idx), hash) in &new_nodes {
                    sqlx::query("INSERT INTO tlog_nodes (level, idx, hash) VALUES ($1, $2, $3)")
                        .bind(i64::from(*level))
                        .bind(to_i64(*idx, "tlog_nodes.idx")?)
                        .bind(hash.as_bytes().to_vec())
                        .execute(&mut *tx)
                        .await?;
                }
                let checkpoint = Signed::sign(
                    &Checkpoint {
                        log_id: tlog::log_id(&signer.public_key()),
                        tree_size: appended.tree_size,
                        root: appended.root,
                        timestamp_ms: now_ms,
                    },
                    signer,
                )
                .map_err(|e| DbError::Log(e.to_string()))?;
                let checkpoint_json =
                    serde_json::to_string(&checkpoint).map_err(|e| DbError::Log(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO tlog_checkpoints (tree_size, signed, created_ms) \
                     VALUES ($1, $2, $3)",
                )
                .bind(new_size)
                .bind(checkpoint_json)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                Ok((appended, checkpoint))
            }

            async fn fetch_nodes(
                conn: &mut $conn,
                keys: &[NodeKey],
            ) -> Result<BTreeMap<NodeKey, Digest>, DbError> {
                let mut out = BTreeMap::new();
                if keys.is_empty() {
                    return Ok(out);
                }
                let sql = nodes_sql(keys.len());
                let mut q = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
                for (level, idx) in keys {
                    q = q.bind(i64::from(*level)).bind(to_i64(*idx, "tlog_nodes.idx")?);
                }
                for (level, idx, hash) in q.fetch_all(&mut *conn).await? {
                    let level = u32::try_from(level).map_err(|_| DbError::Corrupt("tlog_nodes.level"))?;
                    out.insert(
                        (level, to_u64(idx, "tlog_nodes.idx")?),
                        digest(&hash, "tlog_nodes.hash")?,
                    );
                }
                Ok(out)
            }

            async fn insert_flag(
                conn: &mut $conn,
                bundle: BundleId,
                flag: &NewFlag,
                now_ms: i64,
            ) -> Result<(), DbError> {
                let (other_digest, other_manifest) = match &flag.other {
                    Some((d, bytes)) => (Some(d.to_hex()), Some(bytes.clone())),
                    None => (None, None),
                };
                sqlx::query(
                    "INSERT INTO bundle_flags (id, bundle_id, kind, detail, other_digest, \
                     other_manifest, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(bundle.to_string())
                .bind(flag.kind)
                .bind(flag.detail.clone())
                .bind(other_digest)
                .bind(other_manifest)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl LedgerDb for $db {
            async fn put_bundle(&self, b: &NewBundle) -> Result<PutOutcome, DbError> {
                let inserted = sqlx::query(
                    "INSERT INTO bundles (id, bank_id, case_id, visit_id, lead_device_id, \
                     partner_device_id, uploaded_by, manifest_digest, manifest, signatures, \
                     status, received_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(b.id.to_string())
                .bind(b.bank_id.to_string())
                .bind(b.case_id.to_string())
                .bind(b.visit_id.to_string())
                .bind(b.lead_device_id.to_string())
                .bind(b.partner_device_id.to_string())
                .bind(b.uploaded_by.to_string())
                .bind(b.manifest_digest.to_hex())
                .bind(b.manifest.clone())
                .bind(b.signatures.clone())
                .bind(b.received_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(PutOutcome::Stored);
                }
                let (stored_digest, signatures): (String, Vec<u8>) = sqlx::query_as(
                    "SELECT manifest_digest, signatures FROM bundles WHERE id = $1",
                )
                .bind(b.id.to_string())
                .fetch_one(&self.pool)
                .await?;
                let stored_digest: Digest = parse(&stored_digest, "bundles.manifest_digest")?;
                Ok(if stored_digest != b.manifest_digest {
                    PutOutcome::OtherManifest(stored_digest)
                } else if signatures != b.signatures {
                    PutOutcome::OtherSignatures
                } else {
                    PutOutcome::Same
                })
            }

            async fn bundle(&self, id: BundleId) -> Result<Option<StoredBundle>, DbError> {
                let row: Option<BundleRow> = sqlx::query_as(
                    concat!(bundle_select!(), " WHERE id = $1"),
                )
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(bundle_from).transpose()
            }

            async fn visit_bundles(&self, visit: VisitId) -> Result<Vec<StoredBundle>, DbError> {
                let rows: Vec<BundleRow> = sqlx::query_as(
                    concat!(bundle_select!(), " WHERE visit_id = $1 ORDER BY received_ms, id"),
                )
                .bind(visit.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(bundle_from).collect()
            }

            async fn add_flag(
                &self,
                bundle: BundleId,
                flag: &NewFlag,
                now_ms: i64,
            ) -> Result<(), DbError> {
                let mut conn = self.pool.acquire().await?;
                Self::insert_flag(&mut conn, bundle, flag, now_ms).await
            }

            async fn flags(&self, bundle: BundleId) -> Result<Vec<StoredFlag>, DbError> {
                let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT kind, detail, other_digest FROM bundle_flags \
                     WHERE bundle_id = $1 ORDER BY created_ms, id",
                )
                .bind(bundle.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(kind, detail, other_digest)| StoredFlag {
                        kind,
                        detail,
                        other_digest,
                    })
                    .collect())
            }

            async fn commit_bundle(
                &self,
                input: &CommitInput<'_>,
            ) -> Result<CommitOutcome, DbError> {
                let mut tx = self.pool.begin().await?;
                // Written first: claims the pending row (its row lock on PostgreSQL, the
                // write lock on SQLite) before anything is read.
                let claimed = sqlx::query(
                    "UPDATE bundles SET received_ms = received_ms \
                     WHERE id = $1 AND status = 'pending' AND manifest_digest = $2",
                )
                .bind(input.id.to_string())
                .bind(input.manifest_digest.to_hex())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed != 1 {
                    tx.rollback().await?;
                    return Ok(CommitOutcome::NotPending);
                }
                let (appended, checkpoint) = Self::append_leaf_in(
                    &mut tx,
                    tandem_core::tlog::manifest_leaf_hash(&input.manifest_digest),
                    input.signer,
                    input.now_ms,
                )
                .await?;
                let receipt = Signed::sign(
                    &IngestReceipt {
                        bundle_id: input.id,
                        manifest_digest: input.manifest_digest,
                        log_index: appended.index,
                        tree_size: appended.tree_size,
                        received_at_ms: input.now_ms,
                        verdict: input.verdict,
                    },
                    input.signer,
                )
                .map_err(|e| DbError::Log(e.to_string()))?;
                let signed = CommitSigned {
                    receipt,
                    inclusion_proof: appended.proof,
                    checkpoint,
                };
                let answer = serde_json::to_string(&tandem_core::bundle::ServerReceipt {
                    receipt: signed.receipt.clone(),
                    inclusion_proof: signed.inclusion_proof.clone(),
                    checkpoint: signed.checkpoint.clone(),
                })
                .map_err(|e| DbError::Log(e.to_string()))?;
                let status = match input.verdict {
                    Verdict::Accepted => "accepted",
                    Verdict::Quarantined => "quarantined",
                };
                sqlx::query(
                    "UPDATE bundles SET status = $1, committed_ms = $2, log_index = $3, \
                     report = $4, answer = $5 WHERE id = $6",
                )
                .bind(status)
                .bind(input.now_ms)
                .bind(to_i64(appended.index, "bundles.log_index")?)
                .bind(&input.report)
                .bind(answer)
                .bind(input.id.to_string())
                .execute(&mut *tx)
                .await?;
                for flag in &input.flags {
                    Self::insert_flag(&mut tx, input.id, flag, input.now_ms).await?;
                }
                Self::record_money(&mut tx, input.id, &input.money, input.now_ms).await?;
                if let Some(manifest) = input.visit {
                    let status = match input.verdict {
                        Verdict::Accepted => BundleStatus::Accepted,
                        Verdict::Quarantined => BundleStatus::Quarantined,
                    };
                    let row = EvidenceVisit::of(manifest, input.id, status, appended.index);
                    Self::index_evidence_in(&mut tx, &row).await?;
                }
                tx.commit().await?;
                Ok(CommitOutcome::Committed(signed))
            }

            async fn case_addresses(
                &self,
                case: CaseId,
            ) -> Result<Option<(BankId, Vec<CaseAddress>)>, DbError> {
                let bank: Option<String> =
                    sqlx::query_scalar("SELECT bank_id FROM cases WHERE id = $1")
                        .bind(case.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                let Some(bank) = bank else {
                    return Ok(None);
                };
                // `lat_e7`/`lon_e7` are 32-bit on both backends (0001_foundation).
                let rows: Vec<(String, i32, i32, String)> = sqlx::query_as(
                    "SELECT id, lat_e7, lon_e7, datum FROM case_addresses \
                     WHERE case_id = $1 ORDER BY id",
                )
                .bind(case.to_string())
                .fetch_all(&self.pool)
                .await?;
                let mut addresses = Vec::with_capacity(rows.len());
                for (id, lat, lon, d) in rows {
                    addresses.push(CaseAddress {
                        id: parse(&id, "case_addresses.id")?,
                        position: Coordinate::new(lat, lon, parse_datum(&d)?)
                            .map_err(|_| DbError::Corrupt("case_addresses position"))?,
                    });
                }
                Ok(Some((parse(&bank, "cases.bank_id")?, addresses)))
            }

            async fn approved_visit_bank(
                &self,
                visit: VisitId,
                device: DeviceId,
            ) -> Result<Option<BankId>, DbError> {
                let bank: Option<String> = sqlx::query_scalar(
                    "SELECT a.bank_id FROM approvals a \
                     JOIN approval_team t ON t.approval_id = a.id \
                     WHERE a.visit_id = $1 AND t.device_id = $2",
                )
                .bind(visit.to_string())
                .bind(device.to_string())
                .fetch_optional(&self.pool)
                .await?;
                bank.map(|b| parse(&b, "approvals.bank_id")).transpose()
            }

            async fn log_size(&self) -> Result<u64, DbError> {
                let size: i64 = sqlx::query_scalar("SELECT size FROM tlog_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                to_u64(size, "tlog_head.size")
            }

            async fn log_nodes(
                &self,
                keys: &[NodeKey],
            ) -> Result<BTreeMap<NodeKey, Digest>, DbError> {
                let mut conn = self.pool.acquire().await?;
                Self::fetch_nodes(&mut conn, keys).await
            }

            async fn checkpoint(&self, tree_size: Option<u64>) -> Result<Option<String>, DbError> {
                Ok(match tree_size {
                    // A size the database cannot even hold was never checkpointed: that is
                    // "no such checkpoint", not a database failure.
                    Some(n) if i64::try_from(n).is_err() => None,
                    Some(n) => sqlx::query_scalar(
                        "SELECT signed FROM tlog_checkpoints WHERE tree_size = $1",
                    )
                    .bind(to_i64(n, "tree_size")?)
                    .fetch_optional(&self.pool)
                    .await?,
                    None => sqlx::query_scalar(
                        "SELECT signed FROM tlog_checkpoints ORDER BY tree_size DESC LIMIT 1",
                    )
                    .fetch_optional(&self.pool)
                    .await?,
                })
            }

            async fn logged_entry(&self, index: u64) -> Result<Option<LoggedEntry>, DbError> {
                let Ok(index) = i64::try_from(index) else {
                    return Ok(None);
                };
                let bundle: Option<String> = sqlx::query_scalar(
                    "SELECT manifest_digest FROM bundles WHERE log_index = $1",
                )
                .bind(index)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(d) = bundle {
                    return Ok(Some(LoggedEntry::Bundle {
                        manifest_digest: parse(&d, "bundles.manifest_digest")?,
                    }));
                }
                let anchor: Option<(i64, String)> = sqlx::query_as(
                    "SELECT audit_seq, head_hash FROM audit_anchors WHERE log_index = $1",
                )
                .bind(index)
                .fetch_optional(&self.pool)
                .await?;
                anchor
                    .map(|(seq, head)| {
                        Ok(LoggedEntry::AuditHead {
                            seq: to_u64(seq, "audit_anchors.audit_seq")?,
                            head: parse(&head, "audit_anchors.head_hash")?,
                        })
                    })
                    .transpose()
            }

            async fn log_leaves(&self, from: u64, to: u64) -> Result<Vec<Digest>, DbError> {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT idx, hash FROM tlog_nodes WHERE level = 0 AND idx >= $1 AND idx < $2 \
                     ORDER BY idx",
                )
                .bind(to_i64(from, "tlog_nodes.idx")?)
                .bind(to_i64(to, "tlog_nodes.idx")?)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for (i, (idx, hash)) in rows.into_iter().enumerate() {
                    if to_u64(idx, "tlog_nodes.idx")? != from + i as u64 {
                        return Err(DbError::Corrupt("tlog_nodes: a leaf is missing"));
                    }
                    out.push(digest(&hash, "tlog_nodes.hash")?);
                }
                Ok(out)
            }

            async fn bundle_log_entries(
                &self,
                from: u64,
                to: u64,
            ) -> Result<Vec<(u64, Digest)>, DbError> {
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT log_index, manifest_digest FROM bundles \
                     WHERE log_index >= $1 AND log_index < $2 ORDER BY log_index",
                )
                .bind(to_i64(from, "bundles.log_index")?)
                .bind(to_i64(to, "bundles.log_index")?)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(i, d)| {
                        Ok((to_u64(i, "bundles.log_index")?, parse(&d, "bundles.manifest_digest")?))
                    })
                    .collect()
            }
        }
    };
}

impl_ledger_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_ledger_db!(super::PgDb, sqlx::PgConnection);
