//! Sign-in throttling, against anyone on the internet who floods `POST /v1/login` or
//! guesses passwords (THREATS.md, "anyone on the internet, unauthenticated"):
//!
//! - argon2 runs through a small fixed pool: a few hashes at once, a bounded queue behind
//!   them, and "busy" (503) for anything beyond, so a burst of logins costs a fixed amount
//!   of memory and CPU instead of one blocking thread and 19 MiB each;
//! - failed sign-ins are counted per account and per client address, in memory and per
//!   process, with an exponential wait once a few free failures are used up (429). Both
//!   tables hold a bounded number of entries, so random logins or addresses cannot grow
//!   them without limit.
//!
//! This is independent of the console lockout stored in the database (A01): it only slows
//! down guessing and bounds the cost of one process.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// When failed sign-ins of one key (an account or an address) start to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any wait (people mistype).
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; it doubles with each further
    /// failure.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// Failures are forgotten after this long without a new one.
    pub forget_after: Duration,
}

/// Sign-in throttling settings (part of [`crate::Config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Password hashes computed at once.
    pub hash_workers: usize,
    /// Sign-ins that may wait for a hash worker; beyond this the answer is 503.
    pub hash_queue: usize,
    /// Failures per account (the sign-in name, whether it exists or not).
    pub per_account: Backoff,
    /// Failures per client address (IPv6: per /64, what one subscriber usually holds).
    pub per_address: Backoff,
    /// Entries kept in each table; the least recently failed one makes room for a new one.
    pub max_tracked: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        // Half the cores hash, so the other half keeps serving everything else under a
        // login flood (a hash takes tens of milliseconds and 19 MiB).
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let hash_workers = cores.div_ceil(2);
        Self {
            hash_workers,
            hash_queue: 16 * hash_workers,
            per_account: Backoff {
                free_failures: 5,
                first_wait: Duration::from_secs(1),
                max_wait: Duration::from_secs(60),
                forget_after: Duration::from_secs(15 * 60),
            },
            per_address: Backoff {
                free_failures: 30,
                first_wait: Duration::from_secs(1),
                max_wait: Duration::from_secs(5 * 60),
                forget_after: Duration::from_secs(15 * 60),
            },
            max_tracked: 10_000,
        }
    }
}

/// Why a sign-in is not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Too many recent failures for this account or address.
    #[error("too many failed sign-ins; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is considered.
        retry_after_secs: u64,
    },
    /// Every hash worker is busy and the queue is full.
    #[error("password checks are all busy")]
    Busy,
}

/// Why a password check failed (not a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Refused before hashing.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// argon2 failed, or its task did.
    #[error("password check: {0}")]
    Failed(String),
}

/// The key addresses are counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address, when the connection is known (`tandem serve` and real-HTTP tests
/// insert it; `oneshot` tests without a socket have none, and skip per-address limits).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
        ))
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Recent failures by key, at most `max` entries.
#[derive(Debug)]
struct FailureTable<K> {
    rule: Backoff,
    max: usize,
    entries: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Copy> FailureTable<K> {
    fn new(rule: Backoff, max: usize) -> Self {
        Self {
            rule,
            max: max.max(1),
            entries: HashMap::new(),
        }
    }

    fn live(&self, f: &Failures, now: Instant) -> bool {
        now.duration_since(f.last) < self.rule.forget_after || f.blocked_until > now
    }

    /// How long `key` must still wait, if at all.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.entries.get(key)?;
        (self.live(f, now) && f.blocked_until > now).then(|| f.blocked_until - now)
    }

