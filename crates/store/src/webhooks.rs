//! Webhook endpoints and their outbox (migration `20261202000002_webhooks.sql`,
//! `docs/webhooks.md`). A trigger on `instances` writes one outbox row per change and
//! subscribed endpoint in the change's own transaction; the delivery worker claims due rows here
//! (`FOR UPDATE SKIP LOCKED` and a lease in `locked_until`: no session state, so it works
//! through a transaction pooler) and records each attempt's result.
//!
//! A signing secret is sealed with the [`SecretCipher`] bound to `webhook/{id}` and decrypted
//! only for the worker to sign with; nothing here logs one.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use std::time::Duration;
use uuid::Uuid;

use super::changes::{Change, ChangeRow, CHANGE_COLUMNS};
use super::db::Conn;
use super::StoreError;
use openclaws_model::secrets::{Sealed, SecretCipher, SecretError};

/// Errors from webhook storage: the database or the cipher.
#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Cipher(#[from] SecretError),
}

impl From<sqlx::Error> for WebhookStoreError {
    fn from(e: sqlx::Error) -> Self {
        WebhookStoreError::Store(StoreError::Database(e))
    }
}

/// The associated data a signing secret is sealed with.
fn context(id: Uuid) -> String {
    format!("webhook/{id}")
}

/// An endpoint to register (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    /// Where deliveries are POSTed.
    pub url: &'a str,
    /// Free text for people.
    pub description: &'a str,
    /// Wire names of the event types it receives.
    pub event_types: &'a [String],
    /// A label selector (empty: every instance).
    pub label_selector: &'a str,
}

