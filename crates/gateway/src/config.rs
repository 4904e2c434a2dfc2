//! The part of a gateway's `openclaw.json` the controller owns: rendering it, merging it into
//! the customer's file, and hashing it for drift judgement.
//!
//! The customer edits the same file (channels, bindings, extra agents), so the controller never
//! writes the whole file: it sets its owned paths and leaves every other key as it was.
//!
//! Owned paths (ARCHITECTURE.md §6), each set to a value or, when the spec asks for none, removed:
//! `gateway.{mode,bind,port,auth,controlUi.allowedOrigins,trustedProxies}`,
//! `agents.defaults.{model,workspace}`, `agents.entries.main.name` (the default agent entry; its
//! other fields stay the customer's), `models.providers.anthropic.{baseUrl,apiKey}` (only when
//! model calls go through our LLM proxy: the key is a SecretRef to the proxy token in the
//! gateway's secret store), `skills.entries.composio`.
//!
//! The rendered shape is the canonical one, so the gateway does not rewrite the file at boot
//! (reference §1.4): `agents.entries` (not the legacy `agents.list`), no retired keys, and no
//! secrets: the gateway token stays the literal `${OPENCLAW_GATEWAY_TOKEN}`, which the gateway
//! expands from its environment and never writes back expanded.
//!
//! Caveats: the file is read as strict JSON (a hand-edited file with JSON5 comments is reported
//! as [`ConfigError::Parse`], never overwritten); a merged file is written with sorted keys and
//! two-space indentation, which is semantically equal to the customer's but may differ in bytes,
//! so the caller writes only when [`Merged::changed`] is true and judges drift by
//! [`owned_hash`], not by bytes.

use super::GATEWAY_TOKEN_ENV;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Port the gateway listens on inside the machine (Fly's `internal_port`).
pub const GATEWAY_PORT: u16 = 3000;
/// The default agent's id; with a single entry it is the default agent.
pub const DEFAULT_AGENT_ID: &str = "main";
/// Workspace inside the state directory, wherever that is: the gateway expands
/// `${OPENCLAW_STATE_DIR}` in `agents.defaults.workspace` from its environment and keeps the
/// literal in the file (verified against 2026.9.6: `agents.files.list` reports
/// `<state>/workspace`, the file stays byte-identical), so one rendered config serves `/data`
/// on Fly and a directory per volume in the simulator.
pub const DEFAULT_WORKSPACE: &str = "${OPENCLAW_STATE_DIR}/workspace";
/// Where the gateway's Anthropic key is configured: a SecretRef to the LLM proxy token when
/// model calls go through the proxy.
const PROXY_KEY_PATH: &[&str] = &["models", "providers", "anthropic", "apiKey"];
/// The agent's name when the spec gives none.
pub const DEFAULT_AGENT_NAME: &str = "Assistant";

/// Errors from reading a gateway config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("openclaw.json is not valid JSON: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("openclaw.json must hold a JSON object at the top level")]
    NotAnObject,
}

/// Listen address profile (`gateway.bind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// `0.0.0.0`: what a Fly machine needs so fly-proxy reaches it.
    Lan,
    /// `127.0.0.1`: for local tests.
    Loopback,
}

impl BindMode {
    fn as_str(self) -> &'static str {
        match self {
            BindMode::Lan => "lan",
            BindMode::Loopback => "loopback",
        }
    }
}

/// Everything the controller decides in `openclaw.json`, already resolved from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedConfig {
    pub bind: BindMode,
    pub port: u16,
    /// Exact https origins allowed to open the Control UI (the public endpoint), possibly none.
    pub allowed_origins: Vec<String>,
    /// CIDRs of the proxies whose `X-Forwarded-For` is believed; must cover fly-proxy's source
    /// address or every upgrade and `/readyz` is refused with 403.
    pub trusted_proxies: Vec<String>,
    pub model_primary: String,
    pub model_fallbacks: Vec<String>,
    pub workspace: String,
    pub agent_name: String,
    /// Base URL of our LLM proxy when model calls carry a proxy token instead of the customer's
    /// key; `None` removes the override so the provider's own endpoint is used.
    pub anthropic_base_url: Option<String>,
    pub composio_enabled: bool,
}

/// What the controller's settings (not the spec) decide about a gateway's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `https://{slug}.{domain}` for a public instance; `None` for a private one.
    pub public_origin: Option<String>,
    /// Source ranges of fly-proxy (see [`OwnedConfig::trusted_proxies`]).
    pub trusted_proxies: Vec<String>,
    /// Our LLM proxy's Anthropic base URL when model calls use a proxy token.
    pub llm_proxy_base_url: Option<String>,
}

