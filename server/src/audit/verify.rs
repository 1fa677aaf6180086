//! Checking the audit log: its hash chain row by row, its head, and its anchors in the
//! transparency log, whose every entry is accounted for and whose root matches the newest
//! checkpoint the server signed (and any older checkpoint held elsewhere). `tandem audit
//! verify` and the administrators' audit page run it.
//!
//! What each check catches (THREATS.md, the malicious insider who can drop the triggers):
//! a changed field breaks that row's hash; a removed row leaves a gap; rows rewritten with
//! their hashes recomputed no longer match the head anchored in the transparency log; the
//! last rows cut off (and the head row set back) are still named by a newer anchor; an
//! anchor row forged or removed leaves a log entry that is neither a bundle nor an anchor,
//! or one whose leaf differs; a log rewritten to hide all this no longer matches a
//! checkpoint signed before (`--checkpoint`) or the one stored.

use std::collections::BTreeMap;

use tandem_core::crypto::{Digest, PublicKey};
use tandem_core::model::Signed;
use tandem_core::tlog::{Checkpoint, tree_root, verify_consistency};

use crate::audit::chain::StoredEntry;
use crate::db::audit::AuditAnchor;
use crate::db::{Db, DbError};
use crate::tlog::LoggedEntry;

/// Rows read at once.
const PAGE: u32 = 20_000;

/// One way the log or its anchors do not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// A row's stored hash does not match its fields and the row before it.
    #[error("entry {seq}: altered (its fields no longer match its hash)")]
    Altered {
        /// The row.
        seq: i64,
    },
    /// Positions are missing.
    #[error("entries {from} to {to}: missing (deleted)")]
    Missing {
        /// First missing position.
        from: i64,
        /// Last missing position.
        to: i64,
    },
    /// The head row disagrees with the last row.
    #[error(
        "the head names entry {head_seq} but the log ends at entry {last_seq}: the head or the \
         last entries were changed"
    )]
    Head {
        /// What the head says.
        head_seq: i64,
        /// The last row there is.
        last_seq: i64,
    },
    /// An anchor names an entry the log no longer has.
    #[error(
        "log entry {log_index} anchored the audit log at entry {seq}, but the log ends at entry \
         {last_seq}: entries {first_missing} to {seq} were deleted"
    )]
    Cut {
        /// The anchor's log index.
        log_index: u64,
        /// The entry it anchored.
        seq: i64,
        /// The last row there is.
        last_seq: i64,
        /// The first row missing.
        first_missing: i64,
    },
    /// An anchored entry's hash differs from the one anchored.
    #[error(
        "entry {seq} differs from what log entry {log_index} anchored: entries up to {seq} were \
         rewritten"
    )]
    Rewritten {
        /// The anchor's log index.
        log_index: u64,
        /// The entry it anchored.
        seq: i64,
    },
    /// A transparency-log entry is neither a bundle nor an anchor, or its leaf differs.
    #[error("transparency log entry {index}: {what}")]
    LogEntry {
        /// Its index.
        index: u64,
        /// What is wrong.
        what: String,
    },
    /// The transparency log's leaves do not give the signed checkpoint's root.
    #[error("transparency log: {0}")]
    Checkpoint(String),
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Rows read.
    pub entries: u64,
    /// The last row's position (0 when empty).
    pub last_seq: i64,
    /// Anchors checked.
    pub anchors: u64,
    /// The newest anchor.
    pub newest_anchor: Option<AuditAnchor>,
    /// Rows after the newest anchor (anchored at the next hourly anchoring).
    pub unanchored: u64,
    /// Entries of the transparency log.
    pub log_size: u64,
    /// Checkpoints held elsewhere that the log was checked against.
    pub held_checkpoints: u64,
    /// Everything that does not hold, in the order found.
    pub findings: Vec<Finding>,
}

