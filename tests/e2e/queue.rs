//! The durable work queue under real PostgreSQL: per-key exclusion across worker pools, lease
//! takeover after a crash, and wake-up on writes.

use openclaws_engine::controller::{self, ControllerConfig, Reconcile};
use openclaws_engine::reconcile::{Outcome, ReconcileError};
use openclaws_store::work;
use openclaws_telemetry::Metrics;
use openclaws_testkit::db::{eventually, fresh_database, insert_queued_instance, TestDb};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records every reconcile as (key, pool, start, end) and counts concurrent runs per key.
#[derive(Clone, Default)]
struct Recorder {
    inner: Arc<Mutex<RecorderState>>,
    work_time: Duration,
    pool_name: &'static str,
}

#[derive(Default)]
struct RecorderState {
    in_flight: HashMap<Uuid, u32>,
    overlaps: u32,
    runs: Vec<(Uuid, &'static str, Instant)>,
}

impl Reconcile for Recorder {
    async fn reconcile(
        &self,
        uid: Uuid,
        _attempts: i32,
        _lease: std::sync::Arc<openclaws_engine::lease::WorkLease>,
    ) -> Result<Outcome, ReconcileError> {
        {
            let mut s = self.inner.lock().unwrap();
            let n = s.in_flight.entry(uid).or_default();
            *n += 1;
            if *n > 1 {
                s.overlaps += 1;
            }
            s.runs.push((uid, self.pool_name, Instant::now()));
        }
        tokio::time::sleep(self.work_time).await;
        *self.inner.lock().unwrap().in_flight.get_mut(&uid).unwrap() -= 1;
        Ok(Outcome::Requeue {
            after: Duration::ZERO,
            streak: openclaws_engine::reconcile::Streak::Reset,
            reason: "Converged",
        })
    }
}

fn config(owner: &str, poll: Duration, listen_url: Option<String>) -> ControllerConfig {
    ControllerConfig {
        owner: owner.to_owned(),
        workers: 4,
        lease: Duration::from_secs(3),
        poll,
        grace: Duration::from_secs(5),
        listen_url,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_never_reconcile_one_key_at_once() {
    two_pools_never_reconcile_one_key_at_once_on(&fresh_database().await).await;
}

/// The scenario of [`two_pools_never_reconcile_one_key_at_once`] on `db` (also run through a transaction pooler).
pub async fn two_pools_never_reconcile_one_key_at_once_on(db: &TestDb) {
    let mut keys = Vec::new();
    for i in 0..6 {
        keys.push(insert_queued_instance(&db.controller, &format!("key-{i}")).await);
    }
    let state = Arc::new(Mutex::new(RecorderState::default()));
    let stop = CancellationToken::new();
    let mut pools = Vec::new();
    for name in ["pool-a", "pool-b"] {
        let recorder = Recorder {
            inner: state.clone(),
            work_time: Duration::from_millis(20),
            pool_name: name,
        };
        pools.push(tokio::spawn(controller::run(
            recorder,
            db.controller.clone(),
            Arc::new(Metrics::new()),
            config(name, Duration::from_millis(20), Some(db.url.clone())),
            stop.clone(),
        )));
    }
    // Every key is requeued immediately after each run, so both pools contend for all of them.
    eventually(
        Duration::from_secs(20),
        "200 reconciles by both pools",
        || {
            let state = state.clone();
            async move {
                let s = state.lock().unwrap();
                let by_a = s.runs.iter().filter(|r| r.1 == "pool-a").count();
                let by_b = s.runs.iter().filter(|r| r.1 == "pool-b").count();
                (s.runs.len() >= 200 && by_a > 0 && by_b > 0).then_some(())
            }
        },
    )
    .await;
    stop.cancel();
    for p in pools {
        p.await.unwrap().unwrap();
    }
    {
        let s = state.lock().unwrap();
        assert_eq!(s.overlaps, 0, "a key was reconciled by two workers at once");
        for k in &keys {
            assert!(s.runs.iter().any(|r| &r.0 == k), "key {k} never ran");
        }
    }
    let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM work WHERE lease_owner IS NOT NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(leased, 0, "graceful shutdown leaves no lease behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_lease_is_taken_over_after_expiry() {
    a_dead_workers_lease_is_taken_over_after_expiry_on(&fresh_database().await).await;
}

/// The scenario of [`a_dead_workers_lease_is_taken_over_after_expiry`] on `db` (also run through a transaction pooler).
pub async fn a_dead_workers_lease_is_taken_over_after_expiry_on(db: &TestDb) {
    let uid = insert_queued_instance(&db.controller, "orphaned").await;
    // A worker claims the key and dies without completing or renewing.
    let lease = Duration::from_secs(2);
    let claimed = work::claim_due(&db.controller, "dead-worker", 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = Instant::now();

    let state = Arc::new(Mutex::new(RecorderState::default()));
    let recorder = Recorder {
        inner: state.clone(),
        work_time: Duration::ZERO,
        pool_name: "survivor",
    };
    let stop = CancellationToken::new();
    let pool = tokio::spawn(controller::run(
        recorder,
        db.controller.clone(),
        Arc::new(Metrics::new()),
        config("survivor", Duration::from_millis(100), Some(db.url.clone())),
        stop.clone(),
    ));
    let first_run = eventually(
        Duration::from_secs(10),
        "the survivor to take the key",
        || {
            let state = state.clone();
            async move {
                let s = state.lock().unwrap();
                s.runs.iter().find(|r| r.0 == uid).map(|r| r.2)
            }
        },
    )
    .await;
    stop.cancel();
    pool.await.unwrap().unwrap();
    let waited = first_run.duration_since(claimed_at);
    assert!(
        waited >= lease - Duration::from_millis(300),
        "the key was taken while the dead worker's lease was still valid (after {waited:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_wakes_an_idle_worker_at_once() {
    a_write_wakes_an_idle_worker_at_once_on(&fresh_database().await).await;
}

/// The scenario of [`a_write_wakes_an_idle_worker_at_once`] on `db` (also run through a transaction pooler).
pub async fn a_write_wakes_an_idle_worker_at_once_on(db: &TestDb) {
    let state = Arc::new(Mutex::new(RecorderState::default()));
    let recorder = Recorder {
        inner: state.clone(),
        work_time: Duration::ZERO,
        pool_name: "idle",
    };
    let stop = CancellationToken::new();
    // Polling every 30 s: only the notification can explain a fast pick-up.
    let pool = tokio::spawn(controller::run(
        recorder,
        db.controller.clone(),
        Arc::new(Metrics::new()),
        config("idle", Duration::from_secs(30), Some(db.url.clone())),
        stop.clone(),
    ));
    // Let the worker reach its idle wait and the listener subscribe.
    let listening = eventually(Duration::from_secs(10), "the listener to subscribe", || {
        let pool = db.pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (n > 0).then_some(())
        }
    });
    listening.await;
    let written = Instant::now();
    let uid = insert_queued_instance(&db.controller, "woken").await;
    let ran = eventually(
        Duration::from_secs(5),
        "the worker to run the new key",
        || {
            let state = state.clone();
            async move {
                let s = state.lock().unwrap();
                s.runs.iter().find(|r| r.0 == uid).map(|r| r.2)
            }
        },
    )
    .await;
    stop.cancel();
    pool.await.unwrap().unwrap();
    let latency = ran.duration_since(written);
    assert!(
        latency < Duration::from_millis(500),
        "woken after {latency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_finds_work_without_listen() {
    polling_alone_finds_work_without_listen_on(&fresh_database().await).await;
}

/// The scenario of [`polling_alone_finds_work_without_listen`] on `db` (also run through a transaction pooler).
pub async fn polling_alone_finds_work_without_listen_on(db: &TestDb) {
    let state = Arc::new(Mutex::new(RecorderState::default()));
    let recorder = Recorder {
        inner: state.clone(),
        work_time: Duration::ZERO,
        pool_name: "pooler",
    };
    let stop = CancellationToken::new();
    let pool = tokio::spawn(controller::run(
        recorder,
        db.controller.clone(),
        Arc::new(Metrics::new()),
        config("pooler", Duration::from_millis(200), None),
        stop.clone(),
    ));
    let uid = insert_queued_instance(&db.controller, "polled").await;
    eventually(Duration::from_secs(5), "polling to find the key", || {
        let state = state.clone();
        async move {
            state
                .lock()
                .unwrap()
                .runs
                .iter()
                .any(|r| r.0 == uid)
                .then_some(())
        }
    })
    .await;
    stop.cancel();
    pool.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_request_during_a_reconcile_is_not_lost() {
    a_request_during_a_reconcile_is_not_lost_on(&fresh_database().await).await;
}

/// The scenario of [`a_request_during_a_reconcile_is_not_lost`] on `db` (also run through a transaction pooler).
pub async fn a_request_during_a_reconcile_is_not_lost_on(db: &TestDb) {
    let uid = insert_queued_instance(&db.controller, "busy").await;
    let claim = work::claim_due(&db.controller, "w", 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claim.len(), 1);
    // The API writes while the reconcile runs; the reconcile then asks for a visit in an hour.
    let mut tx = db.controller.begin().await.unwrap();
    work::enqueue_now(&mut tx, uid, "spec changed")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let due = work::complete(
        &db.controller,
        uid,
        "w",
        (Duration::from_secs(3600), work::SCHEDULED),
        0,
    )
    .await
    .unwrap()
    .expect("lease held");
    assert!(
        due <= chrono::Utc::now(),
        "the write during the reconcile must make the key due now"
    );
    // Completion by a worker that no longer holds the lease changes nothing.
    assert!(work::complete(
        &db.controller,
        uid,
        "w",
        (Duration::ZERO, work::SCHEDULED),
        0
    )
    .await
    .unwrap()
    .is_none());
}

/// The fence: a lapsed lease admits nothing, cannot be renewed or recorded under, and the
/// replica taking the key over is told so and looks again soon.
#[tokio::test]
async fn a_lapsed_lease_is_fenced_and_its_takeover_rechecked() {
    a_lapsed_lease_is_fenced_and_its_takeover_rechecked_on(&fresh_database().await).await;
}

/// The scenario of [`a_lapsed_lease_is_fenced_and_its_takeover_rechecked`] on `db` (also run through a transaction pooler).
pub async fn a_lapsed_lease_is_fenced_and_its_takeover_rechecked_on(db: &TestDb) {
    let uid = insert_queued_instance(&db.controller, "fenced").await;
    let ttl = Duration::from_secs(30);
    let first = work::claim_due(&db.controller, "a", 1, ttl).await.unwrap();
    assert!(!first[0].taken_over);
    assert!(
        work::admit(&db.controller, uid, "a", ttl, Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert!(
        !work::admit(&db.controller, uid, "b", ttl, Duration::ZERO)
            .await
            .unwrap(),
        "another owner is admitted"
    );
    // A freezes past its lease.
    sqlx::query("UPDATE work SET lease_expires_at = now() - interval '1 second'")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(!work::admit(&db.controller, uid, "a", ttl, Duration::ZERO)
        .await
        .unwrap());
    assert!(!work::renew(&db.controller, uid, "a", ttl).await.unwrap());
    let taken = work::claim_due(&db.controller, "b", 1, ttl).await.unwrap();
    assert!(taken[0].taken_over);
    let mut tx = db.controller.begin().await.unwrap();
    let held = work::hold(&mut tx, uid, "a").await;
    assert!(matches!(held, Err(openclaws_store::StoreError::LeaseLost)));
    drop(tx);
    // B asks for a visit in an hour; the recheck comes first.
    let due = work::complete(
        &db.controller,
        uid,
        "b",
        (Duration::from_secs(3600), work::SCHEDULED),
        0,
    )
    .await
    .unwrap()
    .expect("b holds the lease");
    let in_secs = (due - chrono::Utc::now()).num_seconds();
    assert!((30..=36).contains(&in_secs), "next visit in {in_secs} s");
}

/// Instances held while Fly was down come back at once, oldest wait first, with a fresh
/// streak.
#[tokio::test]
async fn held_instances_are_woken_oldest_first_with_a_fresh_streak() {
    held_instances_are_woken_oldest_first_with_a_fresh_streak_on(&fresh_database().await).await;
}

/// The scenario of [`held_instances_are_woken_oldest_first_with_a_fresh_streak`] on `db` (also run through a transaction pooler).
pub async fn held_instances_are_woken_oldest_first_with_a_fresh_streak_on(db: &TestDb) {
    let mut uids = Vec::new();
    for name in ["held-1", "held-2", "held-3"] {
        let uid = insert_queued_instance(&db.controller, name).await;
        let claim = work::claim_due(&db.controller, "w", 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(claim[0].instance_uid, uid);
        work::complete(
            &db.controller,
            uid,
            "w",
            (Duration::from_secs(60), work::HELD_FOR_FLY),
            3,
        )
        .await
        .unwrap();
        uids.push(uid);
    }
    assert_eq!(work::wake_held(&db.controller).await.unwrap(), 3);
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let one = work::claim_due(&db.controller, "w", 1, Duration::from_secs(30))
            .await
            .unwrap();
        claimed.extend(one);
    }
    let order: Vec<Uuid> = claimed.iter().map(|c| c.instance_uid).collect();
    assert_eq!(order, uids, "claimed in the order they had waited");
    assert!(claimed.iter().all(|c| c.attempts == 0));
    assert_eq!(work::wake_held(&db.controller).await.unwrap(), 0);
}

/// An abandoned reconcile's calls reach the history even when another replica has already
/// finished the teardown and deleted the row.
#[tokio::test]
async fn events_for_a_deleted_instance_keep_its_name() {
    events_for_a_deleted_instance_keep_its_name_on(&fresh_database().await).await;
}

/// The scenario of [`events_for_a_deleted_instance_keep_its_name`] on `db` (also run through a transaction pooler).
pub async fn events_for_a_deleted_instance_keep_its_name_on(db: &TestDb) {
    let uid = insert_queued_instance(&db.controller, "gone-soon").await;
    openclaws_store::events::append_for_uid(
        &db.controller,
        uid,
        openclaws_store::events::EventType::Normal,
        "Created",
        "created",
    )
    .await
    .unwrap();
    sqlx::query("DELETE FROM instances WHERE uid = $1")
        .bind(uid)
        .execute(&db.pool)
        .await
        .unwrap();
    openclaws_store::events::append_for_uid(
        &db.controller,
        uid,
        openclaws_store::events::EventType::Warning,
        "ReconcileAbandoned",
        "sent: volumes.delete vol_1",
    )
    .await
    .unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT instance_name FROM events WHERE instance_uid = $1 AND reason = 'ReconcileAbandoned'",
    )
    .bind(uid)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(names, vec!["gone-soon".to_owned()]);
    let unknown = openclaws_store::events::append_for_uid(
        &db.controller,
        uuid::Uuid::new_v4(),
        openclaws_store::events::EventType::Warning,
        "ReconcileAbandoned",
        "x",
    )
    .await;
    assert!(unknown.is_err(), "an event for nobody was accepted");
}

/// A reconcile that runs until it is dropped, and says when it was.
#[derive(Clone, Default)]
struct Endless {
    started: Arc<std::sync::atomic::AtomicBool>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

/// Sets its flag when dropped: the reconcile future holding it was abandoned.
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Reconcile for Endless {
    async fn reconcile(
        &self,
        _uid: Uuid,
        _attempts: i32,
        _lease: std::sync::Arc<openclaws_engine::lease::WorkLease>,
    ) -> Result<Outcome, ReconcileError> {
        let _abandoned = SetOnDrop(self.dropped.clone());
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        std::future::pending().await
    }
}

/// A lease renewal that cannot answer (here a lock on the work row; in the chaos run a
/// transaction that never ended) ends the reconcile once the lease it renews has run out,
/// instead of holding the worker and the key forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_never_answers_ends_the_reconcile() {
    use std::sync::atomic::Ordering;
    let db = fresh_database().await;
    let uid = insert_queued_instance(&db.controller, "stuck").await;
    let reconciler = Endless::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(controller::run(
        reconciler.clone(),
        db.controller.clone(),
        Arc::new(Metrics::new()),
        config("stuck-pool", Duration::from_millis(50), None),
        stop.clone(),
    ));
    eventually(Duration::from_secs(10), "the reconcile runs", || async {
        reconciler.started.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM work WHERE instance_uid = $1 FOR UPDATE")
        .bind(uid)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let locked = Instant::now();
    // The lease is 3 s, renewed every second: the renewal gives up 2 s after it was sent.
    eventually(
        Duration::from_secs(8),
        "the reconcile abandoned",
        || async { reconciler.dropped.load(Ordering::SeqCst).then_some(()) },
    )
    .await;
    println!(
        "abandoned {:.1} s after the work row was locked",
        locked.elapsed().as_secs_f64()
    );
    blocker.rollback().await.unwrap();
    stop.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_queue_leaves_the_dispatcher_idle() {
    let db = fresh_database().await;
    assert_eq!(
        work::next_due_in(&db.controller).await.unwrap(),
        None,
        "nothing is due in an empty queue"
    );
    let commits = || async {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        n
    };
    // Backends report their statistics late (about a second, more on a loaded machine): wait
    // until the database's own setup (migrations) is counted, i.e. only these reads count.
    let settle_by = Instant::now() + Duration::from_secs(30);
    let mut last = commits().await;
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = commits().await;
        if now - last <= 2 {
            break;
        }
        assert!(Instant::now() < settle_by, "the statistics never settled");
        last = now;
    }
    let stop = CancellationToken::new();
    let pool = tokio::spawn(controller::run(
        Recorder::default(),
        db.controller.clone(),
        Arc::new(Metrics::new()),
        config("idle", Duration::from_secs(1), None),
        stop.clone(),
    ));
    // A rate over a window, long next to the statistics' delay. Polling once a second costs a few transactions a second; the old
    // `GREATEST(0, NULL)` made it poll without pause (over a thousand a second).
    let before = commits().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = commits().await - before;
    stop.cancel();
    pool.await.unwrap().unwrap();
    assert!(
        during < 60,
        "an idle dispatcher committed {during} transactions in 4 s"
    );
}
