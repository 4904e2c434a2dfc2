//! Fly Machines API schemas, transcribed from `openapi/fly-machines.openapi.json`: one struct per
//! component schema the simulator reads or answers, named after the schema (without its `fly.`,
//! `flydv1.` or `main.` prefix) and with the document's property names. The document marks
//! nothing required, so every property is optional here; empty lists and maps are omitted, as Go's
//! `omitempty` does. Exceptions, each saying why: lists Fly's Go types declare without
//! `omitempty` (sent as `null` when empty), and `autostop` (a boolean in answers, as the
//! document's own text says).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `fly.MachineService.autostop`: `"off"`, `"stop"` or `"suspend"` on write; the document's text
/// says answers keep the old booleans for `"off"` (`false`) and `"stop"` (`true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Autostop {
    /// The old boolean form.
    Flag(bool),
    /// `off`, `stop` or `suspend`.
    Mode(String),
}

impl Autostop {
    /// The form Fly answers with: booleans for `off` and `stop`, the string otherwise.
    pub fn as_answered(&self) -> Self {
        match self {
            Self::Mode(m) if m == "off" => Self::Flag(false),
            Self::Mode(m) if m == "stop" => Self::Flag(true),
            other => other.clone(),
        }
    }
}

/// `App`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_numeric_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<AppOrganizationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_count: Option<i64>,
}

/// `CreateAppRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_subdomains: Option<bool>,
    /// When set, makes a retry of this exact request safe: a
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
}

/// `CreateAppResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAppResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `ListAppsResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAppsResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<App>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_apps: Option<i64>,
}

/// `Volume`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(default)]
    pub attached_alloc_id: Option<String>,
    #[serde(default)]
    pub attached_machine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_avail: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_free: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_used: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_host_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// `CreateVolumeRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolumeRequest {
    /// enable scheduled automatic snapshots. Defaults to `true`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<MachineGuest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_unique_zone: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
    /// restore from snapshot
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<i64>,
    /// fork from remote volume
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_zone_app_wide: Option<bool>,
}

/// `UpdateVolumeRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateVolumeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<i64>,
}

/// `ExtendVolumeRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendVolumeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
}

/// `ExtendVolumeResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendVolumeResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_restart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Volume>,
}

/// `Machine`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordoned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Always sent (a summary listing answers `[]`).
    #[serde(default)]
    pub events: Vec<MachineEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_config: Option<MachineConfig>,
    /// InstanceID is unique for each version of the machine
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<StrippedLease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nonce is only every returned on machine creation if a lease_duration was provided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// PrivateIP is the internal 6PN address of the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `CreateMachineRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateMachineRequest {
    /// An object defining the Machine configuration
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<i64>,
    /// Unique name for this Machine. If omitted, one is generated for you
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The target region. Omitting this param launches in the same region as your WireGuard peer connection (somewhere near you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_registration: Option<bool>,
}

/// `UpdateMachineRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMachineRequest {
    /// An object defining the Machine configuration
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<i64>,
    /// Unique name for this Machine. If omitted, one is generated for you
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The target region. Omitting this param launches in the same region as your WireGuard peer connection (somewhere near you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_registration: Option<bool>,
}

/// `CreateLeaseRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateLeaseRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// seconds lease will be valid
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

/// `Lease`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Description or reason for the Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ExpiresAt is the unix timestamp in UTC to denote when the Lease will no longer be valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Nonce is the unique ID autogenerated and associated with the Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Owner is the user identifier which acquired the Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Machine version
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `StopRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `MachineExecRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineExecRequest {
    /// Deprecated: use Command instead
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Machine runs the command in the machine's own namespace instead of in a
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// `flydv1.ExecResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
}

/// `WaitMachineResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitMachineResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `OrgMachinesResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMachinesResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_machine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    #[serde(default)]
    pub machines: Option<Vec<OrgMachine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `AppSecrets`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecrets {
    #[serde(default)]
    pub secrets: Option<Vec<AppSecret>>,
}

/// `AppSecretsUpdateRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecretsUpdateRequest {
    /// Values to set; the request body's description says `null` unsets a name, although the
    /// schema declares plain strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Option<String>>,
}

