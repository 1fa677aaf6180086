//! A real core phone for the console's tests: enrolled with a demo code over real HTTP,
//! on a manual clock and location the test moves.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tandem_core::clock::ManualClock;
use tandem_core::phone::{ManualLocation, Phone};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use tandem_core::sync::{HttpTransport, Timeouts};
use tandem_core::testing::World;

/// A GNSS fix `north_m` metres north of `address` (WGS-84, as GNSS reports it).
pub fn fix_near(address: &Coordinate, north_m: i32, at_ms: i64) -> Fix {
    let wgs = address.to_wgs84();
    let lat = wgs.lat_e7() + north_m * 10_000_000 / 111_320;
    Fix {
        coordinate: Coordinate::new(lat, wgs.lon_e7(), Datum::Wgs84).unwrap(),
        accuracy_m: 8,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: at_ms,
    }
}

/// One of the two phones: a real core phone enrolled with the demo's code.
pub struct Handset {
    /// The phone.
    pub phone: Phone,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// Its location.
    pub location: Arc<ManualLocation>,
    /// Its link to the server.
    pub transport: HttpTransport,
}

impl Handset {
    /// A phone in `dir` enrolled with `code` on the server at `base`.
    pub fn enrolled(dir: &Path, base: &str, now_ms: i64, code: &str) -> Self {
        let clock = Arc::new(ManualClock::new(now_ms, 10_000_000));
        let location = Arc::new(ManualLocation::default());
        let phone = World::reopen_phone(dir, clock.clone(), location.clone()).unwrap();
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(30),
            write: Duration::from_secs(30),
        };
        let transport = HttpTransport::new(base, timeouts);
        tandem_core::sync::enroll(&phone, &transport, code).unwrap();
        Self {
            phone,
            clock,
            location,
            transport,
        }
    }

    /// Pulls from the server.
    pub fn sync(&self) -> tandem_core::sync::SyncReport {
        tandem_core::sync::sync_now(&self.phone, &self.transport, &mut |_, _| {}).unwrap()
    }
}

/// The start every console test's visit shares: the manager approves a visit to
/// `case_ref` for the two phones (with cash up to `cash_fen`, and ten receipt numbers for
/// the lead, when given), both sync and stand near the address, the partner's phone
/// answers the lead's check-in, the lead records `audio_chunks` × 20 ms of tone and
/// confirms the debtor's identity. Blocking (core is synchronous): call it off the async
/// workers. Returns the visit and its case.
pub fn checked_in_visit(
    manager: &tandem_server::testing::console::Console,
    (lead, partner): (&Handset, &Handset),
    case_ref: &str,
    now_ms: i64,
    cash_fen: Option<i64>,
    audio_chunks: usize,
) -> (
    tandem_core::model::VisitId,
    tandem_server::testing::console::CaseRef,
) {
    use tandem_core::clock::Clock as _;
    use tandem_core::model::PersonMet;
    use tandem_core::phone::VisitAction;
    use tandem_core::testing::{co_sign, tone};

    let case = manager
        .cases()
        .into_iter()
        .find(|c| c.case_ref == case_ref)
        .unwrap_or_else(|| panic!("no case {case_ref}"));
    let team = [
        lead.phone.identity().unwrap().1,
        partner.phone.identity().unwrap().1,
    ];
    let visit: tandem_core::model::VisitId = manager
        .approve_visit(now_ms, &case.id, &team, cash_fen)
        .unwrap()
        .parse()
        .unwrap();
    if cash_fen.is_some() {
        manager.serial_range(lead.phone.identity().unwrap().0, 10);
    }
    for (h, north) in [(lead, 15), (partner, 25)] {
        h.sync();
        h.location
            .set(Some(fix_near(&case.address, north, h.clock.wall_ms())));
    }
    co_sign(
        &lead.phone,
        &partner.phone,
        lead.phone.begin_check_in(visit, None).unwrap(),
    )
    .unwrap();
    lead.phone.start_audio(visit, 16_000).unwrap();
    for _ in 0..audio_chunks {
        lead.phone.push_audio(visit, &tone(320)).unwrap();
    }
    lead.phone
        .record(
            visit,
            &VisitAction::IdentityConfirmed {
                person: PersonMet::Debtor,
            },
        )
        .unwrap();
    (visit, case)
}
