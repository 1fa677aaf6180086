-- Foundation: banks, users and their bank scope, agents, enrollment codes, devices,
-- cases (masked card and ID numbers only) and policies. Times are UTC milliseconds.
CREATE TABLE banks (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    login          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('agent', 'manager', 'legal', 'admin')),
    -- argon2id PHC string; agents sign in with their enrolled device, so theirs may be empty.
    password_hash  TEXT CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    created_ms     BIGINT NOT NULL,
    disabled_ms    BIGINT,
    CHECK (role = 'agent' OR password_hash IS NOT NULL)
);

CREATE TABLE user_banks (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bank_id  TEXT NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, bank_id)
);

CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL UNIQUE REFERENCES users (id),
    employee_no  TEXT NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL
);

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    agent_id       TEXT NOT NULL REFERENCES agents (id),
    alg            TEXT NOT NULL CHECK (alg IN ('ed25519', 'ecdsa-p256-sha256')),
    public_key     BYTEA NOT NULL,
    kid            TEXT NOT NULL UNIQUE,
    enrolled_ms    BIGINT NOT NULL,
    revoked_at_ms  BIGINT
);

CREATE TABLE enrollment_codes (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    -- SHA-256 hex of the code: the code itself is shown once and never stored.
    code_hash   TEXT NOT NULL UNIQUE CHECK (length(code_hash) = 64),
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT,
    device_id   TEXT REFERENCES devices (id),
    CHECK ((used_ms IS NULL) = (device_id IS NULL))
);
CREATE INDEX enrollment_codes_agent ON enrollment_codes (agent_id);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    bank_id               TEXT NOT NULL REFERENCES banks (id),
    case_ref              TEXT NOT NULL,
    card_masked           TEXT NOT NULL CHECK (card_masked LIKE '**** **** **** ____'),
    debtor_name           TEXT NOT NULL,
    id_number_masked      TEXT NOT NULL CHECK (left(id_number_masked, 4) = '****'),
    outstanding_fen       BIGINT NOT NULL CHECK (outstanding_fen >= 0),
    status                TEXT NOT NULL,
    entrustment_start_ms  BIGINT NOT NULL,
    entrustment_end_ms    BIGINT NOT NULL,
    created_ms            BIGINT NOT NULL,
    UNIQUE (bank_id, case_ref)
);

CREATE TABLE case_addresses (
    id       TEXT PRIMARY KEY,
    case_id  TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    text     TEXT NOT NULL,
    lat_e7   INTEGER NOT NULL CHECK (lat_e7 BETWEEN -900000000 AND 900000000),
    lon_e7   INTEGER NOT NULL CHECK (lon_e7 BETWEEN -1800000000 AND 1800000000),
    datum    TEXT NOT NULL CHECK (datum IN ('wgs84', 'gcj02', 'bd09'))
);
CREATE INDEX case_addresses_case ON case_addresses (case_id);

CREATE TABLE policies (
    bank_id     TEXT NOT NULL REFERENCES banks (id),
    version     INTEGER NOT NULL CHECK (version >= 1),
    -- The policy as JSON (tandem_core::model::Policy); the server signs it when phones pull it.
    body        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (bank_id, version)
);