/// `AppSecretsUpdateResp`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecretsUpdateResp {
    /// DEPRECATED
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "Version")]
    pub version_deprecated: Option<i64>,
    #[serde(default)]
    pub secrets: Option<Vec<AppSecret>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// `SetAppSecretRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetAppSecretRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `SetAppSecretResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetAppSecretResponse {
    /// DEPRECATED
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "Version")]
    pub version_deprecated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// `DeleteAppSecretResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteAppSecretResponse {
    /// DEPRECATED
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "Version")]
    pub version_deprecated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// `assignIPRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignIPRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `AssignIPResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignIPResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// ip_pair is returned when "egress-pair" IP type is requested; in this case, ip is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_pair: Option<IPPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IPAssignmentNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
}

/// `listIPAssignmentsResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListIPAssignmentsResponse {
    #[serde(default)]
    pub ips: Option<Vec<IPAssignment>>,
}

/// `createAcmeCertificateRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateAcmeCertificateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// `createCustomCertificateRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateCustomCertificateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fullchain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// `CertificateDetail`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_requested: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_requirements: Option<DNSRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<CertificateValidation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<CertificateValidationError>,
}

/// `CertificateCheckResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateCheckResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_requested: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_records: Option<DNSRecords>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_requirements: Option<DNSRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<CertificateValidation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<CertificateValidationError>,
}

/// `listCertificatesResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListCertificatesResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
}

/// `destroyCustomCertificateResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestroyCustomCertificateResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_requested: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_requirements: Option<DNSRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<CertificateValidation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<CertificateValidationError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `ErrorResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Deprecated
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `MachineVersion`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_config: Option<MachineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `updateMetadataRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMetadataRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_version: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `upsertMetadataKeyRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsertMetadataKeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `metadataValueResponse`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataValueResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `SignalRequest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// `VolumeSnapshot`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<i64>,
}

/// `AppOrganizationInfo`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppOrganizationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_numeric_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// `fly.MachineGuest`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineGuest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_dedication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<i64>,
    /// Deprecated: use MachineConfig.Rootfs instead
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_rootfs: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_host_features: Vec<String>,
}

/// `CheckStatus`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `fly.MachineConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// Optional boolean telling the Machine to destroy itself once it’s complete (default false)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_drive: Option<MachineCacheDrive>,
    /// An optional object that defines one or more named top-level checks. The key for each check is the check name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, MachineCheck>,
    /// Containers are a list of containers that will run in the machine. Currently restricted to
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerConfig>,
    /// Deprecated: use Service.Autostart instead
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_machine_autostart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DNSConfig>,
    /// An object filled with key/value pairs to be set as environment variables
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<MachineGuest>,
    /// The docker image to run
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<MachineInit>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MachineMetrics>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MachineMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<MachineProcess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<MachineRestart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<MachineRootfs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<MachineService>,
    /// Deprecated: use Guest instead
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<MachineSpot>,
    /// Standbys enable a machine to be a standby for another. In the event of a hardware failure,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standbys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statics: Vec<Static>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_config: Option<StopConfig>,
}

/// `MachineEvent`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `ImageRef`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `StrippedLease`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrippedLease {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `OrgMachine`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgMachine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineOverviewConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `AppSecret`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `IPPair`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IPPair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<String>,
}

/// `IPAssignmentNetwork`: The 6PN network a Flycast (private_v6) address belongs to. Null for all other IP types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IPAssignmentNetwork {
    /// Network name; empty for the organization's default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
}

/// `IPAssignment`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IPAssignment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IPAssignmentNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
}

/// `CertificateEntry`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued: Vec<IssuedCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `DNSRequirements`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DNSRequirements {
    #[serde(default)]
    pub a: Option<Vec<String>>,
    #[serde(default)]
    pub aaaa: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_challenge: Option<AcmeChallenge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<OwnershipVerification>,
}

/// `CertificateValidation`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateValidation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_txt_configured: Option<bool>,
}

