//! The boot bundle: what a gateway machine needs, besides its image, to start with the
//! controller's config and files in its state directory.
//!
//! Fly writes a machine's `files` (base64 `raw_value`) when it boots, but whether a `guest_path`
//! under the volume's mount lands on the volume is not documented, and writing the whole
//! `openclaw.json` would erase the customer's keys. So the bundle goes outside the volume, into
//! [`BUNDLE_DIR`], and the machine's command is a small Node boot step (the image has `node`),
//! `boot.mjs`, shipped in this crate. On every boot it merges the owned fields into
//! `$OPENCLAW_STATE_DIR/openclaw.json` (the same rule as [`merge_owned`]), writes `IDENTITY.md`
//! by the [`decide_identity`] rule, installs the Composio skill and its bridge, then runs the
//! gateway as its child, forwarding SIGTERM/SIGINT and exiting with its status.
//!
//! Environment contract of the boot step (defaults are Fly's image layout; the simulator's
//! process mode sets them for a local install):
//! - `OPENCLAW_STATE_DIR` (the bundle sets [`STATE_DIR`]): state directory, the volume;
//! - [`ENTRY_ENV`] (default `/app/dist/index.js`): the gateway's entry point;
//! - [`PORT_ENV`] (default 3000) and [`BIND_ENV`] (default `lan`): passed as `--port`/`--bind`,
//!   which override the file's `gateway.port`/`gateway.bind` without rewriting it.
//!
//! The gateway's `PATH` gets `$OPENCLAW_STATE_DIR/bin` in front (where the bridge is), so the
//! machine's own `PATH` is left as the image sets it.
//!
//! [`merge_owned`]: super::config::merge_owned
//! [`decide_identity`]: super::files::decide_identity

use super::composio::ComposioBridge;
use super::config::OwnedConfig;
use super::files::{composio_exec_script, composio_skill_md, identity_md, BRIDGE_PATH, SKILL_PATH};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Directory the bundle is delivered to, outside the volume.
pub const BUNDLE_DIR: &str = "/etc/openclaws";
/// The boot step's path on the machine.
pub const BOOT_SCRIPT_PATH: &str = "/etc/openclaws/boot.mjs";
/// The bundle's data (owned fields, identity, files to install) on the machine.
pub const BUNDLE_JSON_PATH: &str = "/etc/openclaws/bundle.json";
/// The gateway's state directory on Fly: the volume's mount path.
pub const STATE_DIR: &str = "/data";
/// Environment variable naming the state directory (read by the gateway and the boot step).
pub const STATE_DIR_ENV: &str = "OPENCLAW_STATE_DIR";
/// Environment variable with the gateway's entry point (default `/app/dist/index.js`).
pub const ENTRY_ENV: &str = "OPENCLAWS_GATEWAY_ENTRY";
/// Environment variable with the gateway's listen port (default 3000).
pub const PORT_ENV: &str = "OPENCLAWS_GATEWAY_PORT";
/// Environment variable with the gateway's bind mode (default `lan`).
pub const BIND_ENV: &str = "OPENCLAWS_GATEWAY_BIND";
/// Where the boot step lists what it noticed and put right on the machine's last boot (a stale
/// gateway lock removed), relative to the state directory: `{"bootedAt", "notices": [{"reason",
/// "message"}]}`. The controller reads and removes it once the gateway is healthy again.
pub const BOOT_NOTICES_PATH: &str = ".openclaws/boot-notices.json";
/// The notice reasons the boot step writes (and the controller reports as events).
pub const BOOT_NOTICE_REASONS: &[&str] = &["StaleGatewayLockRemoved"];
/// The longest notice message the controller reports.
const BOOT_NOTICE_MAX_CHARS: usize = 300;

/// One thing the boot step noticed and put right, as the controller reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootNotice {
    /// One of [`BOOT_NOTICE_REASONS`].
    pub reason: &'static str,
    /// What happened, in the boot step's words (no secrets: paths and pids), shortened.
    pub message: String,
}

/// The notices in a `boot-notices.json` text: those with a known reason, messages cut to 300
/// characters; nothing for empty or malformed text.
pub fn parse_boot_notices(text: &str) -> Vec<BootNotice> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let notices = value["notices"].as_array().cloned().unwrap_or_default();
    notices
        .iter()
        .filter_map(|n| {
            let reason = BOOT_NOTICE_REASONS
                .iter()
                .find(|r| n["reason"].as_str() == Some(**r))?;
            let message = n["message"].as_str()?;
            Some(BootNotice {
                reason,
                message: message.chars().take(BOOT_NOTICE_MAX_CHARS).collect(),
            })
        })
        .collect()
}

/// Machine metadata key holding [`BootBundle::bundle_hash`].
pub const BUNDLE_HASH_METADATA_KEY: &str = "openclaws_bundle_hash";

const BOOT_SCRIPT: &str = include_str!("boot/boot.mjs");
const FILE_MODE: u32 = 0o644;
const BRIDGE_MODE: u32 = 0o755;

