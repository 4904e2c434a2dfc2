//! The gateway itself, seen the way a customer's device sees it: through the public path.
//!
//! A look ([`look`]) probes `/startupz` and `/readyz`, connects over the WebSocket protocol with
//! the controller's own device identity for this instance, lists pairing requests and reads the
//! live config's owned fields. What to do about it is decided by the pure planner
//! ([`super::plan`]); the gateway-side actions are carried out here ([`execute`]).
//!
//! The controller's device is paired once: its first connect leaves a pending request, which a
//! single Fly exec of `openclaw devices approve <requestId>` inside the machine approves (a
//! loopback caller there is trusted). Everything after that goes over the WebSocket.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

use openclaws_fly::FlyClient;
use openclaws_gateway::client::{ClientError, ConnectOptions, GatewayClient};
use openclaws_gateway::config::drifted_paths;
use openclaws_gateway::health::{HealthClient, HealthError};
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::protocol::PendingRequest;
use openclaws_model::{PairingOutcome, PairingResult};

use super::desired::{Desired, GatewayTarget};
use super::observe::Observed;
use super::plan::Action;

/// Name of the stored secret holding the controller's device key for one instance.
pub const CONTROLLER_DEVICE_SECRET: &str = "CONTROLLER_DEVICE_KEY";
/// Pairing requests expire this long after they are made.
pub const REQUEST_TTL: Duration = Duration::from_secs(300);
/// Deadline of each probe and of the WebSocket handshake: a slow gateway is looked at again
/// later rather than holding a worker.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of the one-time pairing exec (the CLI takes a few seconds to start).
const EXEC_TIMEOUT: Duration = Duration::from_secs(45);
/// How many pairing results the status keeps.
pub const RECENT_RESULTS: usize = 20;

/// Errors of gateway-side steps (never carrying a token).
#[derive(Debug, thiserror::Error)]
pub enum GatewayStepError {
    #[error("no connection to the gateway is open")]
    NotConnected,
    #[error("the gateway refused: {0}")]
    Client(#[from] ClientError),
    #[error("pairing the controller's device failed: {0}")]
    Bootstrap(String),
    #[error(transparent)]
    Fly(#[from] openclaws_fly::FlyError),
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

/// One look at the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayObservation {
    pub health: GatewayHealth,
    pub access: ControllerAccess,
    /// Pending pairing requests (empty unless [`ControllerAccess::Paired`]).
    pub pending: Vec<PendingRequest>,
    pub config: LiveConfig,
    pub at: DateTime<Utc>,
}

impl GatewayObservation {
    /// A gateway that answered nothing.
    pub fn unreachable(message: String, at: DateTime<Utc>) -> Self {
        Self {
            health: GatewayHealth::Unreachable(message),
            access: ControllerAccess::NotTried,
            pending: Vec::new(),
            config: LiveConfig::Unknown,
            at,
        }
    }
}

/// Looks at the gateway: health first, then (when healthy) the controller's connection,
/// pairing requests and config. Returns the open connection for the actions that follow.
pub async fn look(
    target: &GatewayTarget,
    desired: &Desired,
    identity: &DeviceIdentity,
    token: &str,
) -> (GatewayObservation, Option<GatewayClient>) {
    let at = Utc::now();
    let health = probe(target).await;
    if health != GatewayHealth::Healthy {
        return (
            GatewayObservation {
                health,
                access: ControllerAccess::NotTried,
                pending: Vec::new(),
                config: LiveConfig::Unknown,
                at,
            },
            None,
        );
    }
    let mut options = ConnectOptions::controller(target.ws_url(), token);
    options.connect_timeout = LOOK_TIMEOUT;
    options.request_timeout = LOOK_TIMEOUT;
    if let Some(host) = &target.host {
        options.headers.push(("Host".to_owned(), host.clone()));
    }
    let client = match GatewayClient::connect(&options, Some(identity)).await {
        Ok(client) => client,
        Err(ClientError::PairingRequired(p)) => {
            return (
                GatewayObservation {
                    health,
                    access: ControllerAccess::NotPaired {
                        request_id: p.request_id,
                    },
                    pending: Vec::new(),
                    config: LiveConfig::Unknown,
                    at,
                },
                None,
            )
        }
        Err(e) => {
            return (
                GatewayObservation {
                    health,
                    access: ControllerAccess::Failed(e.to_string()),
                    pending: Vec::new(),
                    config: LiveConfig::Unknown,
                    at,
                },
                None,
            )
        }
    };
    let (pending, config) = tokio::join!(client.pair_list(), client.call("config.get", json!({})));
    let (access, pending) = match pending {
        Ok(list) => (ControllerAccess::Paired, list.pending),
        Err(e) => (ControllerAccess::Failed(e.to_string()), Vec::new()),
    };
    let config = match config {
        Ok(snapshot) => judge_config(&snapshot, desired),
        Err(_) => LiveConfig::Unknown,
    };
    (
        GatewayObservation {
            health,
            access,
            pending,
            config,
            at,
        },
        Some(client),
    )
}

/// One HTTP client for every probe (its connection pool is shared across gateways); the
/// per-request timeout bounds a slow gateway.
static PROBE_HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(LOOK_TIMEOUT)
        .build()
        .expect("a TLS backend is compiled in")
});

