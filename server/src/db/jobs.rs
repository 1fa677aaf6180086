//! Scheduled jobs shared by every server on one database (`scheduled_jobs`): each server
//! ticks on its own, and a tick runs the job only if it wins the job's row for this period.
//!
//! The claim is one upsert: it moves `last_run_ms` to now only if the last run is at least
//! the job's minimum gap old, so of several servers ticking in one period exactly one wins
//! (PostgreSQL locks the conflicting row and re-checks the condition on its newest version;
//! SQLite has one writer). A server that dies after winning loses that run only; the next
//! period is free again.

use async_trait::async_trait;

use super::DbError;

/// A job's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRuns {
    /// When it last ran (was claimed), UTC ms.
    pub last_run_ms: i64,
    /// How many times it ran, across all servers.
    pub runs: u64,
}

/// Storage for scheduled jobs.
#[async_trait]
pub trait JobsDb: Send + Sync {
    /// Claims a run of `job` at `now_ms` if its last run is at least `min_gap_ms` old (or
    /// lies more than `min_gap_ms` in the future: a clock that jumped back must not stop
    /// the job for good); `true` when this caller is to run it.
    async fn claim_job_run(&self, job: &str, now_ms: i64, min_gap_ms: i64)
    -> Result<bool, DbError>;

    /// A job's row; `None` when it never ran.
    async fn job_runs(&self, job: &str) -> Result<Option<JobRuns>, DbError>;
}

macro_rules! impl_jobs_db {
    ($db:ty) => {
        #[async_trait]
        impl JobsDb for $db {
            async fn claim_job_run(
                &self,
                job: &str,
                now_ms: i64,
                min_gap_ms: i64,
            ) -> Result<bool, DbError> {
                let claimed = sqlx::query(
                    "INSERT INTO scheduled_jobs (job, last_run_ms, runs) VALUES ($1, $2, 1) \
                     ON CONFLICT (job) DO UPDATE SET last_run_ms = excluded.last_run_ms, \
                     runs = scheduled_jobs.runs + 1 \
                     WHERE scheduled_jobs.last_run_ms <= $3 OR scheduled_jobs.last_run_ms > $4",
                )
                .bind(job)
                .bind(now_ms)
                .bind(now_ms.saturating_sub(min_gap_ms))
                .bind(now_ms.saturating_add(min_gap_ms))
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(claimed == 1)
            }

            async fn job_runs(&self, job: &str) -> Result<Option<JobRuns>, DbError> {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT last_run_ms, runs FROM scheduled_jobs WHERE job = $1",
                )
                .bind(job)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(last_run_ms, runs)| {
                    Ok(JobRuns {
                        last_run_ms,
                        runs: u64::try_from(runs)
                            .map_err(|_| DbError::Corrupt("scheduled_jobs.runs"))?,
                    })
                })
                .transpose()
            }
        }
    };
}

impl_jobs_db!(super::SqliteDb);
impl_jobs_db!(super::PgDb);
