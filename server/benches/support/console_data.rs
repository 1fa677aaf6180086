//! The console benches' organisation: one bank (the demo organisation, with `clients`
//! console users of one role), 100,000 cases, 20,000 visits (approved requests, their
//! teams and accepted bundles), 50,000 receipts and 200 requests awaiting a decision,
//! seeded straight into the database; a release-built `tandem serve` process on it; and
//! signing its users in. `TANDEM_BENCH_CASES`, `TANDEM_BENCH_VISITS`,
//! `TANDEM_BENCH_RECEIPTS` set the sizes.

use std::time::Instant;

use tandem_server::db::{self, NewUser, Role};
use uuid::Uuid;

use super::process::env_number;

pub const DAY_MS: i64 = 86_400_000;
/// A value to bind in a seeding insert.
#[derive(Clone)]
pub enum Val {
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    NullText,
    NullInt,
}

pub fn t(s: impl Into<String>) -> Val {
    Val::Text(s.into())
}

/// `($1, …), (…)` for `rows` rows of `cols` columns.
pub fn placeholders(rows: usize, cols: usize) -> String {
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
                        Val::Bool(b) => q.bind(*b),
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
pub struct Seeded {
    /// (login, password) of each console user.
    pub users: Vec<(String, String)>,
    /// The bank.
    pub bank: String,
    /// Its agents.
    pub agents: Vec<String>,
    /// Debtors' names to search for.
    pub names: Vec<String>,
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: [&str; 10] = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军"];

pub fn debtor(i: usize) -> String {
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

/// Seeds the organisation (through the server's own storage: bank, policy, `clients`
/// console users of `role`, agents with two enrolled phones) and the bulk rows (straight
/// SQL).
pub async fn seed(db: &dyn db::Db, url: &str, role: Role, clients: usize, now: i64) -> Seeded {
    let (mut org, creds) = tandem_server::demo::build(now).unwrap();
    let of_role = |role: Role| org.users.iter().find(|u| u.role == role).cloned().unwrap();
    let manager = of_role(Role::Manager);
    let model = of_role(role);
    let password = creds
        .users
        .iter()
        .find(|(_, r, _)| *r == role)
        .unwrap()
        .2
        .clone();
    let mut users = vec![(model.login.clone(), password.clone())];
    for i in 1..clients {
        let login = format!("{}-{i}", model.login);
        org.users.push(NewUser {
            id: Uuid::now_v7(),
            login: login.clone(),
            display_name: format!("{}{i}", model.display_name),
            ..model.clone()
        });
        users.push((login, password.clone()));
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
        users,
        bank,
        agents,
        names: (0..cases).step_by(997).map(debtor).collect(),
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Signs each user in; the session cookie of each.
pub async fn sign_in(base: &str, users: &[(String, String)]) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut cookies = Vec::new();
    for (login, password) in users {
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
