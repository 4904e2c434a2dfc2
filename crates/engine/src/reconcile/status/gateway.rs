//! The gateway's conditions (`GatewayHealthy`, `ConfigSeeded`, `PairingReady`) from the last
//! look at it, or from why it was not looked at; and `status.pairing`.

use chrono::{DateTime, Utc};

use openclaws_fly::types::Machine;
use openclaws_gateway::bundle::BUNDLE_HASH_METADATA_KEY;
use openclaws_gateway::protocol::ChannelPairingList;
use openclaws_model::conditions::{ConditionType, Reason};
use openclaws_model::{
    ConditionStatus, InstanceStatus, PairingOutcome, PairingStatus, PendingChannelPairing,
    PendingPairing, RunState,
};

use super::Conditions;
use crate::reconcile::desired::Desired;
use crate::reconcile::world::{
    device_label, ControllerAccess, GatewayHealth, GatewayObservation, LiveConfig, Observed,
    DM_REQUEST_TTL, REQUEST_TTL,
};

/// One condition as (ok, reason, message).
type Parts = (bool, Reason, String);

/// Sets the gateway's conditions.
pub(super) fn judge(
    desired: &Desired,
    observed: &Observed,
    keeper: Option<&Machine>,
    conditions: &mut Conditions<'_>,
) {
    let wanted_bundle = desired.machine.metadata.get(BUNDLE_HASH_METADATA_KEY);
    let delivered = keeper
        .and_then(|m| m.config.as_ref())
        .is_some_and(|c| c.metadata.get(BUNDLE_HASH_METADATA_KEY) == wanted_bundle);
    match observed.gateway.as_ref() {
        Some(gw) => looked_at(desired, observed, gw, delivered, conditions),
        None => not_looked_at(desired, keeper, delivered, conditions),
    }
}

/// Without a look in this reconcile: why the gateway cannot run, or (when it runs) what the
/// last look said.
fn not_looked_at(
    desired: &Desired,
    keeper: Option<&Machine>,
    delivered: bool,
    conditions: &mut Conditions<'_>,
) {
    let (reason, message) = match keeper {
        _ if desired.run_state == RunState::Stopped => (
            Reason::MachineStopped,
            "the machine is stopped (runState: stopped): no gateway runs, and no device can pair"
                .to_owned(),
        ),
        Some(m) if m.state != "started" => (
            if matches!(m.state.as_str(), "stopped" | "suspended") {
                Reason::MachineStopped
            } else {
                Reason::MachineNotRunning
            },
            format!(
                "machine {} is {}: the gateway is not running",
                m.id, m.state
            ),
        ),
        None => (
            Reason::MachineNotRunning,
            "no gateway machine yet".to_owned(),
        ),
        Some(_) => return keep_last_look(conditions),
    };
    conditions.set(
        ConditionType::GatewayHealthy,
        false,
        reason,
        message.clone(),
    );
    let (seeded, seeded_reason, seeded_message) = bundle_condition(delivered);
    conditions.set(
        ConditionType::ConfigSeeded,
        seeded,
        seeded_reason,
        seeded_message,
    );
    conditions.set(ConditionType::PairingReady, false, reason, message);
}

/// Running but not looked at in this reconcile: what the last look said stands.
fn keep_last_look(conditions: &mut Conditions<'_>) {
    let before = conditions.previous;
    let mut kept = false;
    for type_ in [
        ConditionType::GatewayHealthy,
        ConditionType::ConfigSeeded,
        ConditionType::PairingReady,
    ] {
        if let Some(c) = before.condition(type_) {
            let ok = c.status == ConditionStatus::True;
            conditions.set(type_, ok, c.reason, c.message.clone());
            kept = true;
        }
    }
    if !kept {
        conditions.set(
            ConditionType::GatewayHealthy,
            false,
            Reason::NotChecked,
            "the gateway has not been looked at yet".to_owned(),
        );
    }
}

