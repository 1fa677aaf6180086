//! Positions, datums and the V05 measurements, checked against published values.

use std::f64::consts::PI;

use geo::{Destination, Geodesic, Point};
use proptest::prelude::*;
use tandem_core::place::{
    Coordinate, DEFAULT_GEOFENCE_RADIUS_M, DEFAULT_MAX_ACCURACY_M, DEFAULT_PARTNER_MAX_M, Datum,
    Fix, GeofenceOutcome, MockSide, PartnerOutcome, PlaceError, Provider, check_geofence,
    check_partner_distance, distance_m, nearest_address,
};

// ---- the published forward formulas, written out again here so the library is checked
// against an independent transcription (wandergis/coordtransform, googollee/eviltransform).

const A: f64 = 6378245.0;
const EE: f64 = 0.006_693_421_622_965_943;
const X_PI: f64 = PI * 3000.0 / 180.0;

fn published_wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y) = (lon - 105.0, lat - 35.0);
    let mut d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    d_lat += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    d_lat += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    d_lat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let mut d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    d_lon += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    d_lon += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    d_lon += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    let rad = lat / 180.0 * PI;
    let magic = 1.0 - EE * rad.sin() * rad.sin();
    let sqrt_magic = magic.sqrt();
    d_lat = (d_lat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    d_lon = (d_lon * 180.0) / (A / sqrt_magic * rad.cos() * PI);
    (lat + d_lat, lon + d_lon)
}

fn published_gcj02_to_bd09(lat: f64, lon: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

fn e7(deg: f64) -> i32 {
    (deg * 1e7).round() as i32
}

fn wgs(lat: f64, lon: f64) -> Coordinate {
    Coordinate::from_degrees(lat, lon, Datum::Wgs84).unwrap()
}

/// A WGS-84 point `metres` from `from`, heading `bearing` degrees, on the ellipsoid.
fn moved(from: &Coordinate, bearing: f64, metres: f64) -> Coordinate {
    let p = Geodesic.destination(
        Point::new(from.lon_degrees(), from.lat_degrees()),
        bearing,
        metres,
    );
    wgs(p.y(), p.x())
}

fn fix_at(coordinate: Coordinate, accuracy_m: u32) -> Fix {
    Fix {
        coordinate,
        accuracy_m,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: 1_796_000_000_000,
    }
}

/// Tian'anmen Square, Beijing, in WGS-84.
fn tiananmen() -> Coordinate {
    Coordinate::new(399_087_202, 1_163_974_799, Datum::Wgs84).unwrap()
}

/// The Oriental Pearl Tower, Shanghai, in WGS-84.
fn oriental_pearl_tower() -> Coordinate {
    Coordinate::new(312_396_700, 1_214_997_500, Datum::Wgs84).unwrap()
}

// ---- datums

#[test]
fn gcj02_forward_matches_the_published_test_vectors() {
    // wgs lat, wgs lon, gcj lat, gcj lon: googollee/eviltransform's test table.
    let vectors = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215), // Shanghai
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363), // Shenzhen
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657), // Beijing
    ];
    for (w_lat, w_lon, g_lat, g_lon) in vectors {
        let gcj = wgs(w_lat, w_lon).to_datum(Datum::Gcj02);
        assert_eq!(
            (gcj.lat_e7(), gcj.lon_e7(), gcj.datum()),
            (e7(g_lat), e7(g_lon), Datum::Gcj02)
        );
    }
}

#[test]
fn landmarks_convert_to_gcj02_and_bd09_as_the_published_formulas_say() {
    for landmark in [tiananmen(), oriental_pearl_tower()] {
        let (g_lat, g_lon) =
            published_wgs84_to_gcj02(landmark.lat_degrees(), landmark.lon_degrees());
        let gcj = landmark.to_datum(Datum::Gcj02);
        assert_eq!((gcj.lat_e7(), gcj.lon_e7()), (e7(g_lat), e7(g_lon)));

        // BD-09 chains from the unrounded GCJ-02 value: rounding happens once, at the end.
        let (b_lat, b_lon) = published_gcj02_to_bd09(g_lat, g_lon);
        let bd = landmark.to_datum(Datum::Bd09);
        assert_eq!(
            (bd.lat_e7(), bd.lon_e7(), bd.datum()),
            (e7(b_lat), e7(b_lon), Datum::Bd09)
        );
    }
}

