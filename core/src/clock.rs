//! The anchored clock (DESIGN.md §3): phone clocks prove nothing, so every event carries
//! the phone's wall time *and* the server time of the last signed anchor plus the
//! monotonic time elapsed since it was received.
//!
//! Monotonic time counts from boot and keeps counting in sleep, and the user cannot set
//! it. An anchor is only good within the boot it was received in: after a reboot the
//! monotonic count restarts, so the phone is unanchored until its next sync.

use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};

use crate::model::{EventKind, EventTime, TimeAnchor};

/// The platform's clocks (Android: `System.currentTimeMillis`, `SystemClock.elapsedRealtime`,
/// the boot count; iOS equivalents).
pub trait Clock: Send + Sync {
    /// Wall-clock time, UTC ms: whatever the phone is set to.
    fn wall_ms(&self) -> i64;
    /// Milliseconds since boot, counting sleep; never set by the user.
    fn monotonic_ms(&self) -> i64;
    /// Identifies the current boot: changes on every restart of the device.
    fn boot_id(&self) -> String;
}

/// The clock of the machine core runs on (Linux, Android; a fallback elsewhere).
///
/// Wall time from `SystemTime`; monotonic time from `clock_gettime(CLOCK_BOOTTIME)`; the boot
/// id from `/proc/sys/kernel/random/boot_id`. Where that file cannot be read (some Android
/// builds deny it, other systems lack it) the boot id is a random id made once per process:
/// anchors then do not survive an app restart, which costs a sync but never trusts a
/// monotonic count across a reboot it cannot see. Phone shells should pass their own
/// [`Clock`] with the platform's boot count instead.
#[derive(Debug)]
pub struct SystemClock {
    boot_id: String,
}

/// Where the fallback monotonic count starts: once per process, like the fallback boot id.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn process_start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

