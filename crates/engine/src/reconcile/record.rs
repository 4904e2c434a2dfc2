//! Stage 6, record: everything the reconcile decided, in one transaction: the status, the
//! world it planned from (for the plan preview), its events, the secrets it created, the
//! secrets it set on the app, the pairing window and the drift and first-`Ready` bookkeeping.
//! A finished teardown deletes the row instead, keeping the events and a tombstone.

use chrono::{DateTime, Utc};
use openclaws_store::Db;

use openclaws_model::secrets::SecretCipher;
use openclaws_store::status::{self as status_store, NewSecrets, Recording, Snapshot};

use super::report::Report;
use super::world::Observed;
use super::ReconcileError;

/// Writes what `report` holds, fenced by the work lease of `lease_owner` when given.
pub(super) async fn record(
    pool: &Db,
    cipher: &SecretCipher,
    report: &Report,
    lease_owner: Option<&str>,
) -> Result<(), ReconcileError> {
    let record = &report.loaded.record;
    if report.converged.finalized {
        status_store::finalize_deletion(pool, record, &report.converged.steps, lease_owner).await?;
        return Ok(());
    }
    let snapshot = report
        .converged
        .observed
        .as_ref()
        .and_then(|observed| snapshot(observed, report.loaded.now));
    let new_secrets: Vec<(&str, &str)> = report
        .resolved
        .new_secrets
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let write = Recording {
        snapshot: snapshot.as_ref(),
        events: &report.judged.events,
        new_secrets: NewSecrets(&new_secrets),
        gateway_token_rotation: report.resolved.gateway_token_rotation,
        secrets_applied: report
            .converged
            .secrets_applied
            .as_ref()
            .map(|(fp, version)| (fp.as_str(), *version)),
        pairing_window_until: report.next.pairing_window_until,
        first_ready_at: report.judged.first_ready_at,
        drift_repairs: report.judged.drift_repairs.clone(),
        lease_owner,
        adopted: report
            .converged
            .observed
            .as_ref()
            .and_then(|o| o.adoption_verified.as_ref())
            .map(|(volume, machine)| (volume.as_str(), machine.as_str())),
    };
    status_store::record(pool, cipher, record, &report.judged.status, &write).await?;
    Ok(())
}

/// The world the final plan was made from, for the API's plan preview; `None` (the previous
/// snapshot stays) in the unexpected case that it does not serialize.
fn snapshot(observed: &Observed, now: DateTime<Utc>) -> Option<Snapshot> {
    match serde_json::to_value(observed) {
        Ok(world) => Some(Snapshot {
            world,
            at: observed.observed_at.unwrap_or(now),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the observed world does not serialize; snapshot not recorded");
            None
        }
    }
}
