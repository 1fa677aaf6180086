//! A 200 MB visit (104 minutes of audio) uploads through a network that resets the
//! connection after every 5 MB the phone sends: each cut must cost only the bytes in
//! flight, so that everything the phone sends stays within 1.1× the visit's size.
//! On SQLite, and on PostgreSQL with the blobs in a bucket of a real 3-node Garage cluster
//! (the parts arrive in the data folder either way; the finished blobs go to the bucket);
//! plain PostgreSQL changes nothing on this path but the time taken.
//!
//! Threat (THREATS.md): a weak mobile network on a long visit — the phone must not pay the
//! same megabytes again and again, nor give up on the evidence.

mod faults_support;

use std::time::Instant;

use faults_support::{Counted, assert_exactly_once, audio_second, sealed_of, unique_photo};
use tandem_core::sync::HttpTransport;
use tandem_e2e::field::{TeamSpec, test_timeouts};
use tandem_e2e::proxy::{FaultProxy, Plan};
use tandem_e2e::server::garage_backend;
use tandem_e2e::{Backend, Server, Team, backends};
use tandem_server::db::Role;

/// The visit's audio: 6 250 s of 16 kHz mono 16-bit PCM is 200 000 000 bytes.
const AUDIO_S: u32 = 6_250;
/// A reset after every this many bytes from the phone, over all its connections.
const RESET_EVERY: u64 = 5_000_000;

#[test]
fn a_200_mb_visit_costs_at_most_a_tenth_more_with_a_reset_every_5_mb() {
    let sqlite = backends().into_iter().next().expect("SQLite");
    one_big_visit(sqlite);
    if let Some(bucket) = garage_backend("faults_big_visit") {
        one_big_visit(bucket);
    }
}

/// The whole scenario on one backend.
fn one_big_visit(backend: Backend) {
    let server = Server::start(backend);
    let label = server.label;
    let manager = server.console(Role::Manager);
    let legal = server.console(Role::Legal);
    let root = tempfile::tempdir().unwrap();
    let spec = TeamSpec {
        cash_limit_fen: None,
        ..TeamSpec::default()
    };
    let team = Team::assemble(&server, &manager, root.path(), &spec);

    let t0 = Instant::now();
    team.check_in().expect("check-in");
    let lead = &team.lead.phone;
    lead.start_audio(team.visit, 16_000).expect("start audio");
    for second in 0..AUDIO_S {
        lead.push_audio(team.visit, &audio_second(&team.visit_text, second))
            .expect("audio");
        team.wait(1_000);
    }
    lead.capture_photo(
        team.visit,
        &unique_photo("gps-DSCN0010.jpg", &team.visit_text),
        true,
    )
    .expect("photo");
    lead.stop_audio(team.visit).expect("stop audio");
    team.check_out().expect("check-out");
    let seal = team.seal().expect("seal");
    let sealed = sealed_of(&team.lead, team.visit, &seal);
    let recorded_in = t0.elapsed();
    assert!(
        sealed.bytes >= 200_000_000,
        "{label}: {} bytes",
        sealed.bytes
    );

    let proxy = FaultProxy::start(&server.base, Plan::ResetEvery { bytes: RESET_EVERY }).unwrap();
    let transport = Counted::new(HttpTransport::new(&proxy.url(), test_timeouts()));
    let t1 = Instant::now();
    let rounds = faults_support::sync_until_empty(&team.lead, &transport, 200);
    let synced_in = t1.elapsed();
    assert_exactly_once(
        &server,
        &legal,
        &[(&team.lead, std::slice::from_ref(&sealed))],
    );

    let stats = proxy.stats();
    let ratio = stats.client_bytes as f64 / sealed.bytes as f64;
    println!(
        "{label}: a visit of {} bytes ({} blobs) recorded in {:.1} s, uploaded in {:.1} s with \
         {} resets over {} sync rounds and {} requests: bytes sent {} = {ratio:.4}× the visit \
         (chunk bodies tried {}, re-sent {}); duplicates 0, lost 0",
        sealed.bytes,
        sealed.blobs.len(),
        recorded_in.as_secs_f64(),
        synced_in.as_secs_f64(),
        stats.resets,
        rounds.rounds,
        transport.requests(),
        stats.client_bytes,
        transport.chunk_bytes(),
        stats.client_bytes.saturating_sub(sealed.bytes),
    );
    assert!(
        stats.resets >= sealed.bytes / RESET_EVERY,
        "{label}: a reset every 5 MB: {stats:?}"
    );
    assert!(
        ratio <= 1.1,
        "{label}: the phone sent {ratio:.3}× the visit's size ({stats:?})"
    );
}