impl OwnedConfig {
    /// The owned config of one instance on Fly (bind `lan`, port 3000, workspace on the volume).
    pub fn for_instance(spec: &openclaws_model::InstanceSpec, placement: &Placement) -> Self {
        Self {
            bind: BindMode::Lan,
            port: GATEWAY_PORT,
            allowed_origins: placement.public_origin.iter().cloned().collect(),
            trusted_proxies: placement.trusted_proxies.clone(),
            model_primary: spec.model.primary.clone(),
            model_fallbacks: spec.model.fallbacks.clone(),
            workspace: DEFAULT_WORKSPACE.to_owned(),
            agent_name: spec
                .identity
                .display_name
                .clone()
                .unwrap_or_else(|| DEFAULT_AGENT_NAME.to_owned()),
            anthropic_base_url: placement.llm_proxy_base_url.clone(),
            composio_enabled: spec.composio.enabled,
        }
    }

    /// The owned paths with their desired values, in a fixed order.
    fn entries(&self) -> Vec<(&'static [&'static str], Option<Value>)> {
        let mut model = Map::new();
        model.insert("primary".to_owned(), json!(self.model_primary));
        if !self.model_fallbacks.is_empty() {
            model.insert("fallbacks".to_owned(), json!(self.model_fallbacks));
        }
        vec![
            (&["gateway", "mode"], Some(json!("local"))),
            (&["gateway", "bind"], Some(json!(self.bind.as_str()))),
            (&["gateway", "port"], Some(json!(self.port))),
            (
                &["gateway", "auth"],
                Some(json!({"mode": "token", "token": format!("${{{GATEWAY_TOKEN_ENV}}}")})),
            ),
            (
                &["gateway", "controlUi", "allowedOrigins"],
                Some(json!(self.allowed_origins)),
            ),
            (
                &["gateway", "trustedProxies"],
                Some(json!(self.trusted_proxies)),
            ),
            (&["agents", "defaults", "model"], Some(Value::Object(model))),
            (
                &["agents", "defaults", "workspace"],
                Some(json!(self.workspace)),
            ),
            (
                &["agents", "entries", DEFAULT_AGENT_ID, "name"],
                Some(json!(self.agent_name)),
            ),
            (
                &["models", "providers", "anthropic", "baseUrl"],
                self.anthropic_base_url.as_ref().map(|url| json!(url)),
            ),
            (
                PROXY_KEY_PATH,
                self.anthropic_base_url
                    .as_ref()
                    .map(|_| crate::proxy_token::store_ref()),
            ),
            (
                &["skills", "entries", "composio"],
                Some(json!({"enabled": self.composio_enabled})),
            ),
        ]
    }

    /// The owned paths (as key segments) with their desired values, `None` meaning "remove":
    /// what a boot step outside Rust needs to apply [`merge_owned`] to a file on the machine.
    /// The proxy token's SecretRef is left out when it is not wanted (rather than listed for
    /// removal), so the bundles of instances without the LLM proxy, and so their machines, stay
    /// as they were before the ref existed; a stale ref is removed over the protocol instead.
    pub fn owned_entries(&self) -> Vec<(Vec<String>, Option<Value>)> {
        self.entries()
            .into_iter()
            .filter(|(path, value)| value.is_some() || *path != PROXY_KEY_PATH)
            .map(|(path, value)| (path.iter().map(|k| (*k).to_owned()).collect(), value))
            .collect()
    }

    /// The first-boot file content before the owned fields are merged in (see
    /// [`OwnedConfig::render_new`]).
    pub fn new_file_seed() -> Value {
        json!({"update": {"checkOnStart": false}, "discovery": {"mdns": {"mode": "off"}}})
    }

    /// The dotted owned paths, for messages and tests.
    pub fn owned_paths() -> Vec<String> {
        Self::example()
            .entries()
            .into_iter()
            .map(|(path, _)| path.join("."))
            .collect()
    }

    fn example() -> Self {
        Self {
            bind: BindMode::Lan,
            port: GATEWAY_PORT,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            model_primary: String::new(),
            model_fallbacks: Vec::new(),
            workspace: String::new(),
            agent_name: String::new(),
            anthropic_base_url: None,
            composio_enabled: false,
        }
    }

    /// Hash of the owned fields as they should be; equal to [`owned_hash`] of any file this
    /// config was merged into. Goes into machine metadata.
    pub fn hash(&self) -> String {
        owned_hash(&merge_owned(&Value::Object(Map::new()), self).value)
    }

    /// A new file for a gateway that has none: the owned fields plus first-boot defaults that
    /// are the customer's to change afterwards (updates come with the image, not at start).
    pub fn render_new(&self) -> String {
        to_file_text(&merge_owned(&Self::new_file_seed(), self).value)
    }
}

