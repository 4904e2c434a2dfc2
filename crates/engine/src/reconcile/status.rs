//! Status: conditions and phase derived from what was observed, planned and failed. Pure.

use chrono::{DateTime, Utc};

use openclaws_model::{
    Condition, ConditionStatus, FlyStatus, InstanceStatus, LastError, Phase, RunState,
};

use super::desired::{config_matches, Desired};
use super::observe::{AppObservation, Observed};
use super::plan::Plan;
use super::{machine, volume};

pub use openclaws_model::conditions::*;

/// Inputs to [`compute`].
pub struct StatusInput<'a> {
    pub desired: &'a Desired,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    pub last_error: Option<LastError>,
    pub previous: &'a InstanceStatus,
    pub now: DateTime<Utc>,
}

/// The status to record after a reconcile.
pub fn compute(input: StatusInput<'_>) -> InstanceStatus {
    let StatusInput {
        desired,
        observed,
        plan,
        last_error,
        previous,
        now,
    } = input;
    let generation = desired.generation;
    let mut conditions = Vec::new();
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        conditions.push(condition(
            previous, type_, ok, reason, message, generation, now,
        ));
    };

    let app_ok = matches!(observed.app, AppObservation::Ours(_));
    match &observed.app {
        AppObservation::Ours(app) => set(
            APP_READY,
            true,
            "Created",
            format!("app {} exists", app.name),
        ),
        AppObservation::Absent => set(
            APP_READY,
            false,
            "NotCreated",
            format!("app {} does not exist yet", desired.app_name),
        ),
        AppObservation::Foreign { reason } => set(APP_READY, false, "AppNameTaken", reason.clone()),
    }

    let secrets_ok = app_ok && super::secrets::in_sync(&desired.secrets, &observed.secrets);
    match (&observed.secrets.applied, secrets_ok) {
        (Some((fp, version)), true) => set(
            SECRETS_READY,
            true,
            "Applied",
            format!("secrets version {version} ({fp})"),
        ),
        (None, true) => set(
            SECRETS_READY,
            true,
            "NoneWanted",
            "no app secrets are wanted".to_owned(),
        ),
        (_, false) => set(
            SECRETS_READY,
            false,
            "NotApplied",
            format!(
                "the app does not hold the desired secrets {:?} yet",
                desired.secrets.names()
            ),
        ),
    }

    let mut endpoint_ok = true;
    if desired.endpoint_wanted && app_ok {
        let target = super::plan::dns_target(desired, observed);
        match super::plan::our_record(desired, observed) {
            Some(r) if r.type_ == "CNAME" && r.content == target => set(
                DNS_READY,
                true,
                "Configured",
                format!("{} CNAME {}", desired.hostname, target),
            ),
            Some(r) => {
                endpoint_ok = false;
                set(
                    DNS_READY,
                    false,
                    "Updating",
                    format!(
                        "{} is {} {}, want CNAME {}",
                        desired.hostname, r.type_, r.content, target
                    ),
                )
            }
            None if !observed.dns_records.is_empty() => {
                endpoint_ok = false;
                set(DNS_READY, false, "RecordNotOurs", format!("{} already has records this controller did not create; they are left alone", desired.hostname))
            }
            None => {
                endpoint_ok = false;
                set(
                    DNS_READY,
                    false,
                    "NotCreated",
                    format!("no record for {} yet", desired.hostname),
                )
            }
        }
        match &observed.certificate {
            Some(c) if c.status == "active" || c.status == "Ready" => set(
                CERTIFICATE_READY,
                true,
                "Issued",
                format!("certificate for {} is active", desired.hostname),
            ),
            Some(c) if c.rate_limited_until.is_some() => {
                endpoint_ok = false;
                set(
                    CERTIFICATE_READY,
                    false,
                    "RateLimited",
                    format!(
                        "issuance for {} is rate limited until {}",
                        desired.hostname,
                        c.rate_limited_until.clone().unwrap_or_default()
                    ),
                )
            }
            Some(c) => {
                endpoint_ok = false;
                set(
                    CERTIFICATE_READY,
                    false,
                    "AwaitingValidation",
                    format!("certificate for {} is {}", desired.hostname, c.status),
                )
            }
            None => {
                endpoint_ok = false;
                set(
                    CERTIFICATE_READY,
                    false,
                    "NotRequested",
                    format!("no certificate for {} yet", desired.hostname),
                )
            }
        }
    }

    let vol = volume::keeper(&observed.volumes, &observed.machines, &desired.region);
    let vol_ok = vol.is_some_and(|v| v.size_gb >= desired.volume_size_gb);
    match vol {
        Some(v) if vol_ok => set(
            VOLUME_READY,
            true,
            "Created",
            format!("volume {} ({} GB) in {}", v.id, v.size_gb, v.region),
        ),
        Some(v) => set(
            VOLUME_READY,
            false,
            "Extending",
            format!(
                "volume {} is {} GB, want {}",
                v.id, v.size_gb, desired.volume_size_gb
            ),
        ),
        None => set(
            VOLUME_READY,
            false,
            "NotCreated",
            "no data volume yet".to_owned(),
        ),
    }

    let stopped_wanted = desired.run_state == RunState::Stopped;
    let keeper = vol.and_then(|v| machine::keeper(&observed.machines, &v.id));
    let unreachable = observed.machines.iter().find(|m| m.host_unreachable());
    let (machine_ok, machine_reason, machine_message) = match (keeper, vol) {
        _ if unreachable.is_some() => (
            false,
            "HostUnreachable",
            format!(
                "the host of machine {} is unreachable; Fly answers from its cache",
                unreachable.map(|m| m.id.as_str()).unwrap_or_default()
            ),
        ),
        (Some(m), Some(v)) => {
            let matches = m
                .config
                .as_ref()
                .is_some_and(|c| config_matches(c, &desired.machine_config(&v.id)));
            match (matches, m.state.as_str(), stopped_wanted) {
                (false, state, _) if !m.is_transient() => (
                    false,
                    "ConfigDrift",
                    format!("machine {} ({state}) differs from the desired config", m.id),
                ),
                (true, "started", false) => {
                    (true, "Started", format!("machine {} is started", m.id))
                }
                (true, "stopped" | "suspended" | "failed", true) => (
                    true,
                    "Stopped",
                    format!("machine {} is not running, as desired", m.id),
                ),
                (_, state, _) => match machine::crash_loop(m) {
                    Some(crash) => (
                        false,
                        "CrashLooping",
                        machine::describe_crash_loop(&m.id, &crash),
                    ),
                    None => (
                        false,
                        state_reason(state),
                        format!("machine {} is {state}", m.id),
                    ),
                },
            }
        }
        _ => (false, "NotCreated", "no gateway machine yet".to_owned()),
    };
    set(MACHINE_READY, machine_ok, machine_reason, machine_message);

    if desired.gateway.is_some() && !desired.deleting {
        for c in gateway_conditions(desired, observed, keeper, previous) {
            set(&c.0, c.1, &c.2, c.3);
        }
    }

    let blocked = plan.blocked.as_ref();
    let converged = app_ok
        && secrets_ok
        && endpoint_ok
        && vol_ok
        && machine_ok
        && plan.is_converged()
        && last_error.is_none();
    let (ready, ready_reason, ready_message) = if desired.deleting {
        (
            false,
            "Deleting",
            "the instance is being torn down".to_owned(),
        )
    } else if let Some(b) = blocked {
        (false, b.reason, b.message.clone())
    } else if converged && stopped_wanted {
        (
            false,
            "Stopped",
            "the gateway is stopped as desired (runState: stopped)".to_owned(),
        )
    } else if converged {
        (
            true,
            "Converged",
            format!("the gateway is running at {}", desired.endpoint),
        )
    } else if let Some(e) = &last_error {
        (false, e.reason.as_str(), e.message.clone())
    } else if let Some(w) = &plan.wait {
        (false, w.reason, w.message.clone())
    } else {
        (false, "Progressing", "converging".to_owned())
    };
    set(READY, ready, ready_reason, ready_message);

    let phase = if desired.deleting {
        Phase::Deleting
    } else if blocked.is_some() {
        Phase::Failed
    } else if converged && stopped_wanted {
        Phase::Stopped
    } else if ready {
        Phase::Ready
    } else if previous.observed_generation == generation
        && matches!(previous.phase, Phase::Ready | Phase::Degraded)
    {
        Phase::Degraded
    } else {
        Phase::Provisioning
    };

    let shown = keeper.or(unreachable);
    let fly = FlyStatus {
        app_name: app_ok.then(|| desired.app_name.clone()),
        volume_id: vol.map(|v| v.id.clone()),
        machine_id: shown.map(|m| m.id.clone()),
        machine_state: shown.map(|m| m.state.clone()),
        image: keeper
            .and_then(|m| m.config.as_ref())
            .map(|c| c.image.clone()),
        region: vol.map(|v| v.region.clone()),
    };

    InstanceStatus {
        observed_generation: generation,
        phase,
        conditions,
        fly: Some(fly),
        endpoint: Some(desired.endpoint.clone()),
        pairing: pairing_status(desired, observed, previous, now),
        last_error,
        next_reconcile_at: None,
    }
}

