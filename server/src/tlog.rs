//! The server's transparency log (DESIGN.md §7, `docs/transparency-log.md`): core's
//! [`MerkleLog`] maths over nodes kept in the database, and the read-only endpoints for
//! checkpoints and proofs.
//!
//! The database holds only perfect subtrees (core's [`NodeStore`] contract). Which nodes a
//! computation reads depends only on the sizes and indexes involved, never on hash values,
//! so the server first runs it over a [`Prefetched`] store that records what it asks for
//! ([`needed_nodes`]), fetches exactly those rows in one query, and runs it again for real
//! ([`compute`]). Inside a commit this happens with the log head locked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tandem_core::crypto::{Digest, PublicKey};
use tandem_core::model::{BankId, BundleId, Signed};
use tandem_core::tlog::{Checkpoint, LogError, MerkleLog, NodeStore};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::AppState;
use crate::auth::{DeviceAuth, UserAuth};
use crate::error::{AppError, Problem};

/// What a log entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedEntry {
    /// A committed bundle's manifest digest.
    Bundle {
        /// The digest.
        manifest_digest: Digest,
    },
    /// The audit log's head at an anchoring.
    AuditHead {
        /// Position of the audit log's newest entry then.
        seq: u64,
        /// Its chain hash.
        head: Digest,
    },
}

impl LoggedEntry {
    /// The entry's leaf data.
    pub fn leaf(&self) -> Vec<u8> {
        match self {
            Self::Bundle { manifest_digest } => manifest_digest.as_bytes().to_vec(),
            Self::AuditHead { seq, head } => tandem_core::tlog::audit_head_leaf(*seq, head),
        }
    }

    /// The entry's leaf hash, as the log stores it.
    pub fn leaf_hash(&self) -> Digest {
        tandem_core::tlog::leaf_hash(&self.leaf())
    }
}

/// A stored node's address: (level, index at that level).
pub type NodeKey = (u32, u64);

/// The log's id in its checkpoints: one log per server key, so checkpoints of two
/// deployments are never compared with each other.
pub fn log_id(server_key: &PublicKey) -> String {
    let kid = server_key.kid().to_string();
    format!("tandem-{}", kid.get(..16).unwrap_or(&kid))
}

/// A [`NodeStore`] over nodes fetched beforehand. In discovery mode a missing node is
/// recorded and answered with a placeholder, so one dry run lists every node needed.
#[derive(Debug)]
pub struct Prefetched {
    size: u64,
    nodes: BTreeMap<NodeKey, Digest>,
    discovering: bool,
    misses: RefCell<BTreeSet<NodeKey>>,
    /// Nodes appended during the run, to be written in the same transaction.
    pub appended: Vec<(NodeKey, Digest)>,
}

impl Prefetched {
    fn new(size: u64, nodes: BTreeMap<NodeKey, Digest>, discovering: bool) -> Self {
        Self {
            size,
            nodes,
            discovering,
            misses: RefCell::default(),
            appended: Vec::new(),
        }
    }
}

impl NodeStore for Prefetched {
    fn leaf_count(&self) -> Result<u64, LogError> {
        Ok(self.size)
    }

    fn subtree_hash(&self, level: u32, index: u64) -> Result<Digest, LogError> {
        match self.nodes.get(&(level, index)) {
            Some(hash) => Ok(*hash),
            None if self.discovering => {
                self.misses.borrow_mut().insert((level, index));
                Ok(Digest::ZERO)
            }
            None => Err(LogError::MissingNode { level, index }),
        }
    }

    fn append(&mut self, leaf_hash: Digest, completed: &[Digest]) -> Result<(), LogError> {
        let index = self.size;
        for (level, hash) in std::iter::once(&leaf_hash).chain(completed).enumerate() {
            let level = u32::try_from(level).map_err(|_| LogError::Store {
                reason: "tree deeper than 2^32 levels".into(),
            })?;
            let key = (level, index >> level);
            self.nodes.insert(key, *hash);
            self.appended.push((key, *hash));
        }
        self.size += 1;
        Ok(())
    }
}

