//! Which config changes a running gateway applies by itself and which need a restart, and the
//! `config.patch` that puts owned fields back over the protocol.
//!
//! OpenClaw 2026.9.6 (`docs/gateway/configuration/hot-reload.md`, default `gateway.reload.mode:
//! "hybrid"`) classifies each changed path by its longest matching prefix; a path no rule covers
//! needs a restart. [`RULES`] copies the rules that cover the paths the controller owns (and their
//! neighbours), so the controller restarts a machine only when the gateway itself would have to
//! restart: `gateway.{mode,bind,port,auth}` do, every other owned path hot-applies
//! (`gateway.controlUi.allowedOrigins`, `gateway.trustedProxies`, `agents`, `models` including
//! the proxy token's SecretRef, `skills`).
//! `gateway.auth` counts as restart-requiring as a whole: only a token change with the same mode
//! hot-applies, and the controller cannot see the token (it comes back redacted).

use serde_json::{Map, Value};

use crate::config::{owned_snapshot, OwnedConfig};

/// What the gateway does when a config path changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadKind {
    /// Applied in the running process (possibly restarting the owning subsystem).
    Hot,
    /// Needs a gateway restart.
    Restart,
}

/// Prefix rules from hot-reload.md; the longest matching prefix wins, no match means restart.
pub const RULES: &[(&str, ReloadKind)] = &[
    ("agents", ReloadKind::Hot),
    ("models", ReloadKind::Hot),
    ("skills", ReloadKind::Hot),
    ("tools", ReloadKind::Hot),
    ("session", ReloadKind::Hot),
    ("messages", ReloadKind::Hot),
    ("identity", ReloadKind::Hot),
    ("ui", ReloadKind::Hot),
    ("logging", ReloadKind::Hot),
    ("bindings", ReloadKind::Hot),
    ("hooks", ReloadKind::Hot),
    ("cron", ReloadKind::Hot),
    ("auth.order", ReloadKind::Hot),
    ("auth.profiles", ReloadKind::Hot),
    ("plugins.entries", ReloadKind::Hot),
    ("update.checkOnStart", ReloadKind::Hot),
    ("gateway", ReloadKind::Restart),
    ("gateway.reload", ReloadKind::Hot),
    ("gateway.remote", ReloadKind::Hot),
    ("gateway.publicOrigin", ReloadKind::Hot),
    ("gateway.trustedProxies", ReloadKind::Hot),
    ("gateway.controlUi.enabled", ReloadKind::Hot),
    ("gateway.controlUi.allowedOrigins", ReloadKind::Hot),
    ("gateway.auth.rateLimit", ReloadKind::Hot),
    ("discovery.mdns.mode", ReloadKind::Hot),
    ("channels", ReloadKind::Hot),
];

