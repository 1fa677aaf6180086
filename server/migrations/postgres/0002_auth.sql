-- Sign-in state: console sessions and device bearer tokens, both stored as SHA-256 hex of
-- the secret (the secret is shown once, to its holder). Times are UTC milliseconds.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE device_tokens (
    token_hash   TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    device_id    TEXT NOT NULL UNIQUE REFERENCES devices (id),
    created_ms   BIGINT NOT NULL
);

-- Who revoked a device and why (shown to admins; no personal data).
ALTER TABLE devices ADD COLUMN revoked_reason TEXT;
