//! Geodesic distances and the V05 measurements: geofence and partner distance.

use geo::{Distance, Geodesic, Point};
use serde::{Deserialize, Serialize};

use super::{Coordinate, Fix};

/// V05 default geofence radius around an approved address, in metres (a policy value).
pub const DEFAULT_GEOFENCE_RADIUS_M: u32 = 200;
/// V05 default worst accuracy a check-in fix may report, in metres (a policy value).
pub const DEFAULT_MAX_ACCURACY_M: u32 = 100;
/// V05 default greatest distance between the two agents' phones, in metres (a policy value).
pub const DEFAULT_PARTNER_MAX_M: u32 = 50;

/// Geodesic distance (WGS-84 ellipsoid, Karney's method) in whole metres, after converting
/// both points to WGS-84.
pub fn distance_m(a: &Coordinate, b: &Coordinate) -> u32 {
    let (a, b) = (a.to_wgs84(), b.to_wgs84());
    let metres = Geodesic.distance(
        Point::new(a.lon_degrees(), a.lat_degrees()),
        Point::new(b.lon_degrees(), b.lat_degrees()),
    );
    if metres.is_finite() {
        // At most half the Earth's circumference (~20,004 km): fits in u32.
        metres.round() as u32
    } else {
        // Fail towards "far away" so a numerical accident never lands inside a fence.
        u32::MAX
    }
}

/// What a check-in fix measures against an approved address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GeofenceOutcome {
    /// Within the fence widened by the fix's accuracy.
    Inside {
        /// Distance from the address, metres.
        distance_m: u32,
    },
    /// Beyond the fence widened by the fix's accuracy.
    Outside {
        /// Distance from the address, metres.
        distance_m: u32,
        /// Radius plus the fix's accuracy, metres.
        allowed_m: u32,
    },
    /// The fix is too vague to place the agent at all.
    AccuracyTooPoor {
        /// The fix's reported accuracy, metres.
        accuracy_m: u32,
        /// The worst accuracy accepted, metres.
        max_m: u32,
    },
    /// The platform flagged the fix as coming from a mock-location provider.
    Mock,
}

/// Measures `fix` against the geofence of `address`: the fence is `radius_m` widened by the
/// fix's own accuracy, and a fix less accurate than `max_accuracy_m` does not count. A mock
/// fix is reported before anything else because no measurement from it means anything.
pub fn check_geofence(
    fix: &Fix,
    address: &Coordinate,
    radius_m: u32,
    max_accuracy_m: u32,
) -> GeofenceOutcome {
    if fix.mock {
        return GeofenceOutcome::Mock;
    }
    if fix.accuracy_m > max_accuracy_m {
        return GeofenceOutcome::AccuracyTooPoor {
            accuracy_m: fix.accuracy_m,
            max_m: max_accuracy_m,
        };
    }
    let distance_m = distance_m(&fix.coordinate, address);
    let allowed_m = radius_m.saturating_add(fix.accuracy_m);
    if distance_m <= allowed_m {
        GeofenceOutcome::Inside { distance_m }
    } else {
        GeofenceOutcome::Outside {
            distance_m,
            allowed_m,
        }
    }
}

/// Which of two fixes was flagged as mock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MockSide {
    /// The first fix given.
    First,
    /// The second fix given.
    Second,
    /// Both fixes.
    Both,
}

/// What the two agents' fixes measure against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PartnerOutcome {
    /// The phones are within the allowed distance of each other.
    Within {
        /// Distance between the fixes, metres.
        distance_m: u32,
    },
    /// The phones are further apart than allowed.
    TooFar {
        /// Distance between the fixes, metres.
        distance_m: u32,
        /// The greatest distance allowed, metres.
        max_m: u32,
    },
    /// At least one fix came from a mock-location provider.
    Mock {
        /// Which fix (or both).
        side: MockSide,
    },
}

/// Measures whether two agents' fixes are within `max_m` of each other (V05).
pub fn check_partner_distance(a: &Fix, b: &Fix, max_m: u32) -> PartnerOutcome {
    let side = match (a.mock, b.mock) {
        (false, false) => None,
        (true, false) => Some(MockSide::First),
        (false, true) => Some(MockSide::Second),
        (true, true) => Some(MockSide::Both),
    };
    if let Some(side) = side {
        return PartnerOutcome::Mock { side };
    }
    let distance_m = distance_m(&a.coordinate, &b.coordinate);
    if distance_m <= max_m {
        PartnerOutcome::Within { distance_m }
    } else {
        PartnerOutcome::TooFar { distance_m, max_m }
    }
}

/// The approved address nearest to `fix`, as (index into `addresses`, distance in metres);
/// `None` when there are no addresses. Ties go to the earlier address.
pub fn nearest_address(fix: &Fix, addresses: &[Coordinate]) -> Option<(usize, u32)> {
    let here = fix.coordinate.to_wgs84();
    addresses
        .iter()
        .map(|address| distance_m(&here, address))
        .enumerate()
        .min_by_key(|&(_, distance)| distance)
}
