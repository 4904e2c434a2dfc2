//! Wake-ups through PostgreSQL's LISTEN/NOTIFY: the dispatcher on `NOTIFY openclaws_work` (the
//! API enqueued work), the webhook worker on new outbox rows, the circuit watch when a replica
//! opens or closes the shared Fly circuit, the release worker when a release is written.
//!
//! A loop woken this way may sleep long while nothing happens (an idle controller then costs
//! almost no transactions), but only while the listener is connected: [`Wakeup::listening`]
//! tells it when to fall back to its short poll.

use sqlx::postgres::PgListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a loop waits on: a notification on its channel, and whether one can arrive at all.
#[derive(Debug, Clone, Default)]
pub struct Wakeup {
    notify: Arc<Notify>,
    listening: Arc<AtomicBool>,
}

impl Wakeup {
    /// A wake-up nobody listens for yet (a loop without a listener polls).
    pub fn new() -> Self {
        Self::default()
    }

    /// A wake-up fed by a LISTEN on `channel` at `url` until `shutdown` (none without a URL).
    pub fn listen(url: Option<String>, channel: &'static str, shutdown: CancellationToken) -> Self {
        let wakeup = Self::new();
        if let Some(url) = url {
            wakeup.spawn_listener(url, channel, shutdown);
        }
        wakeup
    }

    /// Starts the LISTEN on `channel` at `url` that feeds this wake-up until `shutdown`.
    pub fn spawn_listener(
        &self,
        url: String,
        channel: &'static str,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(listen(url, channel, self.clone(), shutdown))
    }

    /// Wakes the loop (a notification, or something in this process that knows of work).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits for the next wake-up (one that came while nobody waited counts).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Whether notifications arrive now: a loop may then sleep as long as it likes.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// How long a loop that would poll every `poll` may sleep: `idle` while notifications
    /// arrive, `poll` otherwise.
    pub fn pause(&self, poll: Duration, idle: Duration) -> Duration {
        if self.listening() {
            idle.max(poll)
        } else {
            poll
        }
    }

    /// The underlying notify, for code that waits on it directly.
    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

/// Listens until `shutdown`; reconnects after failures. Polling covers the gaps.
async fn listen(url: String, channel: &'static str, wakeup: Wakeup, shutdown: CancellationToken) {
    let mut warned = false;
    while !shutdown.is_cancelled() {
        match connect(&url, channel).await {
            Ok(mut listener) => {
                warned = false;
                wakeup.listening.store(true, Ordering::Relaxed);
                // Notifications sent before the LISTEN took effect are lost: look once now.
                wakeup.wake();
                tracing::debug!(channel, "listening for notifications");
                let failed = receive(&mut listener, &wakeup, &shutdown).await;
                wakeup.listening.store(false, Ordering::Relaxed);
                if let Some(e) = failed {
                    tracing::warn!(channel, error = %e, "notification listener failed; polling continues");
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(channel, error = %e, "cannot LISTEN (set DATABASE_LISTEN_URL to a direct connection); polling continues");
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Wakes the loop on each notification until the connection fails (the error) or `shutdown`.
async fn receive(
    listener: &mut PgListener,
    wakeup: &Wakeup,
    shutdown: &CancellationToken,
) -> Option<sqlx::Error> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            n = listener.try_recv() => match n {
                Ok(Some(_)) => wakeup.wake(),
                // Reconnected after a drop: notifications may have been missed.
                Ok(None) => wakeup.wake(),
                Err(e) => return Some(e),
            }
        }
    }
}

async fn connect(url: &str, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
