//! A signed world for tests, the terminal simulator and demos: a server key, a bank with
//! its policy, a case in Shanghai geocoded in GCJ-02 (as AMap gives it), and helpers to
//! enrol phones and assign them a visit. Compiled only with the `testing` feature.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};

use crate::Result;
use crate::clock::{Clock, ManualClock};
use crate::crypto::{PublicKey, SignatureAlgorithm, Signer, SoftwareKeyStore, SoftwareSigner};
use crate::model::{
    AddressId, AgentId, Approval, ApprovalId, ApprovedAddress, AuthorisationLetter, BankId, Case,
    CaseId, CaseStatus, CashAuthorisation, Debtor, DeviceId, Entrustment, Fen, MaskedCardNumber,
    MaskedIdNumber, PaymentMethod, Policy, PromiseAuthorisation, ReceiptSerial, SerialRange,
    Signed, SignedPurpose, TeamMember, TimeAnchor, VisitId, VisitTicket,
};
use crate::phone::{Completed, Enrollment, ManualLocation, Phone, PhoneConfig, Recorded};
use crate::place::{Coordinate, Datum, Fix, Provider};
use crate::rules::RuleId;

const DAY_MS: i64 = 86_400_000;

/// 2026-11-30 10:00 in Asia/Shanghai (02:00 UTC): inside visiting hours.
pub const MORNING_MS: i64 = 1_796_004_000_000;

/// An active case of `bank` (张三, ¥12,345.67 outstanding, no health flag) at `addresses`,
/// entrusted for `entrustment`.
pub fn case_at(bank: BankId, addresses: Vec<ApprovedAddress>, entrustment: Entrustment) -> Case {
    Case {
        id: CaseId::new(),
        bank_id: bank,
        case_ref: "SH-2026-000123".into(),
        card: MaskedCardNumber::mask("6222021234567890")
            .unwrap_or_else(|e| panic!("test card: {e}")),
        debtor: Debtor {
            name: "张三".into(),
            id_number: MaskedIdNumber::mask("310101198001011234")
                .unwrap_or_else(|e| panic!("test id: {e}")),
            phone: Some("13800138000".into()),
        },
        addresses,
        entrustment,
        status: CaseStatus::Active,
        outstanding: Fen(1_234_567),
        health_flag: None,
    }
}

/// One agent with an enrolled phone.
#[derive(Debug, Clone)]
pub struct Member {
    /// The agent.
    pub agent: AgentId,
    /// The phone.
    pub device: DeviceId,
    /// The phone's key.
    pub key: PublicKey,
}

impl Member {
    /// The member as an approval lists it.
    pub fn team_member(&self) -> TeamMember {
        TeamMember {
            agent_id: self.agent,
            device_id: self.device,
            public_key: self.key.clone(),
        }
    }
}

/// The server's side of a test: its key and the documents it signs.
pub struct World {
    /// The server's signing key.
    pub server: SoftwareSigner,
    /// The bank.
    pub bank: BankId,
    /// Its policy (defaults of DOMAIN.md).
    pub policy: Policy,
    /// A case with one approved address.
    pub case: Case,
    /// Server time of the scenario's start.
    pub start_ms: i64,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A bank, its default policy and one active case at People's Square, Shanghai.
    pub fn new() -> Self {
        let (server, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)
            .unwrap_or_else(|e| panic!("test server key: {e}"));
        Self::with_server(server, MORNING_MS)
    }

    /// The same world around a given server key (a real server's: `SoftwareSigner` is not
    /// `Clone`, so the caller loads it twice) whose scenario starts at `start_ms`.
    pub fn with_server(server: SoftwareSigner, start_ms: i64) -> Self {
        let bank = BankId::new();
        let address = Coordinate::new(312_317_000, 1_214_727_000, Datum::Gcj02)
            .unwrap_or_else(|e| panic!("test address: {e}"));
        let case = case_at(
            bank,
            vec![ApprovedAddress {
                id: AddressId::new(),
                text: "上海市黄浦区人民大道200号".into(),
                position: address,
            }],
            Entrustment {
                start_ms: start_ms - 30 * DAY_MS,
                end_ms: start_ms + 60 * DAY_MS,
                extended_until_ms: None,
            },
        );
        Self {
            server,
            bank,
            policy: Policy::defaults(bank),
            case,
            start_ms,
        }
    }

