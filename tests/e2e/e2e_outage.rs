//! A Fly outage: every call answers 503. The organization's circuit opens, reconciles stop
//! calling Fly (one probe every couple of seconds instead), and the moment Fly answers again the
//! held instances resume and converge within seconds, with no backoff left from the outage.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn fly_calls(stack: &Stack) -> u64 {
    let (_, calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    calls
        .as_object()
        .map(|by_endpoint| {
            by_endpoint
                .iter()
                .filter(|(endpoint, _)| !endpoint.contains("/_sim/"))
                .map(|(_, c)| c["total"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_fly_outage_held_instances_resume_within_seconds() {
    let stack = Stack::start(StackOptions::default()).await;
    let names = ["outage-a", "outage-b", "outage-c"];
    // Fly is down before the instances are created.
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/faults",
            Some(json!({"kind": "error", "status": 503, "path": "^/v1/"})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    for name in names {
        stack
            .put(name, json!({"customerId": "c", "region": "iad"}))
            .await;
    }
    // Once the circuit is open, calls stop: count them over an outage window.
    eventually(
        Duration::from_secs(30),
        "instances held for Fly",
        || async {
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM work WHERE reason = 'held-for-fly'")
                    .fetch_one(&stack.db.pool)
                    .await
                    .unwrap();
            (held == names.len() as i64).then_some(())
        },
    )
    .await;
    let before = fly_calls(&stack).await;
    // A measured window of the held outage (nothing is awaited here).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = fly_calls(&stack).await - before;
    // One probe every 2 s, not three instances retrying (with reads retried inside).
    assert!(during <= 6, "{during} Fly calls in 8 s of a held outage");
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM work")
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
    assert!(
        attempts.iter().all(|a| *a <= 6),
        "the outage kept raising backoff: {attempts:?}"
    );

    // Fly answers again: every held instance is back at work within seconds (its app created:
    // the probe's interval plus the organization's line of app creations), then Ready.
    stack.fly(Method::DELETE, "/_sim/faults", None).await;
    let recovered = Instant::now();
    eventually(Duration::from_secs(30), "every app created", || async {
        (stack.fly_apps().await.len() == names.len()).then_some(())
    })
    .await;
    let resumed = recovered.elapsed();
    println!(
        "every held instance resumed {:.1} s after Fly recovered",
        resumed.as_secs_f64()
    );
    assert!(
        resumed < Duration::from_secs(8),
        "resuming took {resumed:?}"
    );
    for name in names {
        let body: Value = stack.wait_ready(name, Duration::from_secs(60)).await;
        assert_eq!(body["status"]["phase"], "Ready");
    }
    let took = recovered.elapsed();
    println!("all Ready {:.1} s after Fly recovered", took.as_secs_f64());
    assert!(took < Duration::from_secs(40), "recovery took {took:?}");
}
