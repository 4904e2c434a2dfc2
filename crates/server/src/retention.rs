//! Event retention: every replica prunes events older than `OPENCLAWS_EVENT_RETENTION` every
//! few minutes, in batches of ids with a pause between them, so a large backlog never holds
//! many row locks or one long transaction. Each batch is one plain statement (safe through a
//! transaction pooler, no session state); replicas pruning at once skip each other's rows.
//! Nothing is kept per instance: an instance's events older than the retention go too, and a
//! deleted instance's history ends when its last event is pruned.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use openclaws_store::{events, Db, StoreError};
use openclaws_telemetry::Metrics;

/// How events are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPruning {
    /// Events older than this are deleted.
    pub retention: Duration,
    /// How often a pass runs.
    pub every: Duration,
    /// Most events one statement deletes.
    pub batch: i64,
    /// Pause between two batches of a pass.
    pub pause: Duration,
}

impl EventPruning {
    /// Passes every 5 minutes, batches of 1,000 events, 100 ms apart.
    pub fn keeping(retention: Duration) -> EventPruning {
        EventPruning {
            retention,
            every: Duration::from_secs(300),
            batch: 1000,
            pause: Duration::from_millis(100),
        }
    }

    /// The oldest creation time kept at `now`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let kept = chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        now.checked_sub_signed(kept)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub events: u64,
    /// Statements run (the last one deleted fewer than a batch).
    pub batches: u64,
}

/// One pass: deletes events created before `cutoff`, a batch at a time with `pause` between
/// batches, until a batch deletes fewer than `batch` events.
pub async fn prune_events(
    db: &Db,
    cutoff: DateTime<Utc>,
    batch: i64,
    pause: Duration,
) -> Result<Pruned, StoreError> {
    let batch = batch.max(1);
    let mut pruned = Pruned::default();
    loop {
        let deleted = events::prune_batch(db, cutoff, batch).await?;
        pruned.events += deleted;
        pruned.batches += 1;
        if deleted < batch.unsigned_abs() {
            return Ok(pruned);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Runs a pass every `settings.every` until `shutdown`, counting what it deletes in
/// `openclaws_events_pruned_total`; a failed pass is logged and retried at the next tick.
pub async fn run(
    db: Db,
    settings: EventPruning,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let cutoff = settings.cutoff(Utc::now());
        let pass = prune_events(&db, cutoff, settings.batch, settings.pause);
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = pass => result,
        };
        match result {
            Ok(pruned) => metrics.observe_events_pruned(pruned.events),
            Err(e) => tracing::warn!(error = %e, "pruning old events failed; retried later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_the_retention_before_now_and_saturates() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let pruning = EventPruning::keeping(Duration::from_secs(86_400));
        assert_eq!(
            pruning.cutoff(now).to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        let forever = EventPruning::keeping(Duration::MAX);
        assert_eq!(forever.cutoff(now), DateTime::<Utc>::MIN_UTC);
    }
}
