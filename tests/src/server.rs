//! A real server in this process: its own tokio runtime, a listener on 127.0.0.1, the demo
//! organisation seeded, and the server's clock set to 10:00 Shanghai time today.

use std::sync::{Arc, OnceLock};

use crate::Console;
use tandem_server::clock::{ServerClock as _, ShiftedClock};
use tandem_server::demo::DemoCredentials;
use tandem_server::testing::TestBackend;
use tandem_server::{AppState, db::Role};

/// The backends to run against (SQLite always; PostgreSQL when configured, required in CI).
pub fn backends() -> Vec<TestBackend> {
    runtime().block_on(tandem_server::testing::backends())
}

/// One runtime for every server of the test binary (tests run on several threads; the
/// servers' tasks share these workers).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// The shift that puts the server at 10:00 in Shanghai (02:00 UTC) on today's UTC date.
fn ten_in_shanghai_offset_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let ten = now - now.rem_euclid(crate::DAY_MS) + 2 * crate::HOUR_MS;
    ten - now
}

/// A running server with the demo organisation.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state (database, key, blobs).
    pub state: AppState,
    /// The demo's logins, passwords and enrollment codes.
    pub demo: DemoCredentials,
    /// Which backend, for assertion messages.
    pub label: &'static str,
    /// Its clock: 10:00 in Shanghai when it starts, moved on with its teams' phones.
    pub clock: Arc<ShiftedClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _backend: TestBackend,
}

impl Server {
    /// Starts a server on `backend` and seeds the demo organisation.
    pub fn start(backend: TestBackend) -> Server {
        let label = backend.label;
        let clock = Arc::new(ShiftedClock::new(ten_in_shanghai_offset_ms()));
        let (state, demo, listener) = runtime().block_on(async {
            let state = backend.state().await.with_clock(clock.clone());
            let demo = tandem_server::demo::seed(state.db.as_ref(), clock.now_ms())
                .await
                .expect("seed demo")
                .expect("fresh database");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1");
            (state, demo, listener)
        });
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = tandem_server::app(state.clone());
        runtime().spawn(async move {
            let _ = axum_serve(listener, app, rx).await;
        });
        Server {
            base: format!("http://{addr}"),
            state,
            demo,
            label,
            clock,
            shutdown: Some(tx),
            _backend: backend,
        }
    }

    /// The server's clock, UTC ms (shifted into visiting hours).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The demo's console user of `role`, signed in.
    pub fn console(&self, role: Role) -> Console {
        let (login, password) = self.user(role);
        Console::sign_in(&self.base, login, password)
    }

    /// A console user's login and password for `role`.
    pub fn user(&self, role: Role) -> (&str, &str) {
        self.demo
            .users
            .iter()
            .find(|(_, r, _)| *r == role)
            .map(|(login, _, password)| (login.as_str(), password.as_str()))
            .unwrap_or_else(|| panic!("the demo has no {role:?}"))
    }

    /// The enrollment code of the demo's agent `i`.
    pub fn code(&self, i: usize) -> &str {
        &self.demo.agents[i].2
    }

    /// Runs `f` on the server's runtime (database checks from a synchronous test).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await
}
