//! A fault-injecting TCP proxy on 127.0.0.1, between simulated phones and the server.
//!
//! Each accepted connection is given one [`Fault`] by the proxy's [`Plan`] (a script, a
//! seeded random draw, or a reset every so many bytes counted over all connections), and
//! two threads pump it: client→server and server→client. HTTP/1.1 is not parsed: an
//! answer starts when the server sends bytes after the client did, which is how a phone's
//! requests and the server's answers alternate on a connection.
//!
//! Bounded in time: sockets poll with short read timeouts, every connection ends after
//! [`MAX_CONNECTION_LIFE`], stalls last a given time, and dropping the proxy stops all of
//! its threads within a poll interval.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// How often blocked threads look at their stop flags.
const POLL: Duration = Duration::from_millis(20);
/// No connection is kept longer than this, whatever the plan.
pub const MAX_CONNECTION_LIFE: Duration = Duration::from_secs(600);
/// A write that makes no progress this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from a socket at a time.
const BUF: usize = 64 << 10;
/// How long the server must stay quiet before a lost answer counts as read whole.
const ANSWER_QUIET: Duration = Duration::from_millis(100);
/// The longest a lost answer is read for.
const ANSWER_MAX: Duration = Duration::from_secs(10);

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded untouched.
    Clean,
    /// Every piece is held this long before it is forwarded, both ways (a slow network).
    Delay(Duration),
    /// Reset once `after` client bytes have been forwarded on this connection (mid-request).
    ResetRequest {
        /// Client bytes forwarded before the reset.
        after: u64,
    },
    /// Forward `after` bytes of the `nth` answer on this connection (from 1), then reset;
    /// an answer that arrives shorter loses at least its last byte.
    ResetResponse {
        /// Which answer.
        nth: u32,
        /// Its bytes forwarded before the reset.
        after: u64,
    },
    /// Forward `after` bytes of the `nth` answer (or fewer, as for
    /// [`Fault::ResetResponse`]), then close cleanly: a truncated answer.
    Truncate {
        /// Which answer.
        nth: u32,
        /// Its bytes forwarded before the close.
        after: u64,
    },
    /// Once `after` client bytes have been forwarded, nothing moves either way for `hold`
    /// (longer than the client's read timeout), then the connection is reset.
    Stall {
        /// Client bytes forwarded before the stall.
        after: u64,
        /// How long nothing moves.
        hold: Duration,
    },
    /// The `nth` request is forwarded whole and the server's answer read, then the client's
    /// connection is reset without it: the server acted, the phone never hears of it.
    LoseResponse {
        /// Which answer.
        nth: u32,
    },
}

/// Parameters of a seeded random plan. Every connection gets a breaking fault somewhere
/// within its first requests (a client keeps a good connection for all it sends, so a
/// connection left clean would end the faults), and some connections are slow as well.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomFaults {
    /// The seed (print it: the same seed draws the same faults for the same connections).
    pub seed: u64,
    /// Faults on answers fall on one of the first `answers` answers of a connection.
    pub answers: u32,
    /// Mid-request resets and stalls fall within this many client bytes of a connection.
    pub request_span: u64,
    /// How long a stall holds: make it longer than the client's read timeout.
    pub stall: Duration,
    /// Share of connections also slowed down by 1–20 ms per piece (0.0–1.0).
    pub slow: f64,
}

/// How the proxy chooses faults.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// No faults.
    Clean,
    /// No faults, but every connection is slow: each piece is held this long.
    Slow(Duration),
    /// Connection `i` (from 0, counted since the plan was set) gets `faults[i]`; later ones
    /// are clean.
    Script(Vec<Fault>),
    /// Each connection draws a fault from a seeded RNG.
    Random(RandomFaults),
    /// Whichever connection carries the client→server byte count (over all connections,
    /// since the plan was set) past each multiple of `bytes` is reset right there.
    ResetEvery {
        /// Client bytes between two resets.
        bytes: u64,
    },
}

/// What went through the proxy, and what it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes the clients sent (read by the proxy, forwarded or dropped at a cut).
    pub client_bytes: u64,
    /// Client bytes forwarded to the server.
    pub forwarded_bytes: u64,
    /// Bytes the server sent (forwarded or not).
    pub server_bytes: u64,
    /// Connections reset (mid-request, mid-answer, or after a stall).
    pub resets: u64,
    /// Answers cut short by a clean close.
    pub truncations: u64,
    /// Stalls held.
    pub stalls: u64,
    /// Connections slowed down.
    pub delays: u64,
    /// Answers read from the server and never given to the client.
    pub lost_responses: u64,
}