impl SystemClock {
    /// Reads the boot id once; the clock is then cheap to query.
    pub fn new() -> Self {
        static PROCESS_ID: OnceLock<String> = OnceLock::new();
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                PROCESS_ID
                    .get_or_init(|| format!("process-{}", uuid::Uuid::now_v7()))
                    .clone()
            });
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        process_start();
        Self { boot_id }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // A wall clock set before 1970 is still a time; report it as negative.
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn monotonic_ms(&self) -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux
        // since 2.6.39 and on all Android versions.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if rc != 0 {
            // Cannot happen with a valid clock id; 0 makes any anchor look "from the future",
            // so the phone goes unanchored rather than trusting a bogus count.
            return 0;
        }
        // time_t and c_long are 32-bit on armv7 Android: the conversions are not useless there.
        #[allow(clippy::useless_conversion)]
        let ms = i64::from(ts.tv_sec)
            .saturating_mul(1000)
            .saturating_add(i64::from(ts.tv_nsec) / 1_000_000);
        ms
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn monotonic_ms(&self) -> i64 {
        // Paired with the per-process boot id: counts from process start only.
        i64::try_from(process_start().elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn boot_id(&self) -> String {
        self.boot_id.clone()
    }
}

#[derive(Debug)]
struct ManualState {
    wall_ms: i64,
    monotonic_ms: i64,
    boot_id: String,
    boots: u64,
}

/// A clock that is set by hand: for tests and the terminal simulator. Thread-safe.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

impl ManualClock {
    /// A clock showing `wall_ms`, `monotonic_ms` since boot, in boot number 1.
    pub fn new(wall_ms: i64, monotonic_ms: i64) -> Self {
        Self {
            state: Mutex::new(ManualState {
                wall_ms,
                monotonic_ms,
                boot_id: "boot-1".into(),
                boots: 1,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut ManualState) -> R) -> R {
        // The state is plain numbers: a panic elsewhere cannot leave it half-updated.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Real time passes: wall and monotonic clocks both move forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.with(|s| {
            s.wall_ms = s.wall_ms.saturating_add(ms);
            s.monotonic_ms = s.monotonic_ms.saturating_add(ms);
        });
    }

    /// The user (or network time) sets the wall clock; monotonic time is unaffected.
    pub fn set_wall_ms(&self, wall_ms: i64) {
        self.with(|s| s.wall_ms = wall_ms);
    }

    /// Sets the monotonic count directly (to test a clock that goes backwards).
    pub fn set_monotonic_ms(&self, monotonic_ms: i64) {
        self.with(|s| s.monotonic_ms = monotonic_ms);
    }

    /// The device restarts: a new boot id, monotonic time back to 0, wall time kept.
    pub fn reboot(&self) {
        self.with(|s| {
            s.boots = s.boots.saturating_add(1);
            s.boot_id = format!("boot-{}", s.boots);
            s.monotonic_ms = 0;
        });
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> i64 {
        self.with(|s| s.wall_ms)
    }

    fn monotonic_ms(&self) -> i64 {
        self.with(|s| s.monotonic_ms)
    }

    fn boot_id(&self) -> String {
        self.with(|s| s.boot_id.clone())
    }
}

/// A verified time anchor as the phone keeps it: the server's time and this phone's clocks
/// at the moment it was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnchor {
    /// Server time in the anchor, UTC ms.
    pub server_time_ms: i64,
    /// The phone's monotonic time when the anchor was received.
    pub monotonic_at_ms: i64,
    /// The phone's wall time when the anchor was received (kept for review).
    pub wall_at_ms: i64,
    /// The boot the monotonic time belongs to.
    pub boot_id: String,
}

impl StoredAnchor {
    /// Records an anchor at the moment it is received. The caller has verified the server's
    /// signature and that the anchor names this device (and its nonce is new): a stored
    /// anchor is trusted as is.
    pub fn receive(anchor: &TimeAnchor, clock: &dyn Clock) -> Self {
        Self {
            server_time_ms: anchor.server_time_ms,
            monotonic_at_ms: clock.monotonic_ms(),
            wall_at_ms: clock.wall_ms(),
            boot_id: clock.boot_id(),
        }
    }

    /// Monotonic time elapsed since the anchor, if it still holds on `clock`: same boot,
    /// and monotonic time has not gone backwards.
    pub fn elapsed_ms(&self, clock: &dyn Clock) -> Option<i64> {
        if clock.boot_id() != self.boot_id {
            return None;
        }
        let elapsed = clock.monotonic_ms().checked_sub(self.monotonic_at_ms)?;
        (elapsed >= 0).then_some(elapsed)
    }
}

/// The time of an event now: wall time always, anchored time when the anchor holds.
pub fn now(clock: &dyn Clock, anchor: Option<&StoredAnchor>) -> EventTime {
    let wall_ms = clock.wall_ms();
    match anchor.and_then(|a| Some((a.server_time_ms, a.elapsed_ms(clock)?))) {
        Some((anchor_ms, since)) => EventTime {
            wall_ms,
            anchor_ms: Some(anchor_ms),
            since_anchor_ms: Some(since),
        },
        None => EventTime {
            wall_ms,
            anchor_ms: None,
            since_anchor_ms: None,
        },
    }
}

/// Wall minus anchored time, when it is beyond `tolerance_ms` either way; `None` when within
/// tolerance or unanchored. The phone records it (see [`discrepancy_event`]); rules use
/// anchored time regardless.
pub fn clock_discrepancy(t: &EventTime, tolerance_ms: i64) -> Option<i64> {
    let diff = t.wall_ms.saturating_sub(t.anchored_ms()?);
    (diff.saturating_abs() > tolerance_ms).then_some(diff)
}

/// The `ClockDiscrepancy` event to record for `t`, if its wall clock is off beyond tolerance.
pub fn discrepancy_event(t: &EventTime, tolerance_ms: i64) -> Option<EventKind> {
    clock_discrepancy(t, tolerance_ms)?;
    Some(EventKind::ClockDiscrepancy {
        wall_ms: t.wall_ms,
        anchored_ms: t.anchored_ms()?,
    })
}
