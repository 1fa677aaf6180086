-- Visit management and pull sync: what the case import adds to a case, visit requests and
-- their decisions, approved teams, the receipt-number series, and the sync feed of
-- server-signed documents. Times are UTC milliseconds.

-- Case fields the phone's signed case carries (core `Case`); the seed's status 'open' reads
-- as active.
ALTER TABLE cases ADD COLUMN debtor_phone TEXT;
ALTER TABLE cases ADD COLUMN extended_until_ms INTEGER;
ALTER TABLE cases ADD COLUMN health_flag TEXT
    CHECK (health_flag IS NULL OR health_flag IN ('serious_illness', 'pregnancy'));

CREATE TABLE visit_requests (
    id                 TEXT PRIMARY KEY,
    bank_id            TEXT NOT NULL REFERENCES banks (id),
    case_id            TEXT NOT NULL REFERENCES cases (id),
    -- JSON array of address ids of the case.
    address_ids        TEXT NOT NULL,
    wanted_from_ms     INTEGER NOT NULL,
    wanted_until_ms    INTEGER NOT NULL CHECK (wanted_until_ms > wanted_from_ms),
    purpose            TEXT NOT NULL,
    -- Who asked: an agent's phone or a console user (exactly one).
    requested_device   TEXT REFERENCES devices (id),
    requested_user     TEXT REFERENCES users (id),
    created_ms         INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by         TEXT REFERENCES users (id),
    decided_ms         INTEGER,
    reject_reason      TEXT,
    CHECK ((requested_device IS NULL) <> (requested_user IS NULL)),
    CHECK ((status = 'pending') = (decided_ms IS NULL))
);
CREATE INDEX visit_requests_bank_status ON visit_requests (bank_id, status, created_ms);

CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL UNIQUE REFERENCES visit_requests (id),
    bank_id      TEXT NOT NULL REFERENCES banks (id),
    case_id      TEXT NOT NULL REFERENCES cases (id),
    visit_id     TEXT NOT NULL UNIQUE,
    approved_by  TEXT NOT NULL REFERENCES users (id),
    approved_ms  INTEGER NOT NULL
);

-- The approved team, one row per member's device: who may pull the visit (D01).
CREATE TABLE approval_team (
    approval_id  TEXT NOT NULL REFERENCES approvals (id),
    agent_id     TEXT NOT NULL REFERENCES agents (id),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    PRIMARY KEY (approval_id, agent_id)
);
CREATE INDEX approval_team_device ON approval_team (device_id);

-- Receipt numbers (C02): one server-wide series, so ranges never overlap across phones or
-- banks (core's SerialRange names a device, not a bank). `next_serial` is the first number
-- not yet issued; an allocation moves it forward under the row's lock, so issued ranges
-- are gapless.
CREATE TABLE serial_series (
    series       TEXT PRIMARY KEY,
    next_serial  INTEGER NOT NULL CHECK (next_serial >= 1)
);
INSERT INTO serial_series (series, next_serial) VALUES ('receipts', 1);

CREATE TABLE serial_ranges (
    first_serial  INTEGER PRIMARY KEY,
    last_serial   INTEGER NOT NULL UNIQUE CHECK (last_serial >= first_serial),
    device_id     TEXT NOT NULL REFERENCES devices (id),
    issued_by     TEXT NOT NULL REFERENCES users (id),
    issued_ms     INTEGER NOT NULL
);
CREATE INDEX serial_ranges_device ON serial_ranges (device_id);

-- The sync feed: every server-signed document phones pull, stored once with the exact
-- bytes signed. `seq` comes from `feed_head`, moved forward under its row lock inside the
-- writing transaction, so sequence order is commit order and a cursor never skips a row
-- that commits later. Who may see a row: policy → devices of the bank's agents;
-- assignment → devices on the approval's team; serial_range → that device; revocation →
-- devices that share a team with the revoked one.
CREATE TABLE feed_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL
);
INSERT INTO feed_head (id, last_seq) VALUES (1, 0);

CREATE TABLE sync_feed (
    seq          INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL
        CHECK (kind IN ('policy', 'assignment', 'serial_range', 'revocation')),
    -- What the document is about, unique per kind (`<bank>:<version>`, approval id, first
    -- serial, revoked device id): a document is created once.
    subject      TEXT NOT NULL,
    bank_id      TEXT REFERENCES banks (id),
    approval_id  TEXT REFERENCES approvals (id),
    device_id    TEXT REFERENCES devices (id),
    -- The JSON answered to phones as is (signed documents: `{body, signature}`).
    payload      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX sync_feed_approval ON sync_feed (approval_id);
CREATE INDEX sync_feed_device ON sync_feed (device_id);