/// The stored nodes `run` reads on a log of `size` entries (nodes it appends itself are not
/// listed).
pub fn needed_nodes<R>(
    size: u64,
    run: impl Fn(&mut MerkleLog<Prefetched>) -> Result<R, LogError>,
) -> Result<Vec<NodeKey>, LogError> {
    let mut log = MerkleLog::with_store(Prefetched::new(size, BTreeMap::new(), true));
    run(&mut log)?;
    let store = log.store();
    let appended: BTreeSet<NodeKey> = store.appended.iter().map(|(k, _)| *k).collect();
    Ok(store
        .misses
        .borrow()
        .iter()
        .filter(|k| !appended.contains(k))
        .copied()
        .collect())
}

/// Runs `run` for real over the fetched `nodes` of a log of `size` entries; returns its
/// result and the nodes it appended.
pub fn compute<R>(
    size: u64,
    nodes: BTreeMap<NodeKey, Digest>,
    run: impl Fn(&mut MerkleLog<Prefetched>) -> Result<R, LogError>,
) -> Result<(R, Vec<(NodeKey, Digest)>), LogError> {
    let mut log = MerkleLog::with_store(Prefetched::new(size, nodes, false));
    let out = run(&mut log)?;
    let appended = log.store().appended.clone();
    Ok((out, appended))
}

/// What one append computed: the entry's index, the new size, its root and the entry's
/// inclusion proof in that tree, and the nodes to store.
#[derive(Debug, Clone)]
pub struct Appended {
    /// Index of the new entry.
    pub index: u64,
    /// Size of the tree with it.
    pub tree_size: u64,
    /// Root of that tree.
    pub root: Digest,
    /// Inclusion proof of the entry in that tree.
    pub proof: Vec<Digest>,
}

/// The append of one leaf hash (a bundle's manifest leaf, or an audit-log anchor's) to a
/// log of `size` entries, with root and proof.
pub fn append_leaf_run(
    size: u64,
    leaf_hash: Digest,
) -> impl Fn(&mut MerkleLog<Prefetched>) -> Result<Appended, LogError> {
    move |log| {
        let index = log.append(leaf_hash)?;
        let tree_size = size + 1;
        Ok(Appended {
            index,
            tree_size,
            root: log.root(tree_size)?,
            proof: log.inclusion_proof(index, tree_size)?,
        })
    }
}

/// Runs a read-only computation over the stored log as it is now (the nodes it needs,
/// fetched in one query).
pub async fn read_stored<R>(
    db: &dyn crate::db::Db,
    run: impl Fn(&mut MerkleLog<Prefetched>) -> Result<R, LogError>,
) -> Result<R, crate::db::DbError> {
    let size = db.log_size().await?;
    let keys = needed_nodes(size, &run).map_err(|e| crate::db::DbError::Log(e.to_string()))?;
    let nodes = db.log_nodes(&keys).await?;
    let (out, _) =
        compute(size, nodes, &run).map_err(|e| crate::db::DbError::Log(e.to_string()))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// HTTP

/// The routes of the log.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/log/checkpoint", get(latest_checkpoint))
        .route("/v1/log/checkpoints/{tree_size}", get(checkpoint_at))
        .route("/v1/log/inclusion", get(inclusion))
        .route("/v1/log/consistency", get(consistency))
}

/// The OpenAPI part of the log.
#[derive(OpenApi)]
#[openapi(
    paths(latest_checkpoint, checkpoint_at, inclusion, consistency),
    components(schemas(SignedDocument, InclusionAnswer, ConsistencyAnswer))
)]
pub struct LogDoc;

