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
use crate::crypto::{
    Digest, Kid, SignatureAlgorithm, SignatureRecord, Signer, SoftwareSigner, sha256,
};
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

/// Deterministic filler (xorshift64*) after `magic`, one word at a time: distinct seeds give
/// distinct bytes, so blobs made from two seeds can be swapped in tests.
pub fn filler(magic: &[u8], len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(magic);
    // Odd, so never zero (xorshift needs a non-zero state), and distinct for distinct seeds.
    let mut state = (seed << 1) | 1;
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Where the sample's phones stand (WGS-84, 1e-7 degree): a server seeding the sample's case
/// puts its address here to have the check-in inside the geofence.
pub const SAMPLE_POSITION_E7: (i32, i32) = (311_234_567, 1_214_567_890);

/// One phone of a team as a bundle records it: who carries it, and its device key.
#[derive(Clone, Copy)]
pub struct TeamSigner<'a> {
    /// The agent.
    pub agent: AgentId,
    /// The phone.
    pub device: DeviceId,
    /// The phone's key.
    pub key: &'a dyn Signer,
}

impl TeamSigner<'_> {
    /// The phone as an approval lists it.
    pub fn team_member(&self) -> TeamMember {
        TeamMember {
            agent_id: self.agent,
            device_id: self.device,
            public_key: self.key.public_key(),
        }
    }

    /// The phone's enrolment as a verifier's trust holds it.
    pub fn enrolment(&self, enrolled_at_ms: i64) -> (Kid, DeviceEnrolment) {
        (
            self.key.public_key().kid(),
            DeviceEnrolment {
                agent_id: self.agent,
                device_id: self.device,
                enrolled_at_ms,
                revoked_at_ms: None,
            },
        )
    }
}

/// The server's approval of a visit by `team` on `day_ms`: valid from an hour before to a
/// day after, approved two hours before, no cash or promise authorisation.
pub fn sample_approval(
    case: (BankId, CaseId, AddressId),
    team: [TeamSigner<'_>; 2],
    day_ms: i64,
    letter: &str,
) -> Approval {
    let (bank_id, case_id, address_id) = case;
    Approval {
        id: ApprovalId::new(),
        bank_id,
        case_id,
        address_ids: vec![address_id],
        team: team.iter().map(TeamSigner::team_member).collect(),
        valid_from_ms: day_ms - 60 * MINUTE,
        valid_until_ms: day_ms + 24 * 60 * MINUTE,
        letter: AuthorisationLetter {
            number: letter.into(),
            valid_until_ms: day_ms + 30 * 24 * 60 * MINUTE,
        },
        cash: None,
        promise: PromiseAuthorisation::default(),
        appointment: None,
        templates: Vec::new(),
        health_review_done: false,
        policy_version: 1,
        approved_at_ms: day_ms - 120 * MINUTE,
    }
}

/// What a manifest says about the visit besides its events and blobs.
pub struct VisitDocuments {
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// The approval, signed by the server.
    pub approval: Signed<Approval>,
    /// The ticket, signed by the server.
    pub ticket: Signed<VisitTicket>,
    /// The policy, signed by the server.
    pub policy: Signed<Policy>,
}

impl VisitDocuments {
    /// The server signs `approval`, `ticket` and the bank's default policy.
    pub fn sign(
        server: &dyn Signer,
        case_ref: &str,
        approval: &Approval,
        ticket: &VisitTicket,
    ) -> Result<Self, BundleError> {
        Ok(Self {
            bank_id: approval.bank_id,
            case_id: approval.case_id,
            case_ref: case_ref.into(),
            approval: Signed::sign(approval, server)?,
            ticket: Signed::sign(ticket, server)?,
            policy: Signed::sign(&Policy::defaults(approval.bank_id), server)?,
        })
    }
}

/// A visit recorded the way two phones record it: blobs listed, events chained in time
/// order with anchored times, check-in and check-out co-signed by both phones (V03), all
/// fixes from where the team stands.
pub struct VisitRecord<'a> {
    lead: TeamSigner<'a>,
    partner: TeamSigner<'a>,
    visit_id: VisitId,
    address_id: AddressId,
    standing: Coordinate,
    anchor_ms: i64,
    kinds: Vec<(i64, EventKind)>,
    blobs: Vec<BlobEntry>,
}

