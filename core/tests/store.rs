//! The phone's device store: documents kept exactly, debtor data never on disk in clear,
//! an append-only event chain whose tampering is found, and a lifecycle that only moves
//! forward. Actors: a thief with a lost phone (reads the files), a malicious insider
//! editing the database after the fact (THREATS.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tandem_core::crypto::{
    Digest, FieldCipher, PublicKey, SignatureAlgorithm, Signer as _, SoftwareSigner, sha256,
};
use tandem_core::model::{
    AddressId, AgentId, Approval, ApprovalId, ApprovedAddress, AuthorisationLetter, BankId, Case,
    CaseId, CaseStatus, ChainError, Debtor, DeviceId, Entrustment, Event, EventKind, EventTime,
    Fen, MaskedCardNumber, MaskedIdNumber, Policy, PromiseAuthorisation, Signed, TimeAnchor,
    VisitId, VisitState, VisitTicket,
};
use tandem_core::place::{Coordinate, Datum};
use tandem_core::store::{
    DeviceStore, EvidenceItem, EvidenceRole, PolicyUpdate, StoreError, VisitRecord,
};

const KEY: [u8; 32] = [0x5a; 32];
const DEBTOR_NAME: &str = "欧阳娜娜";
const DEBTOR_PHONE: &str = "13912345678";
const ADDRESS_TEXT: &str = "北京市朝阳区建国路88号3单元502室";
const NOTE_TEXT: &str = "债务人表示下月初还清全部欠款";

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: DeviceStore,
    server: SoftwareSigner,
    bank: BankId,
    case: Signed<Case>,
    case_id: CaseId,
    approval: Signed<Approval>,
    approval_id: ApprovalId,
    agent: AgentId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    let store = DeviceStore::open(&path, &KEY).unwrap();
    let (server, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let bank = BankId::new();
    let case = Signed::sign(&case_doc(CaseId::new(), bank), &server).unwrap();
    let case_id = CaseId(case_id_of(&case));
    let approval_doc = approval_doc(case_id, bank);
    let approval_id = approval_doc.id;
    let approval = Signed::sign(&approval_doc, &server).unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
        server,
        bank,
        case,
        case_id,
        approval,
        approval_id,
        agent: AgentId::new(),
    }
}

fn case_id_of(case: &Signed<Case>) -> uuid::Uuid {
    let v: serde_json::Value = serde_json::from_str(&case.body).unwrap();
    v["id"].as_str().unwrap().parse().unwrap()
}

fn case_doc(id: CaseId, bank_id: BankId) -> Case {
    Case {
        id,
        bank_id,
        case_ref: "ICBC-2026-000417".into(),
        card: MaskedCardNumber::mask("6222 0212 3456 7890").unwrap(),
        debtor: Debtor {
            name: DEBTOR_NAME.into(),
            id_number: MaskedIdNumber::mask("110105194912310021").unwrap(),
            phone: Some(DEBTOR_PHONE.into()),
        },
        addresses: vec![ApprovedAddress {
            id: AddressId::new(),
            text: ADDRESS_TEXT.into(),
            position: Coordinate::new(399_087_202, 1_163_974_799, Datum::Gcj02).unwrap(),
        }],
        entrustment: Entrustment {
            start_ms: 1_790_000_000_000,
            end_ms: 1_800_000_000_000,
            extended_until_ms: Some(1_805_000_000_000),
        },
        status: CaseStatus::Active,
        outstanding: Fen(1_234_500),
        health_flag: None,
    }
}

fn approval_doc(case_id: CaseId, bank_id: BankId) -> Approval {
    Approval {
        id: ApprovalId::new(),
        bank_id,
        case_id,
        address_ids: vec![AddressId::new()],
        team: vec![],
        valid_from_ms: 1_795_000_000_000,
        valid_until_ms: 1_795_600_000_000,
        letter: AuthorisationLetter {
            number: "WT-2026-0099".into(),
            valid_until_ms: 1_796_000_000_000,
        },
        cash: None,
        promise: PromiseAuthorisation::default(),
        appointment: None,
        templates: vec![],
        health_review_done: false,
        policy_version: 1,
        approved_at_ms: 1_794_900_000_000,
    }
}

fn at(ms: i64) -> EventTime {
    EventTime {
        wall_ms: ms,
        anchor_ms: Some(ms - 5_000),
        since_anchor_ms: Some(5_000),
    }
}

