//! The webhook delivery worker (`docs/webhooks.md`): every replica runs one. It claims due
//! outbox rows ([`openclaws_store::webhooks::claim`]: an instance's rows go out in version
//! order, one at a time per endpoint), sends each as a signed POST with no database
//! transaction open, and records the result: delivered on 2xx, otherwise retried with
//! exponential backoff and jitter until the retry window has passed, then failed.

mod send;

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use openclaws_model::secrets::SecretCipher;
use openclaws_store::webhooks::{self as outbox, Attempt, Claimed, Endpoint};
use openclaws_store::Db;

use crate::controller::listener::Wakeup;

pub use send::{payload, Outcome};

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// A row still failing this long after its change is marked failed.
    pub retry_for: Duration,
    /// Delay before the first retry; each later one is 6 times the previous (to `max_delay`).
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
    /// Longest one POST may take (connect, send, answer).
    pub timeout: Duration,
    /// Deliveries in flight at once in this replica.
    pub concurrency: usize,
    /// Pause between two looks at the outbox when it had nothing due and no notification can
    /// arrive (no listener); with one, the worker sleeps until the next row is due or
    /// [`IDLE_POLL`] has passed.
    pub poll: Duration,
    /// Finished rows are deleted this long after their change.
    pub retention: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(86_400),
            retry_base: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            poll: Duration::from_millis(250),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl WebhookConfig {
    /// How long a claimed row stays with this replica: the POST's timeout and a margin for
    /// recording its result. A replica that dies holding rows frees them after this.
    pub fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }

    /// The delay after failed attempt `attempt` (1 for the first): `retry_base × 6^(n-1)`,
    /// capped at `max_delay`, then ±20 % of jitter.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 20);
        let base = self.retry_base.as_secs_f64() * 6f64.powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter = 0.8 + 0.4 * rand::random::<f64>();
        Duration::from_secs_f64(capped * jitter)
    }
}

/// What the worker reports; the telemetry crate turns it into metrics. Never fails.
pub trait WebhookTelemetry: Send + Sync + std::fmt::Debug + 'static {
    /// One attempt ended: `result` is `delivered`, `retried`, `failed` or `skipped`;
    /// `latency` is from the change's commit to the 2xx (delivered only).
    fn webhook_attempt(&self, result: &'static str, latency: Option<Duration>);
    /// The outbox now: rows pending and rows failed, over every endpoint.
    fn webhook_backlog(&self, pending: i64, failed: i64);
}

/// Longest time between two counts of the backlog.
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// Least time between two counts while deliveries are being made (the backlog changes).
const BUSY_COUNT_EVERY: Duration = Duration::from_secs(5);
/// Least time between two prunes of finished rows (kept for days: no hurry).
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Longest sleep of an idle worker while new rows are announced by NOTIFY: a row another
/// replica put back for a retry is not announced, so this bounds how late it is seen when that
/// replica is gone.
pub const IDLE_POLL: Duration = Duration::from_secs(30);

