//! Planning: a pure function from desired and observed state to the next actions.
//!
//! [`plan`] returns only actions whose dependencies already hold in `observed` (a machine needs
//! a volume, a volume needs the app), so the engine can run them in order, fold their results
//! back into `observed` and plan again. An empty plan with no wait means converged.
//!
//! One file per concern: the app and what hangs on it ([`app`]: name, secrets, addresses), the
//! volume and machine ([`machine`]), the public endpoint ([`endpoint`]: certificate and DNS),
//! the gateway itself ([`gateway`]: looks, the controller's pairing, owned config, device
//! approvals) and teardown ([`teardown`]). [`Action`] is the vocabulary they share.

mod action;
mod app;
mod describe;
mod dm_pairing;
mod endpoint;
mod gateway;
mod machine;
mod teardown;
#[cfg(test)]
mod tests;

pub use action::{Action, ChannelPairingStep};
pub use dm_pairing::outstanding_decisions;
pub use endpoint::{content_ok, dns_target, our_record};
pub use gateway::{
    plan_pairing, GATEWAY_BOOT_GRACE, GATEWAY_RECHECK_BOOTING, GATEWAY_RECHECK_SETTLED,
};
pub use machine::{CRASH_LOOP_RECHECK, HOST_UNREACHABLE_RECHECK};

use std::time::Duration;

use openclaws_model::conditions::Reason;

use super::desired::Desired;
use super::world::Observed;

/// Something in flight that the next visit should look at, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub reason: Reason,
    pub message: String,
    pub after: Duration,
}

/// A problem retrying will not fix for this generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    pub reason: Reason,
    pub message: String,
}

/// The outcome of planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub wait: Option<Wait>,
    pub blocked: Option<Blocked>,
    /// Teardown is complete: the row can go.
    pub finalize: bool,
    /// The Fly side is converged: look at the gateway itself, then plan again.
    pub look_at_gateway: bool,
}

impl Plan {
    /// Nothing to do and nothing to wait for.
    pub fn is_converged(&self) -> bool {
        self.actions.is_empty()
            && self.wait.is_none()
            && self.blocked.is_none()
            && !self.finalize
            && !self.look_at_gateway
    }

    fn act(actions: Vec<Action>) -> Self {
        Self {
            actions,
            ..Self::default()
        }
    }

    fn wait(reason: Reason, message: String, after: Duration) -> Self {
        Self {
            wait: Some(Wait {
                reason,
                message,
                after,
            }),
            ..Self::default()
        }
    }

    fn blocked(reason: Reason, message: String) -> Self {
        Self {
            blocked: Some(Blocked { reason, message }),
            ..Self::default()
        }
    }
}

/// Plans the next steps for one instance.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    if desired.deleting {
        teardown::plan_teardown(desired, observed)
    } else {
        plan_converge(desired, observed)
    }
}

/// The app first, then the volume and machine, then the endpoint (certificate and DNS), so a
/// DNS problem never holds up the gateway itself; the gateway once the Fly side is converged.
fn plan_converge(desired: &Desired, observed: &Observed) -> Plan {
    if let Some(plan) = app::plan_app(desired, observed) {
        return plan;
    }
    let mut plan = machine::plan_machine_side(desired, observed);
    if plan.blocked.is_some() {
        return plan;
    }
    let endpoint = endpoint::plan_endpoint(desired, observed);
    if !endpoint.is_empty() {
        plan.actions.extend(endpoint);
        return plan;
    }
    if plan.is_converged() {
        if let Some(wait) = endpoint::certificate_wait(desired, observed) {
            return wait;
        }
        if let Some(gateway) = gateway::plan_gateway(desired, observed) {
            return gateway;
        }
    }
    plan
}
