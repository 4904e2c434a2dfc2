//! Controller-side reads and writes: load an instance for a reconcile, record what was observed,
//! and remove the row once teardown is done. Nothing here bumps `generation` or enqueues work,
//! so status writes cannot trigger reconciles; nor do they bump `resource_version`, which guards
//! desired state only, so a dashboard's read-modify-write never races the controller.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::events::{self, EventType, NewEvent};
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::StoreError;
use openclaws_model::InstanceStatus;

/// Loads an instance by uid; `None` when the row is gone.
pub async fn load(pool: &PgPool, uid: Uuid) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uid = $1"
    ))
    .bind(uid)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Opens (or extends) the instance's pairing window until `until`: its gateway is looked at
/// every few seconds meanwhile, so devices pairing now are approved promptly.
pub async fn open_pairing_window(
    db: impl sqlx::PgExecutor<'_>,
    uid: Uuid,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE instances SET pairing_window_until = GREATEST(COALESCE(pairing_window_until, $2), $2) \
         WHERE uid = $1",
    )
    .bind(uid)
    .bind(until)
    .execute(db)
    .await?;
    Ok(())
}

/// Records that the app's secrets now hold the values with this fingerprint, at this version.
pub async fn record_secrets_applied(
    pool: &PgPool,
    uid: Uuid,
    fingerprint: &str,
    version: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE instances SET fly_secrets_fingerprint = $2, fly_secrets_version = $3 WHERE uid = $1",
    )
    .bind(uid)
    .bind(fingerprint)
    .bind(version)
    .execute(pool)
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
}

/// The snapshot the last reconcile recorded, if any (`None` also when the row is gone).
pub async fn load_snapshot(
    db: impl sqlx::PgExecutor<'_>,
    uid: Uuid,
) -> Result<Option<Snapshot>, StoreError> {
    let row: Option<(Option<serde_json::Value>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT observed, observed_at FROM instances WHERE uid = $1")
            .bind(uid)
            .fetch_optional(db)
            .await?;
    Ok(match row {
        Some((Some(world), Some(at))) => Some(Snapshot { world, at }),
        _ => None,
    })
}

/// Writes the observed status, the world it was computed from (`None` keeps the previous
/// snapshot, e.g. when observing failed or reconciles are paused) and the reconcile's events in
/// one transaction.
pub async fn record(
    pool: &PgPool,
    record: &InstanceRecord,
    status: &InstanceStatus,
    snapshot: Option<&Snapshot>,
    events_to_add: &[ControllerEvent],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let fly = status.fly.clone().unwrap_or_default();
    sqlx::query(
        "UPDATE instances SET status = $2, phase = $3, observed_generation = $4, \
             fly_app = $5, fly_volume_id = $6, fly_machine_id = $7, \
             observed = COALESCE($8, observed), observed_at = COALESCE($9, observed_at) \
         WHERE uid = $1",
    )
    .bind(record.uid)
    .bind(sqlx::types::Json(status))
    .bind(status.phase.as_str())
    .bind(status.observed_generation)
    .bind(fly.app_name)
    .bind(fly.volume_id)
    .bind(fly.machine_id)
    .bind(snapshot.map(|s| &s.world))
    .bind(snapshot.map(|s| s.at))
    .execute(&mut *tx)
    .await?;
    append_all(&mut tx, record, events_to_add).await?;
    tx.commit().await?;
    Ok(())
}

async fn append_all(
    tx: &mut sqlx::PgConnection,
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
    pool: &PgPool,
    record: &InstanceRecord,
    events_to_add: &[ControllerEvent],
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    append_all(&mut tx, record, events_to_add).await?;
    events::append(
        &mut *tx,
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
            .execute(&mut *tx)
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
    pool: &PgPool,
    uids: &[Uuid],
) -> Result<Vec<(Uuid, RecordedMachine)>, StoreError> {
    let rows: Vec<RecordedRow> = sqlx::query_as(
        "SELECT uid, status->'fly'->>'machineId' AS machine_id, \
             status->'fly'->>'machineState' AS machine_state, status->'fly'->>'image' AS image \
         FROM instances WHERE uid = ANY($1)",
    )
    .bind(uids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.uid, r.machine)).collect())
}
