//! What the fault tests share: the seed, phones recording many visits in a row, a transport
//! that counts what it sends, and syncing until the outbox is empty on a manual clock.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tandem_core::clock::Clock as _;
use tandem_core::crypto::Digest;
use tandem_core::model::{VisitId, VisitState};
use tandem_core::store::SealRecord;
use tandem_core::sync::{Request, Response, SyncError, Transport};
use tandem_e2e::console::CaseRef;
use tandem_e2e::field::PHOTOS;
use tandem_e2e::{Console, Server, SimPhone, Team};

/// The seed of a test's random choices: `TANDEM_FAULT_SEED` to replay one, else from the
/// clock. Printed, so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("TANDEM_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{test}: seed {seed} (TANDEM_FAULT_SEED={seed} replays it)");
    seed
}

/// One sealed visit: its id as the console knows it, its bundle, and what it weighs.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The visit.
    pub visit: VisitId,
    /// The bundle id the server must hold exactly once.
    pub bundle: String,
    /// Its blobs: digest and size.
    pub blobs: Vec<(Digest, u64)>,
    /// Bytes of its manifest.
    pub manifest_bytes: u64,
    /// Bytes of its blobs and manifest.
    pub bytes: u64,
}

/// The distinct blobs of `visits` (a blob two visits share is stored once) and their sizes.
pub fn distinct_blobs<'a>(visits: impl IntoIterator<Item = &'a Sealed>) -> BTreeMap<Digest, u64> {
    visits
        .into_iter()
        .flat_map(|s| s.blobs.iter().copied())
        .collect()
}

/// Bytes of the distinct blobs of `visits`.
pub fn distinct_blob_bytes<'a>(visits: impl IntoIterator<Item = &'a Sealed>) -> u64 {
    distinct_blobs(visits).values().sum()
}

/// Visits the server accepted: its log's entries less the audit log's anchors (`tandem
/// serve` anchors the audit log's head when it starts).
pub fn accepted_visits(server: &Server) -> u64 {
    server.block_on(async {
        let db = &server.state.db;
        let size = db.log_size().await.expect("log size");
        size - db.audit_anchors().await.expect("audit anchors").len() as u64
    })
}

/// Every one of `blobs` reads back whole through the server's store (its folder or its
/// bucket), its SHA-256 its address; panics naming the first that does not.
pub fn assert_blobs_read_back(server: &Server, blobs: &BTreeMap<Digest, u64>, when: &str) {
    for (digest, size) in blobs {
        let read = server
            .verify_blob(digest)
            .unwrap_or_else(|e| panic!("{} {when}: {e}", server.label));
        assert_eq!(read, *size, "{} {when}: blob {digest}", server.label);
    }
}

/// A fixture photo made unique to `n` (bytes after the end-of-image marker, as some
/// cameras write): the same picture twice is never the same file in the field.
pub fn unique_photo(name: &str, salt: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(Path::new(PHOTOS).join(name)).expect("fixture photo");
    bytes.extend_from_slice(format!("tandem-fault-test-{salt}").as_bytes());
    bytes
}

/// A visit approved for a pair of phones, not yet recorded.
pub struct Approved {
    /// The visit id as the console knows it.
    pub visit: String,
    /// Its case (the address the team stands at).
    pub case: CaseRef,
}

/// Approves `count` visits to `cases` (in turn) for the team of `lead` and `partner`.
/// Approve every pair's visits, then [`pull_all`], then record: a phone's sync pushes
/// whatever it has sealed, so a pull after recording would upload around the test's network.
pub fn approve_visits(
    server: &Server,
    manager: &Console,
    (lead, partner): (&SimPhone, &SimPhone),
    cases: &[CaseRef],
    count: usize,
) -> Vec<Approved> {
    let team = [lead.ids().1, partner.ids().1];
    (0..count)
        .map(|i| {
            let case = cases[i % cases.len()].clone();
            let visit = manager
                .approve_visit(server.now_ms(), &case.id, &team, None)
                .unwrap_or_else(|(s, b)| panic!("approval refused {s}: {b}"));
            Approved { visit, case }
        })
        .collect()
}

/// Every phone pulls its approvals (straight from the server).
pub fn pull_all(phones: &[&SimPhone]) {
    for phone in phones {
        phone.sync().expect("pull the approvals");
    }
}