fn note(text: &str) -> EventKind {
    EventKind::Note { text: text.into() }
}

impl Fixture {
    fn new_visit(&self) -> VisitId {
        let visit = VisitId::new();
        self.store
            .write(|tx| tx.create_visit(visit, self.approval_id, self.case_id, self.agent))
            .unwrap();
        visit
    }

    fn append_notes(&self, visit: VisitId, n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                self.store
                    .write(|tx| {
                        tx.append_event(
                            visit,
                            note(&format!("note {i}")),
                            at(1_795_000_000_000 + i as i64),
                            None,
                            self.agent,
                        )
                    })
                    .unwrap()
            })
            .collect()
    }

    fn visit(&self, visit: VisitId) -> VisitRecord {
        self.store.read(|tx| tx.visit(visit)).unwrap().unwrap()
    }

    fn verify(&self, visit: VisitId) -> Result<(), StoreError> {
        self.store.read(|tx| tx.verify_visit_chain(visit)).map(drop)
    }

    /// What someone with the file (and SQL) does: drop the guards, then edit rows.
    fn tamper(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER IF EXISTS events_never_change;
             DROP TRIGGER IF EXISTS events_go_only_with_purge;",
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

fn database_files(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(bytes) = std::fs::read(&file) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn signed_documents_come_back_byte_for_byte() {
    let f = fixture();
    let visit = VisitId::new();
    let ticket = Signed::sign(
        &VisitTicket {
            visit_id: visit,
            approval_id: f.approval_id,
            nonce: "9f86d081884c7d65".into(),
            issued_at_ms: 1_795_000_100_000,
        },
        &f.server,
    )
    .unwrap();
    let policy = Signed::sign(&Policy::defaults(f.bank), &f.server).unwrap();
    let anchor = Signed::sign(
        &TimeAnchor {
            device_id: DeviceId::new(),
            server_time_ms: 1_795_000_000_000,
            nonce: "a1b2".into(),
            shifted_by_ms: None,
        },
        &f.server,
    )
    .unwrap();
    f.store
        .write(|tx| {
            tx.put_case(&f.case)?;
            tx.put_approval(&f.approval)?;
            tx.put_ticket(&ticket)?;
            tx.set_time_anchor(&anchor)?;
            tx.put_policy(&policy)
        })
        .unwrap();

    let key = f.server.public_key();
    f.store
        .read(|tx| {
            let case = tx.case(f.case_id)?.unwrap();
            assert_eq!(case, f.case);
            assert_eq!(case.digest(), f.case.digest());
            assert_eq!(case.verify(&key).unwrap().debtor.name, DEBTOR_NAME);
            assert_eq!(tx.approval(f.approval_id)?.unwrap(), f.approval);
            assert_eq!(tx.approvals_for_case(f.case_id)?, vec![f.approval.clone()]);
            assert_eq!(tx.ticket(visit)?.unwrap(), ticket);
            assert_eq!(tx.policy(f.bank)?.unwrap(), policy);
            assert_eq!(tx.time_anchor()?.unwrap(), anchor);
            tx.policy(f.bank)?.unwrap().verify(&key).unwrap();
            assert_eq!(tx.case(CaseId::new())?, None);
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn an_older_policy_never_replaces_a_newer_one() {
    let f = fixture();
    let v1 = Signed::sign(&Policy::defaults(f.bank), &f.server).unwrap();
    let v2_doc = Policy {
        version: 2,
        geofence_radius_m: 300,
        ..Policy::defaults(f.bank)
    };
    let v2 = Signed::sign(&v2_doc, &f.server).unwrap();
    let put = |p: &Signed<Policy>| f.store.write(|tx| tx.put_policy(p));

    assert_eq!(put(&v2).unwrap(), PolicyUpdate::Stored);
    assert_eq!(put(&v1).unwrap(), PolicyUpdate::OlderIgnored { held: 2 });
    assert_eq!(put(&v2).unwrap(), PolicyUpdate::AlreadyHeld);
    let equivocation = Signed::sign(
        &Policy {
            geofence_radius_m: 5_000,
            ..v2_doc
        },
        &f.server,
    )
    .unwrap();
    assert!(matches!(
        put(&equivocation),
        Err(StoreError::PolicyConflict { version: 2, .. })
    ));
    assert_eq!(f.store.read(|tx| tx.policy(f.bank)).unwrap(), Some(v2));
}

#[test]
fn debtor_data_and_notes_never_reach_the_disk_in_clear() {
    let f = fixture();
    f.store
        .write(|tx| {
            tx.put_case(&f.case)?;
            tx.put_approval(&f.approval)
        })
        .unwrap();
    let visit = f.new_visit();
    f.store
        .write(|tx| tx.append_event(visit, note(NOTE_TEXT), at(1), None, f.agent))
        .unwrap();

    let check = |bytes: &[u8]| {
        // Control: the clear index columns are there, so we are reading the right bytes.
        assert!(contains(bytes, &f.case_id.to_string()));
        for secret in [
            DEBTOR_NAME,
            DEBTOR_PHONE,
            ADDRESS_TEXT,
            NOTE_TEXT,
            "ICBC-2026",
        ] {
            assert!(!contains(bytes, secret), "{secret:?} found in clear");
        }
    };
    // While open, fresh writes sit in the WAL.
    check(&database_files(&f.path));
    let path = f.path.clone();
    let dir = f._dir;
    drop(f.store);
    // After close, the WAL is checkpointed into the main file.
    check(&database_files(&path));
    drop(dir);
}

#[test]
fn a_case_ciphertext_copied_onto_another_row_does_not_decrypt() {
    let f = fixture();
    let other = Signed::sign(&case_doc(CaseId::new(), f.bank), &f.server).unwrap();
    let other_id = CaseId(case_id_of(&other));
    f.store
        .write(|tx| {
            tx.put_case(&f.case)?;
            tx.put_case(&other)
        })
        .unwrap();
    f.tamper(&format!(
        "UPDATE cases SET document = (SELECT document FROM cases WHERE id = '{}') WHERE id = '{}'",
        f.case_id, other_id
    ));
    let err = f.store.read(|tx| tx.case(other_id)).unwrap_err();
    match err {
        StoreError::Undecryptable { context } => assert_eq!(context, format!("case/{other_id}")),
        other => panic!("expected Undecryptable, got {other:?}"),
    }
    assert_eq!(f.store.read(|tx| tx.case(f.case_id)).unwrap(), Some(f.case));
}

#[test]
fn a_store_opened_with_another_key_cannot_read_the_cases() {
    let f = fixture();
    f.store.write(|tx| tx.put_case(&f.case)).unwrap();
    let path = f.path.clone();
    drop(f.store);
    let thief = DeviceStore::open(&path, &[0x11; 32]).unwrap();
    assert!(matches!(
        thief.read(|tx| tx.case(f.case_id)),
        Err(StoreError::Undecryptable { .. })
    ));
}

#[test]
fn appends_from_two_threads_form_one_unbroken_chain() {
    let f = Arc::new(fixture());
    let visit = f.new_visit();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 0..40 {
                    f.store
                        .write(|tx| {
                            tx.append_event(
                                visit,
                                note(&format!("thread {t} note {i}")),
                                at(i),
                                None,
                                f.agent,
                            )
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let head = f
        .store
        .read(|tx| tx.verify_visit_chain(visit))
        .unwrap()
        .unwrap();
    assert_eq!(head.seq, 79);
    let events = f.store.read(|tx| tx.events(visit)).unwrap();
    assert_eq!(events.len(), 80);
    assert_eq!(head.digest, events[79].digest().unwrap());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
    }
}

#[test]
fn an_edited_event_ciphertext_is_reported_as_altered() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 4);
    f.verify(visit).unwrap();
    f.tamper(&format!(
        "UPDATE events SET sealed = CAST(substr(sealed, 1, 20)
             || CASE WHEN substr(sealed, 21, 1) = X'00' THEN X'01' ELSE X'00' END
             || substr(sealed, 22) AS BLOB)
         WHERE visit_id = '{visit}' AND seq = 2"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::EventAltered { seq: 2, .. })
    ));
}

#[test]
fn a_deleted_event_row_breaks_the_chain() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 4);
    f.tamper(&format!(
        "DELETE FROM events WHERE visit_id = '{visit}' AND seq = 2"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::ChainBroken {
            source: ChainError::OutOfSequence {
                position: 2,
                found: 3
            },
            ..
        })
    ));
}

#[test]
fn a_deleted_last_event_is_caught_by_the_head() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 3);
    f.tamper(&format!(
        "DELETE FROM events WHERE visit_id = '{visit}' AND seq = 2"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::ChainBroken {
            source: ChainError::HeadMismatch,
            ..
        })
    ));
}

