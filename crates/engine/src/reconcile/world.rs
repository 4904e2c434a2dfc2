//! What one reconcile saw of the world: the Fly side (app, volumes, machines, secrets,
//! addresses, certificate, DNS records) and the gateway itself. Plain data, no I/O: observing
//! ([`super::observe`], [`super::gateway`]) fills it in, the pure planner and the status read it.
//!
//! Serializable because the engine records the world it planned from after each reconcile
//! (`instances.observed`) for the API's plan preview; it holds secret names and a keyed
//! fingerprint, never secret values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openclaws_fly::types::{App, CertificateDetail, Machine, Volume};
use openclaws_gateway::protocol::{ChannelPairingList, PendingRequest};
use openclaws_model::{ChannelStatus, PairingResult};

/// Pairing requests expire this long after they are made.
pub const REQUEST_TTL: Duration = Duration::from_secs(300);
/// DM pairing requests expire this long after they are made (OpenClaw's
/// `CHANNEL_PAIRING_PENDING_TTL_MS`).
pub const DM_REQUEST_TTL: Duration = Duration::from_secs(3600);

/// What we know of the app named for the instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppObservation {
    /// The name is free.
    Absent,
    /// It exists and carries our mark.
    Ours(App),
    /// It exists but is not ours (another org, or no/another mark): never touched.
    Foreign { reason: String },
    /// The instance claimed it for adoption, but it does not hold the web app's layout
    /// (`docs/adoption.md`): never touched.
    Refused { reason: String },
}

/// The observed world for one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Observed {
    pub app: AppObservation,
    /// Our volumes (named `data` in our app), excluding destroyed ones.
    pub volumes: Vec<Volume>,
    /// Machines carrying our uid mark, excluding destroyed ones.
    pub machines: Vec<Machine>,
    /// Whether we asked Fly to delete the app and it has not gone yet.
    pub app_deletion_requested: bool,
    /// When the world was read (to tell how long a machine has been in a transient state).
    pub observed_at: Option<DateTime<Utc>>,
    /// The app's secret names, and what we last wrote.
    pub secrets: ObservedSecrets,
    /// Addresses of the app as (type, address): public ones and Flycast.
    pub ips: Vec<(String, String)>,
    /// The hostname's certificate at Fly.
    pub certificate: Option<CertificateDetail>,
    /// DNS records with the hostname's name.
    pub dns_records: Vec<openclaws_dns::DnsRecord>,
    /// The gateway as last looked at in this reconcile; `None` until the planner asks for a look.
    pub gateway: Option<GatewayObservation>,
    /// Pairing outcomes so far, newest first: the previous status's, then this reconcile's.
    pub pairing_history: Vec<PairingResult>,
    /// A claimed app's layout checked out in this reconcile: the `(volume id, machine id)` it
    /// keeps, for the record stage to mark the adoption done.
    pub adoption_verified: Option<(String, String)>,
}

impl Default for Observed {
    fn default() -> Self {
        Self::empty()
    }
}

impl Observed {
    /// Nothing exists.
    pub fn empty() -> Self {
        Self {
            app: AppObservation::Absent,
            volumes: Vec::new(),
            machines: Vec::new(),
            app_deletion_requested: false,
            observed_at: None,
            secrets: ObservedSecrets::default(),
            ips: Vec::new(),
            certificate: None,
            dns_records: Vec::new(),
            gateway: None,
            pairing_history: Vec::new(),
            adoption_verified: None,
        }
    }

    /// Whether the app exists and is ours.
    pub fn app_is_ours(&self) -> bool {
        matches!(self.app, AppObservation::Ours(_))
    }
}

/// What the app's secrets look like (names and our write's fingerprint: safe to store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservedSecrets {
    /// Names present at Fly.
    pub names: BTreeSet<String>,
    /// Fingerprint and Fly version of our last successful write (from our bookkeeping).
    pub applied: Option<(String, i64)>,
}

/// What the gateway answered to the health probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GatewayHealth {
    /// Started and ready.
    Healthy,
    /// `/startupz` says it is still starting.
    Starting(String),
    /// Started, but `/readyz` reports failing checks.
    NotReady(String),
    /// 403 `proxy_attribution_required`: `gateway.trustedProxies` misses the proxy's address.
    ProxyAttributionRequired,
    /// Nothing answered (no process, connection refused, timeout, proxy error).
    Unreachable(String),
}

/// Whether the controller's device can act on the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerAccess {
    /// Not tried (the gateway was not healthy).
    NotTried,
    /// Connected with the pairing scopes.
    Paired,
    /// Its first connect left this pending request.
    NotPaired { request_id: String },
    /// Connecting failed otherwise.
    Failed(String),
}

/// The owned fields of the live `openclaw.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveConfig {
    /// Not read.
    Unknown,
    /// Every owned field is as desired.
    Matches,
    /// These owned paths differ (changed out of band).
    Drifted(Vec<String>),
    /// The gateway reports its file as invalid; a restart would not fix it.
    Invalid(String),
}

/// The LLM proxy token in the gateway's secret store, as its marker entry says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredProxyToken {
    /// Not read (no proxy token in use, or the listing failed).
    #[default]
    Unknown,
    /// No token, or no marker saying which one.
    Missing,
    /// The keyed fingerprint of the token in place.
    Fingerprint(String),
}

/// The managed channels as one look found them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelsObservation {
    /// Owned channel paths (`channels.<id>.<key>`) of the live config that differ from the
    /// desired ones (empty when the config was not read).
    pub drift: Vec<String>,
    /// The controller's marker entries in the gateway's secret store (name → the fingerprint of
    /// the value in place); `None` when the store could not be listed.
    pub markers: Option<BTreeMap<String, String>>,
    /// Each configured channel as `channels.status` reported it (empty when it was not asked).
    pub reports: Vec<ChannelStatus>,
}

/// One look at the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayObservation {
    pub health: GatewayHealth,
    pub access: ControllerAccess,
    /// Pending pairing requests (empty unless [`ControllerAccess::Paired`]).
    pub pending: Vec<PendingRequest>,
    /// The channel accounts using DM pairing and strangers' pending DM requests
    /// (`channels.pairing.list`); `None` when not read.
    #[serde(default)]
    pub channel_pairing: Option<ChannelPairingList>,
    pub config: LiveConfig,
    /// Which proxy token the gateway's secret store holds.
    #[serde(default)]
    pub proxy_token: StoredProxyToken,
    /// The managed channels.
    #[serde(default)]
    pub channels: ChannelsObservation,
    pub at: DateTime<Utc>,
}

impl GatewayObservation {
    /// A gateway that answered nothing.
    pub fn unreachable(message: String, at: DateTime<Utc>) -> Self {
        Self::unhealthy(GatewayHealth::Unreachable(message), at)
    }

    /// A gateway whose health probes failed: nothing else was tried.
    pub fn unhealthy(health: GatewayHealth, at: DateTime<Utc>) -> Self {
        Self {
            health,
            access: ControllerAccess::NotTried,
            pending: Vec::new(),
            channel_pairing: None,
            config: LiveConfig::Unknown,
            proxy_token: StoredProxyToken::Unknown,
            channels: ChannelsObservation::default(),
            at,
        }
    }
}

/// "device NAME (request ID)" for messages.
pub fn device_label(device_name: &Option<String>, request_id: &str) -> String {
    match device_name {
        Some(name) => format!("device {name:?} (request {request_id})"),
        None => format!("request {request_id}"),
    }
}