/// `ConfigSeeded` from the machine alone: whether it carries the desired boot bundle.
fn bundle_condition(delivered: bool) -> Parts {
    if delivered {
        (
            true,
            Reason::BundleDelivered,
            "the machine carries the desired boot bundle; it is applied at every start".to_owned(),
        )
    } else {
        (
            false,
            Reason::MachineUpdatePending,
            "the machine does not carry the desired boot bundle yet".to_owned(),
        )
    }
}

fn looked_at(
    desired: &Desired,
    observed: &Observed,
    gw: &GatewayObservation,
    delivered: bool,
    conditions: &mut Conditions<'_>,
) {
    let health = health(desired, &gw.health);
    conditions.set(
        ConditionType::GatewayHealthy,
        health.0,
        health.1,
        health.2.clone(),
    );
    let (ok, reason, message) = live_config(&gw.config, delivered);
    conditions.set(ConditionType::ConfigSeeded, ok, reason, message);
    let (ok, reason, message) = if gw.health == GatewayHealth::Healthy {
        pairing(observed, gw)
    } else {
        (
            false,
            Reason::GatewayUnreachable,
            format!("pairing needs a healthy gateway: {}", health.2),
        )
    };
    conditions.set(ConditionType::PairingReady, ok, reason, message);
}

fn health(desired: &Desired, health: &GatewayHealth) -> Parts {
    match health {
        GatewayHealth::Healthy => (
            true,
            Reason::Ready,
            format!("the gateway answers at {}", desired.endpoint),
        ),
        GatewayHealth::Starting(m) => (false, Reason::GatewayStarting, m.clone()),
        GatewayHealth::NotReady(m) => (false, Reason::GatewayNotReady, m.clone()),
        GatewayHealth::ProxyAttributionRequired => (
            false,
            Reason::TrustedProxyMisconfigured,
            "403 proxy_attribution_required: gateway.trustedProxies does not cover the proxy's source address".to_owned(),
        ),
        GatewayHealth::Unreachable(m) => (false, Reason::GatewayUnreachable, m.clone()),
    }
}

fn live_config(config: &LiveConfig, delivered: bool) -> Parts {
    if !delivered {
        return bundle_condition(false);
    }
    match config {
        LiveConfig::Matches => (
            true,
            Reason::Seeded,
            "openclaw.json holds the desired owned fields; the customer's own keys are left alone"
                .to_owned(),
        ),
        LiveConfig::Drifted(paths) => (
            false,
            Reason::OwnedFieldsDrifted,
            format!(
                "owned fields changed out of band: {}; restarting the machine puts them back",
                paths.join(", ")
            ),
        ),
        LiveConfig::Invalid(m) => (false, Reason::ConfigInvalid, m.clone()),
        LiveConfig::Unknown => (
            true,
            Reason::BundleDelivered,
            "the machine carries the desired boot bundle; the live config was not read".to_owned(),
        ),
    }
}

