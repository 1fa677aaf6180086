//! The server's signed documents, kept exactly as received (body and signature).
//!
//! Policies hold no personal data and stay in clear. Cases, approvals and tickets are
//! encrypted whole under a context naming their row (`case/<id>`, …); only ids, the bank
//! and validity windows stay in clear, for lookups and purging. Signatures are checked by
//! the caller (the sync client) before storing; the store only refuses non-canonical bodies.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::redact;
use super::{ReadTx, StoreError, WriteTx};
use crate::canonical;
use crate::crypto::SignatureRecord;
use crate::model::{
    Approval, ApprovalId, BankId, Case, CaseId, Policy, Signed, SignedPurpose, VisitId, VisitTicket,
};

/// What storing a policy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyUpdate {
    /// It is now the bank's policy.
    Stored,
    /// The very same policy was already held.
    AlreadyHeld,
    /// A newer version is held; the older one was not stored.
    OlderIgnored {
        /// The version held.
        held: u32,
    },
}

fn parse_body<T: SignedPurpose + Serialize + DeserializeOwned>(
    signed: &Signed<T>,
) -> Result<T, StoreError> {
    canonical::from_canonical_slice(signed.body.as_bytes()).map_err(|e| StoreError::Document {
        kind: T::PURPOSE,
        id: "new".into(),
        source: redact(e),
    })
}

fn context(kind: &str, id: &impl std::fmt::Display) -> String {
    format!("{kind}/{id}")
}

impl ReadTx<'_> {
    fn open_document<T: SignedPurpose>(
        &self,
        id: &impl std::fmt::Display,
        sealed: &[u8],
    ) -> Result<Signed<T>, StoreError> {
        let context = context(T::PURPOSE, id);
        let json = self.open_sealed(&context, sealed)?;
        serde_json::from_slice(&json).map_err(|_| StoreError::Corrupt {
            column: "document",
            reason: format!("{context} decrypts but is not a signed document"),
        })
    }

    fn sealed_document(
        &self,
        sql: &str,
        id: &impl std::fmt::Display,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(sql, [id.to_string()], |row| row.get(0))
            .optional()?)
    }

    /// The bank's current policy, exactly as signed.
    pub fn policy(&self, bank: BankId) -> Result<Option<Signed<Policy>>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT body, signature FROM policies WHERE bank_id = ?1",
                [bank.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(body, signature)| {
            let signature = serde_json::from_str::<SignatureRecord>(&signature).map_err(|e| {
                StoreError::Corrupt {
                    column: "policies.signature",
                    reason: e.to_string(),
                }
            })?;
            serde_json::from_value(serde_json::json!({ "body": body, "signature": signature }))
                .map_err(|e| StoreError::Corrupt {
                    column: "policies.body",
                    reason: e.to_string(),
                })
        })
        .transpose()
    }

    /// The banks this phone holds a policy of.
    pub fn policy_banks(&self) -> Result<Vec<BankId>, StoreError> {
        self.id_column(
            "SELECT bank_id FROM policies ORDER BY bank_id",
            "policies.bank_id",
        )
    }

    /// The cases this phone holds.
    pub fn case_ids(&self) -> Result<Vec<CaseId>, StoreError> {
        self.id_column("SELECT id FROM cases ORDER BY id", "cases.id")
    }

    fn id_column<T: std::str::FromStr<Err: std::fmt::Display>>(
        &self,
        sql: &str,
        column: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let ids = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter()
            .map(|id| super::parse_column(column, id))
            .collect()
    }

    /// A case, exactly as signed.
    pub fn case(&self, id: CaseId) -> Result<Option<Signed<Case>>, StoreError> {
        self.sealed_document("SELECT document FROM cases WHERE id = ?1", &id)?
            .map(|sealed| self.open_document(&id, &sealed))
            .transpose()
    }

    /// An approval, exactly as signed.
    pub fn approval(&self, id: ApprovalId) -> Result<Option<Signed<Approval>>, StoreError> {
        self.sealed_document("SELECT document FROM approvals WHERE id = ?1", &id)?
            .map(|sealed| self.open_document(&id, &sealed))
            .transpose()
    }

    /// The approvals held for a case, oldest validity first.
    pub fn approvals_for_case(&self, case: CaseId) -> Result<Vec<Signed<Approval>>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, document FROM approvals WHERE case_id = ?1 ORDER BY valid_from_ms, id",
        )?;
        let rows = stmt
            .query_map([case.to_string()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, sealed)| self.open_document(&id, &sealed))
            .collect()
    }

    /// The ticket of a visit, exactly as signed.
    pub fn ticket(&self, visit: VisitId) -> Result<Option<Signed<VisitTicket>>, StoreError> {
        self.sealed_document("SELECT document FROM tickets WHERE visit_id = ?1", &visit)?
            .map(|sealed| self.open_document(&visit, &sealed))
            .transpose()
    }
}

