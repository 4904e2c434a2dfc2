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
        Ok(mut world) => Some(Snapshot {
            digest: Some(world_digest(&mut world)),
            world,
            at: observed.observed_at.unwrap_or(now),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the observed world does not serialize; snapshot not recorded");
            None
        }
    }
}

/// The digest of `world` without the times every look changes (when it was observed, when the
/// gateway answered): equal digests mean the stored snapshot can stay. The times are taken out
/// for hashing and put back.
fn world_digest(world: &mut serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    const TIMES: [&str; 2] = ["/observed_at", "/gateway/at"];
    let taken: Vec<Option<serde_json::Value>> = TIMES
        .iter()
        .map(|p| world.pointer_mut(p).map(serde_json::Value::take))
        .collect();
    let bytes = serde_json::to_vec(world).unwrap_or_default();
    for (path, value) in TIMES.iter().zip(taken) {
        if let (Some(slot), Some(value)) = (world.pointer_mut(path), value) {
            *slot = value;
        }
    }
    format!("sha256:{:x}", Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_the_times_of_a_look_but_nothing_else() {
        let mut a = serde_json::json!({"observed_at": "2026-12-02T01:00:00Z", "machines": [{"id": "m1", "state": "started"}],
            "gateway": {"health": "Healthy", "at": "2026-12-02T01:00:00Z"}});
        let mut b = a.clone();
        b["observed_at"] = "2026-12-02T02:00:00Z".into();
        b["gateway"]["at"] = "2026-12-02T02:00:00Z".into();
        let (da, db) = (world_digest(&mut a), world_digest(&mut b));
        assert_eq!(da, db);
        assert_eq!(
            b["observed_at"], "2026-12-02T02:00:00Z",
            "times are put back"
        );
        assert_eq!(b["gateway"]["at"], "2026-12-02T02:00:00Z");
        b["machines"][0]["state"] = "stopped".into();
        assert_ne!(world_digest(&mut b), da);
        let mut no_gateway = serde_json::json!({"observed_at": null, "gateway": null});
        assert!(world_digest(&mut no_gateway).starts_with("sha256:"));
        assert_eq!(
            no_gateway,
            serde_json::json!({"observed_at": null, "gateway": null})
        );
    }
}