impl ProxyStats {
    /// Faults that broke a connection (delays are not counted: nothing is lost).
    pub fn breaks(&self) -> u64 {
        self.resets + self.truncations + self.lost_responses
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    client_bytes: AtomicU64,
    forwarded_bytes: AtomicU64,
    server_bytes: AtomicU64,
    resets: AtomicU64,
    truncations: AtomicU64,
    stalls: AtomicU64,
    delays: AtomicU64,
    lost_responses: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The plan and what it needs to go on: the connection number, the RNG, the byte count.
struct PlanState {
    plan: Plan,
    next_connection: usize,
    rng: StdRng,
    /// Client bytes forwarded since the plan was set ([`Plan::ResetEvery`]).
    forwarded: u64,
}

impl PlanState {
    fn new(plan: Plan) -> Self {
        let seed = match &plan {
            Plan::Random(r) => r.seed,
            _ => 0,
        };
        Self {
            plan,
            next_connection: 0,
            rng: StdRng::seed_from_u64(seed),
            forwarded: 0,
        }
    }

    /// The next connection's fault, and its delay per piece (if slowed).
    fn fault_for_next_connection(&mut self) -> (Fault, Option<Duration>) {
        let i = self.next_connection;
        self.next_connection += 1;
        let fault = match &self.plan {
            Plan::Clean | Plan::ResetEvery { .. } => Fault::Clean,
            Plan::Slow(d) => Fault::Delay(*d),
            Plan::Script(faults) => faults.get(i).copied().unwrap_or(Fault::Clean),
            Plan::Random(r) => {
                let fault = draw(&mut self.rng, r);
                if self.rng.random_bool(r.slow.clamp(0.0, 1.0)) {
                    let delay = Duration::from_millis(self.rng.random_range(1..20));
                    return (fault, Some(delay));
                }
                fault
            }
        };
        match fault {
            Fault::Delay(d) => (fault, Some(d)),
            _ => (fault, None),
        }
    }

    /// Of `n` client bytes about to be forwarded, how many may go before a byte-count
    /// reset, and whether that reset is due.
    fn allow(&mut self, n: u64) -> (u64, bool) {
        let Plan::ResetEvery { bytes } = self.plan else {
            return (n, false);
        };
        let every = bytes.max(1);
        let room = every - self.forwarded % every;
        if n >= room {
            self.forwarded += room;
            (room, true)
        } else {
            self.forwarded += n;
            (n, false)
        }
    }
}

/// One breaking fault from a random plan.
fn draw(rng: &mut StdRng, r: &RandomFaults) -> Fault {
    let span = r.request_span.max(1);
    let answers = r.answers.max(1);
    // Answers are cut within their first bytes: most of a phone's answers are small. Stalls
    // are rarer than the rest: each costs the phone a whole read timeout.
    match rng.random_range(0..20u8) {
        0..5 => Fault::ResetRequest {
            after: rng.random_range(0..span),
        },
        5..9 => Fault::ResetResponse {
            nth: rng.random_range(1..=answers),
            after: rng.random_range(0..400),
        },
        9..12 => Fault::Truncate {
            nth: rng.random_range(1..=answers),
            after: rng.random_range(1..400),
        },
        12..14 => Fault::Stall {
            after: rng.random_range(0..span),
            hold: r.stall,
        },
        _ => Fault::LoseResponse {
            nth: rng.random_range(1..=answers),
        },
    }
}

struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    counters: Counters,
    plan: Mutex<PlanState>,
}

impl Shared {
    fn plan(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `upstream`, a URL such as
    /// `http://127.0.0.1:PORT` or an address `127.0.0.1:PORT`.
    pub fn start(upstream: &str, plan: Plan) -> std::io::Result<FaultProxy> {
        let authority = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream: SocketAddr = authority.parse().map_err(|_| {
            std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("upstream {authority:?} is not an IP address and port"),
            )
        })?;
        if let Plan::Random(r) = &plan {
            println!("fault proxy: random faults, seed {}", r.seed);
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            plan: Mutex::new(PlanState::new(plan)),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What went through so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            connections: get(&c.connections),
            client_bytes: get(&c.client_bytes),
            forwarded_bytes: get(&c.forwarded_bytes),
            server_bytes: get(&c.server_bytes),
            resets: get(&c.resets),
            truncations: get(&c.truncations),
            stalls: get(&c.stalls),
            delays: get(&c.delays),
            lost_responses: get(&c.lost_responses),
        }
    }

