//! The stuck sweep: an instance whose current generation stays not Ready for longer than a
//! limit (crash loop, unreachable gateway, misconfigured trusted proxies, a certificate that
//! never issues, …) is reported once, so it reaches the Sentry → Linear flow instead of waiting
//! for someone to look; it is resolved when it recovers (Ready, stopped, paused or deleted).
//!
//! Every replica runs the sweep; one at a time does the work (a transaction-scoped lock). A
//! report goes out before the transaction that marks it commits: a crash in between reports it
//! again into the same Sentry issue (the fingerprint is the instance and the reason), never
//! loses it. Resolutions go out after their rows are forgotten. Every replica refreshes the
//! gauge of stuck instances by reason each pass.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use openclaws_store::stuck::{self as store, Recovered, StuckInstance};
use openclaws_store::{Db, StoreError};

/// How many of its newest events a report carries.
const EVENTS_PER_REPORT: i64 = 10;

/// Where stuck instances are reported; the telemetry crate sends them to Sentry and exports the
/// gauge. Never fails: reporting never stops the sweep.
pub trait StuckTelemetry: Send + Sync + std::fmt::Debug + 'static {
    /// `instance` has just been found stuck, or stuck for a new reason that has held for the
    /// limit (`replaces` names the reason reported before, whose issue is resolved).
    fn stuck(&self, instance: &StuckInstance, limit: Duration);
    /// A reported instance recovered.
    fn recovered(&self, instance: &Recovered);
    /// Stuck instances by reason, after a pass.
    fn stuck_counts(&self, counts: &[(String, i64)]);
}

/// Settings of the sweep.
#[derive(Debug, Clone, Copy)]
pub struct StuckConfig {
    /// How long the current generation may stay not Ready before it counts as stuck.
    pub after: Duration,
    /// Time between passes.
    pub interval: Duration,
}

/// Sweeps every `config.interval` until `shutdown`.
pub async fn run(
    pool: Db,
    telemetry: Arc<dyn StuckTelemetry>,
    config: StuckConfig,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Err(e) = sweep(&pool, telemetry.as_ref(), config.after).await {
            tracing::warn!(error = %e, "stuck sweep failed; retrying next pass");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// One pass: brings the tracking in line (when this replica gets the lock), reports the newly
/// stuck and the recovered, and refreshes the gauge.
pub async fn sweep(
    pool: &Db,
    telemetry: &dyn StuckTelemetry,
    after: Duration,
) -> Result<(), StoreError> {
    // One transaction a pass: the gauge's counts are read in it too.
    let mut tx = pool.begin().await?;
    let mut recovered = Vec::new();
    if store::try_lock(&mut tx).await? {
        recovered = store::forget_recovered(&mut tx).await?;
        store::track_waiting(&mut tx).await?;
        let stuck = store::claim_stuck(&mut tx, after.as_secs_f64(), EVENTS_PER_REPORT).await?;
        for instance in &stuck {
            telemetry.stuck(instance, after);
        }
    }
    let counts = store::counts(&mut tx).await?;
    tx.commit().await?;
    for instance in &recovered {
        telemetry.recovered(instance);
    }
    telemetry.stuck_counts(&counts);
    Ok(())
}
