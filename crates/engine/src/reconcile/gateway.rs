//! The gateway itself, seen the way a customer's device sees it: through the public path.
//!
//! A look ([`look`]) probes `/startupz` and `/readyz`, connects over the WebSocket protocol with
//! the controller's own device identity for this instance, lists pairing requests and reads the
//! live config's owned fields. What to do about it is decided by the pure planner
//! ([`super::plan`]); the gateway-side actions are carried out here ([`execute`]).
//!
//! The controller's device is paired once: its first connect leaves a pending request, which a
//! single Fly exec of `openclaw devices approve <requestId>` inside the machine approves (a
//! loopback caller there is trusted). Everything after that goes over the WebSocket: approvals,
//! owned config put back with `config.patch` when the gateway hot-applies it, and the LLM proxy
//! token delivered into the gateway's secret store (`docs/hot-reload.md`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

use openclaws_fly::FlyClient;
use openclaws_gateway::bundle::{parse_boot_notices, BOOT_NOTICES_PATH};
use openclaws_gateway::channels;
use openclaws_gateway::client::{ChannelPairingTarget, ClientError, ConnectOptions, GatewayClient};
use openclaws_gateway::config::drifted_paths;
use openclaws_gateway::health::{HealthClient, HealthError};
use openclaws_gateway::hot_reload::{owned_patch, restart_required};
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::proxy_token::{is_store_ref, STORE_FINGERPRINT_NAME, STORE_NAME};
use openclaws_model::{ChannelKind, ChannelSecret, ChannelStatus, PairingOutcome, PairingResult};
use openclaws_store::events::EventType;
use openclaws_store::status::ControllerEvent;