/// Shortest sleep after a pass that found nothing to send.
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// Runs the worker until `shutdown`; an attempt in flight then finishes (within its timeout).
/// `wakeup` is fed by `NOTIFY openclaws_webhooks` (rows queued) when a listener runs.
pub async fn run(
    pool: Db,
    cipher: Arc<SecretCipher>,
    telemetry: Arc<dyn WebhookTelemetry>,
    config: WebhookConfig,
    wakeup: Wakeup,
    shutdown: CancellationToken,
) {
    let client = send::client(config.timeout);
    let worker = Worker {
        pool,
        cipher,
        telemetry,
        config,
        client,
    };
    let mut chores = Chores::default();
    while !shutdown.is_cancelled() {
        chores.run_due(&worker).await;
        // Rows claimed: look again at once (an instance's next change waits for this one).
        let busy = match worker.pass().await {
            Ok(claimed) => {
                chores.sent |= claimed > 0;
                claimed > 0
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery pass failed; retrying");
                false
            }
        };
        if !busy {
            let pause = chores.cap(worker.pause(&wakeup).await);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The worker's periodic chores: the backlog gauge (soon after deliveries changed it, else
/// rarely) and the prune of finished rows.
#[derive(Default)]
struct Chores {
    counted: Option<tokio::time::Instant>,
    pruned: Option<tokio::time::Instant>,
    /// Rows were sent since the last count.
    sent: bool,
}

impl Chores {
    fn count_every(&self) -> Duration {
        if self.sent {
            BUSY_COUNT_EVERY
        } else {
            HOUSEKEEPING
        }
    }

    async fn run_due(&mut self, worker: &Worker) {
        if self
            .counted
            .is_none_or(|at| at.elapsed() >= self.count_every())
        {
            worker.count_backlog().await;
            self.counted = Some(tokio::time::Instant::now());
            self.sent = false;
        }
        if self.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            worker.prune().await;
            self.pruned = Some(tokio::time::Instant::now());
        }
    }

    /// An idle sleep shortened to the next count when deliveries changed the backlog.
    fn cap(&self, pause: Duration) -> Duration {
        match self.counted {
            Some(at) if self.sent => pause.min(self.count_every().saturating_sub(at.elapsed())),
            _ => pause,
        }
    }
}

/// Errors of one pass over the outbox.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] openclaws_store::StoreError),
}

struct Worker {
    pool: Db,
    cipher: Arc<SecretCipher>,
    telemetry: Arc<dyn WebhookTelemetry>,
    config: WebhookConfig,
    client: reqwest::Client,
}

impl Worker {
    /// Claims due rows and sends them concurrently; returns how many were claimed.
    async fn pass(&self) -> Result<usize, WebhookError> {
        let claimed = {
            let mut conn = self.pool.acquire().await.map_err(store_error)?;
            let limit = self.config.concurrency as i64;
            outbox::claim(&mut conn, limit, self.config.lease()).await?
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<Uuid> = claimed.iter().map(|c| c.webhook_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let endpoints = outbox::endpoints(&self.pool, &self.cipher, &ids).await?;
        let attempts = claimed.iter().map(|row| {
            let endpoint = endpoints.iter().find(|e| e.id == row.webhook_id);
            self.attempt(row, endpoint)
        });
        futures_util::future::join_all(attempts).await;
        Ok(claimed.len())
    }

    /// Sends one row (unless its endpoint is gone) and records the result.
    async fn attempt(&self, row: &Claimed, endpoint: Option<&Endpoint>) {
        let Some(endpoint) = endpoint else {
            return; // Deleted meanwhile: its rows went with it.
        };
        let outcome = send::deliver(&self.client, &self.cipher, endpoint, row).await;
        let (attempt, result) = self.judge(row, outcome);
        if let Err(e) = outbox::record(&self.pool, row.id, &attempt).await {
            tracing::warn!(error = %e, delivery = %row.id, "a webhook attempt's result was not recorded; the row will be sent again");
            return;
        }
        let latency = matches!(attempt, Attempt::Delivered(_))
            .then(|| (Utc::now() - row.created_at).to_std().unwrap_or_default());
        self.telemetry.webhook_attempt(result, latency);
    }

    /// The row's new state after `outcome`, and the metric's result name.
    fn judge(&self, row: &Claimed, outcome: Outcome) -> (Attempt, &'static str) {
        let (status, error) = match outcome {
            Outcome::Delivered(status) => return (Attempt::Delivered(status), "delivered"),
            Outcome::Excluded => return (Attempt::Skipped, "skipped"),
            Outcome::Failed { status, error } => (status, error),
        };
        let retry_at = Utc::now() + self.config.backoff(row.attempt);
        let window = chrono::Duration::from_std(self.config.retry_for).unwrap_or_default();
        if retry_at > row.retry_from + window {
            let attempt = Attempt::Failed {
                status,
                error,
                retry_at: None,
            };
            return (attempt, "failed");
        }
        let attempt = Attempt::Failed {
            status,
            error,
            retry_at: Some(retry_at),
        };
        (attempt, "retried")
    }

    /// How long an idle worker sleeps: until the next pending row is due, at most the poll
    /// interval (or [`IDLE_POLL`] while notifications arrive).
    async fn pause(&self, wakeup: &Wakeup) -> Duration {
        let longest = wakeup.pause(self.config.poll, IDLE_POLL);
        match outbox::next_due_in(&self.pool).await {
            // A row due now that the pass did not get is held by a claim being made: a moment.
            Ok(Some(secs)) => Duration::from_secs_f64(secs).max(MIN_PAUSE).min(longest),
            Ok(None) => longest,
            Err(_) => self.config.poll,
        }
    }

    /// Reports the backlog.
    async fn count_backlog(&self) {
        match outbox::backlog(&self.pool).await {
            Ok(b) => self.telemetry.webhook_backlog(b.pending, b.failed),
            Err(e) => tracing::warn!(error = %e, "the webhook backlog could not be counted"),
        }
    }

    /// Prunes finished rows past the retention.
    async fn prune(&self) {
        let retention = chrono::Duration::from_std(self.config.retention).unwrap_or_default();
        if let Err(e) = outbox::prune(&self.pool, Utc::now() - retention).await {
            tracing::warn!(error = %e, "finished webhook deliveries could not be pruned");
        }
    }
}

fn store_error(e: sqlx::Error) -> WebhookError {
    WebhookError::Store(openclaws_store::StoreError::Database(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_six_with_jitter_and_a_cap() {
        let config = WebhookConfig::default();
        for (attempt, nominal) in [(1, 5.0), (2, 30.0), (3, 180.0), (4, 1080.0), (9, 3600.0)] {
            let got = config.backoff(attempt).as_secs_f64();
            assert!(
                (nominal * 0.8..=nominal * 1.2).contains(&got),
                "attempt {attempt}: {got}"
            );
        }
    }

    #[test]
    fn default_schedule_retries_for_a_day() {
        let config = WebhookConfig::default();
        let nominal: f64 = (1..=30).map(|n| (5.0 * 6f64.powi(n - 1)).min(3600.0)).sum();
        assert!(nominal > 86_400.0, "30 attempts span {nominal} s");
        assert!(config.lease() > config.timeout);
    }
}