    /// The server's public key.
    pub fn server_key(&self) -> PublicKey {
        self.server.public_key()
    }

    /// Signs a document as the server.
    pub fn sign<T: SignedPurpose + Serialize + DeserializeOwned>(&self, doc: &T) -> Signed<T> {
        Signed::sign(doc, &self.server).unwrap_or_else(|e| panic!("signing a test document: {e}"))
    }

    /// The case's approved address.
    pub fn address(&self) -> Coordinate {
        self.case.addresses[0].position
    }

    /// A GNSS fix (WGS-84, as phones report) `north_m` metres north of the address.
    pub fn fix_near_address(&self, north_m: i32, accuracy_m: u32) -> Fix {
        let wgs = self.address().to_wgs84();
        // One metre of latitude is about 1e7 / 111_320 units of 1e-7 degree.
        let lat = wgs.lat_e7() + (i64::from(north_m) * 10_000_000 / 111_320) as i32;
        Fix {
            coordinate: Coordinate::new(lat, wgs.lon_e7(), Datum::Wgs84)
                .unwrap_or_else(|e| panic!("test fix: {e}")),
            accuracy_m,
            provider: Provider::Gnss,
            mock: false,
            taken_at_ms: self.start_ms,
        }
    }

    /// An approval of a visit today for `team`, without cash authorisation.
    pub fn approval(&self, team: &[&Member]) -> Approval {
        Approval {
            id: ApprovalId::new(),
            bank_id: self.bank,
            case_id: self.case.id,
            address_ids: self.case.addresses.iter().map(|a| a.id).collect(),
            team: team.iter().map(|m| m.team_member()).collect(),
            valid_from_ms: self.start_ms - DAY_MS,
            valid_until_ms: self.start_ms + 7 * DAY_MS,
            letter: AuthorisationLetter {
                number: "WT-2026-0042".into(),
                valid_until_ms: self.start_ms + 30 * DAY_MS,
            },
            cash: None,
            promise: PromiseAuthorisation::default(),
            appointment: None,
            templates: Vec::new(),
            health_review_done: false,
            policy_version: self.policy.version,
            approved_at_ms: self.start_ms - DAY_MS,
        }
    }

    /// An approval for `team` with the bank's cash authorisation (C01): up to `limit` in
    /// CNY, cash only, into a designated account.
    pub fn approval_with_cash(&self, team: &[&Member], limit: Fen) -> Approval {
        Approval {
            cash: Some(CashAuthorisation {
                limit,
                currency: "CNY".into(),
                designated_account: "6222 0210 0012 3456 789".into(),
                methods: vec![PaymentMethod::Cash],
            }),
            ..self.approval(team)
        }
    }

    /// A receipt-number range `first..=last` for `device`, signed by the server.
    pub fn serial_range(&self, device: DeviceId, first: u64, last: u64) -> Signed<SerialRange> {
        self.sign(&SerialRange {
            device_id: device,
            first: ReceiptSerial(first),
            last: ReceiptSerial(last),
            issued_at_ms: self.start_ms - DAY_MS,
        })
    }

    /// The server's ticket for a new visit under `approval`.
    pub fn ticket(&self, approval: &Approval) -> VisitTicket {
        VisitTicket {
            visit_id: VisitId::new(),
            approval_id: approval.id,
            nonce: crate::model::BundleId::new().0.simple().to_string(),
            issued_at_ms: self.start_ms - 3_600_000,
        }
    }

    /// A time anchor for `device` at server time `server_time_ms`.
    pub fn anchor(&self, device: DeviceId, server_time_ms: i64) -> Signed<TimeAnchor> {
        self.sign(&TimeAnchor {
            device_id: device,
            server_time_ms,
            nonce: crate::model::BundleId::new().0.simple().to_string(),
            shifted_by_ms: None,
        })
    }

    /// Opens a phone in `dir` (software key store in the same folder) and enrols it as a
    /// new agent.
    pub fn open_phone(
        &self,
        dir: &Path,
        clock: Arc<dyn Clock>,
        location: Arc<ManualLocation>,
    ) -> Result<(Phone, Member)> {
        let phone = Self::reopen_phone(dir, clock, location)?;
        let member = Member {
            agent: AgentId::new(),
            device: DeviceId::new(),
            key: phone.public_key(),
        };
        phone.enroll(&Enrollment {
            device_id: member.device,
            agent_id: member.agent,
            server_key: self.server_key(),
        })?;
        Ok((phone, member))
    }