/// One condition as (type, ok, reason, message).
type ConditionParts = (String, bool, String, String);

/// `GatewayHealthy`, `ConfigSeeded` and `PairingReady`, from the last look at the gateway (or,
/// when it was not looked at in this reconcile, from why not).
fn gateway_conditions(
    desired: &Desired,
    observed: &Observed,
    keeper: Option<&openclaws_fly::types::Machine>,
    previous: &InstanceStatus,
) -> Vec<ConditionParts> {
    use super::gateway::{ControllerAccess, GatewayHealth, LiveConfig};
    let mut out = Vec::new();
    let bundle_key = openclaws_gateway::bundle::BUNDLE_HASH_METADATA_KEY;
    let wanted_bundle = desired.machine.metadata.get(bundle_key);
    let delivered = keeper
        .and_then(|m| m.config.as_ref())
        .is_some_and(|c| c.metadata.get(bundle_key) == wanted_bundle);
    let running = keeper.is_some_and(|m| m.state == "started");
    let Some(gw) = observed.gateway.as_ref() else {
        let (reason, message) = match keeper {
            _ if desired.run_state == RunState::Stopped => (
                "MachineStopped",
                "the machine is stopped (runState: stopped): no gateway runs, and no device can pair"
                    .to_owned(),
            ),
            Some(m) if !running => (
                if matches!(m.state.as_str(), "stopped" | "suspended") {
                    "MachineStopped"
                } else {
                    "MachineNotRunning"
                },
                format!("machine {} is {}: the gateway is not running", m.id, m.state),
            ),
            None => ("MachineNotRunning", "no gateway machine yet".to_owned()),
            Some(_) => {
                // Running but not looked at in this reconcile: what the last look said stands.
                for type_ in [GATEWAY_HEALTHY, CONFIG_SEEDED, PAIRING_READY] {
                    if let Some(c) = previous.conditions.iter().find(|c| c.type_ == type_) {
                        out.push((
                            type_.to_owned(),
                            c.status == openclaws_model::ConditionStatus::True,
                            c.reason.clone(),
                            c.message.clone(),
                        ));
                    }
                }
                if out.is_empty() {
                    out.push((
                        GATEWAY_HEALTHY.to_owned(),
                        false,
                        "NotChecked".to_owned(),
                        "the gateway has not been looked at yet".to_owned(),
                    ));
                }
                return out;
            }
        };
        out.push((
            GATEWAY_HEALTHY.to_owned(),
            false,
            reason.to_owned(),
            message.clone(),
        ));
        out.push((
            CONFIG_SEEDED.to_owned(),
            delivered,
            if delivered {
                "BundleDelivered"
            } else {
                "MachineUpdatePending"
            }
            .to_owned(),
            if delivered {
                "the machine carries the desired boot bundle; it is applied at every start"
                    .to_owned()
            } else {
                "the machine does not carry the desired boot bundle yet".to_owned()
            },
        ));
        out.push((PAIRING_READY.to_owned(), false, reason.to_owned(), message));
        return out;
    };
    let health = match &gw.health {
        GatewayHealth::Healthy => (true, "Ready", format!("the gateway answers at {}", desired.endpoint)),
        GatewayHealth::Starting(m) => (false, "GatewayStarting", m.clone()),
        GatewayHealth::NotReady(m) => (false, "GatewayNotReady", m.clone()),
        GatewayHealth::ProxyAttributionRequired => (
            false,
            "TrustedProxyMisconfigured",
            "403 proxy_attribution_required: gateway.trustedProxies does not cover the proxy's source address".to_owned(),
        ),
        GatewayHealth::Unreachable(m) => (false, "GatewayUnreachable", m.clone()),
    };
    out.push((
        GATEWAY_HEALTHY.to_owned(),
        health.0,
        health.1.to_owned(),
        health.2.clone(),
    ));
    let config = match (&gw.config, delivered) {
        (_, false) => (
            false,
            "MachineUpdatePending",
            "the machine does not carry the desired boot bundle yet".to_owned(),
        ),
        (LiveConfig::Matches, true) => (
            true,
            "Seeded",
            "openclaw.json holds the desired owned fields; the customer's own keys are left alone"
                .to_owned(),
        ),
        (LiveConfig::Drifted(paths), true) => (
            false,
            "OwnedFieldsDrifted",
            format!(
                "owned fields changed out of band: {}; restarting the machine puts them back",
                paths.join(", ")
            ),
        ),
        (LiveConfig::Invalid(m), true) => (false, "ConfigInvalid", m.clone()),
        (LiveConfig::Unknown, true) => (
            true,
            "BundleDelivered",
            "the machine carries the desired boot bundle; the live config was not read".to_owned(),
        ),
    };
    out.push((
        CONFIG_SEEDED.to_owned(),
        config.0,
        config.1.to_owned(),
        config.2,
    ));
    let pairing = match (&gw.access, &gw.health) {
        (_, GatewayHealth::Healthy) => {
            match &gw.access {
                ControllerAccess::Paired => {
                    let expired = observed.pairing_history.first().filter(|r| {
                        r.result == openclaws_model::PairingOutcome::Expired && r.at >= gw.at
                    });
                    match (gw.pending.len(), expired) {
                    (_, Some(r)) => (true, "RequestExpired", r.message.clone()),
                    (0, None) => (true, "NothingPending", "no pairing request is pending; a new device appears here when it connects".to_owned()),
                    (n, None) => (true, "AwaitingApproval", format!(
                        "{n} pairing request(s) pending: {}",
                        gw.pending.iter().map(|p| super::gateway::device_label(&p.display_name, &p.request_id)).collect::<Vec<_>>().join(", ")
                    )),
                }
                }
                ControllerAccess::NotPaired { request_id } => (
                    false,
                    "ControllerNotPaired",
                    format!("the controller's own device is not paired yet (request {request_id})"),
                ),
                ControllerAccess::Failed(m) => (false, "GatewayAccessFailed", m.clone()),
                ControllerAccess::NotTried => (
                    false,
                    "GatewayUnreachable",
                    "the gateway was not reached".to_owned(),
                ),
            }
        }
        _ => (
            false,
            "GatewayUnreachable",
            format!("pairing needs a healthy gateway: {}", health.2),
        ),
    };
    out.push((
        PAIRING_READY.to_owned(),
        pairing.0,
        pairing.1.to_owned(),
        pairing.2,
    ));
    out
}

