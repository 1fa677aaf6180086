//! A phone applying pages of the server's feed: everything of a page and its cursor in one
//! transaction, or nothing. Refusals name the actor they stop (THREATS.md).

use std::sync::Arc;

use tandem_core::clock::ManualClock;
use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};
use tandem_core::model::{DeviceRevocation, Signed};
use tandem_core::phone::{ManualLocation, Phone, SyncChange, SyncPage};
use tandem_core::testing::{Member, World};

struct Setup {
    world: World,
    phone: Phone,
    me: Member,
    teammate: Member,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(world.start_ms, 5_000_000));
    let location = Arc::new(ManualLocation::new(Some(world.fix_near_address(20, 10))));
    let (phone, me) = world
        .open_phone(&dir.path().join("me"), clock.clone(), location.clone())
        .unwrap();
    let (_, teammate) = world
        .open_phone(&dir.path().join("teammate"), clock, location)
        .unwrap();
    Setup {
        world,
        phone,
        me,
        teammate,
        _dir: dir,
    }
}

fn change<T: serde::Serialize>(kind: &str, doc: &T) -> SyncChange {
    SyncChange {
        kind: kind.into(),
        document: serde_json::to_value(doc).unwrap(),
    }
}

impl Setup {
    fn page(&self, changes: Vec<SyncChange>, cursor: &str) -> SyncPage {
        SyncPage {
            time_anchor: self.world.anchor(self.me.device, self.world.start_ms),
            changes,
            next_cursor: cursor.into(),
            more: false,
        }
    }

    fn assignment(&self, team: &[&Member]) -> (SyncChange, tandem_core::model::VisitId) {
        let approval = self.world.approval(team);
        let ticket = self.world.ticket(&approval);
        let docs = serde_json::json!({
            "case": self.world.sign(&self.world.case),
            "approval": self.world.sign(&approval),
            "ticket": self.world.sign(&ticket),
        });
        (
            SyncChange {
                kind: "assignment".into(),
                document: docs,
            },
            ticket.visit_id,
        )
    }
}

#[test]
fn a_page_is_kept_whole_with_its_cursor_and_applying_it_again_changes_nothing() {
    let s = setup();
    assert_eq!(s.phone.sync_cursor().unwrap(), None);
    let (assignment, visit) = s.assignment(&[&s.me, &s.teammate]);
    let revocation = s.world.sign(&DeviceRevocation {
        device_id: s.teammate.device,
        agent_id: s.teammate.agent,
        revoked_at_ms: s.world.start_ms + 3_600_000,
    });
    let page = s.page(
        vec![
            change("policy", &s.world.sign(&s.world.policy)),
            assignment,
            change("serial_range", &s.world.serial_range(s.me.device, 1, 50)),
            change("revocation", &revocation),
            change("something-newer", &serde_json::json!({"x": 1})),
        ],
        "c1.page-one",
    );
    let summary = s.phone.apply_sync_page(&page).unwrap();
    assert_eq!(
        (
            summary.policies,
            summary.assignments.clone(),
            summary.ranges
        ),
        (1, vec![visit], 1)
    );
    assert_eq!((summary.revocations, summary.unknown), (1, 1));
    assert_eq!(
        s.phone.sync_cursor().unwrap().as_deref(),
        Some("c1.page-one")
    );
    assert!(s.phone.visit(visit).is_ok(), "the visit is on the phone");
    let revoked = s
        .phone
        .store()
        .read(|tx| tx.revoked_at(s.teammate.device))
        .unwrap();
    assert_eq!(revoked, Some(s.world.start_ms + 3_600_000));
    // The clock is anchored by the page's anchor.
    assert!(s.phone.now().unwrap().anchor_ms.is_some());

    // A lost answer makes the phone ask again: the same page applies without harm.
    let again = s.phone.apply_sync_page(&page).unwrap();
    assert_eq!(again.assignments, vec![visit]);
    assert_eq!(
        s.phone.sync_cursor().unwrap().as_deref(),
        Some("c1.page-one")
    );
}

#[test]
fn a_forged_document_refuses_the_whole_page_and_the_cursor_stays() {
    // Threat: a network attacker (or a compromised relay) slipping in a policy the server
    // never signed.
    let s = setup();
    let first = s.page(vec![], "c1.before");
    s.phone.apply_sync_page(&first).unwrap();
    let (mallory, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let mut lax = s.world.policy.clone();
    lax.geofence_radius_m = 50_000;
    let forged = Signed::sign(&lax, &mallory).unwrap();
    let (assignment, visit) = s.assignment(&[&s.me, &s.teammate]);
    let page = s.page(vec![assignment, change("policy", &forged)], "c1.after");
    assert!(s.phone.apply_sync_page(&page).is_err());
    assert_eq!(s.phone.sync_cursor().unwrap().as_deref(), Some("c1.before"));
    assert!(
        s.phone.visit(visit).is_err(),
        "nothing of the refused page was kept"
    );
}

#[test]
fn an_assignment_for_the_agents_other_phone_is_skipped_not_kept() {
    // D01: a phone holds only the cases of its own approved teams.
    let s = setup();
    let other_phone = Member {
        agent: s.me.agent,
        device: s.teammate.device,
        key: s.teammate.key.clone(),
    };
    let (assignment, visit) = s.assignment(&[&other_phone, &s.teammate]);
    let summary = s
        .phone
        .apply_sync_page(&s.page(vec![assignment], "c1.x"))
        .unwrap();
    assert_eq!(summary.not_for_this_phone, 1);
    assert!(summary.assignments.is_empty());
    let kept = s.phone.visit(visit);
    assert!(kept.is_err(), "D01: not kept");
}

#[test]
fn an_anchor_for_another_phone_refuses_the_page() {
    // Threat: an agent who cheats the clock by replaying a teammate's anchor.
    let s = setup();
    let mut page = s.page(vec![], "c1.y");
    page.time_anchor = s.world.anchor(s.teammate.device, s.world.start_ms);
    assert!(s.phone.apply_sync_page(&page).is_err());
    assert_eq!(s.phone.sync_cursor().unwrap(), None);
}

#[test]
fn a_signed_document_with_a_field_the_phone_does_not_know_is_refused() {
    // Threat: anyone sending bad input — a field this version cannot judge is not
    // silently dropped from a document the phone is asked to obey.
    let s = setup();
    let mut body: serde_json::Value = serde_json::to_value(&s.world.policy).unwrap();
    body["geofence_exempt"] = serde_json::json!(true);
    let body = String::from_utf8(tandem_core::canonical::to_canonical_vec(&body).unwrap()).unwrap();
    let signature =
        tandem_core::crypto::SignatureRecord::sign(&s.world.server, "policy", body.as_bytes())
            .unwrap();
    let signed: Signed<tandem_core::model::Policy> =
        serde_json::from_value(serde_json::json!({"body": body, "signature": signature})).unwrap();
    assert!(s.phone.accept_policy(&signed).is_err());
}
