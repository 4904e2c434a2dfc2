//! App secrets: the gateway token, the customer's model keys and Composio's entity id, set as Fly
//! app secrets (environment variables at boot). The LLM proxy token and the channel credentials
//! are not among them: they go into the gateway's own secret store over the protocol, so a
//! rotation needs no restart (`docs/hot-reload.md`, `docs/channels.md`). Values live only here, in the encrypted store, at Fly and in the
//! gateway; everything that can be printed (Debug, events, status, metadata) shows names and a
//! keyed fingerprint only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use openclaws_model::secret_names::{
    ProviderKey, COMPOSIO_API_KEY, COMPOSIO_ENTITY_ID, GATEWAY_TOKEN, LLM_PROXY_TOKEN,
};
use openclaws_model::secrets::{SecretCipher, Sensitive};
use openclaws_model::{ChannelSecret, InstanceSpec};
use openclaws_store::secrets::Plaintexts;
use uuid::Uuid;

use super::world::ObservedSecrets;

/// Secret names this controller manages on every app: only names it can produce, so it never
/// unsets a secret someone else put there (others are left alone). Composio's platform key is
/// managed only when the platform setting exists ([`SecretsDraft`]), so a key an operator put on
/// an app by hand is never unset by a controller that has none to give.
pub const MANAGED: [&str; 5] = [
    GATEWAY_TOKEN,
    ProviderKey::AnthropicApiKey.env_name(),
    ProviderKey::AnthropicOauthToken.env_name(),
    ProviderKey::OpenaiApiKey.env_name(),
    COMPOSIO_ENTITY_ID,
];

/// Machine metadata key holding the fingerprint of the secrets the machine should boot with, so
/// a changed secret rolls the machine.
pub const META_SECRETS: &str = "openclaws_secrets";

/// The secret values an app should hold, and the proxy token its gateway should hold.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DesiredSecrets {
    values: BTreeMap<String, String>,
    fingerprint: String,
    managed: BTreeSet<&'static str>,
    proxy_token: Option<StoreToken>,
    channel_secrets: BTreeMap<ChannelSecret, StoreToken>,
}

/// The LLM proxy token for the gateway's secret store, with its keyed fingerprint (what the
/// gateway's marker entry holds once the token is in place).
#[derive(Clone, PartialEq, Eq)]
struct StoreToken {
    value: String,
    fingerprint: String,
}

