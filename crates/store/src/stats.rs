//! Read-only queries behind the fleet metrics and the console's fleet page: counts over the
//! whole fleet (one `GROUP BY` each, never a row per instance).

use sqlx::PgExecutor;

use super::StoreError;

/// Instances by phase, by condition and by OpenClaw version, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetCounts {
    /// `(phase, instances)`.
    pub phases: Vec<(String, i64)>,
    /// `(condition type, status, instances)`.
    pub conditions: Vec<(String, String, i64)>,
    /// `(OpenClaw version, instances)`, as [`openclaw_versions`] counts them.
    pub versions: Vec<(Option<String>, i64)>,
    /// `(channel, state, instances)` from `status.channels`.
    pub channels: Vec<(String, String, i64)>,
}

/// Instances by the OpenClaw version their status last observed running
/// (`status.fly.openclawVersion`), most instances first; `None` counts those with no known
/// version (not running yet, or an image tag that names no version).
pub async fn openclaw_versions(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT status->'fly'->>'openclawVersion' AS version, COUNT(*) FROM instances \
         GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST",
    )
    .fetch_all(db)
    .await?)
}

/// Counts instances by phase, by condition, by OpenClaw version and by channel state.
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
    let versions = openclaw_versions(db).await?;
    let channels: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c->>'channel', c->>'state', COUNT(*) FROM instances, \
             jsonb_array_elements(CASE WHEN jsonb_typeof(status->'channels') = 'array' \
                                       THEN status->'channels' ELSE '[]'::jsonb END) AS c \
         WHERE c->>'channel' IS NOT NULL AND c->>'state' IS NOT NULL \
         GROUP BY 1, 2",
    )
    .fetch_all(db)
    .await?;
    Ok(FleetCounts {
        phases,
        conditions,
        versions,
        channels,
    })
}
