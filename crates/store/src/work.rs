//! The durable work queue: one row per instance with a due time and a lease.
//!
//! # Guarantees
//! - At most one worker holds an unexpired lease on a key: a claim takes only rows whose lease is
//!   absent or expired, under `FOR UPDATE SKIP LOCKED`, and sets the lease in the same statement.
//! - Nothing is lost: a request made while a reconcile runs (`enqueued_at` later than `claimed_at`)
//!   makes the completion schedule the key again at once, whatever the reconcile asked for.
//! - Completion and renewal only succeed for the lease holder (`lease_owner` matches).
//!
//! - Fencing: a holder checks (and extends) its lease with [`admit`] before every outside
//!   mutation and with [`hold`] inside the transaction that records the reconcile, so a worker
//!   that stalled past its lease (a paused process, a partition) changes nothing once it is back.
//!   A lease that lapsed is lost even if nobody took it: renewal and admission both refuse it.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

use super::{Conn, StoreError, WORK_CHANNEL};

/// Schedules a visit now (same transaction as a desired-state write) and wakes idle workers.
pub async fn enqueue_now(
    tx: &mut Conn<'_>,
    instance_uid: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO work (instance_uid, due_at, enqueued_at, reason) VALUES ($1, now(), clock_timestamp(), $2) \
         ON CONFLICT (instance_uid) DO UPDATE \
         SET due_at = LEAST(work.due_at, now()), enqueued_at = clock_timestamp(), reason = EXCLUDED.reason, \
             attempts = 0",
    )
    .bind(instance_uid)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WORK_CHANNEL)
        .bind(instance_uid.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An instance's place in the queue, as support sees it.
#[derive(Debug, Clone, FromRow)]
pub struct Schedule {
    /// When the next reconcile is due (in the past: waiting for a free worker).
    pub due_at: DateTime<Utc>,
    /// Why it was last scheduled (`scheduled`, `reconcile-requested`, ...).
    pub reason: String,
    /// Consecutive failed reconciles (0 when healthy).
    pub attempts: i32,
    /// Set while a worker holds the key: a reconcile is running now.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// The queue row of one instance; `None` when it has none (a deleted instance).
pub async fn schedule(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
) -> Result<Option<Schedule>, StoreError> {
    let row = sqlx::query_as::<_, Schedule>(
        "SELECT due_at, reason, attempts, \
             CASE WHEN lease_expires_at > now() THEN lease_expires_at END AS lease_expires_at \
         FROM work WHERE instance_uid = $1",
    )
    .bind(instance_uid)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// How long after a takeover from a lapsed lease the key is looked at again: longer than any
/// request the previous holder may have had in flight (the Fly client bounds them at 30 s).
pub const TAKEOVER_RECHECK: Duration = Duration::from_secs(35);

/// A claimed key.
#[derive(Debug, Clone, FromRow)]
pub struct Claim {
    pub instance_uid: Uuid,
    pub attempts: i32,
    pub reason: String,
    pub claimed_at: DateTime<Utc>,
    /// The key was taken over from a holder whose lease lapsed (a crashed, frozen or cut-off
    /// replica), which may have had a mutation in flight.
    pub taken_over: bool,
}

/// Claims up to `limit` due keys for `owner` with a lease of `ttl`. A key taken over from a
/// lapsed lease gets a recheck [`TAKEOVER_RECHECK`] later, whatever its reconciles ask for.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    limit: i64,
    ttl: Duration,
) -> Result<Vec<Claim>, StoreError> {
    let rows = sqlx::query_as::<_, Claim>(
        "WITH due AS ( \
             SELECT instance_uid, lease_owner IS NOT NULL AS taken_over FROM work \
             WHERE due_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         UPDATE work w SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3), \
             claimed_at = clock_timestamp(), \
             recheck_at = CASE WHEN due.taken_over \
                 THEN now() + make_interval(secs => $4) ELSE w.recheck_at END \
         FROM due WHERE w.instance_uid = due.instance_uid \
         RETURNING w.instance_uid, w.attempts, w.reason, w.claimed_at, due.taken_over",
    )
    .bind(owner)
    .bind(limit)
    .bind(ttl.as_secs_f64())
    .bind(TAKEOVER_RECHECK.as_secs_f64())
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Extends a held lease; `false` when the lease was lost (lapsed, taken, or the row is gone).
pub async fn renew(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    owner: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    admit(db, instance_uid, owner, ttl, Duration::ZERO).await
}

/// The fence before an outside mutation: `true` (and the lease extended to `ttl` from now)
/// only while `owner` holds the lease with more than `margin` of it left.
pub async fn admit(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    owner: &str,
    ttl: Duration,
    margin: Duration,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE work SET lease_expires_at = now() + make_interval(secs => $3) \
         WHERE instance_uid = $1 AND lease_owner = $2 \
             AND lease_expires_at > now() + make_interval(secs => $4)",
    )
    .bind(instance_uid)
    .bind(owner)
    .bind(ttl.as_secs_f64())
    .bind(margin.as_secs_f64())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inside a recording transaction: locks the key's row and fails with
/// [`StoreError::LeaseLost`] unless `owner` still holds an unexpired lease, so a stalled
/// reconcile cannot overwrite what the new holder recorded.
pub async fn hold(tx: &mut Conn<'_>, instance_uid: Uuid, owner: &str) -> Result<(), StoreError> {
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM work WHERE instance_uid = $1 AND lease_owner = $2 \
             AND lease_expires_at > now() FOR UPDATE",
    )
    .bind(instance_uid)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    held.map(drop).ok_or(StoreError::LeaseLost)
}

/// Why a key was scheduled when nothing asked for it: the next ordinary visit.
pub const SCHEDULED: &str = "scheduled";
/// Why a key was scheduled: it is held while Fly is unavailable, and is woken by
/// [`wake_held`] when Fly answers again.
pub const HELD_FOR_FLY: &str = "held-for-fly";

/// Releases the lease and schedules the next visit after `delay` for `reason` ([`SCHEDULED`],
/// [`HELD_FOR_FLY`]); `attempts` is the new consecutive-failure count. A request that arrived
/// during the reconcile makes it due now. Returns the due time written, or `None` if the lease
/// was no longer held.
pub async fn complete(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    owner: &str,
    (delay, reason): (Duration, &str),
    attempts: i32,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let due: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE work SET lease_owner = NULL, lease_expires_at = NULL, attempts = $4, \
             due_at = CASE WHEN enqueued_at > claimed_at THEN now() \
                           ELSE LEAST(now() + make_interval(secs => $3), \
                                      COALESCE(recheck_at, 'infinity')) END, \
             reason = CASE WHEN enqueued_at > claimed_at THEN reason ELSE $5 END, \
             recheck_at = CASE WHEN recheck_at <= claimed_at THEN NULL ELSE recheck_at END \
         WHERE instance_uid = $1 AND lease_owner = $2 RETURNING due_at",
    )
    .bind(instance_uid)
    .bind(owner)
    .bind(delay.as_secs_f64())
    .bind(attempts)
    .bind(reason)
    .fetch_optional(db)
    .await?;
    Ok(due)
}

/// Makes every key held for Fly ([`HELD_FOR_FLY`]) due now, oldest wait first (their due
/// times become the time each last ran, so claims take them in that order), with a fresh
/// failure streak: the failures were Fly's. Returns how many were woken.
pub async fn wake_held(db: impl PgExecutor<'_>) -> Result<u64, StoreError> {
    let woken: Vec<Uuid> = sqlx::query_scalar(
        "WITH woken AS ( \
             UPDATE work SET due_at = LEAST(due_at, COALESCE(claimed_at, now())), attempts = 0, \
                 reason = 'fly-recovered' \
             WHERE reason = $1 RETURNING instance_uid) \
         SELECT woken.instance_uid FROM woken, \
             LATERAL (SELECT pg_notify($2, woken.instance_uid::text)) AS notified",
    )
    .bind(HELD_FOR_FLY)
    .bind(WORK_CHANNEL)
    .fetch_all(db)
    .await?;
    Ok(woken.len() as u64)
}

/// Gives a lease back without changing the schedule (graceful shutdown).
pub async fn release(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    owner: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE work SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE instance_uid = $1 AND lease_owner = $2",
    )
    .bind(instance_uid)
    .bind(owner)
    .execute(db)
    .await?;
    Ok(())
}

