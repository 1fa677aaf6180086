//! Sealing a visit (DESIGN.md §7, rule E01): the manifest is built from the store, both
//! agents sign it through the handshake, and it is kept — with `signatures.json` — as blobs
//! in the encrypted store, chained to this phone's previous bundle. After that the visit
//! cannot change: the store refuses new events for a sealed visit.

use std::collections::BTreeMap;

use super::Phone;
use super::loaded::Loaded;
use crate::bundle::{
    BlobEntry, BlobRole, BundleSignature, DeviceHeader, FORMAT_V1, Manifest, SealedBundle,
    SignerRole, VisitHeader, parse_signatures, signatures_to_bytes,
};
use crate::crypto::Digest;
use crate::handshake::CoSigned;
use crate::model::{BundleId, Event, EventKind, VisitId, VisitState};
use crate::rules::{self, SealInput, SealSigner};
use crate::store::{EvidenceRole, ReadTx, SealRecord};
use crate::{Error, Result};

impl Phone {
    /// Lead: builds the visit's manifest and starts co-signing it; returns the QR frames.
    pub fn begin_seal(&self, visit: VisitId) -> Result<Vec<String>> {
        // A receipt number reserved and never co-signed is voided in the log before it is
        // sealed, so the visit's numbers have no unexplained gap.
        self.void_abandoned_reservations()?;
        let now = self.now()?;
        let (device, _) = self.identity()?;
        let kid = self.signer.public_key().kid();
        let manifest = self.store.read(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_state(VisitState::CheckedOut, "seal")?;
            let head = tx
                .verify_visit_chain(visit)?
                .map_or(Digest::ZERO, |h| h.digest);
            let last = tx.last_seal()?;
            let device_header = DeviceHeader {
                device_id: device,
                kid,
                seq: last.map_or(0, |s| s.device_seq + 1),
                prev_manifest: last.map(|s| s.manifest),
            };
            let visit_header = visit_header(tx, &loaded)?;
            let blobs = blob_entries(tx, visit, &loaded.events)?;
            Ok::<_, Error>(Manifest {
                format: FORMAT_V1.into(),
                bundle_id: BundleId::new(),
                device: device_header,
                visit: visit_header,
                events: loaded.events,
                events_head: head,
                blobs,
                sealed_at_ms: now.best_ms(),
            })
        })?;
        for blob in &manifest.blobs {
            if !self.blobs.contains(&blob.sha256)? {
                return Err(Error::NotFound {
                    what: format!("evidence blob {}", blob.sha256),
                });
            }
        }
        let bytes = manifest.to_canonical_bytes()?;
        self.begin_manifest_cosign(visit, bytes)
    }

    /// Lead: the partner co-signed the manifest; checks E01 and keeps the sealed bundle.
    pub(super) fn finish_seal(&self, visit: VisitId, cosigned: &CoSigned) -> Result<SealRecord> {
        let manifest_bytes = cosigned.statement.clone();
        let manifest = Manifest::parse(&manifest_bytes)?;
        let signatures = vec![
            BundleSignature {
                role: SignerRole::Lead,
                agent_id: cosigned.lead.agent_id,
                kid: cosigned.lead_signature.kid,
                alg: cosigned.lead_signature.alg,
                sig: cosigned.lead_signature.sig.clone(),
            },
            BundleSignature {
                role: SignerRole::Partner,
                agent_id: cosigned.partner.agent_id,
                kid: cosigned.partner_signature.kid,
                alg: cosigned.partner_signature.alg,
                sig: cosigned.partner_signature.sig.clone(),
            },
        ];
        let signatures_bytes = signatures_to_bytes(&signatures)?;
        let now = self.now()?;
        // The blobs first (fsynced), then the row that points at them.
        let stored_manifest = self.blobs.put_bytes(&manifest_bytes)?;
        let stored_signatures = self.blobs.put_bytes(&signatures_bytes)?;
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_state(VisitState::CheckedOut, "seal")?;
            if loaded.events != manifest.events {
                return Err(Error::NotReady(
                    "the visit changed after its manifest was shown: seal again".into(),
                ));
            }
            let has_blob = |d: &Digest| self.blobs.contains(d).unwrap_or(false);
            let signers = [
                SealSigner {
                    agent_id: cosigned.lead.agent_id,
                    kid: cosigned.lead_signature.kid,
                },
                SealSigner {
                    agent_id: cosigned.partner.agent_id,
                    kid: cosigned.partner_signature.kid,
                },
            ];
            let violations = rules::check_seal(
                &loaded.context(now),
                &SealInput {
                    head: manifest.events_head,
                    has_blob: &has_blob,
                    signers: &signers,
                },
            );
            super::lifecycle::refuse_if_blocked(violations)?;
            let seal = SealRecord {
                visit_id: visit,
                bundle_id: manifest.bundle_id,
                device_seq: manifest.device.seq,
                manifest: stored_manifest.digest,
                signatures: stored_signatures.digest,
                sealed_at_ms: manifest.sealed_at_ms,
            };
            tx.record_seal(&seal)?;
            tx.set_visit_state(visit, VisitState::Sealed, manifest.sealed_at_ms)?;
            // Queued in the same transaction: a sealed bundle is never forgotten.
            let blobs: Vec<(Digest, u64)> =
                manifest.blobs.iter().map(|b| (b.sha256, b.size)).collect();
            tx.enqueue_push(manifest.bundle_id, visit, &blobs, now.wall_ms)?;
            Ok(seal)
        })
    }

    /// A sealed visit's bundle: the manifest and signatures exactly as signed.
    pub fn sealed_bundle(&self, visit: VisitId) -> Result<SealedBundle> {
        let seal = self
            .store
            .read(|tx| Ok::<_, Error>(tx.seal_of(visit)?))?
            .ok_or_else(|| Error::NotFound {
                what: format!("seal of visit {visit}"),
            })?;
        let manifest = self.blobs.read_to_vec(&seal.manifest)?;
        let signatures = parse_signatures(&self.blobs.read_to_vec(&seal.signatures)?)?;
        Ok(SealedBundle::from_bytes(manifest, signatures)?)
    }
}