    fn record_failure(&mut self, key: K, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.make_room(now);
        }
        let rule = self.rule;
        let live = self.entries.get(&key).is_some_and(|f| self.live(f, now));
        let f = self.entries.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if !live {
            f.count = 0;
            f.blocked_until = now;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count > rule.free_failures {
            let doublings = (f.count - rule.free_failures - 1).min(30);
            let wait = rule
                .first_wait
                .saturating_mul(1 << doublings)
                .min(rule.max_wait);
            f.blocked_until = now + wait;
        }
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops forgotten entries, then (still full) the least recently failed one. Failures are
    /// recorded only after a password hash, so this runs at most as often as the hash pool
    /// finishes work.
    fn make_room(&mut self, now: Instant) {
        let rule = self.rule;
        self.entries
            .retain(|_, f| now.duration_since(f.last) < rule.forget_after || f.blocked_until > now);
        if self.entries.len() >= self.max
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A password check waiting for a hash thread.
type HashJob = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that compute password hashes, behind a bounded queue. Dedicated
/// threads rather than tokio's blocking pool: the blocking pool grows to hundreds of
/// threads under a burst, and each thread's allocator arena keeps argon2's 19 MiB, so memory
/// followed the number of threads ever used; here it is `workers` × 19 MiB at most.
#[derive(Debug)]
struct HashPool {
    queue: std::sync::mpsc::SyncSender<HashJob>,
}

impl HashPool {
    fn new(workers: usize, queue: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("tandem-hash-{i}"))
                .spawn(move || {
                    yield_cpu_to_requests();
                    // Ends when the pool (its sender) is dropped.
                    loop {
                        let job = lock(&rx).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                // Fewer workers only means slower sign-ins; with none, every sign-in is
                // answered "busy", and the server still serves everything else.
                tracing::error!(error = %e, "password hash thread not started");
            }
        }
        Self { queue: tx }
    }

    /// Queues `job`, or gives it back when every worker is busy and the queue is full.
    fn submit(&self, job: HashJob) -> Result<(), Refusal> {
        self.queue.try_send(job).map_err(|_| Refusal::Busy)
    }
}

/// Lowers the calling thread's CPU priority (Linux: nice 10 for this thread only), so that
/// under a login flood the argon2 threads give way to the threads answering requests:
/// sign-ins get slower and the rest of the server does not.
fn yield_cpu_to_requests() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take and return plain integers; a failure (not
    // allowed, say) leaves the priority as it was, which is harmless.
    unsafe {
        let tid = libc::gettid();
        if let Ok(tid) = libc::id_t::try_from(tid) {
            libc::setpriority(libc::PRIO_PROCESS, tid, 10);
        }
    }
}

/// The sign-in throttle of one process: the hash pool and the two failure tables.
#[derive(Debug)]
pub struct LoginThrottle {
    pool: HashPool,
    /// Keyed by a per-process hash of the sign-in name: fixed-size keys whatever the client
    /// sends, and no sign-in names kept in memory.
    accounts: Mutex<FailureTable<u64>>,
    addresses: Mutex<FailureTable<IpAddr>>,
    account_hasher: std::hash::RandomState,
}

impl LoginThrottle {
    /// A throttle with `limits` (starts the hash threads).
    pub fn new(limits: &LoginLimits) -> Self {
        Self {
            pool: HashPool::new(limits.hash_workers, limits.hash_queue),
            accounts: Mutex::new(FailureTable::new(limits.per_account, limits.max_tracked)),
            addresses: Mutex::new(FailureTable::new(limits.per_address, limits.max_tracked)),
            account_hasher: std::hash::RandomState::new(),
        }
    }

    fn account_key(&self, login: &str) -> u64 {
        // Case folded: if sign-in names ever compare without case, guesses cannot dodge the
        // count by changing case; if not, two names share a count, which only slows down.
        self.account_hasher.hash_one(login.to_lowercase())
    }

    /// Refuses a sign-in whose account or address is waiting out its backoff.
    pub fn check(&self, login: &str, addr: Option<IpAddr>) -> Result<(), Refusal> {
        let now = Instant::now();
        let account = lock(&self.accounts).wait(&self.account_key(login), now);
        let address = addr.and_then(|a| lock(&self.addresses).wait(&address_key(a), now));
        match account.max(address) {
            None => Ok(()),
            Some(wait) => Err(Refusal::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }),
        }
    }

    /// Counts a failed sign-in against its account and address.
    pub fn failed(&self, login: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        lock(&self.accounts).record_failure(self.account_key(login), now);
        if let Some(a) = addr {
            lock(&self.addresses).record_failure(address_key(a), now);
        }
    }

    /// Clears the account's failures after a successful sign-in. The address keeps its
    /// count: signing in to one's own account must not reset guesses at others.
    pub fn succeeded(&self, login: &str) {
        lock(&self.accounts).forget(&self.account_key(login));
    }

    /// Checks `password` against the PHC string `phc` on the hash pool: queued if the queue
    /// has room, refused with [`Refusal::Busy`] otherwise.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, VerifyError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            // A client that hung up while queued costs no hash.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(crate::secrets::verify_password(&password, &phc));
        }))?;
        rx.await
            .map_err(|_| VerifyError::Failed("password hash thread stopped".to_owned()))?
            .map_err(|e| VerifyError::Failed(e.to_string()))
    }
}

