-- Scheduled jobs shared by every server on this database (the deposit check, the audit
-- log's anchoring): one row per job with when it last ran, so that of several servers
-- ticking at once only one runs it per period (`db::jobs`). Times are UTC milliseconds.
CREATE TABLE scheduled_jobs (
    job          TEXT PRIMARY KEY,
    last_run_ms  BIGINT NOT NULL,
    -- How many times it ran, for operators and tests (once per period across servers).
    runs         BIGINT NOT NULL CHECK (runs >= 1)
);
