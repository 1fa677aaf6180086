-- Account security (A01) and the audit log. Times are UTC milliseconds.
--
-- The audit log is append-only: triggers refuse to change or delete a row, so an insider
-- with the server's database account cannot quietly rewrite who did what. The rows are
-- hash-chained: `entry_hash` commits to the row's fields and to the previous row's hash
-- (`crate::audit::chain`), `audit_head` holds the newest position and hash (its row lock
-- orders appends across servers), and `audit_anchors` records each head appended to the
-- transparency log, so a rewrite or a cut is caught by `tandem audit verify` even by
-- someone who can drop the triggers. It holds no personal data beyond what is needed:
-- the acting user's id (none for an unauthenticated attempt), never a name typed at
-- sign-in nor a password.
CREATE TABLE audit_log (
    -- Given by `audit_head`: 1, 2, 3… without gaps.
    seq            BIGINT PRIMARY KEY CHECK (seq >= 1),
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
    purpose        TEXT,
    -- SHA-256 (hex) over the previous row's hash and this row's fields.
    entry_hash     TEXT NOT NULL CHECK (length(entry_hash) = 64)
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

-- The newest entry's position and chain hash (all zeros before the first).
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL CHECK (seq >= 0),
    hash  TEXT NOT NULL CHECK (length(hash) = 64)
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Each head appended to the transparency log (a leaf of its own kind:
-- `tandem_core::tlog::audit_head_leaf`), at most hourly.
CREATE TABLE audit_anchors (
    log_index    BIGINT PRIMARY KEY CHECK (log_index >= 0),
    audit_seq    BIGINT NOT NULL CHECK (audit_seq >= 1),
    head_hash    TEXT NOT NULL CHECK (length(head_hash) = 64),
    anchored_ms  BIGINT NOT NULL
);
CREATE INDEX audit_anchors_seq ON audit_anchors (audit_seq);
CREATE TRIGGER audit_anchors_no_change BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

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
