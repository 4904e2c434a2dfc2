//! Wire types of the Fly Machines REST API as the client reads and writes them. Field names
//! follow Fly's published OpenAPI document (checked by `crates/fly/tests/contract` against the copy
//! vendored in `crates/fly-sim/openapi/`). Unknown fields are kept in `extra` maps so a
//! read-modify-write never drops what another actor set. Lists Fly may send as `null` (its Go
//! types encode an empty list so) read as empty.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Reads `null` as the type's default (an empty list or map): Fly's Go encodes a nil slice as
/// `null` wherever a field lacks `omitempty`.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// `POST /v1/apps` body (`CreateAppRequest`: `name`, not the `app_name` of Fly's older docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_subdomains: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The organization an app belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
}

/// `POST /v1/apps` answer (`CreateAppResponse`): the new app's id and creation time (Unix
/// milliseconds); the name is the one asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// `GET /v1/apps/{app}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub organization: Option<Organization>,
    #[serde(default)]
    pub machine_count: Option<u64>,
    #[serde(default)]
    pub volume_count: Option<u64>,
}

/// `GET /v1/apps?org_slug=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAppsResponse {
    #[serde(default)]
    pub total_apps: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub apps: Vec<App>,
}

/// A machine size hint, and the `guest` block of a machine config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub cpu_kind: String,
    pub cpus: u32,
    pub memory_mb: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/apps/{app}/volumes` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolumeRequest {
    pub name: String,
    pub region: String,
    pub size_gb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_unique_zone: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Guest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_image: Option<String>,
}

/// A Fly volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub state: String,
    pub size_gb: u32,
    pub region: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default)]
    pub attached_machine_id: Option<String>,
    #[serde(default)]
    pub attached_alloc_id: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub host_status: Option<String>,
}

impl Volume {
    /// Volume states Fly (and fly-go) treat as gone or going.
    pub const DESTROYED_STATES: [&'static str; 7] = [
        "scheduling_destroy",
        "fork_cleanup",
        "waiting_for_detach",
        "pending_destroy",
        "destroying",
        "destroyed",
        "deleted",
    ];

    /// Whether the volume is being or has been destroyed.
    pub fn is_destroyed(&self) -> bool {
        Self::DESTROYED_STATES.contains(&self.state.as_str())
    }
}

/// `PUT /v1/apps/{app}/volumes/{id}/extend` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendVolumeRequest {
    pub size_gb: u32,
}

/// `PUT /v1/apps/{app}/volumes/{id}/extend` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendVolumeResponse {
    pub volume: Volume,
    #[serde(default)]
    pub needs_restart: bool,
}

/// `init` block: the process the machine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume mounted into a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A public port of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub handlers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A service routed by Fly's proxy to the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineService {
    pub protocol: String,
    pub internal_port: u16,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<ServicePort>,
    /// `"off"|"stop"|"suspend"` on write; Fly reads back `false`/`true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostop: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_machines_running: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Restart policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// A file written into the machine at boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFile {
    pub guest_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A machine's full configuration. Update is a full replace, so this keeps unknown fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<MachineInit>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Guest>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub services: Vec<MachineService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<MachineFile>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/apps/{app}/machines` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateMachineRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub config: MachineConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
}

/// `POST /v1/apps/{app}/machines/{id}` body (full config replace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMachineRequest {
    pub config: MachineConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
}

/// A machine lifecycle event (newest first in `Machine::events`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
}

/// A health check result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A Fly machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// Missing when the host is unreachable (see `incomplete_config`).
    #[serde(default)]
    pub config: Option<MachineConfig>,
    #[serde(default)]
    pub incomplete_config: Option<Value>,
    /// The image the machine runs, resolved by Fly (registry, repository, tag, digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<MachineEvent>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub checks: Vec<CheckStatus>,
    #[serde(default)]
    pub cordoned: bool,
    #[serde(default)]
    pub host_status: Option<String>,
    /// Returned only by a create with `lease_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// `ImageRef`: the image a machine runs as Fly resolved it. The digest says exactly which
/// image runs, whatever its tag now points at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    #[serde(default)]
    pub registry: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