/// What the boot bundle is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInput<'a> {
    /// The owned `openclaw.json` fields (Composio on/off is [`OwnedConfig::composio_enabled`]).
    pub owned: &'a OwnedConfig,
    /// The agent's display name for `IDENTITY.md`.
    pub identity_name: &'a str,
    /// The Composio bridge's API base and toolkit pins (machine environment when Composio is on).
    pub composio: &'a ComposioBridge,
}

/// A file the machine gets when it boots (Fly's machine `files`), under [`BUNDLE_DIR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Where it lands in the machine.
    pub guest_path: String,
    /// Its content, base64.
    pub raw_value: String,
    /// Its Unix mode.
    pub mode: u32,
}

/// The rendered bundle: machine files, command, environment and a hash of all of them. Plain
/// data: the engine puts it into the Fly machine config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootBundle {
    /// The files, under [`BUNDLE_DIR`].
    pub files: Vec<BundleFile>,
    /// The machine's command (`init.cmd`): `node /etc/openclaws/boot.mjs`.
    pub command: Vec<String>,
    /// Environment the machine needs for the boot step.
    pub env: BTreeMap<String, String>,
    /// `sha256:<hex>` over files, command and environment: changes exactly when a machine
    /// update is needed to deliver a new bundle. Goes into [`BUNDLE_HASH_METADATA_KEY`].
    pub bundle_hash: String,
}

/// The `bundle.json` the boot step reads: owned entries, the first-boot seed, `IDENTITY.md`,
/// files to install under the state directory and the directories to put on the gateway's
/// `PATH`.
pub fn bundle_json(input: &BundleInput) -> Value {
    let owned: Vec<Value> = input
        .owned
        .owned_entries()
        .into_iter()
        .map(|(path, value)| match value {
            Some(value) => json!({"path": path, "value": value}),
            None => json!({"path": path, "remove": true}),
        })
        .collect();
    let mut files = Vec::new();
    if input.owned.composio_enabled {
        files.push(json!({"path": SKILL_PATH, "content": composio_skill_md(), "mode": FILE_MODE}));
        files.push(
            json!({"path": BRIDGE_PATH, "content": composio_exec_script(), "mode": BRIDGE_MODE}),
        );
    }
    let bin_dir = BRIDGE_PATH.rsplit_once('/').map_or("bin", |(dir, _)| dir);
    json!({
        "version": 1,
        "owned": owned,
        "seed": OwnedConfig::new_file_seed(),
        "identity": {"content": identity_md(input.identity_name)},
        "files": files,
        "pathDirs": [bin_dir],
    })
}

