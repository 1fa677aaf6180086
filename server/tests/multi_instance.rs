//! Three real `tandem serve` processes on one PostgreSQL and one shared data folder, phones
//! spread over them round-robin (every request to the next instance), and one instance
//! SIGKILLed and restarted 20 times while the phones upload blobs (tus, in chunks) and
//! commit visits. Afterwards: every visit a phone sent is committed exactly once (0 lost,
//! 0 duplicates); uploads cut by a kill resumed on another instance from their committed
//! offset, never behind what was acknowledged; the transparency log is one linear log
//! (every checkpoint verifies, each is consistent with the one before, no two entries at
//! one index, `tandem audit verify` holds); the scheduled jobs ran once per period across
//! the instances, not once per instance (no audit head anchored twice).
//!
//! Run twice: with the blobs in the shared folder, and in the bucket of a real 3-node
//! Garage cluster. PostgreSQL only (several servers need it); skipped with a note without
//! `TANDEM_TEST_DATABASE_URL`. Actors: anyone pulling the plug on one server of several
//! (THREATS.md: transactional writes), and the malicious insider whose forked or rewritten
//! log the consistency proofs would expose.

mod common;
mod ledger_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ledger_support::{Upload, fresh, receipt_of, sample_position};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use sqlx::Connection as _;
use tandem_core::bundle::testing::SampleBundle;
use tandem_core::crypto::{Digest, PublicKey, Signer as _, sha256};
use tandem_core::model::{BundleId, Signed};
use tandem_core::tlog::{Checkpoint, manifest_leaf_hash, verify_checkpoint_consistency};

const INSTANCES: usize = 3;
const KILLS: usize = 20;
const PHONES: usize = 6;
/// Visits sealed beforehand for the phones to send (more than they get through).
const VISITS: usize = 600;
/// Short upload leases, so a killed writer's upload is free again quickly.
const LEASE_MS: u64 = 800;
const IDLE_MS: u64 = 400;
/// Period of both scheduled jobs in the instances under test.
const JOB_SECS: u64 = 1;

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One instance's fixed address and its current process.
struct Instance {
    addr: SocketAddr,
    child: Option<Child>,
}

