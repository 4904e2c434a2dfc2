//! Status: conditions and phase derived from what was observed, planned and failed. Pure.

use chrono::{DateTime, Utc};

use crate::resource::{
    Condition, ConditionStatus, FlyStatus, InstanceStatus, LastError, Phase, RunState,
};

use super::desired::{config_matches, Desired};
use super::observe::{AppObservation, Observed};
use super::plan::Plan;
use super::{machine, volume};

/// Condition types this controller maintains.
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
/// Reconciling is paused by `spec.paused`.
pub const PAUSED: &str = "Paused";
/// Everything above holds and the gateway is running.
pub const READY: &str = "Ready";

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
        pairing: previous.pairing.clone(),
        last_error,
        next_reconcile_at: None,
    }
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