/// The result of merging owned fields into a customer's file.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub value: Value,
    /// Whether any owned field differed; when false the file need not be written.
    pub changed: bool,
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(ConfigError::Parse)?;
    if !value.is_object() {
        return Err(ConfigError::NotAnObject);
    }
    Ok(value)
}

/// The file text for a config value: two-space indentation, trailing newline.
pub fn to_file_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// Sets every owned path of `existing` to its desired value (or removes it) and leaves all other
/// keys as they were. A non-object where an owned path must pass (invalid for the gateway
/// anyway) is replaced by an object. A non-object `existing` is treated as empty.
pub fn merge_owned(existing: &Value, desired: &OwnedConfig) -> Merged {
    let mut value = match existing {
        Value::Object(_) => existing.clone(),
        _ => Value::Object(Map::new()),
    };
    let mut changed = !existing.is_object();
    for (path, want) in desired.entries() {
        changed |= match want {
            Some(want) => set_path(&mut value, path, want),
            None => remove_path(&mut value, path),
        };
    }
    Merged { value, changed }
}

/// Sets `path` to `want`; returns whether anything changed.
fn set_path(root: &mut Value, path: &[&str], want: Value) -> bool {
    let (last, parents) = path.split_last().expect("owned paths are not empty");
    let mut changed = false;
    let mut node = root;
    for key in parents {
        let map = node.as_object_mut().expect("parents are made objects");
        let child = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
            changed = true;
        }
        node = child;
    }
    let map = node.as_object_mut().expect("parents are made objects");
    if map.get(*last) != Some(&want) {
        map.insert((*last).to_owned(), want);
        changed = true;
    }
    changed
}

/// Removes `path` if present; parents are left in place (they may hold the customer's keys).
fn remove_path(root: &mut Value, path: &[&str]) -> bool {
    let (last, parents) = path.split_last().expect("owned paths are not empty");
    let mut node = root;
    for key in parents {
        match node.get_mut(*key) {
            Some(child) if child.is_object() => node = child,
            _ => return false,
        }
    }
    node.as_object_mut()
        .and_then(|map| map.remove(*last))
        .is_some()
}

/// The owned fields as found in a config, keyed by dotted path (absent ones left out).
pub fn owned_snapshot(config: &Value) -> Map<String, Value> {
    OwnedConfig::example()
        .entries()
        .into_iter()
        .filter_map(|(path, _)| {
            let mut node = config;
            for key in path {
                node = node.get(*key)?;
            }
            Some((path.join("."), node.clone()))
        })
        .collect()
}

/// `sha256:<hex>` over the owned fields only, in a canonical encoding (sorted keys, no
/// whitespace), so the gateway's own additions (`meta`), the customer's keys, key order and
/// formatting do not count as drift.
pub fn owned_hash(config: &Value) -> String {
    let mut text = String::new();
    canonical(&Value::Object(owned_snapshot(config)), &mut text);
    format!(
        "sha256:{}",
        super::identity::hex(&Sha256::digest(text.as_bytes()))
    )
}

/// Owned paths whose value in `config` differs from `desired`, for events and status messages.
pub fn drifted_paths(config: &Value, desired: &OwnedConfig) -> Vec<String> {
    let want = owned_snapshot(&merge_owned(&Value::Object(Map::new()), desired).value);
    let have = owned_snapshot(config);
    OwnedConfig::owned_paths()
        .into_iter()
        .filter(|path| want.get(path) != have.get(path))
        .collect()
}

