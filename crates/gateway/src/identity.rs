//! The Ed25519 device identity the controller presents to a gateway.
//!
//! Through Fly's proxy the controller is a *remote* client, and a remote client without a paired
//! device identity gets no scopes, so it cannot list or approve pairing requests. The controller
//! therefore keeps one identity per instance, pairs it once, and signs every `connect` with it.
//!
//! Wire facts (openclaw 2026.9.6, `docs/reference/openclaw-gateway.md` §4.1):
//! - `device.id` is the lowercase hex SHA-256 of the raw 32-byte public key;
//! - `device.publicKey` is the raw public key, base64url without padding;
//! - `device.signature` is an Ed25519 signature (base64url) over the UTF-8 string
//!   `v3|deviceId|clientId|clientMode|role|scopes(comma-joined)|signedAtMs|token|nonce|platform|deviceFamily`,
//!   where platform and device family are trimmed and ASCII-lowercased and token is the one sent
//!   in `auth.token` (empty when none).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// Length of the stored private key (the Ed25519 seed).
pub const SECRET_KEY_LEN: usize = 32;

/// Errors from loading a stored identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("a device private key must be {SECRET_KEY_LEN} bytes, got {0}")]
    BadLength(usize),
}

/// An Ed25519 key pair that identifies the controller (or a test device) to one gateway.
///
/// `Debug` shows only the device id; the private key leaves this type only through
/// [`DeviceIdentity::to_secret_bytes`], meant for encrypting it at rest.
#[derive(Clone)]
pub struct DeviceIdentity {
    signing: SigningKey,
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("device_id", &self.device_id())
            .finish_non_exhaustive()
    }
}

impl DeviceIdentity {
    /// A fresh identity from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; SECRET_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// Rebuilds an identity from the bytes [`DeviceIdentity::to_secret_bytes`] returned (after
    /// they were decrypted with `SecretCipher`).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let seed: [u8; SECRET_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadLength(bytes.len()))?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed(seed: [u8; SECRET_KEY_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The private key (Ed25519 seed) to be sealed with `SecretCipher` and stored. Never log it.
    pub fn to_secret_bytes(&self) -> [u8; SECRET_KEY_LEN] {
        self.signing.to_bytes()
    }

    /// The raw 32-byte public key.
    pub fn public_key_raw(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key as the gateway expects it in `device.publicKey` (base64url, no padding).
    pub fn public_key_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key_raw())
    }

    /// The device id the gateway derives from the public key: hex SHA-256 of the raw key.
    pub fn device_id(&self) -> String {
        hex(&Sha256::digest(self.public_key_raw()))
    }

    /// Signs a connect attempt and returns the base64url signature for `device.signature`.
    pub fn sign_connect(&self, payload: &ConnectSignature<'_>) -> String {
        let text = payload.text(&self.device_id());
        URL_SAFE_NO_PAD.encode(self.signing.sign(text.as_bytes()).to_bytes())
    }
}

/// The fields a connect signature covers; the gateway rebuilds the same string to verify it.
#[derive(Clone, Copy)]
pub struct ConnectSignature<'a> {
    pub client_id: &'a str,
    pub client_mode: &'a str,
    pub role: &'a str,
    pub scopes: &'a [String],
    /// The challenge's `ts`, echoed as `device.signedAt`.
    pub signed_at_ms: i64,
    /// The token sent in `auth.token`, if any.
    pub token: Option<&'a str>,
    /// The challenge's nonce.
    pub nonce: &'a str,
    pub platform: &'a str,
    pub device_family: Option<&'a str>,
}

impl fmt::Debug for ConnectSignature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSignature")
            .field("client_id", &self.client_id)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("signed_at_ms", &self.signed_at_ms)
            .finish_non_exhaustive()
    }
}

impl ConnectSignature<'_> {
    /// The exact v3 string that is signed.
    fn text(&self, device_id: &str) -> String {
        [
            "v3",
            device_id,
            self.client_id,
            self.client_mode,
            self.role,
            &self.scopes.join(","),
            &self.signed_at_ms.to_string(),
            self.token.unwrap_or(""),
            self.nonce,
            &normalise(self.platform),
            &normalise(self.device_family.unwrap_or("")),
        ]
        .join("|")
    }
}

/// Trim and ASCII-lowercase, as the gateway does for platform and device family.
fn normalise(text: &str) -> String {
    text.trim().to_ascii_lowercase()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 1..=32; the expected values were produced by Node's `crypto` (PKCS#8 import of the
    /// same seed), the same derivation the reference scripts use against the real gateway.
    fn vector_identity() -> DeviceIdentity {
        let seed: Vec<u8> = (1..=32).collect();
        DeviceIdentity::from_secret_bytes(&seed).unwrap()
    }

    #[test]
    fn public_key_and_device_id_match_node() {
        let id = vector_identity();
        assert_eq!(
            id.public_key_base64url(),
            "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ"
        );
        assert_eq!(
            id.device_id(),
            "65b60673d6ed884bf01c2c222d82ada0740f29ac3355d6a925c81f17f47a27b8"
        );
    }

    #[test]
    fn connect_signature_matches_node() {
        let id = vector_identity();
        let scopes = vec!["operator.read".to_owned(), "operator.pairing".to_owned()];
        let sig = ConnectSignature {
            client_id: "cli",
            client_mode: "cli",
            role: "operator",
            scopes: &scopes,
            signed_at_ms: 1_795_311_754_000,
            token: Some("tok"),
            nonce: "nonce-1",
            platform: " Linux ",
            device_family: None,
        };
        assert_eq!(
            sig.text(&id.device_id()),
            "v3|65b60673d6ed884bf01c2c222d82ada0740f29ac3355d6a925c81f17f47a27b8|cli|cli|operator|operator.read,operator.pairing|1795311754000|tok|nonce-1|linux|"
        );
        assert_eq!(
            id.sign_connect(&sig),
            "ST5qCpdT2xWFpM7983Cday3KT1_gKbsLy4wHm22SQzwLsM5MIYvMger6Y2sZAE9GLAa8xtEDc8F5sbFe3-OuCA"
        );
    }

    #[test]
    fn secret_bytes_round_trip_and_length_is_checked() {
        let id = DeviceIdentity::generate();
        let back = DeviceIdentity::from_secret_bytes(&id.to_secret_bytes()).unwrap();
        assert_eq!(back.device_id(), id.device_id());
        assert_ne!(DeviceIdentity::generate().device_id(), id.device_id());
        assert!(matches!(
            DeviceIdentity::from_secret_bytes(&[0u8; 31]),
            Err(IdentityError::BadLength(31))
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let id = vector_identity();
        let text = format!("{id:?}");
        assert!(text.contains(&id.device_id()));
        assert!(!text.contains("signing"));
        let seed_hex = hex(&id.to_secret_bytes());
        assert!(!text.contains(&seed_hex));
    }
}