/// Whether devices may be pairing right now, so the gateway should be looked at again within
/// seconds: requests pending, recorded approvals not carried out yet, or a pairing window open.
pub fn pairing_active(desired: &Desired, observed: &Observed, window_open: bool) -> bool {
    if desired.gateway.is_none() || desired.deleting || desired.run_state == RunState::Stopped {
        return false;
    }
    let outstanding = desired.pairing.policy == openclaws_model::PairingPolicy::Manual
        && desired.pairing.approvals.iter().any(|a| {
            let key = a.key();
            !observed
                .pairing_history
                .iter()
                .any(|r| r.approval_id.as_deref() == Some(key.as_str()))
        });
    let pending = observed
        .gateway
        .as_ref()
        .is_some_and(|g| !g.pending.is_empty());
    window_open || outstanding || pending
}

/// `status.pairing`: the last look's pending requests and the recent outcomes.
fn pairing_status(
    desired: &Desired,
    observed: &Observed,
    previous: &InstanceStatus,
    now: DateTime<Utc>,
) -> Option<openclaws_model::PairingStatus> {
    use super::gateway::ControllerAccess;
    use openclaws_model::{PairingOutcome, PendingPairing};
    if desired.gateway.is_none() {
        return previous.pairing.clone();
    }
    let mut status = previous.pairing.clone().unwrap_or_default();
    status.recent = observed.pairing_history.clone();
    if let Some(last) = status
        .recent
        .iter()
        .find(|r| r.result == PairingOutcome::Approved)
    {
        status.last_approved_device = last.device_name.clone().or_else(|| last.request_id.clone());
        status.last_approved_at = Some(last.at);
    }
    match observed.gateway.as_ref() {
        Some(gw) if gw.access == ControllerAccess::Paired => {
            status.controller_paired = true;
            status.observed_at = Some(gw.at);
            status.pending = gw
                .pending
                .iter()
                .map(|p| {
                    let requested_at =
                        DateTime::<Utc>::from_timestamp_millis(p.ts).unwrap_or(gw.at);
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
                        expires_at: requested_at
                            + chrono::Duration::from_std(super::gateway::REQUEST_TTL)
                                .unwrap_or_default(),
                    }
                })
                .collect();
            status.pending.sort_by_key(|p| p.requested_at);
        }
        Some(gw) => {
            status.controller_paired = matches!(gw.access, ControllerAccess::Paired);
            status.observed_at = Some(gw.at);
            status.pending.clear();
        }
        None if desired.run_state == RunState::Stopped => status.pending.clear(),
        None => {}
    }
    status.pending_count = u32::try_from(status.pending.len()).unwrap_or(u32::MAX);
    Some(status)
}

