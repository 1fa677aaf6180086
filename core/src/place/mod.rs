//! Positions: integer coordinates with their datum, device fixes, and the measurements
//! the V05 rule needs (geofence, partner distance).
//!
//! Every coordinate carries its datum because addresses geocoded by Chinese map services
//! (GCJ-02, BD-09) sit hundreds of metres from the WGS-84 a phone's GNSS reports: more than
//! a geofence. Anything not in WGS-84 is converted before a distance is taken. This module
//! measures; the rules engine decides what a measurement means (block, flag, warn).

mod check;
mod datum;

use serde::{Deserialize, Serialize};

pub use check::{
    DEFAULT_GEOFENCE_RADIUS_M, DEFAULT_MAX_ACCURACY_M, DEFAULT_PARTNER_MAX_M, GeofenceOutcome,
    MockSide, PartnerOutcome, check_geofence, check_partner_distance, distance_m, nearest_address,
};

/// Units of 1e-7 degree in one degree.
const E7_PER_DEGREE: f64 = 1e7;
/// Largest latitude magnitude, in 1e-7 degrees.
const MAX_LAT_E7: i32 = 900_000_000;
/// Largest longitude magnitude, in 1e-7 degrees.
const MAX_LON_E7: i32 = 1_800_000_000;

/// What can be wrong with a position given to this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// Latitude outside ±90°.
    #[error("latitude {lat_e7} (1e-7 degrees) is outside ±90°")]
    LatitudeOutOfRange {
        /// The refused value.
        lat_e7: i32,
    },
    /// Longitude outside ±180°.
    #[error("longitude {lon_e7} (1e-7 degrees) is outside ±180°")]
    LongitudeOutOfRange {
        /// The refused value.
        lon_e7: i32,
    },
    /// A degree value that is NaN or infinite.
    #[error("coordinate in degrees is not a finite number")]
    NotFinite,
}

/// The geodetic datum a coordinate is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    /// WGS-84, what GNSS reports and what distances are computed in.
    Wgs84,
    /// GCJ-02, China's obfuscated datum used by AMap and Tencent maps.
    Gcj02,
    /// BD-09, Baidu's shift of GCJ-02.
    Bd09,
}

impl Datum {
    /// Every datum, in the order of their wire codes.
    pub const ALL: [Datum; 3] = [Datum::Wgs84, Datum::Gcj02, Datum::Bd09];

    /// The datum's name as it is serialised and stored: `wgs84`, `gcj02` or `bd09`.
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::Wgs84 => "wgs84",
            Datum::Gcj02 => "gcj02",
            Datum::Bd09 => "bd09",
        }
    }
}

impl std::fmt::Display for Datum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datum name that is not `wgs84`, `gcj02` or `bd09`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown datum (expected wgs84, gcj02 or bd09)")]
pub struct UnknownDatum;

impl std::str::FromStr for Datum {
    type Err = UnknownDatum;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Datum::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or(UnknownDatum)
    }
}

/// A validated position in 1e-7 degrees, tagged with its datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CoordinateFields")]
pub struct Coordinate {
    lat_e7: i32,
    lon_e7: i32,
    datum: Datum,
}

/// The wire shape of a coordinate, checked before it becomes a [`Coordinate`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoordinateFields {
    lat_e7: i32,
    lon_e7: i32,
    datum: Datum,
}

impl TryFrom<CoordinateFields> for Coordinate {
    type Error = PlaceError;

    fn try_from(f: CoordinateFields) -> Result<Self, Self::Error> {
        Coordinate::new(f.lat_e7, f.lon_e7, f.datum)
    }
}

impl Coordinate {
    /// A coordinate from 1e-7-degree integers; refuses latitudes beyond ±90° and
    /// longitudes beyond ±180°.
    pub fn new(lat_e7: i32, lon_e7: i32, datum: Datum) -> Result<Self, PlaceError> {
        if !(-MAX_LAT_E7..=MAX_LAT_E7).contains(&lat_e7) {
            return Err(PlaceError::LatitudeOutOfRange { lat_e7 });
        }
        if !(-MAX_LON_E7..=MAX_LON_E7).contains(&lon_e7) {
            return Err(PlaceError::LongitudeOutOfRange { lon_e7 });
        }
        Ok(Self {
            lat_e7,
            lon_e7,
            datum,
        })
    }

