//! Encrypted secret rows. Values are sealed with [`SecretCipher`] bound to `"{uid}/{name}"`, so a
//! ciphertext copied to another row or name does not decrypt. Nothing here logs or returns a value
//! except [`get_plaintext`], which exists for the controller to set Fly app secrets.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::StoreError;
use openclaws_model::secrets::{Sealed, SecretCipher, SecretError};
use openclaws_model::SecretRef;

/// Errors from secret storage: the database or the cipher.
#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cipher(#[from] SecretError),
    #[error("stored secret {0} is not UTF-8")]
    NotUtf8(String),
}

impl From<sqlx::Error> for SecretStoreError {
    fn from(e: sqlx::Error) -> Self {
        SecretStoreError::Store(StoreError::Database(e))
    }
}

/// The associated data a secret is sealed with: binds it to its instance and name.
pub fn context(instance_uid: Uuid, name: &str) -> String {
    format!("{instance_uid}/{name}")
}

/// Encrypts and stores (inserts or replaces) `name` for an instance; returns the reference the spec
/// keeps. `updated_at` is passed in so the caller's spec and the row agree to the microsecond.
pub async fn put(
    db: impl PgExecutor<'_>,
    cipher: &SecretCipher,
    instance_uid: Uuid,
    name: &str,
    plaintext: &str,
    updated_at: DateTime<Utc>,
) -> Result<SecretRef, SecretStoreError> {
    let sealed = cipher.seal(&context(instance_uid, name), plaintext.as_bytes())?;
    let fingerprint = cipher.fingerprint(plaintext.as_bytes());
    let stored_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO secrets (id, instance_uid, name, nonce, ciphertext, fingerprint, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (instance_uid, name) DO UPDATE \
         SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, \
             fingerprint = EXCLUDED.fingerprint, updated_at = EXCLUDED.updated_at \
         RETURNING updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(instance_uid)
    .bind(name)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(&fingerprint)
    .bind(updated_at)
    .fetch_one(db)
    .await?;
    Ok(SecretRef {
        set: true,
        fingerprint,
        updated_at: stored_at,
    })
}

#[derive(FromRow)]
struct SealedRow {
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The decrypted value of `name` for an instance, or `None` when not stored. For the controller
/// only; never send the result to a client or a log.
pub async fn get_plaintext(
    db: impl PgExecutor<'_>,
    cipher: &SecretCipher,
    instance_uid: Uuid,
    name: &str,
) -> Result<Option<String>, SecretStoreError> {
    let row = sqlx::query_as::<_, SealedRow>(
        "SELECT nonce, ciphertext FROM secrets WHERE instance_uid = $1 AND name = $2",
    )
    .bind(instance_uid)
    .bind(name)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let plain = cipher.open(
        &context(instance_uid, name),
        &Sealed {
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        },
    )?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|_| SecretStoreError::NotUtf8(name.to_owned()))
}

/// An instance's decrypted secrets by name, for the controller only: `Debug` shows the names,
/// never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Plaintexts(BTreeMap<String, String>);

impl Plaintexts {
    /// The value of `name`, if stored. Never log it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A set from values at hand (tests, previews).
    pub fn from_values(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }
}

impl std::fmt::Debug for Plaintexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(FromRow)]
struct NamedSealedRow {
    name: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Every stored secret of an instance, decrypted, in one query. For the controller only.
pub async fn get_all_plaintext(
    db: impl PgExecutor<'_>,
    cipher: &SecretCipher,
    instance_uid: Uuid,
) -> Result<Plaintexts, SecretStoreError> {
    let rows = sqlx::query_as::<_, NamedSealedRow>(
        "SELECT name, nonce, ciphertext FROM secrets WHERE instance_uid = $1",
    )
    .bind(instance_uid)
    .fetch_all(db)
    .await?;
    let mut values = BTreeMap::new();
    for row in rows {
        let sealed = Sealed {
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        };
        let plain = cipher.open(&context(instance_uid, &row.name), &sealed)?;
        let text =
            String::from_utf8(plain).map_err(|_| SecretStoreError::NotUtf8(row.name.clone()))?;
        values.insert(row.name, text);
    }
    Ok(Plaintexts(values))
}

/// Removes `name` for an instance; `true` when a row was deleted.
pub async fn delete(
    db: impl PgExecutor<'_>,
    instance_uid: Uuid,
    name: &str,
) -> Result<bool, SecretStoreError> {
    let done = sqlx::query("DELETE FROM secrets WHERE instance_uid = $1 AND name = $2")
        .bind(instance_uid)
        .bind(name)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