/// JSON with object keys sorted at every level, independent of the map type in use.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn desired() -> OwnedConfig {
        OwnedConfig {
            bind: BindMode::Lan,
            port: GATEWAY_PORT,
            allowed_origins: vec!["https://acme.openclaws.biz".to_owned()],
            trusted_proxies: vec!["172.16.0.0/12".to_owned(), "fdaa::/16".to_owned()],
            model_primary: "anthropic/claude-sonnet-4-6".to_owned(),
            model_fallbacks: vec![],
            workspace: DEFAULT_WORKSPACE.to_owned(),
            agent_name: "Ada".to_owned(),
            anthropic_base_url: Some("https://llm.openclaws.biz/anthropic".to_owned()),
            composio_enabled: true,
        }
    }

    #[test]
    fn new_file_has_the_canonical_shape_and_no_secret() {
        let text = desired().render_new();
        let value = parse(&text).unwrap();
        assert_eq!(value["gateway"]["mode"], "local");
        assert_eq!(value["gateway"]["bind"], "lan");
        assert_eq!(value["gateway"]["port"], 3000);
        assert_eq!(
            value["gateway"]["auth"],
            json!({"mode": "token", "token": "${OPENCLAW_GATEWAY_TOKEN}"})
        );
        assert_eq!(
            value["gateway"]["controlUi"]["allowedOrigins"],
            json!(["https://acme.openclaws.biz"])
        );
        assert_eq!(
            value["agents"]["defaults"]["model"],
            json!({"primary": "anthropic/claude-sonnet-4-6"})
        );
        assert_eq!(value["agents"]["entries"], json!({"main": {"name": "Ada"}}));
        assert!(value["agents"].get("list").is_none());
        assert_eq!(
            value["models"]["providers"]["anthropic"]["baseUrl"],
            "https://llm.openclaws.biz/anthropic"
        );
        assert_eq!(value["skills"]["entries"]["composio"]["enabled"], true);
        assert_eq!(value["update"]["checkOnStart"], false);
        assert!(text.ends_with("}\n"));
        assert_eq!(owned_hash(&value), desired().hash());
    }

    #[test]
    fn merge_keeps_the_customers_keys_and_replaces_owned_ones() {
        let existing = json!({
            "gateway": {"port": 8080, "bind": "loopback", "auth": {"mode": "token", "token": "literal-secret"},
                        "reload": {"mode": "off"}},
            "agents": {"entries": {"main": {"name": "Old", "skills": ["x"]}}},
            "channels": {"telegram": {"enabled": true}},
            "bindings": [{"agentId": "main"}],
            "meta": {"lastTouchedVersion": "2026.9.6"}
        });
        let merged = merge_owned(&existing, &desired());
        assert!(merged.changed);
        let v = &merged.value;
        assert_eq!(v["gateway"]["port"], 3000);
        assert_eq!(v["gateway"]["auth"]["token"], "${OPENCLAW_GATEWAY_TOKEN}");
        assert_eq!(v["gateway"]["reload"], json!({"mode": "off"}));
        assert_eq!(
            v["agents"]["entries"]["main"],
            json!({"name": "Ada", "skills": ["x"]})
        );
        assert_eq!(v["channels"], existing["channels"]);
        assert_eq!(v["bindings"], existing["bindings"]);
        assert_eq!(v["meta"], existing["meta"]);
        assert!(!merge_owned(v, &desired()).changed);
    }

    #[test]
    fn no_proxy_removes_the_base_url_but_keeps_the_provider_entry() {
        let mut want = desired();
        let with = merge_owned(&json!({}), &want).value;
        want.anthropic_base_url = None;
        let mut existing = with.clone();
        existing["models"]["providers"]["anthropic"]["timeoutMs"] = json!(5);
        let merged = merge_owned(&existing, &want);
        assert!(merged.changed);
        assert_eq!(
            merged.value["models"]["providers"]["anthropic"],
            json!({"timeoutMs": 5})
        );
        assert!(merge_owned(&json!({}), &want).value.get("models").is_none());
    }

    #[test]
    fn hash_ignores_meta_order_and_customer_keys_but_not_owned_values() {
        let base = merge_owned(&json!({}), &desired()).value;
        let mut touched = base.clone();
        touched["meta"] = json!({"lastTouchedVersion": "2026.9.6"});
        touched["channels"] = json!({"discord": {}});
        assert_eq!(owned_hash(&base), owned_hash(&touched));
        let reparsed = parse(&to_file_text(&touched)).unwrap();
        assert_eq!(owned_hash(&reparsed), owned_hash(&base));
        let mut drifted = base.clone();
        drifted["gateway"]["trustedProxies"] = json!([]);
        assert_ne!(owned_hash(&drifted), owned_hash(&base));
        assert_eq!(
            drifted_paths(&drifted, &desired()),
            vec!["gateway.trustedProxies"]
        );
        assert!(drifted_paths(&touched, &desired()).is_empty());
    }

    #[test]
    fn for_instance_takes_model_name_and_composio_from_the_spec() {
        let mut spec: openclaws_model::InstanceSpec =
            serde_json::from_value(json!({"customerId": "c", "region": "iad"})).unwrap();
        let placement = Placement {
            public_origin: Some("https://acme.openclaws.biz".to_owned()),
            trusted_proxies: vec!["fdaa::/16".to_owned()],
            llm_proxy_base_url: None,
        };
        let plain = OwnedConfig::for_instance(&spec, &placement);
        assert_eq!(plain.agent_name, DEFAULT_AGENT_NAME);
        assert!(!plain.composio_enabled);
        assert_eq!(plain.allowed_origins, vec!["https://acme.openclaws.biz"]);
        spec.identity.display_name = Some("Ada".to_owned());
        spec.composio.enabled = true;
        spec.model.fallbacks = vec!["openai/gpt-5".to_owned()];
        let custom = OwnedConfig::for_instance(&spec, &placement);
        assert_eq!(custom.agent_name, "Ada");
        assert!(custom.composio_enabled);
        assert_eq!(custom.model_fallbacks, vec!["openai/gpt-5"]);
        assert_ne!(custom.hash(), plain.hash());
    }

    #[test]
    fn parse_rejects_non_objects_and_invalid_json() {
        assert!(matches!(parse("[]"), Err(ConfigError::NotAnObject)));
        assert!(matches!(
            parse("{ // comment\n}"),
            Err(ConfigError::Parse(_))
        ));
    }

    /// Keys drawn partly from the owned paths' own segments, so generated files collide with
    /// owned paths and their parents.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("gateway"),
            Just("agents"),
            Just("entries"),
            Just("main"),
            Just("defaults"),
            Just("models"),
            Just("providers"),
            Just("anthropic"),
            Just("skills"),
            Just("composio"),
            Just("channels"),
            Just("auth"),
            Just("port"),
            Just("x"),
        ]
        .prop_map(str::to_owned)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn config_file() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(key(), json_value(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    fn owned_config() -> impl Strategy<Value = OwnedConfig> {
        (
            any::<bool>(),
            1u16..,
            prop::collection::vec("[a-z]{1,5}", 0..3),
            prop::option::of("[a-z]{1,5}"),
            any::<bool>(),
        )
            .prop_map(|(lan, port, fallbacks, base_url, composio)| OwnedConfig {
                bind: if lan {
                    BindMode::Lan
                } else {
                    BindMode::Loopback
                },
                port,
                model_fallbacks: fallbacks,
                anthropic_base_url: base_url,
                composio_enabled: composio,
                ..desired()
            })
    }

    /// Every leaf (scalar, array or empty object) with its path.
    fn leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    path.push(k.clone());
                    leaves(v, path, out);
                    path.pop();
                }
            }
            other => out.push((path.clone(), other.clone())),
        }
    }

    fn related_to_owned(path: &[String]) -> bool {
        OwnedConfig::owned_paths().iter().any(|owned| {
            let owned: Vec<&str> = owned.split('.').collect();
            let n = owned.len().min(path.len());
            owned[..n].iter().zip(&path[..n]).all(|(a, b)| a == b)
        })
    }

    fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
        path.iter().try_fold(value, |node, key| node.get(key))
    }

    proptest! {
        #[test]
        fn merging_is_idempotent_and_preserves_non_owned_keys(
            file in config_file(),
            want in owned_config(),
        ) {
            let once = merge_owned(&file, &want);
            let twice = merge_owned(&once.value, &want);
            prop_assert_eq!(&twice.value, &once.value);
            prop_assert!(!twice.changed);
            prop_assert_eq!(once.changed, once.value != file);
            prop_assert_eq!(owned_hash(&once.value), want.hash());
            prop_assert!(drifted_paths(&once.value, &want).is_empty());

            let mut found = Vec::new();
            leaves(&file, &mut Vec::new(), &mut found);
            for (path, value) in found {
                if !related_to_owned(&path) {
                    prop_assert_eq!(get(&once.value, &path), Some(&value), "path {:?}", path);
                }
            }
        }

        #[test]
        fn the_file_text_round_trips(file in config_file(), want in owned_config()) {
            let merged = merge_owned(&file, &want).value;
            let back = parse(&to_file_text(&merged)).unwrap();
            prop_assert_eq!(back, merged);
        }
    }
}