/// `CertificateValidationError`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateValidationError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `DNSRecords` (lists always sent: fly-go declares them without `omitempty`)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DNSRecords {
    #[serde(default)]
    pub a: Vec<String>,
    #[serde(default)]
    pub aaaa: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_challenge_cname: Option<String>,
    #[serde(default)]
    pub cname: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_txt: Option<String>,
    #[serde(default)]
    pub resolved_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa: Option<String>,
}

/// `CertificateSummary`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_alpn_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_dns_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_http_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_requested: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_custom_certificate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_fly_certificate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_txt_configured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `fly.MachineCacheDrive`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCacheDrive {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_mb: Option<i64>,
}

/// `fly.MachineCheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCheck {
    /// The time to wait after a VM starts before checking its health
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<MachineHTTPHeader>,
    /// The time between connectivity checks
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Kind of the check (informational, readiness)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For http checks, the HTTP method to use to when making the request
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// For http checks, the path to send the request to
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The port to connect to, often the same as internal_port
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// For http checks, whether to use http or https
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The maximum time a connection can take before being reported as failing its health check
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// If the protocol is https, the hostname to use for TLS certificate validation
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// For http checks with https protocol, whether or not to verify the TLS certificate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_skip_verify: Option<bool>,
    /// tcp or http
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `fly.ContainerConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// CmdOverride is used to override the default command of the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// DependsOn can be used to define dependencies between containers. The container will only be
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// EntrypointOverride is used to override the default entrypoint of the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// ExtraEnv is used to add additional environment variables to the container.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// EnvFrom can be provided to set environment variables from machine fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFrom>,
    /// Image Config overrides - these fields are used to override the image configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// Files are files that will be written to the container file system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    /// Healthchecks determine the health of your containers. Healthchecks can use HTTP, TCP or an Exec command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub healthchecks: Vec<ContainerHealthcheck>,
    /// Image is the docker image to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Name is used to identify the container in the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Restart is used to define the restart policy for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<MachineRestart>,
    /// Secrets can be provided at the process level to explicitly indicate which secrets should be
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<MachineSecret>,
    /// Stop is used to define the signal and timeout for stopping the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopConfig>,
    /// UserOverride is used to override the default user of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `fly.DNSConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DNSConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_forward_rules: Vec<DnsForwardRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname_fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<DnsOption>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_registration: Option<bool>,
}

/// `fly.File`: A file that will be written to the Machine. One of RawValue or SecretName must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// GuestPath is the path on the machine where the file will be written and must be an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_path: Option<String>,
    /// The name of an image to use the OCI image config as the file contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<String>,
    /// Mode bits used to set permissions on this file as accepted by chmod(2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i64>,
    /// The base64 encoded string of the file contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_value: Option<String>,
    /// The name of the secret that contains the base64 encoded file contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// `fly.MachineInit`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInit {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_size_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}

/// `fly.MachineMetrics`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// `fly.MachineMount`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineMount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_size_gb: Option<i64>,
    /// AddSizePercent grows by a percentage of the current size, rounded up to GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_size_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_threshold_percent: Option<i64>,
    /// MinAddSizeGb is the minimum proportional growth in GiB (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_add_size_gb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

/// `fly.MachineProcess`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineProcess {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// EnvFrom can be provided to set environment variables from machine fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFrom>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// IgnoreAppSecrets can be set to true to ignore the secrets for the App the Machine belongs to
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_app_secrets: Option<bool>,
    /// Secrets can be provided at the process level to explicitly indicate which secrets should be
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<MachineSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `fly.MachineRestart`: The Machine restart policy defines whether and how flyd restarts a Machine after its main process exits. See https://fly.io/docs/machines/guides-examples/machine-restart-policy/.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineRestart {
    /// When policy is on-failure, the maximum number of times to attempt to restart the Machine before letting it stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
    /// * no - Never try to restart a Machine automatically when its main process exits, whether that’s on purpose or on a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// `fly.MachineRootfs`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineRootfs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<i64>,
}

/// `fly.MachineService`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    /// Accepts a string (new format) or a boolean (old format). For backward compatibility with older clients, the API continues to use booleans for "off" and "stop" in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostop: Option<Autostop>,
    /// An optional list of service checks
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<MachineServiceCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<MachineServiceConcurrency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_instance_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_instance_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_machines_running: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<MachinePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `fly.MachineSpot`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSpot {
    /// MaxPriceFraction is the maximum fraction of the full Machine price you will pay for this Machine. Range: (0, 1.0]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price_fraction: Option<f64>,
}

