//! Webhooks end to end (`docs/webhooks.md`): a test receiver registered through the API gets an
//! instance's changes as signed POSTs, in resource-version order, retried while it fails and
//! across a controller restart, filtered by event type and label selector, given up on after
//! the retry window (and counted), never carrying a secret; also through a transaction-mode
//! PgBouncer. Signatures are checked by [`verify`], written from the Standard Webhooks
//! specification rather than with the controller's signer.

use base64::Engine;
use hmac::{Hmac, Mac};
use openclaws_testkit::db::eventually;
use openclaws_testkit::process::{free_port, spawn_controller_logging_with, wait_api};
use openclaws_testkit::stack::{Stack, StackOptions, READER, WRITER};
use openclaws_testkit::webhooks::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CONVERGE: Duration = Duration::from_secs(60);

/// Registers `url` for `types` (and `selector`); returns the webhook's id and secret.
pub async fn register(
    stack: &Stack,
    url: &str,
    types: &[&str],
    selector: &str,
) -> (String, String) {
    let resp = stack
        .http
        .post(format!("{}/v1/webhooks", stack.api_url))
        .bearer_auth(WRITER)
        .json(&json!({"url": url, "eventTypes": types, "labelSelector": selector}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    (id, body["secret"].as_str().unwrap().to_owned())
}

/// `GET /v1/webhooks/{id}/deliveries` items (newest first) and the raw text.
async fn deliveries(stack: &Stack, id: &str) -> (Vec<Value>, String) {
    let text = stack
        .http
        .get(format!("{}/v1/webhooks/{id}/deliveries", stack.api_url))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (body["items"].as_array().cloned().unwrap_or_default(), text)
}

/// Whether `received` is signed with `secret` as the Standard Webhooks specification says:
/// the key is the base64 after `whsec_`; the signed content is `{id}.{timestamp}.{body}`; the
/// header lists space-separated `v1,<base64 HMAC-SHA256>` signatures; the timestamp is within
/// five minutes; the comparison takes constant time.
pub fn verify(secret: &str, received: &Received) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
    else {
        return false;
    };
    let Ok(timestamp) = received.header("webhook-timestamp").parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(timestamp) > 300 {
        return false;
    }
    let mut content = format!("{}.{timestamp}.", received.header("webhook-id")).into_bytes();
    content.extend_from_slice(&received.body);
    received
        .header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .any(|expected| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(&content);
            mac.verify_slice(&expected).is_ok()
        })
}

/// The 2xx-answered requests, the first of each `webhook-id` only (later ones are
/// at-least-once repeats).
fn first_deliveries(receiver: &Receiver) -> Vec<Received> {
    let mut seen = HashSet::new();
    receiver
        .delivered()
        .into_iter()
        .filter(|r| seen.insert(r.header("webhook-id").to_owned()))
        .collect()
}

