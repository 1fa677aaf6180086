-- Complaints (P01): recorded in the console or carried by a phone's sealed visit, each a
-- 24-hour ticket that puts its case on hold (no new requests or approvals, V01) until a
-- manager resolves it with a note. Times are UTC milliseconds.
CREATE TABLE complaints (
    id               TEXT PRIMARY KEY,
    bank_id          TEXT NOT NULL REFERENCES banks (id),
    case_id          TEXT NOT NULL REFERENCES cases (id),
    -- The visit it arose from, when it came from one.
    visit_id         TEXT,
    source           TEXT NOT NULL CHECK (source IN ('console', 'phone')),
    -- What was said (no personal data beyond what the complaint needs).
    note             TEXT NOT NULL,
    -- Who recorded it: a console user, or the bundle that carried it (exactly one).
    opened_by        TEXT REFERENCES users (id),
    bundle_id        TEXT REFERENCES bundles (id),
    opened_ms        BIGINT NOT NULL,
    -- The ticket's deadline: 24 hours after it opened.
    due_ms           BIGINT NOT NULL CHECK (due_ms > opened_ms),
    -- The case's status before its first open complaint, restored when the last resolves.
    previous_status  TEXT NOT NULL,
    resolved_ms      BIGINT,
    resolved_by      TEXT REFERENCES users (id),
    resolution       TEXT,
    -- When the scheduled check found it still open past its deadline (escalated).
    breached_ms      BIGINT,
    CHECK ((opened_by IS NULL) <> (bundle_id IS NULL)),
    CHECK ((resolved_ms IS NULL) = (resolution IS NULL)),
    CHECK ((resolved_ms IS NULL) = (resolved_by IS NULL))
);
CREATE INDEX complaints_bank_open ON complaints (bank_id, resolved_ms, due_ms);
CREATE INDEX complaints_case ON complaints (case_id);
-- A bundle's complaint is opened once, however often the bundle is committed or retried.
CREATE UNIQUE INDEX complaints_bundle ON complaints (bundle_id, note);

-- The console's case search: by the start of the reference or of the debtor's name, in code
-- point order.
CREATE INDEX cases_bank_ref_c ON cases (bank_id, case_ref COLLATE "C");
CREATE INDEX cases_bank_debtor ON cases (bank_id, debtor_name COLLATE "C");

-- The review queue reads flags newest first per bank.
CREATE INDEX bundle_flags_created ON bundle_flags (created_ms);
CREATE INDEX approvals_bank_time ON approvals (bank_id, approved_ms);
