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

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_server::db::{self, NewUser, Role};
use uuid::Uuid;

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
mod process;
use process::{env_number, proc_status};

const DAY_MS: i64 = 86_400_000;
/// The pages every client loads in turn: name and path (the search's text varies).
const PAGES: [&str; 4] = ["requests", "case search", "visits", "receipts"];

/// A value to bind in a seeding insert.
#[derive(Clone)]
enum Val {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    NullText,
    NullInt,
}

fn t(s: impl Into<String>) -> Val {
    Val::Text(s.into())
}

/// `($1, …), (…)` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts `rows` into `table` in chunks, on either pool, in one transaction.
macro_rules! insert_rows {
    ($pool:expr, $table:expr, $columns:expr, $rows:expr) => {{
        let rows: &[Vec<Val>] = $rows;
        let cols: &[&str] = $columns;
        let per = (30_000 / cols.len()).max(1);
        let mut tx = $pool.begin().await.unwrap();
        for chunk in rows.chunks(per) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                $table,
                cols.join(", "),
                placeholders(chunk.len(), cols.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                for v in row {
                    q = match v {
                        Val::Text(s) => q.bind(s.clone()),
                        Val::Int(i) => q.bind(*i),
                        Val::Bytes(b) => q.bind(b.clone()),
                        Val::NullText => q.bind(Option::<String>::None),
                        Val::NullInt => q.bind(Option::<i64>::None),
                    };
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }};
}

/// What the seed made that the clients need.
struct Seeded {
    /// (login, password) of each manager.
    managers: Vec<(String, String)>,
    /// Debtors' names to search for.
    names: Vec<String>,
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: [&str; 10] = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军"];

fn debtor(i: usize) -> String {
    format!(
        "{}{}{}",
        SURNAMES[i % SURNAMES.len()],
        GIVEN[(i / SURNAMES.len()) % GIVEN.len()],
        i
    )
}

/// The bulk rows, on either pool.
macro_rules! bulk {
    ($pool:expr, $bank:expr, $agents:expr, $devices:expr, $manager:expr, $cases:expr,
     $visits:expr, $receipts:expr, $now:expr) => {{
        let (bank, now, manager) = (&$bank, $now, $manager.to_string());
        let case_ids: Vec<String> = (0..$cases).map(|_| Uuid::now_v7().to_string()).collect();
        let address_ids: Vec<String> = (0..$cases).map(|_| Uuid::now_v7().to_string()).collect();
        let rows: Vec<Vec<Val>> = (0..$cases)
            .map(|i| {
                vec![
                    t(&case_ids[i]),
                    t(bank),
                    t(format!("BC-{i:06}")),
                    t(format!("**** **** **** {:04}", i % 10_000)),
                    t(debtor(i)),
                    t(format!("**************{:04}", (i * 7) % 10_000)),
                    Val::Int(100_000 + (i as i64 % 5_000) * 1_000),
                    t("active"),
                    Val::Int(now - 30 * DAY_MS),
                    Val::Int(now + 150 * DAY_MS),
                    Val::Int(now - 30 * DAY_MS),
                ]
            })
            .collect();
        insert_rows!(
            $pool,
            "cases",
            &[
                "id",
                "bank_id",
                "case_ref",
                "card_masked",
                "debtor_name",
                "id_number_masked",
                "outstanding_fen",
                "status",
                "entrustment_start_ms",
                "entrustment_end_ms",
                "created_ms",
            ],
            &rows
        );
        let rows: Vec<Vec<Val>> = (0..$cases)
            .map(|i| {
                vec![
                    t(&address_ids[i]),
                    t(&case_ids[i]),
                    t(format!("上海市浦东新区世纪大道{}号", i % 2000 + 1)),
                    Val::Int(312_380_500 + (i as i64 % 1000) * 100),
                    Val::Int(1_214_817_400 + (i as i64 % 1000) * 100),
                    t("gcj02"),
                ]
            })
            .collect();
        insert_rows!(
            $pool,
            "case_addresses",
            &["id", "case_id", "text", "lat_e7", "lon_e7", "datum"],
            &rows
        );
        // Visits: approved requests with their approval, team and an accepted bundle;
        // then 200 requests awaiting a decision.
        let pending = 200usize;
        let mut requests = Vec::new();
        let mut approvals = Vec::new();
        let mut team = Vec::new();
        let mut bundles = Vec::new();
        let mut visit_rows = Vec::new();
        for v in 0..$visits + pending {
            let case = (v * 5) % $cases;
            let request = Uuid::now_v7().to_string();
            let at = now - ((($visits + pending - v) as i64) * 60_000);
            let decided = v < $visits;
            requests.push(vec![
                t(&request),
                t(bank),
                t(&case_ids[case]),
                t(format!("[\"{}\"]", address_ids[case])),
                Val::Int(at),
                Val::Int(at + DAY_MS),
                t("核实居住地址，了解还款意愿"),
                t(&manager),
                Val::Int(at),
                t(if decided { "approved" } else { "pending" }),
                if decided { t(&manager) } else { Val::NullText },
                if decided {
                    Val::Int(at + 60_000)
                } else {
                    Val::NullInt
                },
            ]);
            if !decided {
                continue;
            }
            let approval = Uuid::now_v7().to_string();
            let visit = Uuid::now_v7().to_string();
            approvals.push(vec![
                t(&approval),
                t(&request),
                t(bank),
                t(&case_ids[case]),
                t(&visit),
                t(&manager),
                Val::Int(at + 60_000),
            ]);
            for (agent, device) in $agents.iter().zip($devices.iter()) {
                team.push(vec![t(&approval), t(agent), t(device)]);
            }
            let bundle = Uuid::now_v7().to_string();
            bundles.push(vec![
                t(&bundle),
                t(bank),
                t(&case_ids[case]),
                t(&visit),
                t(&$devices[0]),
                t(&$devices[1]),
                t(&$devices[0]),
                t(format!("{:064x}", v)),
                Val::Bytes(b"{}".to_vec()),
                Val::Bytes(b"[]".to_vec()),
                t("accepted"),
                Val::Int(at + 2 * 3_600_000),
                Val::Int(at + 2 * 3_600_000),
                Val::Int(v as i64),
                t("{\"failed_checks\":[],\"flags\":[],\"report\":{}}"),
                t("{}"),
            ]);
            visit_rows.push((case, visit, bundle, at));
        }
        insert_rows!(
            $pool,
            "visit_requests",
            &[
                "id",
                "bank_id",
                "case_id",
                "address_ids",
                "wanted_from_ms",
                "wanted_until_ms",
                "purpose",
                "requested_user",
                "created_ms",
                "status",
                "decided_by",
                "decided_ms",
            ],
            &requests
        );
        insert_rows!(
            $pool,
            "approvals",
            &[
                "id",
                "request_id",
                "bank_id",
                "case_id",
                "visit_id",
                "approved_by",
                "approved_ms"
            ],
            &approvals
        );
        insert_rows!(
            $pool,
            "approval_team",
            &["approval_id", "agent_id", "device_id"],
            &team
        );
        insert_rows!(
            $pool,
            "bundles",
            &[
                "id",
                "bank_id",
                "case_id",
                "visit_id",
                "lead_device_id",
                "partner_device_id",
                "uploaded_by",
                "manifest_digest",
                "manifest",
                "signatures",
                "status",
                "received_ms",
                "committed_ms",
                "log_index",
                "report",
                "answer",
            ],
            &bundles
        );
        let rows: Vec<Vec<Val>> = (0..$receipts)
            .map(|r| {
                let (case, visit, bundle, at) = &visit_rows[r % visit_rows.len()];
                let issued = at + 3_600_000;
                let day = chrono::DateTime::from_timestamp_millis(issued)
                    .unwrap()
                    .with_timezone(&chrono_tz::Asia::Shanghai)
                    .format("%Y-%m-%d")
                    .to_string();
                let deposited = r % 10 != 0;
                let overdue = !deposited && issued + 3 * DAY_MS < now;
                vec![
                    Val::Int(r as i64 + 1),
                    t(bank),
                    t(&case_ids[*case]),
                    t(format!("BC-{case:06}")),
                    t(visit),
                    t(bundle),
                    t(&$devices[0]),
                    Val::Int(10_000 + (r as i64 % 500) * 100),
                    t("CNY"),
                    t("cash"),
                    t(debtor(*case)),
                    t("debtor"),
                    Val::Int(issued),
                    t(&day),
                    Val::Int(issued + 2 * DAY_MS),
                    Val::Int(issued + 3_600_000),
                    if deposited {
                        t(format!("DEP-{r}"))
                    } else {
                        Val::NullText
                    },
                    if deposited { t(&day) } else { Val::NullText },
                    if deposited {
                        Val::Int(issued + DAY_MS)
                    } else {
                        Val::NullInt
                    },
                    if deposited {
                        t(&manager)
                    } else {
                        Val::NullText
                    },
                    if overdue {
                        Val::Int(issued + 2 * DAY_MS)
                    } else {
                        Val::NullInt
                    },
                ]
            })
            .collect();
        insert_rows!(
            $pool,
            "receipts",
            &[
                "serial",
                "bank_id",
                "case_id",
                "case_ref",
                "visit_id",
                "bundle_id",
                "device_id",
                "amount_fen",
                "currency",
                "method",
                "payer_name",
                "payer_role",
                "issued_ms",
                "issued_day",
                "due_ms",
                "recorded_ms",
                "deposit_ref",
                "deposit_day",
                "deposited_ms",
                "deposited_by",
                "overdue_ms",
            ],
            &rows
        );
    }};
}

/// Seeds the organisation (through the server's own storage: bank, policy, 20 managers,
/// agents with two enrolled phones) and the bulk rows (straight SQL).
async fn seed(db: &dyn db::Db, url: &str, clients: usize, now: i64) -> Seeded {
    let (mut org, creds) = tandem_server::demo::build(now).unwrap();
    let manager = org
        .users
        .iter()
        .find(|u| u.role == Role::Manager)
        .cloned()
        .unwrap();
    let password = creds
        .users
        .iter()
        .find(|(_, r, _)| *r == Role::Manager)
        .unwrap()
        .2
        .clone();
    let mut managers = vec![(manager.login.clone(), password.clone())];
    for i in 1..clients {
        org.users.push(NewUser {
            id: Uuid::now_v7(),
            login: format!("manager-{i}"),
            display_name: format!("经理{i}"),
            ..manager.clone()
        });
        managers.push((format!("manager-{i}"), password.clone()));
    }
    let bank = org.bank.id.to_string();
    let agents: Vec<String> = org.agents.iter().map(|a| a.id.to_string()).collect();
    assert!(db.seed_org(&org).await.unwrap());
    // Two phones, for the teams (approval_team names real devices).
    let mut devices = Vec::new();
    for i in 0..2 {
        let (signer, _) = tandem_core::crypto::SoftwareSigner::generate(
            tandem_core::crypto::SignatureAlgorithm::Ed25519,
        )
        .unwrap();
        use tandem_core::crypto::Signer as _;
        let device = tandem_core::model::DeviceId::new();
        let token = format!("tdv_bench{i}");
        db.enroll_device(
            &tandem_server::secrets::enrollment_code_hash(&creds.agents[i].2),
            &tandem_server::db::auth::NewDevice {
                id: device,
                public_key: signer.public_key(),
                token_hash: tandem_server::secrets::token_hash(&token),
            },
            now,
        )
        .await
        .unwrap();
        devices.push(device.to_string());
    }
    let cases = env_number("TANDEM_BENCH_CASES", 100_000usize);
    let visits = env_number("TANDEM_BENCH_VISITS", 20_000usize);
    let receipts = env_number("TANDEM_BENCH_RECEIPTS", 50_000usize);
    let started = Instant::now();
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        bulk!(
            pool, bank, agents, devices, manager.id, cases, visits, receipts, now
        );
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        bulk!(
            pool, bank, agents, devices, manager.id, cases, visits, receipts, now
        );
        pool.close().await;
    }
    eprintln!(
        "seeded {cases} cases, {visits} visits, {receipts} receipts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Seeded {
        managers,
        names: (0..cases).step_by(997).map(debtor).collect(),
    }
}

/// A `tandem serve` process (release build) on the seeded data.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, database_url: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd.spawn().expect("start tandem serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            let line = lines.next().expect("server stopped").expect("stdout");
            if let Some(url) = line.strip_prefix("tandem: listening on ") {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
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

/// Signs each manager in; the session cookie of each.
async fn sign_in(base: &str, managers: &[(String, String)]) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut cookies = Vec::new();
    for (login, password) in managers {
        let resp = http
            .post(format!("{base}/v1/login"))
            .json(&serde_json::json!({ "login": login, "password": password }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "sign-in of {login}");
        let body: serde_json::Value = resp.json().await.unwrap();
        cookies.push(format!(
            "tandem_session={}",
            body["token"].as_str().unwrap()
        ));
    }
    cookies
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
    let seeded = seed(db.as_ref(), &url, clients, now).await;
    db.close().await;
    let server = Server::start(&data, database_url.as_deref());
    let cookies = sign_in(&server.base, &seeded.managers).await;
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
    let Some((mut child, nginx_base, root)) =
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
    let _ = child.kill();
    let _ = child.wait();
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
