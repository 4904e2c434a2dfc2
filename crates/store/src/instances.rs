//! Desired-state writes and reads for the API. Every write here gets a new `resource_version`
//! (from the database-wide sequence, set by a trigger: see [`crate::changes`]) and is guarded by
//! the version the caller read (`WHERE resource_version = $n`), so two racing writers cannot
//! both win; callers lock the row first with [`get_for_update`] inside their transaction and
//! enqueue work and append events in that same transaction (or write all three in one
//! statement: [`crate::desired`]).

use chrono::{DateTime, Utc};
use openclaws_model::selector::{
    FieldOp, FieldRequirement, FieldSelector, LabelRequirement, LabelSelector,
};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Postgres, QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

use openclaws_model::managed::Managed;

use super::records::{InstanceRecord, ResourceRecord, INSTANCE_COLUMNS, RESOURCE_COLUMNS};
use super::{Conn, StoreError};

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

/// What [`get_resource_unless`] found.
#[derive(Debug)]
pub enum Fetched {
    /// The row is still at the version the caller named.
    Unchanged,
    /// The row as it is now.
    Changed(Box<ResourceRecord>),
}

/// One instance by name as the API shows it (including one being deleted), decoded straight
/// into typed values, unless the row is still at `known` (the version of a copy the caller
/// already holds): then the stored documents are not sent, only that nothing changed. A
/// `resource_version` is handed out once, on any change to what the API shows (the
/// `instances_version` trigger), so an equal version means an equal resource.
pub async fn get_resource_unless(
    db: impl PgExecutor<'_>,
    name: &str,
    known: Option<i64>,
) -> Result<Option<Fetched>, StoreError> {
    let row = sqlx::query(
        "SELECT uid, name, generation, resource_version, created_at, deletion_timestamp, \
                COALESCE(resource_version = $2, false) AS unchanged, \
                CASE WHEN resource_version = $2 THEN NULL ELSE labels END AS labels, \
                CASE WHEN resource_version = $2 THEN NULL ELSE spec END AS spec, \
                CASE WHEN resource_version = $2 THEN NULL ELSE status END AS status, \
                CASE WHEN resource_version = $2 THEN NULL ELSE managed_fields END AS managed_fields \
         FROM instances WHERE name = $1",
    )
    .bind(name)
    .bind(known)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if row.try_get::<bool, _>("unchanged")? {
        return Ok(Some(Fetched::Unchanged));
    }
    Ok(Some(Fetched::Changed(Box::new(ResourceRecord::from_row(
        &row,
    )?))))
}

/// Instances by name as the API shows them: those of `names` that exist, in no set order.
pub async fn get_resources(
    db: impl PgExecutor<'_>,
    names: &[String],
) -> Result<Vec<ResourceRecord>, StoreError> {
    let rows = sqlx::query_as::<_, ResourceRecord>(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM instances WHERE name = ANY($1)"
    ))
    .bind(names)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// One instance by name, row-locked until the transaction ends (serialises writers of one name).
pub async fn get_for_update(
    tx: &mut Conn<'_>,
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
    /// Who owns which fields (server-side apply).
    pub managed: &'a Managed,
}

/// Inserts a new instance (generation 1, the next resource version); `None` when the name is
/// taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    new: &NewInstance<'_>,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "INSERT INTO instances (uid, name, customer_id, labels, spec, managed_fields) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (name) DO NOTHING RETURNING {INSTANCE_COLUMNS}"
    ))
    .bind(new.uid)
    .bind(new.name)
    .bind(new.customer_id)
    .bind(sqlx::types::Json(new.labels))
    .bind(sqlx::types::Json(new.spec))
    .bind(sqlx::types::Json(new.managed))
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Replaces labels, spec and field ownership if the row is still at `expected_version`; bumps
/// `generation` only when `spec_changed`. `None` when the version moved (a concurrent write won).
pub async fn update_desired(
    db: impl PgExecutor<'_>,
    uid: Uuid,
    expected_version: i64,
    labels: &BTreeMap<String, String>,
    spec: &serde_json::Value,
    spec_changed: bool,
    managed: &Managed,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "UPDATE instances SET labels = $3, spec = $4, managed_fields = $6, \
             generation = generation + CASE WHEN $5 THEN 1 ELSE 0 END, updated_at = now() \
         WHERE uid = $1 AND resource_version = $2 AND deletion_timestamp IS NULL \
         RETURNING {INSTANCE_COLUMNS}"
    ))
    .bind(uid)
    .bind(expected_version)
    .bind(sqlx::types::Json(labels))
    .bind(sqlx::types::Json(spec))
    .bind(spec_changed)
    .bind(sqlx::types::Json(managed))
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
    /// The API's `labelSelector` (empty: every instance).
    pub labels: LabelSelector,
    /// The API's `fieldSelector` (empty: every instance).
    pub fields: FieldSelector,
    /// Return only names strictly after this one (the cursor).
    pub after_name: Option<String>,
    pub limit: i64,
}

