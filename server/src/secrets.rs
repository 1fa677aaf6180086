//! Generated secrets: passwords (argon2id-hashed) and one-time enrollment codes (SHA-256).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tandem_core::crypto::{random_bytes, sha256};

/// Crockford's base32 alphabet: no I, L, O, U, so codes read aloud and typed on a phone
/// survive; 32 symbols, so one random byte masked to 5 bits picks one without bias.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why a secret could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
    /// argon2 refused (bad parameters or a malformed stored hash).
    #[error("password hash: {0}")]
    Hash(String),
}

fn random_symbols<const N: usize>() -> Result<String, SecretError> {
    let bytes = random_bytes::<N>().map_err(|_| SecretError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// A new password: 16 base32 symbols (80 bits), lowercase.
pub fn new_password() -> Result<String, SecretError> {
    Ok(random_symbols::<16>()?.to_ascii_lowercase())
}

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt_bytes = random_bytes::<16>().map_err(|_| SecretError::Random)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Checks a password against a stored argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, SecretError> {
    let parsed = PasswordHash::new(phc).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A new enrollment code: 12 base32 symbols (60 bits) in three groups, e.g. `7KQ2-M9XD-4HFA`.
pub fn new_enrollment_code() -> Result<String, SecretError> {
    let s = random_symbols::<12>()?;
    Ok(format!("{}-{}-{}", &s[0..4], &s[4..8], &s[8..12]))
}

/// The stored form of an enrollment code (core's, which the phone's proof signs): SHA-256
/// hex of its symbols, uppercase, without dashes or spaces. Codes are random and
/// short-lived, so a fast hash suffices and lets the server find the code by its hash.
pub fn enrollment_code_hash(code: &str) -> String {
    tandem_core::sync::enrollment_code_hash(code)
}

/// A new bearer secret: `prefix` and 32 random bytes, base64url without padding. The prefix
/// says what the secret is for (`tdv_` device token, `tss_` console session), so a secret
/// pasted in the wrong place is refused at once and leaked ones are easy to scan for.
pub fn new_token(prefix: &str) -> Result<String, SecretError> {
    use base64::Engine as _;
    let bytes = random_bytes::<32>().map_err(|_| SecretError::Random)?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a bearer secret: SHA-256 hex. Secrets carry 256 random bits, so a
/// fast hash is enough and lets the server find the row by it.
pub fn token_hash(token: &str) -> String {
    sha256(token.as_bytes()).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let pw = new_password().unwrap();
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &phc).unwrap());
        assert!(!verify_password("wrong", &phc).unwrap());
    }

    #[test]
    fn an_enrollment_code_hashes_the_same_however_it_is_typed() {
        let code = new_enrollment_code().unwrap();
        assert_eq!(code.len(), 14);
        let typed = code.replace('-', " ").to_ascii_lowercase();
        assert_eq!(enrollment_code_hash(&code), enrollment_code_hash(&typed));
    }
}
