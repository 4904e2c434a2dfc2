//! Black-box lifecycle: desired state written through the API converges on the Fly simulator,
//! over real HTTP, with real PostgreSQL; drift is repaired and delete tears everything down.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of the app's addresses, from the simulator's state (Fly's answers carry no kind).
async fn ip_kinds(stack: &Stack, app: &str) -> Vec<String> {
    let state = stack.sim_state().await;
    let app = state["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == app)
        .expect("the app");
    app["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn machine_id(body: &Value) -> String {
    body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_stop_start_and_delete() {
    create_update_stop_start_and_delete_on(&Stack::start(StackOptions::default()).await).await;
}

/// The scenario of [`create_update_stop_start_and_delete`] on `stack` (also run through a transaction pooler).
pub async fn create_update_stop_start_and_delete_on(stack: &Stack) {
    let started = Instant::now();
    let (code, created) = stack
        .put("acme", json!({"customerId": "cust-1", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");

    // create → Ready, with every condition true and the generation observed.
    let ready = stack.wait_ready("acme", READY_TIMEOUT).await;
    println!(
        "time to Ready with default simulator latencies: {:?}",
        started.elapsed()
    );
    for c in ["AppReady", "VolumeReady", "MachineReady", "Ready"] {
        assert_eq!(condition(&ready, c)["status"], "True", "{c}: {ready}");
        assert_eq!(condition(&ready, c)["observedGeneration"], 1);
    }
    assert_eq!(ready["status"]["observedGeneration"], 1);
    assert_eq!(ready["status"]["endpoint"], "https://acme.openclaws.test");
    let fly = &ready["status"]["fly"];
    assert_eq!(fly["appName"], "oc-acme");
    assert_eq!(fly["machineState"], "started");
    let uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();

    // The world: exactly one app, volume and machine, marked as ours, built as specified.
    let machines = stack.fly_machines("oc-acme").await;
    assert_eq!(machines.len(), 1);
    let m = &machines[0];
    assert_eq!(m["state"], "started");
    assert_eq!(
        m["config"]["metadata"]["openclaws_instance_uid"],
        uid.as_str()
    );
    assert_eq!(m["config"]["guest"]["memory_mb"], 2048);
    assert_eq!(m["config"]["guest"]["cpu_kind"], "shared");
    assert_eq!(m["config"]["image"], "ghcr.io/openclaw/openclaw:main");
    assert_eq!(m["config"]["env"]["OPENCLAW_STATE_DIR"], "/data");
    assert_eq!(m["config"]["restart"]["policy"], "always");
    assert_eq!(m["config"]["mounts"][0]["path"], "/data");
    assert_eq!(m["config"]["mounts"][0]["volume"], fly["volumeId"]);
    let ports: Vec<i64> = m["config"]["services"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    assert_eq!(m["config"]["services"][0]["internal_port"], 3000);
    assert_eq!(stack.fly_volumes("oc-acme").await.len(), 1);
    let mut kinds = ip_kinds(stack, "oc-acme").await;
    kinds.sort();
    assert_eq!(
        kinds,
        ["shared_v4", "v6"],
        "public: one IPv6 and a shared IPv4"
    );
    let events = stack.events("acme").await;
    for reason in ["CreateApp", "CreateVolume", "CreateMachine", "PhaseReady"] {
        assert!(
            events.iter().any(|e| e["reason"] == reason),
            "no {reason} event: {events:?}"
        );
    }

    // A spec change (memory) updates the machine in place.
    let (code, patched) = stack
        .patch("acme", json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"]["generation"], 2);
    let ready = stack.wait_ready("acme", READY_TIMEOUT).await;
    assert_eq!(ready["status"]["observedGeneration"], 2);
    let machines = stack.fly_machines("oc-acme").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["id"], m["id"], "updated in place, not replaced");
    assert_eq!(machines[0]["config"]["guest"]["memory_mb"], 4096);

    // exposure: private releases the public addresses for one Flycast address.
    stack
        .patch("acme", json!({"spec": {"exposure": "private"}}))
        .await;
    stack.wait_ready("acme", READY_TIMEOUT).await;
    assert_eq!(ip_kinds(stack, "oc-acme").await, ["private_v6"]);

    // runState: stopped stops the machine; phase Stopped.
    stack
        .patch("acme", json!({"spec": {"runState": "stopped"}}))
        .await;
    let stopped = stack
        .wait_for("acme", "phase Stopped", READY_TIMEOUT, |b| {
            b["status"]["phase"] == "Stopped" && b["status"]["observedGeneration"] == 4
        })
        .await;
    assert_eq!(condition(&stopped, "Ready")["reason"], "Stopped");
    assert_eq!(stack.fly_machines("oc-acme").await[0]["state"], "stopped");

    // And back to running.
    stack
        .patch("acme", json!({"spec": {"runState": "running"}}))
        .await;
    stack.wait_ready("acme", READY_TIMEOUT).await;
    assert_eq!(stack.fly_machines("oc-acme").await[0]["state"], "started");

    // Delete: 202, torn down in order, row gone, tombstone kept.
    assert_eq!(stack.delete("acme").await, StatusCode::ACCEPTED);
    assert_eq!(
        stack.delete("acme").await,
        StatusCode::ACCEPTED,
        "DELETE is idempotent"
    );
    eventually(Duration::from_secs(60), "the row to be gone", || async {
        (stack.get("acme").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let (code, _) = stack.fly(Method::GET, "/v1/apps/oc-acme", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "the app is gone");
    assert!(stack.fly_machines("oc-acme").await.is_empty());
    assert!(stack.fly_volumes("oc-acme").await.is_empty());
    assert!(stack.fly_apps().await.is_empty());
    // The whole lifecycle stayed within Fly's rate limits.
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["rate_limited_total"], 0, "{stats}");
    let events = stack.events("acme").await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons.last(), Some(&"Deleted"), "{reasons:?}");
    let order: Vec<&str> = reasons
        .iter()
        .copied()
        .filter(|r| ["DestroyMachine", "DeleteVolume", "DeleteApp"].contains(r))
        .collect();
    assert_eq!(order.first(), Some(&"DestroyMachine"));
    assert_eq!(order.last(), Some(&"DeleteApp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_destroyed_out_of_band_is_recreated_on_the_same_volume() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .put("drift-destroy", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("drift-destroy", READY_TIMEOUT).await;
    let old_machine = machine_id(&ready);
    let volume = ready["status"]["fly"]["volumeId"].clone();

    let (code, body) = stack
        .fly(
            Method::DELETE,
            &format!("/v1/apps/oc-drift-destroy/machines/{old_machine}?force=true"),
            None,
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    stack.reconcile_now("drift-destroy").await;
    let repaired = stack
        .wait_for(
            "drift-destroy",
            "a new machine, Ready",
            Duration::from_secs(60),
            |b| {
                b["status"]["phase"] == "Ready"
                    && b["status"]["fly"]["machineId"]
                        .as_str()
                        .is_some_and(|m| m != old_machine)
            },
        )
        .await;
    assert_eq!(
        repaired["status"]["fly"]["volumeId"], volume,
        "same volume, data kept"
    );
    let machines = stack.fly_machines("oc-drift-destroy").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["config"]["mounts"][0]["volume"], volume);
    assert_eq!(stack.fly_volumes("oc-drift-destroy").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_stopped_out_of_band_is_started_on_the_next_resync() {
    let stack = Stack::start(StackOptions {
        resync_seconds: 1,
        ..StackOptions::default()
    })
    .await;
    stack
        .put("drift-stop", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("drift-stop", READY_TIMEOUT).await;
    let id = machine_id(&ready);
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/v1/apps/oc-drift-stop/machines/{id}/stop"),
            Some(json!({})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    // No "reconcile now": the periodic resync must notice on its own.
    eventually(
        Duration::from_secs(30),
        "the drift to be detected and repaired",
        || async {
            let events = stack.events("drift-stop").await;
            (events.iter().any(|e| e["reason"] == "DriftDetected")
                && events.iter().any(|e| e["reason"] == "StartMachine"))
            .then_some(())
        },
    )
    .await;
    assert_eq!(stack.fly_machines("oc-drift-stop").await.len(), 1);
    eventually(
        Duration::from_secs(30),
        "the machine to be started",
        || async {
            let m = stack.fly_machines("oc-drift-stop").await;
            (m[0]["state"] == "started").then_some(())
        },
    )
    .await;
    assert_eq!(
        stack.fly_machines("oc-drift-stop").await[0]["id"],
        id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_reconfigured_out_of_band_is_restored() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .put("drift-config", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("drift-config", READY_TIMEOUT).await;
    let id = machine_id(&ready);
    let path = format!("/v1/apps/oc-drift-config/machines/{id}");
    let (_, machine) = stack.fly(Method::GET, &path, None).await;
    let mut config = machine["config"].clone();
    config["image"] = json!("someone/else:latest");
    config["guest"]["memory_mb"] = json!(1024);
    let (code, body) = stack
        .fly(Method::POST, &path, Some(json!({"config": config})))
        .await;
    assert!(code.is_success(), "{code} {body}");
    stack.reconcile_now("drift-config").await;
    eventually(
        Duration::from_secs(30),
        "the config to be restored",
        || async {
            let (_, m) = stack.fly(Method::GET, &path, None).await;
            (m["config"]["image"] == "ghcr.io/openclaw/openclaw:main"
                && m["config"]["guest"]["memory_mb"] == 2048
                && m["state"] == "started")
                .then_some(())
        },
    )
    .await;
    stack.wait_ready("drift-config", READY_TIMEOUT).await;
    let events = stack.events("drift-config").await;
    assert!(
        events.iter().any(|e| e["reason"] == "DriftDetected"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["reason"] == "UpdateMachine"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_gets_no_fly_calls_until_resumed() {
    a_paused_instance_gets_no_fly_calls_until_resumed_on(
        &Stack::start(StackOptions::default()).await,
    )
    .await;
}

/// The scenario of [`a_paused_instance_gets_no_fly_calls_until_resumed`] on `stack` (also run through a transaction pooler).
pub async fn a_paused_instance_gets_no_fly_calls_until_resumed_on(stack: &Stack) {
    stack
        .put(
            "held",
            json!({"customerId": "c", "region": "iad", "paused": true}),
        )
        .await;
    let paused = stack
        .wait_for("held", "the Paused condition", READY_TIMEOUT, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
    assert_eq!(condition(&paused, "Paused")["reason"], "PausedBySpec");
    let (_, calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    let fly_calls: Vec<&String> = calls
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains(" /v1/"))
        .collect();
    assert!(
        fly_calls.is_empty(),
        "a paused instance touched Fly: {fly_calls:?}"
    );

    stack
        .patch("held", json!({"spec": {"paused": false}}))
        .await;
    let ready = stack.wait_ready("held", READY_TIMEOUT).await;
    assert_eq!(
        condition(&ready, "Paused"),
        &Value::Null,
        "the condition goes away"
    );
}

/// Deletion always wins: a running instance that support paused is torn down when deleted (it
/// used to stop at the paused check, keep its machine running, and refuse the un-pause with 409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_paused_instance_tears_it_down() {
    deleting_a_paused_instance_tears_it_down_on(&Stack::start(StackOptions::default()).await).await;
}

/// The scenario of [`deleting_a_paused_instance_tears_it_down`] on `stack` (also run through a transaction pooler).
pub async fn deleting_a_paused_instance_tears_it_down_on(stack: &Stack) {
    stack
        .put("frozen", json!({"customerId": "c", "region": "iad"}))
        .await;
    stack.wait_ready("frozen", READY_TIMEOUT).await;
    stack
        .patch("frozen", json!({"spec": {"paused": true}}))
        .await;
    stack
        .wait_for("frozen", "the Paused condition", READY_TIMEOUT, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
    assert_eq!(stack.fly_machines("oc-frozen").await.len(), 1);

    assert_eq!(stack.delete("frozen").await, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(60), "the row to be gone", || async {
        (stack.get("frozen").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(stack.fly_apps().await.is_empty(), "the app is gone");
    let events = stack.events("frozen").await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons.last(), Some(&"Deleted"), "{reasons:?}");
    assert!(reasons.contains(&"DestroyMachine"), "{reasons:?}");
}
