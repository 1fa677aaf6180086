//! `manifest.json`: what a sealed visit contains, as canonical JSON.

use serde::{Deserialize, Serialize};

use super::BundleError;
use crate::canonical;
use crate::crypto::{Digest, Kid, sha256};
use crate::model::{
    AgentId, Approval, BankId, BundleId, CaseId, DeviceId, Event, Policy, Signed, VisitId,
    VisitTicket,
};
use crate::place::Fix;

/// The format id every v1 manifest starts with.
pub const FORMAT_V1: &str = "tandem.bundle/v1";

/// Signature purpose of the manifest: agents sign `"tandem/v1/manifest\n" || sha256(bytes)`.
pub const MANIFEST_PURPOSE: &str = "manifest";

/// The sealed record of one visit. Field names are the JSON keys (see `docs/bundle-format.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_V1`].
    pub format: String,
    /// The bundle's id (UUIDv7), also the idempotency key of its upload; signed, so a
    /// replay under a new id breaks the signatures.
    pub bundle_id: BundleId,
    /// The sealing phone and its place in that phone's chain of manifests.
    pub device: DeviceHeader,
    /// Which visit, under which approval, ticket and policy.
    pub visit: VisitHeader,
    /// The visit's full event log, in order.
    pub events: Vec<Event>,
    /// SHA-256 of the last event's canonical bytes (all zeros when there are no events):
    /// catches an edit or cut of the log's tail.
    pub events_head: Digest,
    /// One entry per blob shipped in `blobs/`.
    pub blobs: Vec<BlobEntry>,
    /// When the phone sealed the bundle, UTC ms (the phone's claim; bounded later by the
    /// server's checkpoint).
    pub sealed_at_ms: i64,
}

/// The sealing phone and its chain of manifests (gaps and forks show across bundles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceHeader {
    /// The phone that sealed.
    pub device_id: DeviceId,
    /// Its key id.
    pub kid: Kid,
    /// This manifest's number among the manifests the phone sealed, from 0.
    pub seq: u64,
    /// SHA-256 of the phone's previous manifest bytes; `null` exactly when `seq` is 0.
    pub prev_manifest: Option<Digest>,
}

/// The visit, with the server-signed documents it ran under (checkable with the server's
/// public key alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitHeader {
    /// The visit.
    pub visit_id: VisitId,
    /// The bank (client).
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The bank's reference of the case.
    pub case_ref: String,
    /// Agents of the approved team.
    pub team: Vec<AgentId>,
    /// The team lead (signs as `lead`).
    pub lead: AgentId,
    /// The partner (signs as `partner`).
    pub partner: AgentId,
    /// The manager's approval as the server signed it.
    pub approval: Signed<Approval>,
    /// SHA-256 of the approval's signed body.
    pub approval_digest: Digest,
    /// The visit ticket as the server signed it.
    pub ticket: Signed<VisitTicket>,
    /// SHA-256 of the ticket's signed body.
    pub ticket_digest: Digest,
    /// The bank's policy as the server signed it.
    pub policy: Signed<Policy>,
    /// SHA-256 of the policy's signed body.
    pub policy_digest: Digest,
}

/// What a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobRole {
    /// A photo as the camera wrote it.
    Original,
    /// Made from another blob (a thumbnail, a receipt image); `derived_from` names it.
    Derived,
    /// A WAV segment.
    Audio,
    /// A signature image (the payer's).
    Signature,
    /// A filled-in document (statement, promise).
    Document,
}

/// One blob of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobEntry {
    /// SHA-256 of the blob's bytes.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, e.g. `image/jpeg`, `audio/wav`.
    pub media_type: String,
    /// What it is.
    pub role: BlobRole,
    /// The source blob of a derived one; `null` for any other role.
    pub derived_from: Option<Digest>,
    /// When it was captured or made, UTC ms.
    pub captured_at_ms: i64,
    /// Where the phone was, if it had a fix.
    pub fix: Option<Fix>,
}

impl Manifest {
    /// The canonical bytes: what is stored as `manifest.json` and what the agents sign.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, BundleError> {
        canonical::to_canonical_vec(self).map_err(|source| BundleError::Canonical {
            name: "manifest.json",
            source,
        })
    }

    /// Reads `manifest.json` strictly: the bytes must be canonical (no whitespace, sorted
    /// keys, NFC, no floats, no duplicate keys), fit the type exactly, re-encode to the very
    /// same bytes, and name format v1.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let manifest: Self =
            canonical::from_canonical_slice(bytes).map_err(|source| BundleError::Canonical {
                name: "manifest.json",
                source,
            })?;
        if manifest.format != FORMAT_V1 {
            return Err(BundleError::Invalid {
                field: "format",
                reason: format!("expected {FORMAT_V1:?}"),
            });
        }
        Ok(manifest)
    }

    /// SHA-256 of the manifest bytes: what the server's log and the next manifest's
    /// `prev_manifest` refer to.
    pub fn digest_of(bytes: &[u8]) -> Digest {
        sha256(bytes)
    }

    /// The entry for a digest, if listed.
    pub fn blob(&self, digest: &Digest) -> Option<&BlobEntry> {
        self.blobs.iter().find(|b| &b.sha256 == digest)
    }
}
