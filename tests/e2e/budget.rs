//! Fly's budget shared by replicas through PostgreSQL: two budgets on one database (two
//! replicas) together stay within one replica's share of every limit.

use futures_util::future::join_all;
use openclaws_engine::budget::SharedBudget;
use openclaws_fly::{Budget, LimitClass};
use openclaws_testkit::db::fresh_database;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Grants by two replicas hammering one scope: never more than the burst plus one per period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_rate_per_action_and_scope() {
    let db = fresh_database().await;
    let replicas = [
        Arc::new(SharedBudget::new(db.controller.clone(), "org")),
        Arc::new(SharedBudget::new(db.controller.clone(), "org")),
    ];
    let started = Instant::now();
    let tries = (0..12).map(|i| {
        let budget = replicas[i % 2].clone();
        async move {
            let answer = budget
                .acquire(LimitClass::Mutation, "machines.start", "m1")
                .await;
            (answer, Instant::now())
        }
    });
    let answers = join_all(tries).await;
    let elapsed = started.elapsed();
    let granted: Vec<Instant> = answers
        .iter()
        .filter(|(a, _)| a.is_ok())
        .map(|(_, at)| *at)
        .collect();
    let (period, burst) = LimitClass::Mutation.quota();
    let allowed = burst as f64 + elapsed.as_secs_f64() / period.as_secs_f64();
    assert!(
        (granted.len() as f64) <= allowed + 0.01,
        "{} grants in {elapsed:?}, at most {allowed:.1} allowed",
        granted.len()
    );
    assert!(granted.len() >= burst as usize, "the burst was not granted");
    // The refused are told when to come back, no later than the queue of grants ahead.
    for (answer, _) in &answers {
        if let Err(retry) = answer {
            assert!(
                *retry > Duration::ZERO && *retry < Duration::from_secs(15),
                "{retry:?}"
            );
        }
    }
    // Another scope has its own bucket.
    assert!(replicas[0]
        .acquire(LimitClass::Mutation, "machines.start", "m2")
        .await
        .is_ok());
}

/// App creations from two replicas go through one line: a period apart, first come first
/// served, each waiting holder keeping its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_line_for_app_creation() {
    let db = fresh_database().await;
    let replicas = [
        Arc::new(SharedBudget::new(db.controller.clone(), "org")),
        Arc::new(SharedBudget::new(db.controller.clone(), "org")),
    ];
    let period = LimitClass::AppCreate.quota().0;
    let mut sent: Vec<Instant> = Vec::new();
    let mut waiting: Vec<(String, Instant)> = Vec::new();
    // Six apps ask at once, three through each replica.
    let asks = (0..6).map(|i| {
        let budget = replicas[i % 2].clone();
        async move {
            let holder = format!("oc-app-{i}");
            let answer = budget
                .acquire(LimitClass::AppCreate, "apps.create", &holder)
                .await;
            (holder, answer, Instant::now())
        }
    });
    for (holder, answer, at) in join_all(asks).await {
        match answer {
            Ok(_) => sent.push(at),
            Err(retry) => waiting.push((holder, at + retry)),
        }
    }
    assert!(sent.len() <= 2, "{} went at once", sent.len());
    assert_eq!(sent.len() + waiting.len(), 6);
    // Each waiting holder comes back at its time (through the other replica) and goes.
    waiting.sort_by_key(|(_, at)| *at);
    for (i, (holder, at)) in waiting.iter().enumerate() {
        tokio::time::sleep_until((*at).into()).await;
        let budget = &replicas[(i + 1) % 2];
        let answer = budget
            .acquire(LimitClass::AppCreate, "apps.create", holder)
            .await;
        assert!(
            answer.is_ok(),
            "{holder} came back on time and was refused: {answer:?}"
        );
        sent.push(Instant::now());
    }
    sent.sort();
    for pair in sent.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + Duration::from_millis(60) >= period,
            "two app creations {gap:?} apart"
        );
    }
}
