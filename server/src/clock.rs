//! The server's clock: part of its state, never a process global.
//!
//! Production runs on the system clock. Demos (`tandem serve --demo --clock-offset-ms`) and
//! tests shift it, say into visiting hours, without touching the machine's clock; a shifted
//! clock says so on every time anchor it signs (`shifted_by_ms`), so evidence made against
//! it can never pass for evidence made against real time.

use std::sync::atomic::{AtomicI64, Ordering};

/// Now, UTC milliseconds, by the system clock.
pub fn system_now_ms() -> i64 {
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(system.as_millis()).unwrap_or(i64::MAX)
}

/// Where the server reads the time.
pub trait ServerClock: Send + Sync + std::fmt::Debug {
    /// Now, UTC milliseconds: what the server signs in anchors and receipts.
    fn now_ms(&self) -> i64;

    /// How far this clock is from the system clock, ms (zero in production).
    fn shift_ms(&self) -> i64 {
        0
    }
}

/// The system clock (production).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl ServerClock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_now_ms()
    }
}

/// The system clock shifted by an offset that tests may move forward (a scripted day).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    /// A clock `offset_ms` from the system clock.
    pub fn new(offset_ms: i64) -> Self {
        Self {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// Moves the clock forward by `ms` (the phones of a test moved theirs).
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl ServerClock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        system_now_ms().saturating_add(self.shift_ms())
    }

    fn shift_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::{ServerClock, ShiftedClock, SystemClock, system_now_ms};

    #[test]
    fn a_shifted_clock_moves_with_the_system_clock_and_says_by_how_much() {
        let clock = ShiftedClock::new(3_600_000);
        let now = clock.now_ms() - system_now_ms();
        assert!((3_599_000..=3_601_000).contains(&now), "{now}");
        clock.advance_ms(60_000);
        assert_eq!(clock.shift_ms(), 3_660_000);
        assert_eq!(SystemClock.shift_ms(), 0);
    }
}
