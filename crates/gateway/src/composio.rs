//! How the `composio-exec` bridge reaches Composio: the API base and the toolkit versions the
//! platform pins, delivered to the gateway machine's environment (see `composio/composio-exec.mjs`).
//!
//! Composio versions each toolkit (`20250909_00`); a tool execution without `version` runs
//! Composio's pinned base version `00000000_00`, and `latest` follows every release, which
//! Composio's SDKs refuse for manual execution unless told to skip that check. The bridge never
//! sends `latest`: a toolkit runs at the version pinned here, or at the base version.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Environment variable with the bridge's API base (only when the controller overrides it).
pub const API_BASE_ENV: &str = "COMPOSIO_API_BASE";
/// Environment variable with the pinned toolkit versions (`toolkit=version,…`).
pub const TOOLKIT_VERSIONS_ENV: &str = "COMPOSIO_TOOLKIT_VERSIONS";

/// Toolkit versions the platform pins, by toolkit slug (`gmail` → `20250930_00`). Empty (the
/// default) runs every toolkit at Composio's base version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolkitVersions(BTreeMap<String, String>);

/// Why a toolkit version setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolkitVersionsError {
    /// An entry is not `toolkit=version`.
    #[error("`{0}` is not toolkit=version (e.g. gmail=20250930_00)")]
    Entry(String),
    /// A toolkit slug with characters Composio's slugs do not have.
    #[error("`{0}` is not a toolkit slug (lowercase letters, digits, underscores)")]
    Toolkit(String),
    /// `latest` moves under running agents; Composio's SDKs refuse it for manual execution.
    #[error("{0}=latest: pin a version (YYYYMMDD_NN); latest changes tools under running agents")]
    Latest(String),
    /// A version not in Composio's `YYYYMMDD_NN` form.
    #[error("`{0}` is not a Composio toolkit version (YYYYMMDD_NN, e.g. 20250930_00)")]
    Version(String),
}

impl ToolkitVersions {
    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pinned version of `toolkit`, if any.
    pub fn get(&self, toolkit: &str) -> Option<&str> {
        self.0.get(toolkit).map(String::as_str)
    }
}

fn is_version(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 11
        && bytes[8] == b'_'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit())
}

fn is_toolkit(toolkit: &str) -> bool {
    !toolkit.is_empty()
        && toolkit
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl FromStr for ToolkitVersions {
    type Err = ToolkitVersionsError;

    /// Parses `gmail=20250930_00,github=20250909_00` (blank: nothing pinned).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut pins = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (toolkit, version) = entry
                .split_once('=')
                .ok_or_else(|| ToolkitVersionsError::Entry(entry.to_owned()))?;
            let (toolkit, version) = (toolkit.trim().to_ascii_lowercase(), version.trim());
            if !is_toolkit(&toolkit) {
                return Err(ToolkitVersionsError::Toolkit(toolkit));
            }
            if version.eq_ignore_ascii_case("latest") {
                return Err(ToolkitVersionsError::Latest(toolkit));
            }
            if !is_version(version) {
                return Err(ToolkitVersionsError::Version(version.to_owned()));
            }
            pins.insert(toolkit, version.to_owned());
        }
        Ok(Self(pins))
    }
}

impl fmt::Display for ToolkitVersions {
    /// The bridge's `COMPOSIO_TOOLKIT_VERSIONS` form, toolkits in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.0.iter().map(|(t, v)| format!("{t}={v}")).collect();
        f.write_str(&entries.join(","))
    }
}

/// What the bridge on every Composio-enabled gateway is given besides its secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposioBridge {
    /// Composio's API base when not the bridge's default (`https://backend.composio.dev/api/v3`):
    /// a fake's in tests.
    pub api_base: Option<String>,
    /// The pinned toolkit versions.
    pub toolkit_versions: ToolkitVersions,
}

impl ComposioBridge {
    /// The machine environment that carries these settings (nothing for the defaults, so
    /// machines of a platform without overrides keep their config).
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(base) = &self.api_base {
            env.insert(API_BASE_ENV.to_owned(), base.clone());
        }
        if !self.toolkit_versions.is_empty() {
            env.insert(
                TOOLKIT_VERSIONS_ENV.to_owned(),
                self.toolkit_versions.to_string(),
            );
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_print_in_the_bridges_form() {
        let pins: ToolkitVersions = " Gmail=20250930_00, github=20250909_00 ,".parse().unwrap();
        assert_eq!(pins.get("gmail"), Some("20250930_00"));
        assert_eq!(pins.to_string(), "github=20250909_00,gmail=20250930_00");
        assert!("".parse::<ToolkitVersions>().unwrap().is_empty());
    }

    #[test]
    fn latest_and_malformed_pins_are_refused() {
        let refused = |text: &str| text.parse::<ToolkitVersions>().unwrap_err();
        assert_eq!(
            refused("gmail=latest"),
            ToolkitVersionsError::Latest("gmail".into())
        );
        assert_eq!(
            refused("gmail"),
            ToolkitVersionsError::Entry("gmail".into())
        );
        assert_eq!(
            refused("gmail=2025-09-30"),
            ToolkitVersionsError::Version("2025-09-30".into())
        );
        assert_eq!(
            refused("g mail=20250930_00"),
            ToolkitVersionsError::Toolkit("g mail".into())
        );
    }

    #[test]
    fn defaults_add_nothing_to_the_machine() {
        assert!(ComposioBridge::default().env().is_empty());
        let bridge = ComposioBridge {
            api_base: Some("http://127.0.0.1:9/api/v3".into()),
            toolkit_versions: "gmail=20250930_00".parse().unwrap(),
        };
        let env = bridge.env();
        assert_eq!(env[TOOLKIT_VERSIONS_ENV], "gmail=20250930_00");
        assert_eq!(env[API_BASE_ENV], "http://127.0.0.1:9/api/v3");
    }
}
