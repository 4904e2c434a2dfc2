//! Machine-level faults, drift and access failures injected during provisioning, update and
//! teardown. Each run must end with exactly one app, volume and machine (or nothing after a
//! delete), no orphans, and no 429 from Fly's buckets; where the controller cannot converge while
//! the fault lasts (an unreachable host, a held lease, a revoked token), the status must say
//! exactly why, and the instance must recover once the fault is gone.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

/// Fly's latencies at a third: the faults, not the waiting, are under test.
fn options() -> StackOptions {
    StackOptions {
        latency_scale: 0.3,
        ..StackOptions::default()
    }
}

fn app(name: &str) -> String {
    format!("oc-{name}")
}

/// A control-plane or Fly call to the simulator that must succeed.
async fn sim_ok(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> Value {
    let (code, body) = stack.fly(method, path, body).await;
    assert!(code.is_success(), "{path}: {code} {body}");
    body
}

async fn machine_fault(stack: &Stack, id: &str, what: &str, body: Value) -> Value {
    sim_ok(
        stack,
        Method::POST,
        &format!("/_sim/machines/{id}/{what}"),
        Some(body),
    )
    .await
}

async fn inject(stack: &Stack, rule: Value) {
    sim_ok(stack, Method::POST, "/_sim/faults", Some(rule)).await;
}

async fn clear_faults(stack: &Stack) {
    sim_ok(stack, Method::DELETE, "/_sim/faults", None).await;
}

/// The app's live machine once `pred` holds for it.
async fn machine_where(
    stack: &Stack,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let app = app(name);
    let pred = &pred;
    eventually(CONVERGE, what, || {
        let app = app.clone();
        async move { stack.fly_machines(&app).await.into_iter().find(|m| pred(m)) }
    })
    .await
}

fn id_of(machine: &Value) -> String {
    machine["id"].as_str().expect("machine id").to_owned()
}

/// Retries a machine fault until the machine is in a state that accepts it (e.g. `crash` needs
/// `started`).
async fn machine_fault_when_possible(stack: &Stack, id: &str, what: &str, body: Value) {
    let path = format!("/_sim/machines/{id}/{what}");
    eventually(CONVERGE, &format!("{what} to be accepted"), || {
        let (path, body) = (path.clone(), body.clone());
        async move {
            let (code, _) = stack.fly(Method::POST, &path, Some(body)).await;
            code.is_success().then_some(())
        }
    })
    .await;
}

async fn stats(stack: &Stack) -> Value {
    sim_ok(stack, Method::GET, "/_sim/stats", None).await
}

/// How many calls to `route` were answered with `status`.
async fn answered(stack: &Stack, route: &str, status: u16) -> u64 {
    stats(stack).await["calls"][route]["statuses"][status.to_string()]
        .as_u64()
        .unwrap_or(0)
}

async fn assert_no_orphans_and_no_429(stack: &Stack) {
    let (_, orphans) = stack.fly(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(orphans["count"], 0, "orphans: {orphans}");
    let stats = stats(stack).await;
    assert_eq!(stats["rate_limited_total"], 0, "bucket 429s: {stats}");
}

async fn assert_one_of_each(stack: &Stack, name: &str) {
    let app = app(name);
    let apps = stack.fly_apps().await;
    assert_eq!(apps.len(), 1, "apps: {apps:?}");
    let volumes = stack.fly_volumes(&app).await;
    assert_eq!(volumes.len(), 1, "volumes: {volumes:?}");
    let machines = stack.fly_machines(&app).await;
    assert_eq!(machines.len(), 1, "machines: {machines:?}");
    assert_no_orphans_and_no_429(stack).await;
}

async fn put(stack: &Stack, name: &str) {
    let (code, body) = stack
        .put(name, json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

async fn ready(stack: &Stack, name: &str) -> Value {
    let body = stack.wait_ready(name, CONVERGE).await;
    assert_one_of_each(stack, name).await;
    body
}

async fn provisioned(stack: &Stack, name: &str) -> Value {
    put(stack, name).await;
    ready(stack, name).await
}

async fn grow(stack: &Stack, name: &str) {
    let (code, body) = stack
        .patch(name, json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

fn memory(machine: &Value) -> u64 {
    machine["config"]["guest"]["memory_mb"]
        .as_u64()
        .unwrap_or_default()
}

async fn delete(stack: &Stack, name: &str) {
    assert_eq!(stack.delete(name).await, StatusCode::ACCEPTED);
}

async fn gone(stack: &Stack, name: &str) {
    eventually(CONVERGE, "the instance to be gone", || async {
        (stack.get(name).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(stack.fly_apps().await.is_empty(), "an app is left");
    assert_no_orphans_and_no_429(stack).await;
}

fn ready_reason(body: &Value) -> &Value {
    &condition(body, "Ready")["reason"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_machine_is_restarted_by_fly_and_kept() {
    let stack = Stack::start(options()).await;
    put(&stack, "crash").await;
    let m = machine_where(&stack, "crash", "a started machine", |m| {
        m["state"] == "started"
    })
    .await;
    let id = id_of(&m);
    machine_fault(
        &stack,
        &id,
        "crash",
        json!({"exit_code": 137, "oom_killed": true}),
    )
    .await;
    let body = ready(&stack, "crash").await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");

    grow(&stack, "crash").await;
    machine_where(&stack, "crash", "the update to reach Fly", |m| {
        memory(m) == 4096
    })
    .await;
    machine_fault_when_possible(&stack, &id, "crash", json!({"exit_code": 1})).await;
    let body = ready(&stack, "crash").await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");
    let state = stack.sim_state().await;
    let restarts = state["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap()["restart_count"]
        .as_u64();
    assert_eq!(restarts, Some(2), "both crashes happened");

    machine_fault_when_possible(&stack, &id, "crash", json!({"exit_code": 1})).await;
    delete(&stack, "crash").await;
    gone(&stack, "crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_reported_until_it_stops_and_does_not_block_teardown() {
    let stack = Stack::start(options()).await;
    put(&stack, "loop").await;
    let m = machine_where(&stack, "loop", "a machine", |_| true).await;
    let id = id_of(&m);
    machine_fault(&stack, &id, "crash-loop", json!({"exit_code": 3})).await;
    stack.reconcile_now("loop").await;
    let seen = stack
        .wait_for("loop", "MachineReady=CrashLooping", CONVERGE, |b| {
            condition(b, "MachineReady")["reason"] == "CrashLooping"
        })
        .await;
    assert_ne!(seen["status"]["phase"], "Ready", "{seen}");
    assert_eq!(ready_reason(&seen), "CrashLooping", "{seen}");
    let message = condition(&seen, "MachineReady")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("last exit code 3"), "{message}");
    assert_eq!(
        stack.fly_machines(&app("loop")).await.len(),
        1,
        "not replaced"
    );

    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/_sim/machines/{id}/crash-loop"),
        None,
    )
    .await;
    let body = ready(&stack, "loop").await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");

    machine_fault(&stack, &id, "crash-loop", json!({})).await;
    delete(&stack, "loop").await;
    gone(&stack, "loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_machine_still_gets_updates() {
    let stack = Stack::start(options()).await;
    let body = provisioned(&stack, "loopfix").await;
    let id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    machine_fault(&stack, &id, "crash-loop", json!({})).await;
    // Nothing changed at our side: the next visit (here asked for at once) notices.
    stack.reconcile_now("loopfix").await;
    stack
        .wait_for("loopfix", "MachineReady=CrashLooping", CONVERGE, |b| {
            condition(b, "MachineReady")["reason"] == "CrashLooping"
        })
        .await;
    // A new spec is how a crash loop gets fixed: it must reach the machine.
    grow(&stack, "loopfix").await;
    let updated = machine_where(&stack, "loopfix", "the update to reach Fly", |m| {
        memory(m) == 4096
    })
    .await;
    assert_eq!(id_of(&updated), id, "updated in place");
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/_sim/machines/{id}/crash-loop"),
        None,
    )
    .await;
    ready(&stack, "loopfix").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boot_failure_is_started_again() {
    let stack = Stack::start(options()).await;
    let lease_route = "POST /v1/apps/{app}/machines/{id}/lease";
    put(&stack, "boot").await;
    let m = machine_where(&stack, "boot", "a machine", |_| true).await;
    let id = id_of(&m);
    machine_fault_when_possible(&stack, &id, "fail", json!({})).await;
    // The instance may already be Ready: the next visit (here asked for at once) notices.
    stack.reconcile_now("boot").await;
    let body = ready(&stack, "boot").await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");
    let starts = answered(&stack, "POST /v1/apps/{app}/machines/{id}/start", 200).await;
    assert!(starts >= 1, "started again");
    assert!(
        answered(&stack, lease_route, 201).await >= starts,
        "under a lease"
    );

    grow(&stack, "boot").await;
    machine_where(&stack, "boot", "the update to reach Fly", |m| {
        memory(m) == 4096
    })
    .await;
    machine_fault_when_possible(&stack, &id, "fail", json!({})).await;
    // The instance may already be Ready: the next visit (here asked for at once) notices.
    stack.reconcile_now("boot").await;
    let body = ready(&stack, "boot").await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");
    assert!(answered(&stack, "POST /v1/apps/{app}/machines/{id}/start", 200).await > starts);

    machine_fault_when_possible(&stack, &id, "fail", json!({})).await;
    delete(&stack, "boot").await;
    gone(&stack, "boot").await;
}

/// A launch failure destroys the machine on its own; its volume then stays bound for a while, so
/// the replacement's create and the teardown's volume delete both meet 412s first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_failure_is_replaced_on_the_same_volume_once_it_is_released() {
    let stack = Stack::start(StackOptions {
        volume_release_seconds: Some(12.0),
        ..options()
    })
    .await;
    put(&stack, "launch").await;
    let first = machine_where(&stack, "launch", "a machine", |_| true).await;
    let volume = first["config"]["mounts"][0]["volume"].clone();
    machine_fault_when_possible(
        &stack,
        &id_of(&first),
        "fail",
        json!({"launch_failed": true}),
    )
    .await;
    stack.reconcile_now("launch").await;
    let body = stack
        .wait_for("launch", "a replacement machine, Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready" && b["status"]["fly"]["machineId"] != first["id"]
        })
        .await;
    assert_eq!(body["status"]["fly"]["volumeId"], volume, "same volume");
    assert_one_of_each(&stack, "launch").await;
    assert!(
        answered(&stack, "POST /v1/apps/{app}/machines", 412).await >= 1,
        "the create met the still-bound volume"
    );

    grow(&stack, "launch").await;
    let second = machine_where(&stack, "launch", "the update to reach Fly", |m| {
        memory(m) == 4096
    })
    .await;
    machine_fault_when_possible(
        &stack,
        &id_of(&second),
        "fail",
        json!({"launch_failed": true}),
    )
    .await;
    stack.reconcile_now("launch").await;
    let body = stack
        .wait_for("launch", "a third machine, Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
                && b["status"]["observedGeneration"] == 2
                && b["status"]["fly"]["machineId"] != second["id"]
        })
        .await;
    assert_eq!(body["status"]["fly"]["volumeId"], volume, "same volume");
    assert_one_of_each(&stack, "launch").await;
    assert_eq!(memory(&stack.fly_machines(&app("launch")).await[0]), 4096);

    delete(&stack, "launch").await;
    gone(&stack, "launch").await;
    assert!(
        answered(&stack, "DELETE /v1/apps/{app}/volumes/{vol}", 412).await >= 1,
        "the volume delete met the still-bound volume"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_reported_and_waited_out_without_touching_the_machine() {
    let stack = Stack::start(options()).await;
    let name = "dark";
    put(&stack, name).await;
    let m = machine_where(&stack, name, "a machine", |_| true).await;
    let id = id_of(&m);
    let unreachable = format!("/_sim/machines/{id}/unreachable");
    let host_waited = |b: &Value| {
        condition(b, "MachineReady")["reason"] == "HostUnreachable"
            && condition(b, "Ready")["reason"] == "HostUnreachable"
    };

    sim_ok(&stack, Method::POST, &unreachable, None).await;
    stack.reconcile_now(name).await;
    let seen = stack
        .wait_for(name, "HostUnreachable", CONVERGE, host_waited)
        .await;
    assert_eq!(seen["status"]["fly"]["machineId"], id.as_str(), "{seen}");
    assert_eq!(stack.fly_machines(&app(name)).await.len(), 1);
    sim_ok(&stack, Method::DELETE, &unreachable, None).await;
    let body = ready(&stack, name).await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");

    sim_ok(&stack, Method::POST, &unreachable, None).await;
    grow(&stack, name).await;
    stack
        .wait_for(name, "HostUnreachable at generation 2", CONVERGE, |b| {
            host_waited(b) && b["status"]["observedGeneration"] == 2
        })
        .await;
    let machines = stack.fly_machines(&app(name)).await;
    assert_eq!(machines.len(), 1);
    assert_eq!(memory(&machines[0]), 2048, "nothing changed meanwhile");
    sim_ok(&stack, Method::DELETE, &unreachable, None).await;
    let body = ready(&stack, name).await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);

    sim_ok(&stack, Method::POST, &unreachable, None).await;
    delete(&stack, name).await;
    let seen = stack
        .wait_for(name, "teardown to wait for the host", CONVERGE, |b| {
            b["status"]["phase"] == "Deleting"
                && condition(b, "MachineReady")["reason"] == "HostUnreachable"
        })
        .await;
    assert_eq!(stack.fly_apps().await.len(), 1, "{seen}");
    sim_ok(&stack, Method::DELETE, &unreachable, None).await;
    gone(&stack, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_migration_is_followed_to_the_forked_volume() {
    let stack = Stack::start(options()).await;
    let name = "moved";
    put(&stack, name).await;
    let m = machine_where(&stack, name, "a started machine", |m| {
        m["state"] == "started"
    })
    .await;
    let id = id_of(&m);
    let migrated = machine_fault(&stack, &id, "migrate", json!({})).await;
    stack.reconcile_now(name).await;
    let forked = migrated["new_volume"].as_str().unwrap().to_owned();
    assert_ne!(migrated["old_volume"], forked.as_str());
    stack
        .wait_for(name, "Ready on the forked volume", CONVERGE, |b| {
            b["status"]["phase"] == "Ready" && b["status"]["fly"]["volumeId"] == forked.as_str()
        })
        .await;
    assert_one_of_each(&stack, name).await;

    grow(&stack, name).await;
    machine_where(&stack, name, "the update to reach Fly", |m| {
        memory(m) == 4096 && m["state"] == "started"
    })
    .await;
    let migrated = machine_fault(&stack, &id, "migrate", json!({})).await;
    stack.reconcile_now(name).await;
    let forked = migrated["new_volume"].as_str().unwrap().to_owned();
    stack
        .wait_for(name, "Ready on the second fork", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
                && b["status"]["observedGeneration"] == 2
                && b["status"]["fly"]["volumeId"] == forked.as_str()
        })
        .await;
    assert_one_of_each(&stack, name).await;
    assert_eq!(
        stack.fly_machines(&app(name)).await[0]["id"],
        id.as_str(),
        "kept"
    );

    machine_fault(&stack, &id, "migrate", json!({})).await;
    delete(&stack, name).await;
    gone(&stack, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_deleted_out_of_band_is_rebuilt_and_teardown_still_finishes() {
    let stack = Stack::start(options()).await;
    let name = "reborn";
    let body = provisioned(&stack, name).await;
    let old_machine = body["status"]["fly"]["machineId"].clone();
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/v1/apps/{}?force=true", app(name)),
        None,
    )
    .await;
    eventually(CONVERGE, "the app to be gone at Fly", || async {
        stack.fly_apps().await.is_empty().then_some(())
    })
    .await;
    stack.reconcile_now(name).await;
    let body = stack
        .wait_for(name, "a rebuilt app, Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready" && b["status"]["fly"]["machineId"] != old_machine
        })
        .await;
    assert_one_of_each(&stack, name).await;
    let events = stack.events(name).await;
    assert!(
        events.iter().any(|e| e["reason"] == "DriftDetected"),
        "{events:?}"
    );
    assert_eq!(condition(&body, "DnsReady")["status"], "True", "{body}");

    // Gone again before the delete: teardown removes our DNS record and finishes.
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/v1/apps/{}?force=true", app(name)),
        None,
    )
    .await;
    eventually(CONVERGE, "the app to be gone at Fly", || async {
        stack.fly_apps().await.is_empty().then_some(())
    })
    .await;
    delete(&stack, name).await;
    gone(&stack, name).await;
    let events = stack.events(name).await;
    assert!(
        events.iter().any(|e| e["reason"] == "DeleteDnsRecord"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_volume_deleted_out_of_band_is_recreated() {
    let stack = Stack::start(StackOptions {
        volume_release_seconds: Some(0.5),
        ..options()
    })
    .await;
    let name = "novol";
    let body = provisioned(&stack, name).await;
    let old_volume = body["status"]["fly"]["volumeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let machine = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Hold the controller off while someone destroys the machine and deletes the volume.
    stack.patch(name, json!({"spec": {"paused": true}})).await;
    stack
        .wait_for(name, "Paused", CONVERGE, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
    let app = app(name);
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/v1/apps/{app}/machines/{machine}?force=true"),
        None,
    )
    .await;
    eventually(CONVERGE, "the volume to be released", || async {
        let state = stack.sim_state().await;
        state["volumes"]
            .as_array()?
            .iter()
            .any(|v| v["id"] == old_volume.as_str() && v["attached_machine_id"].is_null())
            .then_some(())
    })
    .await;
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/v1/apps/{app}/volumes/{old_volume}"),
        None,
    )
    .await;
    stack.patch(name, json!({"spec": {"paused": false}})).await;
    let body = stack
        .wait_for(name, "a new volume, Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
                && b["status"]["observedGeneration"] == b["metadata"]["generation"]
                && b["status"]["fly"]["volumeId"] != old_volume.as_str()
        })
        .await;
    assert_one_of_each(&stack, name).await;
    let machines = stack.fly_machines(&app).await;
    assert_eq!(
        machines[0]["config"]["mounts"][0]["volume"],
        body["status"]["fly"]["volumeId"]
    );
    delete(&stack, name).await;
    gone(&stack, name).await;
}

/// The app's addresses with their kinds, from the simulator's state (Fly's answers carry no
/// kind).
async fn sim_ips(stack: &Stack, app: &str) -> Vec<serde_json::Value> {
    let state = stack.sim_state().await;
    state["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app))
        .and_then(|a| a["ips"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_address_is_allocated_again() {
    let stack = Stack::start(options()).await;
    let name = "addr";
    provisioned(&stack, name).await;
    let app = app(name);
    let ips = sim_ips(&stack, &app).await;
    let v6 = ips
        .iter()
        .find(|ip| ip["type"] == "v6")
        .and_then(|ip| ip["ip"].as_str())
        .expect("a v6 address")
        .to_owned();
    sim_ok(
        &stack,
        Method::DELETE,
        &format!("/v1/apps/{app}/ip_assignments/{v6}"),
        None,
    )
    .await;
    stack.reconcile_now(name).await;
    eventually(CONVERGE, "a v6 address again", || async {
        let ips = sim_ips(&stack, &app).await;
        let kinds: Vec<&str> = ips.iter().filter_map(|ip| ip["type"].as_str()).collect();
        (kinds.iter().filter(|k| **k == "v6").count() == 1 && kinds.len() == 2).then_some(())
    })
    .await;
    ready(&stack, name).await;
    let events = stack.events(name).await;
    assert!(
        events.iter().any(|e| e["reason"] == "AssignIp"
            && e["message"].as_str().is_some_and(|m| m.contains("v6"))),
        "{events:?}"
    );
}

/// Fly's April 2026 incident: lists came back empty for machines that existed. What the last
/// reconcile recorded is read by id instead, so nothing is created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_lists_never_cause_a_second_volume_or_machine() {
    let stack = Stack::start(options()).await;
    let name = "empty";
    let empty = json!({"method": "GET", "path": "/(machines|volumes)$", "kind": "empty_list"});
    inject(&stack, empty.clone()).await;
    provisioned(&stack, name).await;
    grow(&stack, name).await;
    ready(&stack, name).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);
    let (_, faults) = stack.fly(Method::GET, "/_sim/faults", None).await;
    assert!(
        faults["faults"][0]["hits"].as_u64() > Some(2),
        "lists were empty: {faults}"
    );
    delete(&stack, name).await;
    gone(&stack, name).await;
    clear_faults(&stack).await;
    let creates = |route: &'static str| {
        let stack = &stack;
        async move { answered(stack, route, 200).await }
    };
    assert_eq!(creates("POST /v1/apps/{app}/volumes").await, 1);
    assert_eq!(creates("POST /v1/apps/{app}/machines").await, 1);
}

/// Mutation routes must never have met a lease conflict: leases are taken first.
async fn assert_no_mutation_met_a_lease(stack: &Stack) {
    let stats = stats(stack).await;
    for (route, call) in stats["calls"].as_object().unwrap() {
        if route.contains("/machines/{id}") && !route.ends_with("/lease") {
            assert!(
                call["statuses"]["409"].is_null(),
                "{route} met a 409: {call}"
            );
        }
    }
}

fn next_reconcile_unix(body: &Value) -> i64 {
    let at = body["status"]["nextReconcileAt"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .timestamp()
}

/// Waits until the status reports the held lease, and checks the retry is due at its expiry
/// (plus the second of skew margin and the up to 10% jitter the queue adds).
async fn assert_lease_reported(stack: &Stack, name: &str, expires_at: i64) {
    let seen = stack
        .wait_for(name, "lastError LeaseHeld", CONVERGE, |b| {
            b["status"]["lastError"]["reason"] == "LeaseHeld"
        })
        .await;
    if seen["status"]["phase"] != "Deleting" {
        assert_eq!(ready_reason(&seen), "LeaseHeld", "{seen}");
    }
    let next = next_reconcile_unix(&seen);
    let seen_at =
        chrono::DateTime::parse_from_rfc3339(seen["status"]["lastError"]["time"].as_str().unwrap())
            .unwrap()
            .timestamp();
    let slack = 3 + (expires_at - seen_at).max(0) / 10;
    assert!(
        (expires_at - 1..=expires_at + slack).contains(&next),
        "retry at {next}, lease expires at {expires_at}: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_lease_delays_changes_until_it_expires() {
    let stack = Stack::start(options()).await;
    let name = "leased";
    put(&stack, name).await;
    let m = machine_where(&stack, name, "a started machine", |m| {
        m["state"] == "started"
    })
    .await;
    let id = id_of(&m);
    let foreign = json!({"seconds": 5, "owner": "alice@example.com"});
    // A failed boot needs a start, which has to wait for alice.
    let lease = machine_fault(&stack, &id, "foreign-lease", foreign.clone()).await;
    machine_fault(&stack, &id, "fail", json!({})).await;
    stack.reconcile_now(name).await;
    assert_lease_reported(&stack, name, lease["expires_at"].as_i64().unwrap()).await;
    let body = ready(&stack, name).await;
    assert_eq!(body["status"]["fly"]["machineId"], id.as_str(), "kept");

    let lease = machine_fault(&stack, &id, "foreign-lease", foreign.clone()).await;
    grow(&stack, name).await;
    assert_lease_reported(&stack, name, lease["expires_at"].as_i64().unwrap()).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 2048);
    ready(&stack, name).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);

    let lease = machine_fault(&stack, &id, "foreign-lease", foreign).await;
    delete(&stack, name).await;
    assert_lease_reported(&stack, name, lease["expires_at"].as_i64().unwrap()).await;
    gone(&stack, name).await;
    assert_no_mutation_met_a_lease(&stack).await;
}

/// A controller that died holding a lease leaves it behind; it expires after the short TTL we
/// take leases for, and the next attempt goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_dead_controller_expires_and_the_change_goes_through() {
    let stack = Stack::start(options()).await;
    let name = "orphanlease";
    let body = provisioned(&stack, name).await;
    let id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ttl = openclaws_fly::client::LEASE_TTL.as_secs();
    assert!(ttl <= 60, "a lease TTL of {ttl}s would wedge instances");
    let lease = sim_ok(
        &stack,
        Method::POST,
        &format!("/v1/apps/{}/machines/{id}/lease", app(name)),
        Some(json!({"ttl": ttl, "description": "openclaws-controller: UpdateMachine"})),
    )
    .await;
    let expires_at = lease["data"]["expires_at"].as_i64().unwrap();
    grow(&stack, name).await;
    assert_lease_reported(&stack, name, expires_at).await;
    ready(&stack, name).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);
    assert_no_mutation_met_a_lease(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_reported_and_recovered_from() {
    let stack = Stack::start(options()).await;
    let name = "revoked";
    let revoked = json!({"path": "^/v1/", "kind": "token_revoked"});
    let reported = |b: &Value| {
        b["status"]["lastError"]["reason"] == "FlyUnauthorized"
            && b["status"]["lastError"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Fly refused the API token"))
    };

    inject(&stack, revoked.clone()).await;
    put(&stack, name).await;
    let seen = stack
        .wait_for(name, "FlyUnauthorized", CONVERGE, reported)
        .await;
    assert_eq!(seen["status"]["phase"], "Provisioning");
    assert_eq!(ready_reason(&seen), "FlyUnauthorized", "{seen}");
    clear_faults(&stack).await;
    ready(&stack, name).await;

    inject(&stack, revoked.clone()).await;
    grow(&stack, name).await;
    let seen = stack
        .wait_for(name, "FlyUnauthorized", CONVERGE, reported)
        .await;
    assert_eq!(condition(&seen, "Ready")["status"], "False", "{seen}");
    assert_eq!(ready_reason(&seen), "FlyUnauthorized", "{seen}");
    clear_faults(&stack).await;
    ready(&stack, name).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);

    inject(&stack, revoked).await;
    delete(&stack, name).await;
    let seen = stack
        .wait_for(name, "FlyUnauthorized", CONVERGE, reported)
        .await;
    assert_eq!(seen["status"]["phase"], "Deleting");
    assert_eq!(stack.fly_apps().await.len(), 1, "nothing removed yet");
    clear_faults(&stack).await;
    gone(&stack, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_a_machine_in_a_full_region_is_reported_until_there_is_room() {
    let stack = Stack::start(options()).await;
    let name = "tight";
    provisioned(&stack, name).await;
    sim_ok(
        &stack,
        Method::POST,
        "/_sim/regions/iad",
        Some(json!({"full": true})),
    )
    .await;
    grow(&stack, name).await;
    let seen = stack
        .wait_for(name, "RegionCapacity", CONVERGE, |b| {
            b["status"]["lastError"]["reason"] == "RegionCapacity"
        })
        .await;
    assert_eq!(seen["status"]["lastError"]["step"], "UpdateMachine");
    assert_eq!(ready_reason(&seen), "RegionCapacity");
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 2048);
    sim_ok(
        &stack,
        Method::POST,
        "/_sim/regions/iad",
        Some(json!({"full": false})),
    )
    .await;
    stack.reconcile_now(name).await;
    ready(&stack, name).await;
    assert_eq!(memory(&stack.fly_machines(&app(name)).await[0]), 4096);
    delete(&stack, name).await;
    gone(&stack, name).await;
}
