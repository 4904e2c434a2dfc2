//! Stuck instances reach Sentry once and are resolved when they recover: the controller runs as
//! a child process with `SENTRY_DSN` at a local stand-in for Sentry (ingest and the web API's
//! bulk issue update), `OPENCLAWS_STUCK_AFTER=2s`. An instance whose machine crash-loops is
//! reported once (fingerprint: instance and reason) with its conditions and newest events and
//! no secret, counted in `openclaws_instances_stuck`; when the loop stops and it is Ready again
//! its issue is resolved through the web API and the gauge falls back to zero.

use openclaws_testkit::db::eventually;
use openclaws_testkit::ingest::Ingest;
use openclaws_testkit::process::{free_port, spawn_controller_logging_with, wait_api};
use openclaws_testkit::stack::{condition, Stack, StackOptions, FLY_TOKEN, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

async fn metric(stack: &Stack, series: &str) -> Option<f64> {
    let text = stack
        .http
        .get(format!("{}/metrics", stack.api_url))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Stuck reports of `uid` for `reason`.
fn stuck_events(ingest: &Ingest, uid: &str, reason: &str) -> Vec<Value> {
    ingest
        .events()
        .into_iter()
        .filter(|e| {
            e["logger"] == "stuck"
                && e["tags"]["instance_uid"] == uid
                && e["tags"]["reason"] == reason
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_instance_is_reported_once_and_resolved_when_it_recovers() {
    let ingest = Ingest::start().await;
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("openclaws-stuck-{}.log", uuid::Uuid::new_v4()));
    let _child = spawn_controller_logging_with(
        &stack,
        port,
        &log,
        &[
            ("SENTRY_DSN", ingest.dsn.as_str()),
            ("SENTRY_API_URL", ingest.api_url.as_str()),
            ("SENTRY_ORG", "openclaws"),
            ("SENTRY_AUTH_TOKEN", Ingest::API_TOKEN),
            ("OPENCLAWS_STUCK_AFTER", "2s"),
            ("OPENCLAWS_STUCK_SWEEP_SECONDS", "0.5"),
        ],
    );
    wait_api(&stack.http, &stack.api_url).await;
    let canary = format!("sk-ant-CANARY-{}", uuid::Uuid::new_v4().simple());
    let (code, body) = stack
        .put(
            "looping",
            json!({"customerId": "c", "region": "iad",
                   "providerKeys": {"anthropicApiKey": canary}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let ready = stack
        .wait_for("looping", "Ready", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
        })
        .await;
    let uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();
    let machine = ready["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    // (Provisioning on the simulator's Fly-like latencies takes longer than the 2 s limit, so
    // the new instance may have been reported and resolved already; that is its own issue.)

    let loop_path = format!("/_sim/machines/{machine}/crash-loop");
    let (code, body) = stack
        .fly(Method::POST, &loop_path, Some(json!({"exit_code": 3})))
        .await;
    assert!(code.is_success(), "{body}");
    stack.reconcile_now("looping").await;
    stack
        .wait_for("looping", "Ready=CrashLooping", CONVERGE, |b| {
            condition(b, "Ready")["reason"] == "CrashLooping"
        })
        .await;
    let reported = eventually(CONVERGE, "a stuck report", || async {
        stuck_events(&ingest, &uid, "CrashLooping")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        reported["fingerprint"],
        json!(["stuck", uid, "CrashLooping"])
    );
    assert_eq!(reported["tags"]["reason"], "CrashLooping");
    let stuck_id = reported["tags"]["stuck_id"].as_str().unwrap().to_owned();
    assert_eq!(reported["extra"]["instance"], "looping");
    let conditions = reported["extra"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["reason"] == "CrashLooping"),
        "{reported}"
    );
    assert!(
        !reported["extra"]["last_events"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{reported}"
    );
    assert!(
        reported["message"]
            .as_str()
            .unwrap()
            .contains("CrashLooping"),
        "{reported}"
    );
    eventually(CONVERGE, "the stuck gauge", || async {
        (metric(&stack, "openclaws_instances_stuck{reason=\"CrashLooping\"}").await == Some(1.0))
            .then_some(())
    })
    .await;

    // Recovery: the loop stops, the instance is Ready again, its issue is resolved.
    let (code, body) = stack.fly(Method::DELETE, &loop_path, None).await;
    assert!(code.is_success(), "{body}");
    stack.reconcile_now("looping").await;
    stack
        .wait_for("looping", "Ready again", CONVERGE, |b| {
            b["status"]["phase"] == "Ready"
        })
        .await;
    let resolved = eventually(CONVERGE, "the issue resolved", || async {
        ingest.api_calls().into_iter().find(|c| {
            c.status == 200 && c.params["query"].contains(&format!("stuck_id:\"{stuck_id}\""))
        })
    })
    .await;
    assert_eq!(resolved.org, "openclaws");
    assert_eq!(resolved.body, json!({"status": "resolved"}));
    assert!(
        resolved.params["query"].starts_with("is:unresolved "),
        "{resolved:?}"
    );
    assert_eq!(
        resolved.authorization.as_deref(),
        Some(format!("Bearer {}", Ingest::API_TOKEN).as_str())
    );
    eventually(CONVERGE, "the stuck gauge back to zero", || async {
        (metric(&stack, "openclaws_instances_stuck{reason=\"CrashLooping\"}").await == Some(0.0))
            .then_some(())
    })
    .await;
    // Many sweeps ran between the report and the recovery: still one report.
    assert_eq!(stuck_events(&ingest, &uid, "CrashLooping").len(), 1);

    let token: Value = stack
        .http
        .get(format!(
            "{}/v1/instances/looping/gateway-token",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gateway_token = token["token"].as_str().unwrap().to_owned();
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logs.contains("instance stuck"), "the report is logged");
    let mut texts = ingest.bodies();
    texts.push(logs);
    for text in &texts {
        for secret in [
            canary.as_str(),
            gateway_token.as_str(),
            Ingest::API_TOKEN,
            WRITER,
            FLY_TOKEN,
        ] {
            assert!(
                !text.contains(secret),
                "{secret} left the process in: {}",
                &text[..text.len().min(500)]
            );
        }
    }
}
