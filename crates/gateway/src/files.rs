//! Files the controller places in a gateway's state directory besides `openclaw.json`:
//! the workspace's `IDENTITY.md`, the Composio skill and its `composio-exec` bridge.
//!
//! Where they go (reference §2–§3, `OPENCLAW_STATE_DIR=/data` on Fly):
//! - [`IDENTITY_PATH`]: the gateway creates only missing workspace files and never overwrites
//!   one, and a customised `IDENTITY.md` also stops the first-run `BOOTSTRAP.md` ritual;
//! - [`SKILL_PATH`]: the "managed" skills tier, listed as `openclaw-managed`;
//! - [`BRIDGE_PATH`]: the skill is gated on `composio-exec` being on the **gateway process's**
//!   `PATH`, so the machine's `PATH` must include `/data/bin`.
//!
//! `IDENTITY.md` is the customer's once they edit it; [`decide_identity`] is the rule for when
//! the controller may still write it.

use sha2::{Digest, Sha256};

/// `IDENTITY.md`, relative to the state directory (the workspace is `${OPENCLAW_STATE_DIR}/workspace`).
pub const IDENTITY_PATH: &str = "workspace/IDENTITY.md";
/// The Composio skill, relative to the state directory.
pub const SKILL_PATH: &str = "skills/composio/SKILL.md";
/// The bridge, relative to the state directory; its directory goes on the gateway's `PATH`.
pub const BRIDGE_PATH: &str = "bin/composio-exec";
/// The directory that must be on the gateway's `PATH` on Fly.
pub const BRIDGE_DIR_ON_MACHINE: &str = "/data/bin";
/// Composio's published platform API (`POST {base}/tools/execute/{tool_slug}`), the bridge's
/// default base.
pub const COMPOSIO_API_BASE: &str = "https://backend.composio.dev/api/v3";

const SKILL_MD: &str = include_str!("composio/SKILL.md");
const BRIDGE: &str = include_str!("composio/composio-exec.mjs");

/// `IDENTITY.md` for an agent called `display_name` (one line, trimmed; the gateway parses
/// `- **Label:** value` lines).
pub fn identity_md(display_name: &str) -> String {
    let name = display_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "# IDENTITY.md - Who Am I?\n\
         \n\
         - **Name:** {name}\n\
         - **Creature:** a personal AI agent on OpenClaws\n\
         - **Vibe:** helpful, clear and warm\n\
         \n\
         I am {name}, an OpenClaw agent hosted by OpenClaws for one customer. My gateway, its\n\
         workspace and its memory belong to that customer alone.\n"
    )
}

/// The Composio skill's `SKILL.md`.
pub fn composio_skill_md() -> &'static str {
    SKILL_MD
}

/// The `composio-exec` bridge (a Node script: the gateway image always has Node, not always
/// curl). Install it with mode 0755.
pub fn composio_exec_script() -> &'static str {
    BRIDGE
}

/// `sha256:<hex>` of a file's content, as stored for [`decide_identity`].
pub fn content_hash(content: &[u8]) -> String {
    format!("sha256:{}", super::identity::hex(&Sha256::digest(content)))
}

/// What to do with `IDENTITY.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDecision {
    pub action: FileAction,
    pub reason: IdentityReason,
    /// The hash to remember as "what we last wrote" after acting (`None`: remember nothing).
    pub record: Option<String>,
}

/// Whether to write the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Write,
    Leave,
}

/// Why, for events and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityReason {
    /// No file yet: create it.
    Missing,
    /// The file already has the desired content.
    InSync,
    /// The file is what we last wrote and the spec now asks for something else.
    SpecChanged,
    /// The customer changed the file, but the spec asks for something new: the spec wins.
    SpecChangedOverCustomerEdit,
    /// The customer changed the file and the spec did not change: theirs stays.
    CustomerEdited,
    /// A file we never wrote (an adopted gateway): it stays, and the desired content becomes the
    /// baseline so a later spec change is applied.
    Adopted,
}

