//! Simulated phones: real core phones in their own folders, enrolled with the demo's codes,
//! syncing through core's HTTP client, standing where the test puts them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tandem_core::Error;
use tandem_core::clock::{Clock as _, ManualClock};
use tandem_core::crypto::SignatureAlgorithm;
use tandem_core::model::{
    AgentId, DeviceId, Fen, Payer, PaymentMethod, PersonMet, VisitId, VisitState,
};
use tandem_core::phone::{Completed, ManualLocation, Phone, ReceiptRequest, VisitAction};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use tandem_core::store::SealRecord;
use tandem_core::sync::{HttpTransport, SyncReport, Timeouts};
use tandem_core::testing::{World, co_sign};
pub use tandem_core::testing::{blocked_by, signature_png, tone};
use tandem_server::clock::ShiftedClock;

use crate::Server;
use crate::console::{CaseRef, Console};

/// The photos of the test fixtures (real cameras, EXIF quirks included).
pub const PHOTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/fixtures/photos");

/// Timeouts short enough for tests that cut connections, long enough for big chunks.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(30),
        write: Duration::from_secs(30),
    }
}

/// One simulated phone.
pub struct SimPhone {
    /// The core phone.
    pub phone: Phone,
    /// Its clock (tests move it).
    pub clock: Arc<ManualClock>,
    /// Where it stands.
    pub location: Arc<ManualLocation>,
    /// How it reaches the server (directly, or through a fault proxy).
    pub transport: HttpTransport,
    dir: PathBuf,
}

impl SimPhone {
    /// Opens the phone folder `dir` talking to `server_url`; its clock shows `now_ms`.
    pub fn open(dir: &Path, server_url: &str, now_ms: i64) -> SimPhone {
        SimPhone::open_signing(dir, server_url, now_ms, SignatureAlgorithm::Ed25519)
    }

    /// The same, with a device key of `alg` (P-256: as a hardware keystore signs).
    pub fn open_signing(
        dir: &Path,
        server_url: &str,
        now_ms: i64,
        alg: SignatureAlgorithm,
    ) -> SimPhone {
        let clock = Arc::new(ManualClock::new(now_ms, 10_000_000));
        let location = Arc::new(ManualLocation::default());
        let phone = World::reopen_phone_signing(dir, clock.clone(), location.clone(), alg)
            .expect("open phone");
        SimPhone {
            phone,
            clock,
            location,
            transport: HttpTransport::new(server_url, test_timeouts()),
            dir: dir.to_owned(),
        }
    }

    /// A new phone in `dir`, enrolled with the one-time `code`.
    pub fn enrolled(dir: &Path, server_url: &str, now_ms: i64, code: &str) -> SimPhone {
        SimPhone::enrolled_signing(dir, server_url, now_ms, code, SignatureAlgorithm::Ed25519)
    }

    /// A new phone with a device key of `alg`, enrolled with `code`.
    pub fn enrolled_signing(
        dir: &Path,
        server_url: &str,
        now_ms: i64,
        code: &str,
        alg: SignatureAlgorithm,
    ) -> SimPhone {
        let phone = SimPhone::open_signing(dir, server_url, now_ms, alg);
        tandem_core::sync::enroll(&phone.phone, &phone.transport, code).expect("enrol");
        phone
    }

    /// The phone's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Device and agent ids.
    pub fn ids(&self) -> (DeviceId, AgentId) {
        self.phone.identity().expect("enrolled")
    }

    /// What the phone's wall clock shows.
    pub fn clock_wall(&self) -> i64 {
        self.clock.wall_ms()
    }

    /// One sync round (pull, push, purge).
    pub fn sync(&self) -> Result<SyncReport, Error> {
        tandem_core::sync::sync_now(&self.phone, &self.transport, &mut |_, _| {})
    }

    /// Stands `north_m` metres north of `address`, GNSS fix of `accuracy_m`.
    pub fn stand_near(&self, address: &Coordinate, north_m: i32, accuracy_m: u32) {
        self.location.set(Some(fix_near(
            address,
            north_m,
            accuracy_m,
            self.clock.wall_ms(),
        )));
    }
}

