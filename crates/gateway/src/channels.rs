//! The messaging channels the controller manages in a gateway (`spec.channels`): their owned
//! config fields, the secret-store entries that hold their credentials, and how to read their
//! state from `channels.status`.
//!
//! Every credential is delivered into the gateway's own secret store (`secrets.store.set`) and
//! referred to from `openclaw.json` with a `store` SecretRef, which OpenClaw 2026.9.6 accepts on
//! `channels.telegram.botToken`, `channels.discord.token`, `channels.slack.botToken` and
//! `channels.slack.appToken` (its `docs/reference/secretref-credential-surface.md`). A new value
//! written to the store re-resolves the refs that use it and restarts the affected channel in the
//! running process, so a rotation needs no machine restart.
//!
//! The channel config is not part of the boot bundle: it is written over the protocol only
//! (`config.patch`, hot-applied: `channels.*` is reloaded per plugin), after the credentials are
//! in the store, so a change never rolls the machine and a channel never starts with a ref to a
//! missing entry. Within `channels.<id>` the controller owns `enabled`, `dmPolicy`, `allowFrom`,
//! the credential fields and (dev/test only) Telegram's `apiRoot`; every other key the customer
//! set (groups, streaming, …) is left alone. A channel the spec does not name is not touched,
//! unless the controller's own store entries show it managed it before: then the whole
//! `channels.<id>` and those entries are removed.

use std::borrow::Cow;
use std::sync::LazyLock;

use openclaws_model::conditions::Reason;
use openclaws_model::{ChannelKind, ChannelSecret, ChannelState, ChannelsSpec, DmPolicy};
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::proxy_token::REDACTED;

/// One managed channel as the gateway should have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    pub enabled: bool,
    pub dm_policy: DmPolicy,
    pub allow_from: Vec<String>,
}

/// The channels the controller manages in one gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelsConfig {
    pub channels: Vec<ChannelConfig>,
    /// `channels.telegram.apiRoot`, set from the controller's `OPENCLAWS_TELEGRAM_API_ROOT`
    /// (dev and test only: it points a real gateway at a fake Bot API).
    pub telegram_api_root: Option<String>,
}

impl ChannelsConfig {
    /// The managed channels of a spec.
    pub fn for_spec(spec: &ChannelsSpec, telegram_api_root: Option<String>) -> Self {
        Self {
            channels: spec
                .configured()
                .into_iter()
                .map(|c| ChannelConfig {
                    kind: c.kind,
                    enabled: c.enabled,
                    dm_policy: c.dm_policy,
                    allow_from: c.allow_from.to_vec(),
                })
                .collect(),
            telegram_api_root,
        }
    }

    /// The configured channel of this kind.
    pub fn get(&self, kind: ChannelKind) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.kind == kind)
    }

    /// Every credential the configured channels need.
    pub fn secrets(&self) -> Vec<ChannelSecret> {
        self.channels
            .iter()
            .flat_map(|c| c.kind.secrets().iter().copied())
            .collect()
    }

    /// The owned paths (dotted) of every configured channel with their desired values, `None`
    /// meaning "remove".
    pub fn owned(&self) -> Vec<(String, Option<Value>)> {
        let mut out = Vec::new();
        for c in &self.channels {
            let at = |key: &str| format!("channels.{}.{key}", c.kind.as_str());
            out.push((at("enabled"), Some(json!(c.enabled))));
            for secret in c.kind.secrets() {
                out.push((at(secret.field()), Some(store_ref(*secret))));
            }
            out.push((at("dmPolicy"), Some(json!(c.dm_policy.as_str()))));
            let allow = (!c.allow_from.is_empty()).then(|| json!(c.allow_from));
            out.push((at("allowFrom"), allow));
            if c.kind == ChannelKind::Telegram {
                if let Some(root) = &self.telegram_api_root {
                    out.push((at("apiRoot"), Some(json!(root))));
                }
            }
        }
        out
    }
}

/// The `store` SecretRef to a credential's entry in the gateway's secret store.
pub fn store_ref(secret: ChannelSecret) -> Value {
    json!({"source": "store", "provider": "default", "id": secret.store_name()})
}