/// Four phones enrolled in `root` with the demo's first four codes, each leading
/// `per_phone` visits with its pair in turn (A with B, B with A, C with D, D with C),
/// recorded and sealed with `audio_s` seconds of audio (approvals and pulls straight to
/// the server): each phone with what the server must end up holding of the visits it led.
pub fn four_phones_with_sealed_visits(
    server: &Server,
    manager: &Console,
    root: &Path,
    per_phone: usize,
    audio_s: u32,
) -> Vec<(SimPhone, Vec<Sealed>)> {
    let now = server.now_ms();
    let enrol = |i: usize| {
        SimPhone::enrolled(
            &root.join(format!("phone-{i}")),
            &server.base,
            now,
            server.code(i),
        )
    };
    let (a, b, c, d) = (enrol(0), enrol(1), enrol(2), enrol(3));
    let cases = manager.cases();
    let per_pair: Vec<Vec<Approved>> = [(&a, &b), (&b, &a), (&c, &d), (&d, &c)]
        .into_iter()
        .map(|pair| approve_visits(server, manager, pair, &cases, per_phone))
        .collect();
    pull_all(&[&a, &b, &c, &d]);
    let mut per_pair = per_pair.into_iter();
    let mut next = || per_pair.next().expect("four pairs");
    let (a, b, sealed_a) = record_visits(server, (a, b), next(), audio_s);
    let (b, a, sealed_b) = record_visits(server, (b, a), next(), audio_s);
    let (c, d, sealed_c) = record_visits(server, (c, d), next(), audio_s);
    let (d, c, sealed_d) = record_visits(server, (d, c), next(), audio_s);
    vec![(a, sealed_a), (b, sealed_b), (c, sealed_c), (d, sealed_d)]
}

/// Records and seals each approved visit on `lead` with `partner`: `audio_s` seconds of
/// audio and one photo; returns the phones and what the server must end up holding.
pub fn record_visits(
    server: &Server,
    (lead, partner): (SimPhone, SimPhone),
    visits: Vec<Approved>,
    audio_s: u32,
) -> (SimPhone, SimPhone, Vec<Sealed>) {
    let (mut lead, mut partner) = (lead, partner);
    let mut sealed = Vec::with_capacity(visits.len());
    for Approved { visit, case } in visits {
        lead.stand_near(&case.address, 15, 8);
        partner.stand_near(&case.address, 25, 8);
        let team = Team {
            visit: visit.parse().expect("visit id"),
            visit_text: visit,
            address: case.address,
            lead,
            partner,
            server_clock: server.clock.clone(),
        };
        let photo = unique_photo("orientation-portrait_6.jpg", &team.visit_text);
        let seal = record_with_photo(&team, audio_s, &photo);
        sealed.push(sealed_of(&team.lead, team.visit, &seal));
        // Time moves on between visits.
        team.wait(60_000);
        Team { lead, partner, .. } = team;
    }
    (lead, partner, sealed)
}

/// What the server must hold for a sealed visit.
pub fn sealed_of(lead: &SimPhone, visit: VisitId, seal: &SealRecord) -> Sealed {
    let bundle = lead.phone.sealed_bundle(visit).expect("bundle");
    let blobs: Vec<(Digest, u64)> = bundle
        .manifest
        .blobs
        .iter()
        .map(|b| (b.sha256, b.size))
        .collect();
    Sealed {
        visit,
        bundle: seal.bundle_id.to_string(),
        manifest_bytes: bundle.manifest_bytes.len() as u64,
        bytes: blobs.iter().map(|b| b.1).sum::<u64>() + bundle.manifest_bytes.len() as u64,
        blobs,
    }
}

/// One second of 16 kHz audio: noise unique to the visit and the second (a room never
/// sounds the same twice, and identical recordings would be stored once by address).
pub fn audio_second(visit: &str, second: u32) -> Vec<i16> {
    let mut x = visit
        .bytes()
        .fold(0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(second), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
        | 1;
    (0..16_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 52) as i16 - 2_048
        })
        .collect()
}

/// Check-in, `audio_s` seconds of audio in one-second pieces (the clocks move with it),
/// one photo, check-out, seal.
pub fn record_with_photo(team: &Team, audio_s: u32, photo: &[u8]) -> SealRecord {
    team.check_in().expect("check-in");
    let lead = &team.lead.phone;
    lead.start_audio(team.visit, 16_000).expect("start audio");
    for second in 0..audio_s {
        lead.push_audio(team.visit, &audio_second(&team.visit_text, second))
            .expect("audio");
        team.wait(1_000);
    }
    lead.capture_photo(team.visit, photo, true).expect("photo");
    lead.stop_audio(team.visit).expect("stop audio");
    team.check_out().expect("check-out");
    team.seal().expect("seal")
}