/// A GNSS fix `north_m` metres north of `address` (in WGS-84, as GNSS reports it).
pub fn fix_near(address: &Coordinate, north_m: i32, accuracy_m: u32, at_ms: i64) -> Fix {
    let wgs = address.to_wgs84();
    let lat = wgs.lat_e7() + i32::try_from(i64::from(north_m) * 10_000_000 / 111_320).unwrap_or(0);
    Fix {
        coordinate: Coordinate::new(lat, wgs.lon_e7(), Datum::Wgs84).expect("fix"),
        accuracy_m,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: at_ms,
    }
}

/// Two agents' phones assigned one approved visit, standing at the address.
pub struct Team {
    /// The lead's phone (shows challenges, holds the evidence, uploads).
    pub lead: SimPhone,
    /// The partner's phone (answers).
    pub partner: SimPhone,
    /// The visit.
    pub visit: VisitId,
    /// The visit's server-side id (same value, as text).
    pub visit_text: String,
    /// The case's first approved address.
    pub address: Coordinate,
    /// The server's clock, moved on with the phones'.
    pub server_clock: Arc<ShiftedClock>,
}

/// How a team is put together.
pub struct TeamSpec {
    /// The demo agents (indexes into the demo's codes) of the lead and the partner.
    pub agents: (usize, usize),
    /// Which demo case (index into the bank's case list).
    pub case: usize,
    /// Cash authorisation, fen.
    pub cash_limit_fen: Option<i64>,
    /// The device keys of the lead's and the partner's phones.
    pub keys: (SignatureAlgorithm, SignatureAlgorithm),
}

impl Default for TeamSpec {
    fn default() -> Self {
        Self {
            agents: (0, 1),
            case: 0,
            cash_limit_fen: Some(500_000),
            keys: (SignatureAlgorithm::Ed25519, SignatureAlgorithm::Ed25519),
        }
    }
}

impl Team {
    /// Enrols two phones in `root`, approves a visit for both, syncs both and places them
    /// at the address.
    pub fn assemble(server: &Server, manager: &Console, root: &Path, spec: &TeamSpec) -> Team {
        let now = server.now_ms();
        let lead = SimPhone::enrolled_signing(
            &root.join("lead"),
            &server.base,
            now,
            server.code(spec.agents.0),
            spec.keys.0,
        );
        let partner = SimPhone::enrolled_signing(
            &root.join("partner"),
            &server.base,
            now,
            server.code(spec.agents.1),
            spec.keys.1,
        );
        Team::assign(server, manager, lead, partner, spec)
    }

    /// Approves a visit for two enrolled phones, syncs both and places them at the address.
    pub fn assign(
        server: &Server,
        manager: &Console,
        lead: SimPhone,
        partner: SimPhone,
        spec: &TeamSpec,
    ) -> Team {
        let case: CaseRef = manager.cases().swap_remove(spec.case);
        let team = [lead.ids().1, partner.ids().1];
        let visit_text = manager
            .approve_visit(server.now_ms(), &case.id, &team, spec.cash_limit_fen)
            .unwrap_or_else(|(s, b)| panic!("approval refused {s}: {b}"));
        manager.serial_range(lead.ids().0, 20);
        for phone in [&lead, &partner] {
            phone.sync().expect("first sync");
            phone.stand_near(&case.address, 15, 8);
        }
        partner.stand_near(&case.address, 25, 8);
        Team {
            visit: visit_text.parse().expect("visit id"),
            visit_text,
            address: case.address,
            lead,
            partner,
            server_clock: server.clock.clone(),
        }
    }

    /// The lead shows `frames`, the partner reviews and answers, the lead completes.
    pub fn co_sign(&self, frames: Result<Vec<String>, Error>) -> Result<Completed, Error> {
        co_sign(&self.lead.phone, &self.partner.phone, frames?)
    }