/// The settings every instance shares: the data folder (partial uploads, keys; the blobs
/// too without a bucket), the database, and the bucket's settings when there is one.
struct Shared {
    data: std::path::PathBuf,
    url: String,
    env: Vec<(&'static str, String)>,
}

fn serve_command(addr: SocketAddr, data: &Path, shared: &Shared) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.envs(shared.env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data)
        .args(["--upload-lease-ms", &LEASE_MS.to_string()])
        .args(["--upload-idle-timeout-ms", &IDLE_MS.to_string()])
        .args(["--audit-anchor-secs", &JOB_SECS.to_string()])
        .args(["--deposit-check-secs", &JOB_SECS.to_string()])
        .env("DATABASE_URL", &shared.url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

async fn start(inst: &mut Instance, shared: &Shared, http: &reqwest::Client) {
    let mut child = serve_command(inst.addr, &shared.data, shared)
        .spawn()
        .unwrap();
    let health = format!("http://{}/healthz", inst.addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(&health).send().await
            && r.status() == 200
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tandem serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no healthy instance within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    inst.child = Some(child);
}

impl Drop for Instance {
    /// A failing test leaves no server behind (it would hold the test's output open).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn kill(inst: &mut Instance) {
    use std::os::unix::process::ExitStatusExt as _;
    let mut child = inst.child.take().expect("a running instance");
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "an instance ended by itself: {status}"
    );
}

/// What the phones saw, for the assertions.
#[derive(Default)]
struct Seen {
    /// Visits a phone finished: the bundle and its receipt's log index.
    committed: BTreeMap<BundleId, (Upload, u64)>,
    /// Blobs uploaded whole.
    blobs: Vec<Digest>,
    /// Uploads cut by a failed request that carried on, on another instance, from an
    /// offset at least the acknowledged one.
    resumed_elsewhere: usize,
    /// Requests that failed (a killed instance) and were sent again elsewhere.
    failovers: usize,
}

/// The instances in turn, for one phone.
struct RoundRobin {
    bases: Vec<String>,
    next: usize,
}

impl RoundRobin {
    fn take(&mut self) -> (usize, &str) {
        let i = self.next % self.bases.len();
        self.next += 1;
        (i, &self.bases[i])
    }
}

/// One simulated phone: uploads a blob in chunks, then puts and commits a visit, every
/// request to the next instance, until `stop` (finishing the visit it started).
#[allow(clippy::too_many_arguments)]
async fn phone(
    n: usize,
    bases: Vec<String>,
    token: String,
    visits: Arc<Mutex<Vec<Upload>>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    seed: u64,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rr = RoundRobin { bases, next: n };
    let mut rng = StdRng::seed_from_u64(seed ^ n as u64);
    let req = |m: reqwest::Method, url: String| {
        http.request(m, url)
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
    };
    while !stop.load(Ordering::SeqCst) {
        let Some(visit) = visits.lock().unwrap().pop() else {
            return;
        };
        // A blob of this visit, uploaded in chunks.
        let size = rng.random_range(256usize << 10..=768 << 10);
        let mut data = Vec::with_capacity(size + 32);
        let mut block = sha256(&rng.random::<u64>().to_le_bytes());
        while data.len() < size {
            data.extend_from_slice(block.as_bytes());
            block = sha256(block.as_bytes());
        }
        data.truncate(size);
        let digest = sha256(&data);
        let meta = format!("sha256 {}", B64.encode(digest.to_hex()));
        let location = loop {
            let (_, base) = rr.take();
            match req(reqwest::Method::POST, format!("{base}/v1/uploads"))
                .header("Upload-Length", size.to_string())
                .header("Upload-Metadata", meta.clone())
                .send()
                .await
            {
                Ok(r) if r.status() == 201 => {
                    break r.headers()["location"].to_str().unwrap().to_owned();
                }
                Ok(r) => panic!("create upload: {}", r.status()),
                Err(_) => {
                    seen.lock().unwrap().failovers += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let (mut acked, mut sent_end, mut cut) = (0u64, 0u64, false);
        for round in 0.. {
            assert!(round < 5_000, "phone {n}: upload never finished");
            let (_, base) = rr.take();
            let Ok(head) = req(reqwest::Method::HEAD, format!("{base}{location}"))
                .send()
                .await
            else {
                seen.lock().unwrap().failovers += 1;
                cut = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            assert_eq!(head.status(), 200, "HEAD");
            let offset: u64 = head.headers()["upload-offset"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                offset >= acked && offset <= sent_end,
                "phone {n}: offset {offset} outside acknowledged {acked}..sent {sent_end}"
            );
            if cut {
                // Carried on by another instance from what the killed one committed.
                seen.lock().unwrap().resumed_elsewhere += usize::from(offset > 0);
                cut = false;
            }
            if offset == size as u64 {
                break;
            }
            let at = usize::try_from(offset).unwrap();
            let chunk =
                data[at..size.min(at + rng.random_range(32usize << 10..=128 << 10))].to_vec();
            let end = offset + chunk.len() as u64;
            sent_end = sent_end.max(end);
            let (_, base) = rr.take();
            match req(reqwest::Method::PATCH, format!("{base}{location}"))
                .header("Content-Type", "application/offset+octet-stream")
                .header("Upload-Offset", offset.to_string())
                .body(chunk)
                .send()
                .await
            {
                Ok(r) if r.status() == 204 => acked = end,
                // A killed writer's lease not expired yet, or the offset moved.
                Ok(r) if r.status() == 409 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(r) => panic!("PATCH answered {}", r.status()),
                Err(_) => {
                    seen.lock().unwrap().failovers += 1;
                    cut = true;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // The visit: PUT then commit, again until a receipt arrives.
        let log_index = loop {
            let (_, base) = rr.take();
            let put = http
                .put(format!("{base}/v1/bundles/{}", visit.id))
                .bearer_auth(&token)
                .json(&visit.put_body())
                .send()
                .await;
            if !put.as_ref().is_ok_and(|r| r.status().is_success()) {
                seen.lock().unwrap().failovers += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let (_, base) = rr.take();
            let commit = http
                .post(format!("{base}/v1/bundles/{}/commit", visit.id))
                .bearer_auth(&token)
                .json(&visit.commit_body())
                .send()
                .await;
            match commit {
                Ok(r) if r.status() == 200 => {
                    let body: serde_json::Value = r.json().await.unwrap();
                    let receipt = receipt_of(&body);
                    let index: u64 = serde_json::from_str::<serde_json::Value>(
                        &receipt.receipt.body,
                    )
                    .unwrap()["log_index"]
                        .as_u64()
                        .unwrap();
                    break index;
                }
                Ok(r) if r.status().is_server_error() => {}
                Ok(r) => panic!("commit answered {}: {:?}", r.status(), r.text().await),
                Err(_) => {}
            }
            seen.lock().unwrap().failovers += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut seen = seen.lock().unwrap();
        seen.blobs.push(digest);
        seen.committed.insert(visit.id, (visit, log_index));
    }
}

/// The two runs take the machine each: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_twenty_times_keep_one_log_and_every_visit_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    run(None).await;
}

/// The same with the evidence in the bucket of a real 3-node Garage cluster (replication
/// 3) that every instance shares, partial uploads in the shared folder. Skipped with a note
/// without Garage, except under CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_garage_bucket_three_instances_one_killed_twenty_times_lose_nothing() {
    let Some(garage) = common::garage::start_or_skip("multi_instance") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    run(Some(&garage)).await;
}

async fn run(garage: Option<&common::garage::Garage>) {
    let store = if garage.is_some() { "garage" } else { "folder" };
    let Some(b) = common::backends()
        .await
        .into_iter()
        .find(|b| b.label == "postgres")
    else {
        eprintln!(
            "note: multi_instance needs PostgreSQL ({}); skipped",
            common::PG_ENV
        );
        return;
    };
    let seed: u64 = std::env::var("TANDEM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| tandem_server::clock::system_now_ms().unsigned_abs());
    eprintln!("multi_instance ({store}): seed {seed}");
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);

    // One data folder (blobs, partial uploads, the key) shared by every instance.
    let data = b.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let shared = Shared {
        data: data.clone(),
        url: b.url.clone(),
        env: garage.map(common::garage::Garage::env).unwrap_or_default(),
    };
    let key_file = data.join("server-key.p8");
    let server_key = tandem_server::key::load_or_create(&key_file).unwrap();
    let key: PublicKey = server_key.public_key();
    let mut sample = SampleBundle::with_server(server_key).unwrap();
    let db = b.open().await;
    let seeded = ledger_support::seed_sample(db.as_ref(), &sample, sample_position()).await;
    let blobs = match garage {
        Some(g) => tandem_server::blobstore::BlobStore::open_s3(
            data.join("blobs"),
            &g.config(),
            common::keyring(&data, db.clone()),
        )
        .unwrap(),
        None => common::blob_store(&data, db.clone()),
    };
    ledger_support::store_blobs(&blobs, &sample.blobs).await;

    // The configuration checks out before anything starts.
    let checked = serve_command(free_port(), &data, &shared)
        .arg("--check")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        checked.status.code(),
        Some(0),
        "--check: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|_| Instance {
            addr: free_port(),
            child: None,
        })
        .collect();
    for inst in &mut instances {
        start(inst, &shared, &http).await;
    }
    let mut starts = INSTANCES;
    let bases: Vec<String> = instances
        .iter()
        .map(|i| format!("http://{}", i.addr))
        .collect();

    let visits: Vec<Upload> = (0..VISITS).map(|_| fresh(&mut sample)).collect();
    let attempted_pool = Arc::new(Mutex::new(visits));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let tokens = [seeded.lead_token.clone(), seeded.partner_token.clone()];
    let phones: Vec<_> = (0..PHONES)
        .map(|n| {
            tokio::spawn(phone(
                n,
                bases.clone(),
                tokens[n % 2].clone(),
                attempted_pool.clone(),
                stop.clone(),
                seen.clone(),
                seed,
            ))
        })
        .collect();

    let kills = AtomicUsize::new(0);
    let jobs_from = Instant::now();
    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(600..1_600))).await;
        let victim = k % INSTANCES;
        kill(&mut instances[victim]);
        kills.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        start(&mut instances[victim], &shared, &http).await;
        starts += 1;
    }
    // Let the phones finish what they started, on three live instances.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for p in phones {
        tokio::time::timeout(Duration::from_secs(60), p)
            .await
            .expect("phones finish their visits")
            .unwrap();
    }
    let jobs_elapsed = jobs_from.elapsed();
    let left = attempted_pool.lock().unwrap().len();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let attempted = VISITS - left;

    // The newest checkpoint, then every checkpoint, each consistent with the one before.
    let mut pg = sqlx::PgConnection::connect(&b.url).await.unwrap();
    let checkpoints: Vec<(i64, String)> =
        sqlx::query_as("SELECT tree_size, signed FROM tlog_checkpoints ORDER BY tree_size")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    let head: i64 = sqlx::query_scalar("SELECT size FROM tlog_head WHERE id = 1")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    let leaves: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, hash FROM tlog_nodes WHERE level = 0 ORDER BY idx")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    let bundles: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("SELECT id, log_index, manifest_digest FROM bundles ORDER BY id")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    let anchors: Vec<(i64, i64)> =
        sqlx::query_as("SELECT log_index, audit_seq FROM audit_anchors ORDER BY log_index")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    let job_runs: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT job, runs FROM scheduled_jobs")
            .fetch_all(&mut pg)
            .await
            .unwrap()
            .into_iter()
            .collect();
    pg.close().await.unwrap();

    // 0 lost, 0 duplicates: every visit a phone started is committed, once, at the index
    // its receipt names; nothing else was committed.
    assert_eq!(kills.load(Ordering::SeqCst), KILLS);
    assert_eq!(seen.committed.len(), attempted, "a visit was lost");
    let committed: BTreeMap<String, (Option<i64>, String)> = bundles
        .into_iter()
        .map(|(id, index, digest)| (id, (index, digest)))
        .collect();
    assert_eq!(committed.len(), attempted, "bundles stored vs visits sent");
    for (id, (upload, index)) in &seen.committed {
        let (stored_index, digest) = &committed[&id.to_string()];
        assert_eq!(
            *stored_index,
            Some(*index as i64),
            "receipt vs stored index"
        );
        assert_eq!(*digest, upload.digest().to_hex());
    }
    // One linear log: leaves 0..head, each index one bundle or one anchor, never both.
    assert_eq!(leaves.len() as i64, head, "leaves vs head");
    for (i, (idx, _)) in leaves.iter().enumerate() {
        assert_eq!(*idx, i as i64, "log indexes not consecutive");
    }
    let mut owners: BTreeMap<i64, usize> = BTreeMap::new();
    for (index, _) in committed.values() {
        *owners.entry(index.expect("committed")).or_default() += 1;
    }
    for (index, _) in &anchors {
        *owners.entry(*index).or_default() += 1;
    }
    assert!(owners.values().all(|&n| n == 1), "two entries at one index");
    assert_eq!(owners.len() as i64, head, "an entry nobody owns");
    let leaf_of: BTreeMap<i64, &Vec<u8>> = leaves.iter().map(|(i, h)| (*i, h)).collect();
    let mut digests = BTreeSet::new();
    for (index, digest) in committed.values() {
        let d: Digest = digest.parse().unwrap();
        assert!(digests.insert(d), "one manifest logged twice");
        assert_eq!(
            leaf_of[&index.unwrap()].as_slice(),
            manifest_leaf_hash(&d).as_bytes()
        );
    }
    // Every checkpoint verifies and extends the one before.
    assert_eq!(checkpoints.len() as i64, head, "one checkpoint per append");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let signed: Vec<Signed<Checkpoint>> = checkpoints
        .iter()
        .map(|(_, json)| serde_json::from_str(json).unwrap())
        .collect();
    for (i, pair) in signed.windows(2).enumerate() {
        let (old, new) = (pair[0].verify(&key).unwrap(), pair[1].verify(&key).unwrap());
        let base = &bases[i % INSTANCES];
        let body: serde_json::Value = client
            .get(format!(
                "{base}/v1/log/consistency?from={}&to={}",
                old.tree_size, new.tree_size
            ))
            .bearer_auth(&seeded.lead_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let proof: Vec<Digest> = serde_json::from_value(body["proof"].clone()).unwrap();
        verify_checkpoint_consistency(&pair[0], &pair[1], &proof, &key)
            .unwrap_or_else(|e| panic!("checkpoints {} → {}: {e}", old.tree_size, new.tree_size));
    }
    // Scheduled jobs: once per period across the instances (a tenth of slack), plus the
    // anchor each start makes; never the same audit head twice.
    let heads: BTreeSet<i64> = anchors.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(heads.len(), anchors.len(), "an audit head anchored twice");
    let periods = (jobs_elapsed.as_secs_f64() / (JOB_SECS as f64 * 0.9)).ceil() as i64 + 2;
    for job in ["audit-anchor", "deposit-check"] {
        let runs = job_runs.get(job).copied().unwrap_or(0);
        assert!(
            runs >= 1 && runs <= periods,
            "{job} ran {runs} times in {periods} periods"
        );
    }
    // Counted from the log itself: one instance per period, not three.
    assert!(
        anchors.len() as i64 <= periods + starts as i64,
        "{} anchors in {periods} periods with {starts} starts",
        anchors.len()
    );
    // Uploads: whole and at their address, in the store the instances share (the bucket,
    // when there is one); some were carried on by another instance.
    // (Read on a blocking thread: the bucket's client waits on its own runtime.)
    let (reader, digests) = (blobs.clone(), seen.blobs.clone());
    tokio::task::spawn_blocking(move || {
        for d in &digests {
            assert_eq!(sha256(&common::read_blob(&reader, d)), *d, "{store}");
        }
    })
    .await
    .unwrap();
    if garage.is_some() {
        assert!(
            !data.join("blobs").read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_str()
                .is_some_and(|n| n.len() == 2)),
            "with a bucket, no blob is kept in the folder"
        );
    }
    assert!(
        seen.resumed_elsewhere > 0,
        "no upload was cut by a kill and carried on elsewhere"
    );
    for inst in &mut instances {
        kill(inst);
    }
    let verified = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["audit", "verify", "--database-url", &b.url, "--key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    // Another key on this database is refused by --check, in one line.
    let other = b.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    tandem_server::key::load_or_create(&other.join("server-key.p8")).unwrap();
    // The same master key, so that the server key is the one thing wrong.
    std::fs::copy(data.join("master.key"), other.join("master.key")).unwrap();
    let refused = serve_command(free_port(), &other, &shared)
        .arg("--check")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{line}");
    assert!(line.contains("did not sign"), "{line}");
    assert_eq!(line.trim_end().lines().count(), 1, "{line}");
    eprintln!(
        "multi_instance ({store}): {KILLS} kills, {starts} starts, {attempted} visits committed once, \
         {} blobs, {} uploads resumed elsewhere, {} failovers, log of {head} with {} anchors, \
         job runs {job_runs:?}, {:.1} s",
        seen.blobs.len(),
        seen.resumed_elsewhere,
        seen.failovers,
        anchors.len(),
        t0.elapsed().as_secs_f64()
    );
}
