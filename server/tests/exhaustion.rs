//! Unauthenticated exhaustion (issue 11 §4, §8), each against a real server on 127.0.0.1:
//! login floods meet a bounded hash pool and per-account and per-address backoff, `/metrics`
//! labels stay a closed set, idle and slow connections are closed, one address cannot hold
//! every connection, and the login answer is `no-store` with a `Secure` cookie when asked.
//! The actor throughout is anyone on the internet, unauthenticated (THREATS.md), unless a
//! test says otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Demo, TestBackend, TestServer, problem, seed_demo};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};
use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};
use tandem_server::serve::ConnLimits;
use tandem_server::{AppState, Config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// App state on `b` with the test defaults, then `tune`d.
async fn state(b: &TestBackend, tune: impl FnOnce(&mut Config)) -> AppState {
    let (signer, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
    let mut config = Config {
        body_limit_bytes: 64 * 1024,
        data_dir: b.dir.path().to_owned(),
        ..Config::default()
    };
    tune(&mut config);
    AppState::new(b.open().await, signer, b.master_key(), config).unwrap()
}

async fn demo_server(state: AppState) -> (TestServer, Demo) {
    let server = TestServer::start(state).await;
    let demo = seed_demo(
        server.state.db.as_ref(),
        tandem_server::demo::DEMO_BANK_CODE,
    )
    .await;
    (server, demo)
}

/// A client whose connections come from `ip` (any 127.x.y.z reaches the server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .unwrap()
}

async fn login_as(
    http: &reqwest::Client,
    server: &TestServer,
    login: &str,
    password: &str,
) -> reqwest::Response {
    http.post(server.url("/v1/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_login_flood_beyond_the_hash_queue_is_answered_503_with_retry_after() {
    for b in common::backends().await {
        // One hash at a time and nobody waiting: every login that arrives while one is being
        // checked is turned away at once instead of taking another thread and 19 MiB.
        let (server, _demo) = demo_server(
            state(&b, |c| {
                c.login.hash_workers = 1;
                c.login.hash_queue = 0;
                c.login.per_account.free_failures = 1_000;
                c.login.per_address.free_failures = 1_000;
            })
            .await,
        )
        .await;
        let attempts = (0..24).map(|i| {
            let http = server.http.clone();
            let url = server.url("/v1/login");
            async move {
                http.post(url)
                    .json(&json!({"login": format!("guess-{i}"), "password": "wrong"}))
                    .send()
                    .await
                    .unwrap()
            }
        });
        let answers = futures_join_all(attempts).await;
        let mut busy = 0;
        let mut unauthorized = 0;
        for resp in answers {
            match resp.status().as_u16() {
                503 => {
                    assert_eq!(retry_after(&resp), 1, "{}", b.label);
                    assert_eq!(resp.headers()["cache-control"], "no-store");
                    let (kind, _) = problem(resp, 503).await;
                    assert_eq!(kind, "login-busy");
                    busy += 1;
                }
                401 => unauthorized += 1,
                other => panic!("{}: unexpected {other}", b.label),
            }
        }
        assert!(busy > 0, "{}: no login was turned away", b.label);
        assert!(unauthorized > 0, "{}: no login was checked", b.label);
        // Once the flood is over, sign-in works again.
        let resp = login_as(&server.http, &server, "nobody", "wrong").await;
        assert_eq!(resp.status(), 401, "{}", b.label);
        server.state.db.close().await;
    }
}

/// `join_all` without the futures crate: spawn each, await each.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn guessing_one_accounts_password_is_slowed_down_per_account() {
    for b in common::backends().await {
        let (server, demo) = demo_server(
            state(&b, |c| {
                c.login.per_account.free_failures = 3;
                c.login.per_account.first_wait = Duration::from_secs(30);
                c.login.per_address.free_failures = 1_000;
            })
            .await,
        )
        .await;
        for _ in 0..3 {
            let resp = login_as(&server.http, &server, "manager", "guess").await;
            assert_eq!(resp.status(), 401, "{}", b.label);
        }
        let resp = login_as(&server.http, &server, "manager", "guess").await;
        assert_eq!(
            resp.status(),
            401,
            "{}: the failure that starts the wait",
            b.label
        );
        // Now the account waits, whoever asks and whatever the password: a guesser cannot
        // learn a right guess while waiting.
        let resp = login_as(&server.http, &server, "manager", demo.password("manager")).await;
        let wait = retry_after(&resp);
        assert!((29..=30).contains(&wait), "{}: Retry-After {wait}", b.label);
        let (kind, _) = problem(resp, 429).await;
        assert_eq!(kind, "login-rate-limited", "{}", b.label);
        let elsewhere = client_from([127, 0, 0, 2]);
        let resp = login_as(&elsewhere, &server, "manager", demo.password("manager")).await;
        assert_eq!(resp.status(), 429, "{}: from another address too", b.label);
        // Other accounts are not affected.
        let resp = login_as(&server.http, &server, "legal", demo.password("legal")).await;
        assert_eq!(resp.status(), 200, "{}", b.label);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn guessing_across_accounts_from_one_address_is_slowed_down_per_address() {
    for b in common::backends().await {
        let (server, demo) = demo_server(
            state(&b, |c| {
                c.login.per_account.free_failures = 1_000;
                c.login.per_address.free_failures = 4;
                c.login.per_address.first_wait = Duration::from_secs(60);
            })
            .await,
        )
        .await;
        let guesser = client_from([127, 0, 0, 3]);
        for i in 0..4 {
            let resp = login_as(&guesser, &server, &format!("user-{i}"), "guess").await;
            assert_eq!(resp.status(), 401, "{}", b.label);
        }
        // Signing in to an account of one's own does not reset the address's count...
        let resp = login_as(&guesser, &server, "admin", demo.password("admin")).await;
        assert_eq!(resp.status(), 200, "{}", b.label);
        let resp = login_as(&guesser, &server, "user-4", "guess").await;
        assert_eq!(
            resp.status(),
            401,
            "{}: the failure that starts the wait",
            b.label
        );
        // ...and while the address waits, not even the right password is checked.
        let resp = login_as(&guesser, &server, "admin", demo.password("admin")).await;
        let wait = retry_after(&resp);
        assert!((59..=60).contains(&wait), "{}: Retry-After {wait}", b.label);
        let (kind, _) = problem(resp, 429).await;
        assert_eq!(kind, "login-rate-limited", "{}", b.label);
        // Another address signs in to the same accounts as usual.
        let other = client_from([127, 0, 0, 4]);
        let resp = login_as(&other, &server, "admin", demo.password("admin")).await;
        assert_eq!(resp.status(), 200, "{}", b.label);
        let resp = login_as(&other, &server, "user-0", "guess").await;
        assert_eq!(resp.status(), 401, "{}", b.label);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn an_unknown_account_gets_the_same_answer_as_a_wrong_password_in_similar_time() {
    for b in common::backends().await {
        // Actor: anyone probing which sign-in names exist.
        let (server, _demo) = demo_server(
            state(&b, |c| {
                c.login.per_account.free_failures = 1_000;
                c.login.per_address.free_failures = 1_000;
                // The lockout's answers are compared in console_account.rs.
                c.account.max_failed_sign_ins = 1_000;
            })
            .await,
        )
        .await;
        let mut timings: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        let mut bodies: [Option<(u16, Value)>; 2] = [None, None];
        for _ in 0..7 {
            for (slot, login) in ["manager", "nobody-at-all"].into_iter().enumerate() {
                let start = Instant::now();
                let resp = login_as(&server.http, &server, login, "wrong").await;
                let status = resp.status().as_u16();
                assert_eq!(resp.headers()["cache-control"], "no-store");
                let body: Value = resp.json().await.unwrap();
                timings[slot].push(start.elapsed());
                bodies[slot] = Some((status, body));
            }
        }
        assert_eq!(bodies[0], bodies[1], "{}", b.label);
        assert_eq!(bodies[0].as_ref().unwrap().0, 401);
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (known, unknown) = (median(&mut timings[0]), median(&mut timings[1]));
        // Both pay for one argon2 hash; a skipped hash would be a hundred times faster. The
        // bound is loose on purpose: a loaded machine (CI on two cores) stretches single
        // answers, never the hash away.
        assert!(
            unknown * 4 >= known && known * 4 >= unknown,
            "{}: wrong password {known:?}, unknown account {unknown:?}",
            b.label
        );
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn the_login_answer_is_no_store_and_the_cookie_secure_only_when_asked() {
    for b in common::backends().await {
        let (plain, demo) = demo_server(state(&b, |_| {}).await).await;
        let resp = login_as(&plain.http, &plain, "legal", demo.password("legal")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        assert!(!cookie.contains("Secure"), "{}: {cookie}", b.label);
        // A client cannot claim TLS by itself when no proxy is trusted.
        let resp = plain
            .http
            .post(plain.url("/v1/login"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"login": "legal", "password": demo.password("legal")}))
            .send()
            .await
            .unwrap();
        assert!(
            !resp.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Secure")
        );
        let resp = login_as(&plain.http, &plain, "legal", "wrong").await;
        assert_eq!(resp.headers()["cache-control"], "no-store");
        plain.state.db.close().await;
    }
    for b in common::backends().await {
        // Actor: a network attacker, who would read a cookie sent over plain HTTP.
        let (server, demo) = demo_server(state(&b, |c| c.secure_cookies = true).await).await;
        let resp = login_as(&server.http, &server, "legal", demo.password("legal")).await;
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.ends_with("; Secure"), "{}: {cookie}", b.label);
        let token = resp.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = server
            .http
            .post(server.url("/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let clear = resp.headers()["set-cookie"].to_str().unwrap();
        assert!(
            clear.contains("Max-Age=0") && clear.ends_with("; Secure"),
            "{clear}"
        );
        server.state.db.close().await;
    }
    for b in common::backends().await {
        let (proxied, demo) =
            demo_server(state(&b, |c| c.trust_forwarded_proto = true).await).await;
        let resp = proxied
            .http
            .post(proxied.url("/v1/login"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"login": "legal", "password": demo.password("legal")}))
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        proxied.state.db.close().await;
    }
}

#[tokio::test]
async fn metrics_stay_small_after_ten_thousand_requests_with_random_methods_and_paths() {
    let b = common::sqlite();
    let server = TestServer::start(state(&b, |_| {}).await).await;
    let workers = (0..16u64).map(|w| {
        let http = server.http.clone();
        let base = server.base.clone();
        async move {
            let mut rng = StdRng::seed_from_u64(w);
            for _ in 0..625 {
                let len = rng.random_range(1..4_000);
                let method: String = (0..len)
                    .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
                    .collect();
                let path: String = (0..rng.random_range(1..200))
                    .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                    .collect();
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let resp = http
                    .request(method, format!("{base}/{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_client_error(), "{}", resp.status());
            }
        }
    });
    futures_join_all(workers).await;
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.len() < 1 << 20, "{} bytes", text.len());
    assert!(
        text.contains(r#"tandem_http_requests_total{method="other",route="unmatched",status="#),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
            ]
            .contains(&method),
            "{line}"
        );
        assert!(line.len() < 300, "{line}");
    }
}

/// Limits for the connection tests: each test shortens the one it checks.
fn limits(tune: impl FnOnce(&mut ConnLimits)) -> ConnLimits {
    let mut l = ConnLimits {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..ConnLimits::default()
    };
    tune(&mut l);
    l
}

async fn connection_server(tune: impl FnOnce(&mut ConnLimits)) -> (TestServer, TestBackend) {
    let b = common::sqlite();
    let server = TestServer::start_with(state(&b, |_| {}).await, limits(tune)).await;
    (server, b)
}

fn addr(server: &TestServer) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection (or `within` passes: panics); returns how
/// long it took and what was read.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {within:?}"),
            Ok(Ok(0) | Err(_)) => return (start.elapsed(), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let (server, _b) = connection_server(|l| l.idle_timeout = Duration::from_secs(1)).await;
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    let (after, _) = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );

    // Kept alive after an answer, then silent: closed the same way.
    let mut kept = TcpStream::connect(addr(&server)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (after, answer) = closed_within(&mut kept, Duration::from_secs(5)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_connection_that_sends_only_a_request_line_is_closed_by_the_header_timeout() {
    let (server, _b) = connection_server(|l| l.header_read_timeout = Duration::from_secs(1)).await;
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let (after, _) = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
}

#[tokio::test]
async fn a_connection_that_trickles_headers_is_closed_by_the_header_timeout() {
    // One header every 400 ms keeps the connection busy (the idle timeout never fires), but
    // the headers never end: the header-read timeout closes it.
    let (server, _b) = connection_server(|l| l.header_read_timeout = Duration::from_secs(2)).await;
    let stream = TcpStream::connect(addr(&server)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        writer
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if writer
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after 8 s");
    let after = start.elapsed();
    assert!(
        (Duration::from_millis(1_900)..Duration::from_secs(5)).contains(&after),
        "closed after {after:?}"
    );
    trickle.abort();
}

#[tokio::test]
async fn a_slow_body_after_prompt_headers_is_not_cut_by_the_header_timeout() {
    // Uploads stream bodies for minutes: only the headers are timed.
    let (server, _b) =
        connection_server(|l| l.header_read_timeout = Duration::from_millis(500)).await;
    let body = br#"{"login": "nobody", "password": "wrong"}"#;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    for chunk in body.chunks(8) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(chunk).await.unwrap();
    }
    let (_, answer) = closed_within(&mut stream, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connections() {
    let (server, _b) = connection_server(|l| l.per_address = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    // Give the server time to admit the three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut excess = TcpStream::connect(addr(&server)).await.unwrap();
    let _ = excess
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (after, answer) = closed_within(&mut excess, Duration::from_secs(2)).await;
    assert!(answer.is_empty(), "the excess connection was served");
    assert!(after < Duration::from_secs(1), "closed after {after:?}");

    // Another address is served as usual.
    let other = client_from([127, 0, 0, 5]);
    let resp = other.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // A freed place is available again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(addr(&server)).await.unwrap();
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, answer) = closed_within(&mut again, Duration::from_secs(5)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}
