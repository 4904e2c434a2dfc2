//! The volume and the machine: one data volume in the desired region (extended, never moved),
//! one gateway machine mounting it with the desired config and run state. Duplicates left by a
//! crash are destroyed; a machine wedged in a transient state is recreated on the same volume;
//! an unreachable host is waited for, never acted on.

use std::time::Duration;

use openclaws_fly::types::{
    CreateMachineRequest, CreateVolumeRequest, Machine, MachineConfig, UpdateMachineRequest, Volume,
};
use openclaws_model::conditions::Reason;
use openclaws_model::RunState;

use super::{Action, Plan};
use crate::reconcile::desired::{config_matches, Desired, MACHINE_NAME, VOLUME_NAME};
use crate::reconcile::world::Observed;
use crate::reconcile::{machine, volume};

/// How often an unreachable host is looked at again.
pub const HOST_UNREACHABLE_RECHECK: Duration = Duration::from_secs(10);

/// How often a crash-looping machine is looked at again.
pub const CRASH_LOOP_RECHECK: Duration = Duration::from_secs(5);

/// The volume and machine steps, for an app that is ours with its secrets in place.
pub(super) fn plan_machine_side(desired: &Desired, observed: &Observed) -> Plan {
    if let Some(wait) = host_unreachable(observed) {
        return wait;
    }
    let Some(vol) = volume::keeper(&observed.volumes, &observed.machines, &desired.region) else {
        return plan_first_volume(desired, observed);
    };
    let mut actions = Vec::new();
    if vol.size_gb < desired.volume_size_gb {
        actions.push(Action::ExtendVolume {
            id: vol.id.clone(),
            size_gb: desired.volume_size_gb,
        });
    }
    let keeper = machine::keeper(&observed.machines, &vol.id);
    let others_destroying = destroy_others(observed, keeper, &mut actions);
    let Some(m) = keeper else {
        actions.push(create_machine(desired, observed, vol));
        return Plan::act(actions);
    };
    match keeper_step(desired, observed, m, vol) {
        MachineStep::CrashLooping(reason, message) if actions.is_empty() => {
            return Plan::wait(reason, message, CRASH_LOOP_RECHECK)
        }
        MachineStep::Wait(state) if actions.is_empty() => {
            return Plan::wait(
                Reason::MachineSettling,
                format!("machine {} is {state}", m.id),
                machine::settle_time(&state),
            )
        }
        MachineStep::Act(action) => actions.push(*action),
        MachineStep::Converged => actions.extend(
            volume::extras(&observed.volumes, vol)
                .into_iter()
                .map(|extra| Action::DeleteVolume {
                    id: extra.id.clone(),
                }),
        ),
        MachineStep::CrashLooping(..) | MachineStep::Wait(_) => {}
    }
    if actions.is_empty() && others_destroying {
        return Plan::wait(
            Reason::MachineDestroying,
            "waiting for a duplicate machine to be destroyed".to_owned(),
            machine::settle_time("destroying"),
        );
    }
    Plan::act(actions)
}

/// While the host of one of our machines is unreachable Fly answers from a cache without the
/// machine's config: nothing may be decided from that (it would look like a machine to replace),
/// and every change to it would fail, so wait for the host.
pub(super) fn host_unreachable(observed: &Observed) -> Option<Plan> {
    let m = observed.machines.iter().find(|m| m.host_unreachable())?;
    Some(Plan::wait(
        Reason::HostUnreachable,
        format!(
            "the host of machine {} is unreachable; nothing is changed until Fly reaches it again",
            m.id
        ),
        HOST_UNREACHABLE_RECHECK,
    ))
}

/// No volume of ours in the region: create one, unless our data sits in another region
/// (moving a volume is not supported, and a new one would strand the customer's data).
fn plan_first_volume(desired: &Desired, observed: &Observed) -> Plan {
    if let Some(other) = observed.volumes.first() {
        return Plan::blocked(
            Reason::RegionChangeUnsupported,
            format!(
                "the data volume {} is in region {}, the spec asks for {}; moving a volume is not supported",
                other.id, other.region, desired.region
            ),
        );
    }
    Plan::act(vec![Action::CreateVolume {
        request: CreateVolumeRequest {
            name: VOLUME_NAME.to_owned(),
            region: desired.region.clone(),
            size_gb: desired.volume_size_gb,
            encrypted: Some(true),
            require_unique_zone: Some(false),
            compute: desired.machine.guest.clone(),
            compute_image: Some(desired.machine.image.clone()),
            ..Default::default()
        },
    }])
}

