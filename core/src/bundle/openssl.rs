//! Encodings that let `openssl` check Tandem's keys and signatures on its own.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::crypto::{PublicKey, SignatureAlgorithm};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The key as a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as exports carry
/// keys (`keys/<kid>.pem`) and `openssl pkeyutl -verify -pubin` reads them.
pub fn public_key_pem(key: &PublicKey) -> String {
    let mut der = match key.alg {
        SignatureAlgorithm::Ed25519 => ED25519_SPKI_PREFIX.to_vec(),
        SignatureAlgorithm::EcdsaP256Sha256 => P256_SPKI_PREFIX.to_vec(),
    };
    der.extend_from_slice(&key.key);
    let b64 = B64.encode(&der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// The key of a SubjectPublicKeyInfo PEM as [`public_key_pem`] writes it; `None` for
/// anything else (another key type, extra text, a malformed body).
pub(crate) fn public_key_from_pem(pem: &str) -> Option<PublicKey> {
    let body = pem
        .strip_prefix("-----BEGIN PUBLIC KEY-----\n")?
        .strip_suffix("-----END PUBLIC KEY-----\n")?;
    let der = B64.decode(body.replace('\n', "")).ok()?;
    let (alg, raw) = if let Some(raw) = der.strip_prefix(ED25519_SPKI_PREFIX.as_slice()) {
        (SignatureAlgorithm::Ed25519, raw)
    } else {
        (
            SignatureAlgorithm::EcdsaP256Sha256,
            der.strip_prefix(P256_SPKI_PREFIX.as_slice())?,
        )
    };
    PublicKey::new(alg, raw.to_vec()).ok()
}

/// A fixed-width P-256 signature r‖s as the DER `SEQUENCE { INTEGER r, INTEGER s }`
/// openssl expects; `None` when it is not 64 bytes.
pub(crate) fn ecdsa_fixed_to_der(sig: &[u8]) -> Option<Vec<u8>> {
    if sig.len() != 64 {
        return None;
    }
    let (r, s) = sig.split_at(32);
    let mut body = Vec::with_capacity(70);
    for int in [r, s] {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len() - 1);
        let digits = int.get(start..)?;
        let pad = digits.first().is_some_and(|&b| b >= 0x80);
        body.push(0x02);
        body.push((digits.len() + usize::from(pad)) as u8);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    let mut der = vec![0x30, body.len() as u8];
    der.extend_from_slice(&body);
    Some(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_reads_back_as_the_key_it_was_written_from() {
        for alg in [
            SignatureAlgorithm::Ed25519,
            SignatureAlgorithm::EcdsaP256Sha256,
        ] {
            let (signer, _) = crate::crypto::SoftwareSigner::generate(alg).unwrap();
            let key = crate::crypto::Signer::public_key(&signer);
            let pem = public_key_pem(&key);
            assert_eq!(public_key_from_pem(&pem), Some(key));
            assert_eq!(public_key_from_pem(&pem.replace("BEGIN", "BEGIN ")), None);
            assert_eq!(public_key_from_pem(&format!("{pem}x")), None);
        }
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        let mut sig = [0u8; 64];
        sig[31] = 1; // r = 1
        sig[32] = 0x80; // s has its top bit set: needs a zero byte in front
        let der = ecdsa_fixed_to_der(&sig).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
        assert_eq!(der.len(), 2 + 3 + 35);
        assert!(ecdsa_fixed_to_der(&sig[..63]).is_none());
    }
}
