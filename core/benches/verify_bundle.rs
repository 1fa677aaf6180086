//! Verifying a bundle: `verify_bundle` on a folder holding 1 GiB of blobs versus
//! `openssl dgst -sha256` over the same blob files, in the same run.
//!
//! `cargo bench -p tandem-core --bench verify_bundle` (16 × 64 MiB by default;
//! `TANDEM_BENCH_MIB` sets the total, `TANDEM_BENCH_BLOBS` the number of blobs,
//! `TANDEM_BENCH_RUNS` the timed runs of each, default 3, best kept; `TANDEM_BENCH_DIR` the
//! folder, default the system temp folder). The verifier runs in a child process (this
//! binary re-executed) so that its peak memory (`VmHWM`) is its own.

#[path = "support/mod.rs"]
mod support;

use support::{env_number, list, vm_hwm_kib};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tandem_core::bundle::testing::{SampleBundle, TICKET_ISSUED_MS};
use tandem_core::bundle::{
    BlobEntry, BlobRole, FolderSource, Trust, media_extension, signatures_to_bytes, verify_bundle,
};
use tandem_core::crypto::Sha256Stream;

const CHILD_BUNDLE: &str = "TANDEM_BENCH_CHILD_BUNDLE";
const CHILD_TRUST: &str = "TANDEM_BENCH_CHILD_TRUST";
const MIB: u64 = 1024 * 1024;
const GIB: f64 = (1024 * 1024 * 1024) as f64;

fn main() {
    if let (Ok(bundle), Ok(trust)) = (std::env::var(CHILD_BUNDLE), std::env::var(CHILD_TRUST)) {
        child(Path::new(&bundle), Path::new(&trust));
        return;
    }
    let mib: u64 = env_number("TANDEM_BENCH_MIB", 1024);
    let count: u64 = env_number("TANDEM_BENCH_BLOBS", 16).max(1);
    let runs: usize = env_number("TANDEM_BENCH_RUNS", 3).max(1);
    let work = match std::env::var("TANDEM_BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir),
        Err(_) => tempfile::tempdir(),
    }
    .expect("temp dir for the benchmark");
    let folder = work.path().join("bundle");
    let started = Instant::now();
    let (blob_files, trust) = build_bundle(&folder, mib * MIB, count);
    let bytes: u64 = blob_files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    println!(
        "verify_bundle: {count} blobs, {} MiB in all, built in {:.2} s, {runs} runs each",
        bytes / MIB,
        started.elapsed().as_secs_f64()
    );

    // Warm the page cache for both contenders.
    for path in &blob_files {
        let _ = std::fs::read(path).map(|_| ());
    }
    let mut openssl = Vec::new();
    let mut verifies = Vec::new();
    for _ in 0..runs {
        openssl.extend(time_openssl(&blob_files));
        verifies.push(run_child(&folder, &trust));
    }
    let gib = bytes as f64 / GIB;
    let best_verify = verifies.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let peak = verifies.iter().map(|v| v.1).max().unwrap_or(0);
    let verify_rate = gib / best_verify;
    println!(
        "verify_bundle (folder, every check): best {best_verify:.3} s = {verify_rate:.3} GiB/s; runs {}",
        list(verifies.iter().map(|v| v.0))
    );
    if let Some(best_openssl) = openssl.iter().copied().reduce(f64::min) {
        let openssl_rate = gib / best_openssl;
        println!(
            "openssl dgst -sha256 (same files): best {best_openssl:.3} s = {openssl_rate:.3} GiB/s; runs {}",
            list(openssl.iter().copied())
        );
        println!(
            "ratio verify/openssl = {:.2} (target >= 0.8)",
            verify_rate / openssl_rate
        );
    } else {
        println!("openssl dgst -sha256: not available, no ratio");
    }
    println!(
        "peak memory (VmHWM of the verifying process): {:.1} MiB (target < 64)",
        peak as f64 / 1024.0
    );
}

/// Writes the sample bundle with `count` large audio blobs added; returns their paths and
/// the trust file.
fn build_bundle(folder: &Path, total: u64, count: u64) -> (Vec<PathBuf>, PathBuf) {
    let mut sample = SampleBundle::new().expect("sample bundle");
    let blobs_dir = folder.join("blobs");
    std::fs::create_dir_all(&blobs_dir).expect("bundle folder");
    let mut files = Vec::new();
    for i in 0..count {
        let size = total / count;
        let tmp = blobs_dir.join(format!("tmp-{i}"));
        let digest = generate(&tmp, size, i + 1);
        let entry = BlobEntry {
            sha256: digest,
            size,
            media_type: "audio/wav".into(),
            role: BlobRole::Audio,
            derived_from: None,
            captured_at_ms: TICKET_ISSUED_MS + 60_000,
            fix: None,
        };
        let path = blobs_dir.join(format!("{digest}.{}", media_extension("audio/wav")));
        std::fs::rename(&tmp, &path).expect("naming a blob");
        sample.manifest.blobs.push(entry);
        files.push(path);
    }
    for entry in &sample.manifest.blobs {
        if let Some(bytes) = sample.blobs.get(&entry.sha256) {
            let name = format!("{}.{}", entry.sha256, media_extension(&entry.media_type));
            std::fs::write(blobs_dir.join(name), bytes).expect("small blob");
        }
    }
    let sealed = sample.seal().expect("sealing");
    std::fs::write(folder.join("manifest.json"), &sealed.manifest_bytes).expect("manifest");
    std::fs::write(
        folder.join("signatures.json"),
        signatures_to_bytes(&sealed.signatures).expect("signatures"),
    )
    .expect("signatures");
    let trust = folder.with_extension("trust.json");
    std::fs::write(&trust, sample.trust.to_json().expect("trust")).expect("trust file");
    (files, trust)
}

fn child(folder: &Path, trust: &Path) {
    let trust = Trust::load(trust).expect("trust file");
    let source = FolderSource::new(folder);
    let started = Instant::now();
    let report = verify_bundle(&source, &trust);
    let secs = started.elapsed().as_secs_f64();
    assert!(report.is_valid(), "benchmark bundle invalid: {report:#?}");
    println!("{secs} {}", vm_hwm_kib());
}

fn run_child(folder: &Path, trust: &Path) -> (f64, u64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env(CHILD_BUNDLE, folder)
        .env(CHILD_TRUST, trust)
        .output()
        .expect("re-running the benchmark as a child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fields = text.split_whitespace();
    let secs = fields
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(f64::NAN);
    let hwm = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    (secs, hwm)
}

fn time_openssl(files: &[PathBuf]) -> Option<f64> {
    let started = Instant::now();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .args(files)
        .output()
        .ok()?;
    let secs = started.elapsed().as_secs_f64();
    out.status.success().then_some(secs)
}

/// Incompressible-looking bytes (xorshift) in 1 MiB blocks; returns their SHA-256.
fn generate(path: &Path, len: u64, seed: u64) -> tandem_core::crypto::Digest {
    let mut out = BufWriter::new(File::create(path).expect("create blob"));
    let mut hasher = Sha256Stream::default();
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
        out.write_all(&block[..n]).expect("write blob");
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    out.flush().expect("flush blob");
    hasher.finish()
}