#[test]
fn gcj02_and_bd09_landmarks_come_back_to_the_same_wgs84_point() {
    for landmark in [tiananmen(), oriental_pearl_tower()] {
        for datum in [Datum::Gcj02, Datum::Bd09] {
            let back = landmark.to_datum(datum).to_wgs84();
            assert_eq!(back.datum(), Datum::Wgs84);
            // Within 1e-6 degree (10 units) and under half a metre.
            assert!(
                (back.lat_e7() - landmark.lat_e7()).abs() <= 10,
                "{datum:?}: {back:?}"
            );
            assert!(
                (back.lon_e7() - landmark.lon_e7()).abs() <= 10,
                "{datum:?}: {back:?}"
            );
            assert_eq!(distance_m(&back, &landmark), 0);
        }
    }
}

#[test]
fn gcj02_offset_in_shanghai_is_hundreds_of_metres() {
    let tower = oriental_pearl_tower();
    let gcj = tower.to_datum(Datum::Gcj02);
    // The same numbers read as WGS-84: the error a datum-blind system would make.
    let misread = Coordinate::new(gcj.lat_e7(), gcj.lon_e7(), Datum::Wgs84).unwrap();
    let offset = distance_m(&tower, &misread);
    assert!((300..=700).contains(&offset), "offset {offset} m");
}

#[test]
fn gcj02_and_bd09_equal_wgs84_outside_china() {
    let london = wgs(51.5007292, -0.1246254);
    let sydney = wgs(-33.8567844, 151.2152967);
    let new_york = wgs(40.6892494, -74.0445004);
    for place in [london, sydney, new_york] {
        for datum in [Datum::Gcj02, Datum::Bd09] {
            let other = place.to_datum(datum);
            assert_eq!(
                (other.lat_e7(), other.lon_e7()),
                (place.lat_e7(), place.lon_e7())
            );
            assert_eq!(distance_m(&other, &place), 0);
        }
    }
}

#[test]
fn gcj02_address_and_wgs84_fix_on_the_same_spot_are_zero_metres_apart() {
    let door = tiananmen();
    let address_from_amap = door.to_datum(Datum::Gcj02);
    let address_from_baidu = door.to_datum(Datum::Bd09);
    assert_eq!(distance_m(&address_from_amap, &door), 0);
    assert_eq!(distance_m(&address_from_baidu, &door), 0);

    let fix = fix_at(door, 10);
    assert_eq!(
        check_geofence(&fix, &address_from_amap, 200, 100),
        GeofenceOutcome::Inside { distance_m: 0 }
    );
    // Ignoring the datum would have put the agent hundreds of metres away.
    let misread = Coordinate::new(
        address_from_amap.lat_e7(),
        address_from_amap.lon_e7(),
        Datum::Wgs84,
    )
    .unwrap();
    assert!(distance_m(&misread, &door) > 300);
}

// ---- coordinates

#[test]
fn out_of_range_coordinates_are_refused() {
    assert_eq!(
        Coordinate::new(900_000_001, 0, Datum::Wgs84),
        Err(PlaceError::LatitudeOutOfRange {
            lat_e7: 900_000_001
        })
    );
    assert_eq!(
        Coordinate::new(-900_000_001, 0, Datum::Gcj02),
        Err(PlaceError::LatitudeOutOfRange {
            lat_e7: -900_000_001
        })
    );
    assert_eq!(
        Coordinate::new(0, 1_800_000_001, Datum::Wgs84),
        Err(PlaceError::LongitudeOutOfRange {
            lon_e7: 1_800_000_001
        })
    );
    assert_eq!(
        Coordinate::new(0, i32::MIN, Datum::Bd09),
        Err(PlaceError::LongitudeOutOfRange { lon_e7: i32::MIN })
    );
    assert_eq!(
        Coordinate::from_degrees(f64::NAN, 0.0, Datum::Wgs84),
        Err(PlaceError::NotFinite)
    );
    assert_eq!(
        Coordinate::from_degrees(1e300, 0.0, Datum::Wgs84),
        Err(PlaceError::LatitudeOutOfRange { lat_e7: i32::MAX })
    );
    assert!(Coordinate::new(900_000_000, -1_800_000_000, Datum::Wgs84).is_ok());
}

#[test]
fn out_of_range_coordinates_are_refused_when_parsed() {
    let bad = r#"{"lat_e7":910000000,"lon_e7":0,"datum":"wgs84"}"#;
    let err = serde_json::from_str::<Coordinate>(bad).unwrap_err();
    assert!(err.to_string().contains("outside ±90°"), "{err}");

    let unknown_field = r#"{"lat_e7":0,"lon_e7":0,"datum":"wgs84","alt":3}"#;
    assert!(serde_json::from_str::<Coordinate>(unknown_field).is_err());
}

