-- Resumable blob uploads (tus 1.0). One row per (digest, length): every device sending the
-- same blob joins the same upload. The committed offset is the truth after a crash: bytes
-- are fsynced in `blobs/tmp/upload-<id>` before the offset covering them is committed.
-- A PATCH holds the lease (a random token and its expiry, renewed while it runs) so one
-- writer appends at a time on any number of servers. Times are UTC milliseconds.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL CHECK (length(sha256) = 64),
    length_bytes    BIGINT NOT NULL CHECK (length_bytes >= 0),
    offset_bytes    BIGINT NOT NULL DEFAULT 0
                    CHECK (offset_bytes >= 0 AND offset_bytes <= length_bytes),
    created_by      TEXT NOT NULL REFERENCES devices (id),
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    completed_ms    BIGINT,
    lease_token     TEXT,
    lease_until_ms  BIGINT,
    UNIQUE (sha256, length_bytes)
);