use super::desired::{Desired, GatewayTarget};
use super::plan::{Action, ChannelPairingStep};
use super::world::{
    device_label, ChannelsObservation, ControllerAccess, GatewayHealth, GatewayObservation,
    LiveConfig, Observed, StoredProxyToken,
};
/// Deadline of each probe and of the WebSocket handshake: a slow gateway is looked at again
/// later rather than holding a worker.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of the one-time pairing exec (the CLI takes a few seconds to start).
const EXEC_TIMEOUT: Duration = Duration::from_secs(45);
/// Deadline of a `config.patch`: the gateway answers once the running process applied the write
/// (its file watcher settles first, a few seconds).
const PATCH_TIMEOUT: Duration = Duration::from_secs(30);
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
    #[error("putting owned config back over the protocol failed: {0}")]
    ConfigPatch(String),
    #[error("delivering the LLM proxy token failed: {0}")]
    ProxyToken(&'static str),
    #[error("configuring the channels failed: {0}")]
    Channels(String),
    #[error(transparent)]
    Fly(#[from] openclaws_fly::FlyError),
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
    let mut health = probe(target).await;
    if health == GatewayHealth::NotReady(WITHHELD.to_owned()) {
        // Through the proxy `/readyz` withholds which checks fail. The likely one is a channel
        // (a refused bot token makes `/readyz` 503), ours or one the customer configured in the
        // Control UI: the channels' own state says so, and the gateway is otherwise up. Judged
        // only for the spec's channels, a customer's own channel held the gateway NotReady and
        // brought a look every 2 s during the boot grace.
        health = match channel_only_failure(target, identity, token).await {
            true => GatewayHealth::Healthy,
            false => health,
        };
    }
    if health != GatewayHealth::Healthy {
        return (GatewayObservation::unhealthy(health, at), None);
    }
    let client = match connect_controller(target, identity, token).await {
        Ok(client) => client,
        Err(ClientError::PairingRequired(p)) => {
            return (
                GatewayObservation {
                    health,
                    access: ControllerAccess::NotPaired {
                        request_id: p.request_id,
                    },
                    pending: Vec::new(),
                    channel_pairing: None,
                    config: LiveConfig::Unknown,
                    proxy_token: StoredProxyToken::Unknown,
                    channels: ChannelsObservation::default(),
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
                    channel_pairing: None,
                    config: LiveConfig::Unknown,
                    proxy_token: StoredProxyToken::Unknown,
                    channels: ChannelsObservation::default(),
                    at,
                },
                None,
            )
        }
    };
    let (pending, channel_pairing, config, listing, channel_status) = tokio::join!(
        client.pair_list(),
        client.channel_pairing_list(),
        client.call("config.get", json!({})),
        client.call("secrets.store.list", json!({})),
        channel_status(&client, desired),
    );
    let (access, pending) = match pending {
        Ok(list) => (ControllerAccess::Paired, list.pending),
        Err(e) => (ControllerAccess::Failed(e.to_string()), Vec::new()),
    };
    let entries = listing
        .ok()
        .map(|l| l["entries"].as_array().cloned().unwrap_or_default());
    let channels = ChannelsObservation {
        drift: match &config {
            Ok(snapshot) => snapshot
                .get("parsed")
                .map(|p| channels::drift(p, &desired.channels))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        markers: entries.as_deref().map(channel_markers),
        reports: channel_status
            .map(|s| reports(&s, desired, at))
            .unwrap_or_default(),
    };
    let config = match config {
        Ok(snapshot) => judge_config(&snapshot, desired),
        Err(_) => LiveConfig::Unknown,
    };
    let proxy_token = match (&entries, desired.secrets.proxy_token()) {
        (Some(entries), Some(_)) => stored_proxy_token(entries),
        _ => StoredProxyToken::Unknown,
    };
    (
        GatewayObservation {
            health,
            access,
            pending,
            channel_pairing: channel_pairing.ok(),
            config,
            proxy_token,
            channels,
            at,
        },
        Some(client),
    )
}

/// Which proxy token the gateway's secret store holds, from `secrets.store.list` (names and
/// metadata only; the marker entry is readable, the token is not).
fn stored_proxy_token(entries: &[Value]) -> StoredProxyToken {
    let named = |name: &str| entries.iter().find(|e| e["name"] == name);
    match (named(STORE_NAME), named(STORE_FINGERPRINT_NAME)) {
        (Some(_), Some(marker)) => marker["value"]
            .as_str()
            .map_or(StoredProxyToken::Missing, |fp| {
                StoredProxyToken::Fingerprint(fp.to_owned())
            }),
        _ => StoredProxyToken::Missing,
    }
}

/// The controller's channel marker entries in a store listing, each with the fingerprint it
/// holds. A marker counts only while the credential entry it describes is there too.
fn channel_markers(entries: &[Value]) -> BTreeMap<String, String> {
    let named = |name: &str| entries.iter().find(|e| e["name"] == name);
    ChannelSecret::ALL
        .into_iter()
        .filter(|s| named(s.store_name()).is_some())
        .filter_map(|s| {
            let fp = named(s.marker_name())?["value"].as_str()?;
            Some((s.marker_name().to_owned(), fp.to_owned()))
        })
        .collect()
}

/// `channels.status` (no probe: the channels' own runtime state), asked only when channels are
/// configured.
async fn channel_status(client: &GatewayClient, desired: &Desired) -> Option<Value> {
    if desired.channels.channels.is_empty() {
        return None;
    }
    match client.call("channels.status", json!({})).await {
        Ok(payload) => Some(payload),
        Err(error) => {
            tracing::info!(%error, "channels.status failed; the channels keep their last state");
            None
        }
    }
}

/// Each configured channel's status from a `channels.status` answer.
fn reports(payload: &Value, desired: &Desired, at: DateTime<Utc>) -> Vec<ChannelStatus> {
    let known = desired.secrets.channel_secret_values();
    desired
        .channels
        .channels
        .iter()
        .map(|c| {
            let r = channels::read_status(payload, c.kind, &known);
            ChannelStatus {
                channel: r.kind,
                state: r.state,
                reason: r.reason,
                message: r.message,
                last_checked_at: Some(at),
            }
        })
        .collect()
}

/// What [`probe`] says of a `/readyz` that is not ready and names no failing check (OpenClaw
/// shows the list only to local or authenticated callers).
const WITHHELD: &str = "/readyz reports failing checks: []";

/// Whether a gateway whose `/readyz` is not ready fails only on channels: connected with the
/// controller's device, `channels.status` shows an account that is not running or not
/// connected (what makes `/readyz` fail) and the gateway answers otherwise.
async fn channel_only_failure(
    target: &GatewayTarget,
    identity: &DeviceIdentity,
    token: &str,
) -> bool {
    let Ok(client) = connect_controller(target, identity, token).await else {
        return false;
    };
    let Ok(payload) = client.call("channels.status", json!({})).await else {
        return false;
    };
    payload["channelAccounts"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(Value::as_array)
        .flatten()
        .any(|a| a["enabled"] != false && (a["running"] != true || a["connected"] == false))
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
        // A failing channel (a bad bot token, a service down) is not the gateway's failure: it
        // shows in the channel's own status.
        Ok(r) if channels::only_channels_failing(&r.failing) => GatewayHealth::Healthy,
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
    let paths = owned_drift(parsed, desired);
    if paths.is_empty() {
        LiveConfig::Matches
    } else {
        LiveConfig::Drifted(paths)
    }
}

/// Owned paths of a parsed config that differ from the desired ones. The gateway token and the
/// proxy token's SecretRef id come back redacted, so only the token's mode and the ref's source
/// and provider are judged.
fn owned_drift(parsed: &Value, desired: &Desired) -> Vec<String> {
    let mut paths = drifted_paths(parsed, &desired.owned);
    paths.retain(|p| match p.as_str() {
        "gateway.auth" => {
            parsed["gateway"]["auth"]["mode"].as_str() != Some("token")
                || !parsed["gateway"]["auth"]["token"].is_string()
        }
        // Ours only while the proxy is in use; afterwards only our own stale ref is removed,
        // never a key of the customer's.
        "models.providers.anthropic.apiKey" => {
            let ours = is_store_ref(&parsed["models"]["providers"]["anthropic"]["apiKey"]);
            ours == desired.owned.anthropic_base_url.is_none()
        }
        _ => true,
    });
    paths
}

/// Opens the controller's connection to the gateway through its public path, with the
/// controller's own device identity and the gateway token: the one way in for a look and for a
/// pairing subscription alike.
pub async fn connect_controller(
    target: &GatewayTarget,
    identity: &DeviceIdentity,
    token: &str,
) -> Result<GatewayClient, ClientError> {
    let mut options = ConnectOptions::controller(target.ws_url(), token);
    options.connect_timeout = LOOK_TIMEOUT;
    options.request_timeout = LOOK_TIMEOUT;
    if let Some(host) = &target.host {
        options.headers.push(("Host".to_owned(), host.clone()));
    }
    GatewayClient::connect(&options, Some(identity)).await
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
    match action {
        Action::PairController {
            machine_id,
            request_id,
        } => {
            pair_controller(fly, &desired.app_name, machine_id, request_id).await?;
            // Look again with the now-paired identity.
            observed.gateway = None;
        }
        Action::ApprovePairing {
            request_id,
            approval_id,
            device_name,
        } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            approve(client, observed, request_id, approval_id, device_name).await?;
        }
        Action::PatchGatewayConfig { .. } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            patch_owned_config(client, desired).await?;
            if let Some(gw) = observed.gateway.as_mut() {
                gw.config = LiveConfig::Matches;
            }
        }
        Action::DeliverProxyToken { fingerprint } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            deliver_proxy_token(client, desired, fingerprint).await?;
            if let Some(gw) = observed.gateway.as_mut() {
                gw.proxy_token = StoredProxyToken::Fingerprint(fingerprint.clone());
            }
        }
        Action::DeliverChannelSecret {
            secret,
            fingerprint,
        } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            deliver_channel_secret(client, desired, *secret, fingerprint).await?;
            if let Some(markers) = channel_markers_mut(observed) {
                markers.insert(secret.marker_name().to_owned(), fingerprint.clone());
            }
            restarting(
                observed,
                secret.channel(),
                "restarts with its new credential",
            );
        }
        Action::ConfigureChannels { paths } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            configure_channels(client, desired).await?;
            if let Some(gw) = observed.gateway.as_mut() {
                gw.channels.drift.clear();
            }
            for kind in ChannelKind::ALL {
                let prefix = format!("channels.{}.", kind.as_str());
                if paths.iter().any(|p| p.starts_with(&prefix)) {
                    restarting(observed, kind, "applies its new settings");
                }
            }
        }
        Action::RemoveChannel { channel } => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            remove_channel(client, *channel).await?;
            if let Some(markers) = channel_markers_mut(observed) {
                for s in channel.secrets() {
                    markers.remove(s.marker_name());
                }
            }
        }
        Action::ExpireApproval {
            approval_id,
            request_id,
            message,
        } => record_expired(observed, approval_id, request_id, message),
        Action::DecideChannelPairing(step) => {
            let client = client.ok_or(GatewayStepError::NotConnected)?;
            decide_channel_pairing(client, observed, step).await?;
        }
        other => {
            return Err(GatewayStepError::Bootstrap(format!(
                "{} is not a gateway step",
                other.step()
            )))
        }
    }
    Ok(())
}