/// Anyone the server knows may read the log: an enrolled device or a signed-in user. It
/// holds digests only (no personal data); phones need it to check their receipts. The
/// reader's banks scope the one question that names a bundle (inclusion by bundle id).
#[derive(Debug, Clone)]
pub struct LogReader {
    /// The banks the device's agent or the user serves.
    pub bank_ids: Vec<BankId>,
}

impl FromRequestParts<AppState> for LogReader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let is_device = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(crate::auth::DEVICE_TOKEN_PREFIX));
        let bank_ids = if is_device {
            DeviceAuth::from_request_parts(parts, state)
                .await?
                .0
                .bank_ids
        } else {
            UserAuth::from_request_parts(parts, state)
                .await?
                .user
                .bank_ids
        };
        Ok(Self { bank_ids })
    }
}

/// A server-signed document as it travels: `{body, signature}` (see transparency-log.md §3).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedDocument {
    /// The canonical JSON text that was signed.
    pub body: String,
    /// `{alg, kid, sig}` over `"tandem/v1/<purpose>\n" || SHA-256(body)`.
    pub signature: serde_json::Value,
}

fn log_problem(e: &LogError) -> AppError {
    match e {
        LogError::IndexOutOfRange { .. }
        | LogError::SizesOutOfOrder { .. }
        | LogError::TreeSizeBeyondLog { .. } => {
            AppError::invalid("log-range", format!("Not in this log: {e}."))
        }
        other => AppError::Internal(format!("transparency log: {other}")),
    }
}

fn no_checkpoint() -> AppError {
    AppError::problem(
        axum::http::StatusCode::NOT_FOUND,
        "log-no-checkpoint",
        "No such checkpoint",
        "The log has no checkpoint of that size (checkpoints are signed at each commit).",
    )
}

fn signed_json(stored: &str) -> Result<Json<serde_json::Value>, AppError> {
    serde_json::from_str(stored)
        .map(Json)
        .map_err(|e| AppError::Internal(format!("stored checkpoint unreadable: {e}")))
}

