//! Append-only per-instance history. Support reads it; it outlives the instance row (tombstones).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};
use utoipa::ToSchema;
use uuid::Uuid;

use super::StoreError;

/// Kubernetes-style event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub instance_uid: Uuid,
    pub instance_name: &'a str,
    pub type_: EventType,
    /// CamelCase cause, e.g. `CreatedMachine`.
    pub reason: &'a str,
    pub message: &'a str,
    pub generation: Option<i64>,
}

/// A stored event.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    pub instance_uid: Uuid,
    pub instance_name: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub generation: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// Who made the write this event records: `writer` or `reader` (the API token's role),
    /// `console:<session>` (a support console session); null on the controller's events.
    pub actor: Option<String>,
    /// The field manager of the write (`fieldManager`, default `api`); null when the event
    /// records no write of the desired state.
    pub field_manager: Option<String>,
    /// The fields the write changed, as JSON Pointers into `{"metadata": {"labels"}, "spec"}`
    /// (a provider key by its name, never its value); null when the event records no write
    /// of the desired state.
    pub changed_fields: Option<Vec<String>>,
}

/// Who made a write and what it changed, for its event ([`append_audited`]). Names only:
/// never a token, a secret value or a fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// `writer`, `reader` or `console:<session>`.
    pub actor: String,
    /// The field manager of a write of the desired state.
    pub field_manager: Option<String>,
    /// The fields (JSON Pointers) a write of the desired state changed.
    pub changed_fields: Option<Vec<String>>,
}

/// The columns every read of events selects.
const COLUMNS: &str = "id, instance_uid, instance_name, type, reason, message, generation, \
                       created_at, actor, field_manager, changed_fields";

/// Appends one event (the controller's: no actor).
pub async fn append(db: impl PgExecutor<'_>, event: &NewEvent<'_>) -> Result<(), StoreError> {
    insert(db, event, None).await
}

/// Appends one event recording a write through the API or the console, with its audit.
pub async fn append_audited(
    db: impl PgExecutor<'_>,
    event: &NewEvent<'_>,
    audit: &Audit,
) -> Result<(), StoreError> {
    insert(db, event, Some(audit)).await
}

async fn insert(
    db: impl PgExecutor<'_>,
    event: &NewEvent<'_>,
    audit: Option<&Audit>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (instance_uid, instance_name, type, reason, message, generation, \
                             actor, field_manager, changed_fields) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.instance_uid)
    .bind(event.instance_name)
    .bind(event.type_.as_str())
    .bind(event.reason)
    .bind(event.message)
    .bind(event.generation)
    .bind(audit.map(|a| a.actor.as_str()))
    .bind(audit.and_then(|a| a.field_manager.as_deref()))
    .bind(audit.and_then(|a| a.changed_fields.as_deref()))
    .execute(db)
    .await?;
    Ok(())
}

/// Appends an event to the instance with uid `uid` outside any reconcile's transaction: under
/// its current name and generation, or, when its row is already gone (another replica finished
/// a teardown), under the name of its latest event, so its history still shows it.
/// [`StoreError::Corrupt`] when the uid has neither a row nor any event.
pub async fn append_for_uid(
    db: impl PgExecutor<'_>,
    uid: uuid::Uuid,
    type_: EventType,
    reason: &str,
    message: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO events (instance_uid, instance_name, type, reason, message, generation) \
         SELECT $1, name, $2, $3, $4, generation FROM ( \
             SELECT name, generation, 0 AS pref FROM instances WHERE uid = $1 \
             UNION ALL \
             (SELECT instance_name, generation, 1 FROM events WHERE instance_uid = $1 \
              ORDER BY id DESC LIMIT 1) \
             ORDER BY pref LIMIT 1) AS known",
    )
    .bind(uid)
    .bind(type_.as_str())
    .bind(reason)
    .bind(message)
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Corrupt(format!(
            "no instance and no event under uid {uid}"
        )));
    }
    Ok(())
}

/// Filter for [`list`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub type_: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
    /// Only events with ids at or below this (a watch's starting point).
    pub through_id: Option<i64>,
}

/// Events of an instance name (including earlier incarnations and the tombstone), oldest first.
pub async fn list_by_name(
    db: impl PgExecutor<'_>,
    name: &str,
    filter: &EventFilter,
) -> Result<Vec<Event>, StoreError> {
    let limit = if filter.limit <= 0 { 500 } else { filter.limit };
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} \
         FROM events WHERE instance_name = $1 \
           AND ($2::text IS NULL OR type = $2) \
           AND ($3::timestamptz IS NULL OR created_at >= $3) \
           AND ($5::bigint IS NULL OR id <= $5) \
         ORDER BY id DESC LIMIT $4) newest ORDER BY id"
    );
    let rows = sqlx::query_as::<_, Event>(&sql)
        .bind(name)
        .bind(filter.type_.as_deref())
        .bind(filter.since)
        .bind(limit)
        .bind(filter.through_id)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// Events of an instance name with ids in `(after, upto]` (of type `type_` when given), oldest
/// first, at most `limit`: what a watch of its events sends next. `upto` is the events horizon
/// ([`crate::changes::horizons`]), so no event still being committed is passed over.
pub async fn after(
    db: impl PgExecutor<'_>,
    name: &str,
    type_: Option<&str>,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} \
         FROM events WHERE instance_name = $1 AND id > $2 AND id <= $3 \
           AND ($4::text IS NULL OR type = $4) \
         ORDER BY id LIMIT $5"
    );
    let rows = sqlx::query_as::<_, Event>(&sql)
        .bind(name)
        .bind(after)
        .bind(upto)
        .bind(type_)
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// Deletes at most `batch` events recorded before `older_than`, oldest ids first; returns how
/// many. One short transaction of its own (a plain statement), so it is safe through a
/// transaction pooler; rows another replica's prune holds are skipped, not waited for.
pub async fn prune_batch(
    db: impl PgExecutor<'_>,
    older_than: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM events WHERE id IN ( \
             SELECT id FROM events WHERE created_at < $1 \
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(older_than)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