/// Renders the boot bundle of one gateway machine. Pure: the same input gives the same bundle
/// and hash.
pub fn boot_bundle(input: &BundleInput) -> BootBundle {
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let bundle_text =
        serde_json::to_string_pretty(&bundle_json(input)).expect("a JSON value always serialises");
    let files = vec![
        BundleFile {
            guest_path: BOOT_SCRIPT_PATH.to_owned(),
            raw_value: encode(BOOT_SCRIPT),
            mode: FILE_MODE,
        },
        BundleFile {
            guest_path: BUNDLE_JSON_PATH.to_owned(),
            raw_value: encode(&bundle_text),
            mode: FILE_MODE,
        },
    ];
    let command = vec!["node".to_owned(), BOOT_SCRIPT_PATH.to_owned()];
    let mut env = BTreeMap::from([(STATE_DIR_ENV.to_owned(), STATE_DIR.to_owned())]);
    if input.owned.composio_enabled {
        env.extend(input.composio.env());
    }
    let mut hasher = Sha256::new();
    for file in &files {
        hasher.update(file.guest_path.as_bytes());
        hasher.update([0]);
        hasher.update(file.raw_value.as_bytes());
        hasher.update([0]);
        hasher.update(file.mode.to_be_bytes());
    }
    for arg in &command {
        hasher.update(arg.as_bytes());
        hasher.update([0]);
    }
    for (key, value) in &env {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    BootBundle {
        files,
        command,
        env,
        bundle_hash: format!("sha256:{}", super::identity::hex(&hasher.finalize())),
    }
}

/// The boot step's source, for tests and tools that run it outside a machine.
pub fn boot_script() -> &'static str {
    BOOT_SCRIPT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BindMode, DEFAULT_WORKSPACE, GATEWAY_PORT};

    fn owned(composio: bool) -> OwnedConfig {
        OwnedConfig {
            bind: BindMode::Lan,
            port: GATEWAY_PORT,
            allowed_origins: vec!["https://acme.openclaws.biz".to_owned()],
            trusted_proxies: vec!["fdaa::/16".to_owned()],
            model_primary: "anthropic/claude-sonnet-4-6".to_owned(),
            model_fallbacks: vec![],
            workspace: DEFAULT_WORKSPACE.to_owned(),
            agent_name: "Ada".to_owned(),
            anthropic_base_url: None,
            composio_enabled: composio,
        }
    }

    fn decoded(bundle: &BootBundle, guest_path: &str) -> String {
        let file = bundle
            .files
            .iter()
            .find(|f| f.guest_path == guest_path)
            .unwrap_or_else(|| panic!("no file {guest_path}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.raw_value)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_bundle_lives_outside_the_volume_and_the_command_runs_the_boot_step() {
        let config = owned(true);
        let bundle = boot_bundle(&BundleInput {
            owned: &config,
            identity_name: "Ada",
            composio: &ComposioBridge::default(),
        });
        assert!(bundle
            .files
            .iter()
            .all(|f| f.guest_path.starts_with("/etc/openclaws/")));
        assert_eq!(decoded(&bundle, BOOT_SCRIPT_PATH), boot_script());
        assert_eq!(
            bundle.command,
            vec!["node".to_owned(), BOOT_SCRIPT_PATH.to_owned()]
        );
        assert_eq!(
            bundle.env.get(STATE_DIR_ENV).map(String::as_str),
            Some("/data")
        );
        let data: Value = serde_json::from_str(&decoded(&bundle, BUNDLE_JSON_PATH)).unwrap();
        assert!(data["identity"]["content"]
            .as_str()
            .unwrap()
            .contains("- **Name:** Ada\n"));
        let paths: Vec<&str> = data["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec![SKILL_PATH, BRIDGE_PATH]);
        assert_eq!(data["pathDirs"], json!(["bin"]));
        assert_eq!(data["seed"], OwnedConfig::new_file_seed());
        let token = data["owned"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == json!(["gateway", "auth"]))
            .unwrap();
        assert_eq!(token["value"]["token"], "${OPENCLAW_GATEWAY_TOKEN}");
        let owned_paths: Vec<String> = data["owned"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["path"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        let without_proxy_key: Vec<String> = OwnedConfig::owned_paths()
            .into_iter()
            .filter(|p| p != "models.providers.anthropic.apiKey")
            .collect();
        assert_eq!(
            owned_paths, without_proxy_key,
            "no proxy: its key is not listed for removal, so the bundle is as it was"
        );
        let base_url = data["owned"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"][3] == "baseUrl")
            .unwrap();
        assert_eq!(base_url["remove"], true);
    }

    #[test]
    fn boot_notices_keep_known_reasons_only() {
        let text = json!({"bootedAt": "2026-12-01T00:00:00Z", "notices": [
            {"reason": "StaleGatewayLockRemoved", "message": "removed stale gateway lock x"},
            {"reason": "SomethingElse", "message": "ignored"},
            {"reason": "StaleGatewayLockRemoved", "message": "y".repeat(400)},
        ]})
        .to_string();
        let notices = parse_boot_notices(&text);
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[0].reason, "StaleGatewayLockRemoved");
        assert_eq!(notices[0].message, "removed stale gateway lock x");
        assert_eq!(notices[1].message.chars().count(), 300);
        assert!(parse_boot_notices("").is_empty());
        assert!(parse_boot_notices("not json").is_empty());
    }

    #[test]
    fn with_the_llm_proxy_the_key_is_a_ref_to_the_gateway_secret_store() {
        let mut config = owned(false);
        config.anthropic_base_url = Some("https://proxy.example/anthropic".to_owned());
        let bundle = boot_bundle(&BundleInput {
            owned: &config,
            identity_name: "Ada",
            composio: &ComposioBridge::default(),
        });
        let data: Value = serde_json::from_str(&decoded(&bundle, BUNDLE_JSON_PATH)).unwrap();
        let key = data["owned"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"][3] == "apiKey")
            .unwrap();
        assert_eq!(key["value"], crate::proxy_token::store_ref());
    }

    #[test]
    fn the_hash_follows_every_input_and_is_stable() {
        let config = owned(true);
        let input = BundleInput {
            owned: &config,
            identity_name: "Ada",
            composio: &ComposioBridge::default(),
        };
        let base = boot_bundle(&input);
        assert_eq!(boot_bundle(&input), base);
        assert!(base.bundle_hash.starts_with("sha256:"));
        let renamed = boot_bundle(&BundleInput {
            identity_name: "Grace",
            ..input.clone()
        });
        assert_ne!(renamed.bundle_hash, base.bundle_hash);
        let pinned_bridge = ComposioBridge {
            api_base: None,
            toolkit_versions: "gmail=20250930_00".parse().unwrap(),
        };
        let pinned = boot_bundle(&BundleInput {
            composio: &pinned_bridge,
            ..input.clone()
        });
        assert_ne!(pinned.bundle_hash, base.bundle_hash);
        assert_eq!(pinned.env["COMPOSIO_TOOLKIT_VERSIONS"], "gmail=20250930_00");
        let without = owned(false);
        let plain = boot_bundle(&BundleInput {
            owned: &without,
            identity_name: "Ada",
            composio: &pinned_bridge,
        });
        assert_ne!(plain.bundle_hash, base.bundle_hash);
        assert!(
            !plain.env.contains_key("COMPOSIO_TOOLKIT_VERSIONS"),
            "no Composio settings on a gateway without Composio"
        );
        let data: Value = serde_json::from_str(&decoded(&plain, BUNDLE_JSON_PATH)).unwrap();
        assert_eq!(data["files"], json!([]));
    }
}
