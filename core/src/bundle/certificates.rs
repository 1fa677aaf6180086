//! `certificates/<kid>.json`: the server's signed word on each signing phone's key
//! (export format 1.1), and the trust a verifier builds from nothing but the server key's
//! fingerprint.
//!
//! Threat: a debtor's lawyer or a court's expert witness who holds an export and the
//! server key's fingerprint (from the export note, the bank's letter or `/v1/server-key`)
//! and nothing else. Without certificates, enrolment and revocation could only be checked
//! with a device registry no one outside the bank has; with them, a phone revoked before
//! the visit is caught offline, and a certificate altered or forged by the sender fails.

use std::collections::BTreeMap;

use super::openssl::public_key_from_pem;
use super::signatures::MAX_SIGNATURES_BYTES;
use super::{BundleError, BundleSource, DeviceEnrolment, Trust, parse_signatures};
use crate::canonical;
use crate::crypto::{Digest, Kid, PublicKey};
use crate::model::{DeviceCertificate, Signed};

/// The folder of the certificates in an export.
pub const CERTIFICATES_DIR: &str = "certificates/";

/// Largest certificate read (a few hundred bytes in practice).
const MAX_CERTIFICATE_BYTES: u64 = 16 * 1024;
/// Largest key file read.
pub(super) const MAX_KEY_BYTES: u64 = 4096;

/// The entry of a key's certificate: `certificates/<kid>.json`.
pub fn certificate_file(kid: &Kid) -> String {
    format!("{CERTIFICATES_DIR}{kid}.json")
}

/// Reads a certificate strictly (canonical JSON of `{body, signature}`), checking that its
/// body is canonical, of the certificate's shape, and for the key its name says.
pub(super) fn read_certificate(
    source: &dyn BundleSource,
    kid: &Kid,
) -> Option<Result<(Signed<DeviceCertificate>, DeviceCertificate), String>> {
    let name = certificate_file(kid);
    let bytes = match source.read_small(&name, MAX_CERTIFICATE_BYTES) {
        Ok(None) => return None,
        Ok(Some(bytes)) => bytes,
        Err(e) => return Some(Err(e.to_string())),
    };
    let parsed = canonical::from_canonical_slice::<Signed<DeviceCertificate>>(&bytes)
        .map_err(|e| format!("{name}: {e}"))
        .and_then(|signed| {
            let body: DeviceCertificate = canonical::from_canonical_slice(signed.body.as_bytes())
                .map_err(|e| format!("{name}: body: {e}"))?;
            if body.public_key.kid() != *kid {
                return Err(format!("{name} certifies another key"));
            }
            Ok((signed, body))
        });
    Some(parsed)
}

/// The kids of the signatures in `signatures.json` (none when it cannot be read: the
/// signatures check reports that).
pub(super) fn signer_kids(source: &dyn BundleSource) -> Vec<Kid> {
    match source.read_small("signatures.json", MAX_SIGNATURES_BYTES) {
        Ok(Some(bytes)) => parse_signatures(&bytes)
            .map(|signatures| signatures.iter().map(|s| s.kid).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `keys/<kid>.pem` when it holds the key of that kid (a key id is the key's own digest, so
/// a file can only name the key it holds).
pub(super) fn key_file(source: &dyn BundleSource, kid: &str) -> Option<PublicKey> {
    let bytes = source
        .read_small(&format!("keys/{kid}.pem"), MAX_KEY_BYTES)
        .ok()??;
    let key = public_key_from_pem(std::str::from_utf8(&bytes).ok()?)?;
    (key.kid().to_string() == kid).then_some(key)
}

/// A fingerprint as people copy it: hex, any case, maybe in groups split by spaces or
/// colons.
pub fn parse_fingerprint(text: &str) -> Result<Kid, BundleError> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex.parse::<Digest>().map(Kid).map_err(|_| {
        BundleError::Trust(
            "a server key fingerprint is 64 hexadecimal digits (the kid /v1/server-key answers)"
                .into(),
        )
    })
}

impl Trust {
    /// The trust an export gives a verifier who holds only the server key's fingerprint:
    /// the server key the export carries under that fingerprint, and the enrolment of each
    /// signing key from its certificate, whose server signature must hold.
    ///
    /// An export of format 1.0 (no `certificates/`) yields the server key alone: enrolment
    /// is then "not checked". An export without that key is [`BundleError::ServerKeyAbsent`];
    /// a certificate that does not verify is [`BundleError::Tampered`].
    pub fn from_server_key(
        source: &dyn BundleSource,
        fingerprint: &Kid,
    ) -> Result<Self, BundleError> {
        let server = key_file(source, &fingerprint.to_string()).ok_or_else(|| {
            BundleError::ServerKeyAbsent {
                fingerprint: fingerprint.to_string(),
            }
        })?;
        let tampered = |reason: String| BundleError::Tampered {
            path: source.location().to_owned(),
            reason,
        };
        let mut devices = BTreeMap::new();
        for kid in signer_kids(source) {
            let Some(read) = read_certificate(source, &kid) else {
                continue;
            };
            let (signed, body) = read.map_err(tampered)?;
            signed.verify(&server).map_err(|e| {
                tampered(format!(
                    "{}: not signed by the server key {fingerprint}: {e}",
                    certificate_file(&kid)
                ))
            })?;
            devices.insert(
                kid,
                DeviceEnrolment {
                    agent_id: body.agent_id,
                    device_id: body.device_id,
                    enrolled_at_ms: body.enrolled_at_ms,
                    revoked_at_ms: body.revoked_at_ms,
                },
            );
        }
        Ok(Self {
            server_keys: vec![server],
            devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fingerprint;

    #[test]
    fn fingerprints_are_read_as_people_copy_them() {
        let hex = "0123456789abcdef".repeat(4);
        let grouped = hex
            .to_uppercase()
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(parse_fingerprint(&grouped).unwrap().to_string(), hex);
        assert_eq!(parse_fingerprint(&hex).unwrap().to_string(), hex);
        for bad in ["", "abc", &format!("{hex}0"), &hex.replace('0', "g")] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }
}
