//! Chinese map datums (GCJ-02, BD-09) to and from WGS-84, in degrees.
//!
//! GCJ-02 is WGS-84 plus a deliberately irregular offset of a few hundred metres, applied
//! only inside a bounding box around China; BD-09 is Baidu's further shift of GCJ-02. The
//! forward transforms are the widely published public algorithms (Krasovsky ellipsoid
//! constants, `transformLat`/`transformLon` polynomials, Baidu's `x_pi` rotation). Neither
//! has a closed-form inverse, so the inverses solve `forward(x) = y` by fixed-point
//! iteration: the offsets change so slowly with position (derivative ≈ 0.002) that each
//! step gains almost three decimal digits.
//!
//! Floats live only inside this file; callers round the result back to 1e-7 degrees.

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid, which GCJ-02's offset is scaled by.
const KRASOVSKY_A: f64 = 6_378_245.0;
/// First eccentricity squared of the Krasovsky 1940 ellipsoid.
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
/// Baidu's angular constant for the BD-09 rotation.
const X_PI: f64 = PI * 3000.0 / 180.0;

/// Inverses stop once the forward image is this close to the target (degrees): far below
/// the 1e-7-degree grid the result is rounded to.
const INVERSE_TOLERANCE_DEG: f64 = 1e-10;
/// Bound on inverse iterations; convergence normally takes three or four.
const INVERSE_MAX_ITERATIONS: usize = 30;

/// Whether the Chinese datums apply here: the published rectangle around China, outside
/// which GCJ-02 and BD-09 coincide with WGS-84.
pub(crate) fn in_china_box(lat: f64, lon: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

/// The published `transformLat` polynomial, in Krasovsky metres.
fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

/// The published `transformLon` polynomial, in Krasovsky metres.
fn transform_lon(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// WGS-84 → GCJ-02 (the forward transform; identity outside the China box).
pub(crate) fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china_box(lat, lon) {
        return (lat, lon);
    }
    let d_lat = transform_lat(lon - 105.0, lat - 35.0);
    let d_lon = transform_lon(lon - 105.0, lat - 35.0);
    let rad_lat = lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat =
        (d_lat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = (d_lon * 180.0) / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (lat + d_lat, lon + d_lon)
}

/// GCJ-02 → WGS-84 by iterating the forward transform.
pub(crate) fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china_box(lat, lon) {
        return (lat, lon);
    }
    invert(wgs84_to_gcj02, (lat, lon), (lat, lon))
}

/// GCJ-02 → BD-09 (Baidu's forward transform; identity outside the China box).
pub(crate) fn gcj02_to_bd09(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china_box(lat, lon) {
        return (lat, lon);
    }
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

/// BD-09 → GCJ-02: Baidu's published approximate inverse as the first guess, refined
/// against the forward transform (the published formula alone is off by up to ~2e-6°,
/// about 0.2 m, measured over 100,000 random points in China).
pub(crate) fn bd09_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china_box(lat, lon) {
        return (lat, lon);
    }
    let x = lon - 0.0065;
    let y = lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    let guess = (z * theta.sin(), z * theta.cos());
    invert(gcj02_to_bd09, (lat, lon), guess)
}

/// Solves `forward(p) = target` starting from `guess`, for a forward transform that is the
/// identity plus a slowly varying offset.
fn invert(
    forward: fn(f64, f64) -> (f64, f64),
    target: (f64, f64),
    guess: (f64, f64),
) -> (f64, f64) {
    let (mut lat, mut lon) = guess;
    for _ in 0..INVERSE_MAX_ITERATIONS {
        let (f_lat, f_lon) = forward(lat, lon);
        let (e_lat, e_lon) = (f_lat - target.0, f_lon - target.1);
        lat -= e_lat;
        lon -= e_lon;
        if e_lat.abs() < INVERSE_TOLERANCE_DEG && e_lon.abs() < INVERSE_TOLERANCE_DEG {
            break;
        }
    }
    (lat, lon)
}