impl LoginThrottle {
    /// Hashes a new password on the hash pool, like [`LoginThrottle::verify`]: queued if
    /// the queue has room, refused with [`Refusal::Busy`] otherwise.
    pub async fn hash(&self, password: String) -> Result<String, VerifyError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(crate::secrets::hash_password(&password));
        }))?;
        rx.await
            .map_err(|_| VerifyError::Failed("password hash thread stopped".to_owned()))?
            .map_err(|e| VerifyError::Failed(e.to_string()))
    }
}

/// A poisoned lock only means a panic elsewhere mid-update: the counts stay usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Backoff {
        Backoff {
            free_failures: 2,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(8),
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn waits_double_after_the_free_failures_up_to_the_longest() {
        let mut t = FailureTable::new(rule(), 10);
        let now = Instant::now();
        t.record_failure(1u8, now);
        t.record_failure(1, now);
        assert_eq!(t.wait(&1, now), None, "two free failures");
        let waits: Vec<_> = (0..6)
            .map(|_| {
                t.record_failure(1, now);
                t.wait(&1, now).unwrap().as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let mut t = FailureTable::new(rule(), 10);
        let start = Instant::now();
        for _ in 0..4 {
            t.record_failure(1u8, start);
        }
        let later = start + Duration::from_secs(61);
        assert_eq!(t.wait(&1, later), None);
        t.record_failure(1, later);
        assert_eq!(t.wait(&1, later), None, "counting starts again");
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_failed_key() {
        // Anyone on the internet sending random sign-in names or addresses: the table stays
        // at its size, and keeps the keys that failed most recently.
        let mut t = FailureTable::new(rule(), 100);
        let start = Instant::now();
        for k in 0..10_000u32 {
            t.record_failure(k, start + Duration::from_millis(u64::from(k)));
        }
        assert_eq!(t.len(), 100);
        assert!(t.entries.contains_key(&9_999));
        assert!(!t.entries.contains_key(&0));
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let limits = LoginLimits {
            hash_workers: 1,
            hash_queue: 1,
            ..LoginLimits::default()
        };
        let throttle = LoginThrottle::new(&limits);
        // The one worker is held by a job that waits, and the one queue place is taken.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        throttle
            .pool
            .submit(Box::new(move || {
                let _ = started_tx.send(());
                let _ = held.recv();
            }))
            .unwrap();
        started.recv().unwrap();
        throttle.pool.submit(Box::new(|| {})).unwrap();
        let phc = crate::secrets::hash_password("pw").unwrap();
        let refused = throttle.verify("pw".into(), phc.clone()).await;
        assert!(matches!(refused, Err(VerifyError::Refused(Refusal::Busy))));
        release.send(()).unwrap();
        // Once the worker has taken the queued job, there is room again.
        let mut answer = Err(VerifyError::Refused(Refusal::Busy));
        for _ in 0..100 {
            answer = throttle.verify("pw".into(), phc.clone()).await;
            if !matches!(answer, Err(VerifyError::Refused(Refusal::Busy))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(answer.unwrap());
    }
}
