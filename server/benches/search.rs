//! Legal staff's evidence search under load (issue 15): the console benches' bank (100,000
//! cases, 20,000 visits with accepted bundles, 50,000 receipts), each visit's row in the
//! search's index (`evidence_visits`: a twenty-fifth quarantined, a twentieth flagged,
//! outcomes spread, the demo's four agents in turn) and 1,000,000 entries in the audit log,
//! seeded straight into the database; then a release-built `tandem serve` process on it and
//! `TANDEM_BENCH_CLIENTS` legal users signed in; first one of them alone, then all at once,
//! each sending, without pause, one search of every kind in turn: case reference prefix, debtor name prefix, bank, agent,
//! date range, state, flagged, outcome, and a later page by the keyset cursor. Every search
//! is also an audit append (the server records it). Reports each kind's p50, p95 and p99
//! and the rows on its page; on SQLite, and on PostgreSQL when `TANDEM_TEST_DATABASE_URL`
//! names a cluster. The peer, in the same run: the same clients GET the same pages' bytes
//! from nginx as static files (the floor of HTTP here).
//!
//! `./scripts/with-postgres cargo bench -p tandem-server --bench search`
//! (`TANDEM_BENCH_CLIENTS`, `TANDEM_BENCH_ROUNDS`, `TANDEM_BENCH_AUDIT_ENTRIES`,
//! `TANDEM_BENCH_BACKENDS=postgres` to skip SQLite, and the console data's
//! `TANDEM_BENCH_CASES`, `TANDEM_BENCH_VISITS`, `TANDEM_BENCH_RECEIPTS`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_server::db::{self, Role};

#[path = "support/audit_log.rs"]
mod audit_log;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
mod process;
use process::{Server, env_number, proc_status};
#[path = "support/console_data.rs"]
#[macro_use]
mod console_data;
use console_data::{Seeded, Val, percentile, placeholders, seed, sign_in, t};

/// The kinds of search every client sends in turn.
const KINDS: [&str; 9] = [
    "case reference prefix",
    "debtor name prefix",
    "bank",
    "agent",
    "date range (3 days)",
    "state: quarantined",
    "flagged",
    "outcome",
    "later page (keyset)",
];

/// What the clients search for.
struct Targets {
    seeded: Seeded,
    /// (visit_ms, visit id) of visits spread over the index: cursors of later pages.
    cursors: Vec<(i64, String)>,
    /// Days (`YYYY-MM-DD` in Shanghai) the visits fall on.
    days: Vec<String>,
}

/// The search's path for kind `k`, client `c`, round `r`.
fn path_of(k: usize, c: usize, r: usize, x: &Targets) -> String {
    let n = c * 31 + r * 7;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let q = match k {
        // Visited cases are every fifth: "BC-0123" names 100 cases, 20 of them visited.
        0 => format!("case_ref=BC-0{:03}", (n * 37) % 1000),
        // Surname and given name: about 830 cases, 170 of them visited.
        1 => {
            let name = &x.seeded.names[n % x.seeded.names.len()];
            let start: String = name.chars().take(2).collect();
            format!("debtor={}", enc(&start))
        }
        2 => format!("bank={}", x.seeded.bank),
        3 => format!("agent={}", x.seeded.agents[n % x.seeded.agents.len()]),
        4 => {
            let i = n % x.days.len().saturating_sub(2).max(1);
            let to = &x.days[(i + 2).min(x.days.len() - 1)];
            format!("from={}&to={}", x.days[i], to)
        }
        5 => "state=quarantined".into(),
        6 => "flagged=1".into(),
        7 => format!(
            "outcome={}",
            ["receipt", "promise", "dispute", "complaint"][n % 4]
        ),
        _ => {
            let (ms, id) = &x.cursors[n % x.cursors.len()];
            format!("before_ms={ms}&before_id={id}")
        }
    };
    format!("/evidence?{q}")
}

