//! Case import over real HTTP on every backend: good CSV and JSON files, each kind of bad
//! row named by line or index and field, all-or-nothing, numbers masked, size limits.
//! Negative tests name the actor they stop (THREATS.md).

mod common;

use common::{TestServer, seed_demo};
use serde_json::{Value, json};

const CSV_HEADER: &str = "case_ref,card_number,debtor_name,id_number,debtor_phone,\
outstanding_fen,entrustment_start_ms,entrustment_end_ms,address_1,lat_e7_1,lon_e7_1,datum_1,\
address_2,lat_e7_2,lon_e7_2,datum_2";

/// A clear card and ID number that must never come back or be stored.
const CARD: &str = "6222 0212 3456 7890";
const ID_NO: &str = "31010119800101123X";

fn csv_row(case_ref: &str, card: &str, id: &str) -> String {
    format!(
        "{case_ref},{card},张三,{id},13800138000,123456,1796000000000,1803000000000,\
         \"上海市黄浦区人民大道200号, 3楼\",312317000,1214727000,gcj02,,,,"
    )
}

async fn import(
    server: &TestServer,
    token: &str,
    bank: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    server
        .http
        .post(server.url(&format!("/v1/banks/{bank}/cases/import")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn problem(resp: reqwest::Response, status: u16) -> (String, Value, String) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let kind = body["type"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    (kind, body, text)
}

async fn case_count(server: &TestServer) -> i64 {
    server.state.db.counts().await.unwrap().cases
}

#[tokio::test]
async fn a_good_csv_file_is_imported_with_numbers_masked() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        // A spreadsheet's UTF-8 export: byte-order mark, quoted address with a comma, a
        // second address group on one row and none on the others.
        let csv = format!(
            "\u{feff}{CSV_HEADER}\n{}\n{}\nIMP-3,6222021234560003,王五,310101198001010003,,0,\
             1796000000000,1803000000000,上海市徐汇区肇嘉浜路1111号,311939000,1214372000,\
             bd09,上海市杨浦区邯郸路220号,312990000,1215038000,wgs84\n",
            csv_row("IMP-1", CARD, ID_NO),
            csv_row("IMP-2", "6222021234560002", "310101198001010002"),
        );
        let before = case_count(&server).await;
        let resp = import(&server, &token, &bank, "text/csv; charset=utf-8", csv).await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["imported"], 3);
        assert_eq!(case_count(&server).await, before + 3);

        let id = body["cases"][0]["id"].as_str().unwrap().to_owned();
        let resp = server
            .http
            .get(server.url(&format!("/v1/cases/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("3456 7890") && !text.contains("34567890"),
            "card in clear"
        );
        assert!(!text.contains("198001011"), "ID number in clear");
        let case: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(case["card_masked"], "**** **** **** 7890");
        assert_eq!(case["id_number_masked"], "**************123X");
        assert_eq!(
            case["addresses"][0]["text"],
            "上海市黄浦区人民大道200号, 3楼"
        );
        assert_eq!(case["addresses"][0]["datum"], "gcj02");
        assert_eq!(case["addresses"][0]["lat_e7"], 312_317_000);

        // Stored masked: what the database holds is the masked form only.
        let stored = server
            .state
            .db
            .case(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.card.as_str(), "**** **** **** 7890");
        assert_eq!(stored.id_number.as_str(), "**************123X");

        let third = body["cases"][2]["id"].as_str().unwrap();
        let third = server
            .state
            .db
            .case(third.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.addresses.len(), 2);

        let list: Vec<Value> = server
            .http
            .get(server.url(&format!("/v1/banks/{bank}/cases?limit=1000")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(list.iter().any(|c| c["case_ref"] == "IMP-2"));
        // The list shows each case's addresses, as the case page does.
        let third = list.iter().find(|c| c["case_ref"] == "IMP-3").unwrap();
        assert_eq!(third["addresses"].as_array().unwrap().len(), 2);
        assert!(
            list.iter()
                .all(|c| !c["addresses"].as_array().unwrap().is_empty())
        );
        assert!(
            list.iter()
                .all(|c| c["card_masked"].as_str().unwrap().starts_with("****"))
        );
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_good_json_file_is_imported() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("admin", demo.password("admin")).await;
        let cases = json!([
            {"case_ref": "J-1", "card_number": CARD, "debtor_name": "张三", "id_number": ID_NO,
             "outstanding_fen": 500, "entrustment_start_ms": 1_796_000_000_000_i64,
             "entrustment_end_ms": 1_803_000_000_000_i64,
             "addresses": [{"text": "上海市黄浦区南京东路300号", "lat_e7": 312_380_500,
                            "lon_e7": 1_214_817_400, "datum": "gcj02"}]},
            {"case_ref": "J-2", "card_number": "6222021234560002", "debtor_name": "李四",
             "id_number": "310101198001010002", "debtor_phone": "+86 138-0000-0000",
             "outstanding_fen": 0, "entrustment_start_ms": 1_796_000_000_000_i64,
             "entrustment_end_ms": 1_803_000_000_000_i64,
             "addresses": [{"text": "x", "lat_e7": 1, "lon_e7": 2, "datum": "wgs84"}]}
        ]);
        let resp = import(
            &server,
            &token,
            &bank,
            "application/json",
            cases.to_string(),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["imported"], 2);
        assert_eq!(body["cases"][1]["case_ref"], "J-2");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn each_bad_csv_row_is_named_by_line_and_field_and_nothing_is_stored() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        // Threat: anyone sending bad input — and a bank file's clear numbers must not leak
        // back through error messages.
        let bad_card = "6222 0212 34";
        let rows = [
            csv_row("OK-1", CARD, ID_NO),                   // line 2: good
            csv_row("BAD-CARD", bad_card, ID_NO),           // line 3
            csv_row("BAD-ID", CARD, "3101011980010112345"), // line 4
            csv_row("", CARD, ID_NO),                       // line 5
            csv_row("BAD-DATUM", CARD, ID_NO).replace("gcj02", "mars"), // line 6
            csv_row("BAD-LAT", CARD, ID_NO).replace("312317000", "912317000"), // line 7
            csv_row("BAD-FEN", CARD, ID_NO).replace("123456", "12.50"), // line 8
            csv_row("BAD-END", CARD, ID_NO).replace("1803000000000", "1700000000000"), // 9
            csv_row("OK-1", CARD, ID_NO),                   // line 10: duplicate
            "SHORT,1,2".to_owned(),                         // line 11
        ];
        let csv = format!("{CSV_HEADER}\n{}\n", rows.join("\n"));
        let before = case_count(&server).await;
        let (kind, body, text) =
            problem(import(&server, &token, &bank, "text/csv", csv).await, 422).await;
        assert_eq!(kind, "import-rows-invalid", "{}", b.label);
        let errors: Vec<(u64, String)> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["line"].as_u64().unwrap(),
                    e["field"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for expected in [
            (3, "card_number"),
            (4, "id_number"),
            (5, "case_ref"),
            (6, "datum_1"),
            (7, "lat_e7_1"),
            (8, "outstanding_fen"),
            (9, "entrustment_end_ms"),
            (10, "case_ref"),
            (11, "row"),
        ] {
            assert!(
                errors.contains(&(expected.0, expected.1.to_owned())),
                "{expected:?} missing from {errors:?}"
            );
        }
        assert!(
            !errors.iter().any(|(l, _)| *l == 2),
            "the good row has no error"
        );
        for secret in [CARD, bad_card, "3456 7890", ID_NO, "3101011980010112345"] {
            assert!(!text.contains(secret), "a number came back in the error");
        }
        assert_eq!(case_count(&server).await, before, "nothing stored");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn bad_json_rows_are_named_by_index_and_a_known_reference_is_refused() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        let good = json!({"case_ref": "J-1", "card_number": CARD, "debtor_name": "张三",
            "id_number": ID_NO, "outstanding_fen": 5, "entrustment_start_ms": 1_796_000_000_000_i64,
            "entrustment_end_ms": 1_803_000_000_000_i64, "addresses": [{"text": "x", "lat_e7": 1, "lon_e7": 2,
            "datum": "gcj02"}]});
        let mut bad_type = good.clone();
        bad_type["case_ref"] = json!("J-2");
        bad_type["card_number"] = json!(6_222_021_234_567_890_i64);
        let mut no_address = good.clone();
        no_address["case_ref"] = json!("J-3");
        no_address["addresses"] = json!([]);
        let mut extra = good.clone();
        extra["case_ref"] = json!("J-4");
        extra["card_no"] = json!("x");
        let body = json!([good, bad_type, no_address, extra, 7]);
        let before = case_count(&server).await;
        // Threat: anyone sending bad input.
        let (kind, body, text) = problem(
            import(&server, &token, &bank, "application/json", body.to_string()).await,
            422,
        )
        .await;
        assert_eq!(kind, "import-rows-invalid");
        let errors: Vec<(u64, String)> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["index"].as_u64().unwrap(),
                    e["field"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for expected in [
            (1, "card_number"),
            (2, "address"),
            (3, "card_no"),
            (4, "row"),
        ] {
            assert!(
                errors.contains(&(expected.0, expected.1.to_owned())),
                "{errors:?}"
            );
        }
        assert!(!text.contains("6222021234567890"));
        assert_eq!(case_count(&server).await, before);

        // The good row alone goes in; sending it again is a row error, not a second copy.
        let once = json!([good]).to_string();
        let resp = import(&server, &token, &bank, "application/json", once.clone()).await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let (kind, body, _) = problem(
            import(&server, &token, &bank, "application/json", once).await,
            422,
        )
        .await;
        assert_eq!(kind, "import-rows-invalid");
        assert_eq!(body["errors"][0]["index"], 0);
        assert_eq!(body["errors"][0]["field"], "case_ref");
        assert_eq!(case_count(&server).await, before + 1);

        // Not an array, not JSON, not a known media type.
        let resp = import(&server, &token, &bank, "application/json", "{\"a\":1}").await;
        assert_eq!(problem(resp, 400).await.0, "malformed-request");
        let resp = import(&server, &token, &bank, "application/json", "[{").await;
        assert_eq!(problem(resp, 400).await.0, "malformed-request");
        let resp = import(&server, &token, &bank, "application/xml", "<a/>").await;
        assert_eq!(problem(resp, 415).await.0, "import-media-type");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn huge_imports_are_refused_cleanly() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        let before = case_count(&server).await;
        // Threat: anyone sending bad input to fill memory or the disk.
        let mut csv = String::from(CSV_HEADER);
        for i in 0..20_000 {
            csv.push('\n');
            csv.push_str(&csv_row(&format!("BIG-{i}"), CARD, ID_NO));
        }
        assert!(
            csv.len() < 8 << 20,
            "within the body limit: the row count refuses it"
        );
        let (kind, _, _) =
            problem(import(&server, &token, &bank, "text/csv", csv).await, 413).await;
        assert_eq!(kind, "import-too-many-rows", "{}", b.label);

        let rows: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
        let resp = import(
            &server,
            &token,
            &bank,
            "application/json",
            json!(rows).to_string(),
        );
        assert_eq!(problem(resp.await, 413).await.0, "import-too-many-rows");

        let big = format!("{CSV_HEADER}\n{}", "x".repeat(9 << 20));
        let resp = import(&server, &token, &bank, "text/csv", big).await;
        assert_eq!(problem(resp, 413).await.0, "import-too-large");
        assert_eq!(case_count(&server).await, before, "nothing stored");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn only_managers_and_admins_of_the_bank_import() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "bank2").await;
        let bank = demo.bank_id().to_string();
        let csv = format!("{CSV_HEADER}\n{}\n", csv_row("X-1", CARD, ID_NO));
        // Threat: a user of another bank — its id is as good as unknown.
        let token = server
            .login("bank2-manager", other.password("bank2-manager"))
            .await;
        let resp = import(&server, &token, &bank, "text/csv", csv.clone()).await;
        assert_eq!(problem(resp, 404).await.0, "not-found", "{}", b.label);
        let case = &demo.seed.cases[0].id;
        let resp = server
            .http
            .get(server.url(&format!("/v1/cases/{case}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(resp, 404).await.0, "not-found");
        // Threat: a role without need — legal staff read cases but do not load them.
        let token = server.login("legal", demo.password("legal")).await;
        let resp = import(&server, &token, &bank, "text/csv", csv).await;
        assert_eq!(problem(resp, 403).await.0, "forbidden");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_file_of_exactly_the_row_limit_is_stored_whole() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        let mut csv = String::from(CSV_HEADER);
        for i in 0..10_000 {
            csv.push('\n');
            csv.push_str(&csv_row(&format!("FULL-{i:05}"), CARD, ID_NO));
        }
        let before = case_count(&server).await;
        let started = std::time::Instant::now();
        let resp = import(&server, &token, &bank, "text/csv", csv).await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        eprintln!(
            "{}: 10,000-row CSV import (debug build) took {} ms",
            b.label,
            started.elapsed().as_millis()
        );
        assert_eq!(case_count(&server).await, before + 10_000);
        assert_eq!(
            server.state.db.counts().await.unwrap().case_addresses,
            i64::try_from(
                demo.seed
                    .cases
                    .iter()
                    .map(|c| c.addresses.len())
                    .sum::<usize>()
            )
            .unwrap()
                + 10_000
        );
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_file_without_its_header_row_is_refused_without_quoting_a_cell() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        // Threat: anyone sending bad input — a bank's file exported without its header
        // row puts a debtor's card, ID and phone numbers where the column names should be;
        // the answer must not carry them back.
        let card = "6222021000123456789";
        let phone = "13800138000";
        let first = format!(
            "NOHDR-1,{card},Zhang San,{ID_NO},{phone},123456,1796000000000,1803000000000,\
             上海市黄浦区人民大道200号,312317000,1214727000,gcj02"
        );
        let csv = format!("{first}\n{}\n", csv_row("NOHDR-2", CARD, ID_NO));
        let before = case_count(&server).await;
        let (kind, body, text) =
            problem(import(&server, &token, &bank, "text/csv", csv).await, 422).await;
        assert_eq!(kind, "import-rows-invalid", "{}", b.label);
        assert_eq!(body["errors"][0]["line"], 1);
        assert_eq!(body["errors"][0]["field"], "header");
        for secret in [card, phone, ID_NO, "Zhang San", "NOHDR-1", "人民大道"] {
            assert!(!text.contains(secret), "{secret} came back: {text}");
        }

        // A header with one stray column holding a number names the column by its place.
        let csv = format!(
            "{CSV_HEADER},{card}\n{},\n",
            csv_row("NOHDR-3", CARD, ID_NO)
        );
        let (_, body, text) =
            problem(import(&server, &token, &bank, "text/csv", csv).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "column 17", "{text}");
        assert!(!text.contains(card));
        assert_eq!(case_count(&server).await, before, "nothing stored");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn formulas_and_direction_overrides_are_kept_as_given_and_shown_escaped() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let token = server.login("manager", demo.password("manager")).await;
        // Threat: anyone sending bad input — a debtor name crafted in a bank's spreadsheet
        // to run a formula when a report is opened, or to read backwards on a screen.
        let names = [
            "=cmd|' /C calc'!A0",
            "+SUM(1+1)",
            "@SUM(1+1)",
            "-2+3",
            "=HYPERLINK(\"http://127.0.0.1/x\",\"点击\")",
            "张三\u{202E}0987",
            "\u{2066}李四\u{2069}",
        ];
        let rows: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({"case_ref": format!("FX-{i}"), "card_number": CARD, "debtor_name": name,
                    "id_number": ID_NO, "outstanding_fen": 5,
                    "entrustment_start_ms": 1_796_000_000_000_i64,
                    "entrustment_end_ms": 1_803_000_000_000_i64,
                    "addresses": [{"text": format!("上海\u{202E}{i}号"), "lat_e7": 312_317_000,
                        "lon_e7": 1_214_727_000, "datum": "gcj02"}]})
            })
            .collect();
        let resp = import(
            &server,
            &token,
            &bank,
            "application/json",
            Value::Array(rows).to_string(),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let body: Value = resp.json().await.unwrap();
        for (i, name) in names.iter().enumerate() {
            let id = body["cases"][i]["id"].as_str().unwrap();
            // The record keeps the bank's text exactly as given: it may be evidence.
            let stored = server
                .state
                .db
                .case(id.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.debtor_name, *name);
            // What a screen shows: no direction control survives, each is shown as its code.
            let shown: Value = server
                .http
                .get(server.url(&format!("/v1/cases/{id}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let shown_name = shown["debtor_name"].as_str().unwrap();
            assert!(!tandem_core::text::has_bidi_controls(shown_name));
            assert_eq!(shown_name, tandem_core::text::visible(name));
            let address = shown["addresses"][0]["text"].as_str().unwrap();
            assert_eq!(address, format!("上海<U+202E>{i}号"));
            // What a spreadsheet gets: never a formula.
            let cell = tandem_core::text::spreadsheet_cell(&stored.debtor_name);
            assert!(!tandem_core::text::looks_like_formula(&cell), "{cell}");
        }
        assert_eq!(
            tandem_core::text::visible(names[5]),
            "张三<U+202E>0987",
            "the override is visible"
        );
        server.state.db.close().await;
    }
}
