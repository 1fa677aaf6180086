//! The terminal's stand-ins for a phone's platform services: the data folder (held by one
//! command at a time, as one app holds its phone's), a key file instead of a hardware key
//! store, the clock (real, or with a wall clock set by hand), the position from flags, and
//! the server URL kept at enrolment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tandem_core::clock::{Clock, SystemClock};
use tandem_core::crypto::SoftwareKeyStore;
use tandem_core::phone::{ManualLocation, Phone, PhoneConfig};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use tandem_core::sync::{HttpTransport, Timeouts};

use super::args::Global;
use super::error::{FieldError, FieldResult};

/// The file in the phone folder that keeps the server URL.
const CONFIG_FILE: &str = "field.json";
/// The file locked while a command holds the phone folder.
const LOCK_FILE: &str = "field.lock";
/// Accuracy of a `--position` without one, metres.
const DEFAULT_ACCURACY_M: u32 = 10;

/// What `tandem field` keeps beside the phone's own data.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FieldConfig {
    /// The server's base URL, from enrolment.
    server: Option<String>,
}

/// An open phone, with the folder lock held until it is dropped.
pub struct Device {
    /// The phone.
    pub phone: Phone,
    /// Whether a position was given (a V05 refusal then needs no hint).
    pub has_position: bool,
    dir: PathBuf,
    server_flag: Option<String>,
    _lock: std::fs::File,
}

impl Device {
    /// Opens the phone in `--dir` with the clock and position the flags give.
    pub fn open(global: &Global) -> FieldResult<Device> {
        let dir = global.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| FieldError::File {
            action: "create the phone folder",
            path: dir.clone(),
            source,
        })?;
        let lock = lock_folder(&dir)?;
        let clock: Arc<dyn Clock> = match &global.wall_clock {
            Some(text) => Arc::new(WallClockSet::new(parse_wall_clock(text)?)),
            None => Arc::new(SystemClock::new()),
        };
        let fix = match &global.position {
            Some(text) => Some(parse_position(text, global.mock_location, clock.wall_ms())?),
            None => None,
        };
        let keystore = SoftwareKeyStore::open_or_create(&dir.join("keystore.key"))
            .map_err(tandem_core::Error::from)?;
        let phone = Phone::open(PhoneConfig {
            dir: dir.clone(),
            keystore: Arc::new(keystore),
            clock,
            location: Arc::new(ManualLocation::new(fix)),
            signer: None,
        })?;
        Ok(Device {
            phone,
            has_position: global.position.is_some(),
            dir,
            server_flag: global.server.clone(),
            _lock: lock,
        })
    }

    /// The server's URL: `--server`, else the one stored at enrolment.
    pub fn server(&self) -> FieldResult<String> {
        if let Some(url) = &self.server_flag {
            return Ok(url.clone());
        }
        read_config(&self.dir)?.server.ok_or_else(|| {
            FieldError::usage("no server known: give --server URL (it is stored at enrolment)")
        })
    }

    /// Keeps the server URL for later commands.
    pub fn remember_server(&self, url: &str) -> FieldResult<()> {
        let mut config = read_config(&self.dir)?;
        config.server = Some(url.trim_end_matches('/').to_owned());
        let path = self.dir.join(CONFIG_FILE);
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| FieldError::usage(format!("cannot encode {CONFIG_FILE}: {e}")))?;
        super::frames::write_atomic(&path, text.as_bytes())
    }

    /// A transport to the server.
    pub fn transport(&self) -> FieldResult<HttpTransport> {
        let url = self.server()?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FieldError::usage(format!(
                "the server URL must start with http:// or https://, not {url:?}"
            )));
        }
        Ok(HttpTransport::new(&url, Timeouts::default()))
    }

    /// The hint for an error: a V05 refusal without `--position` says why there is no fix.
    pub fn hint(&self, error: &FieldError) -> Option<&'static str> {
        let no_fix = error.rule() == Some(tandem_core::rules::RuleId::V05) && !self.has_position;
        no_fix
            .then_some("this terminal phone has no position fix unless --position LAT,LON is given")
    }
}

