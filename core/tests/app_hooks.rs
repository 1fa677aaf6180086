//! What the bindings rely on: cancelling a push from the app (the transport refuses to send;
//! the push stops at once and the bundle stays due with no failed attempt, unlike a network
//! failure, which waits for its backoff), and a distinct error for a phone never enrolled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tandem_core::Error;
use tandem_core::clock::ManualClock;
use tandem_core::phone::{ManualLocation, Phone};
use tandem_core::sync::{Backoff, Request, Response, SyncError, Transport, push};
use tandem_core::testing::{Team, World};

/// Answers every request with `error`, counting them.
struct Refusing {
    error: SyncError,
    sent: AtomicU32,
}

impl Transport for Refusing {
    fn send(&self, _request: &Request<'_>) -> Result<Response, SyncError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        Err(self.error.clone())
    }
}

/// Two phones of one team with one visit sealed on the lead's phone, waiting to be pushed.
fn sealed_visit() -> Team {
    let t = Team::new();
    t.check_in().unwrap();
    t.clock.advance_ms(60_000);
    t.check_out().unwrap();
    t.co_sign(t.lead.begin_seal(t.visit).unwrap()).unwrap();
    t
}

fn push_with(phone: &Phone, transport: &Refusing) -> Result<tandem_core::sync::PushSummary, Error> {
    let now = phone.wall_ms();
    push(
        phone,
        transport,
        "token",
        &Backoff::default(),
        &|| now,
        &mut |_, _| {},
    )
}

#[test]
fn a_cancelled_push_stops_at_once_and_leaves_the_bundle_due_without_a_failed_attempt() {
    let team = sealed_visit();
    let lead = &team.lead;
    let cancelled = Refusing {
        error: SyncError::Cancelled,
        sent: AtomicU32::new(0),
    };
    let result = push_with(lead, &cancelled);
    assert!(
        matches!(result, Err(Error::Sync(SyncError::Cancelled))),
        "{result:?}"
    );
    assert_eq!(cancelled.sent.load(Ordering::SeqCst), 1);
    let jobs = lead.due_pushes(lead.wall_ms()).unwrap();
    assert_eq!(jobs.len(), 1, "still due now");
    assert_eq!((jobs[0].attempts, jobs[0].last_error.clone()), (0, None));

    // A network failure, by contrast, is a failed attempt that waits for its backoff.
    let cut = Refusing {
        error: SyncError::Network("connection reset".into()),
        sent: AtomicU32::new(0),
    };
    let summary = push_with(lead, &cut).unwrap();
    assert_eq!(summary.deferred, 1);
    assert!(lead.due_pushes(lead.wall_ms()).unwrap().is_empty());
}

#[test]
fn a_phone_that_was_never_enrolled_says_so_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new();
    let phone = World::reopen_phone(
        dir.path(),
        Arc::new(ManualClock::new(world.start_ms, 1_000)),
        Arc::new(ManualLocation::default()),
    )
    .unwrap();
    assert!(matches!(phone.identity(), Err(Error::NotEnrolled(_))));
    assert!(matches!(phone.device_token(), Err(Error::NotEnrolled(_))));
}
