//! Controller-side reads and writes: load an instance for a reconcile, record what was observed,
//! and remove the row once teardown is done. Nothing here bumps `generation` or enqueues work,
//! so status writes cannot trigger reconciles. A status write that changes the status moves
//! `resource_version` (so watches see it, [`crate::changes`]); one that writes the same status
//! again, or only bookkeeping, keeps it.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::events::{self, EventType, NewEvent};
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::secrets::{self, SecretStoreError};
use super::{adoptions, work};
use super::{Conn, Db, StoreError};
use openclaws_model::secrets::SecretCipher;
use openclaws_model::InstanceStatus;

/// Loads an instance by uid; `None` when the row is gone.
pub async fn load(
    db: impl PgExecutor<'_>,
    uid: Uuid,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uid = $1"
    ))
    .bind(uid)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Opens (or extends) the instance's pairing window until `until`: a replica follows its
/// gateway's pairing events meanwhile, so devices pairing now are approved promptly.
pub async fn open_pairing_window(
    db: impl sqlx::PgExecutor<'_>,
    uid: Uuid,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    // The notification (sent at commit) wakes an idle pairing pool at once.
    sqlx::query(
        "WITH opened AS (UPDATE instances \
             SET pairing_window_until = GREATEST(COALESCE(pairing_window_until, $2), $2) \
             WHERE uid = $1 RETURNING uid) \
         SELECT pg_notify($3, uid::text) FROM opened",
    )
    .bind(uid)
    .bind(until)
    .bind(crate::WORK_CHANNEL)
    .execute(db)
    .await?;
    Ok(())
}

/// An event the controller wants recorded with a status write.
#[derive(Debug, Clone)]
pub struct ControllerEvent {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

/// The world a reconcile planned from, as stored for the API's plan preview (which must not call
/// Fly itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The serialized observation: names, ids, states and fingerprints, never secret values.
    pub world: serde_json::Value,
    /// When the reconcile read it.
    pub at: DateTime<Utc>,
    /// A digest of the world without its times: a write whose digest matches the stored one
    /// keeps the stored world (no new out-of-line copy); `None` always writes it.
    pub digest: Option<String>,
}

/// The snapshot the last reconcile recorded, if any (`None` also when the row is gone).
pub async fn load_snapshot(
    db: impl sqlx::PgExecutor<'_>,
    uid: Uuid,
) -> Result<Option<Snapshot>, StoreError> {
    type Row = (
        Option<serde_json::Value>,
        Option<DateTime<Utc>>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT observed, observed_at, observed_digest FROM instances WHERE uid = $1",
    )
    .bind(uid)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some((Some(world), Some(at), digest)) => Some(Snapshot { world, at, digest }),
        _ => None,
    })
}

/// Everything one reconcile writes, in one transaction with its status.
#[derive(Debug, Default)]
pub struct Recording<'a> {
    /// The world the status was computed from; `None` keeps the previous snapshot (observing
    /// failed, or reconciles are paused).
    pub snapshot: Option<&'a Snapshot>,
    /// The reconcile's events.
    pub events: &'a [ControllerEvent],
    /// Secrets the reconcile created, by name, stored encrypted (values redacted from Debug).
    pub new_secrets: NewSecrets<'a>,
    /// The rotation a newly stored gateway token answers (`spec.gatewayTokenRotation`).
    pub gateway_token_rotation: Option<i64>,
    /// Fingerprint and Fly version of the app secrets the reconcile set.
    pub secrets_applied: Option<(&'a str, i64)>,
    /// Open (or extend) the pairing window until then.
    pub pairing_window_until: Option<DateTime<Utc>>,
    /// When the instance became `Ready` for the first time (kept once set).
    pub first_ready_at: Option<DateTime<Utc>>,
    /// The open drift's repair kinds: `None` leaves them, `Some(None)` closes the drift,
    /// `Some(Some(kinds))` opens or updates it.
    pub drift_repairs: Option<Option<Vec<String>>>,
    /// The work lease this write is fenced by: nothing is written unless its owner still holds
    /// it. `None` for writes made outside a claimed reconcile.
    pub lease_owner: Option<&'a str>,
    /// An adopted app's layout was verified: its kept `(volume id, machine id)`.
    pub adopted: Option<(&'a str, &'a str)>,
}

/// Secret values to store; `Debug` shows their names only.
#[derive(Default, Clone, Copy)]
pub struct NewSecrets<'a>(pub &'a [(&'a str, &'a str)]);

