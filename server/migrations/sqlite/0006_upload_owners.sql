-- An upload belongs to the device that created it (issue 11): one row per (digest, length,
-- device), so a device never joins, resumes or writes into another device's upload. Two
-- devices sending the same blob each have their own upload (and partial file); whichever
-- finishes first installs the blob, and the other's upload is then reported complete.
-- SQLite cannot change a table's UNIQUE constraint in place: the table is rebuilt.
CREATE TABLE uploads_by_device (
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
    UNIQUE (sha256, length_bytes, created_by)
);
INSERT INTO uploads_by_device (id, sha256, length_bytes, offset_bytes, created_by, created_ms,
    updated_ms, completed_ms, lease_token, lease_until_ms)
SELECT id, sha256, length_bytes, offset_bytes, created_by, created_ms, updated_ms,
    completed_ms, lease_token, lease_until_ms FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_by_device RENAME TO uploads;
