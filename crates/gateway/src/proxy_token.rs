//! Short-lived proxy tokens: what a gateway sends as its Anthropic key when model calls go
//! through our LLM proxy (`models.providers.anthropic.baseUrl`), instead of a long-lived
//! provider key living on the customer's machine.
//!
//! A token is an HS256 JWT with the instance uid as `sub`, the proxy as `aud`, and `iat`/`exp`.
//! The controller mints it, puts it into the gateway's secret store over the protocol (entry
//! [`STORE_NAME`], referenced from `models.providers.anthropic.apiKey`), and rotates it
//! once [`ProxyToken::needs_rotation`] says so (at two thirds of its lifetime), so a token is
//! replaced well before it expires even when a reconcile is late. The proxy verifies it with
//! [`ProxyTokenKey::verify`].
//!
//! Times are passed in rather than read from the clock, so both checks are pure and testable.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Shortest signing key accepted (HS256 wants at least the hash's length).
pub const MIN_KEY_LEN: usize = 32;
/// Clock skew tolerated between the controller and the proxy.
pub const LEEWAY: Duration = Duration::seconds(30);

/// Name of the gateway's secret-store entry holding the proxy token. The gateway's
/// `models.providers.anthropic.apiKey` refers to it ([`store_ref`]), so a new token delivered
/// with `secrets.store.set` is used at once, without a restart (`docs/hot-reload.md`).
pub const STORE_NAME: &str = "OPENCLAWS_LLM_PROXY_TOKEN";
/// Name of the store entry (kind `env`, readable back) holding the keyed fingerprint of the token
/// in [`STORE_NAME`]; written after the token, so it says which token is in place.
pub const STORE_FINGERPRINT_NAME: &str = "OPENCLAWS_LLM_PROXY_TOKEN_FP";
/// What the gateway shows in place of a SecretRef's id in `config.get`.
pub const REDACTED: &str = "__OPENCLAW_REDACTED__";

/// The SecretRef to [`STORE_NAME`] in the gateway's shared secret store.
pub fn store_ref() -> serde_json::Value {
    serde_json::json!({"source": "store", "provider": "default", "id": STORE_NAME})
}

/// Whether a live `apiKey` (as `config.get` shows it, id redacted) is [`store_ref`].
pub fn is_store_ref(live: &serde_json::Value) -> bool {
    let want = store_ref();
    live.get("source") == want.get("source")
        && live.get("provider") == want.get("provider")
        && live.as_object().is_some_and(|o| o.len() == 3)
        && matches!(live.get("id").and_then(|v| v.as_str()), Some(id) if id == STORE_NAME || id == REDACTED)
}

/// Errors from minting or verifying a proxy token. None of them carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ProxyTokenError {
    #[error("the proxy token key must be at least {MIN_KEY_LEN} bytes, got {0}")]
    KeyTooShort(usize),
    #[error("the proxy token lifetime must be positive")]
    BadLifetime,
    #[error("the proxy token expired")]
    Expired,
    #[error("the proxy token is issued in the future")]
    NotYetValid,
    #[error("the proxy token is invalid: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the proxy token could not be signed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// The claims of a proxy token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyClaims {
    /// The instance uid the proxy bills and rate-limits.
    pub sub: String,
    /// Who the token is for (the proxy's name), so it is useless elsewhere.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

impl ProxyClaims {
    /// When a token with these claims should be replaced: two thirds into its lifetime, so a
    /// late reconcile still replaces it well before it expires.
    pub fn rotate_at(&self) -> DateTime<Utc> {
        let lifetime = self.exp - self.iat;
        DateTime::from_timestamp(self.iat + lifetime * 2 / 3, 0).unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The instance uid in `sub`, if it is one.
    pub fn instance_uid(&self) -> Option<Uuid> {
        self.sub.parse().ok()
    }
}

/// A minted token with its claims. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyToken {
    token: String,
    pub claims: ProxyClaims,
}

impl fmt::Debug for ProxyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyToken")
            .field("token", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

impl ProxyToken {
    /// The compact JWT, to be stored as a secret. Never log it.
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// When a replacement should be minted: two thirds into the token's lifetime.
    pub fn rotate_at(&self) -> DateTime<Utc> {
        self.claims.rotate_at()
    }

    /// Whether the token should be replaced at `now` (also true once it has expired).
    pub fn needs_rotation(&self, now: DateTime<Utc>) -> bool {
        now >= self.rotate_at()
    }
}

/// The shared HS256 key, with the audience and lifetime of the tokens it mints.
#[derive(Clone)]
pub struct ProxyTokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    audience: String,
    lifetime: Duration,
}

