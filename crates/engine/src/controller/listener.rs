//! Wakes the dispatcher when the API enqueues work (`NOTIFY openclaws_work`).

use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use openclaws_store::WORK_CHANNEL;

/// Listens until `shutdown`; reconnects after failures. Polling covers the gaps.
pub async fn listen(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut warned = false;
    while !shutdown.is_cancelled() {
        match connect(&url).await {
            Ok(mut listener) => {
                warned = false;
                tracing::debug!("listening for work notifications");
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        n = listener.try_recv() => match n {
                            Ok(Some(_)) => wake.notify_one(),
                            Ok(None) => {
                                // Reconnected after a drop: notifications may have been missed.
                                wake.notify_one();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "work notification listener failed; polling continues");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot LISTEN for work notifications (set DATABASE_LISTEN_URL to a direct connection); polling continues");
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

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(WORK_CHANNEL).await?;
    Ok(listener)
}