impl WriteTx<'_> {
    fn seal_document<T: SignedPurpose>(
        &self,
        id: &impl std::fmt::Display,
        signed: &Signed<T>,
    ) -> Result<Vec<u8>, StoreError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(signed).map_err(|e| {
            StoreError::Corrupt {
                column: "document",
                reason: e.to_string(),
            }
        })?);
        self.seal(&context(T::PURPOSE, id), &json)
    }

    /// Stores a bank's policy; an older version never replaces a newer one.
    pub fn put_policy(&self, signed: &Signed<Policy>) -> Result<PolicyUpdate, StoreError> {
        let policy = parse_body(signed)?;
        let bank = policy.bank_id.to_string();
        let held: Option<(u32, String, String)> = self
            .conn
            .query_row(
                "SELECT version, body, signature FROM policies WHERE bank_id = ?1",
                [&bank],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let signature =
            serde_json::to_string(&signed.signature).map_err(|e| StoreError::Corrupt {
                column: "policies.signature",
                reason: e.to_string(),
            })?;
        match held {
            Some((held, _, _)) if held > policy.version => {
                return Ok(PolicyUpdate::OlderIgnored { held });
            }
            Some((held, body, sig)) if held == policy.version => {
                return if body == signed.body && sig == signature {
                    Ok(PolicyUpdate::AlreadyHeld)
                } else {
                    Err(StoreError::PolicyConflict {
                        bank,
                        version: held,
                    })
                };
            }
            _ => {}
        }
        self.conn.execute(
            "INSERT INTO policies (bank_id, version, body, signature) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (bank_id) DO UPDATE SET
                 version = excluded.version, body = excluded.body, signature = excluded.signature",
            params![bank, policy.version, signed.body, signature],
        )?;
        Ok(PolicyUpdate::Stored)
    }

    /// Stores (or replaces) a case, encrypted whole.
    pub fn put_case(&self, signed: &Signed<Case>) -> Result<(), StoreError> {
        let case = parse_body(signed)?;
        let e = case.entrustment;
        let until = e.extended_until_ms.map_or(e.end_ms, |x| x.max(e.end_ms));
        let sealed = self.seal_document(&case.id, signed)?;
        self.conn.execute(
            "INSERT INTO cases (id, bank_id, valid_from_ms, valid_until_ms, document)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET bank_id = excluded.bank_id,
                 valid_from_ms = excluded.valid_from_ms, valid_until_ms = excluded.valid_until_ms,
                 document = excluded.document",
            params![
                case.id.to_string(),
                case.bank_id.to_string(),
                e.start_ms,
                until,
                sealed
            ],
        )?;
        Ok(())
    }

    /// Stores (or replaces) an approval, encrypted whole.
    pub fn put_approval(&self, signed: &Signed<Approval>) -> Result<(), StoreError> {
        let a = parse_body(signed)?;
        let sealed = self.seal_document(&a.id, signed)?;
        self.conn.execute(
            "INSERT INTO approvals (id, bank_id, case_id, valid_from_ms, valid_until_ms, document)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET bank_id = excluded.bank_id,
                 case_id = excluded.case_id, valid_from_ms = excluded.valid_from_ms,
                 valid_until_ms = excluded.valid_until_ms, document = excluded.document",
            params![
                a.id.to_string(),
                a.bank_id.to_string(),
                a.case_id.to_string(),
                a.valid_from_ms,
                a.valid_until_ms,
                sealed
            ],
        )?;
        Ok(())
    }

    /// Stores (or replaces) a visit ticket, encrypted whole.
    pub fn put_ticket(&self, signed: &Signed<VisitTicket>) -> Result<(), StoreError> {
        let t = parse_body(signed)?;
        let sealed = self.seal_document(&t.visit_id, signed)?;
        self.conn.execute(
            "INSERT INTO tickets (visit_id, approval_id, issued_at_ms, document)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (visit_id) DO UPDATE SET approval_id = excluded.approval_id,
                 issued_at_ms = excluded.issued_at_ms, document = excluded.document",
            params![
                t.visit_id.to_string(),
                t.approval_id.to_string(),
                t.issued_at_ms,
                sealed
            ],
        )?;
        Ok(())
    }

    /// Deletes a case's document (D01); whether it was held.
    pub fn delete_case(&self, id: CaseId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM cases WHERE id = ?1", [id.to_string()])?
            > 0)
    }

    /// Deletes an approval (D01); whether it was held.
    pub fn delete_approval(&self, id: ApprovalId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM approvals WHERE id = ?1", [id.to_string()])?
            > 0)
    }

    /// Deletes a visit ticket (D01); whether it was held.
    pub fn delete_ticket(&self, visit: VisitId) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM tickets WHERE visit_id = ?1",
            [visit.to_string()],
        )? > 0)
    }

    /// Deletes everything held for a case whose assignment ended (D01): the case, its
    /// approvals and their tickets. Returns how many documents went.
    pub fn purge_case_documents(&self, case: CaseId) -> Result<usize, StoreError> {
        let case = case.to_string();
        let tickets = self.conn.execute(
            "DELETE FROM tickets WHERE approval_id IN
                 (SELECT id FROM approvals WHERE case_id = ?1)",
            [&case],
        )?;
        let approvals = self
            .conn
            .execute("DELETE FROM approvals WHERE case_id = ?1", [&case])?;
        let cases = self
            .conn
            .execute("DELETE FROM cases WHERE id = ?1", [&case])?;
        Ok(tickets + approvals + cases)
    }
}
