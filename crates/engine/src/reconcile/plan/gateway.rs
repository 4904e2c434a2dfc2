//! The gateway side, once the Fly side is converged and the machine runs: look at the gateway,
//! pair the controller's device, deliver channel credentials into its secret store and write or
//! remove the managed channels, put owned config changed out of band back (over the protocol
//! when the gateway hot-applies it), deliver the LLM proxy token into its secret store, and
//! approve devices' pairing requests as the spec's policy says.

use std::time::Duration;

use chrono::{DateTime, Utc};
use openclaws_fly::types::Machine;
use openclaws_gateway::hot_reload::restart_required;
use openclaws_model::conditions::Reason;
use openclaws_model::{ChannelKind, PairingOutcome, PairingPolicy, RunState};

use super::{Action, Plan};
use crate::reconcile::desired::Desired;
use crate::reconcile::world::{
    ControllerAccess, GatewayHealth, GatewayObservation, LiveConfig, Observed, StoredProxyToken,
    REQUEST_TTL,
};

/// How long a freshly started gateway may take to answer before it counts as unreachable
/// (it boots in 10–20 s; a cold image pull takes longer).
pub const GATEWAY_BOOT_GRACE: Duration = Duration::from_secs(180);
/// How soon a booting gateway is looked at again.
pub const GATEWAY_RECHECK_BOOTING: Duration = Duration::from_secs(2);
/// How soon a gateway that should be up but is not is looked at again.
pub const GATEWAY_RECHECK_SETTLED: Duration = Duration::from_secs(15);

/// The gateway's next step, or `None` when there is none (checks off, stopped, or converged).
pub(super) fn plan_gateway(desired: &Desired, observed: &Observed) -> Option<Plan> {
    desired.gateway.as_ref()?;
    if desired.run_state == RunState::Stopped {
        return None;
    }
    let m = observed.machines.iter().find(|m| m.state == "started")?;
    let Some(gw) = &observed.gateway else {
        return Some(Plan {
            look_at_gateway: true,
            ..Plan::default()
        });
    };
    let booting = machine_age(m, observed.observed_at).is_none_or(|age| age < GATEWAY_BOOT_GRACE);
    if let Some(wait) = health_wait(desired, &gw.health, booting) {
        return Some(wait);
    }
    match &gw.access {
        ControllerAccess::Paired => {}
        ControllerAccess::NotPaired { request_id } => {
            return Some(Plan::act(vec![Action::PairController {
                machine_id: m.id.clone(),
                request_id: request_id.clone(),
            }]))
        }
        ControllerAccess::Failed(message) => {
            return Some(Plan::wait(
                Reason::GatewayAccessFailed,
                format!("the controller cannot use the gateway's protocol: {message}"),
                GATEWAY_RECHECK_SETTLED,
            ))
        }
        ControllerAccess::NotTried => return None,
    }
    let mut actions = plan_channels(desired, gw);
    if let LiveConfig::Drifted(paths) = &gw.config {
        let repair = repair_config(m, paths);
        if matches!(repair, Action::RestartMachine { .. }) {
            return Some(Plan::act(vec![repair]));
        }
        actions.push(repair);
        return Some(Plan::act(actions));
    }
    actions.extend(deliver_proxy_token(desired, gw));
    if !desired.pairing_followed {
        actions.extend(plan_pairing(desired, observed, gw));
    }
    (!actions.is_empty()).then(|| Plan::act(actions))
}

/// The managed channels: each credential whose marker in the gateway's store is not the current
/// value's fingerprint is delivered first (so a channel never starts with a ref to a missing
/// entry), then the owned fields that differ are written, and every channel the controller
/// managed but the spec no longer names is removed. Nothing is planned while the store could not
/// be listed.
pub fn plan_channels(desired: &Desired, gw: &GatewayObservation) -> Vec<Action> {
    let Some(markers) = &gw.channels.markers else {
        return Vec::new();
    };
    let mut actions: Vec<Action> = desired
        .channels
        .secrets()
        .into_iter()
        .filter_map(|secret| {
            let want = desired.secrets.channel_secret_fingerprint(secret)?;
            (markers.get(secret.marker_name()).map(String::as_str) != Some(want)).then(|| {
                Action::DeliverChannelSecret {
                    secret,
                    fingerprint: want.to_owned(),
                }
            })
        })
        .collect();
    if !gw.channels.drift.is_empty() {
        actions.push(Action::ConfigureChannels {
            paths: gw.channels.drift.clone(),
        });
    }
    for channel in ChannelKind::ALL {
        let ours = channel
            .secrets()
            .iter()
            .any(|s| markers.contains_key(s.marker_name()));
        if ours && desired.channels.get(channel).is_none() {
            actions.push(Action::RemoveChannel { channel });
        }
    }
    actions
}

/// Owned fields changed out of band: put back over the protocol when the gateway hot-applies
/// every one of them, else by a restart (whose boot step restores them).
fn repair_config(m: &Machine, paths: &[String]) -> Action {
    if restart_required(paths) {
        Action::RestartMachine {
            id: m.id.clone(),
            paths: paths.to_vec(),
        }
    } else {
        Action::PatchGatewayConfig {
            paths: paths.to_vec(),
        }
    }
}