/// Each visit's row in the search's index and its bundle's flags, from the seeded bundles:
/// what the commit writes after verifying a manifest.
macro_rules! index_visits {
    ($pool:expr, $agents:expr) => {{
        let bundles: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT visit_id, bank_id, case_id, id, committed_ms, log_index FROM bundles \
             WHERE status = 'accepted' ORDER BY log_index",
        )
        .fetch_all(&$pool)
        .await
        .unwrap();
        let agents: &[String] = &$agents;
        let mut rows = Vec::new();
        let mut flags = Vec::new();
        for (i, (visit, bank, case, bundle, committed, log_index)) in bundles.iter().enumerate() {
            rows.push(vec![
                t(visit),
                t(bank),
                t(case),
                t(bundle),
                t(if i % 25 == 0 {
                    "quarantined"
                } else {
                    "accepted"
                }),
                Val::Int(committed - 2 * 3_600_000),
                t(&agents[i % agents.len()]),
                t(&agents[(i + 1) % agents.len()]),
                Val::Bool(i % 3 == 0),
                Val::Bool(i % 5 == 1),
                Val::Bool(i % 17 == 2),
                Val::Bool(i % 41 == 3),
                Val::Int(*log_index),
            ]);
            if i % 20 == 1 {
                flags.push(vec![
                    t(uuid::Uuid::now_v7().to_string()),
                    t(bundle),
                    t("review"),
                    t("{}"),
                    Val::Int(*committed),
                ]);
            }
        }
        insert_rows!(
            $pool,
            "evidence_visits",
            &[
                "visit_id",
                "bank_id",
                "case_id",
                "bundle_id",
                "status",
                "visit_ms",
                "lead_agent",
                "partner_agent",
                "receipt",
                "promise",
                "dispute",
                "complaint",
                "log_index",
            ],
            &rows
        );
        insert_rows!(
            $pool,
            "bundle_flags",
            &["id", "bundle_id", "kind", "detail", "created_ms"],
            &flags
        );
        let cursors: Vec<(i64, String)> = sqlx::query_as(
            "SELECT visit_ms, visit_id FROM evidence_visits ORDER BY visit_ms DESC, visit_id DESC",
        )
        .fetch_all(&$pool)
        .await
        .unwrap();
        cursors.into_iter().step_by(397).collect::<Vec<_>>()
    }};
}

/// Latencies per kind (ms), bytes and rows of each kind's first load, errors, wall time.
struct Run {
    latencies: Vec<Vec<f64>>,
    first: Vec<(usize, usize)>,
    errors: usize,
    wall: Duration,
}

/// Every client sends every kind `rounds` times; `cookies[c]` signs client `c` in (empty
/// for the static peer).
async fn load(
    base: &str,
    paths: Arc<dyn Fn(usize, usize, usize) -> String + Send + Sync>,
    cookies: Vec<String>,
    rounds: usize,
) -> Run {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, cookie) in cookies.into_iter().enumerate() {
        let (http, base, paths) = (http.clone(), base.to_owned(), paths.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = vec![Vec::new(); KINDS.len()];
            let mut first = vec![(0usize, 0usize); KINDS.len()];
            let mut errors = 0;
            for r in 0..rounds {
                for (k, lat) in latencies.iter_mut().enumerate() {
                    let t0 = Instant::now();
                    let mut req = http.get(format!("{base}{}", paths(k, c, r)));
                    if !cookie.is_empty() {
                        req = req.header("cookie", &cookie);
                    }
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let body = resp.bytes().await.unwrap_or_default();
                            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                            if r == 0 && c == 0 {
                                first[k] = (body.len(), rows_in(&body));
                            }
                        }
                        _ => errors += 1,
                    }
                }
            }
            (latencies, first, errors)
        }));
    }
    let mut run = Run {
        latencies: vec![Vec::new(); KINDS.len()],
        first: vec![(0, 0); KINDS.len()],
        errors: 0,
        wall: Duration::ZERO,
    };
    for (c, task) in tasks.into_iter().enumerate() {
        let (lat, first, errors) = task.await.unwrap();
        for (k, l) in lat.into_iter().enumerate() {
            run.latencies[k].extend(l);
        }
        if c == 0 {
            run.first = first;
        }
        run.errors += errors;
    }
    run.wall = started.elapsed();
    run
}

/// Visits listed on a results page (each links to its evidence page).
fn rows_in(body: &[u8]) -> usize {
    let needle = b"href=\"/evidence/visits/";
    body.windows(needle.len()).filter(|w| w == needle).count()
}

fn report(label: &str, run: &Run) {
    let total: usize = run.latencies.iter().map(Vec::len).sum();
    for (k, name) in KINDS.iter().enumerate() {
        let mut l = run.latencies[k].clone();
        l.sort_by(f64::total_cmp);
        println!(
            "| {label} | {name} | {:.1} | **{:.1}** | {:.1} | {} rows, {:.1} KB | |",
            percentile(&l, 0.5),
            percentile(&l, 0.95),
            percentile(&l, 0.99),
            run.first[k].1,
            run.first[k].0 as f64 / 1000.0,
        );
    }
    println!(
        "| {label} | all searches | | | | | {:.0} searches/s, {} errors |",
        total as f64 / run.wall.as_secs_f64(),
        run.errors
    );
}