/// Destroys every machine but the keeper (duplicates of a lost create answer); says whether one
/// is already being destroyed.
fn destroy_others(
    observed: &Observed,
    keeper: Option<&Machine>,
    actions: &mut Vec<Action>,
) -> bool {
    let mut destroying = false;
    for m in &observed.machines {
        if Some(m.id.as_str()) == keeper.map(|k| k.id.as_str()) {
            continue;
        }
        if m.state == "destroying" {
            destroying = true;
        } else {
            actions.push(Action::DestroyMachine {
                id: m.id.clone(),
                force: true,
            });
        }
    }
    destroying
}

/// The secrets version the machine must boot with: our last write's.
fn min_secrets_version(observed: &Observed) -> Option<u64> {
    observed
        .secrets
        .applied
        .as_ref()
        .and_then(|(_, v)| u64::try_from(*v).ok())
}

fn create_machine(desired: &Desired, observed: &Observed, vol: &Volume) -> Action {
    Action::CreateMachine {
        request: CreateMachineRequest {
            name: Some(MACHINE_NAME.to_owned()),
            region: Some(desired.region.clone()),
            config: desired.machine_config(&vol.id),
            skip_launch: (desired.run_state == RunState::Stopped).then_some(true),
            min_secrets_version: min_secrets_version(observed),
            ..Default::default()
        },
    }
}

/// What the kept machine needs.
enum MachineStep {
    Wait(String),
    CrashLooping(Reason, String),
    Act(Box<Action>),
    Converged,
}

fn keeper_step(desired: &Desired, observed: &Observed, m: &Machine, vol: &Volume) -> MachineStep {
    if let Some(age) = machine::stuck_for(m, observed.observed_at, desired.machine_stuck_after) {
        return MachineStep::Act(Box::new(Action::RecoverStuckMachine {
            id: m.id.clone(),
            state: m.state.clone(),
            stuck_secs: age.as_secs(),
        }));
    }
    let stopped = desired.run_state == RunState::Stopped;
    machine_step(
        m,
        &desired.machine_config(&vol.id),
        stopped,
        min_secrets_version(observed),
    )
}

fn machine_step(
    m: &Machine,
    desired_config: &MachineConfig,
    stopped: bool,
    min_secrets_version: Option<u64>,
) -> MachineStep {
    // A crash-looping machine is always between restarts: it is still updated (a new image or
    // config is how it gets fixed), but otherwise only reported.
    let crash = machine::failing(m);
    if m.is_transient() && crash.is_none() {
        return MachineStep::Wait(m.state.clone());
    }
    let Some(config) = &m.config else {
        // Host unreachable: Fly answers from cache without a config; never rebuild from that.
        return MachineStep::Wait("unreachable".to_owned());
    };
    if !config_matches(config, desired_config) {
        return MachineStep::Act(Box::new(Action::UpdateMachine {
            id: m.id.clone(),
            request: UpdateMachineRequest {
                config: desired_config.clone(),
                current_version: Some(m.instance_id.clone()).filter(|v| !v.is_empty()),
                skip_launch: stopped.then_some(true),
                min_secrets_version,
                ..Default::default()
            },
            state_dir_drift: machine::state_dir_problem(config),
        }));
    }
    if let Some((reason, message)) = crash {
        return MachineStep::CrashLooping(reason, message);
    }
    match (stopped, m.state.as_str()) {
        (false, "stopped" | "suspended" | "failed") => {
            MachineStep::Act(Box::new(Action::StartMachine { id: m.id.clone() }))
        }
        (true, "started") => MachineStep::Act(Box::new(Action::StopMachine { id: m.id.clone() })),
        _ => MachineStep::Converged,
    }
}
