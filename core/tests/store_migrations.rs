//! The device store's schema history: a phone in the field may hold a database written by
//! any earlier version of the app. Each one must upgrade, keep its data, and end with the
//! very schema a fresh install gets; a newer database is refused; a failed upgrade leaves
//! the file as it was.

use std::path::Path;

use rusqlite::Connection;
use tandem_core::crypto::{FieldCipher, SignatureAlgorithm, SoftwareSigner};
use tandem_core::model::{
    AddressId, AgentId, Approval, ApprovalId, AuthorisationLetter, BankId, Case, CaseId,
    CaseStatus, Debtor, DeviceId, Entrustment, EventKind, EventTime, Fen, MaskedCardNumber,
    MaskedIdNumber, Policy, PromiseAuthorisation, ReceiptSerial, Signed, VisitId, VisitState,
    VisitTicket,
};
use tandem_core::store::schema::{MIGRATIONS, Migration, SCHEMA_VERSION, migrate, user_version};
use tandem_core::store::{DeviceStore, PolicyUpdate, StoreError};

const KEY: [u8; 32] = [0x42; 32];

/// Rows as the code of each schema version wrote them.
struct OldRows {
    device: DeviceId,
    policy: Signed<Policy>,
    case: Signed<Case>,
    case_id: CaseId,
    approval: Signed<Approval>,
    approval_id: ApprovalId,
    ticket: Signed<VisitTicket>,
    visit: VisitId,
    /// A teammate's phone the server revoked (schema 5).
    revoked: DeviceId,
}

