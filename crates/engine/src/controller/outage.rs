//! Recovery from Fly outages: while the organization's circuit is open (Fly kept failing), one
//! probe asks Fly every couple of seconds; when it answers, the circuit closes and every
//! instance held for Fly is made due at once, oldest wait first, under the rate limits.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use openclaws_fly::circuit::PROBE_EVERY;
use openclaws_fly::FlyClient;
use openclaws_store::work;

/// Runs until `stop`: probes while the circuit is open, wakes held instances when it closes.
pub async fn recover(fly: FlyClient, pool: PgPool, stop: CancellationToken) {
    let mut open = fly.circuit().subscribe();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            held = open.wait_for(|open| *open) => if held.is_err() { return },
        }
        while fly.circuit().is_open() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            if let Err(e) = fly.probe().await {
                tracing::debug!(error = %e, "Fly is still unavailable");
            }
        }
        match work::wake_held(&pool).await {
            Ok(woken) => tracing::info!(woken, "Fly answers again: held instances resume"),
            Err(e) => {
                tracing::warn!(error = %e, "waking instances held for Fly failed; they come back on their own")
            }
        }
    }
}
