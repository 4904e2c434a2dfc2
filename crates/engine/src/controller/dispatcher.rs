//! Claims due keys up to the number of free workers and runs one reconcile per key.

use openclaws_store::Db;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::lease::WorkLease;
use crate::reconcile::{backoff, Outcome, ReconcileError, Reconciler, Streak};
use crate::Telemetry;
use openclaws_model::conditions::Reason;
use openclaws_store::events::{self, EventType};
use openclaws_store::work::{self, Claim};
use openclaws_store::{StoreError, WORK_CHANNEL};

use super::listener::Wakeup;

/// Longest sleep between two looks at the queue while the work listener is connected: an
/// enqueue, a wake-up and a lease expiry are known otherwise (NOTIFY, the next due time), so
/// this only bounds how late a key requeued by another replica without a notification is seen.
pub const IDLE_POLL: Duration = Duration::from_secs(30);

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This process's lease owner name (unique per replica and start).
    pub owner: String,
    /// Reconciles run at once.
    pub workers: usize,
    /// Lease length; renewed every third of it.
    pub lease: Duration,
    /// Longest sleep between queue polls.
    pub poll: Duration,
    /// Time in-flight reconciles get after shutdown is requested.
    pub grace: Duration,
    /// Connection for `LISTEN`; `None` disables it (polling only).
    pub listen_url: Option<String>,
}

/// Errors that stop the dispatcher.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One reconcile of one key; the dispatcher only needs this, so queue behaviour can be tested
/// with a recording reconciler instead of Fly.
pub trait Reconcile: Clone + Send + Sync + 'static {
    /// Reconciles `uid` under `lease`; `attempts` is the number of consecutive failures so far.
    fn reconcile(
        &self,
        uid: Uuid,
        attempts: i32,
        lease: Arc<WorkLease>,
    ) -> impl std::future::Future<Output = Result<Outcome, ReconcileError>> + Send;
}

impl Reconcile for Reconciler {
    async fn reconcile(
        &self,
        uid: Uuid,
        attempts: i32,
        lease: Arc<WorkLease>,
    ) -> Result<Outcome, ReconcileError> {
        Reconciler::reconcile(self, uid, attempts, Some(lease)).await
    }
}

/// What the dispatcher works with.
#[derive(Clone)]
struct Shared<R> {
    reconciler: R,
    pool: Db,
    telemetry: Arc<dyn Telemetry>,
}

/// Runs workers until `shutdown` is cancelled, then drains.
pub async fn run<R: Reconcile>(
    reconciler: R,
    pool: Db,
    telemetry: Arc<dyn Telemetry>,
    config: ControllerConfig,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let shared = Shared {
        reconciler,
        pool,
        telemetry,
    };
    let wake = Wakeup::new();
    let helpers_stop = CancellationToken::new();
    let listener_task = config
        .listen_url
        .clone()
        .map(|url| wake.spawn_listener(url, WORK_CHANNEL, helpers_stop.clone()));
    let gauges_task = tokio::spawn(update_queue_gauges(
        shared.pool.clone(),
        shared.telemetry.clone(),
        helpers_stop.clone(),
    ));
    let mut workers = Workers {
        slots: Arc::new(Semaphore::new(config.workers)),
        abandon: CancellationToken::new(),
        running: JoinSet::new(),
        shared,
        config,
    };
    workers.serve(&wake, &shutdown).await;
    workers.drain().await;
    helpers_stop.cancel();
    if let Some(t) = listener_task {
        let _ = t.await;
    }
    let _ = gauges_task.await;
    Ok(())
}

/// The worker pool: claims due work up to the free slots and runs one reconcile per claim.
struct Workers<R> {
    shared: Shared<R>,
    config: ControllerConfig,
    slots: Arc<Semaphore>,
    /// Cancelled when the shutdown grace has run out: in-flight reconciles stop.
    abandon: CancellationToken,
    running: JoinSet<()>,
}

