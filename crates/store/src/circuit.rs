//! The organization's Fly circuit in PostgreSQL: one replica that sees Fly keep failing opens
//! it for all, one replica at a time probes for recovery, and the prober's success closes it for
//! all. Times are the database's.

use sqlx::PgExecutor;

use super::StoreError;

/// What a replica learns from the shared circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// Calls to Fly are held organization-wide.
    pub open: bool,
    /// This replica holds the probe's turn (only while open).
    pub probing: bool,
}

/// Opens the circuit of `org` (no change when it is open already).
pub async fn open(db: impl PgExecutor<'_>, org: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fly_circuit AS c (org, open_since) VALUES ($1, now()) \
         ON CONFLICT (org) DO UPDATE SET open_since = COALESCE(c.open_since, now())",
    )
    .bind(org)
    .execute(db)
    .await?;
    Ok(())
}

/// Reads the circuit of `org`; while it is open, `replica` takes (or keeps) the probe's turn
/// for `turn` seconds unless another replica's turn is still running. Writes nothing while the
/// circuit is closed.
pub async fn sync(
    db: impl PgExecutor<'_>,
    org: &str,
    replica: &str,
    turn: f64,
) -> Result<Shared, StoreError> {
    let (open, probing): (Option<bool>, bool) = sqlx::query_as(
        "WITH claim AS ( \
             UPDATE fly_circuit SET probe_owner = $2, probe_until = now() + make_interval(secs => $3) \
             WHERE org = $1 AND open_since IS NOT NULL \
               AND (probe_owner IS NULL OR probe_owner = $2 OR probe_until < now()) \
             RETURNING 1) \
         SELECT (SELECT open_since IS NOT NULL FROM fly_circuit WHERE org = $1), \
                EXISTS (SELECT 1 FROM claim)",
    )
    .bind(org)
    .bind(replica)
    .bind(turn)
    .fetch_one(db)
    .await?;
    Ok(Shared {
        open: open.unwrap_or(false),
        probing,
    })
}

/// Closes the circuit of `org` (a probe saw Fly answer).
pub async fn close(db: impl PgExecutor<'_>, org: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE fly_circuit SET open_since = NULL, probe_owner = NULL, probe_until = NULL \
         WHERE org = $1 AND open_since IS NOT NULL",
    )
    .bind(org)
    .execute(db)
    .await?;
    Ok(())
}
