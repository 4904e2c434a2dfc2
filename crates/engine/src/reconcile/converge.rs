//! Stage 3, converge: observe the world, then plan and act round by round, folding each step's
//! result back into the observation so the next round plans from it without reading the world
//! again. Stops when the plan is settled (converged, waiting or blocked), a step fails, a step
//! says to come back later, or after [`MAX_ROUNDS`]. Talks to Fly, the DNS provider and the
//! gateway; never to the database.

use std::sync::Arc;

use crate::lease::WorkLease;
use openclaws_dns::CloudflareDns;
use openclaws_fly::FlyClient;
use openclaws_gateway::client::GatewayClient;
use openclaws_model::conditions::{ConditionType, Reason};
use openclaws_model::secret_names::GATEWAY_TOKEN;
use openclaws_model::{ConditionStatus, InstanceStatus};
use openclaws_store::events::EventType;
use openclaws_store::status::ControllerEvent;

use super::act::{self, StepFailure};
use super::desired::Desired;
use super::errors::StepError;
use super::plan::{plan, Action, Plan, Wait};
use super::report::{Converged, Failure, Report};
use super::world::{GatewayHealth, GatewayObservation, Observed};
use super::{gateway, observe};

/// Upper bound of act-and-replan rounds in one reconcile (a fresh instance needs three).
const MAX_ROUNDS: usize = 8;

/// The outside world a reconcile acts on.
#[derive(Clone, Copy)]
pub(super) struct Clients<'a> {
    pub fly: &'a FlyClient,
    pub dns: Option<&'a CloudflareDns>,
}

/// The clients of one reconcile, fenced by its work lease when it has one.
pub(super) struct OwnedClients {
    fly: FlyClient,
    dns: Option<CloudflareDns>,
}

impl Clients<'_> {
    /// Clones of the shared clients whose mutations pass `lease` first.
    pub fn fenced(
        fly: &FlyClient,
        dns: Option<&CloudflareDns>,
        lease: Option<Arc<WorkLease>>,
    ) -> OwnedClients {
        match lease {
            Some(lease) => OwnedClients {
                fly: fly.fenced(lease.clone()),
                dns: dns.map(|d| d.fenced(lease)),
            },
            None => OwnedClients {
                fly: fly.clone(),
                dns: dns.cloned(),
            },
        }
    }
}

impl OwnedClients {
    /// The clients by reference, as the stages take them.
    pub fn borrowed(&self) -> Clients<'_> {
        Clients {
            fly: &self.fly,
            dns: self.dns.as_ref(),
        }
    }
}

/// Observes, then plans and acts until the plan settles; fills in `report.converged`.
pub(super) async fn converge(clients: Clients<'_>, report: &mut Report) {
    let known = report.loaded.previous.fly.as_ref();
    let mut observed =
        match observe::observe(clients.fly, clients.dns, &report.desired, known).await {
            Ok(observed) => observed,
            Err(error) => {
                report.converged.failure = Some(Failure {
                    step: "Observe",
                    error,
                });
                return;
            }
        };
    observed.secrets.applied = report
        .loaded
        .record
        .fly_secrets_fingerprint
        .clone()
        .zip(report.loaded.record.fly_secrets_version);
    observed.pairing_history = report.pairing_history();
    let mut run = Run {
        clients,
        desired: &report.desired,
        identity: report.resolved.identity.as_ref(),
        gateway: None,
        wait: None,
        done: Converged::default(),
    };
    let settled = run.rounds(&mut observed).await;
    let mut done = run.done;
    if let Some(machine_id) = came_up_healthy(&report.loaded.previous, &observed) {
        let app = &report.desired.app_name;
        let notices = gateway::take_boot_notices(clients.fly, app, &machine_id).await;
        done.steps.extend(notices);
    }
    if !done.finalized {
        // Converged or waiting (`settled`), interrupted, or out of rounds: in the last two
        // cases the plan for what is left decides the status.
        done.plan = settled.unwrap_or_else(|| plan(&report.desired, &observed));
        if done.plan.wait.is_none() {
            done.plan.wait = run.wait;
        }
    }
    done.observed = Some(observed);
    report.converged = done;
}