fn read_config(dir: &Path) -> FieldResult<FieldConfig> {
    let path = dir.join(CONFIG_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| FieldError::usage(format!("{}: not a field config: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FieldConfig::default()),
        Err(source) => Err(FieldError::File {
            action: "read",
            path,
            source,
        }),
    }
}

/// One command per phone folder at a time, as one app runs on a phone: a second process
/// would, for one, recover the first one's open audio segment as if it had crashed.
fn lock_folder(dir: &Path) -> FieldResult<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| FieldError::File {
            action: "open",
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(FieldError::Busy(format!(
            "the phone folder {} is in use by another tandem field command",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(FieldError::File {
            action: "lock",
            path,
            source,
        }),
    }
}

/// `LAT,LON[,ACCURACY_M]` in GCJ-02 degrees: a hand-entered fix (provider `manual`).
pub fn parse_position(text: &str, mock: bool, now_ms: i64) -> FieldResult<Fix> {
    let bad = || {
        FieldError::usage(format!(
            "--position {text:?}: expected LAT,LON[,ACCURACY_M] in degrees, e.g. 31.23805,121.48174,10"
        ))
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let (lat, lon, accuracy) = match parts.as_slice() {
        [lat, lon] => (*lat, *lon, None),
        [lat, lon, accuracy] => (*lat, *lon, Some(*accuracy)),
        _ => return Err(bad()),
    };
    let lat: f64 = lat.parse().map_err(|_| bad())?;
    let lon: f64 = lon.parse().map_err(|_| bad())?;
    let accuracy_m = match accuracy {
        Some(a) => a.parse().map_err(|_| bad())?,
        None => DEFAULT_ACCURACY_M,
    };
    let coordinate = Coordinate::from_degrees(lat, lon, Datum::Gcj02)
        .map_err(|e| FieldError::usage(format!("--position: {e}")))?;
    Ok(Fix {
        coordinate,
        accuracy_m,
        provider: Provider::Manual,
        mock,
        taken_at_ms: now_ms,
    })
}

fn parse_wall_clock(text: &str) -> FieldResult<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            FieldError::usage(format!(
                "--wall-clock {text:?}: not an RFC 3339 time ({e}), e.g. 2026-11-30T10:00:00+08:00"
            ))
        })
}

/// The machine's clock with its wall clock set by hand, as a user sets a phone's: the
/// wall time moves on from the value set, the monotonic count and boot id stay real.
#[derive(Debug)]
struct WallClockSet {
    real: SystemClock,
    offset_ms: i64,
}

impl WallClockSet {
    fn new(wall_ms: i64) -> Self {
        let real = SystemClock::new();
        let offset_ms = wall_ms.saturating_sub(real.wall_ms());
        Self { real, offset_ms }
    }
}

impl Clock for WallClockSet {
    fn wall_ms(&self) -> i64 {
        self.real.wall_ms().saturating_add(self.offset_ms)
    }

    fn monotonic_ms(&self) -> i64 {
        self.real.monotonic_ms()
    }

    fn boot_id(&self) -> String {
        self.real.boot_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_read_in_gcj02_degrees_with_an_optional_accuracy() {
        let fix = parse_position("31.23805,121.48174", false, 7).unwrap();
        assert_eq!(fix.coordinate.lat_e7(), 312_380_500);
        assert_eq!(fix.coordinate.lon_e7(), 1_214_817_400);
        assert_eq!(fix.coordinate.datum(), Datum::Gcj02);
        assert_eq!(
            (fix.accuracy_m, fix.provider, fix.mock),
            (10, Provider::Manual, false)
        );
        let fix = parse_position("-33.9,151.2,35", true, 7).unwrap();
        assert_eq!((fix.accuracy_m, fix.mock), (35, true));
        for bad in [
            "",
            "31.2",
            "31.2,x",
            "31.2,121.4,-1",
            "91,0",
            "1,2,3,4",
            "NaN,1",
        ] {
            assert!(parse_position(bad, false, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wall_clock_set_by_hand_moves_only_the_wall_time() {
        let set = parse_wall_clock("2026-11-30T10:00:00+08:00").unwrap();
        assert_eq!(set, 1_796_004_000_000);
        let clock = WallClockSet::new(set);
        let real = SystemClock::new();
        assert!((clock.wall_ms() - set).abs() < 5_000);
        assert!((clock.monotonic_ms() - real.monotonic_ms()).abs() < 5_000);
        assert_eq!(clock.boot_id(), real.boot_id());
        assert!(parse_wall_clock("yesterday").is_err());
    }
}