/// How a change to the dotted `path` is applied.
pub fn reload_kind(path: &str) -> ReloadKind {
    RULES
        .iter()
        .filter(|(prefix, _)| {
            path == *prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or(ReloadKind::Restart, |(_, kind)| *kind)
}

/// Whether changing any of `paths` needs a gateway restart.
pub fn restart_required<S: AsRef<str>>(paths: &[S]) -> bool {
    paths
        .iter()
        .any(|p| reload_kind(p.as_ref()) == ReloadKind::Restart)
}

/// Parameters of a `config.patch` (JSON merge patch) that puts the owned `paths` of `live` back
/// to `desired`: objects are given in full, with `null` for keys `live` has and `desired` does
/// not, so the result equals the desired value; an owned path to remove is `null`; every array
/// in the patch is named in `replacePaths` (the gateway refuses to drop array entries otherwise).
pub fn owned_patch(
    live: &Value,
    desired: &OwnedConfig,
    paths: &[String],
    base_hash: &str,
) -> Value {
    let want = desired_snapshot(desired);
    let have = owned_snapshot(live);
    let mut patch = Value::Object(Map::new());
    let mut replace = Vec::new();
    for path in paths {
        let value = match want.get(path) {
            Some(w) => exact(have.get(path), w, path, &mut replace),
            None => Value::Null,
        };
        insert(&mut patch, path, value);
    }
    serde_json::json!({
        "raw": patch.to_string(),
        "baseHash": base_hash,
        "replacePaths": replace,
        "note": "openclaws-controller: owned fields put back",
    })
}

fn desired_snapshot(desired: &OwnedConfig) -> Map<String, Value> {
    let merged = crate::config::merge_owned(&Value::Object(Map::new()), desired).value;
    owned_snapshot(&merged)
}

/// `want`, with `null` for each key `have` holds that `want` lacks (at every object level), and
/// the dotted path of every array recorded in `replace`.
fn exact(have: Option<&Value>, want: &Value, path: &str, replace: &mut Vec<String>) -> Value {
    match want {
        Value::Object(w) => {
            let mut out = Map::new();
            if let Some(Value::Object(h)) = have {
                for key in h.keys().filter(|k| !w.contains_key(*k)) {
                    if h[key].is_array() {
                        replace.push(format!("{path}.{key}"));
                    }
                    out.insert(key.clone(), Value::Null);
                }
            }
            for (key, value) in w {
                let child = format!("{path}.{key}");
                let had = have.and_then(|h| h.get(key));
                out.insert(key.clone(), exact(had, value, &child, replace));
            }
            Value::Object(out)
        }
        Value::Array(_) => {
            replace.push(path.to_owned());
            want.clone()
        }
        scalar => scalar.clone(),
    }
}

fn insert(root: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last().expect("a path has a key");
    let mut node = root;
    for key in parents {
        node = node
            .as_object_mut()
            .expect("patch parents are objects")
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    node.as_object_mut()
        .expect("patch parents are objects")
        .insert((*last).to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{merge_owned, BindMode};
    use serde_json::json;

    fn owned() -> OwnedConfig {
        OwnedConfig {
            bind: BindMode::Lan,
            port: 3000,
            allowed_origins: vec!["https://ada.example".into()],
            trusted_proxies: vec!["10.0.0.0/8".into()],
            model_primary: "anthropic/claude-sonnet-4-6".into(),
            model_fallbacks: Vec::new(),
            workspace: "${OPENCLAW_STATE_DIR}/workspace".into(),
            agent_name: "Ada".into(),
            anthropic_base_url: Some("https://proxy.example/anthropic".into()),
            composio_enabled: true,
        }
    }

    #[test]
    fn owned_paths_are_classified_as_the_gateway_documents() {
        let hot = [
            "gateway.controlUi.allowedOrigins",
            "gateway.trustedProxies",
            "agents.defaults.model",
            "agents.defaults.workspace",
            "agents.entries.main.name",
            "models.providers.anthropic.baseUrl",
            "models.providers.anthropic.apiKey",
            "skills.entries.composio",
        ];
        let restart = [
            "gateway.mode",
            "gateway.bind",
            "gateway.port",
            "gateway.auth",
        ];
        for path in OwnedConfig::owned_paths() {
            assert!(
                hot.contains(&path.as_str()) || restart.contains(&path.as_str()),
                "{path} is classified by this test"
            );
        }
        for path in hot {
            assert_eq!(reload_kind(path), ReloadKind::Hot, "{path}");
        }
        for path in restart {
            assert_eq!(reload_kind(path), ReloadKind::Restart, "{path}");
        }
    }

    #[test]
    fn longest_prefix_wins_and_unknown_paths_restart() {
        assert_eq!(
            reload_kind("gateway.controlUi.basePath"),
            ReloadKind::Restart
        );
        assert_eq!(reload_kind("gateway.auth.rateLimit.max"), ReloadKind::Hot);
        assert_eq!(reload_kind("gateway.auth.mode"), ReloadKind::Restart);
        assert_eq!(
            reload_kind("agentsx"),
            ReloadKind::Restart,
            "prefix of a key only"
        );
        assert_eq!(reload_kind("secrets.egressProxy"), ReloadKind::Restart);
        assert!(!restart_required(&[
            "agents.entries.main.name",
            "skills.entries.composio"
        ]));
        assert!(restart_required(&[
            "agents.entries.main.name",
            "gateway.port"
        ]));
        assert!(!restart_required::<&str>(&[]));
    }

    #[test]
    fn the_patch_puts_exactly_the_desired_values_back() {
        let desired = owned();
        let mut live = merge_owned(&json!({"channels": {"x": 1}}), &desired).value;
        live["agents"]["entries"]["main"]["name"] = json!("Mallory");
        live["agents"]["defaults"]["model"]["fallbacks"] = json!(["openai/gpt-5"]);
        live["gateway"]["trustedProxies"] = json!([]);
        live["models"]["providers"]["anthropic"]["timeoutMs"] = json!(5);
        let paths: Vec<String> = crate::config::drifted_paths(&live, &desired);
        assert_eq!(
            paths,
            [
                "gateway.trustedProxies",
                "agents.defaults.model",
                "agents.entries.main.name"
            ]
        );
        let params = owned_patch(&live, &desired, &paths, "h1");
        assert_eq!(params["baseHash"], "h1");
        let patch: Value = serde_json::from_str(params["raw"].as_str().unwrap()).unwrap();
        assert_eq!(
            patch,
            json!({
                "gateway": {"trustedProxies": ["10.0.0.0/8"]},
                "agents": {
                    "defaults": {"model": {"primary": "anthropic/claude-sonnet-4-6", "fallbacks": null}},
                    "entries": {"main": {"name": "Ada"}}
                }
            })
        );
        assert_eq!(
            params["replacePaths"],
            json!(["gateway.trustedProxies", "agents.defaults.model.fallbacks"])
        );
        let applied = merge_patch(live, &patch);
        assert!(crate::config::drifted_paths(&applied, &desired).is_empty());
        assert_eq!(applied["models"]["providers"]["anthropic"]["timeoutMs"], 5);
        assert_eq!(applied["channels"]["x"], 1);
    }

    #[test]
    fn an_owned_path_to_remove_is_null() {
        let mut desired = owned();
        desired.anthropic_base_url = None;
        let live = merge_owned(&json!({}), &owned()).value;
        let paths = crate::config::drifted_paths(&live, &desired);
        assert_eq!(
            paths,
            [
                "models.providers.anthropic.baseUrl",
                "models.providers.anthropic.apiKey"
            ]
        );
        let params = owned_patch(&live, &desired, &paths, "h");
        let patch: Value = serde_json::from_str(params["raw"].as_str().unwrap()).unwrap();
        assert_eq!(
            patch,
            json!({"models": {"providers": {"anthropic": {"baseUrl": null, "apiKey": null}}}})
        );
        assert!(crate::config::drifted_paths(&merge_patch(live, &patch), &desired).is_empty());
    }

    /// RFC 7386 JSON merge patch, as the gateway applies `config.patch`.
    fn merge_patch(mut target: Value, patch: &Value) -> Value {
        let Value::Object(p) = patch else {
            return patch.clone();
        };
        if !target.is_object() {
            target = json!({});
        }
        let map = target.as_object_mut().unwrap();
        for (key, value) in p {
            if value.is_null() {
                map.remove(key);
            } else {
                let current = map.remove(key).unwrap_or(Value::Null);
                map.insert(key.clone(), merge_patch(current, value));
            }
        }
        target
    }
}
