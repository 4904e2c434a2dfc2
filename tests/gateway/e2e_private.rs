//! A private instance (`exposure: private`) on the real OpenClaw gateway, reached as Fly reaches
//! it: over its Flycast address, `{app}.flycast`, through the simulator's private-network proxy,
//! never through the public edge (`docs/private-instances.md`). Then made public while a stale
//! gateway lock sits on its volume: the Flycast address goes, public addresses come, the boot
//! step removes the lock and the controller reports it as an event (`docs/failure-modes.md`),
//! and the public edge reaches it.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const READY_DEADLINE: Duration = Duration::from_secs(240);

fn options() -> StackOptions {
    StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    }
}

/// The kinds of the app's addresses as Fly lists them: `private` (Flycast, `fdaa:`) or `public`.
async fn address_kinds(stack: &Stack, app: &str) -> Vec<&'static str> {
    let (code, body) = stack
        .fly(
            reqwest::Method::GET,
            &format!("/v1/apps/{app}/ip_assignments"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let mut kinds: Vec<&'static str> = body["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .map(|ip| match ip["ip"].as_str() {
                    Some(a) if a.starts_with("fdaa:") => "private",
                    _ => "public",
                })
                .collect()
        })
        .unwrap_or_default();
    kinds.sort_unstable();
    kinds
}