/// Carries out one device approval (or gives up on one) over an open connection and records
/// its outcome in `observed`; what the pairing subscription does with the reconcile's plan.
pub async fn pairing_step(
    client: &GatewayClient,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), GatewayStepError> {
    match action {
        Action::ApprovePairing {
            request_id,
            approval_id,
            device_name,
        } => approve(client, observed, request_id, approval_id, device_name).await,
        Action::ExpireApproval {
            approval_id,
            request_id,
            message,
        } => {
            record_expired(observed, approval_id, request_id, message);
            Ok(())
        }
        Action::DecideChannelPairing(step) => decide_channel_pairing(client, observed, step).await,
        other => Err(GatewayStepError::Bootstrap(format!(
            "{} is not a pairing step",
            other.step()
        ))),
    }
}

/// Approves or dismisses one DM pairing request over the protocol and records the outcome,
/// failed or not, under its decision's id (none under the `auto` DM policy).
async fn decide_channel_pairing(
    client: &GatewayClient,
    observed: &mut Observed,
    step: &ChannelPairingStep,
) -> Result<(), GatewayStepError> {
    let target = ChannelPairingTarget {
        channel: &step.channel,
        account_id: &step.account_id,
        request_id: &step.request_id,
    };
    let sender = step.sender_label();
    let result = match step.approve {
        true => client
            .channel_pairing_approve(&target, step.notify)
            .await
            .map(|a| match a.notification.as_str() {
                "sent" => format!("approved {sender}; told them so on {}", step.channel),
                "not-requested" => format!("approved {sender}"),
                other => format!("approved {sender} (notification {other})"),
            }),
        false => client
            .channel_pairing_dismiss(&target)
            .await
            .map(|_| format!("dismissed the DM pairing request of {sender}")),
    };
    let (outcome, message) = match &result {
        Ok(message) if step.approve => (PairingOutcome::Approved, message.clone()),
        Ok(message) => (PairingOutcome::Dismissed, message.clone()),
        Err(e) => (PairingOutcome::Failed, e.to_string()),
    };
    record(
        observed,
        PairingResult {
            approval_id: step.decision_id.clone(),
            request_id: Some(step.request_id.clone()),
            device_name: None,
            channel: Some(step.channel.clone()),
            sender_id: Some(step.sender_id.clone()),
            result: outcome,
            message,
            at: Utc::now(),
        },
    );
    if let Some(list) = observed
        .gateway
        .as_mut()
        .and_then(|g| g.channel_pairing.as_mut())
    {
        list.requests.retain(|r| r.request_id != step.request_id);
    }
    result?;
    Ok(())
}

