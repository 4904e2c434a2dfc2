//! The instance change log and the watch horizons (migration `20261201000001_watch.sql`,
//! `docs/watch.md`). Every change of what the API shows of an instance takes a version from one
//! database-wide sequence and is appended to `instance_changes` by a trigger, so no write path
//! can forget it. Readers only read up to a horizon below every version still being committed,
//! so a reader that has passed a version never sees another change appear below it.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use std::collections::BTreeMap;

use super::db::Conn;
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::StoreError;

/// How far each log may be read: every version (event id) up to these is committed or was
/// rolled back, and a later statement sees all the committed ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Horizons {
    /// Of instance resource versions.
    pub instances: i64,
    /// Of event ids.
    pub events: i64,
}

/// The newest instance version and event id handed out (perhaps not committed yet): one cheap
/// read, so a watcher can poll it often and read the horizons only when something moved.
pub async fn issued(db: impl PgExecutor<'_>) -> Result<Horizons, StoreError> {
    let (instances, events): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(pg_sequence_last_value('instance_resource_version'), 0), \
                COALESCE(pg_sequence_last_value('events_id_seq'), 0)",
    )
    .fetch_one(db)
    .await?;
    Ok(Horizons { instances, events })
}

/// Both horizons, read now.
pub async fn horizons(db: impl PgExecutor<'_>) -> Result<Horizons, StoreError> {
    let (instances, events): (i64, i64) = sqlx::query_as(
        "SELECT watch_horizon('instance_resource_version', 29302), \
                watch_horizon('events_id_seq', 25974)",
    )
    .fetch_one(db)
    .await?;
    Ok(Horizons { instances, events })
}

/// The version a list read by a later statement is complete at: the horizon, or the pruned
/// prefix when a transaction's ticket holds the horizon below it (every pruned version is
/// settled). Watching from it misses no change.
pub async fn list_version(db: impl PgExecutor<'_>) -> Result<i64, StoreError> {
    let version: i64 = sqlx::query_scalar(
        "SELECT GREATEST(watch_horizon('instance_resource_version', 29302), \
                (SELECT through FROM instance_changes_compacted))",
    )
    .fetch_one(db)
    .await?;
    Ok(version)
}

/// Where the retained log starts and ends: resuming is possible from `compacted_through` up
/// to `issued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Every version at or below this was pruned (or predates the log).
    pub compacted_through: i64,
    /// The newest version handed out so far (perhaps not committed yet).
    pub issued: i64,
}

/// The retained range, read now.
pub async fn retained(db: impl PgExecutor<'_>) -> Result<Retained, StoreError> {
    let (compacted_through, issued): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT through FROM instance_changes_compacted), \
                COALESCE(pg_sequence_last_value('instance_resource_version'), 0)",
    )
    .fetch_one(db)
    .await?;
    Ok(Retained {
        compacted_through,
        issued,
    })
}

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// The row was inserted.
    Added,
    /// Something the API shows changed.
    Modified,
    /// The row was deleted (teardown finished).
    Deleted,
}

impl ChangeType {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "ADDED" => Ok(Self::Added),
            "MODIFIED" => Ok(Self::Modified),
            "DELETED" => Ok(Self::Deleted),
            other => Err(StoreError::Corrupt(format!("change type {other:?}"))),
        }
    }
}

/// The labels and phase an object had before a modification, for selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    /// The labels before the change.
    pub labels: BTreeMap<String, String>,
    /// The phase before the change.
    pub phase: String,
}

/// One logged change.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub type_: ChangeType,
    /// The object as of this change (for a deletion, as it was last), with
    /// `resource_version` the change's own version. Only the columns the API renders are
    /// filled; controller bookkeeping is empty.
    pub record: InstanceRecord,
    /// Before a modification; `None` for additions and deletions.
    pub before: Option<Before>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    change_type: String,
    old_labels: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    old_phase: Option<String>,
    #[sqlx(flatten)]
    record: InstanceRecord,
}

