//! A sealed sample bundle made from scratch, for tests and benchmarks (not for production).
//!
//! Server key, two agent keys, a server-signed approval, ticket and policy, a chained event
//! log (check-in, photo with thumbnail, audio segment, note, check-out), the blobs, and both
//! agents' signatures.

use std::collections::BTreeMap;

use super::{
    BlobEntry, BlobRole, BundleError, BundleSignature, DeviceEnrolment, DeviceHeader, ExportTarget,
    FORMAT_V1, Manifest, SealedBundle, SignerRole, Trust, VisitHeader, write_export,
};
use crate::crypto::{Digest, SignatureAlgorithm, SignatureRecord, Signer, SoftwareSigner, sha256};
use crate::handshake::{CheckInStatement, CheckOutStatement};
use crate::model::{
    AddressId, AgentId, Approval, ApprovalId, AuthorisationLetter, BankId, BundleId, CaseId,
    CoSignature, DerivedBlob, DeviceCertificate, DeviceId, Event, EventKind, EventTime, Policy,
    PromiseAuthorisation, Signed, TeamMember, VisitId, VisitTicket,
};
use crate::place::{Coordinate, Datum, Fix, Provider};

/// When the sample's ticket was issued (2026-11-29 01:46 UTC, 09:46 in Shanghai).
pub const TICKET_ISSUED_MS: i64 = 1_795_830_400_000;
const MINUTE: i64 = 60_000;

/// Everything behind a sample bundle: keys, ids, the manifest and the blob bytes.
pub struct SampleBundle {
    /// The server's key (signs approval, ticket, policy).
    pub server: SoftwareSigner,
    /// The lead agent's phone key.
    pub lead: SoftwareSigner,
    /// The partner agent's phone key.
    pub partner: SoftwareSigner,
    /// The lead agent.
    pub lead_agent: AgentId,
    /// The partner agent.
    pub partner_agent: AgentId,
    /// The lead's phone.
    pub lead_device: DeviceId,
    /// The partner's phone.
    pub partner_device: DeviceId,
    /// The manifest; edit it and call [`SampleBundle::seal`] to re-sign.
    pub manifest: Manifest,
    /// The bytes of every blob by digest.
    pub blobs: BTreeMap<Digest, Vec<u8>>,
    /// Trust: the server key and both enrolled device keys.
    pub trust: Trust,
}

/// Deterministic filler bytes starting with `magic`.
fn bytes(magic: &[u8], len: usize, seed: u64) -> Vec<u8> {
    let mut out = magic.to_vec();
    let mut state = seed | 1;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push((state >> 24) as u8);
    }
    out.truncate(len);
    out
}

/// Where the sample's phones stand (WGS-84, 1e-7 degree): a server seeding the sample's case
/// puts its address here to have the check-in inside the geofence.
pub const SAMPLE_POSITION_E7: (i32, i32) = (311_234_567, 1_214_567_890);

fn fix(at_ms: i64) -> Result<Fix, BundleError> {
    let coordinate = Coordinate::new(SAMPLE_POSITION_E7.0, SAMPLE_POSITION_E7.1, Datum::Wgs84)
        .map_err(|e| BundleError::Invalid {
            field: "fix",
            reason: e.to_string(),
        })?;
    Ok(Fix {
        coordinate,
        accuracy_m: 8,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: at_ms,
    })
}

impl SampleBundle {
    /// A sample with Ed25519 keys for everyone.
    pub fn new() -> Result<Self, BundleError> {
        Self::with_algorithms(SignatureAlgorithm::Ed25519, SignatureAlgorithm::Ed25519)
    }

    /// A sample whose lead and partner phones use the given algorithms.
    pub fn with_algorithms(
        lead_alg: SignatureAlgorithm,
        partner_alg: SignatureAlgorithm,
    ) -> Result<Self, BundleError> {
        let (server, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)?;
        Self::build(server, lead_alg, partner_alg)
    }

    /// A sample (Ed25519 phones) whose approval, ticket and policy are signed by `server`:
    /// a real server's key, so the server can take the bundle in.
    pub fn with_server(server: SoftwareSigner) -> Result<Self, BundleError> {
        Self::build(
            server,
            SignatureAlgorithm::Ed25519,
            SignatureAlgorithm::Ed25519,
        )
    }