impl Verification {
    /// Whether everything holds.
    pub fn holds(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Why the check could not be made (not a finding about the log).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The database could not be read.
    #[error("cannot read the database: {0}")]
    Db(#[from] DbError),
    /// A checkpoint given to check against is unreadable or not signed by the key.
    #[error("checkpoint held elsewhere: {0}")]
    HeldCheckpoint(String),
}

/// Checks the whole audit log and its anchors against `server_key`, and the transparency
/// log against each of `held` (signed checkpoints kept outside this database).
pub async fn verify(
    db: &dyn Db,
    server_key: &PublicKey,
    held: &[Signed<Checkpoint>],
) -> Result<Verification, VerifyError> {
    let mut out = Verification::default();
    // A live server may append entries, anchors and bundles while this runs: what is read
    // first bounds what is judged. The head before the rows (rows appended later are
    // checked, never missed); the log's size before the anchors (every anchor of an entry
    // below it is in the list) and after (an anchor past that is a forged row).
    let (head_seq, _) = db.audit_head().await?;
    let size = db.log_size().await?;
    let anchors = db.audit_anchors().await?;
    let size_after = db.log_size().await?;
    let by_seq: BTreeMap<i64, Vec<&AuditAnchor>> =
        anchors.iter().fold(BTreeMap::new(), |mut m, a| {
            m.entry(a.audit_seq).or_insert_with(Vec::new).push(a);
            m
        });
    check_chain(db, &by_seq, &mut out).await?;
    if head_seq > out.last_seq {
        out.findings.push(Finding::Head {
            head_seq,
            last_seq: out.last_seq,
        });
    }
    // Anchors past the last row: the last rows were cut off.
    for anchor in anchors.iter().filter(|a| a.audit_seq > out.last_seq) {
        out.findings.push(Finding::Cut {
            log_index: anchor.log_index,
            seq: anchor.audit_seq,
            last_seq: out.last_seq,
            first_missing: out.last_seq + 1,
        });
    }
    out.anchors = anchors.len() as u64;
    out.newest_anchor = anchors.iter().max_by_key(|a| a.audit_seq).cloned();
    let anchored = out.newest_anchor.as_ref().map_or(0, |a| a.audit_seq);
    out.unanchored = u64::try_from(out.last_seq - anchored).unwrap_or(0);
    check_log(db, &anchors, (size, size_after), server_key, held, &mut out).await?;
    Ok(out)
}

/// The chain, row by row, and each anchored row's hash, a page at a time (on a SQLite file,
/// the next page read while this one is hashed).
async fn check_chain(
    db: &dyn Db,
    anchors: &BTreeMap<i64, Vec<&AuditAnchor>>,
    out: &mut Verification,
) -> Result<(), VerifyError> {
    let mut link = Link {
        prev: Digest::ZERO,
        expected: 1,
    };
    // Read after the head and the anchors: every row they name is in it.
    let mut chain = db.audit_chain(out.last_seq, PAGE).await?;
    while let Some(page) = chain.next_page().await? {
        for (row, stored_hash) in &page {
            link.check(row, stored_hash, anchors, out);
        }
    }
    Ok(())
}

/// Where the chain stands: the previous row's stored hash and the position due next.
struct Link {
    prev: Digest,
    expected: i64,
}

impl Link {
    fn check(
        &mut self,
        row: &StoredEntry,
        stored_hash: &str,
        anchors: &BTreeMap<i64, Vec<&AuditAnchor>>,
        out: &mut Verification,
    ) {
        if row.seq != self.expected {
            out.findings.push(Finding::Missing {
                from: self.expected,
                to: row.seq - 1,
            });
        }
        let stored: Option<Digest> = stored_hash.parse().ok();
        // A gap already explains a broken link: only a row in its place is checked against
        // its predecessor, so only what changed is named.
        if row.seq == self.expected && stored != Some(row.chain_hash(&self.prev)) {
            out.findings.push(Finding::Altered { seq: row.seq });
        }
        for anchor in anchors.get(&row.seq).into_iter().flatten() {
            if anchor.head_hash != stored_hash {
                out.findings.push(Finding::Rewritten {
                    log_index: anchor.log_index,
                    seq: row.seq,
                });
            }
        }
        self.prev = stored.unwrap_or(Digest::ZERO);
        self.expected = row.seq + 1;
        out.last_seq = row.seq;
        out.entries += 1;
    }
}

/// The transparency log's first `size` entries: each a bundle or an anchor with its leaf,
/// the leaves giving the root of the checkpoint signed for that size, and every held
/// checkpoint a prefix of it. An anchor past `size_after` (the size once the anchors were
/// read) names an entry the log never had.
async fn check_log(
    db: &dyn Db,
    anchors: &[AuditAnchor],
    (size, size_after): (u64, u64),
    server_key: &PublicKey,
    held: &[Signed<Checkpoint>],
    out: &mut Verification,
) -> Result<(), VerifyError> {
    out.log_size = size;
    let anchor_at: BTreeMap<u64, &AuditAnchor> = anchors
        .iter()
        .filter(|a| a.log_index < size)
        .map(|a| (a.log_index, a))
        .collect();
    for a in anchors.iter().filter(|a| a.log_index >= size_after) {
        out.findings.push(Finding::LogEntry {
            index: a.log_index,
            what: format!("an anchor names it, but the log has {size_after} entries"),
        });
    }
    let mut leaves: Vec<Digest> = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let step = u64::from(PAGE);
    let mut from = 0;
    while from < size {
        let to = (from + step).min(size);
        let page = db.log_leaves(from, to).await?;
        let bundles: BTreeMap<u64, Digest> =
            db.bundle_log_entries(from, to).await?.into_iter().collect();
        for (offset, leaf) in page.iter().enumerate() {
            let index = from + offset as u64;
            let expected = match (bundles.get(&index), anchor_at.get(&index)) {
                (Some(d), None) => LoggedEntry::Bundle {
                    manifest_digest: *d,
                }
                .leaf_hash(),
                (None, Some(a)) => match (u64::try_from(a.audit_seq), a.head_hash.parse()) {
                    (Ok(seq), Ok(head)) => LoggedEntry::AuditHead { seq, head }.leaf_hash(),
                    _ => {
                        out.findings.push(Finding::LogEntry {
                            index,
                            what: "its anchor row is unreadable".into(),
                        });
                        continue;
                    }
                },
                (Some(_), Some(_)) => {
                    out.findings.push(Finding::LogEntry {
                        index,
                        what: "claimed by a bundle and by an anchor".into(),
                    });
                    continue;
                }
                (None, None) => {
                    out.findings.push(Finding::LogEntry {
                        index,
                        what: "neither a bundle nor an audit anchor (an anchor row was removed)"
                            .into(),
                    });
                    continue;
                }
            };
            if *leaf != expected {
                out.findings.push(Finding::LogEntry {
                    index,
                    what: "its leaf differs from what its record says (a record was changed)"
                        .into(),
                });
            }
        }
        if page.len() as u64 != to - from {
            out.findings.push(Finding::Checkpoint(format!(
                "leaves {from} to {to} are incomplete"
            )));
            return Ok(());
        }
        leaves.extend(page);
        from = to;
    }
    let root = |n: u64| tree_root(&leaves[..usize::try_from(n).unwrap_or(leaves.len())]);
    // The checkpoint of exactly that size (one is stored with every append).
    match db.checkpoint(Some(size)).await? {
        None if size == 0 => {}
        None => out.findings.push(Finding::Checkpoint(format!(
            "no signed checkpoint of {size} entries is stored"
        ))),
        Some(json) => match serde_json::from_str::<Signed<Checkpoint>>(&json)
            .map_err(|e| e.to_string())
            .and_then(|s| s.verify(server_key).map_err(|e| e.to_string()))
        {
            Err(e) => out.findings.push(Finding::Checkpoint(format!(
                "the stored checkpoint of {size} entries does not verify with the server key: {e}"
            ))),
            Ok(c) if c.tree_size != size => out.findings.push(Finding::Checkpoint(format!(
                "the checkpoint stored for {size} entries covers {}",
                c.tree_size
            ))),
            Ok(c) if c.root != root(size) => out.findings.push(Finding::Checkpoint(
                "the leaves do not give the signed checkpoint's root (the log was rewritten)"
                    .into(),
            )),
            Ok(_) => {}
        },
    }
    for signed in held {
        let c = signed
            .verify(server_key)
            .map_err(|e| VerifyError::HeldCheckpoint(e.to_string()))?;
        out.held_checkpoints += 1;
        let held_root = if c.tree_size <= size {
            Some(root(c.tree_size))
        } else {
            None
        };
        // RFC 6962 consistency from the held tree to today's, over the stored nodes, as a
        // phone checks it; the held root must also be what the leaves give.
        let proof = crate::tlog::read_stored(db, |log| log.consistency_proof(c.tree_size, size))
            .await
            .ok();
        let consistent = held_root == Some(c.root)
            && proof.is_some_and(|p| {
                verify_consistency(c.tree_size, size, &c.root, &root(size), &p).is_ok()
            });
        if !consistent {
            out.findings.push(Finding::Checkpoint(format!(
                "today's log does not extend the checkpoint of {} entries signed at {} ms: \
                 entries it covered were changed or removed",
                c.tree_size, c.timestamp_ms
            )));
        }
    }
    Ok(())
}