/// A registered endpoint as listed (never its secret), with its outbox counts.
#[derive(Debug, Clone, FromRow)]
pub struct WebhookRow {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text for people.
    pub description: String,
    /// Wire names of the event types it receives.
    pub event_types: Vec<String>,
    /// Its label selector (empty: every instance).
    pub label_selector: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Deliveries not yet sent.
    pub pending: i64,
    /// Deliveries given up on.
    pub failed: i64,
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.description, w.event_types, w.label_selector, \
     w.created_at, \
     (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending') \
         AS pending, \
     (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'failed') \
         AS failed";

/// Registers an endpoint with `secret` (sealed at rest); returns it as listed.
pub async fn create(
    db: impl PgExecutor<'_>,
    cipher: &SecretCipher,
    new: &NewWebhook<'_>,
    secret: &str,
) -> Result<WebhookRow, WebhookStoreError> {
    let id = Uuid::new_v4();
    let sealed = cipher.seal(&context(id), secret.as_bytes())?;
    let row = sqlx::query_as::<_, WebhookRow>(
        "INSERT INTO webhooks (id, url, description, event_types, label_selector, secret_nonce, \
             secret_ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING id, url, description, event_types, label_selector, created_at, \
             0::bigint AS pending, 0::bigint AS failed",
    )
    .bind(id)
    .bind(new.url)
    .bind(new.description)
    .bind(new.event_types)
    .bind(new.label_selector)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// Every endpoint, oldest first.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<WebhookRow>, StoreError> {
    let rows = sqlx::query_as::<_, WebhookRow>(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w ORDER BY w.created_at, w.id"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// One endpoint, if registered.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<WebhookRow>, StoreError> {
    let row = sqlx::query_as::<_, WebhookRow>(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// How many endpoints are registered.
pub async fn count(db: impl PgExecutor<'_>) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// Removes an endpoint and its outbox rows; whether it existed.
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One outbox row as the API lists it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    /// Its id: the `webhook-id` header of every attempt.
    pub id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The instance.
    pub instance_uid: Uuid,
    /// The instance's name.
    pub instance_name: String,
    /// The change's version.
    pub resource_version: i64,
    /// The event types it carries.
    pub event_types: Vec<String>,
    /// `pending`, `delivered`, `failed` or `skipped`.
    pub state: String,
    /// Attempts made (or started).
    pub attempts: i32,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i32>,
    /// What went wrong last, in our words.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: DateTime<Utc>,
    /// When the change was committed.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or skipped.
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, instance_uid, instance_name, resource_version, \
     event_types, state, attempts, last_status, last_error, next_attempt_at, created_at, \
     delivered_at";

/// An endpoint's newest outbox rows, newest first.
pub async fn deliveries(
    db: impl PgExecutor<'_>,
    webhook_id: Uuid,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let rows = sqlx::query_as::<_, DeliveryRow>(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
         ORDER BY created_at DESC, resource_version DESC LIMIT $2"
    ))
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Outcome of a request to retry a delivery.
#[derive(Debug)]
pub enum Retry {
    /// The failed row is pending again, due now, with a new retry window.
    Scheduled(DeliveryRow),
    /// The row exists but has not failed (it is pending, delivered or skipped).
    NotFailed,
    /// No such row for this endpoint.
    Missing,
}

/// Makes the failed row `id` of `webhook_id` pending again, due now, its retry window starting
/// now. It is then sent before the instance's later pending rows, after its later delivered
/// ones: the receiver gets an old state again, as its `resourceVersion` says.
pub async fn retry(conn: &mut Conn<'_>, webhook_id: Uuid, id: Uuid) -> Result<Retry, StoreError> {
    let row = sqlx::query_as::<_, DeliveryRow>(&format!(
        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = clock_timestamp(), \
             retry_from = clock_timestamp(), locked_until = NULL \
         WHERE id = $1 AND webhook_id = $2 AND state = 'failed' RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .bind(webhook_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(Retry::Scheduled(row));
    }
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2)",
    )
    .bind(id)
    .bind(webhook_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if exists {
        Retry::NotFailed
    } else {
        Retry::Missing
    })
}

/// An outbox row claimed for one attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The row's id (the `webhook-id` header).
    pub id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The event types it carries.
    pub event_types: Vec<String>,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    /// When the change was committed.
    pub created_at: DateTime<Utc>,
    /// Where its retry window starts (the change, or a manual retry).
    pub retry_from: DateTime<Utc>,
    /// The change as logged: the object as of its version.
    pub change: Change,
}

#[derive(FromRow)]
struct ClaimedRow {
    delivery_id: Uuid,
    webhook_id: Uuid,
    event_types: Vec<String>,
    attempts: i32,
    delivery_created_at: DateTime<Utc>,
    retry_from: DateTime<Utc>,
    #[sqlx(flatten)]
    change: ChangeRow,
}

/// Claims up to `limit` due rows for `lease` (one statement, its own transaction): a row is due
/// when its attempt time has come, no replica holds it, and no older row of the same endpoint
/// and instance is pending (so an instance's changes go out in order, one at a time).
pub async fn claim(
    conn: &mut Conn<'_>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, StoreError> {
    let rows: Vec<ClaimedRow> = sqlx::query_as(&format!(
        "WITH due AS ( \
             SELECT d.id FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp() \
               AND (d.locked_until IS NULL OR d.locked_until <= clock_timestamp()) \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                   WHERE e.webhook_id = d.webhook_id AND e.instance_uid = d.instance_uid \
                     AND e.state = 'pending' AND e.resource_version < d.resource_version) \
             ORDER BY d.next_attempt_at, d.resource_version LIMIT $1 \
             FOR UPDATE SKIP LOCKED), \
         taken AS ( \
             UPDATE webhook_deliveries d \
             SET locked_until = clock_timestamp() + $2 * interval '1 second', \
                 attempts = d.attempts + 1 \
             FROM due WHERE d.id = due.id \
             RETURNING d.id AS delivery_id, d.webhook_id, d.event_types, d.attempts, \
                 d.created_at AS delivery_created_at, d.retry_from, d.change) \
         SELECT delivery_id, webhook_id, event_types, attempts, delivery_created_at, \
             retry_from, {CHANGE_COLUMNS} \
         FROM (SELECT t.delivery_id, t.webhook_id, t.event_types, t.attempts, \
                   t.delivery_created_at, t.retry_from, c.* \
               FROM taken t, LATERAL jsonb_populate_record(NULL::instance_changes, t.change) c) x \
         ORDER BY resource_version"
    ))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: row.delivery_id,
                webhook_id: row.webhook_id,
                event_types: row.event_types,
                attempt: row.attempts,
                created_at: row.delivery_created_at,
                retry_from: row.retry_from,
                change: row.change.into_change()?,
            })
        })
        .collect()
}

/// What the worker needs of an endpoint to send to it.
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// Where to POST.
    pub url: String,
    /// Its label selector (empty: every instance).
    pub label_selector: String,
    /// The signing secret; `None` when it does not decrypt (sealed under another
    /// `OPENCLAWS_SECRET_KEY`, or damaged). Never log it.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("secret", &"..")
            .finish_non_exhaustive()
    }
}

