-- Receipts (C02, C03): every receipt a committed bundle issued and every serial it voided,
-- read from the verified manifest at commit (accepted or quarantined alike: evidence is
-- never refused for a business reason), in the commit's own transaction; each receipt's
-- deposit as the bank's manager reconciles it; and the flags the deposit check raises.
-- Times are UTC milliseconds; days are `YYYY-MM-DD` in the bank's zone (the zone of the
-- policy the visit ran under).
--
-- A serial is issued once server-wide (one series, ranges never overlap), so it is the key:
-- a bundle committed again, or a second bundle of the same visit, never doubles a receipt.
-- A receipt is recorded only when its serial lies in a range the server issued to the
-- phone the receipt names, and that phone is on the server's own approved team of the
-- visit (a colluding pair cannot take another phone's, or another bank's, serial).
CREATE TABLE receipts (
    serial         INTEGER PRIMARY KEY CHECK (serial >= 1),
    bank_id        TEXT NOT NULL REFERENCES banks (id),
    -- Not foreign keys, as in `bundles`: evidence for an unknown case is kept too.
    case_id        TEXT NOT NULL,
    case_ref       TEXT NOT NULL,
    visit_id       TEXT NOT NULL,
    bundle_id      TEXT NOT NULL REFERENCES bundles (id),
    -- The phone whose issued range the serial comes from.
    device_id      TEXT NOT NULL,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    currency       TEXT NOT NULL,
    method         TEXT NOT NULL CHECK (method IN ('cash', 'cheque')),
    -- Debtor-side personal data: shown only to the bank's own managers, never logged.
    payer_name     TEXT NOT NULL,
    payer_role     TEXT NOT NULL,
    -- The receipt's anchored time, and its day in the bank's zone.
    issued_ms      INTEGER NOT NULL,
    issued_day     TEXT NOT NULL CHECK (length(issued_day) = 10),
    -- The end of the deposit deadline's last day in the bank's zone (C03).
    due_ms         INTEGER NOT NULL,
    recorded_ms    INTEGER NOT NULL,
    -- The deposit, as a manager of the bank marked it once.
    deposit_ref    TEXT,
    deposit_day    TEXT CHECK (deposit_day IS NULL OR length(deposit_day) = 10),
    deposited_ms   INTEGER,
    deposited_by   TEXT REFERENCES users (id),
    -- When the deposit check found it not deposited by its deadline.
    overdue_ms     INTEGER,
    CHECK ((deposit_ref IS NULL) = (deposited_ms IS NULL)),
    CHECK ((deposit_day IS NULL) = (deposited_ms IS NULL)),
    CHECK ((deposited_by IS NULL) = (deposited_ms IS NULL))
);
CREATE INDEX receipts_bank_issued ON receipts (bank_id, issued_ms, serial);
CREATE INDEX receipts_bank_day ON receipts (bank_id, issued_day);
CREATE INDEX receipts_undeposited ON receipts (due_ms) WHERE deposited_ms IS NULL;

-- Voided serials with their reason: of an issued receipt (co-signed) or of a number
-- reserved and abandoned before co-signing. Never deleted. A void counts for a receipt of
-- the same visit only (a void is an event of the visit's own log), so a bundle of another
-- visit cannot void, nor take the place of the void of, someone else's receipt.
CREATE TABLE receipt_voids (
    serial       INTEGER NOT NULL CHECK (serial >= 1),
    bank_id      TEXT NOT NULL REFERENCES banks (id),
    visit_id     TEXT NOT NULL,
    bundle_id    TEXT NOT NULL REFERENCES bundles (id),
    reason       TEXT NOT NULL,
    voided_ms    INTEGER NOT NULL,
    recorded_ms  INTEGER NOT NULL,
    PRIMARY KEY (serial, visit_id)
);
CREATE INDEX receipt_voids_bank ON receipt_voids (bank_id, voided_ms);

-- What the deposit check escalates, shown on the console's receipts page and reports: one
-- row per receipt and kind (`overdue`: not deposited by its deadline, C03).
CREATE TABLE receipt_flags (
    serial      INTEGER NOT NULL REFERENCES receipts (serial),
    kind        TEXT NOT NULL CHECK (kind IN ('overdue')),
    bank_id     TEXT NOT NULL REFERENCES banks (id),
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (serial, kind)
);
CREATE INDEX receipt_flags_bank ON receipt_flags (bank_id, created_ms);
