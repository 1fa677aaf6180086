//! `VERIFY.txt`: the exact commands that check an export with standard tools alone.

use super::{OpensslCheck, SealedBundle};
use crate::crypto::{SignatureAlgorithm, sha256};

/// Renders the commands. The text is a bash script: `bash VERIFY.txt` runs every check and
/// stops at the first that fails; each command can also be typed by hand.
pub(super) fn render(bundle: &SealedBundle, checks: &[OpensslCheck]) -> String {
    let m = &bundle.manifest;
    let mut t = String::new();
    let mut line = |s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    line("# How to check this Tandem evidence bundle with sha256sum and openssl alone.");
    line("# Run every check from this folder with:  bash VERIFY.txt");
    line("# (it stops at the first failure). Each command can also be typed by hand.");
    line("# Format tandem.bundle/v1: see bundle-format.md in Tandem's documentation.");
    line(&format!("# Bundle {}", m.bundle_id));
    line(&format!(
        "# SHA-256 of manifest.json: {}",
        sha256(&bundle.manifest_bytes)
    ));
    line("set -euo pipefail");
    line("");
    line("# 1. Every blob's bytes have the SHA-256 its file name says.");
    line("sha256sum --strict -c SHA256SUMS");
    line("# ...and those are exactly the blobs manifest.json lists (no output means equal).");
    line(
        "diff <(grep -o '\"sha256\":\"[0-9a-f]\\{64\\}\"' manifest.json | cut -d'\"' -f4 | sort) \
         <(cut -c1-64 SHA256SUMS | sort)",
    );
    line("");
    line("# 2. Every signature is over \"tandem/v1/<purpose>\\n\" followed by the 32 raw bytes");
    line("#    of the SHA-256 of the signed document. signatures/<name>.input holds those bytes,");
    line("#    signatures/<name>.sig the raw signature: the `sig` (base64) of signatures.json, or");
    line("#    of the server's signature record inside manifest.json, as the grep lines check.");
    line(
        "#    The server-signed documents are in documents/, exactly as embedded in manifest.json.",
    );
    for name in ["approval", "ticket", "policy"] {
        line(&format!(
            "grep -qF '\"{name}_digest\":\"'\"$(sha256sum documents/{name}.json | cut -c1-64)\"'\"' manifest.json"
        ));
    }
    for c in checks {
        line("");
        line(&format!(
            "# {} signature by {} (key {}, {}):",
            c.purpose, c.signer, c.kid, c.alg
        ));
        line(&format!(
            "{{ printf 'tandem/v1/{}\\n'; openssl dgst -sha256 -binary {}; }} | cmp - signatures/{}.input",
            c.purpose, c.document, c.name
        ));
        // Canonical key order puts `role` between `kid` and `sig` in signatures.json.
        let between = if c.purpose == "manifest" {
            format!("\"role\":\"{}\",", c.name)
        } else {
            String::new()
        };
        let listed_in = c.listed_in;
        line(&format!(
            "grep -qF '\"kid\":\"{}\",{between}\"sig\":\"'\"$(openssl base64 -A -in signatures/{}.sig)\"'\"' {listed_in}",
            c.kid, c.name
        ));
        if c.key.is_none() {
            line("# (this export does not carry that key: check it with the key you trust)");
            continue;
        }
        let pem = format!("keys/{}.pem", c.kid);
        let raw_len = match c.alg {
            SignatureAlgorithm::Ed25519 => 32,
            SignatureAlgorithm::EcdsaP256Sha256 => 65,
        };
        line("# the key file holds the key its name says (kid = SHA-256 of the raw public key):");
        line(&format!(
            "test \"$(openssl pkey -pubin -in {pem} -outform DER | tail -c {raw_len} | sha256sum | cut -c1-64)\" = {}",
            c.kid
        ));
        match c.alg {
            SignatureAlgorithm::Ed25519 => line(&format!(
                "openssl pkeyutl -verify -pubin -inkey {pem} -rawin -in signatures/{0}.input -sigfile signatures/{0}.sig",
                c.name
            )),
            SignatureAlgorithm::EcdsaP256Sha256 => line(&format!(
                "openssl dgst -sha256 -verify {pem} -signature signatures/{0}.der signatures/{0}.input",
                c.name
            )),
        }
    }
    if let Some(receipt) = &bundle.receipt {
        line("");
        line("# 3. The server's receipt (receipt/): documents/receipt.json is the signed body of");
        line(
            "#    receipt/receipt.json, documents/checkpoint.json that of receipt/checkpoint.json;",
        );
        line("#    their signatures were checked above (purposes ingest-receipt and checkpoint).");
        line(
            "#    The receipt names this manifest's SHA-256, and both are for the same tree size:",
        );
        line(
            "grep -qF '\"manifest_digest\":\"'\"$(sha256sum manifest.json | cut -c1-64)\"'\"' documents/receipt.json",
        );
        line(
            "test \"$(grep -o '\"tree_size\":[0-9]*' documents/receipt.json)\" = \"$(grep -o '\"tree_size\":[0-9]*' documents/checkpoint.json)\"",
        );
        line(&format!(
            "#    The manifest is entry {} of the server's transparency log; the inclusion proof in",
            receipt
                .receipt
                .body
                .split("\"log_index\":")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or("?")
        ));
        line(
            "#    receipt/inclusion-proof.json leads from SHA-256(0x00 || manifest digest) to the",
        );
        line("#    checkpoint's root: check it with `tandem verify`, or by hand as");
        line("#    transparency-log.md section 5 shows (a few lines of any language).");
    }
    line("");
    line("echo 'All blob digests and signatures verified.'");
    t
}