/// Decides whether to write `IDENTITY.md`: created if missing, never overwritten once the
/// customer changed it, unless the spec changed it since we last wrote it.
///
/// - `last_written`: hash of what the controller last wrote (`None` if it never wrote one);
/// - `current`: hash of the file now (`None` if missing);
/// - `desired`: hash of what the spec renders now.
pub fn decide_identity(
    last_written: Option<&str>,
    current: Option<&str>,
    desired: &str,
) -> IdentityDecision {
    let decision = |action, reason, record: Option<&str>| IdentityDecision {
        action,
        reason,
        record: record.map(str::to_owned),
    };
    let Some(current) = current else {
        return decision(FileAction::Write, IdentityReason::Missing, Some(desired));
    };
    if current == desired {
        return decision(FileAction::Leave, IdentityReason::InSync, Some(desired));
    }
    let Some(last) = last_written else {
        return decision(FileAction::Leave, IdentityReason::Adopted, Some(desired));
    };
    match (current == last, desired == last) {
        (true, _) => decision(
            FileAction::Write,
            IdentityReason::SpecChanged,
            Some(desired),
        ),
        (false, true) => decision(
            FileAction::Leave,
            IdentityReason::CustomerEdited,
            Some(last),
        ),
        (false, false) => decision(
            FileAction::Write,
            IdentityReason::SpecChangedOverCustomerEdit,
            Some(desired),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identity_names_the_agent_on_one_line() {
        let text = identity_md("  Ada\nLovelace ");
        assert!(text.contains("- **Name:** Ada Lovelace\n"), "{text}");
        assert!(text.contains("OpenClaws"));
        assert!(text.starts_with("# IDENTITY.md"));
    }

    #[test]
    fn skill_is_gated_on_the_bridge_and_bridge_uses_the_env() {
        let skill = composio_skill_md();
        assert!(skill.starts_with("---\nname: composio\n"));
        assert!(skill.contains(r#""bins": ["composio-exec"]"#));
        let bridge = composio_exec_script();
        assert!(bridge.starts_with("#!/usr/bin/env node\n"));
        assert!(bridge.contains("COMPOSIO_API_KEY"));
        assert!(bridge.contains("COMPOSIO_ENTITY_ID"));
        assert!(bridge.contains(COMPOSIO_API_BASE));
        assert!(bridge.contains("x-api-key"));
    }

    #[test]
    fn identity_decisions() {
        let (ours, theirs, new) = ("h-ours", "h-theirs", "h-new");
        let d = decide_identity(None, None, ours);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Write, IdentityReason::Missing)
        );
        let d = decide_identity(Some(ours), Some(ours), ours);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Leave, IdentityReason::InSync)
        );
        let d = decide_identity(Some(ours), Some(theirs), ours);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Leave, IdentityReason::CustomerEdited)
        );
        assert_eq!(d.record.as_deref(), Some(ours));
        let d = decide_identity(Some(ours), Some(ours), new);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Write, IdentityReason::SpecChanged)
        );
        let d = decide_identity(Some(ours), Some(theirs), new);
        assert_eq!(
            (d.action, d.reason),
            (
                FileAction::Write,
                IdentityReason::SpecChangedOverCustomerEdit
            )
        );
        let d = decide_identity(None, Some(theirs), ours);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Leave, IdentityReason::Adopted)
        );
        assert_eq!(d.record.as_deref(), Some(ours));
        let d = decide_identity(Some(ours), None, ours);
        assert_eq!(
            (d.action, d.reason),
            (FileAction::Write, IdentityReason::Missing)
        );
    }

    fn hash() -> impl Strategy<Value = String> {
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(str::to_owned)
    }

    proptest! {
        /// A customer's edit survives every reconcile until the spec changes, and acting on a
        /// decision then deciding again (same spec) never writes twice.
        #[test]
        fn customer_edits_survive_and_decisions_settle(
            last in prop::option::of(hash()),
            current in prop::option::of(hash()),
            desired in hash(),
        ) {
            let d = decide_identity(last.as_deref(), current.as_deref(), &desired);
            if let (Some(last), Some(current)) = (&last, &current) {
                if current != last && desired == *last {
                    prop_assert_eq!(d.action, FileAction::Leave);
                }
            }
            if current.is_none() {
                prop_assert_eq!(d.action, FileAction::Write);
            }
            let after = match d.action {
                FileAction::Write => Some(desired.clone()),
                FileAction::Leave => current.clone(),
            };
            let again = decide_identity(d.record.as_deref(), after.as_deref(), &desired);
            prop_assert_eq!(again.action, FileAction::Leave);
        }
    }
}
