-- Legal staff's evidence (A03, D03): one row per visit with committed evidence, for the
-- search (written by the commit from the verified manifest: who, when, what came of it),
-- and the purposes users stated for reading a visit's evidence, one per session and visit,
-- gone with the session. Times are UTC milliseconds.
CREATE TABLE evidence_visits (
    visit_id       TEXT PRIMARY KEY,
    bank_id        TEXT NOT NULL REFERENCES banks (id),
    -- Not a foreign key, as in `bundles`: evidence for an unknown case is kept too.
    case_id        TEXT NOT NULL,
    -- The newest committed bundle of the visit: the one the evidence page shows.
    bundle_id      TEXT NOT NULL REFERENCES bundles (id),
    status         TEXT NOT NULL CHECK (status IN ('accepted', 'quarantined')),
    -- The check-in's anchored time (else the first event's best time).
    visit_ms       INTEGER NOT NULL,
    lead_agent     TEXT NOT NULL,
    partner_agent  TEXT NOT NULL,
    -- What came of the visit, from its events.
    receipt        INTEGER NOT NULL CHECK (receipt IN (0, 1)),
    promise        INTEGER NOT NULL CHECK (promise IN (0, 1)),
    dispute        INTEGER NOT NULL CHECK (dispute IN (0, 1)),
    complaint      INTEGER NOT NULL CHECK (complaint IN (0, 1)),
    -- The bundle's log entry: a later commit has a larger one.
    log_index      INTEGER NOT NULL
);
CREATE INDEX evidence_visits_bank_time ON evidence_visits (bank_id, visit_ms, visit_id);
CREATE INDEX evidence_visits_case ON evidence_visits (case_id, visit_ms);

-- Visits committed before this step: what the tables tell (receipts, complaints; promises
-- and disputes are read from manifests at the next commit only).
INSERT INTO evidence_visits (visit_id, bank_id, case_id, bundle_id, status, visit_ms,
    lead_agent, partner_agent, receipt, promise, dispute, complaint, log_index)
SELECT b.visit_id, b.bank_id, b.case_id, b.id, b.status, b.committed_ms,
    ld.agent_id, pd.agent_id,
    CASE WHEN EXISTS (SELECT 1 FROM receipts r WHERE r.bundle_id = b.id) THEN 1 ELSE 0 END,
    0, 0,
    CASE WHEN EXISTS (SELECT 1 FROM complaints c WHERE c.bundle_id = b.id) THEN 1 ELSE 0 END,
    b.log_index
FROM bundles b
JOIN devices ld ON ld.id = b.lead_device_id
JOIN devices pd ON pd.id = b.partner_device_id
WHERE b.status <> 'pending'
  AND b.id = (SELECT b2.id FROM bundles b2 WHERE b2.visit_id = b.visit_id
              AND b2.status <> 'pending' ORDER BY b2.log_index DESC LIMIT 1);

CREATE TABLE evidence_purposes (
    session_hash  TEXT NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    visit_id      TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    opened_ms     INTEGER NOT NULL,
    PRIMARY KEY (session_hash, visit_id)
);