#[test]
fn swapped_event_rows_are_reported_as_moved() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 4);
    f.tamper(&format!(
        "UPDATE events SET seq = 100 WHERE visit_id = '{visit}' AND seq = 1;
         UPDATE events SET seq = 1 WHERE visit_id = '{visit}' AND seq = 2;
         UPDATE events SET seq = 2 WHERE visit_id = '{visit}' AND seq = 100;"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::EventMoved {
            seq: 1,
            written_as: 2,
            ..
        })
    ));
}

#[test]
fn an_edited_last_event_is_caught_by_the_head() {
    // An insider who also holds the store key re-encrypts a rewritten last event and fixes
    // its clear digest: only the head, kept in the visit row, still tells.
    let f = fixture();
    let visit = f.new_visit();
    let events = f.append_notes(visit, 3);
    let mut forged = events[2].clone();
    forged.kind = note("nothing was said about money");
    let bytes = forged.canonical_bytes().unwrap();
    let sealed = FieldCipher::new(&KEY)
        .unwrap()
        .encrypt(&format!("event/{visit}/2"), &bytes)
        .unwrap();
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute_batch("DROP TRIGGER events_never_change")
        .unwrap();
    conn.execute(
        "UPDATE events SET sealed = ?1, digest = ?2 WHERE visit_id = ?3 AND seq = 2",
        rusqlite::params![sealed, sha256(&bytes).to_hex(), visit.to_string()],
    )
    .unwrap();
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::ChainBroken {
            source: ChainError::HeadMismatch,
            ..
        })
    ));
}