    fn build(
        server: SoftwareSigner,
        lead_alg: SignatureAlgorithm,
        partner_alg: SignatureAlgorithm,
    ) -> Result<Self, BundleError> {
        let (lead, _) = SoftwareSigner::generate(lead_alg)?;
        let (partner, _) = SoftwareSigner::generate(partner_alg)?;
        let (lead_agent, partner_agent) = (AgentId::new(), AgentId::new());
        let (lead_device, partner_device) = (DeviceId::new(), DeviceId::new());
        let (bank_id, case_id, visit_id) = (BankId::new(), CaseId::new(), VisitId::new());
        let address_id = AddressId::new();
        let approval = Approval {
            id: ApprovalId::new(),
            bank_id,
            case_id,
            address_ids: vec![address_id],
            team: vec![
                TeamMember {
                    agent_id: lead_agent,
                    device_id: lead_device,
                    public_key: lead.public_key(),
                },
                TeamMember {
                    agent_id: partner_agent,
                    device_id: partner_device,
                    public_key: partner.public_key(),
                },
            ],
            valid_from_ms: TICKET_ISSUED_MS - 60 * MINUTE,
            valid_until_ms: TICKET_ISSUED_MS + 24 * 60 * MINUTE,
            letter: AuthorisationLetter {
                number: "WT-2026-0042".into(),
                valid_until_ms: TICKET_ISSUED_MS + 30 * 24 * 60 * MINUTE,
            },
            cash: None,
            promise: PromiseAuthorisation::default(),
            appointment: None,
            templates: Vec::new(),
            health_review_done: false,
            policy_version: 1,
            approved_at_ms: TICKET_ISSUED_MS - 120 * MINUTE,
        };
        let ticket = VisitTicket {
            visit_id,
            approval_id: approval.id,
            nonce: "9f1c2a7e5b3d4c6f".into(),
            issued_at_ms: TICKET_ISSUED_MS,
        };
        let policy = Policy::defaults(bank_id);
        let approval = Signed::sign(&approval, &server)?;
        let ticket = Signed::sign(&ticket, &server)?;
        let policy = Signed::sign(&policy, &server)?;

        let t = |minutes: i64| TICKET_ISSUED_MS + minutes * MINUTE;
        // Each sample's blobs differ, so blobs of two samples can be swapped in tests.
        let seed = u64::from_le_bytes(crate::crypto::random_bytes::<8>()?);
        let photo = bytes(b"\xFF\xD8\xFF\xE1", 48_000, seed);
        let thumb = bytes(b"\xFF\xD8\xFF\xE0", 6_000, seed ^ 2);
        let wav = bytes(b"RIFF", 64_000, seed ^ 3);
        let mut blobs = BTreeMap::new();
        let mut entries = Vec::new();
        let mut add = |data: Vec<u8>, media: &str, role, from: Option<Digest>, at: i64| {
            let digest = sha256(&data);
            entries.push(BlobEntry {
                sha256: digest,
                size: data.len() as u64,
                media_type: media.into(),
                role,
                derived_from: from,
                captured_at_ms: at,
                fix: fix(at).ok(),
            });
            blobs.insert(digest, data);
            digest
        };
        let photo_d = add(photo, "image/jpeg", BlobRole::Original, None, t(12));
        let thumb_d = add(thumb, "image/jpeg", BlobRole::Derived, Some(photo_d), t(12));
        let wav_d = add(wav, "audio/wav", BlobRole::Audio, None, t(11));

        // The check-in and check-out statements, co-signed by both phones (V03).
        let cosign = |purpose: &str, statement: Vec<u8>| -> Result<CoSignature, BundleError> {
            Ok(CoSignature {
                lead: SignatureRecord::sign(&lead, purpose, &statement)?,
                partner: SignatureRecord::sign(&partner, purpose, &statement)?,
                statement: String::from_utf8(statement).map_err(|_| BundleError::Invalid {
                    field: "statement",
                    reason: "not UTF-8".into(),
                })?,
            })
        };
        let statement_bytes = |result: Result<Vec<u8>, crate::canonical::CanonicalError>| {
            result.map_err(|source| BundleError::Canonical {
                name: "statement",
                source,
            })
        };
        let check_in = cosign(
            "check-in",
            statement_bytes(crate::canonical::to_canonical_vec(&CheckInStatement {
                visit_id,
                address_id,
                at_ms: t(10),
                outside_fence_reason: None,
            }))?,
        )?;
        let check_out = cosign(
            "check-out",
            statement_bytes(crate::canonical::to_canonical_vec(&CheckOutStatement {
                visit_id,
                address_id,
                checked_in_at_ms: t(10),
                at_ms: t(20),
            }))?,
        )?;
        let kinds = vec![
            (
                t(10),
                EventKind::CheckedIn {
                    address_id,
                    partner: partner_agent,
                    partner_device,
                    partner_fix: Some(fix(t(10))?),
                    distance_m: 35,
                    partner_distance_m: Some(4),
                    outside_fence_reason: None,
                    cosignature: Some(check_in),
                },
            ),
            (
                t(11),
                EventKind::AudioSegment {
                    index: 0,
                    digest: wav_d,
                    size: 64_000,
                    start_ms: t(10),
                    duration_ms: 60_000,
                    recovered: false,
                },
            ),
            (
                t(12),
                EventKind::Photo {
                    original: photo_d,
                    size: 48_000,
                    media_type: "image/jpeg".into(),
                    width: 4000,
                    height: 3000,
                    exif_time_ms: Some(t(12)),
                    thumbnail: DerivedBlob {
                        digest: thumb_d,
                        size: 6_000,
                        media_type: "image/jpeg".into(),
                    },
                    interior: false,
                },
            ),
            (
                t(14),
                EventKind::Note {
                    text: "债务人在家，同意下周还款。".into(),
                },
            ),
            (
                t(20),
                EventKind::CheckedOut {
                    partner: partner_agent,
                    partner_device,
                    partner_fix: Some(fix(t(20))?),
                    cosignature: Some(check_out),
                },
            ),
        ];
        let mut events: Vec<Event> = Vec::new();
        for (seq, (at, kind)) in kinds.into_iter().enumerate() {
            let prev = match events.last() {
                Some(e) => e.digest()?,
                None => Digest::ZERO,
            };
            events.push(Event {
                visit_id,
                seq: seq as u64,
                prev,
                at: EventTime {
                    wall_ms: at,
                    anchor_ms: Some(TICKET_ISSUED_MS - MINUTE),
                    since_anchor_ms: Some(at - TICKET_ISSUED_MS + MINUTE),
                },
                fix: Some(fix(at)?),
                by: lead_agent,
                kind,
            });
        }
        let events_head = match events.last() {
            Some(e) => e.digest()?,
            None => Digest::ZERO,
        };
        let manifest = Manifest {
            format: FORMAT_V1.into(),
            bundle_id: BundleId::new(),
            device: DeviceHeader {
                device_id: lead_device,
                kid: lead.public_key().kid(),
                seq: 0,
                prev_manifest: None,
            },
            visit: VisitHeader {
                visit_id,
                bank_id,
                case_id,
                case_ref: "ZH-2026-118877".into(),
                team: vec![lead_agent, partner_agent],
                lead: lead_agent,
                partner: partner_agent,
                approval_digest: approval.digest(),
                approval,
                ticket_digest: ticket.digest(),
                ticket,
                policy_digest: policy.digest(),
                policy,
            },
            events,
            events_head,
            blobs: entries,
            sealed_at_ms: t(21),
        };
        let enrol = |agent_id, device_id| DeviceEnrolment {
            agent_id,
            device_id,
            enrolled_at_ms: TICKET_ISSUED_MS - 30 * 24 * 60 * MINUTE,
            revoked_at_ms: None,
        };
        let trust = Trust {
            server_keys: vec![server.public_key()],
            devices: BTreeMap::from([
                (lead.public_key().kid(), enrol(lead_agent, lead_device)),
                (
                    partner.public_key().kid(),
                    enrol(partner_agent, partner_device),
                ),
            ]),
        };
        Ok(Self {
            server,
            lead,
            partner,
            lead_agent,
            partner_agent,
            lead_device,
            partner_device,
            manifest,
            blobs,
            trust,
        })
    }