impl Machine {
    /// The digest of the image the machine runs, when Fly reported one.
    pub fn image_digest(&self) -> Option<&str> {
        self.image_ref
            .as_ref()
            .map(|r| r.digest.as_str())
            .filter(|d| !d.is_empty())
    }

    /// States in which the machine is on its way somewhere and should be visited again shortly.
    pub const TRANSIENT_STATES: [&'static str; 10] = [
        "creating",
        "starting",
        "stopping",
        "restarting",
        "suspending",
        "destroying",
        "updating",
        "replacing",
        "launch_failed",
        "created",
    ];

    /// Whether the machine is in a transient state.
    pub fn is_transient(&self) -> bool {
        Self::TRANSIENT_STATES.contains(&self.state.as_str())
    }

    /// Whether the machine is gone or going.
    pub fn is_destroyed(&self) -> bool {
        matches!(self.state.as_str(), "destroying" | "destroyed")
    }

    /// The machine's metadata, empty when the config is unknown.
    pub fn metadata(&self) -> Option<&BTreeMap<String, String>> {
        self.config.as_ref().map(|c| &c.metadata)
    }

    /// One metadata value, read from `incomplete_config` when the host is unreachable and Fly
    /// answers from its cache (so an unreachable machine is still recognised as ours).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        match &self.config {
            Some(c) => c.metadata.get(key).map(String::as_str),
            None => self
                .incomplete_config
                .as_ref()?
                .get("metadata")?
                .get(key)?
                .as_str(),
        }
    }

    /// Whether Fly cannot reach the machine's host: it answers from cache without a config, and
    /// nothing about the machine can be changed or trusted until the host is back.
    pub fn host_unreachable(&self) -> bool {
        self.host_status.as_deref() == Some("unreachable") || self.config.is_none()
    }
}

/// `POST /machines/{id}/lease` body (`CreateLeaseRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateLeaseRequest {
    /// Seconds the lease lasts.
    pub ttl: u64,
    /// Who takes it and why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// `POST /machines/{id}/stop` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopMachineRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `POST /machines/{id}/exec` body: the command as argv (never through a shell unless asked),
/// and a timeout in seconds (keep it under Fly's proxy timeout of about 60 s).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub timeout: u64,
}

/// `POST /machines/{id}/exec` response; zero or empty fields may be omitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResponse {
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

/// `POST /machines/{id}/start` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartMachineResponse {
    #[serde(default)]
    pub previous_state: String,
    #[serde(default)]
    pub migrated: bool,
    #[serde(default)]
    pub new_host: String,
}

/// `GET /machines/{id}/wait` success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitResponse {
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
}

/// `GET /v1/orgs/{org}/machines` item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMachine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub app_name: String,
    pub state: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub config: Option<OrgMachineConfig>,
}

/// The summary config in an org machine listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMachineConfig {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub guest: Option<Guest>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
}

/// `GET /v1/orgs/{org}/machines` response. A page with `error_regions` is partial: machines of
/// those regions are missing from it, not gone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMachinesResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub machines: Vec<OrgMachine>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub last_machine_id: Option<String>,
    #[serde(default)]
    pub last_updated_at: Option<String>,
    /// Regions whose machines Fly could not list for this page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_regions: Vec<String>,
}

impl OrgMachinesResponse {
    /// Whether some regions are missing from the page (`error_regions`): absent machines may
    /// still exist.
    pub fn is_partial(&self) -> bool {
        !self.error_regions.is_empty()
    }
}

/// Fly's error body: `{"error": "...", "status": "..."}`; lease errors use `message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The lease object (`Lease`), bare as the document declares or inside the
/// `{"status":"success","data":…}` envelope Fly's docs and fly-go show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub nonce: String,
    /// Unix seconds.
    pub expires_at: i64,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub version: String,
}

/// The `{"status":"success","data":{…}}` envelope lease endpoints answer with on Fly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseEnvelope {
    /// `success` (errors use the error envelope instead).
    #[serde(default)]
    pub status: String,
    /// The lease itself.
    pub data: Lease,
}

/// A lease answer in either shape: the envelope, or the bare `Lease` of the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LeaseAnswer {
    /// `{"status","data"}`.
    Envelope(LeaseEnvelope),
    /// `{"nonce","expires_at",…}`.
    Bare(Lease),
}

