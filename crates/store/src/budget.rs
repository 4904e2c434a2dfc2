//! Fly's rate limits kept in PostgreSQL, so every replica draws from one budget and, together,
//! they stay under Fly's limits. Times are the database's (`now()`), one clock for all replicas.
//!
//! - Rates are GCRA (a token bucket as one timestamp per key) in one statement per call.
//! - The organization's lines for app creation and deletion are one locked row each; the
//!   caller decides the turn (a pure function, shared with the in-process line) on the row's
//!   state inside the transaction.

use sqlx::PgExecutor;

use super::{Conn, Db, StoreError};

/// The outcome of asking for a rate token, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Granted: wait this long first (at most the `max_wait` asked for).
    Granted { wait: f64 },
    /// Refused: a token is free again in this long.
    Refused { retry_after: f64 },
}

/// Takes a token for `key` from a bucket of one per `period` seconds with `burst` at once,
/// granting it when it comes free within `max_wait` seconds.
pub async fn take_rate(
    db: impl PgExecutor<'_> + Copy,
    key: &str,
    period: f64,
    burst: u32,
    max_wait: f64,
) -> Result<Rate, StoreError> {
    let tolerance = period * f64::from(burst.saturating_sub(1));
    let granted: Option<f64> = sqlx::query_scalar(
        "INSERT INTO fly_rate AS r (key, tat) VALUES ($1, now() + make_interval(secs => $2)) \
         ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, now()) + make_interval(secs => $2) \
         WHERE GREATEST(r.tat, now()) - now() <= make_interval(secs => $3 + $4) \
         RETURNING EXTRACT(EPOCH FROM (r.tat - now()))::float8 - $2 - $3",
    )
    .bind(key)
    .bind(period)
    .bind(tolerance)
    .bind(max_wait)
    .fetch_optional(db)
    .await?;
    if let Some(wait) = granted {
        return Ok(Rate::Granted {
            wait: wait.max(0.0),
        });
    }
    let free_in: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (tat - now()))::float8 - $2 FROM fly_rate WHERE key = $1",
    )
    .bind(key)
    .bind(tolerance)
    .fetch_optional(db)
    .await?;
    Ok(Rate::Refused {
        retry_after: free_in.unwrap_or(0.0).max(0.0),
    })
}

/// A line's row as the turn function sees it, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineRow {
    /// The next slot not yet handed out.
    pub next: f64,
    /// When the last holder was let through.
    pub last_sent: Option<f64>,
}

/// What the turn function decided: the line's new row, and the slot to keep for the holder
/// (`None` when it goes now and its reservation is used up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineUpdate {
    pub row: LineRow,
    pub keep: Option<f64>,
}

/// Runs `turn(row, reserved slot, now)` on `line` for `holder` under the line's row lock and
/// writes back what it decided. Reservations older than `grace` seconds are given up first.
pub async fn line_turn<T>(
    db: &Db,
    line: &str,
    holder: &str,
    grace: f64,
    turn: impl FnOnce(LineRow, Option<f64>, f64) -> (LineUpdate, T),
) -> Result<T, StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO fly_line (line, next_at) VALUES ($1, now()) ON CONFLICT DO NOTHING")
        .bind(line)
        .execute(&mut tx)
        .await?;
    let (next, last_sent, now): (f64, Option<f64>, f64) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM next_at)::float8, EXTRACT(EPOCH FROM last_sent)::float8, \
             EXTRACT(EPOCH FROM now())::float8 \
         FROM fly_line WHERE line = $1 FOR UPDATE",
    )
    .bind(line)
    .fetch_one(&mut tx)
    .await?;
    let reserved: Option<f64> = sqlx::query_scalar(
        "DELETE FROM fly_line_slot WHERE line = $1 AND holder = $2 \
             AND at > now() - make_interval(secs => $3) \
         RETURNING EXTRACT(EPOCH FROM at)::float8",
    )
    .bind(line)
    .bind(holder)
    .bind(grace)
    .fetch_optional(&mut tx)
    .await?;
    let (update, answer) = turn(LineRow { next, last_sent }, reserved, now);
    write_line(&mut tx, line, holder, update).await?;
    tx.commit().await?;
    Ok(answer)
}

async fn write_line(
    tx: &mut Conn<'_>,
    line: &str,
    holder: &str,
    update: LineUpdate,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE fly_line SET next_at = to_timestamp($2), last_sent = to_timestamp($3) \
         WHERE line = $1",
    )
    .bind(line)
    .bind(update.row.next)
    .bind(update.row.last_sent)
    .execute(&mut *tx)
    .await?;
    if let Some(at) = update.keep {
        sqlx::query(
            "INSERT INTO fly_line_slot (line, holder, at) VALUES ($1, $2, to_timestamp($3)) \
             ON CONFLICT (line, holder) DO UPDATE SET at = EXCLUDED.at",
        )
        .bind(line)
        .bind(holder)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Forgets buckets that are full again and reservations long past, so the tables stay as small
/// as the work in flight. One statement (one round trip, one transaction).
pub async fn prune(db: impl PgExecutor<'_>, grace: f64) -> Result<u64, StoreError> {
    let pruned: i64 = sqlx::query_scalar(
        "WITH rates AS (DELETE FROM fly_rate WHERE tat < now() RETURNING 1), \
              slots AS (DELETE FROM fly_line_slot \
                        WHERE at < now() - make_interval(secs => $1) RETURNING 1) \
         SELECT (SELECT count(*) FROM rates) + (SELECT count(*) FROM slots)",
    )
    .bind(grace)
    .fetch_one(db)
    .await?;
    Ok(pruned as u64)
}
