//! The visit's event log is a hash chain: any edit, removal or reordering is found.
//! Actor: a malicious insider or an agent altering the record after the fact (THREATS.md).

use tandem_core::crypto::{Digest, SignatureAlgorithm, SoftwareSigner};
use tandem_core::model::{
    AgentId, BankId, ChainError, Event, EventKind, EventTime, Policy, Signed, VisitId, verify_chain,
};

fn chain(visit: VisitId, n: u64) -> Vec<Event> {
    let by = AgentId::new();
    let mut events: Vec<Event> = Vec::new();
    for seq in 0..n {
        let prev = events.last().map_or(Digest::ZERO, |e| e.digest().unwrap());
        events.push(Event {
            visit_id: visit,
            seq,
            prev,
            at: EventTime {
                wall_ms: 1_700_000_000_000 + seq as i64,
                anchor_ms: None,
                since_anchor_ms: None,
            },
            fix: None,
            by,
            kind: EventKind::Note {
                text: format!("note {seq}"),
            },
        });
    }
    events
}

fn head(events: &[Event]) -> Option<Digest> {
    events.last().map(|e| e.digest().unwrap())
}

#[test]
fn an_untouched_chain_verifies() {
    let visit = VisitId::new();
    let events = chain(visit, 5);
    assert_eq!(verify_chain(visit, &events, head(&events)), Ok(()));
    assert_eq!(verify_chain(visit, &[], None), Ok(()));
}

#[test]
fn an_edited_event_breaks_the_link_after_it() {
    let visit = VisitId::new();
    let mut events = chain(visit, 5);
    let h = head(&events);
    events[2].kind = EventKind::Note {
        text: "rewritten".into(),
    };
    assert_eq!(
        verify_chain(visit, &events, h),
        Err(ChainError::BrokenLink { seq: 3 })
    );
}

#[test]
fn an_edited_last_event_is_caught_by_the_head() {
    let visit = VisitId::new();
    let mut events = chain(visit, 3);
    let h = head(&events);
    events[2].at.wall_ms += 1;
    assert_eq!(
        verify_chain(visit, &events, h),
        Err(ChainError::HeadMismatch)
    );
}

#[test]
fn a_removed_event_is_found() {
    let visit = VisitId::new();
    let mut events = chain(visit, 5);
    let h = head(&events);
    events.remove(1);
    assert_eq!(
        verify_chain(visit, &events, h),
        Err(ChainError::OutOfSequence {
            position: 1,
            found: 2
        })
    );
    // Cutting the tail is caught by the head.
    let mut cut = chain(visit, 5);
    let h = head(&cut);
    cut.pop();
    assert_eq!(verify_chain(visit, &cut, h), Err(ChainError::HeadMismatch));
}

#[test]
fn reordered_events_are_found() {
    let visit = VisitId::new();
    let mut events = chain(visit, 5);
    let h = head(&events);
    events.swap(1, 2);
    assert_eq!(
        verify_chain(visit, &events, h),
        Err(ChainError::OutOfSequence {
            position: 1,
            found: 2
        })
    );
    // Renumbering after the swap does not help: the links no longer hold.
    events[1].seq = 1;
    events[2].seq = 2;
    assert_eq!(
        verify_chain(visit, &events, h),
        Err(ChainError::BrokenLink { seq: 1 })
    );
}

#[test]
fn an_event_of_another_visit_is_found() {
    let visit = VisitId::new();
    let mut events = chain(visit, 3);
    events[1].visit_id = VisitId::new();
    assert_eq!(
        verify_chain(visit, &events, None),
        Err(ChainError::WrongVisit { seq: 1 })
    );
}

#[test]
fn a_signed_policy_verifies_only_with_the_server_key() {
    let (server, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let (other, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let policy = Policy::defaults(BankId::new());
    let signed = Signed::sign(&policy, &server).unwrap();
    use tandem_core::crypto::Signer as _;
    assert_eq!(signed.verify(&server.public_key()).unwrap(), policy);
    assert!(signed.verify(&other.public_key()).is_err());
    // A body changed after signing fails, even though it is still canonical JSON.
    let mut tampered = signed.clone();
    tampered.body = tampered
        .body
        .replace("\"geofence_radius_m\":200", "\"geofence_radius_m\":900");
    assert_ne!(tampered.body, signed.body);
    assert!(tampered.verify(&server.public_key()).is_err());
}
