-- Account security (A01) and the audit log. Times are UTC milliseconds.
--
-- The audit log is append-only: triggers refuse to change or delete a row, so an insider
-- with the server's database account cannot quietly rewrite who did what (a later step
-- hash-chains the rows). It holds no personal data beyond what is needed: the acting
-- user's id (none for an unauthenticated attempt), never a name typed at sign-in nor a
-- password.
CREATE TABLE audit_log (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms          BIGINT NOT NULL,
    -- Not a foreign key: the log outlives whatever it names and must never block a change.
    actor_user_id  TEXT,
    -- A stable name (`sign-in`, `password-changed`, …: `audit::AuditAction::as_str`).
    action         TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    subject_kind   TEXT NOT NULL CHECK (length(subject_kind) BETWEEN 1 AND 64),
    subject_id     TEXT,
    bank_id        TEXT,
    -- A small JSON object (counts, reasons), never personal data.
    detail         TEXT NOT NULL DEFAULT '{}',
    client_addr    TEXT,
    -- Why, when the law asks for a stated purpose (legal retrieval, A03).
    purpose        TEXT
);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, seq);
CREATE INDEX audit_log_subject ON audit_log (subject_kind, subject_id, seq);
CREATE INDEX audit_log_bank ON audit_log (bank_id, seq);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Failed sign-ins in a row and the lockout they lead to, per sign-in name, shared by every
-- server on this database and kept across restarts. Keyed by a keyed hash of the name as
-- typed (case folded), whether an account has it or not: an unknown name locks exactly as
-- a real one does, and is never stored.
CREATE TABLE login_failures (
    account_key      TEXT PRIMARY KEY CHECK (length(account_key) = 64),
    failures         INTEGER NOT NULL CHECK (failures >= 0),
    last_failed_ms   BIGINT NOT NULL,
    locked_until_ms  BIGINT
);

-- When the password was last set: a password older than the policy's age must be changed
-- before anything else. Existing accounts count from their creation; a row inserted
-- without it (0) must change its password at its first sign-in.
ALTER TABLE users ADD COLUMN password_changed_ms BIGINT NOT NULL DEFAULT 0;
UPDATE users SET password_changed_ms = created_ms;

-- Earlier password hashes (argon2id PHC strings), so a new password cannot be one of the
-- last few; only as many as the policy compares are kept.
CREATE TABLE password_history (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    replaced_ms    BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, replaced_ms);

-- Why a session ended: signed out, replaced by a sign-in elsewhere (one session per
-- account), or ended by a password change. The browser that held it is told which.
ALTER TABLE sessions ADD COLUMN revoked_reason TEXT
    CHECK (revoked_reason IN ('signed-out', 'replaced', 'password-changed'));