/// Instances ordered by name, at most `limit`. Every filter is a condition of the query with
/// bound parameters, so a page holds `limit` matching rows and the cursor stays exact.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &ListFilter,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let rows = list_query(INSTANCE_COLUMNS, filter)
        .build_query_as::<InstanceRecord>()
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// The names and resource versions of [`list`]'s page, without the stored documents: what a
/// caller holding rendered copies needs to tell which it can reuse.
pub async fn list_versions(
    db: impl PgExecutor<'_>,
    filter: &ListFilter,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = list_query("name, resource_version", filter)
        .build_query_as::<(String, i64)>()
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// The query of [`list`] selecting `columns`.
fn list_query<'a>(columns: &str, filter: &'a ListFilter) -> QueryBuilder<'a, Postgres> {
    let mut query =
        QueryBuilder::<Postgres>::new(format!("SELECT {columns} FROM instances WHERE true"));
    if let Some(customer_id) = &filter.customer_id {
        query.push(" AND customer_id = ").push_bind(customer_id);
    }
    if let Some(phase) = &filter.phase {
        query.push(" AND phase = ").push_bind(phase);
    }
    if let Some(after) = &filter.after_name {
        query.push(" AND name COLLATE \"C\" > ").push_bind(after);
    }
    if let Some(search) = &filter.search {
        query
            .push(" AND (customer_id = ")
            .push_bind(search)
            .push(" OR starts_with(name, ")
            .push_bind(search)
            .push("))");
    }
    for requirement in filter.labels.requirements() {
        query.push(" AND ");
        push_label_requirement(&mut query, requirement);
    }
    for requirement in filter.fields.requirements() {
        query.push(" AND ");
        push_field_requirement(&mut query, requirement);
    }
    query
        .push(" ORDER BY name COLLATE \"C\" LIMIT ")
        .push_bind(filter.limit);
    query
}

/// `{"key": "value"}`, the object a label requirement looks for with `@>` (which the GIN index
/// on `labels` serves).
fn containing(key: &str, value: &str) -> Json<Value> {
    Json(serde_json::json!({ key: value }))
}

/// One label requirement as a condition with Kubernetes' semantics: `!=` and `notin` hold for
/// an absent label. `labels` is never NULL, so `NOT` of a containment is exact.
pub(crate) fn push_label_requirement(
    query: &mut QueryBuilder<'_, Postgres>,
    requirement: &LabelRequirement,
) {
    let key = requirement.key();
    let any_of = |values: &BTreeSet<String>| -> Vec<Json<Value>> {
        values.iter().map(|v| containing(key, v)).collect()
    };
    match requirement {
        LabelRequirement::Equals { value, .. } => {
            query.push("labels @> ").push_bind(containing(key, value));
        }
        LabelRequirement::NotEquals { value, .. } => {
            query
                .push("NOT labels @> ")
                .push_bind(containing(key, value));
        }
        LabelRequirement::In { values, .. } => {
            query
                .push("labels @> ANY(")
                .push_bind(any_of(values))
                .push(")");
        }
        LabelRequirement::NotIn { values, .. } => {
            query
                .push("NOT labels @> ANY(")
                .push_bind(any_of(values))
                .push(")");
        }
        LabelRequirement::Exists { .. } => {
            query.push("labels ? ").push_bind(key.to_owned());
        }
        LabelRequirement::DoesNotExist { .. } => {
            query.push("NOT labels ? ").push_bind(key.to_owned());
        }
    }
}

/// One field requirement as a condition on its column.
fn push_field_requirement(query: &mut QueryBuilder<'_, Postgres>, requirement: &FieldRequirement) {
    let (column, op, value) = match requirement {
        FieldRequirement::Phase { op, phase } => ("phase", *op, phase.as_str().to_owned()),
        FieldRequirement::CustomerId { op, value } => ("customer_id", *op, value.clone()),
    };
    let operator = match op {
        FieldOp::Equals => " = ",
        FieldOp::NotEquals => " <> ",
    };
    query.push(column).push(operator).push_bind(value);
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