    /// Encodes the manifest and has both agents sign it.
    pub fn seal(&self) -> Result<SealedBundle, BundleError> {
        let bytes = self.manifest.to_canonical_bytes()?;
        let signatures = vec![
            BundleSignature::sign(&self.lead, SignerRole::Lead, self.lead_agent, &bytes)?,
            BundleSignature::sign(
                &self.partner,
                SignerRole::Partner,
                self.partner_agent,
                &bytes,
            )?,
        ];
        SealedBundle::from_bytes(bytes, signatures)
    }

    /// Re-signs the approval with `signer` (as if it were the server) and updates its digest.
    pub fn resign_approval(&mut self, signer: &dyn Signer) -> Result<(), BundleError> {
        let approval: Approval =
            crate::canonical::from_canonical_slice(self.manifest.visit.approval.body.as_bytes())
                .map_err(|source| BundleError::Canonical {
                    name: "approval",
                    source,
                })?;
        let signed = Signed::sign(&approval, signer)?;
        self.manifest.visit.approval_digest = signed.digest();
        self.manifest.visit.approval = signed;
        Ok(())
    }

    /// The server's certificates of both signing keys, as `trust` has them.
    pub fn certificates(&self) -> Result<Vec<Signed<DeviceCertificate>>, BundleError> {
        let keys = [&self.lead, &self.partner].map(|s| s.public_key());
        keys.into_iter()
            .filter_map(|key| {
                let enrolment = self.trust.devices.get(&key.kid())?;
                let certificate = DeviceCertificate {
                    device_id: enrolment.device_id,
                    agent_id: enrolment.agent_id,
                    bank_ids: vec![self.manifest.visit.bank_id],
                    public_key: key,
                    enrolled_at_ms: enrolment.enrolled_at_ms,
                    revoked_at_ms: enrolment.revoked_at_ms,
                    issued_at_ms: self.manifest.sealed_at_ms + 60 * MINUTE,
                };
                Some(Signed::sign(&certificate, &self.server).map_err(BundleError::from))
            })
            .collect()
    }

