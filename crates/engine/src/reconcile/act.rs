//! Acting: one Fly call per action, with its result folded back into the observed state so the
//! engine can plan again without re-reading the world.

use std::time::Duration;

use openclaws_dns::{CloudflareDns, DnsError};
use openclaws_fly::types::Machine;
use openclaws_fly::{FlyClient, FlyError};
use openclaws_model::conditions::Reason;

use super::errors::StepError;
use super::plan::{Action, Wait};
use super::world::{AppObservation, Observed};

/// Why an action did not complete.
#[derive(Debug)]
pub enum StepFailure {
    /// Fly is still settling (412, version race, a name we may have taken ourselves): look again
    /// shortly. Not counted as an error.
    Wait(Wait),
    /// A real failure: recorded as `lastError`, retried with backoff.
    Failed {
        step: &'static str,
        error: StepError,
    },
}

/// Runs one action and records its effect in `observed`.
pub async fn execute(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    desired: &super::desired::Desired,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepFailure> {
    let step = action.step();
    let result = run(fly, dns, &desired.app_name, observed, action).await;
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(classify(step, action, error)),
    }
}

async fn run(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    app: &str,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepError> {
    match action {
        Action::AddCertificate { .. }
        | Action::DeleteCertificate { .. }
        | Action::CreateDnsRecord { .. }
        | Action::UpdateDnsRecord { .. }
        | Action::DeleteDnsRecord { .. } => run_endpoint(fly, dns, app, observed, action).await,
        Action::CreateApp { .. }
        | Action::DeleteApp { .. }
        | Action::AssignIp { .. }
        | Action::ReleaseIp { .. }
        | Action::SetSecrets { .. } => run_app(fly, app, observed, action).await,
        Action::CreateVolume { .. }
        | Action::ExtendVolume { .. }
        | Action::DeleteVolume { .. }
        | Action::CreateMachine { .. } => run_create_or_storage(fly, app, observed, action).await,
        _ => run_machine(fly, app, observed, action).await,
    }
}

/// An action this function does not carry out: a planning mistake, never a Fly answer.
fn misrouted(action: &Action) -> StepError {
    FlyError::Decode {
        message: format!("{} is not carried out here", action.step()),
    }
    .into()
}

/// The hostname's certificate and DNS record.
async fn run_endpoint(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    app: &str,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepError> {
    let dns_client = || {
        dns.ok_or_else(|| DnsError::Rejected {
            status: 0,
            message: "no DNS provider is configured".to_owned(),
        })
    };
    match action {
        Action::AddCertificate { hostname } => {
            fly.add_certificate(app, hostname).await?;
            observed.certificate = fly.get_certificate(app, hostname).await?;
        }
        Action::DeleteCertificate { hostname } => {
            ignore_not_found(fly.delete_certificate(app, hostname).await)?;
            observed.certificate = None;
        }
        Action::CreateDnsRecord { record } => {
            let created = dns_client()?.create(record).await?;
            observed.dns_records.push(created);
        }
        Action::UpdateDnsRecord { id, record } => {
            dns_client()?.update(id, record).await?;
            if let Some(r) = observed.dns_records.iter_mut().find(|r| &r.id == id) {
                r.type_ = record.type_.clone();
                r.content = record.content.clone();
            }
        }
        Action::DeleteDnsRecord { id, .. } => {
            dns_client()?.delete(id).await?;
            observed.dns_records.retain(|r| &r.id != id);
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// The app itself, its addresses and its secrets.
async fn run_app(
    fly: &FlyClient,
    app: &str,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepError> {
    match action {
        Action::CreateApp { name, network } => {
            let created = fly.create_app(name, network).await?;
            observed.app = AppObservation::Ours(created);
        }
        Action::DeleteApp { name } => {
            ignore_not_found(fly.delete_app(name, true).await)?;
            observed.app_deletion_requested = true;
        }
        Action::AssignIp { kind } => {
            fly.assign_ip(app, kind).await?;
            // The address is read back on the next observation.
            observed.ips.push((kind.clone(), String::new()));
        }
        Action::ReleaseIp { ip } => {
            ignore_not_found(fly.release_ip(app, ip).await)?;
            observed.ips.retain(|(_, i)| i != ip);
        }
        Action::SetSecrets { write } => {
            let version = fly.set_secrets(app, &write.values).await?;
            for (name, value) in &write.values {
                if value.is_some() {
                    observed.secrets.names.insert(name.clone());
                } else {
                    observed.secrets.names.remove(name);
                }
            }
            observed.secrets.applied = Some((
                write.fingerprint.clone(),
                i64::try_from(version).unwrap_or(i64::MAX),
            ));
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// Creates (volumes, the machine) and the volume's size and deletion: no lease is needed.
async fn run_create_or_storage(
    fly: &FlyClient,
    app: &str,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepError> {
    match action {
        Action::CreateVolume { request } => {
            let volume = fly.create_volume(app, request).await?;
            observed.volumes.push(volume);
        }
        Action::ExtendVolume { id, size_gb } => {
            let extended = fly.extend_volume(app, id, *size_gb).await?;
            replace_volume(observed, extended.volume);
        }
        Action::DeleteVolume { id } => {
            ignore_not_found(fly.delete_volume(app, id).await)?;
            observed.volumes.retain(|v| &v.id != id);
        }
        Action::CreateMachine { request } => {
            let machine = fly.create_machine(app, request).await?;
            observed.machines.push(machine);
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// Changes to an existing machine, each under its lease.
async fn run_machine(
    fly: &FlyClient,
    app: &str,
    observed: &mut Observed,
    action: &Action,
) -> Result<(), StepError> {
    let (id, state) = match action {
        Action::UpdateMachine { id, request, .. } => {
            let machine = leased(fly, app, id, action, |nonce| async move {
                fly.update_machine(app, id, request, Some(&nonce)).await
            })
            .await?;
            replace_machine(observed, machine);
            return Ok(());
        }
        Action::StartMachine { id } => {
            leased(fly, app, id, action, |nonce| async move {
                fly.start_machine(app, id, Some(&nonce)).await
            })
            .await?;
            (id, "starting")
        }
        Action::StopMachine { id } => {
            leased(fly, app, id, action, |nonce| async move {
                fly.stop_machine(app, id, Some(&nonce)).await
            })
            .await?;
            (id, "stopping")
        }
        Action::DestroyMachine { id, .. } | Action::RecoverStuckMachine { id, .. } => {
            let force = !matches!(action, Action::DestroyMachine { force: false, .. });
            ignore_not_found(
                leased(fly, app, id, action, |nonce| async move {
                    fly.delete_machine(app, id, force, Some(&nonce)).await
                })
                .await,
            )?;
            (id, "destroying")
        }
        Action::RestartMachine { id, .. } => {
            leased(fly, app, id, action, |nonce| async move {
                fly.restart_machine(app, id, Some(&nonce)).await
            })
            .await?;
            observed.gateway = None;
            (id, "restarting")
        }
        other => return Err(misrouted(other)),
    };
    set_state(observed, id, state);
    Ok(())
}

/// Runs a mutation of an existing machine under its lease: acquire, mutate with the nonce,
/// release. A lease someone else holds fails the step with [`FlyError::LeaseHeld`] (retried once
/// it expires) before anything is changed. A release that fails is only logged: the lease
/// expires on its own after [`openclaws_fly::client::LEASE_TTL`], and this process refreshes it
/// meanwhile. After a destroy there is nothing left to release.
async fn leased<T, F, Fut>(
    fly: &FlyClient,
    app: &str,
    id: &str,
    action: &Action,
    mutate: F,
) -> Result<T, FlyError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, FlyError>>,
{
    let description = format!("openclaws-controller: {}", action.step());
    let lease = fly.acquire_lease(app, id, &description).await?;
    let result = mutate(lease.nonce.clone()).await;
    let destroyed = result.is_ok()
        && matches!(
            action,
            Action::DestroyMachine { .. } | Action::RecoverStuckMachine { .. }
        );
    if !destroyed {
        if let Err(e) = fly.release_lease(app, id, &lease.nonce).await {
            tracing::warn!(machine = %id, error = %e, "machine lease not released; it expires on its own");
        }
    }
    result
}

fn ignore_not_found(r: Result<(), FlyError>) -> Result<(), FlyError> {
    match r {
        Err(FlyError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

fn replace_volume(observed: &mut Observed, volume: openclaws_fly::types::Volume) {
    if let Some(v) = observed.volumes.iter_mut().find(|v| v.id == volume.id) {
        *v = volume;
    }
}

fn replace_machine(observed: &mut Observed, machine: Machine) {
    if let Some(m) = observed.machines.iter_mut().find(|m| m.id == machine.id) {
        *m = machine;
    } else {
        observed.machines.push(machine);
    }
}

fn set_state(observed: &mut Observed, id: &str, state: &str) {
    if let Some(m) = observed.machines.iter_mut().find(|m| m.id == id) {
        m.state = state.to_owned();
    }
}

/// Sorts a failed step into "look again soon" and "a failure to back off from".
fn classify(step: &'static str, action: &Action, error: StepError) -> StepFailure {
    let wait = |reason: Reason, after_ms: u64| {
        StepFailure::Wait(Wait {
            reason,
            message: format!("{}: {error}", action.describe()),
            after: Duration::from_millis(after_ms),
        })
    };
    let StepError::Fly(fly) = &error else {
        return StepFailure::Failed { step, error };
    };
    match fly {
        FlyError::Precondition { .. } => wait(Reason::FlyPrecondition, 2000),
        FlyError::Conflict { .. } => wait(Reason::FlyConflict, 1000),
        // The thing vanished under us (drift): observe again.
        FlyError::NotFound { .. } => wait(Reason::ResourceVanished, 200),
        // Maybe our own earlier create whose response was lost: observation decides.
        FlyError::Rejected {
            code: Some(code), ..
        } if code == "name_taken" && matches!(action, Action::CreateApp { .. }) => {
            wait(Reason::AppNameTaken, 200)
        }
        _ => StepFailure::Failed { step, error },
    }
}