    /// Opens an existing phone folder again (after a crash, say).
    pub fn reopen_phone(
        dir: &Path,
        clock: Arc<dyn Clock>,
        location: Arc<ManualLocation>,
    ) -> Result<Phone> {
        Self::reopen_phone_signing(dir, clock, location, SignatureAlgorithm::Ed25519)
    }

    /// The same phone, its device key of `alg`. With P-256 the key is kept outside the
    /// phone's store and handed in as a signer, as Android Keystore and the Secure Enclave
    /// do (they sign only with P-256); with Ed25519 the phone makes its own.
    pub fn reopen_phone_signing(
        dir: &Path,
        clock: Arc<dyn Clock>,
        location: Arc<ManualLocation>,
        alg: SignatureAlgorithm,
    ) -> Result<Phone> {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
        let keystore = SoftwareKeyStore::open_or_create(&dir.join("keystore.key"))?;
        let signer: Option<Arc<dyn Signer>> = match alg {
            SignatureAlgorithm::Ed25519 => None,
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let path = dir.join("hardware-key.p8");
                let io = |source| crate::Error::Io {
                    action: "keep the P-256 key",
                    path: path.clone(),
                    source,
                };
                let pkcs8 = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        let (_, pkcs8) = SoftwareSigner::generate(alg)?;
                        std::fs::write(&path, &pkcs8).map_err(io)?;
                        pkcs8.to_vec()
                    }
                };
                Some(Arc::new(SoftwareSigner::from_pkcs8(alg, &pkcs8)?))
            }
        };
        Phone::open(PhoneConfig {
            dir: dir.to_owned(),
            keystore: Arc::new(keystore),
            clock,
            location,
            signer,
        })
    }

    /// Gives `phone` the policy, a time anchor at `anchor_ms` and the visit.
    pub fn assign(
        &self,
        phone: &Phone,
        member: &Member,
        approval: &Approval,
        ticket: &VisitTicket,
        anchor_ms: i64,
    ) -> Result<VisitId> {
        phone.accept_policy(&self.sign(&self.policy))?;
        phone.accept_time_anchor(&self.anchor(member.device, anchor_ms))?;
        phone.accept_assignment(
            &self.sign(&self.case),
            &self.sign(approval),
            &self.sign(ticket),
        )
    }
}

/// The lead shows a challenge, the partner's phone reviews and answers it, the lead
/// completes: what the two shells do with their cameras and screens.
pub fn co_sign(lead: &Phone, partner: &Phone, shown: Vec<String>) -> Result<Completed> {
    let review = partner.review_challenge(&shown)?;
    let reply = partner.answer_challenge(&review)?;
    lead.complete(&reply)
}

impl World {
    /// Gives both phones of a team the visit `approval` names (one ticket), their clocks
    /// anchored at the scenario's start.
    pub fn assign_team(
        &self,
        [(lead, lead_member), (partner, partner_member)]: [(&Phone, &Member); 2],
        approval: &Approval,
    ) -> Result<VisitId> {
        let ticket = self.ticket(approval);
        let visit = self.assign(lead, lead_member, approval, &ticket, self.start_ms)?;
        self.assign(partner, partner_member, approval, &ticket, self.start_ms)?;
        Ok(visit)
    }
}

/// Two agents, each with their own phone in a folder of its own, assigned one visit; the
/// phones' clocks anchored at the scenario's start (10:00 Shanghai time), the lead standing
/// 20 m from the address and the partner 25 m.
pub struct Team {
    /// The server's side.
    pub world: World,
    /// Both phones' clock.
    pub clock: Arc<ManualClock>,
    /// The lead's phone.
    pub lead: Phone,
    /// The lead agent and phone.
    pub lead_member: Member,
    /// The lead phone's folder.
    pub lead_dir: PathBuf,
    /// Where the lead stands.
    pub lead_location: Arc<ManualLocation>,
    /// The partner's phone.
    pub partner: Phone,
    /// The partner agent and phone.
    pub partner_member: Member,
    /// Where the partner stands.
    pub partner_location: Arc<ManualLocation>,
    /// The visit both phones hold.
    pub visit: VisitId,
    /// Its approval.
    pub approval: Approval,
    _dir: tempfile::TempDir,
}

impl Default for Team {
    fn default() -> Self {
        Self::new()
    }
}

