//! Money in fen (1/100 yuan): integers only, never floats.

use serde::{Deserialize, Serialize};

/// An amount in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl std::fmt::Display for Fen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

impl Fen {
    /// The amount's size in yuan for people, thousands grouped: `1,234.56` (no sign, no
    /// currency symbol: the caller places them as its language does).
    pub fn grouped_abs(self) -> String {
        let fen = self.0.unsigned_abs();
        let digits = (fen / 100).to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{grouped}.{:02}", fen % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::Fen;

    #[test]
    fn fen_grouped_in_thousands() {
        assert_eq!(Fen(0).grouped_abs(), "0.00");
        assert_eq!(Fen(123_456).grouped_abs(), "1,234.56");
        assert_eq!(Fen(100_000_000).grouped_abs(), "1,000,000.00");
        assert_eq!(Fen(-99_999).grouped_abs(), "999.99");
        assert_eq!(Fen(i64::MIN).grouped_abs(), "92,233,720,368,547,758.08");
    }

    #[test]
    fn fen_display_as_yuan() {
        assert_eq!(Fen(123_456).to_string(), "¥1234.56");
        assert_eq!(Fen(5).to_string(), "¥0.05");
        assert_eq!(Fen(-250).to_string(), "-¥2.50");
    }
}