fn version(r: &Received) -> u64 {
    r.json()["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every request verifies; per instance, first deliveries come in strictly increasing
/// resource-version order.
fn assert_signed_and_ordered(receiver: &Receiver, secret: &str) {
    for r in receiver.received() {
        assert!(verify(secret, &r), "a bad signature on {:?}", r.headers);
        assert_eq!(r.header("content-type"), "application/json");
    }
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    for r in first_deliveries(receiver) {
        let uid = r.json()["data"]["object"]["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned();
        let v = version(&r);
        let before = last.insert(uid, v).unwrap_or(0);
        assert!(v > before, "delivery of version {v} after {before}");
    }
}

/// Prints percentiles of the time from each change's commit (`createdAt`) to its first 2xx.
pub fn print_latency(label: &str, delivered: &[Received]) {
    let mut ms: Vec<f64> = delivered
        .iter()
        .map(|r| {
            let created = r.json()["createdAt"].as_str().unwrap().to_owned();
            let created = chrono::DateTime::parse_from_rfc3339(&created).unwrap();
            let at = chrono::DateTime::<chrono::Utc>::from(r.at);
            (at - created.with_timezone(&chrono::Utc))
                .num_microseconds()
                .unwrap() as f64
                / 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label}: {} deliveries, commit→2xx p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_changes_arrive_signed_and_in_order() {
    phase_changes_arrive_signed_and_in_order_on(&Stack::start(StackOptions::default()).await).await;
}

/// The scenario of [`phase_changes_arrive_signed_and_in_order`] on `stack` (also run through a
/// transaction pooler).
pub async fn phase_changes_arrive_signed_and_in_order_on(stack: &Stack) {
    let receiver = Receiver::start().await;
    let types = ["instance.created", "instance.phase_changed"];
    let (id, secret) = register(stack, &receiver.url, &types, "").await;
    let (code, body) = stack
        .put("hooked", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let ready = stack.wait_ready("hooked", CONVERGE).await;
    let uid = ready["metadata"]["uid"].clone();
    eventually(
        CONVERGE,
        "the Ready phase change to be delivered",
        || async {
            first_deliveries(&receiver)
                .iter()
                .any(|r| r.json()["data"]["object"]["status"]["phase"] == "Ready")
                .then_some(())
        },
    )
    .await;
    assert_signed_and_ordered(&receiver, &secret);
    let delivered = first_deliveries(&receiver);
    let first = delivered[0].json();
    assert_eq!(first["type"], "instance.created", "{first}");
    assert_eq!(first["id"], delivered[0].header("webhook-id"));
    let mut phases = Vec::new();
    for r in &delivered {
        let body = r.json();
        let object = &body["data"]["object"];
        assert_eq!(object["metadata"]["uid"], uid);
        assert_eq!(
            object["metadata"]["resourceVersion"],
            body["resourceVersion"]
        );
        assert_eq!(object["kind"], "OpenClawInstance");
        let types: Vec<&str> = body["types"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let subscribed = ["instance.created", "instance.phase_changed"];
        assert!(types.iter().all(|t| subscribed.contains(t)), "{types:?}");
        phases.push(object["status"]["phase"].as_str().unwrap_or("").to_owned());
    }
    assert!(
        phases.windows(2).all(|w| w[0] != w[1]),
        "each delivery is a phase change: {phases:?}"
    );
    assert_eq!(
        phases.last().map(String::as_str),
        Some("Ready"),
        "{phases:?}"
    );
    let (rows, _) = deliveries(stack, &id).await;
    assert!(
        rows.iter()
            .any(|d| d["state"] == "delivered" && d["attempts"] == 1),
        "{rows:?}"
    );
    print_latency("phase changes", &delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_changes_through_a_transaction_pooler() {
    let stack = Stack::start(StackOptions {
        pooler: true,
        ..StackOptions::default()
    })
    .await;
    phase_changes_arrive_signed_and_in_order_on(&stack).await;
}

/// Environment of a controller process with fast webhook retries.
const FAST_RETRIES: [(&str, &str); 4] = [
    ("OPENCLAWS_WEBHOOK_RETRY_BASE_SECONDS", "0.2"),
    ("OPENCLAWS_WEBHOOK_POLL_SECONDS", "0.1"),
    ("OPENCLAWS_WEBHOOK_TIMEOUT_SECONDS", "2"),
    ("OPENCLAWS_WEBHOOK_RETRY_FOR_SECONDS", "600"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_across_a_controller_restart() {
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let logs = std::env::temp_dir().join(format!("openclaws-hooks-{}", uuid::Uuid::new_v4()));
    let first_log = logs.with_extension("1.log");
    let mut first = spawn_controller_logging_with(&stack, port, &first_log, &FAST_RETRIES);
    wait_api(&stack.http, &stack.api_url).await;
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let types = [
        "instance.created",
        "instance.phase_changed",
        "instance.conditions_changed",
    ];
    let (id, secret) = register(&stack, &receiver.url, &types, "").await;
    let (code, body) = stack
        .put("restarted", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready("restarted", CONVERGE).await;
    eventually(
        CONVERGE,
        "a delivery to be retried while the receiver is down",
        || async {
            let (rows, _) = deliveries(&stack, &id).await;
            rows.iter()
                .any(|d| d["attempts"].as_i64() >= Some(2))
                .then_some(())
        },
    )
    .await;

    // Killed (no graceful stop) while rows are pending; the receiver comes back; another
    // controller takes over the outbox.
    first.kill().unwrap();
    first.wait().unwrap();
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM webhook_deliveries")
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
    assert!(states.iter().all(|s| s == "pending"), "{states:?}");
    receiver.set_down(false);
    let second_log = logs.with_extension("2.log");
    let _second = spawn_controller_logging_with(&stack, port, &second_log, &FAST_RETRIES);
    wait_api(&stack.http, &stack.api_url).await;
    let rows = eventually(CONVERGE, "every delivery to be delivered", || async {
        let (rows, _) = deliveries(&stack, &id).await;
        rows.iter()
            .all(|d| d["state"] == "delivered")
            .then_some(rows)
    })
    .await;

    assert_signed_and_ordered(&receiver, &secret);
    let delivered: HashSet<String> = first_deliveries(&receiver)
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    for row in &rows {
        assert!(
            delivered.contains(row["id"].as_str().unwrap()),
            "lost: {row}"
        );
    }
    assert_eq!(
        delivered.len(),
        rows.len(),
        "no delivery the outbox does not hold"
    );
    let failed_then_delivered = receiver
        .received()
        .iter()
        .filter(|r| r.answered == 503)
        .any(|r| delivered.contains(r.header("webhook-id")));
    assert!(
        failed_then_delivered,
        "a refused delivery was sent again with the same webhook-id"
    );
    let _ = std::fs::remove_file(first_log);
    let _ = std::fs::remove_file(second_log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_in_a_delivery_the_api_or_the_logs() {
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("openclaws-hooks-{}.log", uuid::Uuid::new_v4()));
    let _controller = spawn_controller_logging_with(&stack, port, &log, &FAST_RETRIES);
    wait_api(&stack.http, &stack.api_url).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(2);
    let all = [
        "instance.created",
        "instance.phase_changed",
        "instance.conditions_changed",
        "instance.pairing_requested",
        "instance.deleted",
    ];
    let (id, secret) = register(&stack, &receiver.url, &all, "").await;
    let canary = format!("sk-ant-CANARY-{}", uuid::Uuid::new_v4().simple());
    let spec =
        json!({"customerId": "c", "region": "iad", "providerKeys": {"anthropicApiKey": canary}});
    let (code, body) = stack.put("canary", spec).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready("canary", CONVERGE).await;
    let token: Value = stack
        .http
        .get(format!(
            "{}/v1/instances/canary/gateway-token",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("a gateway token").to_owned();
    // Another change after the token exists, so a delivery is rendered with it stored.
    let (code, _) = stack
        .patch("canary", json!({"spec": {"runState": "stopped"}}))
        .await;
    assert_eq!(code, StatusCode::OK);
    eventually(CONVERGE, "the stop to be delivered", || async {
        first_deliveries(&receiver)
            .iter()
            .any(|r| r.json()["data"]["object"]["status"]["phase"] == "Stopped")
            .then_some(())
    })
    .await;
    // The teardown's end is delivered too, with the object as it was last.
    assert_eq!(stack.delete("canary").await, StatusCode::ACCEPTED);
    let deleted = eventually(CONVERGE, "the deletion to be delivered", || async {
        first_deliveries(&receiver)
            .into_iter()
            .find(|r| r.json()["type"] == "instance.deleted")
    })
    .await;
    assert_eq!(
        deleted.json()["data"]["object"]["metadata"]["name"],
        "canary"
    );
    assert_signed_and_ordered(&receiver, &secret);
    let (_, listed) = deliveries(&stack, &id).await;
    let mut seen = vec![("the deliveries API".to_owned(), listed)];
    for r in receiver.received() {
        let headers = format!("{:?}", r.headers);
        seen.push((format!("delivery {}", r.header("webhook-id")), headers));
        seen.push((
            "a delivery body".to_owned(),
            String::from_utf8_lossy(&r.body).into_owned(),
        ));
    }
    seen.push(("the log".to_owned(), std::fs::read_to_string(&log).unwrap()));
    let secret_key = secret.trim_start_matches("whsec_").to_owned();
    for (place, text) in &seen {
        for value in [&canary, &token, &secret, &secret_key] {
            assert!(!text.contains(value.as_str()), "a secret value in {place}");
        }
    }
    let _ = std::fs::remove_file(log);
}

/// Creates `name` with `labels`.
async fn create_labelled(stack: &Stack, name: &str, labels: Value) {
    let resp = stack
        .http
        .put(format!("{}/v1/instances/{name}", stack.api_url))
        .bearer_auth(WRITER)
        .json(
            &json!({"metadata": {"labels": labels}, "spec": {"customerId": "c", "region": "iad"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_and_event_types_exclude_instances() {
    let stack = Stack::start(StackOptions::default()).await;
    let pro = Receiver::start().await;
    let deletions = Receiver::start().await;
    let (pro_id, _) = register(
        &stack,
        &pro.url,
        &["instance.created", "instance.phase_changed"],
        "tier=pro",
    )
    .await;
    register(&stack, &deletions.url, &["instance.deleted"], "").await;
    create_labelled(&stack, "free", json!({"tier": "free"})).await;
    create_labelled(&stack, "paying", json!({"tier": "pro"})).await;
    stack.wait_ready("free", CONVERGE).await;
    stack.wait_ready("paying", CONVERGE).await;
    let rows = eventually(
        CONVERGE,
        "every delivery to the pro endpoint to settle",
        || async {
            let (rows, _) = deliveries(&stack, &pro_id).await;
            let ready = rows
                .iter()
                .any(|d| d["instanceName"] == "paying" && d["state"] == "delivered");
            (ready && rows.iter().all(|d| d["state"] != "pending")).then_some(rows)
        },
    )
    .await;
    for row in &rows {
        let expected = if row["instanceName"] == "free" {
            "skipped"
        } else {
            "delivered"
        };
        assert_eq!(row["state"], expected, "{row}");
    }
    let names: HashSet<String> = pro
        .received()
        .iter()
        .map(|r| {
            r.json()["data"]["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, HashSet::from(["paying".to_owned()]));
    assert!(deletions.received().is_empty(), "no instance was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_always_fails_ends_failed_and_counted() {
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    stack.settings.webhooks.webhook_retry_for_seconds = 3.0;
    stack.settings.webhooks.webhook_retry_base_seconds = 0.2;
    stack.settings.webhooks.webhook_poll_seconds = 0.1;
    stack.start_controller().await;
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let (id, _) = register(&stack, &receiver.url, &["instance.created"], "").await;
    let (code, _) = stack
        .put("doomed", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let rows = eventually(
        Duration::from_secs(30),
        "the delivery to be given up on",
        || async {
            let (rows, _) = deliveries(&stack, &id).await;
            rows.iter().any(|d| d["state"] == "failed").then_some(rows)
        },
    )
    .await;
    let failed = &rows[0];
    assert!(failed["attempts"].as_i64() >= Some(2), "{failed}");
    assert_eq!(failed["lastStatus"], 503, "{failed}");
    assert!(failed["nextAttemptAt"].is_null(), "{failed}");
    assert!(receiver.received().len() >= 2);
    assert!(
        stack
            .metric("openclaws_webhook_deliveries_total", "result=\"failed\"")
            .await
            >= 1.0
    );
    assert!(
        stack
            .metric("openclaws_webhook_deliveries_total", "result=\"retried\"")
            .await
            >= 1.0
    );
    eventually(
        Duration::from_secs(15),
        "the failed gauge to count it",
        || async {
            (stack.metric("openclaws_webhook_outbox_failed", "").await >= 1.0).then_some(())
        },
    )
    .await;
    let listed: Value = stack
        .http
        .get(format!("{}/v1/webhooks/{id}", stack.api_url))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["failed"], 1, "{listed}");
    assert_eq!(listed["pending"], 0, "{listed}");

    // Back up: a manual retry of the failed delivery gets it through.
    receiver.set_down(false);
    let delivery = failed["id"].as_str().unwrap();
    assert_eq!(
        retry_delivery(&stack, &id, delivery).await,
        StatusCode::ACCEPTED
    );
    eventually(
        Duration::from_secs(30),
        "the retried delivery to arrive",
        || async {
            let (rows, _) = deliveries(&stack, &id).await;
            rows.iter()
                .any(|d| d["id"] == delivery && d["state"] == "delivered")
                .then_some(())
        },
    )
    .await;
    assert!(receiver
        .delivered()
        .iter()
        .any(|r| r.header("webhook-id") == delivery));
    let again = retry_delivery(&stack, &id, delivery).await;
    assert_eq!(
        again,
        StatusCode::CONFLICT,
        "only a failed delivery is retried"
    );
}

/// Throughput and latency with many instances changing at once: changes written straight to
/// the table (no reconciles), each a phase change for the endpoint. Prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_throughput_and_latency() {
    let stack = Stack::start(StackOptions::default()).await;
    let (code, _) = stack
        .put("seed", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let receiver = Receiver::start().await;
    let (_, secret) = register(&stack, &receiver.url, &["instance.phase_changed"], "").await;
    let started = std::time::Instant::now();
    bulk_phase_changes(&stack).await;
    let expected = 500;
    eventually(
        Duration::from_secs(120),
        "every bulk change to be delivered",
        || async {
            let bulk = first_deliveries(&receiver)
                .into_iter()
                .filter(|r| {
                    r.json()["data"]["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("bulk-")
                })
                .count();
            (bulk >= expected).then_some(())
        },
    )
    .await;
    let elapsed = started.elapsed();
    assert_signed_and_ordered(&receiver, &secret);
    let delivered: Vec<Received> = first_deliveries(&receiver)
        .into_iter()
        .filter(|r| {
            r.json()["data"]["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("bulk-")
        })
        .collect();
    println!(
        "throughput: {} deliveries in {:.2} s = {:.0}/s (16 in flight, one replica)",
        delivered.len(),
        elapsed.as_secs_f64(),
        delivered.len() as f64 / elapsed.as_secs_f64()
    );
    print_latency("bulk phase changes", &delivered);
}

/// Writes 100 instances straight to the table (no work rows, so no reconciles) as copies of
/// `seed`, then moves each through five phases: 500 phase changes.
async fn bulk_phase_changes(stack: &Stack) {
    let pool = &stack.db.pool;
    sqlx::query(
        "INSERT INTO instances (uid, name, customer_id, spec) \
         SELECT gen_random_uuid(), 'bulk-' || i, customer_id, spec \
         FROM instances, generate_series(1, 100) i WHERE name = 'seed'",
    )
    .execute(pool)
    .await
    .unwrap();
    for phase in ["Provisioning", "Ready", "Degraded", "Ready", "Stopped"] {
        sqlx::query(
            "UPDATE instances SET phase = $1, \
             status = jsonb_set(status, '{phase}', to_jsonb($1::text)) WHERE name LIKE 'bulk-%'",
        )
        .bind(phase)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_outbox_without_duplicates_or_reordering() {
    let stack = Stack::start(StackOptions::default()).await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("openclaws-hooks-{}.log", uuid::Uuid::new_v4()));
    let _other = spawn_controller_logging_with(&stack, port, &log, &[]);
    wait_api(&stack.http, &format!("http://127.0.0.1:{port}")).await;
    let (code, _) = stack
        .put("seed", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    // Settled first, so every delivery counted below is of a bulk change (two replicas and
    // the rest of the suite share the machine: more time than one stack alone needs).
    stack.wait_ready("seed", Duration::from_secs(180)).await;
    let receiver = Receiver::start().await;
    let (_, secret) = register(&stack, &receiver.url, &["instance.phase_changed"], "").await;
    bulk_phase_changes(&stack).await;
    let bulk = |r: &Received| {
        let body = r.json();
        let name = body["data"]["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        name.starts_with("bulk-")
    };
    eventually(
        Duration::from_secs(120),
        "every bulk change to be delivered",
        || async {
            (first_deliveries(&receiver)
                .iter()
                .filter(|r| bulk(r))
                .count()
                >= 500)
                .then_some(())
        },
    )
    .await;
    assert_signed_and_ordered(&receiver, &secret);
    let all = receiver.received();
    let sent = all.iter().filter(|r| bulk(r)).count();
    assert_eq!(sent, 500, "no change was sent twice");
    let here = stack
        .metric("openclaws_webhook_deliveries_total", "result=\"delivered\"")
        .await;
    println!("two replicas: the in-process one delivered {here} of {sent}");
    assert!(
        here > 0.0 && here < sent as f64,
        "both replicas delivered: {here}"
    );
    let _ = std::fs::remove_file(log);
}

/// Asks for a failed delivery to be sent again; the answer's status.
async fn retry_delivery(stack: &Stack, id: &str, delivery: &str) -> StatusCode {
    stack
        .http
        .post(format!(
            "{}/v1/webhooks/{id}/deliveries/{delivery}/retry",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .status()
}
