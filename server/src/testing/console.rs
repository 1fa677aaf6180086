//! The console's HTTP API as a manager and legal staff use it, over real HTTP: one client
//! for the end-to-end tests (a server in the test process) and the terminal-phone tests (a
//! `tandem serve` process).

use serde_json::{Value, json};
use tandem_core::model::{AgentId, DeviceId};
use tandem_core::place::{Coordinate, Datum};

const DAY_MS: i64 = 86_400_000;

/// A signed-in console user.
pub struct Console {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// A case as the console lists it: its id, reference and first approved address.
#[derive(Debug, Clone)]
pub struct CaseRef {
    /// Case id.
    pub id: String,
    /// The bank's reference.
    pub case_ref: String,
    /// The first approved address.
    pub address: Coordinate,
}

impl Console {
    /// Signs in to the server at `base` (`http://127.0.0.1:…`).
    pub fn sign_in(base: &str, login: &str, password: &str) -> Console {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut console = Console {
            base: base.to_owned(),
            token: String::new(),
            agent,
        };
        let (status, body) = console.call(
            "POST",
            "/v1/login",
            Some(json!({"login": login, "password": password})),
        );
        assert_eq!(status, 200, "login as {login}: {body}");
        console.token = body["token"].as_str().expect("token").to_owned();
        console
    }

    /// Sends `method path` with an optional JSON body; returns the status and JSON answer
    /// (`Null` when the answer is not JSON).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let answer = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("POST", None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
            (m, _) => panic!("console: unsupported method {m}"),
        };
        let mut answer = answer.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = answer.status().as_u16();
        let bytes = answer.body_mut().read_to_vec().unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// Sends `POST path` and expects success; returns the JSON answer.
    pub fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call("POST", path, Some(body));
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {answer}"
        );
        answer
    }

    /// The bank this user works for.
    pub fn bank_id(&self) -> String {
        let (status, me) = self.call("GET", "/v1/me", None);
        assert_eq!(status, 200, "{me}");
        me["bank_ids"][0].as_str().expect("a bank").to_owned()
    }

    /// The bank's cases, in the order the console lists them.
    pub fn cases(&self) -> Vec<CaseRef> {
        let bank = self.bank_id();
        let (status, cases) = self.call("GET", &format!("/v1/banks/{bank}/cases"), None);
        assert_eq!(status, 200, "{cases}");
        cases
            .as_array()
            .expect("case list")
            .iter()
            .map(|c| {
                let id = c["id"].as_str().expect("case id").to_owned();
                let (status, case) = self.call("GET", &format!("/v1/cases/{id}"), None);
                assert_eq!(status, 200, "{case}");
                let a = &case["addresses"][0];
                let datum: Datum = a["datum"]
                    .as_str()
                    .expect("datum")
                    .parse()
                    .expect("datum name");
                let address = Coordinate::new(
                    i32::try_from(a["lat_e7"].as_i64().expect("lat")).expect("lat range"),
                    i32::try_from(a["lon_e7"].as_i64().expect("lon")).expect("lon range"),
                    datum,
                )
                .expect("coordinate");
                let case_ref = c["case_ref"].as_str().expect("case ref").to_owned();
                CaseRef {
                    id,
                    case_ref,
                    address,
                }
            })
            .collect()
    }

    /// Requests a visit to `case` from server time `now_ms` and approves it for `team`
    /// (with cash authorisation up to `cash_limit_fen`, or none); returns the visit id.
    pub fn approve_visit(
        &self,
        now_ms: i64,
        case: &str,
        team: &[AgentId],
        cash_limit_fen: Option<i64>,
    ) -> Result<String, (u16, Value)> {
        let request = self.post_ok(
            "/v1/visit-requests",
            json!({"case_id": case, "wanted_from_ms": now_ms,
                   "wanted_until_ms": now_ms + DAY_MS, "purpose": "外访"}),
        );
        let id = request["id"].as_str().expect("request id");
        let team: Vec<Value> = team
            .iter()
            .map(|a| json!({"agent_id": a.to_string()}))
            .collect();
        let mut approval = json!({"team": team, "valid_from_ms": now_ms - 60_000,
            "valid_until_ms": now_ms + 7 * DAY_MS, "letter_number": "WT-2026-118",
            "letter_valid_until_ms": now_ms + 30 * DAY_MS});
        if let Some(limit) = cash_limit_fen {
            approval["cash"] = json!({"limit_fen": limit, "currency": "CNY",
                "designated_account": "6222 0210 0012 3456 789", "methods": ["cash"]});
        }
        let (status, approved) = self.call(
            "POST",
            &format!("/v1/visit-requests/{id}/approve"),
            Some(approval),
        );
        if status != 201 {
            return Err((status, approved));
        }
        Ok(approved["visit_id"].as_str().expect("visit id").to_owned())
    }

    /// Gives `device` a range of `count` receipt numbers.
    pub fn serial_range(&self, device: DeviceId, count: u64) {
        self.post_ok(
            &format!("/v1/devices/{device}/serial-ranges"),
            json!({"count": count}),
        );
    }

    /// The bundles the server holds for `visit`: (bundle id, status).
    pub fn visit_bundles(&self, visit: &str) -> Vec<(String, String)> {
        let (status, body) = self.call("GET", &format!("/v1/visits/{visit}/bundles"), None);
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("bundle list")
            .iter()
            .map(|b| {
                (
                    b["bundle_id"].as_str().expect("id").to_owned(),
                    b["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect()
    }

    /// Downloads a bundle's export (ZIP bytes).
    pub fn export(&self, bundle: &str) -> Vec<u8> {
        let mut answer = self
            .agent
            .get(format!(
                "{}/v1/bundles/{bundle}/export?purpose=litigation%3A%20end-to-end%20test",
                self.base
            ))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .expect("export request");
        assert_eq!(answer.status(), 200, "export of {bundle}");
        answer
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("export body")
    }
}