/// Records an approval given up on (its request never appeared or went away).
fn record_expired(
    observed: &mut Observed,
    approval_id: &str,
    request_id: &Option<String>,
    message: &str,
) {
    record(
        observed,
        PairingResult {
            approval_id: Some(approval_id.to_owned()),
            request_id: request_id.clone(),
            device_name: None,
            channel: None,
            sender_id: None,
            result: PairingOutcome::Expired,
            message: message.to_owned(),
            at: Utc::now(),
        },
    );
}

/// The Fly exec command that prints the boot step's notices of the machine's last boot and
/// removes them, so each is reported once.
pub fn boot_notices_command() -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!(
            "f=\"${{OPENCLAW_STATE_DIR:-/data}}/{BOOT_NOTICES_PATH}\"; if [ -f \"$f\" ]; then cat \"$f\" && rm -f \"$f\"; fi"
        ),
    ]
}

/// The boot step's notices of the machine's last boot (`docs/failure-modes.md`), read and
/// removed with one Fly exec, as warning events; none when there are none or the exec fails
/// (they are a report, never a reason to fail the reconcile).
pub async fn take_boot_notices(
    fly: &FlyClient,
    app: &str,
    machine_id: &str,
) -> Vec<ControllerEvent> {
    let out = match fly
        .exec_machine(app, machine_id, boot_notices_command(), EXEC_TIMEOUT)
        .await
    {
        Ok(out) if out.exit_code == 0 => out,
        Ok(out) => {
            tracing::debug!(exit_code = out.exit_code, "reading the boot notices failed");
            return Vec::new();
        }
        Err(error) => {
            tracing::debug!(%error, "reading the boot notices failed");
            return Vec::new();
        }
    };
    parse_boot_notices(&out.stdout)
        .into_iter()
        .map(|n| ControllerEvent {
            type_: EventType::Warning,
            reason: n.reason.to_owned(),
            message: format!("machine {machine_id}: {}", n.message),
        })
        .collect()
}