impl LeaseAnswer {
    /// The lease, whichever the shape.
    pub fn into_lease(self) -> Lease {
        match self {
            LeaseAnswer::Envelope(e) => e.data,
            LeaseAnswer::Bare(l) => l,
        }
    }
}

/// `POST /v1/apps/{app}/secrets` body: values to set; `null` unsets a name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetSecretsRequest {
    #[serde(default)]
    pub values: BTreeMap<String, Option<String>>,
}

/// `POST /v1/apps/{app}/secrets/{name}` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetSecretRequest {
    pub value: String,
}

/// One app secret; `value` only when asked for with `show_secrets=true`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecret {
    pub name: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `GET`/`POST /v1/apps/{app}/secrets` answer; `version` is present after a write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretsResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<AppSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `POST /v1/apps/{app}/ip_assignments` body (`assignIPRequest`); `type` is `v6`, `shared_v4`,
/// `v4`, `private_v6`, `egress_v4`, `egress_v6` or `egress_pair`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignIpRequest {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// One IP assigned to an app (`IPAssignment`). Fly sends no `type`: see [`IpAssignment::kind`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpAssignment {
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub egress: bool,
    #[serde(default)]
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IpAssignment {
    /// The address type, derived as fly-go's `IPAssignment.Type()` does (the answer has no
    /// `type`): egress addresses by family, a Flycast (`fdaa:`) address is `private_v6`, a
    /// shared one `shared_v4`, else `v6` or `v4` by family.
    pub fn kind(&self) -> String {
        let v6 = self.ip.contains(':');
        let kind = if self.egress && v6 {
            "egress_v6"
        } else if self.egress {
            "egress_v4"
        } else if self.ip.starts_with("fdaa:")
            || self.extra.get("network").is_some_and(|n| !n.is_null())
        {
            "private_v6"
        } else if self.shared {
            "shared_v4"
        } else if v6 {
            "v6"
        } else {
            "v4"
        };
        kind.to_owned()
    }
}

/// `GET /v1/apps/{app}/ip_assignments` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListIpAssignmentsResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub ips: Vec<IpAssignment>,
}

/// `POST /v1/apps/{app}/certificates/acme` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAcmeCertificateRequest {
    pub hostname: String,
}

/// `POST /v1/apps/{app}/certificates/custom` body (PEM strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateCustomCertificateRequest {
    pub hostname: String,
    pub fullchain: String,
    pub private_key: String,
}

/// The `dns_requirements` of a certificate: what the customer's DNS must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsRequirements {
    #[serde(default, deserialize_with = "null_as_default")]
    pub a: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub aaaa: Vec<String>,
    #[serde(default)]
    pub cname: Option<String>,
    #[serde(default)]
    pub acme_challenge: Option<DnsChallenge>,
    #[serde(default)]
    pub ownership: Option<DnsOwnership>,
}

/// The `_acme-challenge` CNAME a DNS-01 validation needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsChallenge {
    pub name: String,
    pub target: String,
}

/// The `_fly-ownership` TXT record proving ownership.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsOwnership {
    pub name: String,
    #[serde(default)]
    pub app_value: String,
    #[serde(default)]
    pub org_value: String,
}

/// `CertificateDetail` (the fields a controller reads; the rest is kept in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateDetail {
    pub hostname: String,
    #[serde(default)]
    pub configured: bool,
    #[serde(default)]
    pub acme_requested: bool,
    /// `active`, `pending_validation`, `pending_ownership` (treat others as pending).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub rate_limited_until: Option<String>,
    #[serde(default)]
    pub dns_requirements: Option<DnsRequirements>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub validation_errors: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub certificates: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CertificateDetail {
    /// When the hostname's certificate was requested: the earliest `created_at` of its
    /// `certificates` (the document has no top-level `created_at`; one is used if Fly sends it).
    pub fn created_at(&self) -> Option<&str> {
        if let Some(at) = self.extra.get("created_at").and_then(Value::as_str) {
            return Some(at);
        }
        self.certificates
            .iter()
            .filter_map(|c| c.get("created_at")?.as_str())
            .min()
    }
}
