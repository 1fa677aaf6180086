//! `--demo`: a demo organisation (one bank, its policy, console users, four agents with
//! enrollment codes, a few cases in Shanghai), created on first start, never duplicated.

use std::fmt;

use tandem_core::model::{
    AddressId, AgentId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber, Policy,
};
use tandem_core::place::{Coordinate, Datum};
use uuid::Uuid;

use crate::db::{
    Db, DbError, NewAddress, NewAgent, NewBank, NewCase, NewEnrollmentCode, NewUser, OrgSeed, Role,
};
use crate::secrets::{self, SecretError};

/// The demo bank's code: what makes seeding idempotent.
pub const DEMO_BANK_CODE: &str = "pujiang-cc";
/// How long the demo enrollment codes stay valid.
pub const ENROLLMENT_TTL_MS: i64 = 7 * 24 * 3_600_000;
const DAY_MS: i64 = 24 * 3_600_000;

/// Why the demo could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Generating or hashing a secret failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The database refused.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The built-in demo data is invalid (a bug in this file).
    #[error("demo data: {0}")]
    Data(String),
}

/// The secrets of a freshly seeded demo, printed once and never stored in clear.
#[derive(Debug, Clone)]
pub struct DemoCredentials {
    /// The bank's display name.
    pub bank_name: String,
    /// (login, role, password) of the console users.
    pub users: Vec<(String, Role, String)>,
    /// (employee number, name, enrollment code) of the agents.
    pub agents: Vec<(String, String, String)>,
    /// When the codes expire, UTC ms.
    pub codes_expire_ms: i64,
}

impl fmt::Display for DemoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Demo organisation created: {}", self.bank_name)?;
        writeln!(f, "Shown once; only hashes are stored.")?;
        writeln!(f)?;
        writeln!(f, "Console users (login / role / password):")?;
        for (login, role, password) in &self.users {
            writeln!(f, "  {login:<10} {:<8} {password}", role.as_str())?;
        }
        writeln!(f)?;
        // Printed as they are made: valid for the whole time to live.
        let days = (ENROLLMENT_TTL_MS + DAY_MS - 1) / DAY_MS;
        writeln!(
            f,
            "Agent enrollment codes (one use each, valid {days} days):"
        )?;
        for (no, name, code) in &self.agents {
            writeln!(f, "  {no:<6} {name}  {code}")?;
        }
        Ok(())
    }
}

/// A demo case: reference, masked card source, debtor, ID number source, arrears in fen,
/// and addresses (text, GCJ-02 latitude and longitude in 1e-7 degrees).
struct DemoCase {
    case_ref: &'static str,
    card: &'static str,
    debtor: &'static str,
    id_number: &'static str,
    outstanding_fen: i64,
    addresses: &'static [(&'static str, i32, i32)],
}

/// Real Shanghai addresses (public buildings), coordinates in GCJ-02 as AMap shows them,
/// rounded to about ten metres; debtors, card and ID numbers are fictional.
const CASES: &[DemoCase] = &[
    DemoCase {
        case_ref: "PJ-2026-0001",
        card: "6259 0000 0000 4821",
        debtor: "林晓虹",
        id_number: "310101198805120026",
        outstanding_fen: 4_862_350,
        addresses: &[("上海市黄浦区南京东路300号", 312_380_500, 1_214_817_400)],
    },
    DemoCase {
        case_ref: "PJ-2026-0002",
        card: "6259 0000 0000 7733",
        debtor: "郑国平",
        id_number: "31011519790304561X",
        outstanding_fen: 12_500_000,
        addresses: &[
            ("上海市浦东新区世纪大道100号", 312_346_800, 1_215_079_700),
            ("上海市浦东新区张杨路500号", 312_299_000, 1_215_180_000),
        ],
    },
    DemoCase {
        case_ref: "PJ-2026-0003",
        card: "6259 0000 0000 1058",
        debtor: "孙雅琴",
        id_number: "310104199211208843",
        outstanding_fen: 2_310_000,
        addresses: &[("上海市徐汇区肇嘉浜路1111号", 311_939_000, 1_214_372_000)],
    },
    DemoCase {
        case_ref: "PJ-2026-0004",
        card: "6259 0000 0000 9264",
        debtor: "吴建华",
        id_number: "310110196807150417",
        outstanding_fen: 780_500,
        addresses: &[("上海市杨浦区邯郸路220号", 312_990_000, 1_215_038_000)],
    },
];

const CONSOLE_USERS: &[(&str, &str, Role)] = &[
    ("manager", "王海燕", Role::Manager),
    ("legal", "刘志远", Role::Legal),
    ("admin", "系统管理员", Role::Admin),
];

