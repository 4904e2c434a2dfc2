//! A panicking reconcile is reported to Sentry with its instance, scrubbed, and costs the worker
//! pool nothing: with a single worker, other instances keep being reconciled and the panicking
//! one is retried after a backoff. Sentry's client is process-wide, hence a test binary of its
//! own (with the local stand-in for Sentry's ingest).

use openclaws_engine::controller::{self, ControllerConfig, Reconcile};
use openclaws_engine::reconcile::{Outcome, ReconcileError};
use openclaws_telemetry::{init_sentry, Metrics, SentrySettings};
use openclaws_testkit::db::{eventually, fresh_database, insert_queued_instance};
use openclaws_testkit::ingest::Ingest;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CANARY: &str = "sk-ant-CANARY-5f0c2d9e4b7a41e3a8d6c1f0e9b2a7d4";
const BEARER: &str = "Bearer gw-9Xk2Lm4Np6Qr8St0Uv1Wx3Yz5Ab7Cd9Ef";

/// Panics on the first visit of `panicky`; everything else succeeds and comes back at once.
#[derive(Clone)]
struct Panicky {
    panicky: Uuid,
    runs: Arc<Mutex<Vec<(Uuid, i32)>>>,
    panicked: Arc<AtomicBool>,
}

impl Reconcile for Panicky {
    async fn reconcile(
        &self,
        uid: Uuid,
        attempts: i32,
        _lease: std::sync::Arc<openclaws_engine::lease::WorkLease>,
    ) -> Result<Outcome, ReconcileError> {
        self.runs.lock().unwrap().push((uid, attempts));
        if uid == self.panicky && !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("unexpected state while holding {CANARY} (Authorization: {BEARER})");
        }
        Ok(Outcome::Requeue {
            after: Duration::from_millis(20),
            streak: openclaws_engine::reconcile::Streak::Reset,
            reason: "Converged",
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reconcile_is_reported_and_the_pool_keeps_working() {
    let ingest = Ingest::start().await;
    let guard = init_sentry(&SentrySettings {
        sentry_dsn: Some(ingest.dsn.parse().unwrap()),
        sentry_environment: Some("e2e".to_owned()),
        ..SentrySettings::default()
    })
    .expect("a client");

    let db = fresh_database().await;
    let panicky = insert_queued_instance(&db.controller, "panicky").await;
    let steady = insert_queued_instance(&db.controller, "steady").await;
    let runs: Arc<Mutex<Vec<(Uuid, i32)>>> = Arc::default();
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let pool = tokio::spawn(controller::run(
        Panicky {
            panicky,
            runs: runs.clone(),
            panicked: Arc::default(),
        },
        db.controller.clone(),
        metrics.clone(),
        ControllerConfig {
            owner: "solo".to_owned(),
            workers: 1,
            lease: Duration::from_secs(3),
            poll: Duration::from_millis(50),
            grace: Duration::from_secs(5),
            listen_url: None,
        },
        stop.clone(),
    ));

    // The only worker survives the panic: the steady instance keeps being reconciled, and the
    // panicking one comes back as a failed attempt after its backoff.
    eventually(
        Duration::from_secs(20),
        "a retry of the panicking instance and more runs of the other",
        || {
            let runs = runs.lock().unwrap().clone();
            async move {
                let panicked_at = runs.iter().position(|r| *r == (panicky, 0))?;
                let retried = runs.contains(&(panicky, 1));
                let steady_after = runs[panicked_at..].iter().filter(|r| r.0 == steady).count();
                (retried && steady_after >= 3).then_some(())
            }
        },
    )
    .await;
    stop.cancel();
    pool.await.unwrap().unwrap();
    assert!(
        metrics.encode().contains(r#"reason="Panic""#),
        "the panic is counted"
    );

    drop(guard);
    let events = eventually(Duration::from_secs(10), "the panic event", || {
        let events = ingest.events();
        async move { (!events.is_empty()).then_some(events) }
    })
    .await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["tags"]["instance_uid"], panicky.to_string());
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["mechanism"]["type"], "panic", "{event}");
    let message = exception["value"].as_str().unwrap();
    assert!(
        message.starts_with("unexpected state while holding"),
        "{message}"
    );
    assert!(message.contains("[Filtered]"), "{message}");
    for body in ingest.bodies() {
        assert!(!body.contains(CANARY), "the key left the process: {body}");
        assert!(
            !body.contains("gw-9Xk2Lm4Np6Qr8St0Uv1Wx3Yz5Ab7Cd9Ef"),
            "the token left the process: {body}"
        );
    }
}
