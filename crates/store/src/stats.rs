//! Read-only queries behind the fleet metrics: counts over the whole fleet (one `GROUP BY` each,
//! never a row per instance).

use sqlx::PgExecutor;

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
