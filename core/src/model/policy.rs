//! A bank's policy: every limit of DOMAIN.md as a value the server signs, with its default.

use serde::{Deserialize, Serialize};

use super::{BankId, ModelError};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The limits a phone applies for one bank. Signed by the server; defaults from DOMAIN.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The bank this policy is for.
    pub bank_id: BankId,
    /// Increases with every change; recorded in each visit.
    pub version: u32,
    /// IANA zone for local-time rules (V04), e.g. `Asia/Shanghai`; never the phone's setting.
    pub time_zone: String,
    /// Visits allowed from this local minute of the day (V04; default 08:00).
    pub visit_start_minute: u16,
    /// Visits allowed until this local minute of the day (V04; default 21:00).
    pub visit_end_minute: u16,
    /// Warn this many minutes before the end of visiting hours (V04; default 15).
    pub visit_end_warning_minutes: u16,
    /// Geofence radius around an approved address, metres (V05; default 200).
    pub geofence_radius_m: u32,
    /// Worst fix accuracy accepted, metres (V05; default 100).
    pub max_fix_accuracy_m: u32,
    /// Furthest the two phones may be apart at check-in, metres (V05; default 50).
    pub partner_max_distance_m: u32,
    /// Largest tolerated difference between phone wall clock and anchored time (default 5 min).
    pub clock_tolerance_ms: i64,
    /// Length of an audio segment (V07; default 60 s).
    pub audio_segment_ms: u32,
    /// Silence between audio segments tolerated before it counts as a gap (V07; default 5 s).
    pub audio_gap_tolerance_ms: i64,
    /// Sealed visits must reach the server within this time (E03; default 24 h).
    pub upload_deadline_ms: i64,
    /// Visits per debtor per local day (V14; default 1).
    pub max_visits_per_debtor_per_day: u32,
    /// Business days to deposit collected cash (C03; default 1).
    pub deposit_deadline_business_days: u32,
    /// How long evidence is kept, days (E04; default 730).
    pub retention_days: u32,
    /// How long a handshake challenge stays valid (V03; default 5 min).
    pub handshake_ttl_ms: i64,
}

impl Policy {
    /// The defaults of DOMAIN.md for a bank.
    pub fn defaults(bank_id: BankId) -> Self {
        Self {
            bank_id,
            version: 1,
            time_zone: "Asia/Shanghai".into(),
            visit_start_minute: 8 * 60,
            visit_end_minute: 21 * 60,
            visit_end_warning_minutes: 15,
            geofence_radius_m: 200,
            max_fix_accuracy_m: 100,
            partner_max_distance_m: 50,
            clock_tolerance_ms: 5 * MINUTE_MS,
            audio_segment_ms: 60_000,
            audio_gap_tolerance_ms: 5_000,
            upload_deadline_ms: 24 * HOUR_MS,
            max_visits_per_debtor_per_day: 1,
            deposit_deadline_business_days: 1,
            retention_days: 730,
            handshake_ttl_ms: 5 * MINUTE_MS,
        }
    }

    /// The policy's time zone.
    pub fn zone(&self) -> Result<chrono_tz::Tz, ModelError> {
        self.time_zone.parse().map_err(|_| ModelError::Invalid {
            field: "time_zone",
            reason: format!("{:?} is not an IANA time zone", self.time_zone),
        })
    }

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.zone()?;
        let invalid = |field, reason: &str| {
            Err(ModelError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.visit_start_minute >= self.visit_end_minute || self.visit_end_minute > 24 * 60 {
            return invalid("visit_hours", "start must be before end, within one day");
        }
        if self.audio_segment_ms < 1_000 {
            return invalid("audio_segment_ms", "segments are at least one second long");
        }
        if self.clock_tolerance_ms < 0 || self.upload_deadline_ms <= 0 || self.handshake_ttl_ms <= 0
        {
            return invalid("durations", "tolerances and deadlines must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_those_of_the_rules() {
        let p = Policy::defaults(BankId::new());
        p.validate().unwrap();
        assert_eq!((p.visit_start_minute, p.visit_end_minute), (480, 1260));
        assert_eq!(p.geofence_radius_m, 200);
        assert_eq!(p.upload_deadline_ms, 86_400_000);
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        let p = Policy {
            time_zone: "Mars/Olympus".into(),
            ..Policy::defaults(BankId::new())
        };
        assert!(p.validate().is_err());
    }
}
