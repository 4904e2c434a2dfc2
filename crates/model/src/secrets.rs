//! Encryption of secrets at rest (AES-256-GCM) and their public fingerprints.
//!
//! Each value is bound to its owner and name as associated data, so a ciphertext copied to another
//! row does not decrypt. Fingerprints are keyed (HMAC-SHA256 under a key derived from the secret
//! key), so a fingerprint cannot be used to test guesses of the value offline.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

/// Errors from secret handling.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("OPENCLAWS_SECRET_KEY must be 32 bytes encoded as base64: {0}")]
    BadKey(String),
    #[error("a stored secret could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    #[error("a secret could not be encrypted")]
    Encrypt,
}

/// The symmetric key for secrets, loaded once from `OPENCLAWS_SECRET_KEY`.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: Aes256Gcm,
    fingerprint_key: [u8; 32],
    mac_key: [u8; 32],
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

/// A platform secret from the environment (e.g. the Composio API key): usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(..)")
    }
}

impl std::str::FromStr for Sensitive {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// A ciphertext with its nonce, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl SecretCipher {
    /// Builds the cipher from the base64 text of a 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::BadKey(format!("got {} bytes", b.len())))?;
        Ok(Self::from_key(key))
    }

    /// Builds the cipher from raw key bytes.
    pub fn from_key(key: [u8; 32]) -> Self {
        let mut derive = Sha256::new();
        derive.update(b"openclaws fingerprint key v1");
        derive.update(key);
        let mut derive_mac = Sha256::new();
        derive_mac.update(b"openclaws mac key v1");
        derive_mac.update(key);
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            fingerprint_key: derive.finalize().into(),
            mac_key: derive_mac.finalize().into(),
        }
    }

    /// A fresh random key as base64, for `dev` mode and for operators generating one.
    pub fn generate_key_base64() -> String {
        let key = Aes256Gcm::generate_key(OsRng);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. `"{instance uid}/{name}"`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Sealed, SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Encrypt)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts what [`SecretCipher::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, SecretError> {
        if sealed.nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)
    }

    /// A short keyed fingerprint (`hmac-sha256:` + 16 hex chars) that shows a value changed.
    /// Equal values give equal fingerprints whatever they belong to: it is what is stored and
    /// compared (and what the app secrets' fingerprint in machine metadata is); what a reader is
    /// shown of a value is [`SecretCipher::shown_fingerprint`], which also depends on the owner.
    pub fn fingerprint(&self, plaintext: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key)
            .expect("HMAC accepts any key length");
        mac.update(plaintext);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("hmac-sha256:{hex}")
    }

    /// The fingerprint shown to readers for a value stored under `owner` (an instance uid), from
    /// its stored [`SecretCipher::fingerprint`]: an HMAC keyed with the secret key over the owner
    /// and the stored fingerprint, in the same `hmac-sha256:` + 16 hex form. The same key on two
    /// instances shows two unrelated fingerprints, so a reader cannot tell that two customers
    /// share a key; one instance's stays the same until its value changes. Derived at read time,
    /// so fingerprints stored before it existed are shown this way too, with nothing to migrate.
    pub fn shown_fingerprint(&self, owner: &uuid::Uuid, stored: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key)
            .expect("HMAC accepts any key length");
        mac.update(b"openclaws shown fingerprint v1|");
        mac.update(owner.as_bytes());
        mac.update(stored.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("hmac-sha256:{hex}")
    }

    /// A full-length HMAC-SHA256 of `message` for `purpose` (e.g. signing a support session
    /// cookie), under its own key derived from the secret key: never equal to a fingerprint, and
    /// different purposes never share a tag.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("HMAC accepts any key length");
        mac.update(&(purpose.len() as u64).to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = SecretCipher::from_base64(&SecretCipher::generate_key_base64()).unwrap();
        let sealed = c.seal("a/KEY", b"canary-value").unwrap();
        assert_ne!(sealed.ciphertext, b"canary-value");
        assert_eq!(c.open("a/KEY", &sealed).unwrap(), b"canary-value");
        assert!(c.open("b/KEY", &sealed).is_err());
    }

    #[test]
    fn fingerprint_is_keyed_and_stable() {
        let a = SecretCipher::from_key([1; 32]);
        let b = SecretCipher::from_key([2; 32]);
        assert_eq!(a.fingerprint(b"x"), a.fingerprint(b"x"));
        assert_ne!(a.fingerprint(b"x"), b.fingerprint(b"x"));
        assert!(!a.fingerprint(b"x").contains('x'));
    }

    #[test]
    fn shown_fingerprints_depend_on_the_owner_and_stay_stable() {
        let c = SecretCipher::from_key([1; 32]);
        let stored = c.fingerprint(b"sk-ant-shared");
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_ne!(
            c.shown_fingerprint(&a, &stored),
            c.shown_fingerprint(&b, &stored)
        );
        assert_eq!(
            c.shown_fingerprint(&a, &stored),
            c.shown_fingerprint(&a, &c.fingerprint(b"sk-ant-shared"))
        );
        assert_ne!(
            c.shown_fingerprint(&a, &stored),
            c.shown_fingerprint(&a, &c.fingerprint(b"sk-ant-other"))
        );
        assert_ne!(c.shown_fingerprint(&a, &stored), stored);
        let other = SecretCipher::from_key([2; 32]);
        assert_ne!(
            c.shown_fingerprint(&a, &stored),
            other.shown_fingerprint(&a, &stored)
        );
        let shown = c.shown_fingerprint(&a, &stored);
        assert!(shown.starts_with("hmac-sha256:") && shown.len() == "hmac-sha256:".len() + 16);
    }

    #[test]
    fn macs_are_keyed_and_separated_by_purpose() {
        let a = SecretCipher::from_key([1; 32]);
        let b = SecretCipher::from_key([2; 32]);
        assert_eq!(a.mac("p", b"m"), a.mac("p", b"m"));
        assert_ne!(a.mac("p", b"m"), b.mac("p", b"m"));
        assert_ne!(a.mac("p", b"m"), a.mac("q", b"m"));
        assert_ne!(a.mac("pm", b""), a.mac("p", b"m"));
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(SecretCipher::from_base64("not base64!").is_err());
        assert!(SecretCipher::from_base64("AAAA").is_err());
    }
}
