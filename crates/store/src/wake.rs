//! Coalesced wake-ups of the workers after writes that queue work outside a transaction block.
//!
//! A `NOTIFY` in a writing transaction serializes its commit with every other notifying commit
//! (PostgreSQL takes one lock for the notification queue, held from before the commit record is
//! flushed until the commit ends, so entries queue in commit order): notifying writes cannot
//! share a WAL flush. Measured with `pgbench` on the 2-core machine, the one-statement patch ran
//! at half the rate with its `pg_notify` as without it. The writer asks a [`WorkWake`] instead;
//! it sends one `pg_notify` (a transaction of its own, which writes nothing) for every burst of
//! requests, at most one every [`MIN_SPACING`]. Notifications are only wake-ups (no listener
//! reads their payload), so one stands for any number of writes. A process that dies between a
//! write's commit and its wake-up leaves the work due: the dispatchers' next poll (at most 30 s
//! while they listen) finds it.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Db, WORK_CHANNEL};

/// Shortest time between two notifications: bounds how late a worker hears of a write, and how
/// many notifications a burst of writes costs (at most 100 a second).
pub const MIN_SPACING: Duration = Duration::from_millis(10);

/// Sends coalesced work notifications for writes made through it. Cheap to clone; the task that
/// notifies ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct WorkWake {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: Arc<Notify>,
    closed: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl WorkWake {
    /// Starts the task that notifies through `db` (call within a tokio runtime).
    pub fn start(db: Db) -> Self {
        let inner = Arc::new(Inner {
            requested: Arc::new(Notify::new()),
            closed: CancellationToken::new(),
        });
        tokio::spawn(notify_on_request(
            db,
            inner.requested.clone(),
            inner.closed.clone(),
        ));
        Self { inner }
    }

    /// Asks for a notification: sent at once when none was sent in the last [`MIN_SPACING`],
    /// else once that has passed (requests in between share it).
    pub fn wake(&self) {
        self.inner.requested.notify_one();
    }
}

async fn notify_on_request(db: Db, requested: Arc<Notify>, closed: CancellationToken) {
    loop {
        tokio::select! {
            () = closed.cancelled() => return,
            () = requested.notified() => {}
        }
        if let Err(e) = notify(&db).await {
            tracing::warn!(error = %e, "work notification failed; the dispatchers' poll finds the work");
        }
        tokio::select! {
            () = closed.cancelled() => return,
            () = tokio::time::sleep(MIN_SPACING) => {}
        }
    }
}

async fn notify(db: &Db) -> Result<(), sqlx::Error> {
    let mut conn = db.acquire().await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(&mut conn)
        .await?;
    Ok(())
}
