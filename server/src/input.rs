//! Range checks for the numbers a request carries, applied before any arithmetic: a time
//! must fall inside the years evidence can be about, an amount inside what a card's
//! arrears can be. Anything outside answers 422 naming the field, never the value.
//!
//! Threat: anyone sending bad input. `"wanted_until_ms": 9223372036854775807` minus `-1`
//! overflows an `i64`: a debug build panics the request task, a release build wraps to a
//! negative window that then passes the checks built on it.

use crate::error::AppError;

/// The earliest time a request may name: 2000-01-01T00:00:00Z, UTC ms.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// The latest time a request may name: 2200-01-01T00:00:00Z, UTC ms. Retention runs for
/// years, not centuries; anything later is a mistake or an attack.
pub const LATEST_MS: i64 = 7_258_118_400_000;
/// The largest amount a request may name: ¥10,000,000,000.00 in fen (far beyond any card's
/// arrears, far below where sums of a few amounts could overflow).
pub const MAX_FEN: i64 = 1_000_000_000_000;

/// `value` when it is a time (UTC ms) between [`EARLIEST_MS`] and [`LATEST_MS`].
pub fn time_ms(field: &'static str, value: i64) -> Result<i64, AppError> {
    if (EARLIEST_MS..=LATEST_MS).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::invalid(
            "time-out-of-range",
            format!("{field} must be a time between the years 2000 and 2200, in UTC milliseconds."),
        ))
    }
}

/// The length of `[from_ms, until_ms)`, both checked with [`time_ms`] first, so the
/// subtraction cannot overflow.
pub fn span_ms(
    from_field: &'static str,
    from_ms: i64,
    until_field: &'static str,
    until_ms: i64,
) -> Result<i64, AppError> {
    let from = time_ms(from_field, from_ms)?;
    let until = time_ms(until_field, until_ms)?;
    // Both lie in [EARLIEST_MS, LATEST_MS]: the difference is far inside i64.
    Ok(until - from)
}

/// `value` when it is an amount in fen from 1 to [`MAX_FEN`].
pub fn amount_fen(field: &'static str, value: i64) -> Result<i64, AppError> {
    if (1..=MAX_FEN).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::invalid(
            "amount-out-of-range",
            format!("{field} must be a positive amount in fen of at most {MAX_FEN}."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extremes_of_i64_are_refused_before_any_arithmetic() {
        assert!(span_ms("from", -1, "until", i64::MAX).is_err());
        assert!(span_ms("from", i64::MIN, "until", i64::MAX).is_err());
        assert!(span_ms("from", EARLIEST_MS, "until", i64::MIN).is_err());
        assert_eq!(
            span_ms("from", EARLIEST_MS, "until", LATEST_MS).ok(),
            Some(LATEST_MS - EARLIEST_MS)
        );
    }

    #[test]
    fn a_refusal_names_the_field_and_never_the_value() {
        let e = time_ms("valid_until_ms", i64::MAX).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("valid_until_ms"), "{text}");
        assert!(!text.contains(&i64::MAX.to_string()), "{text}");
        assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(amount_fen("limit_fen", 0).is_err());
        assert!(amount_fen("limit_fen", -5).is_err());
        assert!(amount_fen("limit_fen", i64::MAX).is_err());
        assert_eq!(amount_fen("limit_fen", 100_000).ok(), Some(100_000));
    }
}
