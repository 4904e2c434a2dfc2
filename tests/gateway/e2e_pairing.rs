//! Pairing by subscription on a real gateway (`docs/pairing.md`), with two controller replicas
//! sharing the database: devices are approved (auto) or shown (manual) as their requests come,
//! with no Fly call; the API answers approvals specifically; one replica holds the subscription;
//! it closes when the window ends.

use openclaws_gateway::identity::DeviceIdentity;
use openclaws_server::serve;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const READY_DEADLINE: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(60);
/// Devices that pair under the auto policy.
const DEVICES: usize = 5;

async fn approve(stack: &Stack, name: &str, body: Value) -> (StatusCode, Value) {
    stack.post(name, "pairing/approvals", &body).await
}

/// The subscription gauge summed over both replicas' `/metrics`.
async fn subscriptions(stack: &Stack, other_api: &str) -> f64 {
    let mut total = stack.metric("openclaws_pairing_subscriptions", "").await;
    let text = stack
        .http
        .get(format!("{other_api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    total += text
        .lines()
        .find_map(|l| l.strip_prefix("openclaws_pairing_subscriptions "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_approve_and_show_requests_without_fly_and_answer_specifically() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let mut stack = Stack::start_without_controller(StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    // A short window, so the test sees it end.
    stack.settings.gateway.pairing_window_seconds = 40;
    stack.start_controller().await;
    // A second replica on the same database.
    let second_stop = CancellationToken::new();
    let mut second_settings = stack.settings.clone();
    second_settings.listen = "127.0.0.1:0".parse().unwrap();
    let second = serve::start(&second_settings, second_stop.clone())
        .await
        .unwrap();
    let second_api = format!("http://{}", second.addr);

    let (code, body) = stack
        .put("pia", json!({"customerId": "c-pia", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let body = stack.wait_ready("pia", READY_DEADLINE).await;
    assert_eq!(
        body["status"]["pairing"]["controllerPaired"], true,
        "{body}"
    );
    let host = "pia.openclaws.test";

    // 1. Policy auto: devices pairing during the window are approved by the subscription, and
    // pairing costs no Fly call.
    let token = gateway_token(&stack, "pia").await;
    eventually(STEP, "a subscription", || async {
        (subscriptions(&stack, &second_api).await == 1.0).then_some(())
    })
    .await;
    let before = stack.fly_calls().await;
    let mut latencies = Vec::new();
    for _ in 0..DEVICES {
        let device = DeviceIdentity::generate();
        let asked = Instant::now();
        let options = browser(&stack, host, &token);
        // Until a connect gets in: the first leaves a request; a connect that failed under load
        // after the gateway recorded its request may be approved before the next try.
        eventually(STEP, "the device approved", || async {
            connect_browser(&options, &device).await.ok()
        })
        .await
        .close()
        .await;
        latencies.push(asked.elapsed());
    }
    let slowest = latencies.iter().max().unwrap();
    eprintln!("e2e_pairing: {DEVICES} auto approvals, slowest {slowest:?}");
    assert!(*slowest < Duration::from_secs(10), "{latencies:?}");
    assert_eq!(stack.fly_calls().await, before, "pairing called Fly");
    let holders = openclaws_store::pairing::holders(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "one replica holds it: {holders:?}");
    assert_eq!(subscriptions(&stack, &second_api).await, 1.0);

    // 2. Policy manual: a request shows in status.pairing.pending within seconds, with no
    // reconcile and no Fly call.
    let (code, body) = stack
        .patch("pia", json!({"spec": {"pairing": {"policy": "manual"}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stack
        .wait_for("pia", "the manual policy observed", STEP, |b| {
            b["status"]["observedGeneration"] == b["metadata"]["generation"]
                && b["status"]["phase"] == "Ready"
        })
        .await;
    let token = gateway_token(&stack, "pia").await;
    let (code, body) = approve(&stack, "pia", json!({"latest": true})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["reason"], "NothingPending", "{body}");
    let before = stack.fly_calls().await;
    let device = DeviceIdentity::generate();
    let options = browser(&stack, host, &token);
    let asked = Instant::now();
    let request = pending_request(&options, &device, STEP).await;
    let rid = request.request_id.clone();
    stack
        .wait_for("pia", "the pending request", Duration::from_secs(5), |b| {
            b["status"]["pairing"]["pending"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["requestId"] == rid.as_str()))
        })
        .await;
    eprintln!(
        "e2e_pairing: manual request visible after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        stack.fly_calls().await,
        before,
        "showing a request called Fly"
    );

    // 3. Specific answers: an unknown request is 404, the pending one 200 Approved at once.
    let (code, body) = approve(&stack, "pia", json!({"requestId": "no-such-request"})).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["reason"], "RequestNotFound", "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let (code, body) = approve(&stack, "pia", json!({"requestId": rid})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"]["result"], "Approved", "{body}");
    connect_browser(&options, &device)
        .await
        .expect("the approved device connects")
        .close()
        .await;

    // 4. The window ends with nothing pending: the subscription closes.
    eventually(
        Duration::from_secs(120),
        "the subscription closed",
        || async { (subscriptions(&stack, &second_api).await == 0.0).then_some(()) },
    )
    .await;
    assert!(openclaws_store::pairing::holders(&stack.db.pool)
        .await
        .unwrap()
        .is_empty());

    // 5. A stopped machine: refused at once.
    let (code, body) = stack
        .patch("pia", json!({"spec": {"runState": "stopped"}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stack
        .wait_for("pia", "Stopped", READY_DEADLINE, |b| {
            b["status"]["phase"] == "Stopped"
        })
        .await;
    let (code, body) = approve(&stack, "pia", json!({"latest": true})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["reason"], "MachineStopped", "{body}");

    second.stop().await.unwrap();
    assert_eq!(stack.delete("pia").await, StatusCode::ACCEPTED);
}