/// The current proxy token, when the gateway's secret store is known to hold another one (or
/// none): delivered over the protocol, no restart.
fn deliver_proxy_token(desired: &Desired, gw: &GatewayObservation) -> Option<Action> {
    let want = desired.secrets.proxy_token_fingerprint()?;
    match &gw.proxy_token {
        StoredProxyToken::Unknown => None,
        StoredProxyToken::Fingerprint(have) if have == want => None,
        _ => Some(Action::DeliverProxyToken {
            fingerprint: want.to_owned(),
        }),
    }
}

/// A wait for a gateway that is not healthy: soon while it may still be booting, later once it
/// should be up.
fn health_wait(desired: &Desired, health: &GatewayHealth, booting: bool) -> Option<Plan> {
    let (reason, message, after) = match health {
        GatewayHealth::Healthy => return None,
        GatewayHealth::Starting(message) => (
            Reason::GatewayStarting,
            format!("the gateway is starting: {message}"),
            GATEWAY_RECHECK_BOOTING,
        ),
        GatewayHealth::NotReady(message) => (
            Reason::GatewayNotReady,
            message.clone(),
            GATEWAY_RECHECK_BOOTING,
        ),
        GatewayHealth::ProxyAttributionRequired => (
            Reason::TrustedProxyMisconfigured,
            "the gateway refuses requests through the proxy (403 proxy_attribution_required): \
             gateway.trustedProxies does not cover the proxy's source address; set \
             OPENCLAWS_GATEWAY_TRUSTED_PROXIES"
                .to_owned(),
            GATEWAY_RECHECK_SETTLED,
        ),
        GatewayHealth::Unreachable(message) if booting => (
            Reason::GatewayStarting,
            format!("the gateway does not answer yet: {message}"),
            GATEWAY_RECHECK_BOOTING,
        ),
        GatewayHealth::Unreachable(message) => (
            Reason::GatewayUnreachable,
            format!(
                "the gateway does not answer through {}: {message}",
                desired.endpoint
            ),
            GATEWAY_RECHECK_SETTLED,
        ),
    };
    Some(Plan::wait(reason, message, after))
}

fn machine_age(m: &Machine, now: Option<DateTime<Utc>>) -> Option<Duration> {
    let since = DateTime::parse_from_rfc3339(&m.updated_at).ok()?;
    (now? - since.with_timezone(&Utc)).to_std().ok()
}

/// Approvals: every pending request under `auto`; under `manual`, each recorded approval not
/// yet carried out (a named request, or the newest pending one); then the DM pairing
/// decisions ([`super::dm_pairing`]). Also what a pairing subscription does with each list of
/// pending requests it sees.
pub fn plan_pairing(
    desired: &Desired,
    observed: &Observed,
    gw: &GatewayObservation,
) -> Vec<Action> {
    let mut actions = plan_device_pairing(desired, observed, gw);
    actions.extend(super::dm_pairing::plan_dm_pairing(desired, observed, gw));
    actions
}

fn plan_device_pairing(
    desired: &Desired,
    observed: &Observed,
    gw: &GatewayObservation,
) -> Vec<Action> {
    match desired.pairing.policy {
        PairingPolicy::Auto => gw
            .pending
            .iter()
            .map(|p| Action::ApprovePairing {
                request_id: p.request_id.clone(),
                approval_id: None,
                device_name: p.display_name.clone(),
            })
            .collect(),
        PairingPolicy::Manual => plan_manual_approvals(desired, observed, gw),
    }
}

fn plan_manual_approvals(
    desired: &Desired,
    observed: &Observed,
    gw: &GatewayObservation,
) -> Vec<Action> {
    let done = |key: &str| {
        observed
            .pairing_history
            .iter()
            .any(|r| r.approval_id.as_deref() == Some(key) && r.result != PairingOutcome::Failed)
    };
    let mut chosen: Vec<&str> = Vec::new();
    let mut actions = Vec::new();
    for approval in &desired.pairing.approvals {
        let key = approval.key();
        if done(&key) {
            continue;
        }
        let target = match &approval.request_id {
            Some(id) => gw.pending.iter().find(|p| &p.request_id == id),
            None => gw
                .pending
                .iter()
                .filter(|p| !chosen.contains(&p.request_id.as_str()))
                .max_by_key(|p| p.ts),
        };
        match (target, &approval.request_id) {
            (Some(p), _) => {
                chosen.push(&p.request_id);
                actions.push(Action::ApprovePairing {
                    request_id: p.request_id.clone(),
                    approval_id: Some(key),
                    device_name: p.display_name.clone(),
                });
            }
            (None, Some(id)) => actions.push(Action::ExpireApproval {
                approval_id: key,
                request_id: Some(id.clone()),
                message: format!(
                    "request {id} is not pending: it expired (requests last 5 minutes) or was already handled; ask the device to connect again"
                ),
            }),
            (None, None) if waited_out(approval.requested_at, observed.observed_at) => {
                actions.push(Action::ExpireApproval {
                    approval_id: key,
                    request_id: None,
                    message: "no pairing request was pending within 5 minutes of the approval"
                        .to_owned(),
                })
            }
            (None, None) => {}
        }
    }
    actions
}

/// Whether a "latest" approval recorded at `asked` has waited a request's lifetime for a
/// request to approve.
fn waited_out(asked: Option<DateTime<Utc>>, now: Option<DateTime<Utc>>) -> bool {
    asked
        .zip(now)
        .is_none_or(|(asked, now)| (now - asked).to_std().unwrap_or_default() >= REQUEST_TTL)
}