impl fmt::Debug for ProxyTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyTokenKey")
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl ProxyTokenKey {
    /// A key from raw secret bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(
        secret: &[u8],
        audience: impl Into<String>,
        lifetime: Duration,
    ) -> Result<Self, ProxyTokenError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(ProxyTokenError::KeyTooShort(secret.len()));
        }
        if lifetime <= Duration::zero() {
            return Err(ProxyTokenError::BadLifetime);
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            audience: audience.into(),
            lifetime,
        })
    }

    /// Mints a token for one instance, valid from `now` for the key's lifetime.
    pub fn mint(
        &self,
        instance_uid: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ProxyToken, ProxyTokenError> {
        let claims = ProxyClaims {
            sub: instance_uid.to_string(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: (now + self.lifetime).timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ProxyTokenError::Sign)?;
        Ok(ProxyToken { token, claims })
    }

    /// Checks signature, algorithm, audience and the time window at `now`; returns the claims.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<ProxyClaims, ProxyTokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["sub", "aud", "iat", "exp"]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<ProxyClaims>(token, &self.decoding, &validation)
            .map_err(ProxyTokenError::Invalid)?;
        let claims = data.claims;
        let now = now.timestamp();
        if now >= claims.exp + LEEWAY.num_seconds() {
            return Err(ProxyTokenError::Expired);
        }
        if claims.iat > now + LEEWAY.num_seconds() {
            return Err(ProxyTokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The shared settings of the proxy token (the controller mints, the LLM proxy verifies).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyKeySettings {
    /// The HS256 key shared with the LLM proxy (at least 32 bytes).
    #[arg(
        long,
        env = "OPENCLAWS_LLM_PROXY_KEY",
        value_name = "OPENCLAWS_LLM_PROXY_KEY",
        hide_env_values = true
    )]
    pub llm_proxy_key: openclaws_model::secrets::Sensitive,
    /// The audience the proxy expects.
    #[arg(
        long,
        env = "OPENCLAWS_LLM_PROXY_AUDIENCE",
        value_name = "OPENCLAWS_LLM_PROXY_AUDIENCE",
        default_value = "openclaws-llm-proxy"
    )]
    pub llm_proxy_audience: String,
    /// Lifetime of a minted token in seconds.
    #[arg(
        long,
        env = "OPENCLAWS_LLM_PROXY_TOKEN_SECONDS",
        value_name = "OPENCLAWS_LLM_PROXY_TOKEN_SECONDS",
        default_value_t = 86_400
    )]
    pub llm_proxy_token_seconds: i64,
}

impl ProxyKeySettings {
    /// The key these settings describe.
    pub fn key(&self) -> Result<ProxyTokenKey, ProxyTokenError> {
        ProxyTokenKey::new(
            self.llm_proxy_key.expose().as_bytes(),
            self.llm_proxy_audience.clone(),
            Duration::seconds(self.llm_proxy_token_seconds),
        )
    }
}

/// `openclaws-controller proxy-token …`: the proxy's side of the token, as a command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ProxyTokenCommand {
    /// Verify a token (argument or stdin); prints its claims as JSON, exits non-zero if invalid.
    Verify {
        #[command(flatten)]
        key: ProxyKeySettings,
        /// The token; read from standard input when absent.
        token: Option<String>,
    },
    /// Mint a token for an instance (for testing the proxy); prints it.
    Mint {
        #[command(flatten)]
        key: ProxyKeySettings,
        /// The instance uid the token speaks for.
        #[arg(long)]
        instance_uid: Uuid,
    },
}

