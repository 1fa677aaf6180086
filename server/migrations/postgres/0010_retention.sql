-- Retention, legal hold and destruction of evidence (E04). The retention period itself is
-- the bank's policy value `retention_days` (at least 730 days, signed with the policy);
-- this step keeps the holds, the destruction requests with their second person's decision,
-- the signed certificates, and marks destroyed bundles. Times are UTC milliseconds.

-- A legal hold on a whole case (visit_id NULL) or on one visit of it: while it is not
-- lifted, none of the evidence it covers may be destroyed. Lifted by a person, with a
-- reason; never deleted.
CREATE TABLE legal_holds (
    id           TEXT PRIMARY KEY,
    bank_id      TEXT NOT NULL REFERENCES banks (id),
    case_id      TEXT NOT NULL REFERENCES cases (id),
    visit_id     TEXT,
    -- The matter it serves, e.g. a court's case number.
    reference    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    placed_by    TEXT NOT NULL REFERENCES users (id),
    placed_ms    BIGINT NOT NULL,
    lifted_by    TEXT REFERENCES users (id),
    lifted_ms    BIGINT,
    lift_reason  TEXT,
    CHECK ((lifted_ms IS NULL) = (lifted_by IS NULL)),
    CHECK ((lifted_ms IS NULL) = (lift_reason IS NULL))
);
CREATE INDEX legal_holds_case ON legal_holds (case_id, lifted_ms);
CREATE INDEX legal_holds_bank ON legal_holds (bank_id, placed_ms);

-- A bank's request to destroy a visit's evidence (or every visit of a case: visit_id NULL),
-- waiting for a second person (an administrator of the bank other than the requester).
CREATE TABLE destruction_requests (
    id              TEXT PRIMARY KEY,
    bank_id         TEXT NOT NULL REFERENCES banks (id),
    case_id         TEXT NOT NULL REFERENCES cases (id),
    visit_id        TEXT,
    -- The bank's own reference for its request (its letter's number).
    bank_reference  TEXT NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL REFERENCES users (id),
    requested_ms    BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'destroyed', 'refused')),
    decided_by      TEXT REFERENCES users (id),
    decided_ms      BIGINT,
    -- Why it was refused at approval (the rule and its date or hold), language-neutral.
    refusal         TEXT,
    certificate_id  TEXT,
    CHECK ((status = 'pending') = (decided_ms IS NULL)),
    CHECK ((status = 'refused') = (refusal IS NOT NULL)),
    CHECK ((status = 'destroyed') = (certificate_id IS NOT NULL))
);
CREATE INDEX destruction_requests_bank ON destruction_requests (bank_id, requested_ms);

-- The signed certificate of a destruction: the exact JSON bytes signed and the server key's
-- detached signature over them (Ed25519: `openssl pkeyutl -verify -rawin`).
CREATE TABLE destruction_certificates (
    id          TEXT PRIMARY KEY,
    bank_id     TEXT NOT NULL REFERENCES banks (id),
    request_id  TEXT NOT NULL UNIQUE REFERENCES destruction_requests (id),
    document    BYTEA NOT NULL,
    signature   BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- A destroyed bundle keeps its row (manifest digest, log index, receipt): the transparency
-- log is append-only; only its blobs leave the blob store.
ALTER TABLE bundles ADD COLUMN destroyed_ms BIGINT;
ALTER TABLE bundles ADD COLUMN destruction_certificate_id TEXT;
