use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{CryptoError, random_bytes};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// AES-256-GCM for small secrets: debtor personal fields in the device store, sealed keys.
///
/// Each value gets a fresh random nonce; the associated data names where the value lives
/// (e.g. `case/<id>/debtor_name`), so a ciphertext moved to another row or column fails.
pub struct FieldCipher {
    key: LessSafeKey,
}

impl FieldCipher {
    /// A cipher under a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| CryptoError::BadPrivateKey("AES-256 key must be 32 bytes".into()))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plaintext` bound to `context`: `version || nonce || ciphertext || tag`.
    pub fn encrypt(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| CryptoError::Decrypt {
                context: context.to_owned(),
            })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`FieldCipher::encrypt`] produced for the same `context`.
    pub fn decrypt(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let fail = || CryptoError::Decrypt {
            context: context.to_owned(),
        };
        let (version, rest) = sealed.split_first().ok_or_else(fail)?;
        if *version != VERSION || rest.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut body = Zeroizing::new(body.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| fail())?
            .len();
        body.truncate(len);
        Ok(body)
    }

    /// Encrypts a UTF-8 string.
    pub fn encrypt_str(&self, context: &str, text: &str) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(context, text.as_bytes())
    }

    /// Decrypts a UTF-8 string.
    pub fn decrypt_str(&self, context: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = self.decrypt(context, sealed)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Decrypt {
            context: context.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_moved_to_another_context_does_not_decrypt() {
        let c = FieldCipher::new(&[7; 32]).unwrap();
        let sealed = c.encrypt_str("case/1/debtor_name", "张三").unwrap();
        assert_eq!(
            c.decrypt_str("case/1/debtor_name", &sealed).unwrap(),
            "张三"
        );
        assert!(c.decrypt_str("case/2/debtor_name", &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(c.decrypt("case/1/debtor_name", &flipped).is_err());
        assert!(c.decrypt("case/1/debtor_name", &[]).is_err());
    }

    #[test]
    fn the_same_value_encrypts_differently_each_time() {
        let c = FieldCipher::new(&[7; 32]).unwrap();
        assert_ne!(c.encrypt("1", b"x").unwrap(), c.encrypt("1", b"x").unwrap());
    }
}