impl<R: Reconcile> Workers<R> {
    /// Claims and runs work until `shutdown`; sleeps until a wake-up, a worker finishing, or
    /// the next due time (at most the poll interval).
    async fn serve(&mut self, wake: &Wakeup, shutdown: &CancellationToken) {
        let mut poll_errors = 0u32;
        while !shutdown.is_cancelled() {
            while self.running.try_join_next().is_some() {}
            let free = self.slots.available_permits();
            if free > 0 {
                match self.claim(free).await {
                    Ok(true) => {
                        poll_errors = 0;
                        continue;
                    }
                    Ok(false) => poll_errors = 0,
                    Err(e) => {
                        poll_errors += 1;
                        tracing::warn!(error = %e, "claiming work failed");
                    }
                }
            }
            let sleep_for = self.sleep_time(free, poll_errors, wake).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
                Some(_) = self.running.join_next(), if !self.running.is_empty() => {}
            }
        }
    }

    /// Claims up to `free` due keys and starts a reconcile for each; `true` when every slot was
    /// filled (more work may be due at once).
    async fn claim(&mut self, free: usize) -> Result<bool, StoreError> {
        let config = &self.config;
        let claims =
            work::claim_due(&self.shared.pool, &config.owner, free as i64, config.lease).await?;
        let filled = claims.len() == free;
        for claim in claims {
            let permit = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let shared = self.shared.clone();
            let config = self.config.clone();
            let abandon = self.abandon.clone();
            // Every line logged during the reconcile carries the instance; the engine fills in
            // its name and generation once it has read them.
            let span = tracing::info_span!(
                "reconcile",
                uid = %claim.instance_uid,
                instance = tracing::field::Empty,
                generation = tracing::field::Empty,
            );
            self.running.spawn(
                async move {
                    run_one(&shared, &config, claim, abandon).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        Ok(filled)
    }

    /// How long to sleep before polling again: a backoff after failed polls, the poll interval
    /// when every worker is busy, else until the next due key (at most the poll interval, or
    /// [`IDLE_POLL`] while notifications arrive).
    async fn sleep_time(&self, free: usize, poll_errors: u32, wake: &Wakeup) -> Duration {
        let poll = self.config.poll;
        if poll_errors > 0 {
            return backoff(poll_errors.min(5) as i32).min(Duration::from_secs(5));
        }
        if free == 0 {
            return poll;
        }
        let longest = wake.pause(poll, IDLE_POLL);
        match work::next_due_in(&self.shared.pool).await {
            Ok(Some(s)) => Duration::from_secs_f64(s).min(longest),
            Ok(None) => longest,
            Err(_) => poll,
        }
    }

    /// After shutdown: in-flight reconciles get the grace period, then are abandoned.
    async fn drain(&mut self) {
        tracing::info!(
            in_flight = self.running.len(),
            "shutting down: no new work is claimed"
        );
        let deadline = tokio::time::sleep(self.config.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.running.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!(in_flight = self.running.len(), "shutdown grace elapsed: abandoning in-flight reconciles");
                    self.abandon.cancel();
                    while self.running.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
}

/// How a claimed reconcile ended, as far as the worker saw.
type Ended = Option<Result<Result<Outcome, ReconcileError>, tokio::task::JoinError>>;

/// Runs one claimed reconcile under its lease and records the next visit.
async fn run_one<R: Reconcile>(
    shared: &Shared<R>,
    config: &ControllerConfig,
    claim: Claim,
    abandon: CancellationToken,
) {
    let uid = claim.instance_uid;
    if claim.taken_over {
        tracing::info!(instance_uid = %uid, "taking over from a lapsed lease: rechecking once its requests are over");
    }
    let started = Instant::now();
    shared.telemetry.worker_started();
    let lost = CancellationToken::new();
    let lease = Arc::new(WorkLease::new(
        shared.pool.clone(),
        uid,
        &config.owner,
        config.lease,
    ));
    let renewer = tokio::spawn(
        renew_lease(
            shared.pool.clone(),
            uid,
            config.owner.clone(),
            config.lease,
            lost.clone(),
        )
        .in_current_span(),
    );
    // Its own task, so a panic ends this reconcile only (reported to Sentry by the panic hook,
    // tagged with the uid by the bound hub) and the worker records a backoff below.
    let task = {
        let reconciler = shared.reconciler.clone();
        let attempts = claim.attempts;
        let lease = lease.clone();
        let reconcile = Box::pin(async move { reconciler.reconcile(uid, attempts, lease).await });
        tokio::spawn(
            shared
                .telemetry
                .bind_reconcile(uid, reconcile)
                .in_current_span(),
        )
    };
    let abort = task.abort_handle();
    let ended: Ended = tokio::select! {
        r = task => Some(r),
        _ = lost.cancelled() => { abort.abort(); None }
        _ = abandon.cancelled() => { abort.abort(); None }
    };
    renewer.abort();
    let (result, reason) = settle(shared, config, &claim, ended, lost.is_cancelled()).await;
    if result == "abandoned" {
        record_abandoned(&shared.pool, (uid, &config.owner), reason, &lease.sent()).await;
    }
    tracing::debug!(
        result,
        reason,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "reconcile finished"
    );
    shared
        .telemetry
        .reconcile_finished(result, reason, started.elapsed());
    shared.telemetry.worker_finished();
}

/// Puts the mutations an abandoned reconcile had sent into the instance's events, so its
/// history shows every change made at Fly or the DNS provider, even by a replica that lost the
/// instance mid-way. Best effort: the database may be what failed.
async fn record_abandoned(pool: &Db, (uid, owner): (Uuid, &str), reason: &str, sent: &[String]) {
    if sent.is_empty() {
        return;
    }
    let message = format!(
        "A reconcile by replica {owner} was abandoned ({reason}) after sending: {}. The next \
         reconcile observes what they did.",
        sent.join(", ")
    );
    if let Err(e) = events::append_for_uid(
        pool,
        uid,
        EventType::Warning,
        "ReconcileAbandoned",
        &message,
    )
    .await
    {
        tracing::warn!(instance_uid = %uid, error = %e, "recording an abandoned reconcile's calls failed");
    }
}

/// Schedules the next visit from how the reconcile ended (its outcome, a backoff after an error
/// or a panic) or gives the key back; returns the result and reason for metrics.
async fn settle<R: Reconcile>(
    shared: &Shared<R>,
    config: &ControllerConfig,
    claim: &Claim,
    ended: Ended,
    lease_lost: bool,
) -> (&'static str, &'static str) {
    let (pool, uid, owner) = (&shared.pool, claim.instance_uid, config.owner.as_str());
    let retry = || async {
        let after = backoff(claim.attempts);
        let attempts = claim.attempts.saturating_add(1);
        let next = work::complete(pool, uid, owner, (after, work::SCHEDULED), attempts).await;
        log_store(next, uid);
    };
    match ended {
        Some(Ok(Ok(Outcome::Gone))) => ("gone", "Deleted"),
        Some(Ok(Ok(Outcome::Requeue {
            after,
            streak,
            reason,
        }))) => {
            let queue_reason = if reason == Reason::FlyUnavailable.as_str() {
                work::HELD_FOR_FLY
            } else {
                work::SCHEDULED
            };
            let attempts = streak.apply(claim.attempts);
            let next = work::complete(pool, uid, owner, (after, queue_reason), attempts).await;
            log_store(next, uid);
            let result = match streak {
                Streak::Extend => "error",
                Streak::Keep => "held",
                Streak::Reset => "success",
            };
            (result, reason)
        }
        Some(Ok(Err(ReconcileError::LeaseLost(why)))) => {
            tracing::warn!(instance_uid = %uid, %why, "lease lost: reconcile stopped");
            ("abandoned", "LeaseLost")
        }
        Some(Ok(Err(e))) => {
            tracing::error!(instance_uid = %uid, error = %e, "reconcile failed before recording");
            shared.telemetry.reconcile_error(uid, e.kind(), &e);
            retry().await;
            ("error", "StoreError")
        }
        Some(Err(join_error)) => {
            let error = join_error.to_string();
            let error = openclaws_model::redact::scrub_text(&error);
            tracing::error!(instance_uid = %uid, %error, "reconcile panicked");
            retry().await;
            ("error", "Panic")
        }
        None if lease_lost => {
            tracing::warn!(instance_uid = %uid, "lease lost: reconcile abandoned");
            ("abandoned", "LeaseLost")
        }
        None => {
            log_store(work::release(pool, uid, owner).await, uid);
            ("abandoned", "Shutdown")
        }
    }
}

fn log_store<T>(r: Result<T, StoreError>, uid: Uuid) {
    if let Err(e) = r {
        tracing::error!(instance_uid = %uid, error = %e, "recording the next visit failed; the lease will expire and the key will be retried");
    }
}

/// Renews the lease every third of its length; cancels `lost` when a renewal fails.
async fn renew_lease(pool: Db, uid: Uuid, owner: String, lease: Duration, lost: CancellationToken) {
    let mut interval = tokio::time::interval(lease / 3);
    interval.tick().await;
    loop {
        interval.tick().await;
        // A renewal that fails for any reason ends the reconcile: a lease we cannot prove we
        // hold is one another replica may take. So does one that does not answer before the
        // lease it renews runs out (a lock wait, a database that went quiet).
        match tokio::time::timeout(lease * 2 / 3, work::renew(&pool, uid, &owner, lease)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                lost.cancel();
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(instance_uid = %uid, error = %e, "lease renewal failed: stopping the reconcile");
                lost.cancel();
                return;
            }
            Err(_) => {
                tracing::warn!(instance_uid = %uid, "lease renewal did not answer before the lease ran out: stopping the reconcile");
                lost.cancel();
                return;
            }
        }
    }
}

/// How often the queue's gauges are read and the shared budget pruned: a Prometheus scrape
/// interval, so the gauges are as fresh as anyone sees them.
const GAUGES_EVERY: Duration = Duration::from_secs(15);

/// How often the shared Fly budget's spent rows are pruned: they only take room.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Every [`GAUGES_EVERY`]: the queue's gauges; every [`PRUNE_EVERY`], the shared Fly budget's
/// spent rows pruned.
async fn update_queue_gauges(pool: Db, telemetry: Arc<dyn Telemetry>, stop: CancellationToken) {
    let mut pruned: Option<Instant> = None;
    loop {
        if let Ok((depth, age)) = work::depth(&pool).await {
            telemetry.queue(depth, age);
        }
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let grace = openclaws_fly::limits::SLOT_GRACE.as_secs_f64();
            if let Err(e) = openclaws_store::budget::prune(&pool, grace).await {
                tracing::debug!(error = %e, "pruning the Fly budget failed");
            }
            pruned = Some(Instant::now());
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(GAUGES_EVERY) => {}
        }
    }
}