/// Approves one pairing request over the protocol and records the outcome, failed or not.
async fn approve(
    client: &GatewayClient,
    observed: &mut Observed,
    request_id: &str,
    approval_id: &Option<String>,
    device_name: &Option<String>,
) -> Result<(), GatewayStepError> {
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
            request_id: Some(request_id.to_owned()),
            device_name: device_name.clone(),
            channel: None,
            sender_id: None,
            result: outcome,
            message,
            at: Utc::now(),
        },
    );
    if let Some(gw) = observed.gateway.as_mut() {
        gw.pending.retain(|p| p.request_id != request_id);
    }
    result?;
    Ok(())
}

/// Puts the owned fields back with one `config.patch` against the config just read (its hash
/// guards against a concurrent write): only the paths that still differ, and only when the
/// gateway hot-applies all of them (else the next look plans a restart). The gateway answers
/// once the running process has applied the write.
async fn patch_owned_config(
    client: &GatewayClient,
    desired: &Desired,
) -> Result<(), GatewayStepError> {
    let snapshot = client.call("config.get", json!({})).await?;
    let (Some(parsed), Some(hash)) = (
        snapshot.get("parsed").filter(|p| p.is_object()),
        snapshot.get("hash").and_then(Value::as_str),
    ) else {
        return Err(GatewayStepError::ConfigPatch(
            "config.get returned no parsed config or hash".to_owned(),
        ));
    };
    let paths = owned_drift(parsed, desired);
    if paths.is_empty() {
        return Ok(());
    }
    if restart_required(&paths) {
        return Err(GatewayStepError::ConfigPatch(format!(
            "{} changed meanwhile and needs a restart",
            paths.join(", ")
        )));
    }
    let params = owned_patch(parsed, &desired.owned, &paths, hash);
    client
        .call_within("config.patch", params, PATCH_TIMEOUT)
        .await?;
    Ok(())
}

/// Writes the proxy token into the gateway's secret store, then the marker saying which token
/// it is. A crash between the two leaves the old marker, so the next look delivers again. The
/// gateway's error text is not passed on: it could quote what it was given.
async fn deliver_proxy_token(
    client: &GatewayClient,
    desired: &Desired,
    fingerprint: &str,
) -> Result<(), GatewayStepError> {
    let token = desired
        .secrets
        .proxy_token()
        .filter(|_| desired.secrets.proxy_token_fingerprint() == Some(fingerprint))
        .ok_or_else(|| GatewayStepError::ProxyToken("the planned token is not the current one"))?;
    let set = |name: &str, value: &str, kind: &str| {
        client.call_within(
            "secrets.store.set",
            json!({"name": name, "value": value, "kind": kind}),
            PATCH_TIMEOUT,
        )
    };
    set(STORE_NAME, token, "secret")
        .await
        .map_err(|e| GatewayStepError::ProxyToken(client_failure(&e)))?;
    set(STORE_FINGERPRINT_NAME, fingerprint, "env").await?;
    Ok(())
}

/// What went wrong with a call, without anything the gateway said.
fn client_failure(e: &ClientError) -> &'static str {
    match e {
        ClientError::Timeout { .. } => "secrets.store.set timed out",
        ClientError::Rejected { .. } => "the gateway refused secrets.store.set",
        _ => "the connection failed during secrets.store.set",
    }
}

/// After a step changed a channel's credential or settings, the look's report of it is from
/// before: until the next look, the channel counts as starting (`Pending`), which brings that
/// look within seconds (`super::schedule`).
fn restarting(observed: &mut Observed, kind: ChannelKind, what: &str) {
    let Some(gw) = observed.gateway.as_mut() else {
        return;
    };
    let reports = &mut gw.channels.reports;
    let last_checked_at = reports
        .iter()
        .find(|r| r.channel == kind)
        .and_then(|r| r.last_checked_at);
    reports.retain(|r| r.channel != kind);
    reports.push(ChannelStatus {
        channel: kind,
        state: openclaws_model::ChannelState::Pending,
        reason: openclaws_model::conditions::Reason::Pending,
        message: format!("{} {what}", kind.as_str()),
        last_checked_at,
    });
}