/// Whether a live credential field (as `config.get` shows it, id redacted) is [`store_ref`].
fn is_store_ref(live: &Value, secret: ChannelSecret) -> bool {
    live.get("source").and_then(Value::as_str) == Some("store")
        && live.get("provider").and_then(Value::as_str) == Some("default")
        && live.as_object().is_some_and(|o| o.len() == 3)
        && matches!(live.get("id").and_then(Value::as_str), Some(id) if id == secret.store_name() || id == REDACTED)
}

fn lookup<'a>(config: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(config, |node, key| node.get(key))
}

/// Owned channel paths of a parsed config (`config.get`'s `parsed`) that differ from `desired`.
pub fn drift(parsed: &Value, desired: &ChannelsConfig) -> Vec<String> {
    desired
        .owned()
        .into_iter()
        .filter(|(path, want)| {
            let have = lookup(parsed, path).filter(|v| !v.is_null());
            match (want, have) {
                (None, have) => have.is_some(),
                (Some(_), None) => true,
                (Some(want), Some(have)) => match secret_at(path) {
                    Some(secret) => !is_store_ref(have, secret),
                    None => want != have,
                },
            }
        })
        .map(|(path, _)| path)
        .collect()
}

/// The credential whose field `path` is, if it is one.
fn secret_at(path: &str) -> Option<ChannelSecret> {
    ChannelSecret::ALL
        .into_iter()
        .find(|s| path == format!("channels.{}.{}", s.channel().as_str(), s.field()))
}

/// Parameters of the `config.patch` (JSON merge patch) that sets the drifted owned channel
/// `paths` to `desired` (a path to remove is `null`), guarded by `base_hash`. Arrays are named
/// in `replacePaths`.
pub fn patch(desired: &ChannelsConfig, paths: &[String], base_hash: &str) -> Value {
    let owned = desired.owned();
    let mut raw = Value::Object(Map::new());
    let mut replace = Vec::new();
    for path in paths {
        let want = owned
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if want.is_array() {
            replace.push(path.clone());
        }
        insert(&mut raw, path, want);
    }
    config_patch(&raw, replace, base_hash, "openclaws-controller: channels")
}

/// Parameters of the `config.patch` that removes whole channels the controller managed.
pub fn removal_patch(kinds: &[ChannelKind], base_hash: &str) -> Value {
    let mut raw = Value::Object(Map::new());
    for kind in kinds {
        insert(
            &mut raw,
            &format!("channels.{}", kind.as_str()),
            Value::Null,
        );
    }
    config_patch(
        &raw,
        Vec::new(),
        base_hash,
        "openclaws-controller: channels removed",
    )
}

fn config_patch(raw: &Value, replace: Vec<String>, base_hash: &str, note: &str) -> Value {
    json!({
        "raw": raw.to_string(),
        "baseHash": base_hash,
        "replacePaths": replace,
        "note": note,
    })
}

fn insert(root: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last().expect("a path has a key");
    let mut node = root;
    for key in parents {
        let map = node.as_object_mut().expect("patch parents are objects");
        node = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(map) = node.as_object_mut() {
        map.insert((*last).to_owned(), value);
    }
}

/// Whether every check `/readyz` reports failing is a channel (OpenClaw lists failing channel
/// accounts by channel id): the gateway itself is up, and the channels are judged by
/// `channels.status` instead.
pub fn only_channels_failing(failing: &[Value]) -> bool {
    !failing.is_empty()
        && failing.iter().all(|f| {
            f.as_str()
                .is_some_and(|id| ChannelKind::parse(id).is_some())
        })
}

/// One channel as `channels.status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    pub kind: ChannelKind,
    pub state: ChannelState,
    pub reason: Reason,
    /// What the gateway said, with credentials scrubbed.
    pub message: String,
}