impl<'a> VisitRecord<'a> {
    /// An empty record of `visit_id` at `address_id`, the team standing at `standing`
    /// (WGS-84), the lead's clock anchored at `anchor_ms`.
    pub fn new(
        team: [TeamSigner<'a>; 2],
        visit_id: VisitId,
        address_id: AddressId,
        standing: Coordinate,
        anchor_ms: i64,
    ) -> Self {
        let [lead, partner] = team;
        Self {
            lead,
            partner,
            visit_id,
            address_id,
            standing,
            anchor_ms,
            kinds: Vec::new(),
            blobs: Vec::new(),
        }
    }

    /// An 8 m GNSS fix where the team stands, taken at `at_ms`.
    pub fn fix(&self, at_ms: i64) -> Fix {
        Fix {
            coordinate: self.standing,
            accuracy_m: 8,
            provider: Provider::Gnss,
            mock: false,
            taken_at_ms: at_ms,
        }
    }

    /// Lists a blob captured at `at_ms`; returns its address.
    pub fn blob(
        &mut self,
        (sha256, size): (Digest, u64),
        media_type: &str,
        role: BlobRole,
        derived_from: Option<Digest>,
        at_ms: i64,
    ) -> Digest {
        self.blobs.push(BlobEntry {
            sha256,
            size,
            media_type: media_type.into(),
            role,
            derived_from,
            captured_at_ms: at_ms,
            fix: Some(self.fix(at_ms)),
        });
        sha256
    }

    /// Records an event at `at_ms`.
    pub fn event(&mut self, at_ms: i64, kind: EventKind) {
        self.kinds.push((at_ms, kind));
    }

    /// A one-minute WAV segment `index` that ended at `end_ms`.
    pub fn audio(&mut self, index: u32, end_ms: i64, wav: (Digest, u64)) {
        let digest = self.blob(wav, "audio/wav", BlobRole::Audio, None, end_ms);
        self.event(
            end_ms,
            EventKind::AudioSegment {
                index,
                digest,
                size: wav.1,
                start_ms: end_ms - MINUTE,
                duration_ms: MINUTE,
                recovered: false,
            },
        );
    }

    /// A 4000×3000 JPEG taken at `at_ms`, with its thumbnail.
    pub fn photo(&mut self, at_ms: i64, original: (Digest, u64), thumbnail: (Digest, u64)) {
        let jpeg = "image/jpeg";
        let photo = self.blob(original, jpeg, BlobRole::Original, None, at_ms);
        let thumb = self.blob(thumbnail, jpeg, BlobRole::Derived, Some(photo), at_ms);
        self.event(
            at_ms,
            EventKind::Photo {
                original: photo,
                size: original.1,
                media_type: jpeg.into(),
                width: 4000,
                height: 3000,
                exif_time_ms: Some(at_ms),
                thumbnail: DerivedBlob {
                    digest: thumb,
                    size: thumbnail.1,
                    media_type: jpeg.into(),
                },
                interior: false,
            },
        );
    }

    /// Both phones sign `statement` for `purpose`.
    fn cosign<T: serde::Serialize>(
        &self,
        purpose: &str,
        statement: &T,
    ) -> Result<CoSignature, BundleError> {
        let bytes = crate::canonical::to_canonical_vec(statement).map_err(|source| {
            BundleError::Canonical {
                name: "statement",
                source,
            }
        })?;
        Ok(CoSignature {
            lead: SignatureRecord::sign(self.lead.key, purpose, &bytes)?,
            partner: SignatureRecord::sign(self.partner.key, purpose, &bytes)?,
            statement: String::from_utf8(bytes).map_err(|_| BundleError::Invalid {
                field: "statement",
                reason: "not UTF-8".into(),
            })?,
        })
    }

    /// The co-signed check-in at `at_ms`, the lead `distance_m` from the address and the
    /// partner `partner_distance_m` from the lead.
    pub fn check_in(
        &mut self,
        at_ms: i64,
        distance_m: u32,
        partner_distance_m: u32,
    ) -> Result<(), BundleError> {
        let cosignature = self.cosign(
            "check-in",
            &CheckInStatement {
                visit_id: self.visit_id,
                address_id: self.address_id,
                at_ms,
                outside_fence_reason: None,
            },
        )?;
        let kind = EventKind::CheckedIn {
            address_id: self.address_id,
            partner: self.partner.agent,
            partner_device: self.partner.device,
            partner_fix: Some(self.fix(at_ms)),
            distance_m,
            partner_distance_m: Some(partner_distance_m),
            outside_fence_reason: None,
            cosignature: Some(cosignature),
        };
        self.event(at_ms, kind);
        Ok(())
    }

    /// The co-signed check-out at `at_ms` of the check-in at `checked_in_at_ms`.
    pub fn check_out(&mut self, checked_in_at_ms: i64, at_ms: i64) -> Result<(), BundleError> {
        let cosignature = self.cosign(
            "check-out",
            &CheckOutStatement {
                visit_id: self.visit_id,
                address_id: self.address_id,
                checked_in_at_ms,
                at_ms,
            },
        )?;
        let kind = EventKind::CheckedOut {
            partner: self.partner.agent,
            partner_device: self.partner.device,
            partner_fix: Some(self.fix(at_ms)),
            cosignature: Some(cosignature),
        };
        self.event(at_ms, kind);
        Ok(())
    }

    /// The lead phone's manifest number `seq` (chained to `prev_manifest`), sealed at
    /// `sealed_at_ms`: the events sorted by time and chained.
    pub fn into_manifest(
        mut self,
        documents: VisitDocuments,
        (seq, prev_manifest): (u64, Option<Digest>),
        sealed_at_ms: i64,
    ) -> Result<Manifest, BundleError> {
        let mut kinds = std::mem::take(&mut self.kinds);
        kinds.sort_by_key(|(at, _)| *at);
        let mut events: Vec<Event> = Vec::with_capacity(kinds.len());
        for (seq, (at, kind)) in kinds.into_iter().enumerate() {
            let prev = match events.last() {
                Some(e) => e.digest()?,
                None => Digest::ZERO,
            };
            events.push(Event {
                visit_id: self.visit_id,
                seq: seq as u64,
                prev,
                at: EventTime {
                    wall_ms: at,
                    anchor_ms: Some(self.anchor_ms),
                    since_anchor_ms: Some(at - self.anchor_ms),
                },
                fix: Some(self.fix(at)),
                by: self.lead.agent,
                kind,
            });
        }
        let events_head = match events.last() {
            Some(e) => e.digest()?,
            None => Digest::ZERO,
        };
        let VisitDocuments {
            bank_id,
            case_id,
            case_ref,
            approval,
            ticket,
            policy,
        } = documents;
        Ok(Manifest {
            format: FORMAT_V1.into(),
            bundle_id: BundleId::new(),
            device: DeviceHeader {
                device_id: self.lead.device,
                kid: self.lead.key.public_key().kid(),
                seq,
                prev_manifest,
            },
            visit: VisitHeader {
                visit_id: self.visit_id,
                bank_id,
                case_id,
                case_ref,
                team: vec![self.lead.agent, self.partner.agent],
                lead: self.lead.agent,
                partner: self.partner.agent,
                approval_digest: approval.digest(),
                approval,
                ticket_digest: ticket.digest(),
                ticket,
                policy_digest: policy.digest(),
                policy,
            },
            events,
            events_head,
            blobs: self.blobs,
            sealed_at_ms,
        })
    }
}

/// Encodes `manifest` and has the lead and the partner sign it.
pub fn seal_by(
    manifest: &Manifest,
    [lead, partner]: [TeamSigner<'_>; 2],
) -> Result<SealedBundle, BundleError> {
    let bytes = manifest.to_canonical_bytes()?;
    let signatures = vec![
        BundleSignature::sign(lead.key, SignerRole::Lead, lead.agent, &bytes)?,
        BundleSignature::sign(partner.key, SignerRole::Partner, partner.agent, &bytes)?,
    ];
    SealedBundle::from_bytes(bytes, signatures)
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
        let team = [
            TeamSigner {
                agent: lead_agent,
                device: lead_device,
                key: &lead,
            },
            TeamSigner {
                agent: partner_agent,
                device: partner_device,
                key: &partner,
            },
        ];
        let (bank_id, case_id, address_id) = (BankId::new(), CaseId::new(), AddressId::new());
        let approval = sample_approval(
            (bank_id, case_id, address_id),
            team,
            TICKET_ISSUED_MS,
            "WT-2026-0042",
        );
        let ticket = VisitTicket {
            visit_id: VisitId::new(),
            approval_id: approval.id,
            nonce: "9f1c2a7e5b3d4c6f".into(),
            issued_at_ms: TICKET_ISSUED_MS,
        };
        let documents = VisitDocuments::sign(&server, "ZH-2026-118877", &approval, &ticket)?;

        let t = |minutes: i64| TICKET_ISSUED_MS + minutes * MINUTE;
        let standing = Coordinate::new(SAMPLE_POSITION_E7.0, SAMPLE_POSITION_E7.1, Datum::Wgs84)
            .map_err(|e| BundleError::Invalid {
                field: "fix",
                reason: e.to_string(),
            })?;
        let mut record = VisitRecord::new(
            team,
            ticket.visit_id,
            address_id,
            standing,
            TICKET_ISSUED_MS - MINUTE,
        );
        // Each sample's blobs differ, so blobs of two samples can be swapped in tests.
        let seed = u64::from_le_bytes(crate::crypto::random_bytes::<8>()?);
        let mut blobs = BTreeMap::new();
        let mut keep = |data: Vec<u8>| {
            let address = (sha256(&data), data.len() as u64);
            blobs.insert(address.0, data);
            address
        };
        let photo = keep(filler(b"\xFF\xD8\xFF\xE1", 48_000, seed));
        let thumb = keep(filler(b"\xFF\xD8\xFF\xE0", 6_000, seed ^ 2));
        let wav = keep(filler(b"RIFF", 64_000, seed ^ 3));
        record.check_in(t(10), 35, 4)?;
        record.photo(t(12), photo, thumb);
        record.audio(0, t(11), wav);
        record.event(
            t(14),
            EventKind::Note {
                text: "债务人在家，同意下周还款。".into(),
            },
        );
        record.check_out(t(10), t(20))?;
        let manifest = record.into_manifest(documents, (0, None), t(21))?;
        let enrolled_at_ms = TICKET_ISSUED_MS - 30 * 24 * 60 * MINUTE;
        let trust = Trust {
            server_keys: vec![server.public_key()],
            devices: team.iter().map(|p| p.enrolment(enrolled_at_ms)).collect(),
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

    /// The lead and the partner as the bundle records them.
    pub fn team(&self) -> [TeamSigner<'_>; 2] {
        [
            TeamSigner {
                agent: self.lead_agent,
                device: self.lead_device,
                key: &self.lead,
            },
            TeamSigner {
                agent: self.partner_agent,
                device: self.partner_device,
                key: &self.partner,
            },
        ]
    }

    /// Encodes the manifest and has both agents sign it.
    pub fn seal(&self) -> Result<SealedBundle, BundleError> {
        seal_by(&self.manifest, self.team())
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
