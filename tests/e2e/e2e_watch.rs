//! The fleet watch: in steady state the only Fly call is the org-wide machine listing, and a
//! machine changed out of band is repaired long before the (hour-long) deep resync would notice.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);
/// Far beyond every deadline below: a repair seen in time came from the watch.
const RESYNC_SECONDS: u64 = 3600;

async fn watch_stack() -> Stack {
    watch_stack_via(false).await
}

/// A stack whose fleet watch passes every half second, its controller's database behind a
/// transaction pooler when `pooler`.
pub async fn watch_stack_via(pooler: bool) -> Stack {
    Stack::start(StackOptions {
        resync_seconds: RESYNC_SECONDS,
        watch_seconds: 0.5,
        pooler,
        ..StackOptions::default()
    })
    .await
}

/// Total calls per Fly endpoint so far.
async fn calls(stack: &Stack) -> BTreeMap<String, u64> {
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    stats["calls"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["total"].as_u64().unwrap()))
        .collect()
}

async fn machine_of(stack: &Stack, name: &str) -> (String, String) {
    let (_, body) = stack.get(name).await;
    let app = body["status"]["fly"]["appName"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, id)
}

async fn has_event(stack: &Stack, name: &str, reason: &str) -> bool {
    stack
        .events(name)
        .await
        .iter()
        .any(|e| e["reason"] == reason)
}

/// Creates `name` and waits until it is Ready; its app and machine.
async fn ready_instance(stack: &Stack, name: &str) -> (String, String) {
    let (code, body) = stack
        .put(name, json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready(name, CONVERGE).await;
    machine_of(stack, name).await
}

/// Stops the machine behind the controller's back.
async fn stop_out_of_band(stack: &Stack, app: &str, machine: &str) {
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/v1/apps/{app}/machines/{machine}/stop"),
            Some(json!({})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
}

/// Waits until the stopped machine runs again and the instance recorded the drift.
async fn started_again(stack: &Stack, name: &str, app: &str, machine: &str, what: &str) {
    eventually(Duration::from_secs(30), what, || async {
        let started = stack
            .fly_machines(app)
            .await
            .iter()
            .any(|m| m["id"] == machine && m["state"] == "started");
        (started && has_event(stack, name, "DriftDetected").await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn steady_state_costs_one_org_listing_per_pass_and_nothing_per_instance() {
    let stack = watch_stack().await;
    for name in ["calm-a", "calm-b", "calm-c"] {
        let (code, body) = stack
            .put(name, json!({"customerId": "c", "region": "iad"}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    for name in ["calm-a", "calm-b", "calm-c"] {
        stack.wait_ready(name, CONVERGE).await;
    }
    // Let the echoes of provisioning (machines settling after the last reconcile) pass.
    let settled = stack
        .metric("openclaws_fleet_watch_passes_total", "ok")
        .await;
    eventually(
        Duration::from_secs(20),
        "three more watch passes",
        || async {
            (stack
                .metric("openclaws_fleet_watch_passes_total", "ok")
                .await
                >= settled + 3.0)
                .then_some(())
        },
    )
    .await;

    let before = calls(&stack).await;
    let listed_before = stack
        .metric("openclaws_fleet_watch_machines_listed_total", "")
        .await;
    let passes_before = stack
        .metric("openclaws_fleet_watch_passes_total", "ok")
        .await;
    eventually(Duration::from_secs(30), "ten watch passes", || async {
        (stack
            .metric("openclaws_fleet_watch_passes_total", "ok")
            .await
            >= passes_before + 10.0)
            .then_some(())
    })
    .await;
    let after = calls(&stack).await;
    let passes = stack
        .metric("openclaws_fleet_watch_passes_total", "ok")
        .await
        - passes_before;

    let mut grown: BTreeMap<&str, u64> = BTreeMap::new();
    for (endpoint, n) in &after {
        let delta = n - before.get(endpoint).copied().unwrap_or(0);
        if delta > 0 {
            grown.insert(endpoint, delta);
        }
    }
    // Each change is listed once when new and once more after it settled (a sweep a minute),
    // never once per pass: the three machines changed within the last minute, and a pass
    // that re-read a minute behind the newest change would list them all ten times.
    let listed = stack
        .metric("openclaws_fleet_watch_machines_listed_total", "")
        .await
        - listed_before;
    assert!(
        listed <= 3.0,
        "{listed} machines listed over {passes} passes"
    );
    let listing = "GET /v1/orgs/{org}/machines";
    assert_eq!(
        grown.keys().copied().collect::<Vec<_>>(),
        vec![listing],
        "only the org listing may be called in steady state: {grown:?}"
    );
    // One page per pass (a pass may be in flight at either end of the window).
    assert!(
        (grown[listing] as f64) <= passes + 2.0,
        "{} listings for {passes} passes",
        grown[listing]
    );
    for name in ["calm-a", "calm-b", "calm-c"] {
        assert!(!has_event(&stack, name, "DriftDetected").await);
    }
}

#[tokio::test]
async fn a_machine_stopped_or_destroyed_out_of_band_is_repaired_by_the_watch() {
    a_machine_stopped_or_destroyed_out_of_band_is_repaired_by_the_watch_on(&watch_stack().await)
        .await;
}

/// The scenario of [`a_machine_stopped_or_destroyed_out_of_band_is_repaired_by_the_watch`] on `stack` (also run through a transaction pooler).
pub async fn a_machine_stopped_or_destroyed_out_of_band_is_repaired_by_the_watch_on(stack: &Stack) {
    let (app, machine) = ready_instance(stack, "drifty").await;

    // Stopped behind the controller's back: started again, same machine.
    let wakeups = stack
        .metric("openclaws_fleet_watch_wakeups_total", "")
        .await;
    stop_out_of_band(stack, &app, &machine).await;
    started_again(
        stack,
        "drifty",
        &app,
        &machine,
        "the stop to be noticed and the machine started again",
    )
    .await;
    assert!(
        stack
            .metric("openclaws_fleet_watch_wakeups_total", "")
            .await
            > wakeups
    );
    stack.wait_ready("drifty", CONVERGE).await;

    // Destroyed behind the controller's back: a new machine on the same volume.
    let (code, body) = stack
        .fly(
            Method::DELETE,
            &format!("/v1/apps/{app}/machines/{machine}?force=true"),
            None,
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    let replaced = stack
        .wait_for(
            "drifty",
            "a replacement machine",
            Duration::from_secs(45),
            |b| {
                b["status"]["phase"] == "Ready"
                    && b["status"]["fly"]["machineId"].as_str() != Some(machine.as_str())
            },
        )
        .await;
    let live = stack.fly_machines(&app).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["id"], replaced["status"]["fly"]["machineId"]);
    let volumes = stack.fly_volumes(&app).await;
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["rate_limited_total"], 0, "{stats}");
}

/// Fly's document allows a page of the org listing to be empty before the end: the watch follows
/// the cursor anyway, so a change on the next page is still noticed by the watch.
#[tokio::test]
async fn an_empty_first_page_with_a_cursor_is_followed() {
    let stack = watch_stack().await;
    let (app, machine) = ready_instance(&stack, "paged").await;
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/faults",
            Some(json!({"method": "GET", "kind": "empty_first_page"})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    stop_out_of_band(&stack, &app, &machine).await;
    started_again(
        &stack,
        "paged",
        &app,
        &machine,
        "the stop to be noticed through the second page and repaired",
    )
    .await;
}