/// The started machine whose gateway this reconcile found healthy when the last status did not
/// (a first boot or a restart): the moment to read what its boot step noticed.
fn came_up_healthy(previous: &InstanceStatus, observed: &Observed) -> Option<String> {
    let healthy = observed
        .gateway
        .as_ref()
        .is_some_and(|g| g.health == GatewayHealth::Healthy);
    let was_healthy = previous
        .condition(ConditionType::GatewayHealthy)
        .is_some_and(|c| c.status == ConditionStatus::True);
    if !healthy || was_healthy {
        return None;
    }
    observed
        .machines
        .iter()
        .find(|m| m.state == "started")
        .map(|m| m.id.clone())
}

/// One converge in progress.
struct Run<'a> {
    clients: Clients<'a>,
    desired: &'a Desired,
    identity: Option<&'a openclaws_gateway::identity::DeviceIdentity>,
    /// The open connection of the last look at the gateway, for gateway steps.
    gateway: Option<GatewayClient>,
    /// A step said to come back later.
    wait: Option<Wait>,
    done: Converged,
}

impl Run<'_> {
    /// Plans and acts until the plan settles (returned), a step interrupts (`None`), teardown
    /// finishes, or the rounds run out (`None`).
    async fn rounds(&mut self, observed: &mut Observed) -> Option<Plan> {
        for _ in 0..MAX_ROUNDS {
            let p = plan(self.desired, observed);
            if p.finalize {
                self.done.finalized = true;
                return None;
            }
            if p.look_at_gateway {
                let (look, client) = self.look_at_gateway().await;
                observed.gateway = Some(look);
                self.gateway = client;
                continue;
            }
            if p.actions.is_empty() {
                return Some(p);
            }
            if !self.act(&p.actions, observed).await {
                return None;
            }
        }
        None
    }

    /// Runs one round's actions in order; `false` when one failed or asked to wait.
    async fn act(&mut self, actions: &[Action], observed: &mut Observed) -> bool {
        for action in actions {
            let result = self.step(action, observed).await;
            if let Some(outcome) = action.pairing_outcome(result.is_ok()) {
                self.done.pairing_outcomes.push(outcome);
            }
            if observed.gateway.is_none() {
                // A restart or a fresh pairing: the connection no longer speaks for what the
                // gateway is.
                self.gateway = None;
            }
            match result {
                Ok(()) => self.stepped(action, observed),
                Err(StepFailure::Wait(wait)) => {
                    self.wait = Some(wait);
                    return false;
                }
                Err(StepFailure::Failed { step, error }) => {
                    self.done.failure = Some(Failure { step, error });
                    return false;
                }
            }
        }
        true
    }

    async fn step(&self, action: &Action, observed: &mut Observed) -> Result<(), StepFailure> {
        if !action.is_gateway_step() {
            return act::execute(
                self.clients.fly,
                self.clients.dns,
                self.desired,
                observed,
                action,
            )
            .await;
        }
        gateway::execute(
            self.clients.fly,
            self.gateway.as_ref(),
            self.desired,
            observed,
            action,
        )
        .await
        .map_err(|e| StepFailure::Failed {
            step: action.step(),
            error: StepError::from(e),
        })
    }

    /// Records a step that succeeded: its event, the drift it repairs, the secrets it set.
    fn stepped(&mut self, action: &Action, observed: &Observed) {
        if let (Action::SetSecrets { .. }, Some(applied)) = (action, &observed.secrets.applied) {
            self.done.secrets_applied = Some(applied.clone());
        }
        self.done.repairs.extend(action.drift_kind());
        self.done.steps.push(ControllerEvent {
            type_: EventType::Normal,
            reason: action.step().into(),
            message: action.describe(),
        });
        if let Action::UpdateMachine {
            state_dir_drift: Some(why),
            ..
        } = action
        {
            self.done.steps.push(ControllerEvent {
                type_: EventType::Warning,
                reason: Reason::StateDirOutsideVolume.as_str().into(),
                message: format!("{why}; the machine was updated to keep it on the volume"),
            });
        }
    }

    /// Looks at the gateway with the controller's device identity and the gateway token.
    async fn look_at_gateway(&self) -> (GatewayObservation, Option<GatewayClient>) {
        let target = self.desired.gateway.as_ref();
        let token = self.desired.secrets.value(GATEWAY_TOKEN);
        match (target, token, self.identity) {
            (Some(target), Some(token), Some(identity)) => {
                gateway::look(target, self.desired, identity, token).await
            }
            _ => (
                GatewayObservation::unreachable(
                    "no gateway address or token".into(),
                    chrono::Utc::now(),
                ),
                None,
            ),
        }
    }
}