/// Seconds until the earliest due key (for sleeping between polls); `None` when the queue is empty.
pub async fn next_due_in(db: impl PgExecutor<'_>) -> Result<Option<f64>, StoreError> {
    // Clamped here, not with SQL's GREATEST, which skips a NULL: an empty queue is "nothing
    // due", not "due now" (that made an idle dispatcher poll without pause).
    // Two index lookups, not a scan of the queue: the earliest free key (`work_due_free`) and
    // the earliest among the few leased ones, due when both their time and lease have passed
    // (`work_leased`). An idle dispatcher asks this after every look.
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (LEAST( \
             (SELECT MIN(due_at) FROM work WHERE lease_expires_at IS NULL), \
             (SELECT MIN(GREATEST(due_at, lease_expires_at)) FROM work \
               WHERE lease_expires_at IS NOT NULL)) - now()))::float8",
    )
    .fetch_one(db)
    .await?;
    Ok(secs.map(|s| s.max(0.0)))
}

/// Queue depth and age of the oldest due key, for metrics.
pub async fn depth(db: impl PgExecutor<'_>) -> Result<(i64, f64), StoreError> {
    let row: (i64, Option<f64>) = sqlx::query_as(
        "SELECT COUNT(*), EXTRACT(EPOCH FROM (now() - MIN(due_at)))::float8 FROM work \
         WHERE due_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at < now())",
    )
    .fetch_one(db)
    .await?;
    Ok((row.0, row.1.unwrap_or(0.0)))
}

/// Makes healthy keys (no failure streak) due now because something changed at Fly, without
/// resetting a failing key's backoff. A key being reconciled right now is made due again when
/// that reconcile finishes. Returns how many keys were woken.
pub async fn wake(
    tx: &mut Conn<'_>,
    instance_uids: &[Uuid],
    reason: &str,
) -> Result<u64, StoreError> {
    if instance_uids.is_empty() {
        return Ok(0);
    }
    let woken: Vec<Uuid> = sqlx::query_scalar(
        "WITH woken AS ( \
             UPDATE work SET due_at = LEAST(due_at, now()), enqueued_at = clock_timestamp(), \
                 reason = $2 \
             WHERE instance_uid = ANY($1) AND attempts = 0 RETURNING instance_uid) \
         SELECT woken.instance_uid FROM woken, \
             LATERAL (SELECT pg_notify($3, woken.instance_uid::text)) AS notified",
    )
    .bind(instance_uids)
    .bind(reason)
    .bind(WORK_CHANNEL)
    .fetch_all(&mut *tx)
    .await?;
    Ok(woken.len() as u64)
}
