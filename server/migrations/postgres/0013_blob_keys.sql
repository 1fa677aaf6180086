-- Encryption at rest (issue 16): every stored blob is sealed (AES-256-GCM records, the
-- phone's format) under a key of its own; that key is kept here wrapped, by the bank's key
-- once a committed visit of that bank holds the blob, and by the master key before. Bank
-- keys are kept wrapped by the master key, which never reaches the database (a file, the
-- environment, or later a KMS). Destroying a bank's key (`tandem bank destroy`) leaves its
-- blobs unreadable wherever copies of them lie. Wrapped keys are base64 text.

-- One row: the master key's check value, so that a server given another master key (or
-- none) refuses to start instead of sealing blobs nobody can open.
CREATE TABLE keyring (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    master_check  TEXT NOT NULL,
    created_ms    BIGINT NOT NULL
);

CREATE TABLE bank_keys (
    bank_id       TEXT PRIMARY KEY REFERENCES banks (id),
    -- NULL once destroyed: the bank's blob keys can never be unwrapped again.
    wrapped       TEXT,
    created_ms    BIGINT NOT NULL,
    destroyed_ms  BIGINT,
    CHECK ((wrapped IS NULL) = (destroyed_ms IS NOT NULL))
);

CREATE TABLE blob_keys (
    sha256   TEXT NOT NULL CHECK (length(sha256) = 64),
    -- A bank id, or '' while no committed visit holds the blob (then wrapped by the master key).
    holder   TEXT NOT NULL,
    wrapped  TEXT NOT NULL,
    PRIMARY KEY (sha256, holder)
);
CREATE INDEX blob_keys_by_holder ON blob_keys (holder);
