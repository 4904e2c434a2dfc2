//! Stage 1, load: the instance's row, its stored secrets, its adoption record and whether a
//! pairing subscription follows it, in four queries on one pooled connection (each statement
//! taking a connection of its own would add a pool release, and with it a ping, per query).
//! Besides the record stage, the only place a reconcile touches the database.

use chrono::Utc;
use openclaws_store::Db;
use uuid::Uuid;

use openclaws_model::secrets::SecretCipher;
use openclaws_store::secrets::get_all_plaintext;
use openclaws_store::status as status_store;

use super::report::Loaded;
use super::ReconcileError;

/// Reads the instance; `None` when its row is gone (deleted).
pub(super) async fn load(
    pool: &Db,
    cipher: &SecretCipher,
    uid: Uuid,
    attempts: i32,
) -> Result<Option<Loaded>, ReconcileError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(openclaws_store::StoreError::from)?;
    let Some(record) = status_store::load(&mut conn, uid).await? else {
        return Ok(None);
    };
    tracing::Span::current()
        .record("instance", record.name.as_str())
        .record("generation", record.generation);
    let spec = record.spec()?;
    let previous = record.status()?;
    let stored = get_all_plaintext(&mut conn, cipher, uid).await?;
    let adoption = openclaws_store::adoptions::get(&mut conn, uid).await?;
    let pairing_followed = openclaws_store::pairing::followed(&mut conn, uid).await?;
    Ok(Some(Loaded {
        record,
        spec,
        previous,
        stored,
        adoption,
        pairing_followed,
        attempts,
        now: Utc::now(),
    }))
}
