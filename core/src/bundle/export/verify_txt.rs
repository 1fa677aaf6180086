//! `VERIFY.txt`: the steps that check an export with `sha256sum` and `openssl` alone, to be
//! read and typed, never run as a script.
//!
//! Threat: a reader of an export received from someone else. A script shipped inside the
//! export would run whatever the sender wrote; so the file is prose with one command per
//! step, every command prints `OK` when its check holds, and nothing in it is trusted: the
//! server key is compared with a fingerprint the reader obtains elsewhere, the agents' keys
//! with the server-signed approval, and every other file with what those keys signed.

use super::{OpensslCheck, SealedBundle};
use crate::crypto::{SignatureAlgorithm, sha256};

/// What the reader replaces with the server key's fingerprint obtained elsewhere.
pub const FINGERPRINT_PLACEHOLDER: &str = "PASTE-THE-SERVER-KEY-FINGERPRINT-HERE";

/// The prefix of every command line: four spaces and a prompt.
pub const COMMAND_PREFIX: &str = "    $ ";

/// The number of raw key bytes at the end of a key's DER SubjectPublicKeyInfo.
fn raw_key_len(alg: SignatureAlgorithm) -> usize {
    match alg {
        SignatureAlgorithm::Ed25519 => 32,
        SignatureAlgorithm::EcdsaP256Sha256 => 65,
    }
}

/// The text, in steps.
struct Steps {
    text: String,
    step: usize,
}

impl Steps {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// A numbered step: what it checks, then its commands.
    fn step(&mut self, what: &str, commands: &[String]) {
        self.step += 1;
        self.line("");
        self.line(&format!("Step {}. {what}", self.step));
        for c in commands {
            self.line(&format!("{COMMAND_PREFIX}{c}"));
        }
    }
}

/// `test "$(command)" = "value" && echo OK`, the shape of every comparison.
fn equals(command: &str, value: &str) -> String {
    format!("test \"$({command})\" = \"{value}\" && echo OK")
}

/// The fingerprint (kid) of a key file: SHA-256 of the raw public key.
fn fingerprint_of(pem: &str, alg: SignatureAlgorithm) -> String {
    format!(
        "openssl pkey -pubin -in {pem} -outform DER | tail -c {} | sha256sum | cut -c1-64",
        raw_key_len(alg)
    )
}