#[test]
fn fix_serializes_in_snake_case_with_integers_only() {
    let fix = Fix {
        coordinate: Coordinate::new(312_396_700, 1_214_997_500, Datum::Gcj02).unwrap(),
        accuracy_m: 12,
        provider: Provider::Fused,
        mock: false,
        taken_at_ms: 1_796_000_000_000,
    };
    let json = serde_json::to_string(&fix).unwrap();
    assert_eq!(
        json,
        r#"{"coordinate":{"lat_e7":312396700,"lon_e7":1214997500,"datum":"gcj02"},"accuracy_m":12,"provider":"fused","mock":false,"taken_at_ms":1796000000000}"#
    );
    assert_eq!(serde_json::from_str::<Fix>(&json).unwrap(), fix);
}

// ---- geodesic distances

#[test]
fn one_degree_of_latitude_lengthens_towards_the_pole() {
    // One degree of meridian arc on WGS-84, from integrating the meridian radius of
    // curvature a(1-e²)/(1-e²sin²φ)^1.5 numerically: 110,574.30 / 111,131.78 / 111,693.86 m.
    assert_eq!(distance_m(&wgs(-0.5, 30.0), &wgs(0.5, 30.0)), 110_574);
    assert_eq!(distance_m(&wgs(44.5, 30.0), &wgs(45.5, 30.0)), 111_132);
    assert_eq!(distance_m(&wgs(89.0, 30.0), &wgs(90.0, 30.0)), 111_694);
}

#[test]
fn city_pairs_match_published_geodesic_distances() {
    // GeographicLib's GeodSolve0 test: JFK to Paris CDG, 5,853,226 m.
    let jfk = wgs(40.6, -73.8);
    let cdg = wgs(49.01666667, 2.55);
    assert_eq!(distance_m(&jfk, &cdg), 5_853_226);
    // geo's documented example: Sofia to Plovdiv, 132,675.50 m.
    let sofia = wgs(42.698334, 23.319941);
    let plovdiv = wgs(42.136097, 24.742168);
    assert_eq!(distance_m(&sofia, &plovdiv), 132_676);
}

// ---- V05 geofence

#[test]
fn fix_150_m_away_with_20_m_accuracy_is_inside_a_200_m_fence() {
    let address = oriental_pearl_tower();
    let fix = fix_at(moved(&address, 30.0, 150.0), 20);
    assert_eq!(
        check_geofence(
            &fix,
            &address,
            DEFAULT_GEOFENCE_RADIUS_M,
            DEFAULT_MAX_ACCURACY_M
        ),
        GeofenceOutcome::Inside { distance_m: 150 }
    );
}

#[test]
fn fix_230_m_away_with_20_m_accuracy_is_outside_a_200_m_fence() {
    let address = oriental_pearl_tower();
    let fix = fix_at(moved(&address, 200.0, 230.0), 20);
    assert_eq!(
        check_geofence(&fix, &address, 200, 100),
        GeofenceOutcome::Outside {
            distance_m: 230,
            allowed_m: 220
        }
    );
}

#[test]
fn fix_exactly_on_the_widened_fence_counts_as_inside() {
    let address = tiananmen();
    let fix = fix_at(moved(&address, 90.0, 220.0), 20);
    assert_eq!(
        check_geofence(&fix, &address, 200, 100),
        GeofenceOutcome::Inside { distance_m: 220 }
    );
}

#[test]
fn fix_with_150_m_accuracy_is_too_poor_even_at_the_door() {
    let address = tiananmen();
    let fix = fix_at(address, 150);
    assert_eq!(
        check_geofence(&fix, &address, 200, 100),
        GeofenceOutcome::AccuracyTooPoor {
            accuracy_m: 150,
            max_m: 100
        }
    );
    assert_eq!(
        check_geofence(&fix_at(address, 100), &address, 200, 100),
        GeofenceOutcome::Inside { distance_m: 0 }
    );
}

#[test]
fn mock_fix_is_reported_as_mock_before_anything_else() {
    let address = tiananmen();
    let mut fix = fix_at(moved(&address, 0.0, 5_000.0), 500);
    fix.mock = true;
    assert_eq!(
        check_geofence(&fix, &address, 200, 100),
        GeofenceOutcome::Mock
    );
}

#[test]
fn fix_far_away_in_gcj02_is_still_measured_in_wgs84() {
    let address = tiananmen().to_datum(Datum::Bd09);
    let fix_wgs = moved(&tiananmen(), 135.0, 400.0);
    let fix = fix_at(fix_wgs.to_datum(Datum::Gcj02), 30);
    assert_eq!(
        check_geofence(&fix, &address, 200, 100),
        GeofenceOutcome::Outside {
            distance_m: 400,
            allowed_m: 230
        }
    );
}

#[test]
fn nearest_of_several_approved_addresses_is_chosen() {
    let home = oriental_pearl_tower();
    let office = moved(&home, 90.0, 3_000.0).to_datum(Datum::Gcj02);
    let parents = moved(&home, 180.0, 800.0).to_datum(Datum::Bd09);
    let fix = fix_at(moved(&home, 180.0, 750.0), 15);
    assert_eq!(
        nearest_address(&fix, &[home, office, parents]),
        Some((2, 50))
    );
    assert_eq!(nearest_address(&fix, &[]), None);
}