impl ProxyTokenCommand {
    /// Runs the command at `now`; `stdin` supplies a token not given as an argument.
    pub fn run(
        &self,
        now: DateTime<Utc>,
        stdin: impl FnOnce() -> String,
    ) -> Result<String, ProxyTokenError> {
        match self {
            ProxyTokenCommand::Verify { key, token } => {
                let token = token.clone().unwrap_or_else(stdin);
                let claims = key.key()?.verify(token.trim(), now)?;
                Ok(serde_json::to_string(&claims).unwrap_or_default())
            }
            ProxyTokenCommand::Mint { key, instance_uid } => {
                Ok(key.key()?.mint(*instance_uid, now)?.expose().to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_store_ref_matches_with_its_id_redacted() {
        let live =
            |id: &str| serde_json::json!({"source": "store", "provider": "default", "id": id});
        assert!(is_store_ref(&store_ref()));
        assert!(is_store_ref(&live(REDACTED)));
        assert!(!is_store_ref(&live("SOMETHING_ELSE")));
        assert!(!is_store_ref(
            &serde_json::json!({"source": "env", "provider": "default", "id": STORE_NAME})
        ));
        assert!(!is_store_ref(&serde_json::json!("sk-plaintext")));
        let mut extra = store_ref();
        extra["extra"] = serde_json::json!(1);
        assert!(!is_store_ref(&extra));
    }

    #[test]
    fn the_command_mints_and_verifies() {
        let key = ProxyKeySettings {
            llm_proxy_key: openclaws_model::secrets::Sensitive::new("k".repeat(40)),
            llm_proxy_audience: "proxy".into(),
            llm_proxy_token_seconds: 600,
        };
        let uid = Uuid::new_v4();
        let now = Utc::now();
        let token = ProxyTokenCommand::Mint {
            key: key.clone(),
            instance_uid: uid,
        }
        .run(now, String::new)
        .unwrap();
        let verify = ProxyTokenCommand::Verify { key, token: None };
        let claims = verify.run(now, || format!("{token}\n")).unwrap();
        assert!(claims.contains(&uid.to_string()), "{claims}");
        assert!(matches!(
            verify.run(now + Duration::seconds(3600), || token.clone()),
            Err(ProxyTokenError::Expired)
        ));
        assert!(verify.run(now, || "garbage".into()).is_err());
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key() -> ProxyTokenKey {
        ProxyTokenKey::new(SECRET, "openclaws-llm-proxy", Duration::minutes(60)).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn minted_tokens_verify_with_their_claims() {
        let uid = Uuid::new_v4();
        let token = key().mint(uid, t0()).unwrap();
        let claims = key()
            .verify(token.expose(), t0() + Duration::minutes(1))
            .unwrap();
        assert_eq!(claims.instance_uid(), Some(uid));
        assert_eq!(claims.aud, "openclaws-llm-proxy");
        assert_eq!(claims.iat, t0().timestamp());
        assert_eq!(claims.exp, (t0() + Duration::minutes(60)).timestamp());
        assert_eq!(claims, token.claims);
    }

    #[test]
    fn expired_future_foreign_and_tampered_tokens_are_refused() {
        let token = key().mint(Uuid::new_v4(), t0()).unwrap();
        assert!(matches!(
            key().verify(token.expose(), t0() + Duration::minutes(61)),
            Err(ProxyTokenError::Expired)
        ));
        assert!(matches!(
            key().verify(token.expose(), t0() - Duration::minutes(5)),
            Err(ProxyTokenError::NotYetValid)
        ));
        let other_audience =
            ProxyTokenKey::new(SECRET, "someone-else", Duration::minutes(60)).unwrap();
        assert!(matches!(
            other_audience.verify(token.expose(), t0()),
            Err(ProxyTokenError::Invalid(_))
        ));
        let other_key =
            ProxyTokenKey::new(&[7u8; 32], "openclaws-llm-proxy", Duration::minutes(60)).unwrap();
        assert!(matches!(
            other_key.verify(token.expose(), t0()),
            Err(ProxyTokenError::Invalid(_))
        ));
        let mut tampered = token.expose().to_owned();
        tampered.push('x');
        assert!(matches!(
            key().verify(&tampered, t0()),
            Err(ProxyTokenError::Invalid(_))
        ));
    }

    #[test]
    fn rotation_is_due_at_two_thirds_of_the_lifetime() {
        let token = key().mint(Uuid::new_v4(), t0()).unwrap();
        assert_eq!(token.rotate_at(), t0() + Duration::minutes(40));
        assert!(!token.needs_rotation(t0()));
        assert!(!token.needs_rotation(t0() + Duration::minutes(39)));
        assert!(token.needs_rotation(t0() + Duration::minutes(40)));
        assert!(token.needs_rotation(t0() + Duration::minutes(90)));
    }

    #[test]
    fn bad_keys_and_lifetimes_are_refused_and_nothing_secret_is_printed() {
        assert!(matches!(
            ProxyTokenKey::new(b"short", "a", Duration::minutes(1)),
            Err(ProxyTokenError::KeyTooShort(5))
        ));
        assert!(matches!(
            ProxyTokenKey::new(SECRET, "a", Duration::zero()),
            Err(ProxyTokenError::BadLifetime)
        ));
        let token = key().mint(Uuid::new_v4(), t0()).unwrap();
        let printed = format!("{token:?} {:?}", key());
        assert!(!printed.contains(token.expose()));
        assert!(!printed.contains("0123456789abcdef"));
    }
}