    /// A coordinate from degrees (as a platform location API gives them), rounded to the
    /// nearest 1e-7 degree.
    pub fn from_degrees(lat: f64, lon: f64, datum: Datum) -> Result<Self, PlaceError> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(PlaceError::NotFinite);
        }
        // Saturating casts: anything huge lands on i32::MAX/MIN and is refused by `new`.
        Self::new(degrees_to_e7(lat), degrees_to_e7(lon), datum)
    }

    /// Latitude in 1e-7 degrees.
    pub fn lat_e7(&self) -> i32 {
        self.lat_e7
    }

    /// Longitude in 1e-7 degrees.
    pub fn lon_e7(&self) -> i32 {
        self.lon_e7
    }

    /// The datum the numbers are expressed in.
    pub fn datum(&self) -> Datum {
        self.datum
    }

    /// Latitude in degrees, for computation and display only (never stored or signed).
    pub fn lat_degrees(&self) -> f64 {
        f64::from(self.lat_e7) / E7_PER_DEGREE
    }

    /// Longitude in degrees, for computation and display only (never stored or signed).
    pub fn lon_degrees(&self) -> f64 {
        f64::from(self.lon_e7) / E7_PER_DEGREE
    }

    /// The same place in WGS-84, rounded to 1e-7 degrees.
    pub fn to_wgs84(&self) -> Coordinate {
        let (lat, lon) = (self.lat_degrees(), self.lon_degrees());
        let (lat, lon) = match self.datum {
            Datum::Wgs84 => return *self,
            Datum::Gcj02 => datum::gcj02_to_wgs84(lat, lon),
            Datum::Bd09 => {
                let (g_lat, g_lon) = datum::bd09_to_gcj02(lat, lon);
                datum::gcj02_to_wgs84(g_lat, g_lon)
            }
        };
        Self::rounded(lat, lon, Datum::Wgs84)
    }

    /// The same place in `target`, rounded to 1e-7 degrees (to compare with what a Chinese
    /// map service shows, or to build test data).
    pub fn to_datum(&self, target: Datum) -> Coordinate {
        if self.datum == target {
            return *self;
        }
        let wgs = self.to_wgs84();
        let (lat, lon) = (wgs.lat_degrees(), wgs.lon_degrees());
        let (lat, lon) = match target {
            Datum::Wgs84 => return wgs,
            Datum::Gcj02 => datum::wgs84_to_gcj02(lat, lon),
            Datum::Bd09 => {
                let (g_lat, g_lon) = datum::wgs84_to_gcj02(lat, lon);
                datum::gcj02_to_bd09(g_lat, g_lon)
            }
        };
        Self::rounded(lat, lon, target)
    }

    /// Rounds a converted position back onto the integer grid. The transforms move only
    /// points inside the China box, by well under a degree, so the clamp never bites; it is
    /// there so that no input can make a conversion fail or panic.
    fn rounded(lat: f64, lon: f64, datum: Datum) -> Coordinate {
        Coordinate {
            lat_e7: degrees_to_e7(lat).clamp(-MAX_LAT_E7, MAX_LAT_E7),
            lon_e7: degrees_to_e7(lon).clamp(-MAX_LON_E7, MAX_LON_E7),
            datum,
        }
    }
}

/// Degrees to the nearest 1e-7 degree, saturating at the ends of `i32`.
fn degrees_to_e7(deg: f64) -> i32 {
    // `as` saturates for out-of-range floats, which `Coordinate::new` then refuses.
    (deg * E7_PER_DEGREE).round() as i32
}

/// Where a position came from, as the platform reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Satellite positioning (GPS, BeiDou, GLONASS, Galileo).
    Gnss,
    /// Cell towers or Wi-Fi.
    Network,
    /// The platform's fused provider.
    Fused,
    /// Entered by hand (never good enough for check-in on its own; the rules decide).
    Manual,
    /// Anything the platform names that is none of the above.
    Other,
}

/// One position report from a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// Where the phone says it is.
    pub coordinate: Coordinate,
    /// Horizontal accuracy radius in metres, as reported by the platform.
    pub accuracy_m: u32,
    /// The source of the position.
    pub provider: Provider,
    /// Whether the platform flagged the position as coming from a mock-location provider.
    pub mock: bool,
    /// When the position was taken, UTC milliseconds.
    pub taken_at_ms: i64,
}