/// `fly.Static`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Static {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tigris_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_prefix: Option<String>,
}

/// `fly.StopConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `MachineOverviewConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineOverviewConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<MachineGuest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// `IssuedCertificate`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `AcmeChallenge`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcmeChallenge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `OwnershipVerification`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnershipVerification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_value: Option<String>,
}

/// `fly.MachineHTTPHeader`: For http checks, an array of objects with string field Name and array of strings field Values. The key/value pairs specify header and header values that will get passed with the check call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineHTTPHeader {
    /// The header name
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The header value
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `fly.ContainerDependency`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerDependency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `fly.EnvFrom`: EnvVar defines an environment variable to be populated from a machine field, env_var
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvFrom {
    /// EnvVar is required and is the name of the environment variable that will be set from the
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// FieldRef selects a field of the Machine: supports id, version, app_name, private_ip, region, image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<String>,
}

/// `fly.ContainerHealthcheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerHealthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHealthcheck>,
    /// The number of times the check must fail before considering the container unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    /// The time in seconds to wait after a container starts before checking its health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HTTPHealthcheck>,
    /// The time in seconds between executing the defined check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Kind of healthcheck (readiness, liveness)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The name of the check. Must be unique within the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The number of times the check must succeeed before considering the container healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TCPHealthcheck>,
    /// The time in seconds to wait for the check to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Unhealthy policy that determines what action to take if a container is deemed unhealthy
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<String>,
}

/// `fly.MachineSecret`: A Secret needing to be set in the environment of the Machine. env_var is required
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSecret {
    /// EnvVar is required and is the name of the environment variable that will be set from the
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// Name is optional and when provided is used to reference a secret name where the EnvVar is
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `fly.dnsForwardRule`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsForwardRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basename: Option<String>,
}

/// `fly.dnsOption`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `fly.MachineServiceCheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineServiceCheck {
    /// The time to wait after a VM starts before checking its health
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<MachineHTTPHeader>,
    /// The time between connectivity checks
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// For http checks, the HTTP method to use to when making the request
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// For http checks, the path to send the request to
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The port to connect to, often the same as internal_port
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// For http checks, whether to use http or https
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The maximum time a connection can take before being reported as failing its health check
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// If the protocol is https, the hostname to use for TLS certificate validation
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// For http checks with https protocol, whether or not to verify the TLS certificate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_skip_verify: Option<bool>,
    /// tcp or http
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `fly.MachineServiceConcurrency`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineServiceConcurrency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `fly.MachinePort`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachinePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_options: Option<HTTPOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_proto_options: Option<ProxyProtoOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_options: Option<TLSOptions>,
}

/// `fly.ExecHealthcheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecHealthcheck {
    /// The command to run to check the health of the container (e.g. ["cat", "/tmp/healthy"])
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// `fly.HTTPHealthcheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HTTPHealthcheck {
    /// Additional headers to send with the request
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<MachineHTTPHeader>,
    /// The HTTP method to use to when making the request
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path to send the request to
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The port to connect to, often the same as internal_port
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Whether to use http or https
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// If the protocol is https, the hostname to use for TLS certificate validation
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// If the protocol is https, whether or not to verify the TLS certificate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_skip_verify: Option<bool>,
}

/// `fly.TCPHealthcheck`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TCPHealthcheck {
    /// The port to connect to, often the same as internal_port
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// `fly.HTTPOptions`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HTTPOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_backend: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_read_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay_cache: Vec<ReplayCache>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HTTPResponseOptions>,
}

/// `fly.ProxyProtoOptions`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyProtoOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `fly.TLSOptions`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TLSOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_self_signed: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// `fly.ReplayCache`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayCache {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_bypass: Option<bool>,
    /// Name of the cookie or header to key the cache on
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// Currently either "cookie" or "header"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// `fly.HTTPResponseOptions`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HTTPResponseOptions {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pristine: Option<bool>,
}
