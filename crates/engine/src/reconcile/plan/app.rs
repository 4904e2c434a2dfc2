//! The app and what hangs on it before anything else can be built: its name (ours, free or
//! someone else's), its secrets and its public addresses.

use openclaws_model::conditions::Reason;

use super::{Action, Plan};
use crate::reconcile::desired::Desired;
use crate::reconcile::secrets;
use crate::reconcile::world::{AppObservation, Observed};

/// The step the app needs first, or `None` when the app is ours with the desired secrets and
/// addresses. Secrets come before the machine, so it boots with them (`min_secrets_version`).
pub(super) fn plan_app(desired: &Desired, observed: &Observed) -> Option<Plan> {
    match &observed.app {
        AppObservation::Foreign { reason } => {
            return Some(Plan::blocked(
                Reason::AppNameTaken,
                format!("app {} cannot be used: {reason}", desired.app_name),
            ))
        }
        AppObservation::Refused { reason } => {
            return Some(Plan::blocked(
                Reason::AdoptionRefused,
                format!("app {} cannot be adopted: {reason}", desired.app_name),
            ))
        }
        AppObservation::Absent => {
            return Some(Plan::act(vec![Action::CreateApp {
                name: desired.app_name.clone(),
                network: desired.network.clone(),
            }]))
        }
        AppObservation::Ours(_) => {}
    }
    if !secrets::in_sync(&desired.secrets, &observed.secrets) {
        return Some(Plan::act(vec![Action::SetSecrets {
            write: desired.secrets.write_for(&observed.secrets.names),
        }]));
    }
    let ips = plan_ips(desired, observed);
    (!ips.is_empty()).then(|| Plan::act(ips))
}

/// One address of each wanted type; duplicates (a lost allocation answer) and unwanted types
/// are released: the public ones and the Flycast address on the organization's network that
/// exposure `private` allocates. Dedicated IPv4 and Flycast addresses for other networks (which
/// this controller never allocates) are left alone.
fn plan_ips(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    for kind in ["v6", "shared_v4", "private_v6"] {
        let held: Vec<&String> = observed
            .ips
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, ip)| ip)
            .collect();
        let wanted = desired.ips.contains(&kind);
        if wanted && held.is_empty() {
            actions.push(Action::AssignIp {
                kind: kind.to_owned(),
            });
        }
        let keep = usize::from(wanted);
        actions.extend(
            held.iter()
                .skip(keep)
                .map(|ip| Action::ReleaseIp { ip: (*ip).clone() }),
        );
    }
    actions
}
