//! Stuck instances: those whose current generation has not been Ready for longer than a limit.
//! One sweep at a time (a transaction-scoped advisory lock, so it works behind a transaction
//! pooler too) brings `stuck_instances` in line with `instances` and claims what is due for a
//! report; every replica reads the counts for its metrics.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::StoreError;

/// Advisory lock key of the sweep ("oc-stuck").
const SWEEP_LOCK_KEY: i64 = 0x6f63_2d73_7475_636b;

/// The instances a sweep considers waiting: not Ready, not stopped or being deleted as asked,
/// not paused. The `Ready` condition's reason says what they wait on.
const WAITING: &str =
    "i.deletion_timestamp IS NULL AND i.phase NOT IN ('Ready', 'Stopped', 'Deleting') \
     AND COALESCE((i.spec->>'paused')::boolean, false) = false";

/// An instance that has just become stuck: what a report needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StuckInstance {
    pub uid: Uuid,
    pub name: String,
    pub generation: i64,
    /// When its current generation began to wait.
    pub since: DateTime<Utc>,
    /// The `Ready` condition's reason when it was reported.
    pub reason: String,
    /// The reason reported earlier in this spell, now replaced by `reason` (its issue is to be
    /// resolved).
    pub replaces: Option<String>,
    pub phase: String,
    /// `status.conditions`.
    pub conditions: Value,
    /// Its newest events (newest first): time, type, reason, message.
    pub last_events: Value,
}

/// A reported instance that is no longer stuck (Ready, stopped, paused, deleted).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Recovered {
    pub uid: Uuid,
    pub name: String,
    pub reason: String,
}

/// What one sweep changed.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Waiting longer than the limit and not reported before: report each once.
    pub stuck: Vec<StuckInstance>,
    /// Reported before and waiting no more: resolve each.
    pub recovered: Vec<Recovered>,
}

/// Takes the sweep's lock for the current transaction; `false` when another replica sweeps.
pub async fn try_lock(db: impl PgExecutor<'_>) -> Result<bool, StoreError> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK_KEY)
        .fetch_one(db)
        .await?;
    Ok(locked)
}

/// Forgets instances that wait no more, returning those that had been reported.
pub async fn forget_recovered(db: impl PgExecutor<'_>) -> Result<Vec<Recovered>, StoreError> {
    let sql = format!(
        "DELETE FROM stuck_instances s WHERE NOT EXISTS ( \
             SELECT 1 FROM instances i WHERE i.uid = s.instance_uid AND {WAITING}) \
         RETURNING s.instance_uid AS uid, s.instance_name AS name, \
                   COALESCE(s.reported_reason, s.reason), s.reported_at"
    );
    let rows: Vec<(Uuid, String, String, Option<DateTime<Utc>>)> =
        sqlx::query_as(&sql).fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .filter(|(.., reported)| reported.is_some())
        .map(|(uid, name, reason, _)| Recovered { uid, name, reason })
        .collect())
}

/// Starts tracking instances that began to wait (since their `Ready` condition turned, or now),
/// restarts the clock of an unreported one whose generation changed, and notes a new reason
/// (and since when it holds). Rows that did not change are not written.
pub async fn track_waiting(db: impl PgExecutor<'_>) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO stuck_instances AS s \
             (instance_uid, instance_name, generation, since, reason, reason_since) \
         SELECT i.uid, i.name, i.generation, \
                LEAST(now(), COALESCE((c.value->>'lastTransitionTime')::timestamptz, now())), \
                COALESCE(c.value->>'reason', i.phase), now() \
         FROM instances i \
         LEFT JOIN LATERAL jsonb_array_elements(COALESCE(i.status->'conditions', '[]')) c(value) \
                ON c.value->>'type' = 'Ready' \
         WHERE {WAITING} \
         ON CONFLICT (instance_uid) DO UPDATE SET \
             since = CASE WHEN s.reported_at IS NULL AND s.generation <> EXCLUDED.generation \
                          THEN now() ELSE s.since END, \
             reason_since = CASE WHEN s.reason <> EXCLUDED.reason THEN now() \
                                 ELSE s.reason_since END, \
             generation = EXCLUDED.generation, reason = EXCLUDED.reason \
         WHERE (s.generation, s.reason) IS DISTINCT FROM (EXCLUDED.generation, EXCLUDED.reason)"
    );
    sqlx::query(&sql).execute(db).await?;
    Ok(())
}

/// Claims the instances waiting for longer than `limit_seconds` that were never reported, and
/// the reported ones whose reason changed that long ago, with what their report needs (their
/// conditions and `events` newest events). A reason that flaps for less than the limit is
/// never reported.
pub async fn claim_stuck(
    db: impl PgExecutor<'_>,
    limit_seconds: f64,
    events: i64,
) -> Result<Vec<StuckInstance>, StoreError> {
    let rows = sqlx::query_as(
        "WITH claimed AS ( \
             UPDATE stuck_instances n SET reported_at = now(), reported_reason = n.reason \
             FROM stuck_instances o WHERE o.instance_uid = n.instance_uid \
               AND ((n.reported_at IS NULL AND n.since <= now() - make_interval(secs => $1)) \
                 OR (n.reported_at IS NOT NULL AND n.reported_reason <> n.reason \
                     AND n.reason_since <= now() - make_interval(secs => $1))) \
             RETURNING n.instance_uid, n.generation, n.since, n.reason, \
                       o.reported_reason AS replaces) \
         SELECT c.instance_uid AS uid, i.name, c.generation, c.since, c.reason, c.replaces, \
                i.phase, \
                COALESCE(i.status->'conditions', '[]') AS conditions, \
                COALESCE((SELECT jsonb_agg(jsonb_build_object('at', e.created_at, 'type', e.type, \
                                   'reason', e.reason, 'message', e.message) ORDER BY e.id DESC) \
                          FROM (SELECT * FROM events WHERE instance_uid = c.instance_uid \
                                ORDER BY id DESC LIMIT $2) e), '[]') AS last_events \
         FROM claimed c JOIN instances i ON i.uid = c.instance_uid",
    )
    .bind(limit_seconds)
    .bind(events)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Reported stuck instances by reason (for the gauge every replica exports).
pub async fn counts(db: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query_as(
        "SELECT reported_reason, count(*) FROM stuck_instances \
         WHERE reported_reason IS NOT NULL GROUP BY reported_reason ORDER BY reported_reason",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}