#[derive(FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    label_selector: String,
    secret_nonce: Vec<u8>,
    secret_ciphertext: Vec<u8>,
}

impl EndpointRow {
    /// The endpoint, its secret decrypted if it can be.
    fn open(self, cipher: &SecretCipher) -> Endpoint {
        let sealed = Sealed {
            nonce: self.secret_nonce,
            ciphertext: self.secret_ciphertext,
        };
        let secret = cipher
            .open(&context(self.id), &sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok());
        if secret.is_none() {
            tracing::warn!(webhook = %self.id, "a webhook's signing secret does not decrypt");
        }
        Endpoint {
            id: self.id,
            url: self.url,
            label_selector: self.label_selector,
            secret,
        }
    }
}

/// The endpoints `ids` (those still registered), with their secrets decrypted.
pub async fn endpoints(
    db: impl PgExecutor<'_>,
    cipher: &SecretCipher,
    ids: &[Uuid],
) -> Result<Vec<Endpoint>, StoreError> {
    let rows = sqlx::query_as::<_, EndpointRow>(
        "SELECT id, url, label_selector, secret_nonce, secret_ciphertext FROM webhooks \
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|row| row.open(cipher)).collect())
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered 2xx with this status.
    Delivered(u16),
    /// The endpoint's selector excludes the instance: nothing was sent.
    Skipped,
    /// It failed (`status` when the endpoint answered); try again at `retry_at`, or give up
    /// when `None`.
    Failed {
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong, in our words (cut to 200 characters).
        error: String,
        /// When to try again; `None`: the row ends `failed`.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Records how an attempt at row `id` ended and releases it.
pub async fn record(
    db: impl PgExecutor<'_>,
    id: Uuid,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let (state, status, error, next) = match attempt {
        Attempt::Delivered(status) => ("delivered", Some(i32::from(*status)), None, None),
        Attempt::Skipped => ("skipped", None, None, None),
        Attempt::Failed {
            status,
            error,
            retry_at,
        } => (
            if retry_at.is_some() {
                "pending"
            } else {
                "failed"
            },
            status.map(i32::from),
            Some(error.chars().take(200).collect::<String>()),
            *retry_at,
        ),
    };
    sqlx::query(
        "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4, \
             next_attempt_at = COALESCE($5, next_attempt_at), locked_until = NULL, \
             delivered_at = CASE WHEN $2 IN ('delivered', 'skipped') THEN clock_timestamp() END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(status)
    .bind(error)
    .bind(next)
    .execute(db)
    .await?;
    Ok(())
}

/// Outbox rows waiting to be sent and rows given up on, over every endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Pending rows.
    pub pending: i64,
    /// Failed rows (kept until pruned).
    pub failed: i64,
}

/// Counts the outbox.
pub async fn backlog(db: impl PgExecutor<'_>) -> Result<Backlog, StoreError> {
    let (pending, failed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending'), \
                count(*) FILTER (WHERE state = 'failed') FROM webhook_deliveries",
    )
    .fetch_one(db)
    .await?;
    Ok(Backlog { pending, failed })
}

/// Seconds until the earliest pending row [`claim`] could take (its next attempt, or the end
/// of a replica's claim on it); `None` when nothing is pending. Like `claim`, a row waits for
/// the earlier changes of its instance to the same endpoint, so a row held back by one in
/// backoff is not "due now". The webhook worker sleeps this long when a pass found nothing.
pub async fn next_due_in(db: impl PgExecutor<'_>) -> Result<Option<f64>, StoreError> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (MIN(GREATEST(d.next_attempt_at, \
             COALESCE(d.locked_until, d.next_attempt_at))) - clock_timestamp()))::float8 \
         FROM webhook_deliveries d WHERE d.state = 'pending' \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
               WHERE e.webhook_id = d.webhook_id AND e.instance_uid = d.instance_uid \
                 AND e.state = 'pending' AND e.resource_version < d.resource_version)",
    )
    .fetch_one(db)
    .await?;
    Ok(secs.map(|s| s.max(0.0)))
}

/// Deletes finished rows (delivered, skipped, failed) created before `older_than`; returns how
/// many.
pub async fn prune(db: impl PgExecutor<'_>, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1")
            .bind(older_than)
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}