fn channel_markers_mut(observed: &mut Observed) -> Option<&mut BTreeMap<String, String>> {
    observed.gateway.as_mut()?.channels.markers.as_mut()
}

/// Writes a channel credential into the gateway's secret store, then the marker saying which
/// value it is (as for the proxy token: a crash between the two leaves the old marker, so the
/// next look delivers again). The gateway re-resolves the refs that use the entry and restarts
/// the channel with the new value. Its error text is not passed on: it could quote the value.
async fn deliver_channel_secret(
    client: &GatewayClient,
    desired: &Desired,
    secret: ChannelSecret,
    fingerprint: &str,
) -> Result<(), GatewayStepError> {
    let value = desired
        .secrets
        .channel_secret(secret)
        .filter(|_| desired.secrets.channel_secret_fingerprint(secret) == Some(fingerprint))
        .ok_or_else(|| {
            GatewayStepError::Channels("the planned credential is not the current one".to_owned())
        })?;
    let set = |name: &str, value: &str, kind: &str| {
        client.call_within(
            "secrets.store.set",
            json!({"name": name, "value": value, "kind": kind}),
            PATCH_TIMEOUT,
        )
    };
    set(secret.store_name(), value, "secret")
        .await
        .map_err(|e| GatewayStepError::Channels(client_failure(&e).to_owned()))?;
    set(secret.marker_name(), fingerprint, "env").await?;
    Ok(())
}

/// Reads the config and writes the managed channels' owned fields that differ with one
/// `config.patch` guarded by the config's hash.
async fn configure_channels(
    client: &GatewayClient,
    desired: &Desired,
) -> Result<(), GatewayStepError> {
    let (parsed, hash) = read_config(client).await?;
    let paths = channels::drift(&parsed, &desired.channels);
    if paths.is_empty() {
        return Ok(());
    }
    let params = channels::patch(&desired.channels, &paths, &hash);
    client
        .call_within("config.patch", params, PATCH_TIMEOUT)
        .await?;
    Ok(())
}

/// Removes a channel the controller managed: its whole config first (so nothing refers to the
/// entries any more), then its credentials, each marker last (a crash leaves a marker, so the
/// next look removes again).
async fn remove_channel(
    client: &GatewayClient,
    channel: ChannelKind,
) -> Result<(), GatewayStepError> {
    let (parsed, hash) = read_config(client).await?;
    if parsed["channels"].get(channel.as_str()).is_some() {
        let params = channels::removal_patch(&[channel], &hash);
        client
            .call_within("config.patch", params, PATCH_TIMEOUT)
            .await?;
    }
    for secret in channel.secrets() {
        for name in [secret.store_name(), secret.marker_name()] {
            // Deleting an entry that is not there succeeds (OpenClaw marks rows deleted).
            client
                .call_within("secrets.store.delete", json!({"name": name}), PATCH_TIMEOUT)
                .await?;
        }
    }
    Ok(())
}

/// `config.get`'s parsed config and its hash.
async fn read_config(client: &GatewayClient) -> Result<(Value, String), GatewayStepError> {
    let snapshot = client.call("config.get", json!({})).await?;
    match (
        snapshot.get("parsed").filter(|p| p.is_object()),
        snapshot.get("hash").and_then(Value::as_str),
    ) {
        (Some(parsed), Some(hash)) => Ok((parsed.clone(), hash.to_owned())),
        _ => Err(GatewayStepError::Channels(
            "config.get returned no parsed config or hash".to_owned(),
        )),
    }
}

/// The one-time Fly exec that approves the controller's own pending request from inside the
/// machine.
async fn pair_controller(
    fly: &FlyClient,
    app: &str,
    machine_id: &str,
    request_id: &str,
) -> Result<(), GatewayStepError> {
    let out = fly
        .exec_machine(app, machine_id, bootstrap_command(request_id), EXEC_TIMEOUT)
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
    Ok(())
}

fn record(observed: &mut Observed, result: PairingResult) {
    observed.pairing_history.insert(0, result);
    observed.pairing_history.truncate(RECENT_RESULTS);
}