fn visit_header(tx: &ReadTx<'_>, loaded: &Loaded) -> Result<VisitHeader> {
    let v = &loaded.record.visit;
    let missing = |what: &str| Error::NotFound {
        what: format!("{what} of visit {}", v.id),
    };
    let approval = tx
        .approval(v.approval_id)?
        .ok_or_else(|| missing("approval"))?;
    let ticket = tx.ticket(v.id)?.ok_or_else(|| missing("ticket"))?;
    let policy = tx
        .policy(loaded.case.bank_id)?
        .ok_or_else(|| missing("policy"))?;
    let partner = loaded
        .events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::CheckedIn { partner, .. } => Some(partner),
            _ => None,
        })
        .ok_or_else(|| missing("check-in"))?;
    Ok(VisitHeader {
        visit_id: v.id,
        bank_id: loaded.case.bank_id,
        case_id: loaded.case.id,
        case_ref: loaded.case.case_ref.clone(),
        team: loaded.approval.team.iter().map(|m| m.agent_id).collect(),
        lead: v.agent_id,
        partner,
        approval_digest: approval.digest(),
        approval,
        ticket_digest: ticket.digest(),
        ticket,
        policy_digest: policy.digest(),
        policy,
    })
}

/// One entry per blob of the visit, with when and where it was captured (from its event).
fn blob_entries(tx: &ReadTx<'_>, visit: VisitId, events: &[Event]) -> Result<Vec<BlobEntry>> {
    let mut captured: BTreeMap<Digest, (&Event, Option<Digest>)> = BTreeMap::new();
    for event in events {
        for blob in event.kind.blobs() {
            captured
                .entry(blob.digest)
                .or_insert((event, blob.derived_from));
        }
    }
    let mut entries = Vec::new();
    for record in tx.evidence(visit)? {
        let item = record.item;
        let (event, source) = captured.get(&item.digest).copied().unzip();
        let role = match item.role {
            EvidenceRole::Original => BlobRole::Original,
            EvidenceRole::Thumbnail => BlobRole::Derived,
            EvidenceRole::Audio => BlobRole::Audio,
            EvidenceRole::Signature => BlobRole::Signature,
            EvidenceRole::Document => BlobRole::Document,
        };
        let captured_at_ms = match event.map(|e| &e.kind) {
            Some(EventKind::AudioSegment { start_ms, .. }) => *start_ms,
            _ => event.map_or(0, |e| e.at.best_ms()),
        };
        entries.push(BlobEntry {
            sha256: item.digest,
            size: item.size,
            media_type: item.media_type,
            role,
            derived_from: if role == BlobRole::Derived {
                source.flatten()
            } else {
                None
            },
            captured_at_ms,
            fix: event.and_then(|e| e.fix.clone()),
        });
    }
    Ok(entries)
}
