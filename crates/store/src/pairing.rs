//! Pairing subscriptions (`docs/pairing.md`): the instances whose gateway should be followed
//! for pairing events, which replica holds each one's subscription, and the one write a holder
//! makes: the pairing part of the instance's status, with its events, in one transaction.
//!
//! # Guarantees
//! - At most one replica holds an instance's subscription at a time: [`hold`] takes a row only
//!   when it is free, expired or already ours, and renews only our own rows.
//! - A holder whose row lapsed or passed to another writes nothing: [`record_pairing`] checks
//!   the row under the instance's row lock in the same transaction as the write.
//! - A pairing write never bumps `generation` and never enqueues work, so it causes no
//!   reconcile and no Fly call; a changed status moves `resource_version` (watches see it).

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::events::{self, EventType, NewEvent};
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::{Db, StoreError};
use openclaws_model::InstanceStatus;

/// Most candidates one pass reads (far above any subscription pool).
const MAX_CANDIDATES: i64 = 5000;

/// An instance that may need a subscription, with the replica holding it now, if any.
#[derive(Debug, sqlx::FromRow)]
pub struct CandidateRow {
    #[sqlx(flatten)]
    pub record: InstanceRecord,
    /// The owner of an unexpired subscription row.
    pub holder: Option<String>,
}

/// Instances that may need a subscription: `Ready`, running, not paused or being deleted, with
/// a pairing window open, a channel account using DM pairing, requests (device or DM) pending,
/// or approvals or DM decisions recorded. Oldest need first (the
/// earliest window end), so a short pool serves the longest waiting first.
pub async fn candidates(db: impl PgExecutor<'_>) -> Result<Vec<CandidateRow>, StoreError> {
    let rows = sqlx::query_as::<_, CandidateRow>(&format!(
        "SELECT {INSTANCE_COLUMNS}, h.owner AS holder FROM instances \
         LEFT JOIN pairing_holders h ON h.instance_uid = uid AND h.expires_at > clock_timestamp() \
         WHERE deletion_timestamp IS NULL AND phase = 'Ready' \
           AND COALESCE(spec->>'paused', 'false') <> 'true' \
           AND COALESCE(spec->>'runState', 'running') <> 'stopped' \
           AND (pairing_window_until > now() \
                OR COALESCE((status->'pairing'->>'pendingCount')::int, 0) > 0 \
                OR COALESCE((status->'pairing'->>'channelPendingCount')::int, 0) > 0 \
                OR jsonb_array_length(COALESCE(status->'pairing'->'channelAccounts', '[]'::jsonb)) > 0 \
                OR jsonb_array_length(COALESCE(spec->'pairing'->'approvals', '[]'::jsonb)) > 0 \
                OR jsonb_array_length(COALESCE(spec->'pairing'->'channelDecisions', '[]'::jsonb)) > 0) \
         ORDER BY pairing_window_until NULLS FIRST, uid LIMIT $1"
    ))
    .bind(MAX_CANDIDATES)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Takes or renews `owner`'s subscriptions of `uids` for `ttl`; returns those it holds now
/// (a row held by another replica that has not expired is left alone).
pub async fn hold(
    db: impl PgExecutor<'_>,
    owner: &str,
    uids: &[Uuid],
    ttl: Duration,
) -> Result<Vec<Uuid>, StoreError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let held: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO pairing_holders (instance_uid, owner, expires_at) \
         SELECT u, $1, clock_timestamp() + make_interval(secs => $3) \
           FROM unnest($2::uuid[]) u JOIN instances i ON i.uid = u \
         ON CONFLICT (instance_uid) DO UPDATE \
           SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
           WHERE pairing_holders.owner = EXCLUDED.owner \
              OR pairing_holders.expires_at < clock_timestamp() \
         RETURNING instance_uid",
    )
    .bind(owner)
    .bind(uids)
    .bind(ttl.as_secs_f64())
    .fetch_all(db)
    .await?;
    Ok(held.into_iter().map(|(u,)| u).collect())
}

/// Gives up `owner`'s subscriptions of `uids` (a closed subscription, or shutdown), so another
/// replica may take them at once.
pub async fn release(
    db: impl PgExecutor<'_>,
    owner: &str,
    uids: &[Uuid],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pairing_holders WHERE owner = $1 AND instance_uid = ANY($2)")
        .bind(owner)
        .bind(uids)
        .execute(db)
        .await?;
    Ok(())
}

/// An event a subscription holder records with its pairing write.
#[derive(Debug, Clone)]
pub struct PairingEvent {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

/// Applies `change` to the instance's status (the pairing part and its `PairingReady`
/// condition, by the caller's contract) and appends `events`, in one transaction, if `owner`
/// still holds the subscription. Returns `false` (nothing written) when it does not, or the row
/// is gone. A status `change` leaves unchanged writes nothing but the events.
pub async fn record_pairing(
    db: &Db,
    uid: Uuid,
    owner: &str,
    change: impl FnOnce(&mut InstanceStatus),
    events_to_add: &[PairingEvent],
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uid = $1 FOR UPDATE"
    ))
    .bind(uid)
    .fetch_optional(&mut tx)
    .await?;
    let Some(record) = row else {
        return Ok(false);
    };
    let held: Option<(i32,)> = sqlx::query_as(
        "SELECT 1 FROM pairing_holders \
         WHERE instance_uid = $1 AND owner = $2 AND expires_at > clock_timestamp()",
    )
    .bind(uid)
    .bind(owner)
    .fetch_optional(&mut tx)
    .await?;
    if held.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    let before = record.status()?;
    let mut status = before.clone();
    change(&mut status);
    if status != before {
        sqlx::query("UPDATE instances SET status = $2 WHERE uid = $1")
            .bind(uid)
            .bind(sqlx::types::Json(&status))
            .execute(&mut tx)
            .await?;
    }
    for e in events_to_add {
        events::append(
            &mut tx,
            &NewEvent {
                instance_uid: uid,
                instance_name: &record.name,
                type_: e.type_,
                reason: &e.reason,
                message: &e.message,
                generation: Some(record.generation),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether any replica's subscription holds `uid` now (a reconcile then leaves approvals to it).
pub async fn followed(db: impl PgExecutor<'_>, uid: Uuid) -> Result<bool, StoreError> {
    let row: Option<(i32,)> = sqlx::query_as(
        "SELECT 1 FROM pairing_holders WHERE instance_uid = $1 AND expires_at > clock_timestamp()",
    )
    .bind(uid)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// How many subscriptions each replica holds now (for tests and support).
pub async fn holders(db: impl PgExecutor<'_>) -> Result<Vec<(Uuid, String)>, StoreError> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT instance_uid, owner FROM pairing_holders WHERE expires_at > clock_timestamp() \
         ORDER BY instance_uid",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}
