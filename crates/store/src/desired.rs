//! A change of desired state written in one statement: the row (guarded by its resource
//! version), the reconcile it queues and the event that records it, committed together without
//! a transaction block. A write made against the row as read moments before needs no lock: the
//! version guard is what a `SELECT ... FOR UPDATE` would have checked, and a write that finds the
//! version moved changes nothing (the caller then takes the locking path). One round trip and
//! one commit where the transactional path takes eight statements. It sends no notification:
//! the caller wakes the workers through a [`crate::wake::WorkWake`], which keeps this commit out
//! of the serialization of notifying commits.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::events::{Audit, NewEvent};
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::StoreError;
use openclaws_model::managed::Managed;
use std::collections::BTreeMap;

/// The new desired state of the instance with uid `uid`, if it is still at `expected_version`.
#[derive(Debug)]
pub struct DesiredChange<'a> {
    pub uid: Uuid,
    pub expected_version: i64,
    pub labels: &'a BTreeMap<String, String>,
    pub spec: &'a serde_json::Value,
    /// Bumps `generation` (labels alone do not).
    pub spec_changed: bool,
    pub managed: &'a Managed,
}

/// Writes `change`, queues a reconcile due now for `reason` and appends
/// `event` with `audit`, all or nothing. `None` when the row is no longer at the expected
/// version or is being deleted: nothing was written.
pub async fn write_queued(
    db: impl PgExecutor<'_>,
    change: &DesiredChange<'_>,
    event: &NewEvent<'_>,
    audit: &Audit,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "WITH updated AS ( \
             UPDATE instances SET labels = $3, spec = $4, managed_fields = $6, \
                 generation = generation + CASE WHEN $5 THEN 1 ELSE 0 END, updated_at = now() \
             WHERE uid = $1 AND resource_version = $2 AND deletion_timestamp IS NULL \
             RETURNING {INSTANCE_COLUMNS} \
         ), queued AS ( \
             INSERT INTO work (instance_uid, due_at, enqueued_at, reason) \
             SELECT uid, now(), clock_timestamp(), $7 FROM updated \
             ON CONFLICT (instance_uid) DO UPDATE \
             SET due_at = LEAST(work.due_at, now()), enqueued_at = clock_timestamp(), \
                 reason = EXCLUDED.reason, attempts = 0 \
         ), recorded AS ( \
             INSERT INTO events (instance_uid, instance_name, type, reason, message, generation, \
                                 actor, field_manager, changed_fields) \
             SELECT uid, $8, $9, $7, $10, $11, $12, $13, $14 FROM updated \
         ) \
         SELECT * FROM updated"
    ))
    .bind(change.uid)
    .bind(change.expected_version)
    .bind(sqlx::types::Json(change.labels))
    .bind(sqlx::types::Json(change.spec))
    .bind(change.spec_changed)
    .bind(sqlx::types::Json(change.managed))
    .bind(event.reason)
    .bind(event.instance_name)
    .bind(event.type_.as_str())
    .bind(event.message)
    .bind(event.generation)
    .bind(audit.actor.as_str())
    .bind(audit.field_manager.as_deref())
    .bind(audit.changed_fields.as_deref())
    .fetch_optional(db)
    .await?;
    Ok(row)
}