/// The `instance_changes` columns as an [`InstanceRecord`].
pub(crate) const CHANGE_COLUMNS: &str =
    "type AS change_type, old_labels, old_phase, uid, name, customer_id, \
     labels, spec, generation, resource_version, created_at, changed_at AS updated_at, \
     deletion_timestamp, status, phase, 0::bigint AS observed_generation, NULL::text AS fly_app, \
     NULL::text AS fly_volume_id, NULL::text AS fly_machine_id, \
     NULL::text AS fly_secrets_fingerprint, NULL::bigint AS fly_secrets_version, \
     0::bigint AS gateway_token_rotation, NULL::timestamptz AS pairing_window_until, \
     NULL::timestamptz AS first_ready_at, NULL::text[] AS drift_repairs, managed_fields";

/// A read of the log.
#[derive(Debug)]
pub enum Read {
    /// The changes after the cursor, oldest first (at most the limit asked for).
    Changes(Vec<Change>),
    /// Changes after the cursor were pruned; the reader must start again from a list.
    Expired(Retained),
}

/// Changes with versions in `(after, upto]`, oldest first, at most `limit`; [`Read::Expired`]
/// when some of them may have been pruned.
pub async fn read(
    conn: &mut Conn<'_>,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Read, StoreError> {
    let rows: Vec<ChangeRow> = sqlx::query_as(&format!(
        "SELECT {CHANGE_COLUMNS} FROM instance_changes \
         WHERE resource_version > $1 AND resource_version <= $2 \
         ORDER BY resource_version LIMIT $3"
    ))
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    // Read after the rows: a prune that committed before them shows here too.
    let range = retained(&mut *conn).await?;
    if range.compacted_through > after {
        return Ok(Read::Expired(range));
    }
    let changes = rows
        .into_iter()
        .map(ChangeRow::into_change)
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Read::Changes(changes))
}

impl ChangeRow {
    /// The change this row logs.
    pub(crate) fn into_change(self) -> Result<Change, StoreError> {
        Ok(Change {
            type_: ChangeType::parse(&self.change_type)?,
            before: match (self.old_labels, self.old_phase) {
                (Some(labels), Some(phase)) => Some(Before {
                    labels: labels.0,
                    phase,
                }),
                _ => None,
            },
            record: self.record,
        })
    }
}

/// Every instance as of one moment, and where a watch continues from to miss nothing and
/// repeat nothing.
#[derive(Debug)]
pub struct Snapshot {
    /// Every change up to this version is reflected in `records`.
    pub version: i64,
    /// The instances, in byte order of name.
    pub records: Vec<InstanceRecord>,
    /// Versions above `version` that `records` already reflect (writes that committed before
    /// the snapshot while an older one was still in flight): a watch from `version` skips them.
    pub already_seen: Vec<i64>,
}

/// Reads every instance in one snapshot taken after the horizon was read.
pub async fn snapshot(conn: &mut Conn<'_>) -> Result<Snapshot, StoreError> {
    let version = list_version(&mut *conn).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut tx)
        .await?;
    let records = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY name COLLATE \"C\""
    ))
    .fetch_all(&mut tx)
    .await?;
    let already_seen: Vec<i64> = sqlx::query_scalar(
        "SELECT resource_version FROM instance_changes WHERE resource_version > $1 \
         ORDER BY resource_version",
    )
    .bind(version)
    .fetch_all(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Snapshot {
        version,
        records,
        already_seen,
    })
}

/// Deletes changes logged before `older_than` (only up to the horizon, so nothing still in
/// flight falls below the pruned prefix) and moves the pruned prefix; returns it. (Each
/// data-modifying part of the statement runs once whether or not the result reads it.)
pub async fn prune(conn: &mut Conn<'_>, older_than: DateTime<Utc>) -> Result<i64, StoreError> {
    let horizon = horizons(&mut *conn).await?.instances;
    let through: i64 = sqlx::query_scalar(
        "WITH cut AS ( \
             SELECT max(resource_version) AS v FROM instance_changes \
             WHERE changed_at < $1 AND resource_version <= $2), \
         gone AS ( \
             DELETE FROM instance_changes WHERE resource_version <= (SELECT v FROM cut) \
             RETURNING 1), \
         moved AS ( \
             UPDATE instance_changes_compacted SET through = (SELECT v FROM cut) \
             WHERE (SELECT v FROM cut) > through RETURNING through) \
         SELECT GREATEST((SELECT through FROM moved), \
                         (SELECT through FROM instance_changes_compacted))",
    )
    .bind(older_than)
    .bind(horizon)
    .fetch_one(&mut *conn)
    .await?;
    Ok(through)
}
