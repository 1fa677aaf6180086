-- The evidence ledger: uploaded bundles (their exact manifest and signatures bytes), the
-- transparency log (RFC 6962: leaf hashes and perfect-subtree hashes, a locked head, every
-- signed checkpoint) and flags kept for review. Times are UTC milliseconds.
--
-- A bundle is `pending` from its PUT until its commit; a commit turns it `accepted` or
-- `quarantined` in the same transaction that appends its log entry and stores its signed
-- answer, so a committed bundle always has both and a pending one neither.
CREATE TABLE bundles (
    id                 TEXT PRIMARY KEY,
    bank_id            TEXT NOT NULL REFERENCES banks (id),
    -- Not a foreign key: evidence for a case this server does not know is quarantined, kept.
    case_id            TEXT NOT NULL,
    visit_id           TEXT NOT NULL,
    lead_device_id     TEXT NOT NULL,
    partner_device_id  TEXT NOT NULL,
    uploaded_by        TEXT NOT NULL,
    manifest_digest    TEXT NOT NULL CHECK (length(manifest_digest) = 64),
    manifest           BYTEA NOT NULL,
    signatures         BYTEA NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'quarantined')),
    received_ms        BIGINT NOT NULL,
    committed_ms       BIGINT,
    log_index          BIGINT UNIQUE CHECK (log_index >= 0),
    -- The verification report and the signed answer (receipt, proof, checkpoint), JSON.
    report             TEXT,
    answer             TEXT,
    CHECK ((status = 'pending') = (log_index IS NULL)),
    CHECK ((status = 'pending') = (committed_ms IS NULL)),
    CHECK ((status = 'pending') = (report IS NULL)),
    CHECK ((status = 'pending') = (answer IS NULL))
);
CREATE INDEX bundles_case ON bundles (case_id);
CREATE INDEX bundles_visit ON bundles (visit_id);

-- One row: the log's size. Every append updates it first, which takes the write lock
-- (SQLite) or the row lock (PostgreSQL): appends are serialised, indexes consecutive.
CREATE TABLE tlog_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    size  BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO tlog_head (id, size) VALUES (1, 0);

-- Perfect subtrees only (2^level leaves aligned on a multiple of 2^level); level 0 holds
-- the leaf hashes. Written once, never changed.
CREATE TABLE tlog_nodes (
    level  BIGINT NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx    BIGINT NOT NULL CHECK (idx >= 0),
    hash   BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Every checkpoint the server signed, one per tree size (the size each commit made).
CREATE TABLE tlog_checkpoints (
    tree_size   BIGINT PRIMARY KEY CHECK (tree_size >= 1),
    signed      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- What a reviewer must look at: quarantined bundles, flagged ones (outside the fence,
-- rule flags) and equivocation (a second manifest under a bundle id already used).
CREATE TABLE bundle_flags (
    id              TEXT PRIMARY KEY,
    bundle_id       TEXT NOT NULL REFERENCES bundles (id),
    kind            TEXT NOT NULL CHECK (kind IN ('quarantine', 'review', 'equivocation')),
    detail          TEXT NOT NULL,
    -- For equivocation: the other manifest, as sent.
    other_digest    TEXT CHECK (other_digest IS NULL OR length(other_digest) = 64),
    other_manifest  BYTEA,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX bundle_flags_bundle ON bundle_flags (bundle_id);
