//! The `blob_digests` check: every blob present, with its size and digest, nothing extra.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::failures;
use crate::bundle::{
    BlobEntry, BlobRole, BundleError, BundleSource, CheckResult, Manifest, media_extension,
};
use crate::crypto::{Digest, Sha256Stream};

/// The file name of a blob inside `blobs/`.
pub(crate) fn blob_file_name(entry: &BlobEntry) -> String {
    format!("{}.{}", entry.sha256, media_extension(&entry.media_type))
}

/// Digests the events refer to, each of which must be shipped as a blob.
fn referenced_blobs(manifest: &Manifest) -> Vec<(u64, Digest)> {
    manifest
        .events
        .iter()
        .flat_map(|e| e.kind.blobs().into_iter().map(move |b| (e.seq, b.digest)))
        .collect()
}

pub(super) fn check_blobs(source: &dyn BundleSource, manifest: &Manifest) -> CheckResult {
    let mut problems = Vec::new();
    let mut listed = BTreeMap::new();
    for entry in &manifest.blobs {
        if listed.insert(entry.sha256, entry).is_some() {
            problems.push(format!("blob {} is listed twice", entry.sha256));
        }
    }
    for entry in &manifest.blobs {
        match (entry.role, entry.derived_from) {
            (BlobRole::Derived, None) => {
                problems.push(format!("derived blob {} names no source", entry.sha256));
            }
            (BlobRole::Derived, Some(from)) if !listed.contains_key(&from) => {
                problems.push(format!(
                    "derived blob {} names source {from}, not listed",
                    entry.sha256
                ))
            }
            (role, Some(_)) if role != BlobRole::Derived => problems.push(format!(
                "blob {} is not derived but names a source",
                entry.sha256
            )),
            _ => {}
        }
    }
    for (seq, digest) in referenced_blobs(manifest) {
        if !listed.contains_key(&digest) {
            problems.push(format!("event {seq} refers to blob {digest}, not listed"));
        }
    }
    let expected: BTreeSet<String> = manifest.blobs.iter().map(blob_file_name).collect();
    match source.blob_names() {
        Ok(names) => {
            for name in names.iter().filter(|n| !expected.contains(*n)) {
                problems.push(format!("extra file blobs/{name}"));
            }
        }
        Err(e) => problems.push(format!("cannot list blobs/: {e}")),
    }
    problems.extend(hash_blobs(source, &manifest.blobs));
    failures(problems)
}

/// Streams and hashes every listed blob on a few threads; returns what does not match.
fn hash_blobs(source: &dyn BundleSource, entries: &[BlobEntry]) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(entries.len().max(1));
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(entry) = entries.get(index) else {
                        break;
                    };
                    if let Some(problem) = hash_one(source, entry) {
                        // A poisoned lock still holds every problem pushed: never lose one.
                        let mut list = problems.lock().unwrap_or_else(|e| e.into_inner());
                        list.push((index, problem));
                    }
                }
            });
        }
    });
    let mut list = problems.into_inner().unwrap_or_else(|e| e.into_inner());
    list.sort();
    list.into_iter().map(|(_, p)| p).collect()
}

fn hash_one(source: &dyn BundleSource, entry: &BlobEntry) -> Option<String> {
    let name = format!("blobs/{}", blob_file_name(entry));
    if let Some(size) = source.verified_size(&name) {
        // Stored under its digest by a store that checked it: only the size is left.
        return (size != entry.size).then(|| {
            format!(
                "{name} is stored with {size} bytes, listed as {}",
                entry.size
            )
        });
    }
    let mut hasher = Sha256Stream::default();
    // One byte past the listed size is enough to know the file is too long.
    let read = source.stream(&name, entry.size.saturating_add(1), &mut |chunk| {
        hasher.update(chunk)
    });
    match read {
        Err(BundleError::Missing { .. }) => Some(format!("{name} is missing")),
        Err(e) => Some(format!("{name} unreadable: {e}")),
        Ok(n) if n > entry.size => Some(format!(
            "{name} is longer than its listed {} bytes",
            entry.size
        )),
        Ok(n) if n < entry.size => Some(format!(
            "{name} is {n} bytes, listed as {} (truncated)",
            entry.size
        )),
        Ok(_) => {
            let digest = hasher.finish();
            (digest != entry.sha256).then(|| format!("{name} has digest {digest}"))
        }
    }
}