/// `PairingReady` of a healthy gateway.
pub(super) fn pairing(observed: &Observed, gw: &GatewayObservation) -> Parts {
    match &gw.access {
        ControllerAccess::Paired => {}
        ControllerAccess::NotPaired { request_id } => {
            return (
                false,
                Reason::ControllerNotPaired,
                format!("the controller's own device is not paired yet (request {request_id})"),
            )
        }
        ControllerAccess::Failed(m) => return (false, Reason::GatewayAccessFailed, m.clone()),
        ControllerAccess::NotTried => {
            return (
                false,
                Reason::GatewayUnreachable,
                "the gateway was not reached".to_owned(),
            )
        }
    }
    let expired = observed
        .pairing_history
        .first()
        .filter(|r| r.result == PairingOutcome::Expired && r.at >= gw.at);
    match (gw.pending.len(), expired) {
        (_, Some(r)) => (true, Reason::RequestExpired, r.message.clone()),
        (0, None) => (
            true,
            Reason::NothingPending,
            "no pairing request is pending; a new device appears here when it connects".to_owned(),
        ),
        (n, None) => (
            true,
            Reason::AwaitingApproval,
            format!(
                "{n} pairing request(s) pending: {}",
                gw.pending
                    .iter()
                    .map(|p| device_label(&p.display_name, &p.request_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// `status.pairing`: the last look's pending requests and the recent outcomes.
pub(super) fn pairing_status(
    desired: &Desired,
    observed: &Observed,
    previous: &InstanceStatus,
    now: DateTime<Utc>,
) -> Option<PairingStatus> {
    if desired.gateway.is_none() {
        return previous.pairing.clone();
    }
    let mut status = previous.pairing.clone().unwrap_or_default();
    status.recent = observed.pairing_history.clone();
    if let Some(last) = status
        .recent
        .iter()
        .find(|r| r.result == PairingOutcome::Approved && r.channel.is_none())
    {
        status.last_approved_device = last.device_name.clone().or_else(|| last.request_id.clone());
        status.last_approved_at = Some(last.at);
    }
    match observed.gateway.as_ref() {
        Some(gw) => {
            status.controller_paired = gw.access == ControllerAccess::Paired;
            status.observed_at = Some(gw.at);
            status.pending = if status.controller_paired {
                pending_requests(gw, now)
            } else {
                Vec::new()
            };
            match (&gw.channel_pairing, status.controller_paired) {
                (Some(list), true) => {
                    status.channel_pending = pending_channel_requests(list, gw.at, now);
                    status.channel_accounts = list
                        .accounts
                        .iter()
                        .map(|a| format!("{}:{}", a.channel, a.account_id))
                        .collect();
                }
                (None, true) => {}
                (_, false) => status.channel_pending.clear(),
            }
        }
        None if desired.run_state == RunState::Stopped => {
            status.pending.clear();
            status.channel_pending.clear();
        }
        None => {}
    }
    status.pending_count = u32::try_from(status.pending.len()).unwrap_or(u32::MAX);
    status.channel_pending_count = u32::try_from(status.channel_pending.len()).unwrap_or(u32::MAX);
    Some(status)
}

/// Strangers' pending DM requests, oldest first.
fn pending_channel_requests(
    list: &ChannelPairingList,
    seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<PendingChannelPairing> {
    let time = |t: &str| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc));
    let mut pending: Vec<PendingChannelPairing> = list
        .requests
        .iter()
        .map(|r| {
            let requested_at = time(&r.created_at).unwrap_or(seen);
            let ttl = chrono::Duration::from_std(DM_REQUEST_TTL).unwrap_or_default();
            PendingChannelPairing {
                request_id: r.request_id.clone(),
                channel: r.channel.clone(),
                account_id: r.account_id.clone(),
                sender_id: r.sender_id.clone(),
                sender_name: r.sender_name(),
                username: r.metadata.get("username").cloned(),
                requested_at,
                age_seconds: (now - requested_at).num_seconds().max(0),
                expires_at: time(&r.expires_at).unwrap_or(requested_at + ttl),
                notify_supported: r.notify_supported,
            }
        })
        .collect();
    pending.sort_by_key(|p| p.requested_at);
    pending
}

/// The look's pending requests, oldest first.
fn pending_requests(gw: &GatewayObservation, now: DateTime<Utc>) -> Vec<PendingPairing> {
    let ttl = chrono::Duration::from_std(REQUEST_TTL).unwrap_or_default();
    let mut pending: Vec<PendingPairing> = gw
        .pending
        .iter()
        .map(|p| {
            let requested_at = DateTime::<Utc>::from_timestamp_millis(p.ts).unwrap_or(gw.at);
            PendingPairing {
                request_id: p.request_id.clone(),
                device_id: p.device_id.clone(),
                device_name: p.display_name.clone(),
                platform: p.platform.clone(),
                client: p.client_id.clone(),
                role: p.role.clone(),
                scopes: p.scopes.clone(),
                requested_at,
                age_seconds: (now - requested_at).num_seconds().max(0),
                expires_at: requested_at + ttl,
            }
        })
        .collect();
    pending.sort_by_key(|p| p.requested_at);
    pending
}
