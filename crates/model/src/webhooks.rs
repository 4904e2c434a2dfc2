//! Webhooks: the event types an endpoint can subscribe to, its signing secret and the
//! signature of a delivery (Standard Webhooks, as Svix sends them; `docs/webhooks.md`).
//!
//! A secret is `whsec_` followed by the base64 of 24 random bytes; the HMAC key is those bytes.
//! A delivery is signed over `"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256 and
//! sent as `webhook-signature: v1,<base64 of the MAC>`.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a signing secret.
const SECRET_BYTES: usize = 24;

/// What happened to an instance, as a webhook subscribes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// The instance was created.
    Created,
    /// `status.phase` changed.
    PhaseChanged,
    /// A condition's type, status or reason changed (appeared or went away included).
    ConditionsChanged,
    /// A device pairing request the previous status did not list is waiting for approval.
    PairingRequested,
    /// The instance's teardown finished and its row was deleted.
    Deleted,
}

impl EventType {
    /// Every event type, in the order the documentation lists them.
    pub const ALL: [EventType; 5] = [
        EventType::Created,
        EventType::PhaseChanged,
        EventType::ConditionsChanged,
        EventType::PairingRequested,
        EventType::Deleted,
    ];

    /// The wire name (`instance.phase_changed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "instance.created",
            EventType::PhaseChanged => "instance.phase_changed",
            EventType::ConditionsChanged => "instance.conditions_changed",
            EventType::PairingRequested => "instance.pairing_requested",
            EventType::Deleted => "instance.deleted",
        }
    }

    /// The event type of a wire name, if it is one.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Errors from signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The secret is not `whsec_` and base64.
    #[error("a webhook signing secret must be `whsec_` followed by base64")]
    MalformedSecret,
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("{SECRET_PREFIX}{encoded}")
}

/// The `webhook-signature` header value of a delivery: `v1,` and the base64 of
/// HMAC-SHA256(key, `"{id}.{timestamp}.{body}"`), the key being the secret's decoded bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MalformedSecret)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| SigningError::MalformedSecret)?;
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| SigningError::MalformedSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!("v1,{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("instance.updated"), None);
    }

    #[test]
    fn secrets_are_fresh_and_sign() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        let s1 = sign(&a, "msg_1", 1_700_000_000, b"{}").unwrap();
        assert!(s1.starts_with("v1,"));
        assert_eq!(s1, sign(&a, "msg_1", 1_700_000_000, b"{}").unwrap());
        assert_ne!(s1, sign(&b, "msg_1", 1_700_000_000, b"{}").unwrap());
        assert_ne!(s1, sign(&a, "msg_1", 1_700_000_001, b"{}").unwrap());
        assert_eq!(
            sign("nope", "m", 1, b""),
            Err(SigningError::MalformedSecret)
        );
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let got = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