impl Team {
    /// A team approved without cash authorisation.
    pub fn new() -> Self {
        Self::approved(|world, members| world.approval(members))
    }

    /// A team whose approval `approve` writes.
    pub fn approved(approve: impl Fn(&World, &[&Member]) -> Approval) -> Self {
        Self::in_world(World::new(), approve)
    }

    /// A team in `world` (its policy changed, say) whose approval `approve` writes.
    pub fn in_world(world: World, approve: impl Fn(&World, &[&Member]) -> Approval) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("test folder: {e}"));
        let clock = Arc::new(ManualClock::new(world.start_ms, 5_000_000));
        let lead_location = Arc::new(ManualLocation::new(Some(world.fix_near_address(20, 10))));
        let partner_location = Arc::new(ManualLocation::new(Some(world.fix_near_address(25, 10))));
        let lead_dir = dir.path().join("lead");
        let open = |dir: &Path, location: &Arc<ManualLocation>| {
            world
                .open_phone(dir, clock.clone(), location.clone())
                .unwrap_or_else(|e| panic!("opening a test phone: {e}"))
        };
        let (lead, lead_member) = open(&lead_dir, &lead_location);
        let (partner, partner_member) = open(&dir.path().join("partner"), &partner_location);
        let approval = approve(&world, &[&lead_member, &partner_member]);
        let visit = world
            .assign_team(
                [(&lead, &lead_member), (&partner, &partner_member)],
                &approval,
            )
            .unwrap_or_else(|e| panic!("assigning the test visit: {e}"));
        Self {
            world,
            clock,
            lead,
            lead_member,
            lead_dir,
            lead_location,
            partner,
            partner_member,
            partner_location,
            visit,
            approval,
            _dir: dir,
        }
    }

    /// The lead's phone closed and opened again from its folder (after a crash, say).
    pub fn reopen_lead(self) -> Self {
        let Self { lead, .. } = self;
        drop(lead);
        let lead = World::reopen_phone(
            &self.lead_dir,
            self.clock.clone(),
            self.lead_location.clone(),
        )
        .unwrap_or_else(|e| panic!("reopening the lead's phone: {e}"));
        Self { lead, ..self }
    }

    /// The partner co-signs what the lead shows.
    pub fn co_sign(&self, shown: Vec<String>) -> Result<Completed> {
        co_sign(&self.lead, &self.partner, shown)
    }

    /// Checks the team in, with the lead's reason for standing outside the fence if any.
    pub fn check_in_with(&self, reason: Option<&str>) -> Result<Recorded> {
        match self.co_sign(
            self.lead
                .begin_check_in(self.visit, reason.map(str::to_owned))?,
        )? {
            Completed::CheckedIn(recorded) => Ok(recorded),
            other => panic!("expected a check-in, got {other:?}"),
        }
    }

    /// Checks the team in.
    pub fn check_in(&self) -> Result<Recorded> {
        self.check_in_with(None)
    }

    /// Checks the team out.
    pub fn check_out(&self) -> Result<Recorded> {
        match self.co_sign(self.lead.begin_check_out(self.visit)?)? {
            Completed::CheckedOut(recorded) => Ok(recorded),
            other => panic!("expected a check-out, got {other:?}"),
        }
    }
}

/// A payer's on-screen signature, as a PNG.
pub fn signature_png() -> Vec<u8> {
    let img = image::GrayImage::from_fn(160, 48, |x, y| {
        image::Luma([if (x * 3 + y * 5) % 11 == 0 { 0 } else { 255 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("encoding a test PNG: {e}"));
    out.into_inner()
}

/// `samples` of a tone at 16 kHz, as a phone's microphone gives them.
pub fn tone(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| ((i as f64 * 0.4).sin() * 6_000.0) as i16)
        .collect()
}

/// The rule that refused `result`, and the refusal's message; panics when it was not a
/// rule refusal.
pub fn refusal<T: std::fmt::Debug>(result: Result<T>) -> (RuleId, String) {
    match result {
        Err(e) => (
            e.blocking_rule()
                .unwrap_or_else(|| panic!("not a rule refusal: {e}")),
            e.to_string(),
        ),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}

/// The rule that refused `result`; panics when it was not a rule refusal.
pub fn blocked_by<T: std::fmt::Debug>(result: Result<T>) -> RuleId {
    refusal(result).0
}
