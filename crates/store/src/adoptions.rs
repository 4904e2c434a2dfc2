//! Adopted apps (`docs/adoption.md`): which instance took over which app the old web app built,
//! and, once a reconcile verified its layout, the volume and machine it kept. The row is the
//! app's ownership mark (such an app has no network of ours), so the app name is unique.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use super::StoreError;

/// One instance's adoption of an app.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Adoption {
    /// The adopting instance.
    pub instance_uid: Uuid,
    /// The adopted app (`{prefix}{instance name}`).
    pub app_name: String,
    /// The kept volume, once verified.
    pub volume_id: Option<String>,
    /// The kept machine, once verified.
    pub machine_id: Option<String>,
    /// When the claim was written.
    pub requested_at: DateTime<Utc>,
    /// When a reconcile verified the layout and took the app over; `None` while only claimed.
    pub adopted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "instance_uid, app_name, volume_id, machine_id, requested_at, adopted_at";

/// Claims `app_name` for an instance; `false` when another instance holds it already (the
/// unique app name decides between concurrent claims).
pub async fn claim(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    app_name: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO adoptions (instance_uid, app_name) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(instance_uid)
    .bind(app_name)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The adoption of an instance, if it adopted an app.
pub async fn get(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
) -> Result<Option<Adoption>, StoreError> {
    let row = sqlx::query_as::<_, Adoption>(&format!(
        "SELECT {COLUMNS} FROM adoptions WHERE instance_uid = $1"
    ))
    .bind(instance_uid)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// The adoption of an app, whichever instance holds it.
pub async fn of_app(
    db: impl PgExecutor<'_>,
    app_name: &str,
) -> Result<Option<Adoption>, StoreError> {
    let row = sqlx::query_as::<_, Adoption>(&format!(
        "SELECT {COLUMNS} FROM adoptions WHERE app_name = $1"
    ))
    .bind(app_name)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Records the verified layout (first time only: a later call changes nothing).
pub async fn mark_adopted(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    volume_id: &str,
    machine_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE adoptions SET volume_id = $2, machine_id = $3, adopted_at = now() \
         WHERE instance_uid = $1 AND adopted_at IS NULL",
    )
    .bind(instance_uid)
    .bind(volume_id)
    .bind(machine_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Sets the gateway token rotation the stored (adopted) token answers, so the instance's spec
/// does not ask for a new one.
pub async fn set_token_rotation(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    rotation: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE instances SET gateway_token_rotation = $2 WHERE uid = $1")
        .bind(instance_uid)
        .bind(rotation)
        .execute(db)
        .await?;
    Ok(())
}
