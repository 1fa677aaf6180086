//! A hundred visits from four phones sync through a proxy that breaks connections at
//! random — resets mid-request and mid-answer, truncated answers, stalls past the phone's
//! read timeout, slow links, and answers lost after the server acted — on SQLite,
//! PostgreSQL, and PostgreSQL with the blobs in a bucket of a real 3-node Garage cluster.
//! Afterwards the server holds every visit exactly once, every phone verified its
//! receipts, nothing waits in any outbox, and every blob reads back whole through the
//! server's store.
//!
//! Threat (THREATS.md): a flaky network between phone and server, which must neither lose
//! evidence nor store it twice. `TANDEM_FAULT_SEED` replays a run.

mod faults_support;

use std::time::{Duration, Instant};

use faults_support::{Counted, Rounds, Sealed, assert_exactly_once, distinct_blob_bytes, seed};
use tandem_core::sync::{HttpTransport, Timeouts};
use tandem_e2e::proxy::{FaultProxy, Plan, RandomFaults};
use tandem_e2e::{Server, SimPhone, backends_with_garage};
use tandem_server::db::Role;

/// Visits per uploading phone; four phones.
const VISITS_PER_PHONE: usize = 25;
/// Seconds of audio per visit (16 kHz mono: 32 KB a second).
const AUDIO_S: u32 = 3;
/// The phones' read timeout through the proxy; stalls hold longer.
const READ_TIMEOUT: Duration = Duration::from_millis(1_500);

#[test]
fn a_hundred_visits_arrive_exactly_once_through_a_faulty_network() {
    for backend in backends_with_garage("faults_exactly_once") {
        let server = Server::start(backend);
        let label = server.label;
        let manager = server.console(Role::Manager);
        let legal = server.console(Role::Legal);
        let root = tempfile::tempdir().unwrap();
        // Recording goes straight to the server (approvals); only pushing is faulty.
        let t0 = Instant::now();
        let recorded = faults_support::four_phones_with_sealed_visits(
            &server,
            &manager,
            root.path(),
            VISITS_PER_PHONE,
            AUDIO_S,
        );
        let recorded_in = t0.elapsed();

        let plan = RandomFaults {
            seed: seed(&format!("exactly once ({label})")),
            answers: 4,
            request_span: 128 << 10,
            stall: READ_TIMEOUT + Duration::from_millis(500),
            slow: 0.2,
        };
        let proxy = FaultProxy::start(&server.base, Plan::Random(plan)).unwrap();
        let timeouts = Timeouts {
            connect: Duration::from_secs(2),
            read: READ_TIMEOUT,
            write: READ_TIMEOUT,
        };
        let leads: Vec<(&SimPhone, &Vec<Sealed>)> = recorded.iter().map(|(p, s)| (p, s)).collect();
        let transports: Vec<Counted<HttpTransport>> = leads
            .iter()
            .map(|_| Counted::new(HttpTransport::new(&proxy.url(), timeouts)))
            .collect();
        let t1 = Instant::now();
        let rounds: Vec<Rounds> = std::thread::scope(|s| {
            let running: Vec<_> = leads
                .iter()
                .zip(&transports)
                .map(|((phone, _), transport)| {
                    s.spawn(move || faults_support::sync_until_empty(phone, transport, 300))
                })
                .collect();
            running.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let synced_in = t1.elapsed();

        let check: Vec<(&SimPhone, &[Sealed])> =
            leads.iter().map(|(p, s)| (*p, s.as_slice())).collect();
        let visits = assert_exactly_once(&server, &legal, &check);
        assert_eq!(visits, 4 * VISITS_PER_PHONE as u64, "{label}");

        let stats = proxy.stats();
        let all = || leads.iter().flat_map(|(_, s)| s.iter());
        let blob_bytes = distinct_blob_bytes(all());
        let evidence = blob_bytes + all().map(|s| s.manifest_bytes).sum::<u64>();
        let chunks: u64 = transports.iter().map(Counted::chunk_bytes).sum();
        let requests: u64 = transports.iter().map(Counted::requests).sum();
        let total_rounds: u32 = rounds.iter().map(|r| r.rounds).sum();
        let failed_rounds: u32 = rounds.iter().map(|r| r.failed).sum();
        println!(
            "{label}: {visits} visits ({evidence} bytes of evidence) recorded in {:.1} s, \
             synced through faults in {:.1} s; sync rounds {total_rounds} ({failed_rounds} \
             stopped in the pull), requests {requests}, connections {}; faults: {} resets, {} \
             truncated answers, {} stalls, {} lost answers, {} slow connections; bytes sent {} \
             (re-sent, headers and pulls {}; upload chunk bodies tried {chunks} for \
             {blob_bytes} bytes of blobs); duplicates 0, lost 0",
            recorded_in.as_secs_f64(),
            synced_in.as_secs_f64(),
            stats.connections,
            stats.resets,
            stats.truncations,
            stats.stalls,
            stats.lost_responses,
            stats.delays,
            stats.client_bytes,
            stats.client_bytes.saturating_sub(evidence),
        );
        assert!(
            stats.breaks() >= 50,
            "{label}: the network was faulty enough to matter: {stats:?}"
        );
    }
}