const AGENTS: &[(&str, &str)] = &[
    ("A001", "陈晓东"),
    ("A002", "李静"),
    ("A003", "赵磊"),
    ("A004", "周敏"),
];

/// Builds the demo organisation with fresh secrets, returning it and the secrets to print.
pub fn build(now_ms: i64) -> Result<(OrgSeed, DemoCredentials), DemoError> {
    let bank = NewBank {
        id: BankId::new(),
        code: DEMO_BANK_CODE.to_owned(),
        name: "浦江银行信用卡中心".to_owned(),
    };
    let policy_json = serde_json::to_string(&Policy::defaults(bank.id))
        .map_err(|e| DemoError::Data(e.to_string()))?;
    let mut creds = DemoCredentials {
        bank_name: bank.name.clone(),
        users: Vec::new(),
        agents: Vec::new(),
        codes_expire_ms: now_ms + ENROLLMENT_TTL_MS,
    };
    let mut users = Vec::new();
    for &(login, name, role) in CONSOLE_USERS {
        let password = secrets::new_password()?;
        users.push(NewUser {
            id: Uuid::now_v7(),
            login: login.to_owned(),
            display_name: name.to_owned(),
            role,
            password_hash: Some(secrets::hash_password(&password)?),
            bank_ids: vec![bank.id],
        });
        creds.users.push((login.to_owned(), role, password));
    }
    let mut agents = Vec::new();
    for &(no, name) in AGENTS {
        let code = secrets::new_enrollment_code()?;
        agents.push(NewAgent {
            id: AgentId::new(),
            employee_no: no.to_owned(),
            user: NewUser {
                id: Uuid::now_v7(),
                login: format!("agent-{}", no.to_ascii_lowercase()),
                display_name: name.to_owned(),
                role: Role::Agent,
                password_hash: None,
                bank_ids: vec![bank.id],
            },
            enrollment: NewEnrollmentCode {
                id: Uuid::now_v7(),
                code_hash: secrets::enrollment_code_hash(&code),
                expires_ms: now_ms + ENROLLMENT_TTL_MS,
            },
        });
        creds.agents.push((no.to_owned(), name.to_owned(), code));
    }
    let bad = |e: &dyn fmt::Display| DemoError::Data(e.to_string());
    let mut cases = Vec::new();
    for c in CASES {
        let mut addresses = Vec::new();
        for &(text, lat_e7, lon_e7) in c.addresses {
            addresses.push(NewAddress {
                id: AddressId::new(),
                text: text.to_owned(),
                position: Coordinate::new(lat_e7, lon_e7, Datum::Gcj02).map_err(|e| bad(&e))?,
            });
        }
        cases.push(NewCase {
            id: CaseId::new(),
            bank_id: bank.id,
            case_ref: c.case_ref.to_owned(),
            card: MaskedCardNumber::mask(c.card).map_err(|e| bad(&e))?,
            debtor_name: c.debtor.to_owned(),
            id_number: MaskedIdNumber::mask(c.id_number).map_err(|e| bad(&e))?,
            outstanding_fen: c.outstanding_fen,
            entrustment_start_ms: now_ms,
            entrustment_end_ms: now_ms + 90 * DAY_MS,
            addresses,
        });
    }
    let seed = OrgSeed {
        bank,
        policy_json,
        users,
        agents,
        cases,
        now_ms,
    };
    Ok((seed, creds))
}

/// Seeds the demo organisation unless it exists, at `now` by the server's clock. Returns
/// the secrets to print when it was created now, `None` when it was there already.
pub async fn seed(db: &dyn Db, now: i64) -> Result<Option<DemoCredentials>, DemoError> {
    // Hashing takes a few hundred milliseconds per password: off the async workers.
    let (seed, creds) = tokio::task::spawn_blocking(move || build(now))
        .await
        .map_err(|e| DemoError::Data(e.to_string()))??;
    Ok(db.seed_org(&seed).await?.then_some(creds))
}

/// How many rows of each table the demo creates.
pub fn expected_counts() -> crate::db::TableCounts {
    let addresses: usize = CASES.iter().map(|c| c.addresses.len()).sum();
    let users = CONSOLE_USERS.len() + AGENTS.len();
    let n = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
    crate::db::TableCounts {
        banks: 1,
        users: n(users),
        user_banks: n(users),
        agents: n(AGENTS.len()),
        enrollment_codes: n(AGENTS.len()),
        devices: 0,
        cases: n(CASES.len()),
        case_addresses: n(addresses),
        policies: 1,
    }
}