#[test]
fn edited_clear_prev_or_digest_columns_are_reported() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 3);
    let fake = Digest([0xab; 32]).to_hex();
    f.tamper(&format!(
        "UPDATE events SET digest = '{fake}' WHERE visit_id = '{visit}' AND seq = 1"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::EventIndexMismatch {
            seq: 1,
            column: "digest",
            ..
        })
    ));
    f.tamper(&format!(
        "UPDATE events SET prev = '{fake}' WHERE visit_id = '{visit}' AND seq = 0"
    ));
    assert!(matches!(
        f.verify(visit),
        Err(StoreError::EventIndexMismatch {
            seq: 0,
            column: "prev",
            ..
        })
    ));
}

#[test]
fn events_cannot_be_edited_or_deleted_through_sql_while_the_visit_is_open() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 2);
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    let update = conn.execute("UPDATE events SET prev = digest", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM events", []);
    assert!(delete.unwrap_err().to_string().contains("purged"));
    f.verify(visit).unwrap();
}

#[test]
fn an_illegal_state_transition_is_refused() {
    let f = fixture();
    let visit = f.new_visit();
    let err = f
        .store
        .write(|tx| tx.set_visit_state(visit, VisitState::Sealed, 10))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::IllegalTransition {
            from: VisitState::Assigned,
            to: VisitState::Sealed,
            ..
        }
    ));
    assert_eq!(f.visit(visit).visit.state, VisitState::Assigned);

    for (state, ms) in [
        (VisitState::CheckedIn, 100),
        (VisitState::Active, 110),
        (VisitState::CheckedOut, 200),
        (VisitState::Sealed, 300),
    ] {
        f.store
            .write(|tx| tx.set_visit_state(visit, state, ms))
            .unwrap();
    }
    let v = f.visit(visit).visit;
    assert_eq!(v.state, VisitState::Sealed);
    assert_eq!(
        (v.checked_in_at_ms, v.checked_out_at_ms, v.sealed_at_ms),
        (Some(100), Some(200), Some(300))
    );
    assert!(matches!(
        f.store
            .write(|tx| tx.set_visit_state(visit, VisitState::Active, 400)),
        Err(StoreError::IllegalTransition {
            from: VisitState::Sealed,
            to: VisitState::Active,
            ..
        })
    ));
    assert!(matches!(
        f.store
            .write(|tx| tx.set_visit_state(VisitId::new(), VisitState::CheckedIn, 1)),
        Err(StoreError::VisitNotFound(_))
    ));
}