/// The state of `kind` in a `channels.status` answer: its default account's snapshot. `known`
/// are credential values to scrub from the message (besides anything credential-shaped).
pub fn read_status(payload: &Value, kind: ChannelKind, known: &[&str]) -> ChannelReport {
    let id = kind.as_str();
    let default_id = payload["channelDefaultAccountId"][id]
        .as_str()
        .unwrap_or("default");
    let accounts = payload["channelAccounts"][id]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let account = accounts
        .iter()
        .find(|a| a["accountId"] == default_id)
        .or_else(|| accounts.first());
    let report = |state, reason, message: String| ChannelReport {
        kind,
        state,
        reason,
        message: scrub(&message, known).into_owned(),
    };
    let Some(a) = account else {
        return report(
            ChannelState::Pending,
            Reason::NotChecked,
            format!("the gateway does not report {id} yet"),
        );
    };
    let error = a["lastError"].as_str().filter(|e| !e.is_empty());
    let health = a["healthState"].as_str().unwrap_or("unknown");
    if let Some(e) = error.filter(|e| invalid_token(e)) {
        return report(
            ChannelState::Failing,
            Reason::InvalidToken,
            format!("{id} refused the credentials: {e}"),
        );
    }
    if a["restartPending"].as_bool() == Some(true) {
        return report(
            ChannelState::Pending,
            Reason::Pending,
            format!("{id} is about to restart (health {health})"),
        );
    }
    let running = a["running"].as_bool() == Some(true);
    let connected = a["connected"].as_bool() != Some(false);
    if running && connected && error.is_none() {
        return report(
            ChannelState::Connected,
            Reason::Connected,
            format!("{id} is running and connected"),
        );
    }
    if error.is_none() && starting(a, payload["ts"].as_i64()) {
        return report(
            ChannelState::Pending,
            Reason::Pending,
            format!("{id} is starting (health {health})"),
        );
    }
    let said = error.map_or_else(|| format!("health {health}"), str::to_owned);
    report(
        ChannelState::Failing,
        Reason::Unreachable,
        format!("{id} is not connected: {said}"),
    )
}

/// How long after a channel account (re)started it may stay unconnected, without an error,
/// before it counts as `Unreachable`. A Telegram bot connects within about 3 s; OpenClaw's own
/// health policy allows 120 s (`DEFAULT_CHANNEL_CONNECT_GRACE_MS`) before restarting it.
pub const START_GRACE_MS: i64 = 30_000;

/// Whether an unconnected account without an error has not had a fair chance to connect yet:
/// OpenClaw says it is starting or within its own grace, it was never started, or it started
/// less than [`START_GRACE_MS`] before `now` (the answer's `ts`, the gateway's own clock, like
/// `lastStartAt`).
fn starting(account: &Value, now: Option<i64>) -> bool {
    let lifecycle = account["lifecycle"].as_str().unwrap_or_default();
    let health = account["healthState"].as_str().unwrap_or_default();
    if matches!(lifecycle, "starting" | "recovering")
        || matches!(health, "startup-connect-grace" | "reconnect-grace")
    {
        return true;
    }
    match (account["lastStartAt"].as_i64(), now) {
        (None, _) => account["running"].as_bool() != Some(true),
        (Some(started), Some(now)) => now.saturating_sub(started) < START_GRACE_MS,
        (Some(_), None) => false,
    }
}

/// Whether a channel's error says the service refused its credentials (Telegram's Bot API
/// answers 401 Unauthorized for a wrong token and 404 Not Found for a malformed one; Discord and
/// Slack say `invalid_auth`, `TokenInvalid`, `An invalid token was provided`).
fn invalid_token(error: &str) -> bool {
    static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b401\b|unauthori[sz]ed|invalid[ _-]?(auth|token)|token ?invalid|not_authed|\b404\b.*not found|getMe.*not found")
            .expect("a valid pattern")
    });
    PATTERN.is_match(error)
}

