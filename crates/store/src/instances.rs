//! Desired-state writes and reads for the API. Every write here gets a new `resource_version`
//! (from the database-wide sequence, set by a trigger: see [`crate::changes`]) and is guarded by
//! the version the caller read (`WHERE resource_version = $n`), so two racing writers cannot
//! both win; callers lock the row first with [`get_for_update`] inside their transaction and
//! enqueue work and append events in that same transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::StoreError;

/// One instance by name (including one being deleted).
pub async fn get(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// One instance by name, row-locked until the transaction ends (serialises writers of one name).
pub async fn get_for_update(
    tx: &mut PgConnection,
    name: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = $1 FOR UPDATE"
    ))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row)
}

/// A new instance row.
#[derive(Debug, Clone)]
pub struct NewInstance<'a> {
    pub uid: Uuid,
    pub name: &'a str,
    pub customer_id: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// The spec with defaults applied and secrets replaced by references.
    pub spec: &'a serde_json::Value,
}

/// Inserts a new instance (generation 1, the next resource version); `None` when the name is
/// taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    new: &NewInstance<'_>,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "INSERT INTO instances (uid, name, customer_id, labels, spec) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO NOTHING RETURNING {INSTANCE_COLUMNS}"
    ))
    .bind(new.uid)
    .bind(new.name)
    .bind(new.customer_id)
    .bind(sqlx::types::Json(new.labels))
    .bind(sqlx::types::Json(new.spec))
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Replaces labels and spec if the row is still at `expected_version`; bumps `generation` only
/// when `spec_changed`. `None` when the version moved (a concurrent write won).
pub async fn update_desired(
    db: impl PgExecutor<'_>,
    uid: Uuid,
    expected_version: i64,
    labels: &BTreeMap<String, String>,
    spec: &serde_json::Value,
    spec_changed: bool,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "UPDATE instances SET labels = $3, spec = $4, \
             generation = generation + CASE WHEN $5 THEN 1 ELSE 0 END, updated_at = now() \
         WHERE uid = $1 AND resource_version = $2 AND deletion_timestamp IS NULL \
         RETURNING {INSTANCE_COLUMNS}"
    ))
    .bind(uid)
    .bind(expected_version)
    .bind(sqlx::types::Json(labels))
    .bind(sqlx::types::Json(spec))
    .bind(spec_changed)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Sets `deletion_timestamp` if the row is still at `expected_version` and not already deleting.
/// `None` when the version moved or deletion was already requested.
pub async fn mark_deleted(
    db: impl PgExecutor<'_>,
    uid: Uuid,
    expected_version: i64,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "UPDATE instances SET deletion_timestamp = now(), updated_at = now() \
         WHERE uid = $1 AND resource_version = $2 AND deletion_timestamp IS NULL \
         RETURNING {INSTANCE_COLUMNS}"
    ))
    .bind(uid)
    .bind(expected_version)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Filter and page of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub customer_id: Option<String>,
    pub phase: Option<String>,
    /// Support's search box: instances whose customer id is exactly this, or whose name starts
    /// with it.
    pub search: Option<String>,
    /// Return only names strictly after this one (the cursor).
    pub after_name: Option<String>,
    pub limit: i64,
}

/// Instances ordered by name, at most `limit`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &ListFilter,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let rows = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances \
         WHERE ($1::text IS NULL OR customer_id = $1) \
           AND ($2::text IS NULL OR phase = $2) \
           AND ($3::text IS NULL OR name COLLATE \"C\" > $3) \
           AND ($5::text IS NULL OR customer_id = $5 OR starts_with(name, $5)) \
         ORDER BY name COLLATE \"C\" LIMIT $4"
    ))
    .bind(filter.customer_id.as_deref())
    .bind(filter.phase.as_deref())
    .bind(filter.after_name.as_deref())
    .bind(filter.limit)
    .bind(filter.search.as_deref())
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Whether any event was ever recorded for `name` (so a deleted instance's history is found).
pub async fn has_history(db: impl PgExecutor<'_>, name: &str) -> Result<bool, StoreError> {
    let found: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE instance_name = $1)")
            .bind(name)
            .fetch_one(db)
            .await?;
    Ok(found)
}

/// The database's clock, so timestamps written by the API agree with `now()` in SQL.
pub async fn db_now(db: impl PgExecutor<'_>) -> Result<DateTime<Utc>, StoreError> {
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(db).await?;
    Ok(now)
}