    /// Seals and exports the sample (with the server key and the certificates of both
    /// signing keys).
    pub fn export(&self, target: ExportTarget<'_>) -> Result<SealedBundle, BundleError> {
        let sealed = self.seal()?.with_certificates(self.certificates()?);
        write_export(
            &sealed,
            &self.blobs,
            Some(&self.server.public_key()),
            target,
        )?;
        Ok(sealed)
    }
}

/// A bundle held in memory by entry name: lets tamper tests change one byte and verify
/// again without touching the disk.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    /// Entries by name (`manifest.json`, `signatures.json`, `blobs/<sha256>.<ext>`).
    pub entries: BTreeMap<String, Vec<u8>>,
}

impl MemorySource {
    /// The entries a verifier reads: manifest, signatures and blobs.
    pub fn from_sealed(
        sealed: &SealedBundle,
        blobs: &BTreeMap<Digest, Vec<u8>>,
    ) -> Result<Self, BundleError> {
        let mut entries = BTreeMap::new();
        entries.insert("manifest.json".to_owned(), sealed.manifest_bytes.clone());
        entries.insert(
            "signatures.json".to_owned(),
            super::signatures_to_bytes(&sealed.signatures)?,
        );
        for entry in &sealed.manifest.blobs {
            if let Some(data) = blobs.get(&entry.sha256) {
                entries.insert(
                    format!("blobs/{}", super::verify::blob_file_name(entry)),
                    data.clone(),
                );
            }
        }
        Ok(Self { entries })
    }
}

impl super::BundleSource for MemorySource {
    fn location(&self) -> &std::path::Path {
        std::path::Path::new("<memory>")
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        match self.entries.get(name) {
            Some(data) if data.len() as u64 > limit => Err(BundleError::TooLarge {
                name: name.to_owned(),
                limit,
            }),
            other => Ok(other.cloned()),
        }
    }

    fn blob_names(&self) -> Result<Vec<String>, BundleError> {
        Ok(self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix("blobs/"))
            .map(str::to_owned)
            .collect())
    }

    fn stream(
        &self,
        name: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, BundleError> {
        let data = self.entries.get(name).ok_or_else(|| BundleError::Missing {
            name: name.to_owned(),
        })?;
        let n = data.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        let part = data.get(..n).unwrap_or_default();
        for chunk in part.chunks(super::source::CHUNK) {
            sink(chunk);
        }
        Ok(n as u64)
    }
}