/// The newest signed checkpoint.
#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log",
    security(("device_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The newest signed checkpoint", body = SignedDocument),
        (status = 404, description = "Nothing logged yet", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn latest_checkpoint(
    _: LogReader,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    let stored = state.db.checkpoint(None).await?.ok_or_else(no_checkpoint)?;
    signed_json(&stored)
}

/// The signed checkpoint of one tree size.
#[utoipa::path(get, path = "/v1/log/checkpoints/{tree_size}", tag = "log",
    security(("device_token" = []), ("session" = [])),
    params(("tree_size" = u64, Path, description = "Tree size")),
    responses(
        (status = 200, description = "The signed checkpoint of that size", body = SignedDocument),
        (status = 404, description = "No checkpoint of that size", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn checkpoint_at(
    _: LogReader,
    State(state): State<AppState>,
    Path(tree_size): Path<u64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let stored = state
        .db
        .checkpoint(Some(tree_size))
        .await?
        .ok_or_else(no_checkpoint)?;
    signed_json(&stored)
}

/// Which entry to prove, in which tree.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The entry's index (or give `bundle_id`).
    pub index: Option<u64>,
    /// The committed bundle whose entry to prove (instead of `index`).
    #[param(value_type = Option<String>)]
    pub bundle_id: Option<BundleId>,
    /// The tree size; default: the newest checkpoint's.
    pub tree_size: Option<u64>,
}

/// An inclusion proof.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionAnswer {
    /// The entry's index.
    pub log_index: u64,
    /// The tree the proof is for.
    pub tree_size: u64,
    /// What the entry is: `bundle` (a bundle's manifest digest) or `audit-head` (the head
    /// of the audit log, `tandem_core::tlog::audit_head_leaf`).
    pub kind: String,
    /// A bundle entry's leaf data: the manifest digest (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The entry's leaf data (hex), whatever its kind: its leaf hash is
    /// `SHA-256(0x00 || leaf)`.
    pub leaf: String,
    /// RFC 6962 audit path, lowercase hex, from the leaf upwards.
    pub proof: Vec<String>,
}

async fn newest_size(state: &AppState) -> Result<u64, AppError> {
    let stored = state.db.checkpoint(None).await?.ok_or_else(no_checkpoint)?;
    let signed: Signed<Checkpoint> = serde_json::from_str(&stored)
        .map_err(|e| AppError::Internal(format!("stored checkpoint unreadable: {e}")))?;
    let checkpoint: Checkpoint =
        tandem_core::canonical::from_canonical_slice(signed.body.as_bytes())
            .map_err(|e| AppError::Internal(format!("stored checkpoint unreadable: {e}")))?;
    Ok(checkpoint.tree_size)
}

/// Runs a read-only log computation over the nodes it needs.
async fn read_log<R>(
    state: &AppState,
    run: impl Fn(&mut MerkleLog<Prefetched>) -> Result<R, LogError>,
) -> Result<R, AppError> {
    let size = state.db.log_size().await?;
    let keys = needed_nodes(size, &run).map_err(|e| log_problem(&e))?;
    let nodes = state.db.log_nodes(&keys).await?;
    let (out, _) = compute(size, nodes, &run).map_err(|e| log_problem(&e))?;
    Ok(out)
}

/// The inclusion proof of an entry (by index or by bundle) in a tree of a given size. By
/// index it is open to every reader (an index reveals no bundle); by bundle id it answers
/// only for a bundle of the reader's banks, and another bank's bundle is the same 404 as
/// an id never used, so nobody learns that another bank's bundle exists.
#[utoipa::path(get, path = "/v1/log/inclusion", tag = "log",
    security(("device_token" = []), ("session" = [])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "The audit path", body = InclusionAnswer),
        (status = 404, description = "No such bundle in the log for the caller's banks", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Index or size not in the log", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn inclusion(
    reader: LogReader,
    State(state): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionAnswer>, AppError> {
    let index = match (q.index, q.bundle_id) {
        (Some(i), None) => i,
        (None, Some(id)) => state
            .db
            .bundle(id)
            .await?
            .filter(|b| reader.bank_ids.contains(&b.bank_id))
            .and_then(|b| b.log_index)
            .ok_or(AppError::NotFound)?,
        _ => {
            return Err(AppError::Malformed(
                "Give exactly one of index and bundle_id.".into(),
            ));
        }
    };
    let tree_size = match q.tree_size {
        Some(n) => n,
        None => newest_size(&state).await?,
    };
    let proof = read_log(&state, |log| log.inclusion_proof(index, tree_size)).await?;
    let entry = state
        .db
        .logged_entry(index)
        .await?
        .ok_or_else(|| AppError::Internal(format!("log entry {index} has no record")))?;
    let (kind, manifest_digest) = match &entry {
        LoggedEntry::Bundle { manifest_digest } => ("bundle", Some(manifest_digest.to_hex())),
        LoggedEntry::AuditHead { .. } => ("audit-head", None),
    };
    Ok(Json(InclusionAnswer {
        log_index: index,
        tree_size,
        kind: kind.to_owned(),
        manifest_digest,
        leaf: tandem_core::crypto::to_hex(&entry.leaf()),
        proof: proof.iter().map(Digest::to_hex).collect(),
    }))
}

/// Which two trees to tie together.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
}

/// A consistency proof.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyAnswer {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// RFC 6962 consistency proof, lowercase hex.
    pub proof: Vec<String>,
}

/// The consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/log/consistency", tag = "log",
    security(("device_token" = []), ("session" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The consistency proof", body = ConsistencyAnswer),
        (status = 422, description = "Sizes out of order or beyond the log", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn consistency(
    _: LogReader,
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyAnswer>, AppError> {
    let proof = read_log(&state, |log| log.consistency_proof(q.from, q.to)).await?;
    Ok(Json(ConsistencyAnswer {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(Digest::to_hex).collect(),
    }))
}
