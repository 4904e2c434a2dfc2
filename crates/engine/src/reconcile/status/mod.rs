//! Status: conditions and phase derived from what was observed, planned and failed. Pure.
//!
//! One condition per part of the world ([`fly`]: app, secrets, endpoint, volume, machine;
//! [`gateway`]: health, owned config, pairing; [`channels`]: the messaging channels, when any is
//! configured), then `Ready` and the phase from all of them but the channels.

mod channels;
mod fly;
mod gateway;

use chrono::{DateTime, Utc};

use openclaws_model::conditions::{ConditionType, Reason};
use openclaws_model::{
    Condition, ConditionStatus, FlyStatus, InstanceStatus, LastError, Phase, RunState,
};

use super::desired::Desired;
use super::plan::Plan;
use super::world::Observed;

/// Inputs to [`compute`].
pub struct StatusInput<'a> {
    pub desired: &'a Desired,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    pub last_error: Option<LastError>,
    pub previous: &'a InstanceStatus,
    pub now: DateTime<Utc>,
}

/// The conditions of one status as they are set, each keeping its last transition time when
/// its status did not change.
struct Conditions<'a> {
    previous: &'a InstanceStatus,
    generation: i64,
    now: DateTime<Utc>,
    list: Vec<Condition>,
}

impl Conditions<'_> {
    fn set(&mut self, type_: ConditionType, ok: bool, reason: Reason, message: String) {
        self.list.push(condition(
            self.previous,
            type_,
            ok,
            reason,
            message,
            self.generation,
            self.now,
        ));
    }
}

/// The pairing part of `status` after a pairing subscription looked at the gateway (healthy,
/// the controller paired): `status.pairing` and the `PairingReady` condition, as a reconcile's
/// look would set them; everything else is left as the last reconcile recorded it.
pub fn apply_pairing(
    status: &mut InstanceStatus,
    desired: &Desired,
    observed: &Observed,
    now: DateTime<Utc>,
) {
    let previous = status.clone();
    status.pairing = gateway::pairing_status(desired, observed, &previous, now);
    let Some(gw) = observed.gateway.as_ref() else {
        return;
    };
    let (ok, reason, message) = gateway::pairing(observed, gw);
    let generation = previous
        .condition(ConditionType::PairingReady)
        .map_or(previous.observed_generation, |c| c.observed_generation);
    let updated = condition(
        &previous,
        ConditionType::PairingReady,
        ok,
        reason,
        message,
        generation,
        now,
    );
    match status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == ConditionType::PairingReady)
    {
        Some(c) => *c = updated,
        None => status.conditions.push(updated),
    }
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
    let mut conditions = Conditions {
        previous,
        generation: desired.generation,
        now,
        list: Vec::new(),
    };
    let world = fly::judge(desired, observed, &mut conditions);
    let mut channel_statuses = Vec::new();
    if desired.gateway.is_some() && !desired.deleting {
        gateway::judge(desired, observed, world.keeper, &mut conditions);
        if !desired.channels.channels.is_empty() {
            channel_statuses = channels::statuses(desired, observed, previous);
            let (ok, reason, message) = channels::ready(&channel_statuses);
            conditions.set(ConditionType::ChannelsReady, ok, reason, message);
        }
    }
    let converged = world.all_ok && plan.is_converged() && last_error.is_none();
    let stopped_wanted = desired.run_state == RunState::Stopped;
    let (ready, reason, message) = ready(desired, plan, converged, last_error.as_ref());
    conditions.set(ConditionType::Ready, ready, reason, message);
    let phase = if desired.deleting {
        Phase::Deleting
    } else if plan.blocked.is_some() {
        Phase::Failed
    } else if converged && stopped_wanted {
        Phase::Stopped
    } else if ready {
        Phase::Ready
    } else if previous.observed_generation == desired.generation
        && matches!(previous.phase, Phase::Ready | Phase::Degraded)
    {
        Phase::Degraded
    } else {
        Phase::Provisioning
    };
    InstanceStatus {
        observed_generation: desired.generation,
        phase,
        conditions: conditions.list,
        fly: Some(world.fly),
        endpoint: Some(desired.endpoint.clone()),
        pairing: gateway::pairing_status(desired, observed, previous, now),
        channels: channel_statuses,
        last_error,
        next_reconcile_at: None,
    }
}

/// The `Ready` condition: deleting, blocked, stopped as desired, converged, or why not.
fn ready(
    desired: &Desired,
    plan: &Plan,
    converged: bool,
    last_error: Option<&LastError>,
) -> (bool, Reason, String) {
    if desired.deleting {
        (
            false,
            Reason::Deleting,
            "the instance is being torn down".to_owned(),
        )
    } else if let Some(b) = &plan.blocked {
        (false, b.reason, b.message.clone())
    } else if converged && desired.run_state == RunState::Stopped {
        (
            false,
            Reason::Stopped,
            "the gateway is stopped as desired (runState: stopped)".to_owned(),
        )
    } else if converged {
        (true, Reason::Converged, converged_message(desired))
    } else if let Some(e) = last_error {
        (false, e.reason, e.message.clone())
    } else if let Some(w) = &plan.wait {
        (false, w.reason, w.message.clone())
    } else {
        (false, Reason::Progressing, "converging".to_owned())
    }
}

/// What `Ready` says of a converged instance: only what was checked. Without gateway checks
/// (machines that run no gateway) the controller saw the machine started, not the gateway.
fn converged_message(desired: &Desired) -> String {
    match desired.gateway {
        Some(_) => format!("the gateway is running at {}", desired.endpoint),
        None => format!(
            "the machine is started for {} (gateway checks are off: the gateway itself was not checked)",
            desired.endpoint
        ),
    }
}

/// What [`fly::judge`] found: whether every Fly-side condition holds, the machine kept, and the
/// Fly ids for `status.fly`.
struct FlySide<'a> {
    all_ok: bool,
    keeper: Option<&'a openclaws_fly::types::Machine>,
    fly: FlyStatus,
}

/// `kept` (conditions from before a failed observation) with the `Ready` condition of `fresh`,
/// so a reconcile that could not even look at Fly (a revoked token, Fly down) says why instead
/// of repeating an old `Ready=True`.
pub fn keep_with_ready(kept: &[Condition], fresh: &[Condition]) -> Vec<Condition> {
    let is_ready = |c: &&Condition| c.type_ == ConditionType::Ready;
    let mut out: Vec<Condition> = kept.iter().filter(|c| !is_ready(c)).cloned().collect();
    out.extend(fresh.iter().filter(is_ready).cloned());
    out
}

/// Status of a paused instance: the previous status with a `Paused` condition.
pub fn paused(previous: &InstanceStatus, generation: i64, now: DateTime<Utc>) -> InstanceStatus {
    let mut status = previous.clone();
    status
        .conditions
        .retain(|c| c.type_ != ConditionType::Paused);
    status.conditions.push(condition(
        previous,
        ConditionType::Paused,
        true,
        Reason::PausedBySpec,
        "spec.paused is true: the controller makes no changes to this instance".to_owned(),
        generation,
        now,
    ));
    status
}

fn condition(
    previous: &InstanceStatus,
    type_: ConditionType,
    ok: bool,
    reason: Reason,
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
        type_,
        status,
        reason,
        message,
        last_transition_time,
        observed_generation: generation,
    }
}