// ---- V05 partner distance

#[test]
fn partners_40_m_apart_are_within_50_m() {
    let lead = fix_at(tiananmen(), 10);
    let partner = fix_at(moved(&tiananmen(), 45.0, 40.0), 10);
    assert_eq!(
        check_partner_distance(&lead, &partner, DEFAULT_PARTNER_MAX_M),
        PartnerOutcome::Within { distance_m: 40 }
    );
}

#[test]
fn partners_60_m_apart_are_too_far() {
    let lead = fix_at(tiananmen(), 10);
    let partner = fix_at(moved(&tiananmen(), 45.0, 60.0), 10);
    assert_eq!(
        check_partner_distance(&lead, &partner, 50),
        PartnerOutcome::TooFar {
            distance_m: 60,
            max_m: 50
        }
    );
}

#[test]
fn partner_check_names_the_mock_fix() {
    let honest = fix_at(tiananmen(), 10);
    let mut faked = honest.clone();
    faked.mock = true;
    assert_eq!(
        check_partner_distance(&honest, &faked, 50),
        PartnerOutcome::Mock {
            side: MockSide::Second
        }
    );
    assert_eq!(
        check_partner_distance(&faked, &honest, 50),
        PartnerOutcome::Mock {
            side: MockSide::First
        }
    );
    assert_eq!(
        check_partner_distance(&faked, &faked, 50),
        PartnerOutcome::Mock {
            side: MockSide::Both
        }
    );
}

// ---- properties

proptest! {
    #[test]
    fn gcj02_inverse_round_trips_points_inside_china(
        lat_e7 in 185_000_000i32..=535_000_000,
        lon_e7 in 740_000_000i32..=1_340_000_000,
    ) {
        let original = Coordinate::new(lat_e7, lon_e7, Datum::Wgs84).unwrap();
        let gcj = original.to_datum(Datum::Gcj02);
        prop_assert!(distance_m(&gcj, &Coordinate::new(gcj.lat_e7(), gcj.lon_e7(), Datum::Wgs84).unwrap()) > 0);
        let back = gcj.to_wgs84();
        // 1e-6 degree is 10 units of 1e-7.
        prop_assert!((back.lat_e7() - lat_e7).abs() <= 10, "{original:?} -> {back:?}");
        prop_assert!((back.lon_e7() - lon_e7).abs() <= 10, "{original:?} -> {back:?}");
    }

    #[test]
    fn bd09_inverse_round_trips_points_inside_china(
        lat_e7 in 185_000_000i32..=535_000_000,
        lon_e7 in 740_000_000i32..=1_340_000_000,
    ) {
        let original = Coordinate::new(lat_e7, lon_e7, Datum::Wgs84).unwrap();
        let back = original.to_datum(Datum::Bd09).to_wgs84();
        prop_assert!((back.lat_e7() - lat_e7).abs() <= 10, "{original:?} -> {back:?}");
        prop_assert!((back.lon_e7() - lon_e7).abs() <= 10, "{original:?} -> {back:?}");
    }

    #[test]
    fn any_valid_pair_of_coordinates_has_a_distance(
        a_lat in -900_000_000i32..=900_000_000, a_lon in -1_800_000_000i32..=1_800_000_000,
        b_lat in -900_000_000i32..=900_000_000, b_lon in -1_800_000_000i32..=1_800_000_000,
        a_datum in 0u8..3, b_datum in 0u8..3,
    ) {
        let datum = |d: u8| [Datum::Wgs84, Datum::Gcj02, Datum::Bd09][usize::from(d)];
        let a = Coordinate::new(a_lat, a_lon, datum(a_datum)).unwrap();
        let b = Coordinate::new(b_lat, b_lon, datum(b_datum)).unwrap();
        let d = distance_m(&a, &b);
        prop_assert!(d <= 20_004_000, "{d}");
        prop_assert_eq!(d, distance_m(&b, &a));
    }
}

#[test]
fn a_datum_name_is_the_one_serde_writes_and_reads_back() {
    for datum in Datum::ALL {
        let json = serde_json::to_string(&datum).unwrap();
        assert_eq!(json, format!("\"{}\"", datum.as_str()));
        assert_eq!(datum.as_str().parse::<Datum>(), Ok(datum));
        assert_eq!(datum.to_string(), datum.as_str());
    }
    for bad in ["", "WGS84", "gcj-02", "bd09 "] {
        assert!(bad.parse::<Datum>().is_err(), "{bad:?}");
    }
}