/// Counts what goes through a transport: requests, and body bytes of upload chunks.
pub struct Counted<T> {
    /// The transport counted.
    pub inner: T,
    requests: AtomicU64,
    chunk_bytes: AtomicU64,
}

impl<T> Counted<T> {
    /// Starts counting at zero.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            requests: AtomicU64::new(0),
            chunk_bytes: AtomicU64::new(0),
        }
    }

    /// Requests sent (answered or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes of every PATCH tried, including chunks cut on the way.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.load(Ordering::Relaxed)
    }
}

impl<T: Transport> Transport for Counted<T> {
    fn send(&self, request: &Request<'_>) -> Result<Response, SyncError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if request.method == "PATCH" {
            self.chunk_bytes
                .fetch_add(request.body.len() as u64, Ordering::Relaxed);
        }
        self.inner.send(request)
    }
}

/// How a phone's syncing went.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rounds {
    /// Sync rounds run.
    pub rounds: u32,
    /// Rounds that stopped early (the pull failed).
    pub failed: u32,
    /// Bundles acknowledged over all rounds.
    pub acknowledged: u32,
}

/// Runs sync rounds through `transport` until `phone`'s outbox is empty, waiting out the
/// backoff on its manual clock; panics after `max_rounds`.
pub fn sync_until_empty(phone: &SimPhone, transport: &dyn Transport, max_rounds: u32) -> Rounds {
    let mut r = Rounds::default();
    while r.rounds < max_rounds {
        r.rounds += 1;
        match tandem_core::sync::sync_now(&phone.phone, transport, &mut |_, _| {}) {
            Ok(report) => r.acknowledged += report.pushed.acknowledged,
            Err(_) => r.failed += 1,
        }
        let status = phone.phone.sync_status().expect("status");
        assert_eq!(status.outbox.quarantined, 0, "{:?}", status.outbox);
        if status.outbox.pending == 0 {
            return r;
        }
        let due = status.outbox.next_attempt_ms.unwrap_or(0);
        phone
            .clock
            .advance_ms((due - phone.clock.wall_ms()).max(1_000));
    }
    panic!(
        "the outbox is not empty after {max_rounds} rounds: {:?}",
        phone.phone.sync_status().map(|s| s.outbox)
    );
}

/// The server holds each visit's bundle exactly once, accepted, and its log one entry per
/// visit (besides the audit log's anchors); each phone's visits are acknowledged (or purged
/// after it) and its outbox empty; every blob reads back whole through the server's store
/// (its folder or its bucket), its SHA-256 its address.
pub fn assert_exactly_once(
    server: &Server,
    legal: &Console,
    phones: &[(&SimPhone, &[Sealed])],
) -> u64 {
    let label = server.label;
    let mut visits = 0u64;
    for (phone, sealed) in phones {
        let status = phone.phone.sync_status().expect("status");
        assert_eq!(status.outbox.pending, 0, "{label}: {:?}", status.outbox);
        assert_eq!(status.outbox.quarantined, 0, "{label}: {:?}", status.outbox);
        assert_eq!(
            status.outbox.done as usize,
            sealed.len(),
            "{label}: {:?}",
            status.outbox
        );
        for s in *sealed {
            assert_eq!(
                legal.visit_bundles(&s.visit.to_string()),
                vec![(s.bundle.clone(), "accepted".to_owned())],
                "{label}: visit {} is on the server exactly once, accepted",
                s.visit
            );
            let state = phone.phone.visit(s.visit).expect("visit").visit.state;
            assert!(
                matches!(state, VisitState::Acknowledged | VisitState::Purged),
                "{label}: visit {} is {state:?} on the phone",
                s.visit
            );
            visits += 1;
        }
    }
    assert_eq!(
        accepted_visits(server),
        visits,
        "{label}: one log entry per visit, no more"
    );
    let blobs = distinct_blobs(phones.iter().flat_map(|(_, sealed)| sealed.iter()));
    assert_blobs_read_back(server, &blobs, "after the sync");
    visits
}
