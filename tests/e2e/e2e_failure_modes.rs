//! OpenClaw-on-Fly failure modes from OpenClaw's Fly guide, caused through the simulator and
//! reported in their own words (`docs/failure-modes.md`): a gateway the kernel kills for running
//! out of memory, and a machine whose state directory is not on the data volume.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

fn options() -> StackOptions {
    StackOptions {
        latency_scale: 0.3,
        ..StackOptions::default()
    }
}

async fn provisioned(stack: &Stack, name: &str) -> Value {
    let (code, body) = stack
        .put(name, json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready(name, CONVERGE).await
}

fn machine_id(body: &Value) -> String {
    body["status"]["fly"]["machineId"]
        .as_str()
        .expect("a machine id")
        .to_owned()
}

/// The simulator's machine record (config and all) once `pred` holds for it.
async fn machine_where(
    stack: &Stack,
    app: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let pred = &pred;
    eventually(CONVERGE, what, || async move {
        stack.fly_machines(app).await.into_iter().find(|m| pred(m))
    })
    .await
}

fn env_of<'a>(machine: &'a Value, key: &str) -> &'a Value {
    &machine["config"]["env"][key]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_gateway_is_reported_as_out_of_memory_with_its_size() {
    let stack = Stack::start(options()).await;
    let body = provisioned(&stack, "oom").await;
    let id = machine_id(&body);
    let machine = machine_where(&stack, "oc-oom", "the machine", |_| true).await;
    assert_eq!(
        env_of(&machine, "NODE_OPTIONS"),
        "--max-old-space-size=1536",
        "the heap is capped at three quarters of 2048 MB"
    );

    let (code, answer) = stack
        .fly(
            Method::POST,
            &format!("/_sim/machines/{id}/oom-kill"),
            Some(json!({"loop": true})),
        )
        .await;
    assert!(code.is_success(), "{code} {answer}");
    stack.reconcile_now("oom").await;
    let seen = stack
        .wait_for("oom", "MachineReady=OutOfMemory", CONVERGE, |b| {
            condition(b, "MachineReady")["reason"] == "OutOfMemory"
        })
        .await;
    let message = condition(&seen, "MachineReady")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("2048 MB"), "{message}");
    assert!(message.contains("ran out of memory"), "{message}");
    assert_ne!(seen["status"]["phase"], "Ready", "{seen}");
    assert_eq!(condition(&seen, "Ready")["reason"], "OutOfMemory", "{seen}");

    // More memory is the fix: once the kills stop, it reaches the machine with a heap cap to
    // match.
    let (code, answer) = stack
        .fly(
            Method::DELETE,
            &format!("/_sim/machines/{id}/oom-kill"),
            None,
        )
        .await;
    assert!(code.is_success(), "{code} {answer}");
    let (code, answer) = stack
        .patch("oom", json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let grown = machine_where(&stack, "oc-oom", "the bigger machine", |m| {
        m["config"]["guest"]["memory_mb"] == 4096
    })
    .await;
    assert_eq!(env_of(&grown, "NODE_OPTIONS"), "--max-old-space-size=3072");
    let body = stack.wait_ready("oom", CONVERGE).await;
    assert_eq!(machine_id(&body), id, "kept, updated in place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_moved_off_the_volume_is_reported_and_put_back() {
    let stack = Stack::start(options()).await;
    let body = provisioned(&stack, "drift").await;
    let id = machine_id(&body);
    // Someone points the gateway's state at the machine's own disk (`fly machine update -e`).
    let machine = machine_where(&stack, "oc-drift", "the machine", |_| true).await;
    let mut config = machine["config"].clone();
    config["env"]["OPENCLAW_STATE_DIR"] = json!("/root/.openclaw");
    let path = format!("/v1/apps/oc-drift/machines/{id}");
    let (code, answer) = stack
        .fly(Method::POST, &path, Some(json!({"config": config})))
        .await;
    assert!(code.is_success(), "{code} {answer}");
    stack.reconcile_now("drift").await;

    let warning = eventually(CONVERGE, "a StateDirOutsideVolume event", || async {
        stack
            .events("drift")
            .await
            .into_iter()
            .find(|e| e["reason"] == "StateDirOutsideVolume")
    })
    .await;
    assert_eq!(warning["type"], "Warning", "{warning}");
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(message.contains("/root/.openclaw"), "{message}");
    assert!(message.contains("mounted at /data"), "{message}");

    let repaired = machine_where(&stack, "oc-drift", "the state dir put back", |m| {
        m["config"]["env"]["OPENCLAW_STATE_DIR"] == "/data"
    })
    .await;
    assert_eq!(repaired["id"], id.as_str(), "updated in place");
    stack.wait_ready("drift", CONVERGE).await;
}