/// Renders the steps.
pub(super) fn render(bundle: &SealedBundle, checks: &[OpensslCheck]) -> String {
    let m = &bundle.manifest;
    let mut s = Steps {
        text: String::new(),
        step: 0,
    };
    s.line("How to check this Tandem evidence bundle by hand, with sha256sum and openssl alone.");
    s.line("");
    s.line("Open a terminal in this folder. Read each step, then type the command under it");
    s.line("(the text after \"$ \"). Every command prints OK when its check holds; no OK means");
    s.line("the check failed. This file is a list of steps, not a program: never run it as");
    s.line("a whole. The steps are described in Tandem's bundle-format.md, section 9; a copy");
    s.line("whose steps differ from it is not to be trusted. `tandem verify` runs every check");
    s.line("of this file and more (the transparency log, the rules, enrolment) in one command.");
    s.line("");
    s.line(&format!("Bundle: {}", m.bundle_id));
    s.line(&format!(
        "SHA-256 of manifest.json: {}",
        sha256(&bundle.manifest_bytes)
    ));

    let server: Vec<&OpensslCheck> = checks.iter().filter(|c| c.purpose != "manifest").collect();
    let mut server_kids: Vec<(&str, SignatureAlgorithm)> = Vec::new();
    for c in &server {
        if !server_kids.iter().any(|(k, _)| *k == c.kid) {
            server_kids.push((&c.kid, c.alg));
        }
    }
    for (kid, alg) in &server_kids {
        s.step(
            &format!(
                "The server's key. Obtain the fingerprint of the server's signing key from a \
                 source other than this export (the export note, the bank's letter, or the \
                 `kid` the server answers at /v1/server-key), and put it in place of {} in \
                 the command. It checks that keys/{kid}.pem is that key.",
                FINGERPRINT_PLACEHOLDER
            ),
            &[equals(
                &fingerprint_of(&format!("keys/{kid}.pem"), *alg),
                FINGERPRINT_PLACEHOLDER,
            )],
        );
    }

    s.step(
        "The server-signed documents. documents/approval.json, ticket.json and policy.json \
         are exactly the documents manifest.json names by digest.",
        &["approval", "ticket", "policy"].map(|name| {
            format!(
                "grep -qF '\"{name}_digest\":\"'\"$(sha256sum documents/{name}.json | cut -c1-64)\"'\"' manifest.json && echo OK"
            )
        }),
    );

    for c in &server {
        let pem = format!("keys/{}.pem", c.kid);
        s.step(
            &format!(
                "The server's signature over {} (purpose {}). The signed input is \
                 \"tandem/v1/{}\" and a newline, then the 32 raw bytes of the document's \
                 SHA-256; the signature is the one {} carries.",
                c.document, c.purpose, c.purpose, c.listed_in
            ),
            &signature_commands(c, &pem),
        );
    }

    let agents: Vec<&OpensslCheck> = checks.iter().filter(|c| c.purpose == "manifest").collect();
    for c in &agents {
        let pem = format!("keys/{}.pem", c.kid);
        let mut commands = Vec::new();
        if c.key.is_some() {
            commands.push(format!(
                "grep -qF '\"public_key\":{{\"alg\":\"{}\",\"key\":\"'\"$(openssl pkey -pubin -in {pem} -outform DER | tail -c {} | openssl base64 -A)\"'\"}}' documents/approval.json && echo OK",
                c.alg,
                raw_key_len(c.alg)
            ));
        }
        commands.extend(signature_commands(c, &pem));
        s.step(
            &format!(
                "The {} signature over manifest.json, by {}. Its key is the one the \
                 server-signed approval (checked above) names for that team member; the \
                 signed input is \"tandem/v1/manifest\", a newline, and the 32 raw bytes of \
                 manifest.json's SHA-256.",
                c.name, c.signer
            ),
            &commands,
        );
    }

    s.step(
        "The evidence. Every blob's bytes have the SHA-256 its name says, and those are \
         exactly the blobs manifest.json lists (diff prints nothing when they are equal).",
        &[
            "sha256sum --strict --quiet -c SHA256SUMS && echo OK".to_owned(),
            "diff <(grep -o '\"sha256\":\"[0-9a-f]\\{64\\}\"' manifest.json | cut -d'\"' -f4 | sort) <(cut -c1-64 SHA256SUMS | sort) && echo OK".to_owned(),
        ],
    );

    if let Some(receipt) = &bundle.receipt {
        let files = [
            (
                super::super::RECEIPT_FILE,
                "documents/receipt.json",
                "receipt",
                &receipt.receipt.signature,
            ),
            (
                super::super::CHECKPOINT_FILE,
                "documents/checkpoint.json",
                "checkpoint",
                &receipt.checkpoint.signature,
            ),
        ];
        let mut commands = Vec::new();
        for (file, document, name, record) in files {
            // Canonical JSON of {body, signature}: the body as a JSON string (quotes and
            // backslashes escaped), then the signature record with sorted keys.
            commands.push(format!(
                "printf '{{\"body\":\"%s\",\"signature\":{{\"alg\":\"{}\",\"kid\":\"{}\",\"sig\":\"%s\"}}}}' \"$(sed -e 's/\\\\/\\\\\\\\/g' -e 's/\"/\\\\\"/g' {document})\" \"$(openssl base64 -A -in signatures/{name}.sig)\" | cmp - {file} && echo OK",
                record.alg, record.kid
            ));
        }
        commands.push(
            "grep -qF '\"manifest_digest\":\"'\"$(sha256sum manifest.json | cut -c1-64)\"'\"' documents/receipt.json && echo OK"
                .to_owned(),
        );
        commands.push(
            "test \"$(grep -o '\"tree_size\":[0-9]*' documents/receipt.json)\" = \"$(grep -o '\"tree_size\":[0-9]*' documents/checkpoint.json)\" && echo OK"
                .to_owned(),
        );
        s.step(
            "The server's receipt. receipt/receipt.json and receipt/checkpoint.json are \
             exactly the documents whose server signatures were checked above, with those \
             signatures; the receipt names this manifest, and both are for one tree size.",
            &commands,
        );
        s.line("");
        s.line(&format!(
            "The manifest is entry {} of the server's transparency log. The inclusion proof in",
            receipt
                .receipt
                .body
                .split("\"log_index\":")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or("?")
        ));
        s.line("receipt/inclusion-proof.json leads from SHA-256(0x00 || manifest digest) to the");
        s.line("checkpoint's root: `tandem verify` checks it, or by hand as transparency-log.md");
        s.line("section 5 shows.");
    }
    if !bundle.certificates.is_empty() {
        s.line("");
        s.line("certificates/ holds the server's signed word on each signing phone's key: the");
        s.line("agent, the banks, when it was enrolled and whether it was revoked. `tandem verify");
        s.line("--server-key FINGERPRINT` checks them and the signatures' times against them.");
    }
    s.line("");
    s.line("If every command printed OK, every blob, document and signature of this export is");
    s.line("as the team's phones and the server signed it.");
    s.text
}

/// The commands of one signature: the signed input is what it should be, the signature
/// file is the `sig` the document lists, and it verifies with the key.
fn signature_commands(c: &OpensslCheck, pem: &str) -> Vec<String> {
    // Canonical key order puts `role` between `kid` and `sig` in signatures.json.
    let between = if c.purpose == "manifest" {
        format!("\"role\":\"{}\",", c.name)
    } else {
        String::new()
    };
    let mut commands = vec![
        format!(
            "{{ printf 'tandem/v1/{}\\n'; openssl dgst -sha256 -binary {}; }} | cmp - signatures/{}.input && echo OK",
            c.purpose, c.document, c.name
        ),
        format!(
            "grep -qF '\"kid\":\"{}\",{between}\"sig\":\"'\"$(openssl base64 -A -in signatures/{}.sig)\"'\"' {} && echo OK",
            c.kid, c.name, c.listed_in
        ),
    ];
    if c.key.is_none() {
        commands.push(format!(
            "echo 'this export does not carry key {}: check with a copy of it you trust'",
            c.kid
        ));
        return commands;
    }
    commands.push(match c.alg {
        SignatureAlgorithm::Ed25519 => format!(
            "openssl pkeyutl -verify -pubin -inkey {pem} -rawin -in signatures/{0}.input -sigfile signatures/{0}.sig >/dev/null && echo OK",
            c.name
        ),
        SignatureAlgorithm::EcdsaP256Sha256 => format!(
            "openssl dgst -sha256 -verify {pem} -signature signatures/{0}.der signatures/{0}.input >/dev/null && echo OK",
            c.name
        ),
    });
    commands
}
