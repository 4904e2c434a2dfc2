//! Fly's failure modes injected into provisioning, update and teardown: every run must converge
//! with exactly one app, one volume and one machine, leave nothing behind on delete, and never
//! exceed Fly's rate limits.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

async fn inject(stack: &Stack, rule: Value) {
    let (code, body) = stack.fly(Method::POST, "/_sim/faults", Some(rule)).await;
    assert!(code.is_success(), "{code} {body}");
}

async fn clear_faults(stack: &Stack) -> Value {
    let (_, rules) = stack.fly(Method::GET, "/_sim/faults", None).await;
    stack.fly(Method::DELETE, "/_sim/faults", None).await;
    rules["faults"].clone()
}

async fn assert_exactly_one_of_each(stack: &Stack, app: &str) {
    let apps: Vec<Value> = stack.fly_apps().await;
    assert_eq!(apps.len(), 1, "apps: {apps:?}");
    let volumes = stack.fly_volumes(app).await;
    assert_eq!(volumes.len(), 1, "volumes: {volumes:?}");
    let machines = stack.fly_machines(app).await;
    assert_eq!(machines.len(), 1, "machines: {machines:?}");
}

async fn assert_within_rate_limits(stack: &Stack) {
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["rate_limited_total"], 0, "bucket 429s: {stats}");
}

/// Provision under `faults`, then update and delete under the same faults.
async fn converges_under(name: &str, faults: Vec<Value>) {
    let stack = Stack::start(StackOptions::default()).await;
    let app = format!("oc-{name}");
    for f in &faults {
        inject(&stack, f.clone()).await;
    }
    let (code, body) = stack
        .put(name, json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready(name, CONVERGE).await;
    let fired = clear_faults(&stack).await;
    assert!(
        fired
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["hits"].as_u64() > Some(0)),
        "no fault fired during provisioning: {fired}"
    );
    assert_exactly_one_of_each(&stack, &app).await;

    // Update under the same faults.
    for f in &faults {
        inject(&stack, f.clone()).await;
    }
    stack
        .patch(name, json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    stack.wait_ready(name, CONVERGE).await;
    clear_faults(&stack).await;
    assert_exactly_one_of_each(&stack, &app).await;
    assert_eq!(
        stack.fly_machines(&app).await[0]["config"]["guest"]["memory_mb"],
        4096
    );

    // Teardown under the same faults.
    for f in &faults {
        inject(&stack, f.clone()).await;
    }
    assert_eq!(stack.delete(name).await, StatusCode::ACCEPTED);
    eventually(CONVERGE, "the instance to be gone", || async {
        (stack.get(name).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    clear_faults(&stack).await;
    assert!(stack.fly_apps().await.is_empty(), "an app is left");
    assert!(
        stack.fly_machines(&app).await.is_empty(),
        "a machine is left"
    );
    let state = stack.sim_state().await;
    let live_volumes: Vec<&Value> = state["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !matches!(v["state"].as_str(), Some("destroyed" | "pending_destroy")))
        .collect();
    assert!(live_volumes.is_empty(), "volumes left: {live_volumes:?}");
    assert_within_rate_limits(&stack).await;
}

fn every_create(kind: &str, extra: Value) -> Vec<Value> {
    ["/v1/apps$", "/ip_assignments$", "/volumes$", "/machines$"]
        .iter()
        .map(|path| {
            let mut rule = json!({"method": "POST", "path": path, "kind": kind, "count": 1});
            for (k, v) in extra.as_object().unwrap() {
                rule[k] = v.clone();
            }
            rule
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_lost_after_commit_on_every_create_update_and_delete() {
    let mut faults = every_create("lost_after_commit", json!({"status": 502}));
    faults.push(json!({"method": "POST", "path": "/machines/[0-9a-f]+$", "kind": "lost_after_commit", "count": 1}));
    faults.push(json!({"method": "DELETE", "kind": "lost_after_commit", "count": 3}));
    converges_under("lost", faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_after_commit() {
    converges_under(
        "dropped",
        every_create("lost_after_commit", json!({"drop": true})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_before_commit() {
    let mut faults = every_create("error", json!({"status": 503}));
    faults.push(json!({"method": "GET", "kind": "error", "status": 502, "html": true, "count": 2}));
    converges_under("errors", faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_timeouts_with_and_without_commit() {
    let mut faults = every_create("timeout408", json!({"commit": true}));
    faults.push(json!({"method": "POST", "path": "/machines$", "kind": "timeout408", "commit": false, "count": 1}));
    converges_under("timeouts", faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_429_bursts_are_waited_out() {
    converges_under(
        "limited",
        vec![json!({"kind": "rate_limit", "count": 4, "retry_after": 1})],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_lag_after_a_lost_create_does_not_leave_duplicates() {
    let mut faults = every_create("lost_after_commit", json!({}));
    faults.push(json!({"method": "GET", "path": "/(machines|volumes)$", "kind": "list_lag", "seconds": 1.0}));
    // A fresh machine read by id is not found yet either.
    faults.push(json!({"method": "GET", "path": "/machines/[0-9a-f]+$", "kind": "list_lag", "seconds": 1.0}));
    converges_under("lagging", faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_everywhere() {
    converges_under(
        "slow",
        vec![json!({"kind": "latency", "delay_ms": 300, "jitter_ms": 200})],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_stuck_in_a_transition_is_recreated_on_the_same_volume() {
    let stack = Stack::start(StackOptions {
        machine_stuck_seconds: 2,
        ..StackOptions::default()
    })
    .await;
    stack
        .put("wedged", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("wedged", CONVERGE).await;
    let old = ready["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let volume = ready["status"]["fly"]["volumeId"].clone();
    // The next update never finishes replacing the machine.
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/_sim/machines/{old}/stuck"),
            Some(json!({"state": "replacing"})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    stack
        .patch("wedged", json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    let recovered = stack
        .wait_for("wedged", "a new machine, Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
                && b["status"]["observedGeneration"] == 2
                && b["status"]["fly"]["machineId"]
                    .as_str()
                    .is_some_and(|m| m != old)
        })
        .await;
    assert_eq!(
        recovered["status"]["fly"]["volumeId"], volume,
        "same volume, data kept"
    );
    let machines = stack.fly_machines("oc-wedged").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["config"]["guest"]["memory_mb"], 4096);
    let events = stack.events("wedged").await;
    assert!(
        events.iter().any(|e| e["reason"] == "RecoverStuckMachine"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_region_is_reported_and_retried_with_backoff_until_it_clears() {
    let stack = Stack::start(StackOptions::default()).await;
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/regions/iad",
            Some(json!({"full": true})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    stack
        .put("crowded", json!({"customerId": "c", "region": "iad"}))
        .await;
    let waiting = stack
        .wait_for("crowded", "a capacity error", CONVERGE, |b| {
            b["status"]["lastError"]["reason"] == "RegionCapacity"
        })
        .await;
    assert_eq!(waiting["status"]["phase"], "Provisioning");
    assert_eq!(
        waiting["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()["reason"],
        "RegionCapacity"
    );
    stack
        .fly(
            Method::POST,
            "/_sim/regions/iad",
            Some(json!({"full": false})),
        )
        .await;
    stack.reconcile_now("crowded").await;
    stack.wait_ready("crowded", CONVERGE).await;
    assert_exactly_one_of_each(&stack, "oc-crowded").await;
    assert_within_rate_limits(&stack).await;
}
