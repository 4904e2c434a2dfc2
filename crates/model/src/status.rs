//! `status`: what the controller observed and did. Only the controller writes it; status writes
//! never bump `generation` and never enqueue a reconcile.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conditions::{ConditionType, Reason};

/// Observed state of one instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The `metadata.generation` the controller last reconciled.
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fly: Option<FlyStatus>,
    /// `https://{slug}.{base domain}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing: Option<PairingStatus>,
    /// The configured channels as the gateway last reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<crate::channels::ChannelStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reconcile_at: Option<DateTime<Utc>>,
}

impl InstanceStatus {
    /// The condition of this type, if the status has one.
    pub fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// Coarse lifecycle summary, derived from the conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Phase {
    #[default]
    Pending,
    Provisioning,
    Ready,
    Degraded,
    Stopped,
    Deleting,
    Failed,
}

impl Phase {
    /// Every phase, for validation of filters and for metrics.
    pub const ALL: [Phase; 7] = [
        Phase::Pending,
        Phase::Provisioning,
        Phase::Ready,
        Phase::Degraded,
        Phase::Stopped,
        Phase::Deleting,
        Phase::Failed,
    ];

    /// The wire name (`Ready`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Stopped => "Stopped",
            Phase::Deleting => "Deleting",
            Phase::Failed => "Failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Kubernetes `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `AppReady`, `VolumeReady`, `MachineReady`, `Ready`, ...
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    /// CamelCase machine-readable cause.
    #[schema(value_type = String)]
    pub reason: Reason,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
    pub observed_generation: i64,
}

/// `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The Fly resources backing the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The image the machine runs as Fly resolved it: what actually runs, whatever the spec
    /// asked for or a tag now points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    /// The OpenClaw version the running image's tag names (`2026.9.5`, also from a `v2026.9.5`
    /// tag); absent for tags that name no version, such as `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openclaw_version: Option<String>,
}

/// The image a machine runs as Fly reports it (`image_ref`); the digest identifies it exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    #[serde(default)]
    pub registry: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub digest: String,
}

/// The OpenClaw version an image tag names, if it names one: at least three dot-separated
/// numbers (`2026.9.5`), optionally after a `v` and before a `-` suffix (`2026.9.5-beta.1`).
/// Tags such as `main` or `latest` name none, so the fleet's versions are only those known.
pub fn openclaw_version_of_tag(tag: &str) -> Option<&str> {
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let (core, suffix) = match version.split_once('-') {
        Some((core, suffix)) => (core, Some(suffix)),
        None => (version, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let suffix_ok = suffix.is_none_or(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() >= 3 && parts.iter().all(|p| numeric(p)) && suffix_ok).then_some(version)
}

/// Device pairing as the controller last saw it on the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairingStatus {
    pub pending_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_approved_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_approved_at: Option<DateTime<Utc>>,
    /// Requests waiting for approval, oldest first.
    #[serde(default)]
    pub pending: Vec<PendingPairing>,
    /// What happened to recent requests and approvals, newest first (at most 20).
    #[serde(default)]
    pub recent: Vec<PairingResult>,
    /// DM pairing requests waiting for a decision (strangers who wrote to a channel's bot),
    /// oldest first.
    #[serde(default)]
    pub channel_pending: Vec<PendingChannelPairing>,
    #[serde(default)]
    pub channel_pending_count: u32,
    /// The channel accounts whose DM policy is `pairing` on the gateway, as last read
    /// (`telegram:default`, ...).
    #[serde(default)]
    pub channel_accounts: Vec<String>,
    /// Whether the controller's own device is paired with the gateway (needed to list and
    /// approve requests).
    #[serde(default)]
    pub controller_paired: bool,
    /// When the gateway's pairing state was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
}

/// A device waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPairing {
    pub request_id: String,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The client software (`openclaw-control-ui`, `cli`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub requested_at: DateTime<Utc>,
    /// Seconds since the request was made, when it was last seen.
    pub age_seconds: i64,
    /// Requests expire 5 minutes after they are made (the device then asks again).
    pub expires_at: DateTime<Utc>,
}

/// A stranger waiting for DM access on a channel. OpenClaw sends them an 8-character pairing
/// code but does not reveal it to operators over its protocol: a request is named by its
/// opaque `requestId`, and the sender by their id and name on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingChannelPairing {
    /// OpenClaw's opaque id of the request: approve or dismiss by it.
    pub request_id: String,
    pub channel: String,
    pub account_id: String,
    /// The sender's id on the channel (a Telegram user id, ...).
    pub sender_id: String,
    /// The sender's name as the channel reports it (first and last name, else `@username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// Seconds since the request was made, when it was last seen.
    pub age_seconds: i64,
    /// DM requests expire an hour after they are made.
    pub expires_at: DateTime<Utc>,
    /// Whether the channel can tell the sender they were approved (`notify`).
    #[serde(default)]
    pub notify_supported: bool,
}

/// The outcome of one pairing request or one recorded approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairingResult {
    /// The approval this answers (`spec.pairing.approvals[].id`, or its request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// For a DM pairing request: its channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// For a DM pairing request: the sender's id on the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    pub result: PairingOutcome,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum PairingOutcome {
    /// The gateway approved the device.
    Approved,
    /// The request was no longer pending (requests expire after 5 minutes).
    Expired,
    /// The gateway refused the approval.
    Failed,
    /// A DM pairing request was dismissed.
    Dismissed,
}

/// The most recent failed step, kept until a reconcile succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub step: String,
    /// Machine-readable class (`FlyTransient`, `FlyRateLimited`, `LeaseHeld`, ...).
    #[schema(value_type = String)]
    pub reason: Reason,
    pub message: String,
    pub time: DateTime<Utc>,
    pub attempt: i32,
}

#[cfg(test)]
mod tests {
    use super::openclaw_version_of_tag;

    #[test]
    fn version_tags_name_their_version() {
        assert_eq!(openclaw_version_of_tag("2026.9.5"), Some("2026.9.5"));
        assert_eq!(openclaw_version_of_tag("2026.9.6"), Some("2026.9.6"));
        assert_eq!(openclaw_version_of_tag("v2026.10.1"), Some("2026.10.1"));
        assert_eq!(
            openclaw_version_of_tag("2026.10.1-beta.2"),
            Some("2026.10.1-beta.2")
        );
        assert_eq!(openclaw_version_of_tag("1.2.3.4"), Some("1.2.3.4"));
    }

    #[test]
    fn other_tags_name_no_version() {
        for tag in [
            "main",
            "latest",
            "",
            "v",
            "2026.9",
            "2026.9.x",
            "2026..5",
            ".2026.9.5",
            "2026.9.5-",
            "2026.9.5-a/b",
            "2026.9.5 ",
            "sha256:abc",
            "deployment-01HX",
        ] {
            assert_eq!(openclaw_version_of_tag(tag), None, "{tag:?}");
        }
    }
}
