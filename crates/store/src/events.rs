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
}

/// Appends one event.
pub async fn append(db: impl PgExecutor<'_>, event: &NewEvent<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (instance_uid, instance_name, type, reason, message, generation) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.instance_uid)
    .bind(event.instance_name)
    .bind(event.type_.as_str())
    .bind(event.reason)
    .bind(event.message)
    .bind(event.generation)
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
    let rows = sqlx::query_as::<_, Event>(
        "SELECT * FROM (SELECT id, instance_uid, instance_name, type, reason, message, generation, created_at \
         FROM events WHERE instance_name = $1 \
           AND ($2::text IS NULL OR type = $2) \
           AND ($3::timestamptz IS NULL OR created_at >= $3) \
           AND ($5::bigint IS NULL OR id <= $5) \
         ORDER BY id DESC LIMIT $4) newest ORDER BY id",
    )
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
    let rows = sqlx::query_as::<_, Event>(
        "SELECT id, instance_uid, instance_name, type, reason, message, generation, created_at \
         FROM events WHERE instance_name = $1 AND id > $2 AND id <= $3 \
           AND ($4::text IS NULL OR type = $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(name)
    .bind(after)
    .bind(upto)
    .bind(type_)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}