/// `kept` (conditions from before a failed observation) with the `Ready` condition of `fresh`,
/// so a reconcile that could not even look at Fly (a revoked token, Fly down) says why instead
/// of repeating an old `Ready=True`.
pub fn keep_with_ready(kept: &[Condition], fresh: &[Condition]) -> Vec<Condition> {
    let mut out: Vec<Condition> = kept.iter().filter(|c| c.type_ != READY).cloned().collect();
    out.extend(fresh.iter().filter(|c| c.type_ == READY).cloned());
    out
}

/// Status of a paused instance: the previous status with a `Paused` condition.
pub fn paused(previous: &InstanceStatus, generation: i64, now: DateTime<Utc>) -> InstanceStatus {
    let mut status = previous.clone();
    status.conditions.retain(|c| c.type_ != PAUSED);
    status.conditions.push(condition(
        previous,
        PAUSED,
        true,
        "PausedBySpec",
        "spec.paused is true: the controller makes no changes to this instance".to_owned(),
        generation,
        now,
    ));
    status
}

fn state_reason(state: &str) -> &'static str {
    match state {
        "created" | "creating" => "Creating",
        "starting" | "restarting" => "Starting",
        "stopping" | "suspending" => "Stopping",
        "stopped" | "suspended" => "Stopped",
        "replacing" | "updating" => "Updating",
        "failed" | "launch_failed" => "Failed",
        "destroying" => "Destroying",
        "unreachable" => "HostUnreachable",
        _ => "Unknown",
    }
}

fn condition(
    previous: &InstanceStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: i64,
    now: DateTime<Utc>,
) -> Condition {
    let status = if ok {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time)
        .unwrap_or(now);
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}
