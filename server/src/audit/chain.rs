//! The audit log's hash chain: each row's `entry_hash` is SHA-256 over a domain tag, the
//! previous row's hash (all zeros before the first row) and the row exactly as stored, in
//! a fixed binary encoding (every field length-prefixed, absent fields marked), so no two
//! different rows hash alike and changing any field, or removing or reordering a row,
//! breaks every hash after it.

use tandem_core::crypto::{Digest, Sha256Stream};

use super::AuditEntry;

/// What every entry hash starts with (versioned: another encoding is another tag).
const ENTRY_TAG: &[u8] = b"tandem audit-log entry v1\n";

/// An entry's fields as the database stores them (texts), which is what the chain covers:
/// the verifier reads these back and hashes the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Position, from 1.
    pub seq: i64,
    /// UTC ms.
    pub at_ms: i64,
    /// The acting user's id.
    pub actor_user_id: Option<String>,
    /// The action's stored name.
    pub action: String,
    /// The subject's kind.
    pub subject_kind: String,
    /// The subject's id.
    pub subject_id: Option<String>,
    /// The bank's id.
    pub bank_id: Option<String>,
    /// The detail as stored (JSON text).
    pub detail: String,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The stated purpose.
    pub purpose: Option<String>,
}

impl StoredEntry {
    /// `entry` as it is stored at position `seq`.
    pub fn of(seq: i64, entry: &AuditEntry) -> Self {
        Self {
            seq,
            at_ms: entry.at_ms,
            actor_user_id: entry.actor.map(|u| u.to_string()),
            action: entry.action.as_str().to_owned(),
            subject_kind: entry.subject_kind.clone(),
            subject_id: entry.subject_id.clone(),
            bank_id: entry.bank_id.map(|b| b.to_string()),
            detail: entry.detail.to_string(),
            client_addr: entry.client_addr.map(|a| a.to_string()),
            purpose: entry.purpose.clone(),
        }
    }

    /// This row's chain hash after `prev`.
    pub fn chain_hash(&self, prev: &Digest) -> Digest {
        let mut h = Sha256Stream::default();
        h.update(ENTRY_TAG);
        h.update(prev.as_bytes());
        h.update(&self.seq.to_be_bytes());
        h.update(&self.at_ms.to_be_bytes());
        for field in [
            self.actor_user_id.as_deref(),
            Some(self.action.as_str()),
            Some(self.subject_kind.as_str()),
            self.subject_id.as_deref(),
            self.bank_id.as_deref(),
            Some(self.detail.as_str()),
            self.client_addr.as_deref(),
            self.purpose.as_deref(),
        ] {
            match field {
                None => h.update(&[0]),
                Some(text) => {
                    h.update(&[1]);
                    // Stored texts are far below 4 GiB; a longer one could not be stored.
                    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                    h.update(&len.to_be_bytes());
                    h.update(text.as_bytes());
                }
            }
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditAction;

    fn stored() -> StoredEntry {
        let entry = AuditEntry::new(
            1_000,
            AuditAction::EvidenceViewed,
            "visit",
            Some("v".into()),
        )
        .purpose("litigation");
        StoredEntry::of(1, &entry)
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let base = stored();
        let h = base.chain_hash(&Digest::ZERO);
        assert_eq!(h, base.chain_hash(&Digest::ZERO), "deterministic");
        assert_ne!(h, base.chain_hash(&tandem_core::crypto::sha256(b"x")));
        let variants: Vec<StoredEntry> = vec![
            StoredEntry {
                seq: 2,
                ..base.clone()
            },
            StoredEntry {
                at_ms: 1_001,
                ..base.clone()
            },
            StoredEntry {
                actor_user_id: Some("u".into()),
                ..base.clone()
            },
            StoredEntry {
                action: "sign-in".into(),
                ..base.clone()
            },
            StoredEntry {
                subject_kind: "case".into(),
                ..base.clone()
            },
            StoredEntry {
                subject_id: None,
                ..base.clone()
            },
            StoredEntry {
                bank_id: Some("b".into()),
                ..base.clone()
            },
            StoredEntry {
                detail: "{\"n\":1}".into(),
                ..base.clone()
            },
            StoredEntry {
                client_addr: Some("127.0.0.1".into()),
                ..base.clone()
            },
            StoredEntry {
                purpose: Some("litigatio".into()),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.chain_hash(&Digest::ZERO), h, "{v:?}");
        }
    }

    #[test]
    fn moving_text_between_fields_changes_the_hash() {
        // Length prefixes: "ab" + "" is not "a" + "b".
        let a = StoredEntry {
            subject_id: Some("ab".into()),
            bank_id: Some(String::new()),
            ..stored()
        };
        let b = StoredEntry {
            subject_id: Some("a".into()),
            bank_id: Some("b".into()),
            ..stored()
        };
        let c = StoredEntry {
            subject_id: Some("ab".into()),
            bank_id: None,
            ..stored()
        };
        let hashes = [a, b, c].map(|e| e.chain_hash(&Digest::ZERO));
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
    }
}