impl std::fmt::Debug for NewSecrets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// Writes a reconcile's status and everything in `write` in one transaction.
pub async fn record(
    db: &Db,
    cipher: &SecretCipher,
    record: &InstanceRecord,
    status: &InstanceStatus,
    write: &Recording<'_>,
) -> Result<(), SecretStoreError> {
    let mut tx = db.begin().await?;
    let fly = status.fly.clone().unwrap_or_default();
    sqlx::query(
        "UPDATE instances SET status = $2, phase = $3, observed_generation = $4, \
             fly_app = $5, fly_volume_id = $6, fly_machine_id = $7, \
             observed = CASE WHEN $8::jsonb IS NULL OR (observed IS NOT NULL \
                 AND $17::text IS NOT NULL AND observed_digest = $17) THEN observed ELSE $8 END, \
             observed_digest = CASE WHEN $8::jsonb IS NULL THEN observed_digest ELSE $17 END, \
             observed_at = COALESCE($9, observed_at), \
             gateway_token_rotation = COALESCE($10, gateway_token_rotation), \
             fly_secrets_fingerprint = COALESCE($11, fly_secrets_fingerprint), \
             fly_secrets_version = COALESCE($12, fly_secrets_version), \
             pairing_window_until = CASE WHEN $13::timestamptz IS NULL THEN pairing_window_until \
                 ELSE GREATEST(COALESCE(pairing_window_until, $13), $13) END, \
             first_ready_at = COALESCE(first_ready_at, $14), \
             drift_repairs = CASE WHEN $15 THEN $16 ELSE drift_repairs END \
         WHERE uid = $1",
    )
    .bind(record.uid)
    .bind(sqlx::types::Json(status))
    .bind(status.phase.as_str())
    .bind(status.observed_generation)
    .bind(fly.app_name)
    .bind(fly.volume_id)
    .bind(fly.machine_id)
    .bind(write.snapshot.map(|s| &s.world))
    .bind(write.snapshot.map(|s| s.at))
    .bind(write.gateway_token_rotation)
    .bind(write.secrets_applied.map(|(fp, _)| fp))
    .bind(write.secrets_applied.map(|(_, v)| v))
    .bind(write.pairing_window_until)
    .bind(write.first_ready_at)
    .bind(write.drift_repairs.is_some())
    .bind(write.drift_repairs.clone().flatten())
    .bind(write.snapshot.and_then(|s| s.digest.as_deref()))
    .execute(&mut tx)
    .await?;
    // After the instance row, as the API locks them (instance, then work): no deadlock.
    if let Some(owner) = write.lease_owner {
        work::hold(&mut tx, record.uid, owner).await?;
    }
    let now = Utc::now();
    for (name, value) in write.new_secrets.0 {
        secrets::put(&mut tx, cipher, record.uid, name, value, now).await?;
    }
    if let Some((volume_id, machine_id)) = write.adopted {
        adoptions::mark_adopted(&mut tx, record.uid, volume_id, machine_id).await?;
    }
    append_all(&mut tx, record, write.events).await?;
    tx.commit().await?;
    Ok(())
}

async fn append_all(
    tx: &mut Conn<'_>,
    record: &InstanceRecord,
    events_to_add: &[ControllerEvent],
) -> Result<(), StoreError> {
    for e in events_to_add {
        events::append(
            &mut *tx,
            &NewEvent {
                instance_uid: record.uid,
                instance_name: &record.name,
                type_: e.type_,
                reason: &e.reason,
                message: &e.message,
                generation: Some(record.generation),
            },
        )
        .await?;
    }
    Ok(())
}

/// Deletes the row of a torn-down instance, keeping its events and a tombstone.
/// Only deletes a row that is still marked for deletion.
pub async fn finalize_deletion(
    db: &Db,
    record: &InstanceRecord,
    events_to_add: &[ControllerEvent],
    lease_owner: Option<&str>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    if let Some(owner) = lease_owner {
        // The instance row first, as the API locks them (instance, then work).
        sqlx::query("SELECT 1 FROM instances WHERE uid = $1 FOR UPDATE")
            .bind(record.uid)
            .execute(&mut tx)
            .await?;
        work::hold(&mut tx, record.uid, owner).await?;
    }
    append_all(&mut tx, record, events_to_add).await?;
    events::append(
        &mut tx,
        &NewEvent {
            instance_uid: record.uid,
            instance_name: &record.name,
            type_: EventType::Normal,
            reason: "Deleted",
            message: "teardown finished: no app, volume or machine is left; the instance is gone",
            generation: Some(record.generation),
        },
    )
    .await?;
    let deleted =
        sqlx::query("DELETE FROM instances WHERE uid = $1 AND deletion_timestamp IS NOT NULL")
            .bind(record.uid)
            .execute(&mut tx)
            .await?;
    if deleted.rows_affected() == 1 {
        tx.commit().await?;
        Ok(true)
    } else {
        tx.rollback().await?;
        Ok(false)
    }
}

/// What the controller last recorded about an instance's machine, for the fleet watch to tell
/// news from echoes of its own work.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordedMachine {
    pub machine_id: Option<String>,
    pub machine_state: Option<String>,
    pub image: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RecordedRow {
    uid: Uuid,
    #[sqlx(flatten)]
    machine: RecordedMachine,
}

/// The recorded machine of each of `uids` that still has a row.
pub async fn recorded_machines(
    db: impl PgExecutor<'_>,
    uids: &[Uuid],
) -> Result<Vec<(Uuid, RecordedMachine)>, StoreError> {
    let rows: Vec<RecordedRow> = sqlx::query_as(
        "SELECT uid, status->'fly'->>'machineId' AS machine_id, \
             status->'fly'->>'machineState' AS machine_state, status->'fly'->>'image' AS image \
         FROM instances WHERE uid = ANY($1)",
    )
    .bind(uids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.uid, r.machine)).collect())
}
