//! The condition types of an instance's status, as they appear in `status.conditions[].type`.
//! Shared by the engine (which sets them), telemetry (which counts them) and the support views.

/// The app exists and carries our ownership mark.
pub const APP_READY: &str = "AppReady";
/// The app holds the desired secrets (gateway token, model keys, Composio entity).
pub const SECRETS_READY: &str = "SecretsReady";
/// The hostname's CNAME points at the app.
pub const DNS_READY: &str = "DnsReady";
/// Fly holds an issued certificate for the hostname.
pub const CERTIFICATE_READY: &str = "CertificateReady";
/// The data volume exists at the desired size.
pub const VOLUME_READY: &str = "VolumeReady";
/// The gateway machine exists with the desired config and run state.
pub const MACHINE_READY: &str = "MachineReady";
/// The gateway answers `/startupz` and `/readyz` through the public path.
pub const GATEWAY_HEALTHY: &str = "GatewayHealthy";
/// The machine carries the desired boot bundle and the live config's owned fields match.
pub const CONFIG_SEEDED: &str = "ConfigSeeded";
/// The controller can list and approve the gateway's pairing requests.
pub const PAIRING_READY: &str = "PairingReady";
/// Reconciling is paused by `spec.paused`.
pub const PAUSED: &str = "Paused";
/// Everything above holds and the gateway is running.
pub const READY: &str = "Ready";
