//! `status`: what the controller observed and did. Only the controller writes it; status writes
//! never bump `generation` and never enqueue a reconcile.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reconcile_at: Option<DateTime<Utc>>,
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
    pub type_: String,
    pub status: ConditionStatus,
    /// CamelCase machine-readable cause.
    pub reason: String,
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
}

/// Device pairing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairingStatus {
    pub pending_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_approved_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_approved_at: Option<DateTime<Utc>>,
}

/// The most recent failed step, kept until a reconcile succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub step: String,
    /// Machine-readable class (`Transient`, `RateLimited`, `NameTaken`, ...).
    pub reason: String,
    pub message: String,
    pub time: DateTime<Utc>,
    pub attempt: i32,
}