#[test]
fn a_sealed_visit_takes_no_more_events_or_evidence() {
    let f = fixture();
    let visit = f.new_visit();
    f.append_notes(visit, 1);
    for s in [
        VisitState::CheckedIn,
        VisitState::CheckedOut,
        VisitState::Sealed,
    ] {
        f.store.write(|tx| tx.set_visit_state(visit, s, 5)).unwrap();
    }
    let err = f
        .store
        .write(|tx| tx.append_event(visit, note("late"), at(9), None, f.agent))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VisitClosed {
            state: VisitState::Sealed,
            ..
        }
    ));
    let item = EvidenceItem {
        digest: sha256(b"late photo"),
        size: 10,
        media_type: "image/jpeg".into(),
        role: EvidenceRole::Original,
    };
    assert!(matches!(
        f.store.write(|tx| tx.add_evidence(visit, &item)),
        Err(StoreError::VisitClosed { .. })
    ));
    assert_eq!(f.store.read(|tx| tx.events(visit)).unwrap().len(), 1);
}

#[test]
fn the_store_reopens_after_drop_with_everything_intact() {
    let f = fixture();
    let device = DeviceId::new();
    let (_, pkcs8) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let server_key: PublicKey = f.server.public_key();
    f.store
        .write(|tx| {
            tx.set_device_id(device)?;
            tx.set_agent_id(f.agent)?;
            tx.set_sealed_device_key(&pkcs8)?;
            tx.set_server_public_key(&server_key)?;
            tx.set_sync_cursor("c-000042")?;
            tx.put_case(&f.case)?;
            tx.put_approval(&f.approval)
        })
        .unwrap();
    let visit = f.new_visit();
    let events = f.append_notes(visit, 3);
    let photo = EvidenceItem {
        digest: sha256(b"photo"),
        size: 4_000_000,
        media_type: "image/jpeg".into(),
        role: EvidenceRole::Original,
    };
    assert!(f.store.write(|tx| tx.add_evidence(visit, &photo)).unwrap());
    assert!(!f.store.write(|tx| tx.add_evidence(visit, &photo)).unwrap());
    let record = f.visit(visit);

    let Fixture {
        _dir, path, store, ..
    } = f;
    drop(store);
    let store = DeviceStore::open(&path, &KEY).unwrap();
    store
        .read(|tx| {
            assert_eq!(tx.device_id()?, Some(device));
            assert_eq!(tx.agent_id()?, Some(record.visit.agent_id));
            assert_eq!(tx.sealed_device_key()?.as_deref(), Some(pkcs8.as_slice()));
            assert_eq!(tx.server_public_key()?, Some(server_key.clone()));
            assert_eq!(tx.sync_cursor()?.as_deref(), Some("c-000042"));
            assert!(tx.case(record.visit.case_id)?.is_some());
            assert!(tx.approval(record.visit.approval_id)?.is_some());
            assert_eq!(tx.visit(visit)?, Some(record.clone()));
            assert_eq!(tx.events(visit)?, events);
            assert_eq!(tx.evidence(visit)?[0].item, photo);
            tx.verify_visit_chain(visit)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // The chain continues where it stopped.
    let next = store
        .write(|tx| {
            tx.append_event(
                visit,
                note("after restart"),
                at(5),
                None,
                record.visit.agent_id,
            )
        })
        .unwrap();
    assert_eq!((next.seq, next.prev), (3, events[2].digest().unwrap()));
}

#[test]
fn the_reader_sees_committed_writes_only() {
    let f = fixture();
    let visit = VisitId::new();
    f.store
        .write(|tx| {
            tx.create_visit(visit, f.approval_id, f.case_id, f.agent)?;
            // Inside the transaction the writer sees its own row; the reader does not.
            assert!(tx.visit(visit)?.is_some());
            assert_eq!(f.store.read(|r| r.visit(visit))?, None);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(f.store.read(|r| r.visit(visit)).unwrap().is_some());

    let abandoned = VisitId::new();
    let result: Result<(), StoreError> = f.store.write(|tx| {
        tx.create_visit(abandoned, f.approval_id, f.case_id, f.agent)?;
        tx.append_event(abandoned, note("never kept"), at(1), None, f.agent)?;
        Err(StoreError::VisitNotFound(abandoned))
    });
    assert!(result.is_err());
    assert_eq!(f.store.read(|r| r.visit(abandoned)).unwrap(), None);
    // The failed closure left the writer usable.
    f.append_notes(visit, 1);
}

#[test]
fn purging_an_acknowledged_visit_keeps_its_head_and_frees_its_blobs() {
    let f = fixture();
    let visit = f.new_visit();
    let events = f.append_notes(visit, 2);
    let shared = sha256(b"signature image used by two visits");
    let own = sha256(b"photo");
    let item = |digest, role| EvidenceItem {
        digest,
        size: 100,
        media_type: "image/png".into(),
        role,
    };
    let other_visit = f.new_visit();
    f.store
        .write(|tx| {
            tx.add_evidence(visit, &item(own, EvidenceRole::Original))?;
            tx.add_evidence(visit, &item(shared, EvidenceRole::Signature))?;
            tx.add_evidence(other_visit, &item(shared, EvidenceRole::Signature))
        })
        .unwrap();
    assert!(matches!(
        f.store
            .write(|tx| tx.add_evidence(visit, &item(own, EvidenceRole::Thumbnail))),
        Err(StoreError::EvidenceConflict { .. })
    ));
    assert!(matches!(
        f.store.write(|tx| tx.purge_visit(visit, 1)),
        Err(StoreError::IllegalTransition {
            from: VisitState::Assigned,
            ..
        })
    ));
    for s in [
        VisitState::CheckedIn,
        VisitState::CheckedOut,
        VisitState::Sealed,
        VisitState::Uploading,
        VisitState::Acknowledged,
    ] {
        f.store.write(|tx| tx.set_visit_state(visit, s, 7)).unwrap();
    }
    let freed = f.store.write(|tx| tx.purge_visit(visit, 8)).unwrap();
    assert_eq!(freed, vec![own]);

    let record = f.visit(visit);
    assert_eq!(record.visit.state, VisitState::Purged);
    assert_eq!(record.acknowledged_at_ms, Some(7));
    let head = record.head.unwrap();
    assert_eq!((head.seq, head.digest), (1, events[1].digest().unwrap()));
    assert!(matches!(
        f.store.read(|tx| tx.events(visit)),
        Err(StoreError::EventsPurged(v)) if v == visit
    ));
    let evidence = f.store.read(|tx| tx.evidence(visit)).unwrap();
    assert!(evidence.iter().all(|e| e.purged_at_ms == Some(8)));
    assert!(f.store.read(|tx| tx.blob_is_needed(shared)).unwrap());
    assert!(!f.store.read(|tx| tx.blob_is_needed(own)).unwrap());
}

#[test]
fn purging_a_case_removes_its_documents() {
    let f = fixture();
    let visit = VisitId::new();
    let ticket = Signed::sign(
        &VisitTicket {
            visit_id: visit,
            approval_id: f.approval_id,
            nonce: "00".into(),
            issued_at_ms: 1,
        },
        &f.server,
    )
    .unwrap();
    f.store
        .write(|tx| {
            tx.put_case(&f.case)?;
            tx.put_approval(&f.approval)?;
            tx.put_ticket(&ticket)
        })
        .unwrap();
    assert_eq!(
        f.store
            .write(|tx| tx.purge_case_documents(f.case_id))
            .unwrap(),
        3
    );
    f.store
        .read(|tx| {
            assert_eq!(tx.case(f.case_id)?, None);
            assert_eq!(tx.approval(f.approval_id)?, None);
            assert_eq!(tx.ticket(visit)?, None);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(!f.store.write(|tx| tx.delete_case(f.case_id)).unwrap());
}

#[test]
fn an_event_that_cannot_be_encoded_canonically_is_refused_and_nothing_is_kept() {
    let f = fixture();
    let visit = f.new_visit();
    // "e" + combining acute: not Unicode NFC, so it could not be hashed canonically.
    let err = f
        .store
        .write(|tx| tx.append_event(visit, note("cafe\u{301}"), at(1), None, f.agent))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EventUnencodable { .. }),
        "{err:?}"
    );
    assert_eq!(f.visit(visit).head, None);
    assert!(f.store.read(|tx| tx.events(visit)).unwrap().is_empty());
}
