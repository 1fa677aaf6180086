//! When to try again: capped exponential backoff with full jitter, so a thousand phones
//! coming back online together do not hit the server in lockstep.

use crate::crypto::random_bytes;

/// The retry schedule of an outbox job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait's upper bound, ms.
    pub base_ms: i64,
    /// No wait is longer than this, ms.
    pub cap_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 2_000,
            cap_ms: 15 * 60_000,
        }
    }
}

impl Backoff {
    /// The upper bound of the wait after `attempts` failures: `base · 2^(attempts-1)`,
    /// capped.
    pub fn ceiling_ms(&self, attempts: u32) -> i64 {
        let shift = attempts.saturating_sub(1).min(40);
        self.base_ms
            .max(1)
            .saturating_mul(1_i64 << shift)
            .min(self.cap_ms.max(1))
    }

    /// The wait after `attempts` failures: uniform in `[ceiling/2, ceiling]` ("equal
    /// jitter": never a hot retry, still spread out).
    pub fn delay_ms(&self, attempts: u32) -> i64 {
        let ceiling = self.ceiling_ms(attempts);
        let half = ceiling / 2;
        let span = u64::try_from(ceiling - half).unwrap_or(0) + 1;
        let r = random_bytes::<8>().map(u64::from_le_bytes).unwrap_or(0);
        half + i64::try_from(r % span).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_stay_within_jitter_bounds() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
        };
        assert_eq!(b.ceiling_ms(1), 1_000);
        assert_eq!(b.ceiling_ms(2), 2_000);
        assert_eq!(b.ceiling_ms(6), 32_000);
        assert_eq!(b.ceiling_ms(7), 60_000);
        assert_eq!(b.ceiling_ms(u32::MAX), 60_000);
        for attempts in 1..12 {
            for _ in 0..50 {
                let d = b.delay_ms(attempts);
                let c = b.ceiling_ms(attempts);
                assert!(d >= c / 2 && d <= c, "{d} outside [{}, {c}]", c / 2);
            }
        }
    }

    #[test]
    fn jitter_spreads_phones_that_failed_together() {
        let b = Backoff::default();
        let waits: std::collections::BTreeSet<i64> = (0..100).map(|_| b.delay_ms(5)).collect();
        assert!(waits.len() > 50, "only {} distinct waits", waits.len());
    }
}
