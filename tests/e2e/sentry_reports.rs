//! Reconcile failures reach Sentry: the controller runs as a child process with `SENTRY_DSN`
//! pointing at a local stand-in for Sentry's ingest. Two instances fail (a name owned by another
//! organization, a secrets write Fly keeps refusing) while holding canary provider keys; each
//! failure is one event per instance and step however often it retries, with its fingerprint and
//! tags, and no envelope holds a canary, the gateway token, an API or Fly token, or an
//! `Authorization` header.

use openclaws_testkit::db::eventually;
use openclaws_testkit::ingest::Ingest;
use openclaws_testkit::process::{free_port, spawn_controller_logging_with, wait_api};
use openclaws_testkit::stack::{condition, Stack, StackOptions, FLY_TOKEN, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);

async fn gateway_token(stack: &Stack, name: &str) -> String {
    eventually(CONVERGE, "the gateway token", || async {
        let resp = stack
            .http
            .get(format!(
                "{}/v1/instances/{name}/gateway-token",
                stack.api_url
            ))
            .bearer_auth(WRITER)
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body: Value = resp.json().await.ok()?;
        body["token"].as_str().map(str::to_owned)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_once_per_instance_and_step_and_scrubbed() {
    let ingest = Ingest::start().await;
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("openclaws-sentry-{}.log", uuid::Uuid::new_v4()));
    let composio = format!("ak_COMPOSIO-CANARY-{}", uuid::Uuid::new_v4().simple());
    let mut child = spawn_controller_logging_with(
        &stack,
        port,
        &log,
        &[
            ("SENTRY_DSN", ingest.dsn.as_str()),
            ("SENTRY_ENVIRONMENT", "e2e"),
            ("OPENCLAWS_COMPOSIO_API_KEY", composio.as_str()),
        ],
    );
    wait_api(&stack.http, &stack.api_url).await;

    // One name belongs to another organization (rejected: retrying cannot help); the other
    // instance's secrets write keeps failing at Fly (retried with backoff).
    let (code, _) = stack
        .fly(
            Method::POST,
            "/_sim/foreign-apps",
            Some(json!({"name": "oc-elsewhere"})),
        )
        .await;
    assert!(code.is_success());
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/faults",
            Some(
                json!({"method": "POST", "path": "/secrets$", "app": "oc-keyed",
                        "kind": "error", "status": 503}),
            ),
        )
        .await;
    assert!(code.is_success(), "{body}");

    let canary = format!("sk-ant-CANARY-{}", uuid::Uuid::new_v4().simple());
    let openai = format!("sk-proj-CANARY-{}", uuid::Uuid::new_v4().simple());
    for name in ["elsewhere", "keyed"] {
        let (code, body) = stack
            .put(
                name,
                json!({"customerId": "c", "region": "iad",
                       "providerKeys": {"anthropicApiKey": canary, "openaiApiKey": openai},
                       "composio": {"enabled": true}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let elsewhere = stack
        .wait_for("elsewhere", "phase Failed", CONVERGE, |b| {
            b["status"]["phase"] == "Failed"
        })
        .await;
    // Several failed attempts of the same step: still one report.
    let keyed = stack
        .wait_for("keyed", "three failed attempts", CONVERGE, |b| {
            b["status"]["lastError"]["attempt"].as_i64() >= Some(3)
        })
        .await;
    let tokens = [
        gateway_token(&stack, "elsewhere").await,
        gateway_token(&stack, "keyed").await,
    ];

    // A graceful stop flushes whatever the client still holds.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = eventually(Duration::from_secs(30), "the process to exit", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(status.success(), "exit status {status:?}");

    // The name taken elsewhere stops the planner (step `Plan`, the Ready reason); the refused
    // secrets write is a failed step retried with backoff.
    assert_eq!(condition(&elsewhere, "Ready")["reason"], "AppNameTaken");
    assert_eq!(
        keyed["status"]["lastError"]["step"], "SetSecrets",
        "{keyed}"
    );
    let events = ingest.events();
    for (instance, step, reason) in [
        (&elsewhere, "Plan", "AppNameTaken"),
        (
            &keyed,
            "SetSecrets",
            keyed["status"]["lastError"]["reason"].as_str().unwrap(),
        ),
    ] {
        let uid = instance["metadata"]["uid"].as_str().unwrap();
        let reported: Vec<&Value> = events
            .iter()
            .filter(|e| e["tags"]["instance_uid"] == uid)
            .collect();
        assert_eq!(
            reported.len(),
            1,
            "one report for {uid} ({step}): {reported:#?}"
        );
        let event = reported[0];
        assert_eq!(event["fingerprint"], json!(["reconcile", uid, step]));
        assert_eq!(event["tags"]["step"], step);
        assert_eq!(event["tags"]["reason"], reason);
        assert_eq!(event["exception"]["values"][0]["type"], reason);
        assert_eq!(event["environment"], "e2e");
        assert_eq!(event["extra"]["instance"], instance["metadata"]["name"]);
        assert!(event.get("user").is_none(), "no user data: {event}");
    }

    // Nothing that must stay private left the process, in any envelope or in the logs.
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        logs.lines().any(|l| l.contains("reconcile failed")
            && l.contains(keyed["metadata"]["uid"].as_str().unwrap())),
        "the failure is logged with its instance"
    );
    let mut texts = ingest.bodies();
    assert!(!texts.is_empty());
    texts.push(logs);
    for text in &texts {
        for secret in [
            canary.as_str(),
            openai.as_str(),
            composio.as_str(),
            tokens[0].as_str(),
            tokens[1].as_str(),
            WRITER,
            READER,
            FLY_TOKEN,
        ] {
            assert!(
                !text.contains(secret),
                "{secret} left the process in: {}",
                &text[..text.len().min(500)]
            );
        }
    }
    for body in ingest.bodies() {
        let lower = body.to_lowercase();
        assert!(
            !lower.contains("authorization") && !lower.contains("bearer"),
            "an Authorization header in: {body}"
        );
    }
}
