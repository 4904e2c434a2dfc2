//! App secrets end to end: the gateway token and the customer's model key reach the Fly app as
//! secrets before the machine boots; a secret removed out of band is restored; a rotated key rolls
//! the machine; and the key's canary value never appears in the API, events, status, metrics or
//! the controller's own logs (debug level). Those logs are JSON lines where an API request's
//! lines carry its `x-request-id` and a reconcile's lines carry the instance.

use openclaws_testkit::db::eventually;
use openclaws_testkit::process::{free_port, spawn_controller_logging_with, wait_api};
use openclaws_testkit::stack::{Stack, StackOptions, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);

fn condition(body: &Value, type_: &str) -> Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or(Value::Null)
}

async fn fly_secrets(stack: &Stack, app: &str) -> Value {
    let (code, body) = stack
        .fly(
            Method::GET,
            &format!("/v1/apps/{app}/secrets?show_secrets=true"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

fn secret_value(secrets: &Value, name: &str) -> Option<String> {
    secrets["secrets"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["value"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_app_are_repaired_rotated_and_never_leak() {
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("openclaws-secrets-{}.log", uuid::Uuid::new_v4()));
    let composio = format!("ak_COMPOSIO-CANARY-{}", uuid::Uuid::new_v4().simple());
    let mut child = spawn_controller_logging_with(
        &stack,
        port,
        &log,
        &[("OPENCLAWS_COMPOSIO_API_KEY", composio.as_str())],
    );
    wait_api(&stack.http, &stack.api_url).await;

    let canary = format!("sk-ant-CANARY-{}", uuid::Uuid::new_v4().simple());
    let (code, body) = stack
        .put(
            "keyed",
            json!({"customerId": "c", "region": "iad", "providerKeys": {"anthropicApiKey": canary},
                   "composio": {"enabled": true}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let ready = stack.wait_ready("keyed", CONVERGE).await;
    assert_eq!(
        condition(&ready, "SecretsReady")["status"],
        "True",
        "{ready}"
    );
    let uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();

    // A request with the caller's id: echoed, and on every log line of that request (below).
    let request_id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let resp = stack
        .http
        .get(format!("{}/v1/instances/keyed", stack.api_url))
        .bearer_auth(READER)
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id.as_str())
    );

    // The app holds the key and a generated gateway token; the machine booted with them.
    let secrets = fly_secrets(&stack, "oc-keyed").await;
    assert_eq!(
        secret_value(&secrets, "ANTHROPIC_API_KEY").as_deref(),
        Some(canary.as_str())
    );
    let token = secret_value(&secrets, "OPENCLAW_GATEWAY_TOKEN").expect("a gateway token");
    // Composio: the platform key and the customer's entity id (the customer id by default).
    assert_eq!(
        secret_value(&secrets, "COMPOSIO_API_KEY").as_deref(),
        Some(composio.as_str())
    );
    assert_eq!(
        secret_value(&secrets, "COMPOSIO_ENTITY_ID").as_deref(),
        Some("c")
    );
    assert!(token.len() >= 40, "a strong token");
    let state = stack.sim_state().await;
    let machine = state["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["app_name"] == "oc-keyed" && m["state"] == "started")
        .cloned()
        .expect("a started machine");
    assert!(machine["secrets_version"].as_u64() >= Some(1), "{machine}");

    // Removed out of band → restored on the next visit.
    let (code, _) = stack
        .fly(
            Method::DELETE,
            "/v1/apps/oc-keyed/secrets/ANTHROPIC_API_KEY",
            None,
        )
        .await;
    assert!(code.is_success());
    stack.reconcile_now("keyed").await;
    eventually(CONVERGE, "the key to be set again", || async {
        let s = fly_secrets(&stack, "oc-keyed").await;
        (secret_value(&s, "ANTHROPIC_API_KEY").as_deref() == Some(canary.as_str())).then_some(())
    })
    .await;

    // Rotation: a new value reaches the app and rolls the machine onto it.
    let before = stack.fly_machines("oc-keyed").await[0]["instance_id"].clone();
    let rotated = format!("sk-ant-ROTATED-{}", uuid::Uuid::new_v4().simple());
    let (code, body) = stack
        .patch(
            "keyed",
            json!({"spec": {"providerKeys": {"anthropicApiKey": rotated}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stack.wait_ready("keyed", CONVERGE).await;
    let s = fly_secrets(&stack, "oc-keyed").await;
    assert_eq!(
        secret_value(&s, "ANTHROPIC_API_KEY").as_deref(),
        Some(rotated.as_str())
    );
    assert_eq!(
        secret_value(&s, "OPENCLAW_GATEWAY_TOKEN").as_deref(),
        Some(token.as_str()),
        "the gateway token is stable"
    );
    let machines = stack.fly_machines("oc-keyed").await;
    assert_eq!(machines.len(), 1);
    assert_ne!(
        machines[0]["instance_id"], before,
        "the machine restarted with the new key"
    );

    // Removing the key, and turning Composio off, unsets them at Fly.
    stack
        .patch(
            "keyed",
            json!({"spec": {"providerKeys": {"anthropicApiKey": null},
                            "composio": {"enabled": false}}}),
        )
        .await;
    stack.wait_ready("keyed", CONVERGE).await;
    let s = fly_secrets(&stack, "oc-keyed").await;
    assert_eq!(secret_value(&s, "ANTHROPIC_API_KEY"), None);
    assert_eq!(secret_value(&s, "COMPOSIO_API_KEY"), None);
    assert_eq!(secret_value(&s, "COMPOSIO_ENTITY_ID"), None);

    // The canaries appear nowhere we print or serve.
    let mut seen = Vec::new();
    let (_, instance) = stack.get("keyed").await;
    seen.push(instance.to_string());
    seen.push(Value::Array(stack.events("keyed").await).to_string());
    seen.push(
        stack
            .http
            .get(format!("{}/metrics", stack.api_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    seen.push(
        stack
            .http
            .get(format!("{}/v1/instances?limit=10", stack.api_url))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let row: String =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM instances i WHERE name = 'keyed'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    seen.push(row);
    let events: String =
        sqlx::query_scalar("SELECT COALESCE(string_agg(message, ' '), '') FROM events")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    seen.push(events);
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logs.contains("controller started"), "logs were captured");
    assert_log_lines_carry_context(&logs, &request_id, &uid);
    seen.push(logs);
    for text in &seen {
        for secret in [&canary, &rotated, &token, &composio] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {}",
                &text[..text.len().min(300)]
            );
        }
    }
}

/// The spans a JSON log line was emitted in (innermost last).
fn spans_of(line: &Value) -> Vec<&Value> {
    line["spans"]
        .as_array()
        .map(|spans| spans.iter().collect())
        .unwrap_or_default()
}

/// Every line is a JSON object; the request's lines carry its id (and there is at least the
/// response line); reconcile lines carry the instance name, uid and generation.
fn assert_log_lines_carry_context(logs: &str, request_id: &str, uid: &str) {
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("not a JSON log line: {l}"))
        })
        .collect();

    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            spans_of(l)
                .iter()
                .any(|s| s["name"] == "request" && s["request_id"] == request_id)
        })
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["message"] == "finished processing request" && l["status"] == 200),
        "the request's response line carries its id: {of_request:?}"
    );
    assert!(
        of_request
            .iter()
            .all(|l| l["span"]["request_id"] == request_id),
        "the innermost span of a request's lines names the request"
    );

    let in_reconcile: Vec<&Value> = lines
        .iter()
        .filter_map(|l| {
            spans_of(l)
                .into_iter()
                .find(|s| s["name"] == "reconcile" && s["uid"] == uid)
        })
        .collect();
    assert!(
        in_reconcile.len() >= 5,
        "reconciles of the instance logged: {}",
        in_reconcile.len()
    );
    for span in &in_reconcile {
        assert!(
            span["instance"] == "keyed" && span["generation"].as_i64() >= Some(1),
            "a line inside a reconcile without the instance name and generation: {span}"
        );
    }
    assert!(
        lines.iter().any(|l| l["message"] == "reconcile finished"
            && l["span"]["uid"] == uid
            && l["span"]["instance"] == "keyed"),
        "each reconcile's closing line names the instance"
    );
}

async fn gateway_token(stack: &Stack, name: &str, bearer: &str) -> (StatusCode, Value, String) {
    let resp = stack
        .http
        .get(format!(
            "{}/v1/instances/{name}/gateway-token",
            stack.api_url
        ))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let code = resp.status();
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (code, resp.json().await.unwrap_or(Value::Null), cache)
}

#[tokio::test]
async fn the_dashboard_reads_the_gateway_token_and_rotates_it_through_the_spec() {
    let stack = Stack::start(StackOptions::default()).await;
    let (code, body) = stack
        .put("tokened", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready("tokened", CONVERGE).await;

    // Readers may not see it; unknown instances are 404.
    let (code, body, _) = gateway_token(&stack, "tokened", READER).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, _, _) = gateway_token(&stack, "nobody", WRITER).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // The writer gets exactly what the app holds, uncached, and the read is on record.
    let (code, body, cache) = gateway_token(&stack, "tokened", WRITER).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(cache, "no-store");
    let token = body["token"].as_str().unwrap().to_owned();
    let secrets = fly_secrets(&stack, "oc-tokened").await;
    assert_eq!(
        secret_value(&secrets, "OPENCLAW_GATEWAY_TOKEN").as_deref(),
        Some(token.as_str())
    );
    let events = stack.events("tokened").await;
    assert!(
        events.iter().any(|e| e["reason"] == "GatewayTokenRead"),
        "{events:?}"
    );
    assert!(!Value::Array(events).to_string().contains(&token));

    // Rotation: a new token, set at Fly, served to the dashboard; generated once.
    let (code, body) = stack
        .patch("tokened", json!({"spec": {"gatewayTokenRotation": 1}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    stack.wait_ready("tokened", CONVERGE).await;
    let (_, body, _) = gateway_token(&stack, "tokened", WRITER).await;
    let rotated = body["token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, token);
    let secrets = fly_secrets(&stack, "oc-tokened").await;
    assert_eq!(
        secret_value(&secrets, "OPENCLAW_GATEWAY_TOKEN").as_deref(),
        Some(rotated.as_str())
    );
    stack.reconcile_now("tokened").await;
    stack.wait_ready("tokened", CONVERGE).await;
    let (_, body, _) = gateway_token(&stack, "tokened", WRITER).await;
    assert_eq!(
        body["token"],
        rotated.as_str(),
        "rotated once, not on every visit"
    );
}