fn old_rows(bank: BankId) -> OldRows {
    let (server, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let case_id = CaseId::new();
    let approval_id = ApprovalId::new();
    let visit = VisitId::new();
    let case = Case {
        id: case_id,
        bank_id: bank,
        case_ref: "CMB-7731".into(),
        card: MaskedCardNumber::mask("6225 8812 3456 1234").unwrap(),
        debtor: Debtor {
            name: "李四".into(),
            id_number: MaskedIdNumber::mask("110105194912310021").unwrap(),
            phone: None,
        },
        addresses: vec![],
        entrustment: Entrustment {
            start_ms: 10,
            end_ms: 20,
            extended_until_ms: None,
        },
        status: CaseStatus::Active,
        outstanding: Fen(99_00),
        health_flag: None,
    };
    let approval = Approval {
        id: approval_id,
        bank_id: bank,
        case_id,
        address_ids: vec![AddressId::new()],
        team: vec![],
        valid_from_ms: 11,
        valid_until_ms: 19,
        letter: AuthorisationLetter {
            number: "L-1".into(),
            valid_until_ms: 30,
        },
        cash: None,
        promise: PromiseAuthorisation::default(),
        appointment: None,
        templates: vec![],
        health_review_done: false,
        policy_version: 3,
        approved_at_ms: 9,
    };
    let ticket = VisitTicket {
        visit_id: visit,
        approval_id,
        nonce: "ff".into(),
        issued_at_ms: 12,
    };
    let policy = Policy {
        version: 3,
        ..Policy::defaults(bank)
    };
    OldRows {
        device: DeviceId::new(),
        policy: Signed::sign(&policy, &server).unwrap(),
        case: Signed::sign(&case, &server).unwrap(),
        case_id,
        approval: Signed::sign(&approval, &server).unwrap(),
        approval_id,
        ticket: Signed::sign(&ticket, &server).unwrap(),
        visit,
        revoked: DeviceId::new(),
    }
}

fn sealed<T>(context: &str, signed: &Signed<T>) -> Vec<u8> {
    let json = serde_json::to_vec(signed).unwrap();
    FieldCipher::new(&KEY)
        .unwrap()
        .encrypt(context, &json)
        .unwrap()
}

/// Writes the representative rows of schema `version` (its own tables only).
fn fill(conn: &Connection, version: u32, rows: &OldRows) {
    match version {
        1 => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
                [rows.device.to_string().into_bytes()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO policies (bank_id, version, body, signature) VALUES (?1, 3, ?2, ?3)",
                rusqlite::params![
                    rows.policy_bank(),
                    rows.policy.body,
                    serde_json::to_string(&rows.policy.signature).unwrap()
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO cases (id, bank_id, valid_from_ms, valid_until_ms, document)
                 VALUES (?1, ?2, 10, 20, ?3)",
                rusqlite::params![
                    rows.case_id.to_string(),
                    rows.policy_bank(),
                    sealed(&format!("case/{}", rows.case_id), &rows.case)
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO approvals (id, bank_id, case_id, valid_from_ms, valid_until_ms,
                     document) VALUES (?1, ?2, ?3, 11, 19, ?4)",
                rusqlite::params![
                    rows.approval_id.to_string(),
                    rows.policy_bank(),
                    rows.case_id.to_string(),
                    sealed(&format!("approval/{}", rows.approval_id), &rows.approval)
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tickets (visit_id, approval_id, issued_at_ms, document)
                 VALUES (?1, ?2, 12, ?3)",
                rusqlite::params![
                    rows.visit.to_string(),
                    rows.approval_id.to_string(),
                    sealed(&format!("ticket/{}", rows.visit), &rows.ticket)
                ],
            )
            .unwrap();
        }
        2 => {
            conn.execute(
                "INSERT INTO visits (id, approval_id, case_id, agent_id, state, checked_in_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'checked_in', 15)",
                rusqlite::params![
                    rows.visit.to_string(),
                    rows.approval_id.to_string(),
                    rows.case_id.to_string(),
                    rows.device.to_string()
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO evidence (visit_id, digest, size, media_type, role)
                 VALUES (?1, ?2, 4, 'image/jpeg', 'original')",
                rusqlite::params![rows.visit.to_string(), "ab".repeat(32)],
            )
            .unwrap();
        }
        3 => {
            conn.execute(
                "INSERT INTO answered_nonces (nonce, visit_id, answered_at_ms)
                 VALUES (?1, ?2, 16)",
                rusqlite::params!["09".repeat(16), rows.visit.to_string()],
            )
            .unwrap();
        }
        4 => {
            conn.execute(
                "INSERT INTO receipt_serials (serial, visit_id, state, reserved_at_ms)
                 VALUES (42, ?1, 'reserved', 17)",
                rusqlite::params![rows.visit.to_string()],
            )
            .unwrap();
        }
        5 => {
            conn.execute(
                "INSERT INTO revoked_devices (device_id, agent_id, revoked_at_ms, document)
                 VALUES (?1, ?2, 18, '{}')",
                rusqlite::params![rows.revoked.to_string(), AgentId::new().to_string()],
            )
            .unwrap();
        }
        _ => panic!("no representative rows for schema version {version}: add them here"),
    }
}

impl OldRows {
    fn policy_bank(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.policy.body).unwrap();
        v["bank_id"].as_str().unwrap().to_owned()
    }
}

/// The schema as SQLite records it, whitespace-normalised, in a stable order.
fn schema_of(path: &Path) -> Vec<(String, String, String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |row| {
        let sql: String = row.get(3)?;
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            sql.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn fresh_schema() -> Vec<(String, String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    drop(DeviceStore::open(&path, &KEY).unwrap());
    schema_of(&path)
}

fn version_of(path: &Path) -> u32 {
    user_version(&Connection::open(path).unwrap()).unwrap()
}

/// A database left at `version` by an older app, with that version's rows.
fn database_at(path: &Path, version: u32, rows: &OldRows) {
    let mut conn = Connection::open(path).unwrap();
    migrate(&mut conn, MIGRATIONS, version).unwrap();
    for v in 1..=version {
        fill(&conn, v, rows);
    }
    assert_eq!(user_version(&conn).unwrap(), version);
}

#[test]
fn every_earlier_schema_upgrades_keeps_its_data_and_matches_a_fresh_one() {
    let fresh = fresh_schema();
    assert!(!fresh.is_empty());
    for version in 0..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let bank = BankId::new();
        let rows = old_rows(bank);
        database_at(&path, version, &rows);

        let store = DeviceStore::open(&path, &KEY).unwrap();
        if version >= 1 {
            store
                .read(|tx| {
                    assert_eq!(tx.device_id()?, Some(rows.device));
                    assert_eq!(tx.policy(bank)?, Some(rows.policy.clone()));
                    assert_eq!(tx.case(rows.case_id)?, Some(rows.case.clone()));
                    assert_eq!(tx.approval(rows.approval_id)?, Some(rows.approval.clone()));
                    assert_eq!(tx.ticket(rows.visit)?, Some(rows.ticket.clone()));
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            assert_eq!(
                store.write(|tx| tx.put_policy(&rows.policy)).unwrap(),
                PolicyUpdate::AlreadyHeld
            );
        }
        if version >= 2 {
            store
                .read(|tx| {
                    let visit = tx.visit(rows.visit)?.expect("the visit survived");
                    assert_eq!(visit.visit.state, VisitState::CheckedIn);
                    assert_eq!(tx.evidence(rows.visit)?.len(), 1);
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
        if version >= 3 {
            assert!(store.read(|tx| tx.nonce_answered(&[9; 16])).unwrap());
        }
        if version >= 4 {
            let kept = store.read(|tx| tx.serial_entry(ReceiptSerial(42))).unwrap();
            assert!(kept.is_some(), "the reserved receipt number survived");
        }
        if version >= 5 {
            let revoked = store.read(|tx| tx.revoked_at(rows.revoked)).unwrap();
            assert_eq!(revoked, Some(18), "the revoked partner survived");
        }
        // What the steps added work on the upgraded file: a visit's log, answered nonces,
        // receipt numbers.
        let agent = AgentId::new();
        let visit = VisitId::new();
        store
            .write(|tx| {
                tx.create_visit(visit, rows.approval_id, rows.case_id, agent)?;
                tx.append_event(
                    visit,
                    EventKind::Note {
                        text: "after upgrade".into(),
                    },
                    EventTime {
                        wall_ms: 1,
                        anchor_ms: None,
                        since_anchor_ms: None,
                    },
                    None,
                    agent,
                )?;
                assert!(tx.record_answered_nonce(&[7; 16], visit, 1)?);
                assert!(!tx.record_answered_nonce(&[7; 16], visit, 2)?, "a replay");
                tx.reserve_serial(ReceiptSerial(1), visit, 3)?;
                assert!(tx.void_serial(ReceiptSerial(1), "abandoned before co-signing")?);
                assert!(tx.claim_audio_segment(visit, "recording-1", 0)?);
                assert!(
                    !tx.claim_audio_segment(visit, "recording-1", 0)?,
                    "chained once"
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.read(|tx| tx.verify_visit_chain(visit)).unwrap();
        assert!(store.read(|tx| tx.nonce_answered(&[7; 16])).unwrap());
        drop(store);

        assert_eq!(version_of(&path), SCHEMA_VERSION, "from version {version}");
        assert_eq!(schema_of(&path), fresh, "upgraded from version {version}");
    }
}

#[test]
fn a_database_from_a_newer_app_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    drop(DeviceStore::open(&path, &KEY).unwrap());
    let newer = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let before = schema_of(&path);

    let err = DeviceStore::open(&path, &KEY).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, supported }
            if found == newer && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("update the app"), "{err}");
    assert_eq!(version_of(&path), newer);
    assert_eq!(schema_of(&path), before);
}

#[test]
fn the_upgrader_itself_never_downgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    let mut conn = Connection::open(&path).unwrap();
    migrate(&mut conn, MIGRATIONS, SCHEMA_VERSION).unwrap();
    let err = migrate(&mut conn, MIGRATIONS, 1).unwrap_err();
    assert!(matches!(
        err,
        StoreError::NewerSchema { found, supported: 1 } if found == SCHEMA_VERSION
    ));
    assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
}

fn with_broken_last_step() -> Vec<Migration> {
    let mut steps: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|m| Migration {
            version: m.version,
            name: m.name,
            apply: m.apply,
        })
        .collect();
    steps.push(Migration {
        version: SCHEMA_VERSION + 1,
        name: "outbox (broken)",
        // Half of it succeeds before it fails: that half must not survive either.
        apply: |tx| {
            tx.execute_batch(
                "CREATE TABLE outbox (id INTEGER PRIMARY KEY);
                 INSERT INTO no_such_table VALUES (1);",
            )
        },
    });
    steps
}

#[test]
fn a_failing_step_rolls_the_whole_upgrade_back() {
    let target = SCHEMA_VERSION + 1;
    for start in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let rows = old_rows(BankId::new());
        database_at(&path, start, &rows);
        let before = schema_of(&path);

        let mut conn = Connection::open(&path).unwrap();
        let err = migrate(&mut conn, &with_broken_last_step(), target).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version, .. } if version == target),
            "{err:?}"
        );
        drop(conn);
        assert_eq!(version_of(&path), start, "from version {start}");
        assert_eq!(schema_of(&path), before, "from version {start}");

        // The untouched file still opens with the current code, data intact.
        let store = DeviceStore::open(&path, &KEY).unwrap();
        if start >= 1 {
            let case = store.read(|tx| tx.case(rows.case_id)).unwrap();
            assert_eq!(case, Some(rows.case.clone()));
        }
    }
}

#[test]
fn a_step_list_with_a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("device.db")).unwrap();
    let gap = [Migration {
        version: 2,
        name: "skips version 1",
        apply: |_| Ok(()),
    }];
    assert!(matches!(
        migrate(&mut conn, &gap, 2),
        Err(StoreError::MigrationPlan { target: 2, .. })
    ));
    assert!(matches!(
        migrate(&mut conn, MIGRATIONS, SCHEMA_VERSION + 1),
        Err(StoreError::MigrationPlan { .. })
    ));
    assert_eq!(user_version(&conn).unwrap(), 0);
}
