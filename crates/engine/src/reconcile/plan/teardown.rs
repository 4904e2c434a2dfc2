//! Teardown, in order: the machines (force-destroyed; a wedged one recovered), the volumes, the
//! hostname's certificate and our DNS record, then the app. Finalized once nothing of ours is
//! left. Nothing without our mark is touched.

use std::time::Duration;

use openclaws_model::conditions::Reason;

use super::endpoint::our_record;
use super::machine::host_unreachable;
use super::{Action, Plan};
use crate::reconcile::desired::Desired;
use crate::reconcile::machine;
use crate::reconcile::world::Observed;

/// The next teardown step.
pub(super) fn plan_teardown(desired: &Desired, observed: &Observed) -> Plan {
    if !observed.app_is_ours() {
        // The app is gone (or the name is someone else's, which we never touch); only our DNS
        // record may be left, e.g. when the app was deleted out of band.
        if let Some(r) = our_record(desired, observed) {
            return Plan::act(vec![Action::DeleteDnsRecord {
                id: r.id.clone(),
                name: r.name.clone(),
            }]);
        }
        return Plan {
            finalize: true,
            ..Plan::default()
        };
    }
    if !observed.machines.is_empty() {
        return destroy_machines(desired, observed);
    }
    if !observed.volumes.is_empty() {
        return Plan::act(
            observed
                .volumes
                .iter()
                .map(|v| Action::DeleteVolume { id: v.id.clone() })
                .collect(),
        );
    }
    let endpoint = remove_endpoint(desired, observed);
    if !endpoint.is_empty() {
        return Plan::act(endpoint);
    }
    if observed.app_deletion_requested {
        return Plan::wait(
            Reason::AppDeleting,
            format!("waiting for app {} to be deleted", desired.app_name),
            Duration::from_secs(2),
        );
    }
    Plan::act(vec![Action::DeleteApp {
        name: desired.app_name.clone(),
    }])
}

/// Destroys every machine (recovering a wedged one), or waits for those being destroyed.
fn destroy_machines(desired: &Desired, observed: &Observed) -> Plan {
    if let Some(wait) = host_unreachable(observed) {
        return wait;
    }
    let actions: Vec<Action> = observed
        .machines
        .iter()
        .filter_map(|m| {
            match machine::stuck_for(m, observed.observed_at, desired.machine_stuck_after) {
                Some(age) => Some(Action::RecoverStuckMachine {
                    id: m.id.clone(),
                    state: m.state.clone(),
                    stuck_secs: age.as_secs(),
                }),
                None => (m.state != "destroying").then(|| Action::DestroyMachine {
                    id: m.id.clone(),
                    force: true,
                }),
            }
        })
        .collect();
    if actions.is_empty() {
        return Plan::wait(
            Reason::MachineDestroying,
            "waiting for the machine to be destroyed".to_owned(),
            machine::settle_time("destroying"),
        );
    }
    Plan::act(actions)
}

/// Our DNS record and the hostname's certificate, when present.
fn remove_endpoint(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(r) = our_record(desired, observed) {
        actions.push(Action::DeleteDnsRecord {
            id: r.id.clone(),
            name: r.name.clone(),
        });
    }
    if observed.certificate.is_some() {
        actions.push(Action::DeleteCertificate {
            hostname: desired.hostname.clone(),
        });
    }
    actions
}
