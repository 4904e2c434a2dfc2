//! Read-only queries behind the fleet metrics: counts over the whole fleet (one `GROUP BY` each,
//! never a row per instance) and the few history lookups the engine's metrics need.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::StoreError;

/// Instances by phase and by condition, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetCounts {
    /// `(phase, instances)`.
    pub phases: Vec<(String, i64)>,
    /// `(condition type, status, instances)`.
    pub conditions: Vec<(String, String, i64)>,
}

/// Counts instances by phase and by condition.
pub async fn fleet_counts(db: impl PgExecutor<'_> + Copy) -> Result<FleetCounts, StoreError> {
    let phases: Vec<(String, i64)> =
        sqlx::query_as("SELECT phase, COUNT(*) FROM instances GROUP BY phase")
            .fetch_all(db)
            .await?;
    let conditions: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c->>'type', c->>'status', COUNT(*) FROM instances, \
             jsonb_array_elements(CASE WHEN jsonb_typeof(status->'conditions') = 'array' \
                                       THEN status->'conditions' ELSE '[]'::jsonb END) AS c \
         WHERE c->>'type' IS NOT NULL AND c->>'status' IS NOT NULL \
         GROUP BY 1, 2",
    )
    .fetch_all(db)
    .await?;
    Ok(FleetCounts { phases, conditions })
}

/// Whether the instance has been `Ready` before (a `PhaseReady` event exists).
pub async fn was_ever_ready(db: impl PgExecutor<'_>, uid: Uuid) -> Result<bool, StoreError> {
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE instance_uid = $1 AND reason = 'PhaseReady')",
    )
    .bind(uid)
    .fetch_one(db)
    .await?;
    Ok(seen)
}

/// The steps (reasons of `Normal` events) recorded since the instance's last `DriftDetected`
/// event; empty when there is none.
pub async fn steps_since_drift(
    db: impl PgExecutor<'_>,
    uid: Uuid,
) -> Result<Vec<String>, StoreError> {
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT reason FROM events \
         WHERE instance_uid = $1 AND type = 'Normal' \
           AND id > (SELECT MAX(id) FROM events \
                     WHERE instance_uid = $1 AND reason = 'DriftDetected')",
    )
    .bind(uid)
    .fetch_all(db)
    .await?;
    Ok(steps)
}