impl fmt::Debug for DesiredSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredSecrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("fingerprint", &self.fingerprint)
            .field(
                "proxy_token",
                &self.proxy_token.as_ref().map(|t| &t.fingerprint),
            )
            .field(
                "channel_secrets",
                &self
                    .channel_secrets
                    .iter()
                    .map(|(s, t)| (s.store_name(), &t.fingerprint))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DesiredSecrets {
    /// Builds the set and its keyed fingerprint.
    pub fn new(values: BTreeMap<String, String>, cipher: &SecretCipher) -> Self {
        let mut canonical = Vec::new();
        for (k, v) in &values {
            canonical.extend_from_slice(k.as_bytes());
            canonical.push(0);
            canonical.extend_from_slice(v.as_bytes());
            canonical.push(0);
        }
        let fingerprint = cipher.fingerprint(&canonical);
        Self {
            values,
            fingerprint,
            managed: MANAGED.into_iter().collect(),
            proxy_token: None,
            channel_secrets: BTreeMap::new(),
        }
    }

    /// Also delivers a channel credential into the gateway's secret store (not an app secret).
    pub fn with_channel_secret(
        mut self,
        secret: ChannelSecret,
        value: String,
        cipher: &SecretCipher,
    ) -> Self {
        let fingerprint = cipher.fingerprint(value.as_bytes());
        self.channel_secrets
            .insert(secret, StoreToken { value, fingerprint });
        self
    }

    /// A channel credential for the gateway's secret store. Never log it.
    pub fn channel_secret(&self, secret: ChannelSecret) -> Option<&str> {
        self.channel_secrets.get(&secret).map(|t| t.value.as_str())
    }

    /// Keyed fingerprint of a channel credential (what its marker entry holds once it is in
    /// place).
    pub fn channel_secret_fingerprint(&self, secret: ChannelSecret) -> Option<&str> {
        self.channel_secrets
            .get(&secret)
            .map(|t| t.fingerprint.as_str())
    }

    /// Every channel credential value, to scrub from what a gateway says. Never log them.
    pub fn channel_secret_values(&self) -> Vec<&str> {
        self.channel_secrets
            .values()
            .map(|t| t.value.as_str())
            .collect()
    }

    /// Also manages `name`: set when wanted, unset when present but not wanted.
    pub fn managing(mut self, name: &'static str) -> Self {
        self.managed.insert(name);
        self
    }

    /// Whether this controller owns the secret `name`.
    pub fn manages(&self, name: &str) -> bool {
        self.managed.contains(name)
    }

    /// One value, for the controller's own use (the gateway token to connect with). Never log it.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Keyed fingerprint of names and values (safe to show and store).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Also delivers `token` into the gateway's secret store (not an app secret).
    pub fn with_proxy_token(mut self, token: String, cipher: &SecretCipher) -> Self {
        self.proxy_token = Some(StoreToken {
            fingerprint: cipher.fingerprint(token.as_bytes()),
            value: token,
        });
        self
    }

    /// The proxy token for the gateway's secret store. Never log it.
    pub fn proxy_token(&self) -> Option<&str> {
        self.proxy_token.as_ref().map(|t| t.value.as_str())
    }

    /// Keyed fingerprint of the proxy token (safe to show and to store in the gateway).
    pub fn proxy_token_fingerprint(&self) -> Option<&str> {
        self.proxy_token.as_ref().map(|t| t.fingerprint.as_str())
    }

    /// Names that should be set.
    pub fn names(&self) -> BTreeSet<&str> {
        self.values.keys().map(String::as_str).collect()
    }

    /// The write that makes an app hold exactly these managed secrets: every desired value, and
    /// an unset for each managed name present but no longer wanted.
    pub fn write_for(&self, present: &BTreeSet<String>) -> SecretWrite {
        let mut values: BTreeMap<String, Option<String>> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        for name in &self.managed {
            if present.contains(*name) && !self.values.contains_key(*name) {
                values.insert((*name).to_owned(), None);
            }
        }
        SecretWrite {
            values,
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// The app secrets as far as they can be built from what is stored, without creating anything.
/// The reconcile fills in what is missing (it generates a gateway token, mints a proxy token)
/// and records it; the plan preview must not, and stands in placeholders instead, so it shows
/// the secrets write the reconcile would make. One builder for both keeps them in step.
pub struct SecretsDraft {
    values: BTreeMap<String, String>,
    proxy_token: Option<String>,
    channel_secrets: BTreeMap<ChannelSecret, String>,
    /// No gateway token is stored for the spec's `gatewayTokenRotation`: a reconcile generates
    /// one.
    pub gateway_token_missing: bool,
    /// The LLM proxy is in use but no current token is stored (none, invalid, or due for
    /// rotation): a reconcile mints one.
    pub proxy_token_missing: bool,
    /// When the proxy token in use is due for replacement.
    pub proxy_token_rotate_at: Option<DateTime<Utc>>,
    manage_composio_key: bool,
}

impl fmt::Debug for SecretsDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsDraft")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("gateway_token_missing", &self.gateway_token_missing)
            .field("proxy_token_missing", &self.proxy_token_missing)
            .finish_non_exhaustive()
    }
}

/// Stands in for a value a reconcile would create, in a preview only: it makes the fingerprint
/// differ from any write the controller made, and is never sent anywhere.
const PREVIEW_PLACEHOLDER: &str = "\u{0}value a reconcile would create";

/// What besides the stored values decides the app secrets of one instance.
#[derive(Debug, Clone, Copy)]
pub struct DraftInput<'a> {
    /// The instance.
    pub uid: Uuid,
    /// Its spec.
    pub spec: &'a InstanceSpec,
    /// The `gatewayTokenRotation` the stored gateway token was generated for.
    pub stored_token_rotation: i64,
    /// Model calls go through the LLM proxy with a minted token.
    pub proxy_token: bool,
    /// The platform's keys.
    pub inputs: &'a super::DesiredInputs,
    /// The reconcile's clock.
    pub now: DateTime<Utc>,
}

impl SecretsDraft {
    /// Builds what the app should hold from the stored values: the gateway token, the customer's
    /// model keys, Composio's platform key and entity id; and the LLM proxy token for the
    /// gateway's secret store (when the desired state uses the proxy).
    pub fn build(stored: &Plaintexts, input: DraftInput<'_>) -> Self {
        let DraftInput {
            uid,
            spec,
            stored_token_rotation,
            proxy_token,
            inputs,
            now,
        } = input;
        let mut values = BTreeMap::new();
        let gateway_token = stored
            .get(GATEWAY_TOKEN)
            .filter(|_| stored_token_rotation == i64::from(spec.gateway_token_rotation));
        let gateway_token_missing = gateway_token.is_none();
        if let Some(token) = gateway_token {
            values.insert(GATEWAY_TOKEN.to_owned(), token.to_owned());
        }
        for key in ProviderKey::ALL {
            if let Some(v) = stored.get(key.env_name()) {
                values.insert(key.env_name().to_owned(), v.to_owned());
            }
        }
        let mut proxy_token_missing = false;
        let mut proxy_token_rotate_at = None;
        let mut proxy_token_value = None;
        if let (true, Some(key)) = (proxy_token, &inputs.llm_proxy_key) {
            let current = stored.get(LLM_PROXY_TOKEN).and_then(|t| {
                key.verify(t, now)
                    .ok()
                    .filter(|c| c.instance_uid() == Some(uid) && now < c.rotate_at())
                    .map(|c| (t, c.rotate_at()))
            });
            match current {
                Some((token, rotate_at)) => {
                    proxy_token_rotate_at = Some(rotate_at);
                    proxy_token_value = Some(token.to_owned());
                }
                None => proxy_token_missing = true,
            }
        }
        composio_values(spec, inputs.composio_api_key.as_ref(), &mut values);
        let channel_secrets = ChannelSecret::ALL
            .into_iter()
            .filter(|s| spec.channels.secret(*s).is_some())
            .filter_map(|s| stored.get(s.stored_name()).map(|v| (s, v.to_owned())))
            .collect();
        Self {
            values,
            proxy_token: proxy_token_value,
            channel_secrets,
            gateway_token_missing,
            proxy_token_missing,
            proxy_token_rotate_at,
            manage_composio_key: inputs.composio_api_key.is_some(),
        }
    }

    /// Fills in the gateway token a reconcile generated.
    pub fn set_gateway_token(&mut self, token: String) {
        self.values.insert(GATEWAY_TOKEN.to_owned(), token);
        self.gateway_token_missing = false;
    }

    /// Fills in the proxy token a reconcile minted, due for replacement at `rotate_at`.
    pub fn set_proxy_token(&mut self, token: String, rotate_at: DateTime<Utc>) {
        self.proxy_token = Some(token);
        self.proxy_token_missing = false;
        self.proxy_token_rotate_at = Some(rotate_at);
    }

    /// The desired secrets from the values at hand.
    pub fn finish(self, cipher: &SecretCipher) -> DesiredSecrets {
        let mut desired = DesiredSecrets::new(self.values, cipher);
        if let Some(token) = self.proxy_token {
            desired = desired.with_proxy_token(token, cipher);
        }
        for (secret, value) in self.channel_secrets {
            desired = desired.with_channel_secret(secret, value, cipher);
        }
        if self.manage_composio_key {
            desired.managing(COMPOSIO_API_KEY)
        } else {
            desired
        }
    }

    /// For a preview: the desired secrets with a placeholder for each value a reconcile would
    /// create, so planning shows the write (and the machine roll) that creating it causes.
    pub fn finish_preview(mut self, cipher: &SecretCipher) -> DesiredSecrets {
        if self.gateway_token_missing {
            self.set_gateway_token(PREVIEW_PLACEHOLDER.to_owned());
        }
        if self.proxy_token_missing {
            self.proxy_token = Some(PREVIEW_PLACEHOLDER.to_owned());
        }
        self.finish(cipher)
    }
}

/// Composio's platform key (when the platform has one) and the customer's entity id, for an
/// instance with Composio enabled.
fn composio_values(
    spec: &InstanceSpec,
    platform_key: Option<&Sensitive>,
    values: &mut BTreeMap<String, String>,
) {
    if !spec.composio.enabled {
        return;
    }
    if let Some(key) = platform_key {
        values.insert(COMPOSIO_API_KEY.to_owned(), key.expose().to_owned());
    }
    let entity = spec
        .composio
        .entity_id
        .clone()
        .unwrap_or_else(|| spec.customer_id.clone());
    values.insert(COMPOSIO_ENTITY_ID.to_owned(), entity);
}

/// A pending secrets write (values redacted from Debug).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretWrite {
    pub values: BTreeMap<String, Option<String>>,
    pub fingerprint: String,
}