    /// Replaces the plan for connections accepted from now on (a random plan starts again
    /// from its seed; a byte-count plan counts from zero). Open connections keep their fault.
    pub fn set_plan(&self, plan: Plan) {
        if let Plan::Random(r) = &plan {
            println!("fault proxy: random faults, seed {}", r.seed);
        }
        *self.shared.plan() = PlanState::new(plan);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// With `TANDEM_PROXY_TRACE` set, each connection's fault and each fault that fires are
/// written to stderr.
fn trace(what: std::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("TANDEM_PROXY_TRACE").is_some()) {
        eprintln!("fault proxy: {what}");
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                add(&shared.counters.connections, 1);
                let (fault, delay) = shared.plan().fault_for_next_connection();
                let shared = shared.clone();
                // A connection that cannot be set up is dropped: the client sees a reset.
                let _ = std::thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || {
                        let _ = Connection::run(client, fault, delay, &shared);
                    });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 4),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Where one connection stands, shared by its two pumps.
#[derive(Default)]
struct Progress {
    /// Client bytes forwarded on this connection.
    forwarded: u64,
    /// Answers begun.
    answers: u32,
    /// Bytes of the current answer forwarded.
    answer_bytes: u64,
    /// The client spoke since the last answer began: the next server bytes begin one.
    awaiting_answer: bool,
    /// Nothing moves until then.
    stalled_until: Option<Instant>,
}

struct Connection {
    fault: Fault,
    delay: Option<Duration>,
    client: TcpStream,
    server: TcpStream,
    /// Set when the connection is over: both pumps leave.
    done: AtomicBool,
    progress: Mutex<Progress>,
    started: Instant,
}

impl Connection {
    fn run(
        client: TcpStream,
        fault: Fault,
        delay: Option<Duration>,
        shared: &Arc<Shared>,
    ) -> std::io::Result<()> {
        client.set_nonblocking(false)?;
        let server = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))?;
        for s in [&client, &server] {
            s.set_read_timeout(Some(POLL))?;
            // A peer that stops reading cannot hold a pump for ever.
            s.set_write_timeout(Some(WRITE_TIMEOUT))?;
            s.set_nodelay(true)?;
        }
        if delay.is_some() {
            add(&shared.counters.delays, 1);
        }
        trace(format_args!("connection {fault:?}, delay {delay:?}"));
        let conn = Arc::new(Connection {
            fault,
            delay,
            client,
            server,
            done: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            started: Instant::now(),
        });
        let upward = {
            let (conn, shared) = (conn.clone(), shared.clone());
            std::thread::Builder::new()
                .name("fault-proxy-up".into())
                .spawn(move || conn.pump_up(&shared))?
        };
        conn.pump_down(shared);
        let _ = upward.join();
        Ok(())
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the pumps must leave (the connection is over, the proxy stops, or it lived
    /// too long).
    fn over(&self, shared: &Shared) -> bool {
        self.done.load(Ordering::SeqCst)
            || shared.stop.load(Ordering::SeqCst)
            || self.started.elapsed() > MAX_CONNECTION_LIFE
    }

    /// Holds while a stall lasts; then the stalling pump resets the connection.
    fn wait_out_stall(&self, shared: &Shared) {
        loop {
            let until = self.progress().stalled_until;
            match until {
                Some(t) if Instant::now() < t && !self.over(shared) => std::thread::sleep(POLL),
                _ => return,
            }
        }
    }

    /// Ends the connection with a reset to the client (its last handle closes with
    /// `SO_LINGER` 0) and a clean close to the server, which sees the request end early.
    fn reset(&self, shared: &Shared) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let (up, answers) = {
            let p = self.progress();
            (p.forwarded, p.answers)
        };
        trace(format_args!(
            "reset ({:?}) after {up} bytes up, {answers} answers",
            self.fault
        ));
        add(&shared.counters.resets, 1);
        let _ = socket2::SockRef::from(&self.client).set_linger(Some(Duration::ZERO));
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Ends the connection with a clean close both ways.
    fn close(&self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Reads a piece; `Ok(None)` when nothing arrived within a poll interval.
    fn read(mut from: &TcpStream, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        match from.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Client → server.
    fn pump_up(&self, shared: &Shared) {
        let mut buf = vec![0u8; BUF];
        let limit = match self.fault {
            Fault::ResetRequest { after } | Fault::Stall { after, .. } => Some(after),
            _ => None,
        };
        while !self.over(shared) {
            self.wait_out_stall(shared);
            if self.over(shared) {
                break;
            }
            let n = match Self::read(&self.client, &mut buf) {
                Ok(None) => continue,
                Ok(Some(0)) | Err(_) => {
                    // The client is done (or gone): let the server see the end.
                    let _ = self.server.shutdown(Shutdown::Write);
                    break;
                }
                Ok(Some(n)) => n as u64,
            };
            add(&shared.counters.client_bytes, n);
            if let Some(d) = self.delay {
                std::thread::sleep(d);
            }
            let forwarded = self.progress().forwarded;
            let mut allowed = limit.map_or(n, |l| n.min(l.saturating_sub(forwarded)));
            let fault_due = limit.is_some_and(|l| forwarded + n >= l);
            let (by_count, count_due) = shared.plan().allow(allowed);
            allowed = by_count;
            let sent = usize::try_from(allowed).unwrap_or(0);
            // Mark the answer as due before the server can see the request: a fast
            // server's answer read first would otherwise be counted as part of the
            // previous answer, and every later `nth` would fall one answer late.
            if allowed > 0 {
                self.progress().awaiting_answer = true;
            }
            // A stall begins before its last bytes reach the server, so the server's
            // answer to them is held by the stall (and dropped by its reset) however the
            // two pumps are scheduled.
            let stall = match self.fault {
                Fault::Stall { hold, .. } if fault_due && !count_due => Some(hold),
                _ => None,
            };
            if let Some(hold) = stall {
                add(&shared.counters.stalls, 1);
                self.progress().stalled_until = Some(Instant::now() + hold);
            }
            if (&self.server).write_all(&buf[..sent]).is_err() {
                self.reset(shared);
                break;
            }
            add(&shared.counters.forwarded_bytes, allowed);
            self.progress().forwarded += allowed;
            if count_due {
                self.reset(shared);
                break;
            }
            if fault_due {
                if stall.is_some() {
                    self.wait_out_stall(shared);
                }
                self.reset(shared);
                break;
            }
        }
    }

    /// Server → client.
    fn pump_down(&self, shared: &Shared) {
        let mut buf = vec![0u8; BUF];
        while !self.over(shared) {
            self.wait_out_stall(shared);
            if self.over(shared) {
                break;
            }
            let n = match Self::read(&self.server, &mut buf) {
                Ok(None) => continue,
                Ok(Some(0)) | Err(_) => {
                    // The server closed (pass it on), or a reset shut it (the client must
                    // see the reset, not a clean end).
                    if !self.done.load(Ordering::SeqCst) {
                        let _ = self.client.shutdown(Shutdown::Write);
                    }
                    // Keep the upward pump going until the client closes too.
                    return;
                }
                Ok(Some(n)) => n,
            };
            add(&shared.counters.server_bytes, n as u64);
            // Bytes that arrive during a stall wait for its end (and its reset).
            self.wait_out_stall(shared);
            if self.over(shared) {
                return;
            }
            let (answer, bytes_before) = {
                let mut p = self.progress();
                if p.awaiting_answer {
                    p.awaiting_answer = false;
                    p.answers += 1;
                    p.answer_bytes = 0;
                    trace(format_args!(
                        "answer {} ({n} bytes) {:?}",
                        p.answers, self.fault
                    ));
                }
                (p.answers, p.answer_bytes)
            };
            let mut send = n;
            match self.fault {
                Fault::LoseResponse { nth } if nth == answer => {
                    self.drain_answer(shared);
                    add(&shared.counters.lost_responses, 1);
                    // Counted as a lost answer, not as a reset too.
                    if !self.done.swap(true, Ordering::SeqCst) {
                        let _ =
                            socket2::SockRef::from(&self.client).set_linger(Some(Duration::ZERO));
                        let _ = self.server.shutdown(Shutdown::Both);
                    }
                    return;
                }
                Fault::ResetResponse { nth, after } | Fault::Truncate { nth, after }
                    if nth == answer =>
                {
                    // Cut after `after` bytes, or sooner: at least the last byte of this
                    // piece is held back, so an answer shorter than `after` is cut too.
                    let room = after.saturating_sub(bytes_before);
                    send = n.min(usize::try_from(room).unwrap_or(n)).min(n - 1);
                }
                _ => {}
            }
            if let Some(d) = self.delay {
                std::thread::sleep(d);
            }
            if (&self.client).write_all(&buf[..send]).is_err() {
                self.reset(shared);
                return;
            }
            self.progress().answer_bytes += send as u64;
            if send < n {
                if matches!(self.fault, Fault::Truncate { .. }) {
                    add(&shared.counters.truncations, 1);
                    self.close();
                } else {
                    self.reset(shared);
                }
                return;
            }
        }
    }

    /// Reads the rest of the server's answer (until it is quiet or closes).
    fn drain_answer(&self, shared: &Shared) {
        let mut buf = vec![0u8; BUF];
        let start = Instant::now();
        let mut last = Instant::now();
        while start.elapsed() < ANSWER_MAX && !shared.stop.load(Ordering::SeqCst) {
            match Self::read(&self.server, &mut buf) {
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => {
                    add(&shared.counters.server_bytes, n as u64);
                    last = Instant::now();
                }
                Ok(None) if last.elapsed() >= ANSWER_QUIET => return,
                Ok(None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