/// What running `VERIFY.txt`'s steps gave: each command and its output, and whether every
/// command printed `OK` and exited 0.
#[derive(Debug)]
pub struct StepsRun {
    /// (command, exit code, stdout and stderr) per command, in order, up to the first that
    /// failed.
    pub commands: Vec<(String, Option<i32>, String)>,
    /// Every command ran, exited 0 and ended its output with `OK`.
    pub all_ok: bool,
}

/// Runs the steps of the `VERIFY.txt` in `folder` the way a reader types them: reads the
/// file, takes each command line (after [`super::VERIFY_COMMAND_PREFIX`]), puts `fingerprint`
/// in place of [`super::FINGERPRINT_PLACEHOLDER`], and runs it with `bash -c` in the
/// folder, stopping at the first that does not print `OK`. The file itself is never run.
pub fn run_verify_steps(folder: &std::path::Path, fingerprint: &str) -> StepsRun {
    let text = std::fs::read_to_string(folder.join("VERIFY.txt")).unwrap_or_default();
    let mut commands = Vec::new();
    let mut all_ok = false;
    for line in text.lines() {
        let Some(command) = line.strip_prefix(super::VERIFY_COMMAND_PREFIX) else {
            continue;
        };
        let command = command.replace(super::FINGERPRINT_PLACEHOLDER, fingerprint);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(folder)
            .output();
        let (code, output) = match out {
            Ok(o) => (
                o.status.code(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(e) => (None, e.to_string()),
        };
        let ok = code == Some(0) && output.trim_end().ends_with("OK");
        commands.push((command, code, output));
        if !ok {
            return StepsRun {
                commands,
                all_ok: false,
            };
        }
        all_ok = true;
    }
    StepsRun { commands, all_ok }
}

/// One entry of a ZIP written or read by the test helpers: (name, bytes, deflated?).
pub type ZipEntry = (String, Vec<u8>, bool);

/// Every entry of a ZIP file, in order.
pub fn zip_entries(path: &std::path::Path) -> Result<Vec<ZipEntry>, BundleError> {
    use std::io::Read as _;
    let zip_error = |e: zip::result::ZipError| BundleError::Zip {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| BundleError::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| BundleError::io(path, e))?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        let deflated = entry.compression() == zip::CompressionMethod::Deflated;
        out.push((name, bytes, deflated));
    }
    Ok(out)
}

/// Writes a ZIP with exactly these entries (name, bytes, deflated?), in order: duplicate
/// and unsafe names included, as a tampered export would have them.
pub fn write_zip(path: &std::path::Path, entries: &[ZipEntry]) -> Result<(), BundleError> {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let zip_error = |e: zip::result::ZipError| BundleError::Zip {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // The writer refuses a name twice: a repeated name is written under a stand-in of the
    // same length, then renamed in place (local header and central directory alike).
    let mut seen = std::collections::BTreeSet::new();
    let mut renames = Vec::new();
    let mut named = Vec::with_capacity(entries.len());
    for (i, (name, bytes, deflate)) in entries.iter().enumerate() {
        let mut written = name.clone();
        if !seen.insert(name.clone()) {
            let tag = format!("{:0width$}", i, width = name.len().min(8));
            written = format!("{}{tag}", &name[..name.len().saturating_sub(tag.len())]);
            renames.push((written.clone(), name.clone()));
        }
        named.push((written, bytes, *deflate));
    }
    let file = std::fs::File::create(path).map_err(|e| BundleError::io(path, e))?;
    let mut w = zip::ZipWriter::new(file);
    for (name, bytes, deflate) in named {
        let method = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        w.start_file(
            name.as_str(),
            SimpleFileOptions::default().compression_method(method),
        )
        .map_err(zip_error)?;
        w.write_all(bytes).map_err(|e| BundleError::io(path, e))?;
    }
    w.finish().map_err(zip_error)?;
    if !renames.is_empty() {
        let mut bytes = std::fs::read(path).map_err(|e| BundleError::io(path, e))?;
        for (stand_in, name) in &renames {
            let (from, to) = (stand_in.as_bytes(), name.as_bytes());
            let mut at = 0;
            while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
                bytes[at + i..at + i + from.len()].copy_from_slice(to);
                at += i + from.len();
            }
        }
        std::fs::write(path, bytes).map_err(|e| BundleError::io(path, e))?;
    }
    Ok(())
}