impl fmt::Debug for SecretWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<&String> = self
            .values
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect();
        let unset: Vec<&String> = self
            .values
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        f.debug_struct("SecretWrite")
            .field("set", &set)
            .field("unset", &unset)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Whether the app's managed secrets match: our last write carried exactly these values and
/// nobody removed or added a managed name since.
pub fn in_sync(desired: &DesiredSecrets, observed: &ObservedSecrets) -> bool {
    let wanted = desired.names();
    let present_managed: BTreeSet<&str> = observed
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| desired.manages(n))
        .collect();
    let fingerprint_ok = match &observed.applied {
        Some((fp, _)) => fp == desired.fingerprint(),
        None => wanted.is_empty(),
    };
    fingerprint_ok && present_managed == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SecretCipher {
        SecretCipher::from_key([3; 32])
    }

    fn desired(pairs: &[(&str, &str)]) -> DesiredSecrets {
        DesiredSecrets::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            &cipher(),
        )
    }

    #[test]
    fn debug_never_shows_values() {
        let d = desired(&[("ANTHROPIC_API_KEY", "sk-canary")])
            .with_proxy_token("proxy-canary".into(), &cipher());
        let w = d.write_for(&BTreeSet::new());
        for text in [format!("{d:?}"), format!("{w:?}")] {
            assert!(!text.contains("sk-canary"), "{text}");
            assert!(!text.contains("proxy-canary"), "{text}");
            assert!(text.contains("ANTHROPIC_API_KEY"));
        }
    }

    #[test]
    fn the_proxy_token_is_not_an_app_secret() {
        let plain = desired(&[("OPENCLAW_GATEWAY_TOKEN", "t")]);
        let with = plain
            .clone()
            .with_proxy_token("proxy-canary".into(), &cipher());
        assert_eq!(with.fingerprint(), plain.fingerprint(), "no machine roll");
        assert_eq!(with.names(), plain.names());
        assert_eq!(with.proxy_token(), Some("proxy-canary"));
        let fp = with.proxy_token_fingerprint().unwrap();
        assert!(
            fp.starts_with("hmac-sha256:") && !fp.contains("canary"),
            "{fp}"
        );
        let rotated = plain.with_proxy_token("proxy-canary-2".into(), &cipher());
        assert_ne!(rotated.proxy_token_fingerprint(), Some(fp));
    }

    #[test]
    fn sync_needs_same_values_and_names() {
        let d = desired(&[("OPENCLAW_GATEWAY_TOKEN", "t"), ("OPENAI_API_KEY", "k")]);
        let names: BTreeSet<String> = [
            "OPENCLAW_GATEWAY_TOKEN",
            "OPENAI_API_KEY",
            "OTHER",
            "COMPOSIO_API_KEY",
        ]
        .map(String::from)
        .into();
        let applied = Some((d.fingerprint().to_owned(), 3));
        assert!(in_sync(
            &d,
            &ObservedSecrets {
                names: names.clone(),
                applied: applied.clone()
            }
        ));
        // A value changed on our side.
        let changed = desired(&[("OPENCLAW_GATEWAY_TOKEN", "t"), ("OPENAI_API_KEY", "k2")]);
        assert!(!in_sync(
            &changed,
            &ObservedSecrets {
                names: names.clone(),
                applied: applied.clone()
            }
        ));
        // Someone unset a managed secret out of band.
        let mut missing = names.clone();
        missing.remove("OPENAI_API_KEY");
        assert!(!in_sync(
            &d,
            &ObservedSecrets {
                names: missing,
                applied: applied.clone()
            }
        ));
        // A key removed from the spec must be unset at Fly.
        let fewer = desired(&[("OPENCLAW_GATEWAY_TOKEN", "t")]);
        let w = fewer.write_for(&names);
        assert_eq!(w.values.get("OPENAI_API_KEY"), Some(&None));
        assert!(
            !w.values.contains_key("OTHER"),
            "unmanaged names are left alone"
        );
        assert!(
            !w.values.contains_key("COMPOSIO_API_KEY"),
            "a name the controller never sets is never unset"
        );
        // With the platform key configured, Composio's key is ours: unset when not wanted.
        let managing = desired(&[("OPENCLAW_GATEWAY_TOKEN", "t")]).managing(COMPOSIO_API_KEY);
        let w = managing.write_for(&names);
        assert_eq!(w.values.get("COMPOSIO_API_KEY"), Some(&None));
        assert!(!in_sync(
            &managing,
            &ObservedSecrets {
                names: names.clone(),
                applied: Some((managing.fingerprint().to_owned(), 3))
            }
        ));
    }
}