    /// Co-signed check-in.
    pub fn check_in(&self) -> Result<Completed, Error> {
        self.co_sign(self.lead.phone.begin_check_in(self.visit, None))
    }

    /// Co-signed check-out.
    pub fn check_out(&self) -> Result<Completed, Error> {
        self.co_sign(self.lead.phone.begin_check_out(self.visit))
    }

    /// Co-signed cash receipt of `amount` fen from the debtor.
    pub fn receipt(&self, amount: i64) -> Result<Completed, Error> {
        self.co_sign(self.lead.phone.begin_receipt(self.visit, &cash(amount)))
    }

    /// Co-signed seal.
    pub fn seal(&self) -> Result<SealRecord, Error> {
        match self.co_sign(self.lead.phone.begin_seal(self.visit))? {
            Completed::Sealed(record) => Ok(record),
            other => panic!("expected a seal, got {other:?}"),
        }
    }

    /// Time passes: both phones' clocks and the server's move forward by `ms`.
    pub fn wait(&self, ms: i64) {
        self.lead.clock.advance_ms(ms);
        self.partner.clock.advance_ms(ms);
        self.server_clock.advance_ms(ms);
    }

    /// A whole visit on the phones: check-in, `audio_s` seconds of audio, `photos` fixture
    /// photos, a note, a receipt when `cash_fen` is given, check-out and seal.
    pub fn record_visit(&self, audio_s: u32, photos: &[&str], cash_fen: Option<i64>) -> SealRecord {
        self.check_in().expect("check-in");
        let lead = &self.lead.phone;
        lead.start_audio(self.visit, 16_000).expect("start audio");
        // 20 ms chunks, as the platform recorder delivers them.
        for _ in 0..audio_s * 50 {
            lead.push_audio(self.visit, &tone(320))
                .expect("audio chunk");
        }
        lead.record(
            self.visit,
            &VisitAction::IdentityConfirmed {
                person: PersonMet::Debtor,
            },
        )
        .expect("identity");
        for name in photos {
            let bytes = std::fs::read(Path::new(PHOTOS).join(name)).expect("fixture photo");
            lead.capture_photo(self.visit, &bytes, true).expect("photo");
        }
        lead.record(
            self.visit,
            &VisitAction::Note {
                text: "债务人在家，同意下周还款。".into(),
            },
        )
        .expect("note");
        if let Some(amount) = cash_fen {
            self.receipt(amount).expect("receipt");
        }
        self.wait(i64::from(audio_s) * 1_000);
        lead.stop_audio(self.visit).expect("stop audio");
        self.check_out().expect("check-out");
        self.seal().expect("seal")
    }

    /// The digests of every blob the sealed visit's manifest lists.
    pub fn sealed_blobs(&self) -> Vec<tandem_core::crypto::Digest> {
        self.lead
            .phone
            .sealed_bundle(self.visit)
            .expect("sealed bundle")
            .manifest
            .blobs
            .iter()
            .map(|b| b.sha256)
            .collect()
    }

    /// Whether the lead's phone still holds every one of `digests`, or none of them.
    pub fn lead_holds(&self, digests: &[tandem_core::crypto::Digest]) -> (bool, bool) {
        let held: Vec<bool> = digests
            .iter()
            .map(|d| self.lead.phone.blobs().contains(d).expect("blob store"))
            .collect();
        (held.iter().all(|h| *h), held.iter().all(|h| !*h))
    }

    /// The visit's state on the lead's phone.
    pub fn state(&self) -> VisitState {
        self.lead
            .phone
            .visit(self.visit)
            .expect("visit")
            .visit
            .state
    }
}

/// A cash payment by the debtor, signed on screen.
pub fn cash(amount: i64) -> ReceiptRequest {
    ReceiptRequest {
        payer: Payer {
            role: PersonMet::Debtor,
            name: "林晓虹".into(),
        },
        amount: Fen(amount),
        method: PaymentMethod::Cash,
        payer_signature_png: signature_png(),
    }
}
