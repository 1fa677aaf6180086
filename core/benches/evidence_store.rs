//! Storing evidence: `BlobStore::put` from a file versus `openssl dgst -sha256` on the same file.
//!
//! `cargo bench -p tandem-core --bench evidence_store` (1 GiB; `TANDEM_BENCH_MIB=64` to shrink,
//! `TANDEM_BENCH_RUNS` for the number of timed runs of each, default 3, best kept;
//! `TANDEM_BENCH_DIR` for the folder, default the system temp folder).
//! The store runs in a child process (this binary re-executed) so that its peak memory
//! (`VmHWM`) is not polluted by generating the data.

#[path = "support/mod.rs"]
mod support;

use support::{env_number, list, vm_hwm_kib};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tandem_core::blobs::{BlobKey, BlobStore, Digest};

const CHILD_INPUT: &str = "TANDEM_BENCH_CHILD_INPUT";
const CHILD_STORE: &str = "TANDEM_BENCH_CHILD_STORE";
const MIB: u64 = 1024 * 1024;
const GIB: f64 = (1024 * 1024 * 1024) as f64;

fn main() {
    if let (Ok(input), Ok(store)) = (std::env::var(CHILD_INPUT), std::env::var(CHILD_STORE)) {
        child(Path::new(&input), Path::new(&store));
        return;
    }
    let mib: u64 = env_number("TANDEM_BENCH_MIB", 1024);
    let runs: usize = env_number("TANDEM_BENCH_RUNS", 3).max(1);
    // TANDEM_BENCH_DIR picks the file system (e.g. /dev/shm to leave the disk out).
    let work = match std::env::var("TANDEM_BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir),
        Err(_) => tempfile::tempdir(),
    }
    .expect("temp dir for the benchmark");
    let input = work.path().join("evidence.bin");
    let started = Instant::now();
    generate(&input, mib * MIB);
    let bytes = mib * MIB;
    println!(
        "evidence_store: {mib} MiB of generated data in {:.2} s, {runs} runs each",
        started.elapsed().as_secs_f64()
    );

    // Warm the page cache for both contenders.
    let _ = std::fs::read(&input).map(|_| ());
    // Interleaved, so that both see the same conditions on a shared machine.
    let mut openssl = Vec::new();
    let mut stores = Vec::new();
    for run in 0..runs {
        openssl.extend(time_openssl(&input));
        let store_dir = work.path().join(format!("store-{run}"));
        stores.push(run_child(&input, &store_dir));
        std::fs::remove_dir_all(&store_dir).expect("removing the benchmark store");
    }

    let best_store = stores
        .iter()
        .map(|s| s.put_secs)
        .fold(f64::INFINITY, f64::min);
    let best_verify = stores
        .iter()
        .map(|s| s.verify_secs)
        .fold(f64::INFINITY, f64::min);
    let peak_put = stores.iter().map(|s| s.put_hwm_kib).max().unwrap_or(0);
    let peak_verify = stores.iter().map(|s| s.verify_hwm_kib).max().unwrap_or(0);
    let gib = bytes as f64 / GIB;
    let store_rate = gib / best_store;
    println!(
        "put (hash + encrypt + write + fsync): best {best_store:.3} s = {store_rate:.3} GiB/s; runs {}",
        list(stores.iter().map(|s| s.put_secs))
    );
    println!(
        "verify (read + decrypt + hash): best {best_verify:.3} s = {:.3} GiB/s",
        gib / best_verify
    );
    if let Some(best_openssl) = openssl.iter().copied().reduce(f64::min) {
        let openssl_rate = gib / best_openssl;
        println!(
            "openssl dgst -sha256: best {best_openssl:.3} s = {openssl_rate:.3} GiB/s; runs {}",
            list(openssl.iter().copied())
        );
        println!(
            "ratio put/openssl = {:.2} (target >= 0.5); verify/openssl = {:.2}",
            store_rate / openssl_rate,
            gib / best_verify / openssl_rate
        );
    } else {
        println!("openssl dgst -sha256: not available, no ratio");
    }
    println!(
        "peak memory (VmHWM of the storing process): put {:.1} MiB (target < 32), after verify {:.1} MiB",
        peak_put as f64 / 1024.0,
        peak_verify as f64 / 1024.0
    );
}

struct ChildReport {
    put_secs: f64,
    put_hwm_kib: u64,
    verify_secs: f64,
    verify_hwm_kib: u64,
}

fn child(input: &Path, store_dir: &Path) {
    let store = BlobStore::open(store_dir, BlobKey::from_bytes([42; 32])).expect("open store");
    let file = File::open(input).expect("open input");
    let started = Instant::now();
    let stored = store.put(file).expect("put");
    let put_secs = started.elapsed().as_secs_f64();
    let put_hwm = vm_hwm_kib();
    let started = Instant::now();
    store.verify(&stored.digest).expect("verify");
    let verify_secs = started.elapsed().as_secs_f64();
    println!(
        "{put_secs} {put_hwm} {verify_secs} {} {}",
        vm_hwm_kib(),
        stored.digest
    );
}

fn run_child(input: &Path, store_dir: &Path) -> ChildReport {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env(CHILD_INPUT, input)
        .env(CHILD_STORE, store_dir)
        .output()
        .expect("re-running the benchmark as a child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = text.split_whitespace().collect();
    let number = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let digest: Option<Digest> = fields.get(4).and_then(|f| f.parse().ok());
    assert!(digest.is_some(), "child printed no digest: {text}");
    ChildReport {
        put_secs: number(0),
        put_hwm_kib: number(1) as u64,
        verify_secs: number(2),
        verify_hwm_kib: number(3) as u64,
    }
}

fn time_openssl(input: &Path) -> Option<f64> {
    let started = Instant::now();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(input)
        .output()
        .ok()?;
    let secs = started.elapsed().as_secs_f64();
    out.status.success().then_some(secs)
}

/// Incompressible-looking bytes (xorshift), written in 1 MiB blocks.
fn generate(path: &PathBuf, len: u64) {
    let mut out = BufWriter::new(File::create(path).expect("create input"));
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut block = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(MIB) as usize;
        out.write_all(&block[..n]).expect("write input");
        left -= n as u64;
    }
    out.flush().expect("flush input");
}
