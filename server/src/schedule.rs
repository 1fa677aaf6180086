//! The periodic jobs of `tandem serve` (the deposit check, the audit log's anchoring), run
//! once per period across every server on one database, not once per server: each server
//! ticks on its own interval and runs a job only when it claims the job's run for this
//! period in the database ([`crate::db::JobsDb::claim_job_run`]). With one server every
//! tick wins, as before.

use std::time::Duration;

use crate::AppState;

/// A job run on an interval by every `tandem serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Receipts past their deposit deadline flagged overdue (C03), complaints past their
    /// 24 hours escalated (P01).
    DepositCheck,
    /// The audit log's head appended to the transparency log.
    AuditAnchor,
}

impl Job {
    /// The job's stored name (`scheduled_jobs.job`); a name once stored never changes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepositCheck => "deposit-check",
            Self::AuditAnchor => "audit-anchor",
        }
    }
}

/// The shortest time between two runs of a job ticking every `every`: a tenth less than the
/// period, so that one server's ticks, which may come a little early or late by the
/// database's clock, still win every period, while other servers' ticks in between lose.
pub fn min_gap(every: Duration) -> Duration {
    every.saturating_sub(every / 10)
}

/// Whether this server is to run `job` now: it claimed the run of this period. A database
/// error is logged and counts as "not now" (the job would need the database anyway; the
/// next tick tries again).
pub async fn claim(state: &AppState, job: Job, every: Duration) -> bool {
    let gap = i64::try_from(min_gap(every).as_millis()).unwrap_or(i64::MAX);
    match state
        .db
        .claim_job_run(job.as_str(), state.now_ms(), gap)
        .await
    {
        Ok(claimed) => {
            if !claimed {
                tracing::debug!(job = job.as_str(), "run of this period claimed elsewhere");
            }
            claimed
        }
        Err(e) => {
            tracing::error!(job = job.as_str(), error = %e, "cannot claim a scheduled run");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_a_tenth_short_of_the_period() {
        assert_eq!(
            min_gap(Duration::from_secs(3_600)),
            Duration::from_secs(3_240)
        );
        assert_eq!(min_gap(Duration::from_secs(1)), Duration::from_millis(900));
    }
}
