//! The manager's console under load (issue 14): one bank with 100,000 cases, 20,000 visits
//! (approved requests, their teams and accepted bundles), 50,000 receipts (most deposited,
//! some overdue) and 200 requests awaiting approval, seeded straight into the database; then
//! a release-built `tandem serve` process on it, and 20 managers signed in at once, each
//! loading the requests queue, a case search by debtor's name, the visit list and the
//! receipts page in turn, without pause, for a bounded number of rounds. Reports each
//! page's p50, p95 and p99, its weight on first load, and the pages served per second; on
//! SQLite, and on PostgreSQL when `TANDEM_TEST_DATABASE_URL` names a cluster. The peer, in
//! the same run: the same 20 clients GET the same pages' bytes from nginx as static files.
//!
//! `./scripts/with-postgres cargo bench -p tandem-server --bench console`
//! (`TANDEM_BENCH_CASES`, `TANDEM_BENCH_VISITS`, `TANDEM_BENCH_RECEIPTS`,
//! `TANDEM_BENCH_CLIENTS`, `TANDEM_BENCH_ROUNDS`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_server::db::{self, Role};

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
mod process;
use process::{Server, env_number, proc_status};
#[path = "support/console_data.rs"]
#[allow(dead_code)]
#[macro_use]
mod console_data;
use console_data::{Seeded, percentile, seed, sign_in};

/// The pages every client loads in turn: name and path (the search's text varies).
const PAGES: [&str; 4] = ["requests", "case search", "visits", "receipts"];

/// One page load's path for client `c` in round `r`.
fn path_of(page: usize, c: usize, r: usize, seeded: &Seeded) -> String {
    match page {
        0 => "/requests".into(),
        1 => {
            let name = &seeded.names[(c * 31 + r * 7) % seeded.names.len()];
            let q: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
            format!("/cases?q={q}")
        }
        2 => "/visits".into(),
        _ => "/receipts".into(),
    }
}

/// Latencies per page (ms), bytes of each page's first load, errors, wall time.
struct Run {
    latencies: Vec<Vec<f64>>,
    first_bytes: Vec<usize>,
    errors: usize,
    wall: Duration,
}

/// Every client loads every page `rounds` times; `cookies[c]` signs client `c` in (empty
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
            let mut latencies = vec![Vec::new(); PAGES.len()];
            let mut first = vec![0usize; PAGES.len()];
            let mut errors = 0;
            for r in 0..rounds {
                for (p, lat) in latencies.iter_mut().enumerate() {
                    let t0 = Instant::now();
                    let mut req = http.get(format!("{base}{}", paths(p, c, r)));
                    if !cookie.is_empty() {
                        req = req.header("cookie", &cookie);
                    }
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let body = resp.bytes().await.map(|b| b.len()).unwrap_or(0);
                            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                            if r == 0 {
                                first[p] = body;
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
        latencies: vec![Vec::new(); PAGES.len()],
        first_bytes: vec![0; PAGES.len()],
        errors: 0,
        wall: Duration::ZERO,
    };
    for task in tasks {
        let (lat, first, errors) = task.await.unwrap();
        for (p, l) in lat.into_iter().enumerate() {
            run.latencies[p].extend(l);
            run.first_bytes[p] = run.first_bytes[p].max(first[p]);
        }
        run.errors += errors;
    }
    run.wall = started.elapsed();
    run
}

fn report(label: &str, run: &Run) {
    let total: usize = run.latencies.iter().map(Vec::len).sum();
    for (p, name) in PAGES.iter().enumerate() {
        let mut l = run.latencies[p].clone();
        l.sort_by(f64::total_cmp);
        println!(
            "| {label} | {name} | {:.1} | **{:.1}** | {:.1} | {:.1} KB | |",
            percentile(&l, 0.5),
            percentile(&l, 0.95),
            percentile(&l, 0.99),
            run.first_bytes[p] as f64 / 1000.0,
        );
    }
    println!(
        "| {label} | all pages | | | | | {:.0} pages/s, {} errors |",
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
    let seeded = seed(db.as_ref(), &url, Role::Manager, clients, now).await;
    db.close().await;
    let server = Server::start(&data, database_url.as_deref());
    let cookies = sign_in(&server.base, &seeded.users).await;
    let seeded = Arc::new(seeded);
    let paths = {
        let seeded = seeded.clone();
        Arc::new(move |p: usize, c: usize, r: usize| path_of(p, c, r, &seeded))
    };
    // One warm-up round (the server's caches and the database's pages), then the run.
    let _ = load(&server.base, paths.clone(), cookies.clone(), 1).await;
    let run = load(&server.base, paths, cookies.clone(), rounds).await;
    report(label, &run);
    println!(
        "| {label} | server peak memory | | | | | {} MiB |",
        proc_status(server.child.id(), "VmHWM:") / 1024
    );
    // The peer: nginx serving the same pages' bytes, as files, to the same clients.
    if label == "SQLite" {
        peer(
            &server.base,
            &cookies[0],
            &seeded,
            clients,
            rounds,
            work.path(),
        )
        .await;
    }
}

async fn peer(
    base: &str,
    cookie: &str,
    seeded: &Seeded,
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
    for p in 0..PAGES.len() {
        let body = http
            .get(format!("{base}{}", path_of(p, 0, 0, seeded)))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::fs::write(root.join("static").join(format!("page{p}.html")), body).unwrap();
    }
    let paths = Arc::new(|p: usize, _: usize, _: usize| format!("/static/page{p}.html"));
    let run = load(&nginx_base, paths, vec![String::new(); clients], rounds).await;
    report("nginx static, same bytes (peer)", &run);
    drop(nginx);
}

fn main() {
    let clients = env_number("TANDEM_BENCH_CLIENTS", 20usize);
    let rounds = env_number("TANDEM_BENCH_ROUNDS", 25usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| run | page | p50 ms | p95 ms | p99 ms | first load | throughput |");
        println!("|---|---|---|---|---|---|---|");
        run_tandem("SQLite", None, clients, rounds).await;
        match std::env::var("TANDEM_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let url = postgres::fresh_database(&admin).await;
                run_tandem("PostgreSQL", Some(url), clients, rounds).await;
            }
            _ => println!("| PostgreSQL | skipped: TANDEM_TEST_DATABASE_URL not set | | | | | |"),
        }
    });
}