async fn probe(target: &GatewayTarget) -> GatewayHealth {
    let client = HealthClient::with_http(PROBE_HTTP.clone(), target.base.clone())
        .with_host(target.host.clone());
    let failure = |e: HealthError| match e {
        HealthError::ProxyAttributionRequired => GatewayHealth::ProxyAttributionRequired,
        other => GatewayHealth::Unreachable(other.to_string()),
    };
    match client.startupz().await {
        Ok(s) if !s.started() => {
            return GatewayHealth::Starting(format!("/startupz says {}", s.status))
        }
        Ok(_) => {}
        Err(e) => return failure(e),
    }
    match client.readyz().await {
        Ok(r) if r.ready => GatewayHealth::Healthy,
        Ok(r) => GatewayHealth::NotReady(format!(
            "/readyz reports failing checks: {}",
            Value::Array(r.failing)
        )),
        Err(e) => failure(e),
    }
}

/// Compares the owned fields of a `config.get` answer with the desired ones. The token field
/// comes back redacted, so only its mode is judged.
fn judge_config(snapshot: &Value, desired: &Desired) -> LiveConfig {
    if snapshot.get("valid").and_then(Value::as_bool) == Some(false) {
        return LiveConfig::Invalid(
            "the gateway reports openclaw.json as invalid; it is left for the customer to fix"
                .to_owned(),
        );
    }
    let Some(parsed) = snapshot.get("parsed").filter(|p| p.is_object()) else {
        return LiveConfig::Unknown;
    };
    let mut paths = drifted_paths(parsed, &desired.owned);
    paths.retain(|p| {
        p != "gateway.auth"
            || parsed["gateway"]["auth"]["mode"].as_str() != Some("token")
            || !parsed["gateway"]["auth"]["token"].is_string()
    });
    if paths.is_empty() {
        LiveConfig::Matches
    } else {
        LiveConfig::Drifted(paths)
    }
}

/// Loads the controller's device identity for an instance, creating and storing it (encrypted)
/// the first time.
pub async fn controller_identity(
    pool: &sqlx::PgPool,
    cipher: &openclaws_model::secrets::SecretCipher,
    uid: uuid::Uuid,
) -> Result<DeviceIdentity, openclaws_store::secrets::SecretStoreError> {
    use base64::Engine;
    use openclaws_store::secrets as stored;
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(text) = stored::get_plaintext(pool, cipher, uid, CONTROLLER_DEVICE_SECRET).await? {
        if let Some(identity) = engine
            .decode(text.trim())
            .ok()
            .and_then(|bytes| DeviceIdentity::from_secret_bytes(&bytes).ok())
        {
            return Ok(identity);
        }
    }
    let identity = DeviceIdentity::generate();
    stored::put(
        pool,
        cipher,
        uid,
        CONTROLLER_DEVICE_SECRET,
        &engine.encode(identity.to_secret_bytes()),
        Utc::now(),
    )
    .await?;
    Ok(identity)
}

/// The one-time exec that approves the controller's own request from inside the machine: the
/// gateway's CLI on loopback with the machine's token.
pub fn bootstrap_command(request_id: &str) -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "exec node \"${OPENCLAWS_GATEWAY_ENTRY:-/app/dist/index.js}\" devices approve \"$1\" --json"
            .to_owned(),
        "openclaws-pair".to_owned(),
        request_id.to_owned(),
    ]
}

/// Runs one gateway-side action and records its effect in `observed`.
pub async fn execute(
    fly: &FlyClient,
    client: Option<&GatewayClient>,
    desired: &Desired,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), GatewayStepError> {
    let now = Utc::now();
    match action {
        Action::PairController {
            machine_id,
            request_id,
        } => {
            let out = fly
                .exec_machine(
                    &desired.app_name,
                    machine_id,
                    bootstrap_command(request_id),
                    EXEC_TIMEOUT,
                )
                .await?;
            if out.exit_code != 0 {
                // Only stderr: stdout of an approval can carry the issued device token.
                let said: String = out.stderr.trim().chars().take(300).collect();
                return Err(GatewayStepError::Bootstrap(format!(
                    "`openclaw devices approve` exited {}: {}",
                    out.exit_code,
                    said.trim()
                )));
            }
            // Look again with the now-paired identity.
            observed.gateway = None;
        }
        Action::ApprovePairing {
            request_id,
            approval_id,
            device_name,
        } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            let result = client.pair_approve(request_id).await;
            let (outcome, message) = match &result {
                Ok(_) => (
                    PairingOutcome::Approved,
                    format!("approved {}", device_label(device_name, request_id)),
                ),
                Err(e) => (PairingOutcome::Failed, e.to_string()),
            };
            record(
                observed,
                PairingResult {
                    approval_id: approval_id.clone(),
                    request_id: Some(request_id.clone()),
                    device_name: device_name.clone(),
                    result: outcome,
                    message,
                    at: now,
                },
            );
            if let Some(gw) = observed.gateway.as_mut() {
                gw.pending.retain(|p| &p.request_id != request_id);
            }
            result?;
        }
        Action::ExpireApproval {
            approval_id,
            request_id,
            message,
        } => record(
            observed,
            PairingResult {
                approval_id: Some(approval_id.clone()),
                request_id: request_id.clone(),
                device_name: None,
                result: PairingOutcome::Expired,
                message: message.clone(),
                at: now,
            },
        ),
        other => {
            return Err(GatewayStepError::Bootstrap(format!(
                "{} is not a gateway step",
                other.step()
            )))
        }
    }
    Ok(())
}

fn record(observed: &mut Observed, result: PairingResult) {
    observed.pairing_history.insert(0, result);
    observed.pairing_history.truncate(RECENT_RESULTS);
}

/// "device NAME (request ID)" for messages.
pub fn device_label(device_name: &Option<String>, request_id: &str) -> String {
    match device_name {
        Some(name) => format!("device {name:?} (request {request_id})"),
        None => format!("request {request_id}"),
    }
}
