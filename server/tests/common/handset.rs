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
