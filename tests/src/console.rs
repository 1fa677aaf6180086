//! The web console's API as a manager and legal staff use it, over real HTTP.

use serde_json::{Value, json};
use tandem_core::model::{AgentId, DeviceId};
use tandem_core::place::{Coordinate, Datum};
use tandem_server::db::Role;

use crate::{DAY_MS, Server};

/// A signed-in console user.
pub struct Console {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// A case as the console lists it: its id and first approved address.
#[derive(Debug, Clone)]
pub struct CaseRef {
    /// Case id.
    pub id: String,
    /// The first approved address.
    pub address: Coordinate,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

impl Console {
    /// Signs in as the demo's user of `role`.
    pub fn sign_in(server: &Server, role: Role) -> Console {
        let (login, password) = server.user(role);
        let agent = agent();
        let mut answer = agent
            .post(format!("{}/v1/login", server.base))
            .header("Content-Type", "application/json")
            .send(json!({"login": login, "password": password}).to_string())
            .expect("login request");
        assert_eq!(answer.status(), 200, "login as {role:?}");
        let body: Value =
            serde_json::from_slice(&answer.body_mut().read_to_vec().expect("login answer"))
                .expect("login JSON");
        Console {
            base: server.base.clone(),
            token: body["token"].as_str().expect("token").to_owned(),
            agent,
        }
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

    /// The bank this user works for.
    pub fn bank_id(&self) -> String {
        let (status, me) = self.call("GET", "/v1/me", None);
        assert_eq!(status, 200, "{me}");
        me["bank_ids"][0].as_str().expect("a bank").to_owned()
    }

    /// The bank's cases, by reference.
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
                let datum: Datum = serde_json::from_value(a["datum"].clone()).expect("datum name");
                let address = Coordinate::new(
                    i32::try_from(a["lat_e7"].as_i64().expect("lat")).expect("lat range"),
                    i32::try_from(a["lon_e7"].as_i64().expect("lon")).expect("lon range"),
                    datum,
                )
                .expect("coordinate");
                CaseRef { id, address }
            })
            .collect()
    }

    /// Requests a visit to `case` and approves it for `team` (with cash authorisation up to
    /// `cash_limit_fen`, or none); returns the visit id.
    pub fn approve_visit(
        &self,
        server: &Server,
        case: &str,
        team: &[AgentId],
        cash_limit_fen: Option<i64>,
    ) -> Result<String, (u16, Value)> {
        let now = server.now_ms();
        let (status, request) = self.call(
            "POST",
            "/v1/visit-requests",
            Some(json!({"case_id": case, "wanted_from_ms": now,
                        "wanted_until_ms": now + DAY_MS, "purpose": "外访"})),
        );
        assert_eq!(status, 201, "{request}");
        let id = request["id"].as_str().expect("request id");
        let team: Vec<Value> = team
            .iter()
            .map(|a| json!({"agent_id": a.to_string()}))
            .collect();
        let mut approval = json!({"team": team, "valid_from_ms": now - 60_000,
            "valid_until_ms": now + 7 * DAY_MS, "letter_number": "WT-2026-118",
            "letter_valid_until_ms": now + 30 * DAY_MS});
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
        let (status, body) = self.call(
            "POST",
            &format!("/v1/devices/{device}/serial-ranges"),
            Some(json!({"count": count})),
        );
        assert_eq!(status, 201, "{body}");
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
            .get(format!("{}/v1/bundles/{bundle}/export", self.base))
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