/// `GET {base}/healthz` with `host` as `Host`: the status, or `None` when nothing answered.
async fn healthz(stack: &Stack, base: &str, host: &str) -> Option<StatusCode> {
    stack
        .http
        .get(format!("{base}/healthz"))
        .header("Host", host)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

fn assert_gateway_conditions(body: &Value) {
    for (type_, reason) in [
        ("GatewayHealthy", "Ready"),
        ("ConfigSeeded", "Seeded"),
        ("PairingReady", "NothingPending"),
    ] {
        let c = condition(body, type_);
        assert_eq!(c["status"], "True", "{c}");
        assert_eq!(c["reason"], reason, "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_instance_is_ready_over_flycast_and_unreachable_from_the_public_edge() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let stack = Stack::start(options()).await;
    let public = stack.proxy_url.clone().expect("the public proxy");
    let private = stack.private_proxy_url.clone().expect("the private proxy");
    let (code, body) = stack
        .put(
            "hidden",
            json!({"customerId": "c-hidden", "region": "iad", "exposure": "private"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // Ready with every gateway check on: the controller reached the gateway over Flycast.
    let body = stack.wait_ready("hidden", READY_DEADLINE).await;
    assert_gateway_conditions(&body);
    assert_eq!(address_kinds(&stack, "oc-hidden").await, ["private"]);
    let machines = stack.fly_machines("oc-hidden").await;
    let ports = &machines[0]["config"]["services"][0]["ports"];
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    assert_eq!(ports[0]["port"], 80, "{ports}");
    assert_ne!(
        ports[0]["force_https"], true,
        "Flycast is HTTP only: {ports}"
    );
    assert_eq!(
        healthz(&stack, &private, "oc-hidden.flycast").await,
        Some(StatusCode::OK)
    );
    let from_outside = healthz(&stack, &public, "oc-hidden.fly.dev").await;
    assert_ne!(from_outside, Some(StatusCode::OK), "public edge reached it");

    // A stale lock: with the controller paused, the machine is stopped and its state lock is
    // made to name a live process that looks like a gateway (a reused pid), which OpenClaw
    // itself takes for a running owner and refuses to start beside.
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .expect("a machine")
        .to_owned();
    let volume_dir = volume_dir(&stack, &machine_id).await;
    pause(&stack, true).await;
    stop_machine(&stack, "oc-hidden", &machine_id).await;
    let mut decoy = std::process::Command::new("sleep")
        .arg0("openclaw-gateway")
        .arg("600")
        .spawn()
        .expect("a decoy process");
    let lock = plant_lock(&volume_dir, decoy.id());

    // Made public (and resumed): public addresses instead of the Flycast one, the boot step
    // clears the lock, and the edge reaches the gateway.
    let (code, answer) = stack
        .patch(
            "hidden",
            json!({"spec": {"exposure": "public", "paused": false}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let body = stack.wait_ready("hidden", READY_DEADLINE).await;
    assert_gateway_conditions(&body);
    assert_eq!(
        address_kinds(&stack, "oc-hidden").await,
        ["public", "public"]
    );
    eventually(READY_DEADLINE, "the public edge to reach it", || async {
        (healthz(&stack, &public, "oc-hidden.fly.dev").await == Some(StatusCode::OK)).then_some(())
    })
    .await;
    assert_ne!(
        healthz(&stack, &private, "oc-hidden.flycast").await,
        Some(StatusCode::OK),
        "the Flycast address was released"
    );
    let owner = std::fs::read_to_string(&lock).unwrap_or_default();
    assert!(
        !owner.contains(&format!("\"pid\": {}", decoy.id())),
        "the stale lock is gone: {owner}"
    );
    // The boot step's notice became an event of the instance, read (and removed) once.
    let event = eventually(
        READY_DEADLINE,
        "a StaleGatewayLockRemoved event",
        || async {
            stack
                .events("hidden")
                .await
                .into_iter()
                .find(|e| e["reason"] == "StaleGatewayLockRemoved")
        },
    )
    .await;
    assert_eq!(event["type"], "Warning", "{event}");
    let message = event["message"].as_str().unwrap_or_default();
    assert!(message.contains("gateway.state.lock"), "{message}");
    assert!(
        message.contains(&format!("pid {}", decoy.id())),
        "{message}"
    );
    assert!(
        !volume_dir.join(".openclaws/boot-notices.json").exists(),
        "the notices are consumed"
    );
    let _ = decoy.kill();
    let _ = decoy.wait();
}

/// The machine's volume directory in process mode (asked while it runs).
async fn volume_dir(stack: &Stack, machine_id: &str) -> PathBuf {
    let (code, body) = stack
        .fly(
            reqwest::Method::GET,
            &format!("/_sim/machines/{machine_id}/process"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    PathBuf::from(body["volume_dir"].as_str().expect("a volume directory"))
}

async fn pause(stack: &Stack, paused: bool) {
    let (code, body) = stack
        .patch("hidden", json!({"spec": {"paused": paused}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stack
        .wait_for("hidden", "Paused", READY_DEADLINE, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
}

async fn stop_machine(stack: &Stack, app: &str, machine_id: &str) {
    let (code, body) = stack
        .fly(
            reqwest::Method::POST,
            &format!("/v1/apps/{app}/machines/{machine_id}/stop"),
            None,
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    eventually(READY_DEADLINE, "the machine to stop", || async {
        stack
            .fly_machines(app)
            .await
            .iter()
            .any(|m| m["id"] == machine_id && m["state"] == "stopped")
            .then_some(())
    })
    .await;
}

/// Writes the gateway's state lock (`tmp/openclaw-<uid>/gateway.state.lock` on the volume)
/// naming `pid` as its owner, without a start time; returns its path.
fn plant_lock(volume_dir: &Path, pid: u32) -> PathBuf {
    let tmp = volume_dir.join("tmp");
    let lock_dir = std::fs::read_dir(&tmp)
        .expect("the gateway's lock tree")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("openclaw"))
        })
        .expect("tmp/openclaw-<uid>");
    let lock = lock_dir.join("gateway.state.lock");
    let payload = json!({
        "pid": pid, "createdAt": "2026-01-01T00:00:00.000Z",
        "configPath": volume_dir.join("openclaw.json"), "stateDir": volume_dir,
    });
    std::fs::write(&lock, serde_json::to_string_pretty(&payload).unwrap()).unwrap();
    lock
}
