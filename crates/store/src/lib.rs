//! PostgreSQL access: desired state, controller bookkeeping, the work queue, events and secrets.
//! One file per table; queries are plain sqlx so they run against any PostgreSQL 13+.

pub mod adoptions;
pub mod budget;
pub mod changes;
pub mod circuit;
pub mod db;
pub mod desired;
pub mod events;
pub mod instances;
pub mod lanes;
pub mod pairing;
pub mod records;
pub mod releases;
pub mod secrets;
pub mod stats;
pub mod status;
pub mod stuck;
pub mod wake;
pub mod webhooks;
pub mod work;

pub use db::{Conn, Db, PoolMode, ReadConn};
pub use records::{InstanceRecord, ResourceRecord};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Channel the API notifies on after enqueueing work, so idle workers wake at once.
pub const WORK_CHANNEL: &str = "openclaws_work";
/// Channel a trigger notifies on when webhook deliveries are queued (migration 20261208000001).
pub const WEBHOOK_CHANNEL: &str = "openclaws_webhooks";
/// Channel a trigger notifies on when a release is written or changed.
pub const RELEASE_CHANNEL: &str = "openclaws_releases";
/// Channel a trigger notifies on when the shared Fly circuit opens or closes.
pub const CIRCUIT_CHANNEL: &str = "openclaws_circuit";

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// The work lease the write was fenced by is no longer held: another replica owns the
    /// instance now, and this write was not made.
    #[error("the work lease is no longer held; nothing was written")]
    LeaseLost,
}

/// The embedded migrations under `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A connection that sat idle in the pool at least this long is pinged before it is handed out.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// The pool settings every pool of ours uses. sqlx 0.8 pings a connection every time it goes
/// back to the pool (that check cannot be switched off), so one that was released a moment ago
/// is known to work: pinging it again on acquire (sqlx's default) would add a round trip to
/// every statement. A connection idle for [`PING_AFTER_IDLE`] or longer is still pinged, so one
/// the server or a pooler closed while it sat idle is replaced instead of failing a statement.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Opens a plain connection pool, for what needs a session (migrations) and for tools and
/// tests that talk to PostgreSQL directly; the controller's own pool is a [`Db`].
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(database_url)?;
    let pool = pool_options(max_connections).connect_with(options).await?;
    Ok(pool)
}

/// Applies pending migrations. sqlx's migrator holds a session advisory lock while it runs, so
/// `pool` must be on a session (a direct connection or a session pooler), never on a
/// transaction pooler, where the lock would stay on whichever server connection took it.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub async fn migrations_applied(db: impl sqlx::PgExecutor<'_>) -> Result<bool, StoreError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db)
            .await
            .or_else(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(vec![]),
                _ => Err(e),
            })?;
    Ok(MIGRATOR
        .iter()
        .all(|m| applied.binary_search(&m.version).is_ok()))
}