/// `text` with every known credential and anything shaped like a bot token (Telegram's
/// `<digits>:<35 characters>`, also inside a `/bot<TOKEN>/` URL) or another credential replaced.
pub fn scrub<'a>(text: &'a str, known: &[&str]) -> Cow<'a, str> {
    static TELEGRAM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[0-9]{5,}:[A-Za-z0-9_-]{20,}").expect("a valid pattern"));
    let mut out = Cow::Borrowed(text);
    for value in known.iter().filter(|v| !v.is_empty()) {
        if out.contains(value) {
            out = Cow::Owned(out.replace(value, openclaws_model::redact::FILTERED));
        }
    }
    if TELEGRAM.is_match(&out) {
        out = Cow::Owned(
            TELEGRAM
                .replace_all(&out, openclaws_model::redact::FILTERED)
                .into_owned(),
        );
    }
    match openclaws_model::redact::scrub_text(&out) {
        Cow::Owned(scrubbed) => Cow::Owned(scrubbed),
        Cow::Borrowed(_) => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram(dm: DmPolicy, allow: &[&str]) -> ChannelsConfig {
        ChannelsConfig {
            channels: vec![ChannelConfig {
                kind: ChannelKind::Telegram,
                enabled: true,
                dm_policy: dm,
                allow_from: allow.iter().map(|s| (*s).to_owned()).collect(),
            }],
            telegram_api_root: Some("http://127.0.0.1:9/".to_owned()),
        }
    }

    fn applied(desired: &ChannelsConfig, live: &Value) -> Value {
        let paths = drift(live, desired);
        let params = patch(desired, &paths, "h");
        let raw: Value = serde_json::from_str(params["raw"].as_str().unwrap()).unwrap();
        let mut out = live.clone();
        json_patch::merge(&mut out, &raw);
        out
    }

    #[test]
    fn a_new_channel_is_written_with_store_refs_and_the_customers_keys_stay() {
        let desired = telegram(DmPolicy::Pairing, &[]);
        let live = json!({"channels": {"telegram": {"groups": {"*": {"requireMention": true}}},
            "matrix": {"enabled": true}}});
        let out = applied(&desired, &live);
        assert_eq!(
            out["channels"]["telegram"],
            json!({
                "enabled": true,
                "botToken": {"source": "store", "provider": "default", "id": "OPENCLAWS_TELEGRAM_BOT_TOKEN"},
                "dmPolicy": "pairing",
                "apiRoot": "http://127.0.0.1:9/",
                "groups": {"*": {"requireMention": true}},
            })
        );
        assert_eq!(out["channels"]["matrix"], json!({"enabled": true}));
        assert!(drift(&out, &desired).is_empty());
    }

    #[test]
    fn a_redacted_ref_is_no_drift_and_a_plaintext_token_is() {
        let desired = telegram(DmPolicy::Allowlist, &["42"]);
        let mut live = applied(&desired, &json!({}));
        live["channels"]["telegram"]["botToken"]["id"] = json!(REDACTED);
        assert!(drift(&live, &desired).is_empty());
        live["channels"]["telegram"]["botToken"] = json!("123:abc");
        live["channels"]["telegram"]["allowFrom"] = json!(["42", "43"]);
        assert_eq!(
            drift(&live, &desired),
            vec![
                "channels.telegram.botToken".to_owned(),
                "channels.telegram.allowFrom".to_owned()
            ]
        );
        let params = patch(&desired, &drift(&live, &desired), "h");
        assert_eq!(
            params["replacePaths"],
            json!(["channels.telegram.allowFrom"])
        );
        assert!(!params["raw"].as_str().unwrap().contains("123:abc"));
    }

    #[test]
    fn an_emptied_allow_list_is_removed() {
        let with = telegram(DmPolicy::Allowlist, &["42"]);
        let live = applied(&with, &json!({}));
        let without = telegram(DmPolicy::Pairing, &[]);
        let out = applied(&without, &live);
        assert!(out["channels"]["telegram"].get("allowFrom").is_none());
        assert_eq!(out["channels"]["telegram"]["dmPolicy"], "pairing");
    }

    #[test]
    fn unmanaged_channels_are_not_judged() {
        let live = json!({"channels": {"discord": {"token": "x", "enabled": true}}});
        assert!(drift(&live, &ChannelsConfig::default()).is_empty());
        let raw = removal_patch(&[ChannelKind::Discord], "h")["raw"].clone();
        assert_eq!(
            serde_json::from_str::<Value>(raw.as_str().unwrap()).unwrap(),
            json!({"channels": {"discord": null}})
        );
    }

    #[test]
    fn readiness_failing_only_on_channels() {
        assert!(only_channels_failing(&[json!("telegram")]));
        assert!(!only_channels_failing(&[
            json!("telegram"),
            json!("state-database")
        ]));
        assert!(!only_channels_failing(&[]));
    }

    fn status(account: Value) -> Value {
        json!({"channelAccounts": {"telegram": [account]}, "channelDefaultAccountId": {"telegram": "default"}})
    }

    #[test]
    fn status_reasons() {
        let ok = read_status(
            &status(json!({"accountId": "default", "running": true, "connected": true})),
            ChannelKind::Telegram,
            &[],
        );
        assert_eq!(
            (ok.state, ok.reason),
            (ChannelState::Connected, Reason::Connected)
        );
        let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
        let bad = read_status(
            &status(json!({"accountId": "default", "running": false,
                "lastError": format!("Call to 'getMe' failed! (401: Unauthorized) https://x/bot{token}/getMe")})),
            ChannelKind::Telegram,
            &[token],
        );
        assert_eq!(
            (bad.state, bad.reason),
            (ChannelState::Failing, Reason::InvalidToken)
        );
        assert!(!bad.message.contains(token), "{}", bad.message);
        let down = read_status(
            &status(
                json!({"accountId": "default", "running": true, "connected": false,
                "lastError": "connect ECONNREFUSED 127.0.0.1:9"}),
            ),
            ChannelKind::Telegram,
            &[],
        );
        assert_eq!(down.reason, Reason::Unreachable);
        let none = read_status(&json!({}), ChannelKind::Slack, &[]);
        assert_eq!(none.state, ChannelState::Pending);
    }

    fn at(ts: i64, account: Value) -> ChannelReport {
        let mut payload = status(account);
        payload["ts"] = json!(ts);
        read_status(&payload, ChannelKind::Telegram, &[])
    }

    #[test]
    fn a_channel_just_started_is_pending_until_its_grace_ends() {
        let t0 = 1_800_000_000_000_i64;
        let started = json!({"accountId": "default", "running": true, "connected": false,
            "lastStartAt": t0});
        let early = at(t0 + 3_000, started.clone());
        assert_eq!(
            (early.state, early.reason),
            (ChannelState::Pending, Reason::Pending)
        );
        let late = at(t0 + START_GRACE_MS, started.clone());
        assert_eq!(
            (late.state, late.reason),
            (ChannelState::Failing, Reason::Unreachable)
        );
        let mut failed = started.clone();
        failed["lastError"] = json!("connect ECONNREFUSED 127.0.0.1:9");
        assert_eq!(at(t0 + 1, failed).reason, Reason::Unreachable);
        let mut refused = started;
        refused["lastError"] = json!("Call to 'getMe' failed! (401: Unauthorized)");
        assert_eq!(at(t0 + 1, refused).reason, Reason::InvalidToken);
    }

    #[test]
    fn openclaws_own_start_states_and_a_channel_never_started_are_pending() {
        let t0 = 1_800_000_000_000_i64;
        let long_after = t0 + 10 * START_GRACE_MS;
        for account in [
            json!({"accountId": "default", "running": false, "lifecycle": "starting", "lastStartAt": t0}),
            json!({"accountId": "default", "running": true, "connected": false,
                "healthState": "startup-connect-grace", "lastStartAt": t0}),
            json!({"accountId": "default", "running": false}),
        ] {
            assert_eq!(
                at(long_after, account.clone()).reason,
                Reason::Pending,
                "{account}"
            );
        }
        let restarting = json!({"accountId": "default", "running": true, "connected": true,
            "restartPending": true});
        assert_eq!(at(long_after, restarting).reason, Reason::Pending);
        let stopped = json!({"accountId": "default", "running": false, "lastStartAt": t0});
        assert_eq!(at(long_after, stopped.clone()).reason, Reason::Unreachable);
        assert_eq!(
            read_status(&status(stopped), ChannelKind::Telegram, &[]).reason,
            Reason::Unreachable,
            "without the answer's time, a started channel is judged as it is"
        );
    }

    #[test]
    fn scrub_removes_bot_tokens_anywhere() {
        let text = "GET https://api.telegram.org/bot987654321:ABCdefGHIjklMNOpqrSTUvwxYZ012345678/getUpdates";
        assert!(!scrub(text, &[]).contains("ABCdef"));
        assert_eq!(scrub("plain", &["secret"]), "plain");
        assert_eq!(scrub("a secret b", &["secret"]), "a [Filtered] b");
    }
}