async fn run_tandem(label: &str, database_url: Option<String>, clients: usize, rounds: usize) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let now = tandem_server::clock::system_now_ms();
    let url = database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", data.join("tandem.db").display()));
    let db = db::open(&url).await.unwrap();
    let seeded = seed(db.as_ref(), &url, Role::Legal, clients, now).await;
    db.close().await;
    let started = Instant::now();
    let cursors = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let c = index_visits!(pool, seeded.agents);
        pool.close().await;
        c
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let c = index_visits!(pool, seeded.agents);
        pool.close().await;
        c
    };
    eprintln!(
        "{label}: indexed the visits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The server's own key signs the anchors' checkpoints, as on a live server.
    let signer = tandem_server::key::load_or_create(&data.join("server-key.p8")).unwrap();
    let entries: i64 = env_number("TANDEM_BENCH_AUDIT_ENTRIES", 1_000_000);
    let started = Instant::now();
    audit_log::seed(&url, entries, &signer).await;
    eprintln!(
        "{label}: {entries} audit entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if url.starts_with("postgres") {
        // A live cluster's autovacuum would have analysed the tables long before anyone
        // searched; without statistics the planner guesses (and autovacuum then analyses
        // in the middle of the run).
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        pool.close().await;
    }
    // The days the visits fall on, in the bank's zone, oldest first.
    let mut days: Vec<String> = cursors
        .iter()
        .map(|(ms, _)| {
            chrono::DateTime::from_timestamp_millis(*ms)
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    days.sort();
    days.dedup();
    let server = Server::start(&data, database_url.as_deref());
    let cookies = sign_in(&server.base, &seeded.users).await;
    let targets = Arc::new(Targets {
        seeded,
        cursors,
        days,
    });
    let paths = {
        let targets = targets.clone();
        Arc::new(move |k: usize, c: usize, r: usize| path_of(k, c, r, &targets))
    };
    // One warm-up round (the server's caches and the database's pages), then one user
    // alone (what a search costs), then every user at once (the queue they make).
    let _ = load(&server.base, paths.clone(), cookies.clone(), 1).await;
    let alone = load(
        &server.base,
        paths.clone(),
        cookies[..1].to_vec(),
        rounds * 4,
    )
    .await;
    report(&format!("{label}, 1 user"), &alone);
    let run = load(&server.base, paths, cookies.clone(), rounds).await;
    report(&format!("{label}, {clients} users"), &run);
    println!(
        "| {label} | server peak memory | | | | | {} MiB |",
        proc_status(server.child.id(), "VmHWM:") / 1024
    );
    if label == "SQLite" {
        peer(
            &server.base,
            &cookies[0],
            &targets,
            clients,
            rounds,
            work.path(),
        )
        .await;
    }
}

/// nginx serving the same pages' bytes, as files, to the same clients.
async fn peer(
    base: &str,
    cookie: &str,
    targets: &Targets,
    clients: usize,
    rounds: usize,
    work: &Path,
) {
    let Some((nginx, nginx_base, root)) =
        nginx::start_nginx(work, "location /static/ { root ROOT; }", &["static"])
    else {
        println!("| nginx (peer) | not installed: `apt-get install nginx-light` | | | | | |");
        return;
    };
    let http = reqwest::Client::new();
    for k in 0..KINDS.len() {
        let body = http
            .get(format!("{base}{}", path_of(k, 0, 0, targets)))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::fs::write(root.join("static").join(format!("search{k}.html")), body).unwrap();
    }
    let paths = Arc::new(|k: usize, _: usize, _: usize| format!("/static/search{k}.html"));
    let alone = load(&nginx_base, paths.clone(), vec![String::new()], rounds * 4).await;
    report("nginx static, same bytes (peer), 1 client", &alone);
    let run = load(&nginx_base, paths, vec![String::new(); clients], rounds).await;
    report(
        &format!("nginx static, same bytes (peer), {clients} clients"),
        &run,
    );
    drop(nginx);
}

fn main() {
    let clients = env_number("TANDEM_BENCH_CLIENTS", 20usize);
    let rounds = env_number("TANDEM_BENCH_ROUNDS", 12usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| run | search | p50 ms | p95 ms | p99 ms | first page | throughput |");
        println!("|---|---|---|---|---|---|---|");
        // `TANDEM_BENCH_BACKENDS=postgres` skips SQLite (and its seeding, minutes long).
        let backends = std::env::var("TANDEM_BENCH_BACKENDS").unwrap_or_default();
        if backends.is_empty() || backends.contains("sqlite") {
            run_tandem("SQLite", None, clients, rounds).await;
        }
        match std::env::var("TANDEM_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let url = postgres::fresh_database(&admin).await;
                run_tandem("PostgreSQL", Some(url), clients, rounds).await;
            }
            _ => println!("| PostgreSQL | skipped: TANDEM_TEST_DATABASE_URL not set | | | | | |"),
        }
    });
}
