//! Black-box plan preview: `GET /v1/instances/{name}/plan` tells what the next reconcile would do,
//! from the world the last reconcile recorded, without calling Fly or writing anything.

use openclaws_server::serve;
use openclaws_telemetry::Metrics;
use openclaws_testkit::stack::{condition, Stack, StackOptions, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the API alone (no workers) over the stack's database and settings, so nothing but the
/// API can act while a test looks.
async fn api_only(stack: &Stack) -> String {
    let state = serve::api_state(
        &stack.settings,
        stack.db.controller.clone(),
        Arc::new(Metrics::new()),
        serve::desired_inputs(&stack.settings).unwrap(),
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, openclaws_api::router(state))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

async fn plan(stack: &Stack, api: &str, name: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = stack.http.get(format!("{api}/v1/instances/{name}/plan"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

fn steps(plan: &Value) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["step"].as_str().unwrap().to_owned())
        .collect()
}

/// Fly calls so far per endpoint (the simulator's control plane left out).
async fn fly_calls(stack: &Stack) -> Value {
    let (code, mut calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    assert_eq!(code, StatusCode::OK);
    calls
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !k.contains(" /_sim"));
    calls
}

/// Everything the database holds about an instance: its row, its queue entry, its secrets and
/// its events.
async fn db_state(stack: &Stack, name: &str) -> Value {
    let row: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object(\
            'row', (SELECT to_jsonb(i) FROM instances i WHERE name = $1), \
            'work', (SELECT to_jsonb(w) FROM work w JOIN instances i ON i.uid = w.instance_uid \
                     WHERE i.name = $1), \
            'secrets', (SELECT jsonb_agg(jsonb_build_object('name', s.name, 'updated', s.updated_at) \
                        ORDER BY s.name) FROM secrets s JOIN instances i ON i.uid = s.instance_uid \
                        WHERE i.name = $1), \
            'events', (SELECT count(*) FROM events WHERE instance_name = $1))",
    )
    .bind(name)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_the_next_step_and_changes_nothing() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack
        .put("acme", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("acme", READY_TIMEOUT).await;
    let machine = ready["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, converged) = plan(&stack, &stack.api_url, "acme", Some(READER)).await;
    assert_eq!(code, StatusCode::OK, "{converged}");
    assert_eq!(converged["converged"], true, "{converged}");
    assert_eq!(converged["actions"], json!([]));
    assert_eq!(converged["paused"], false);
    assert_eq!(converged["notes"], json!([]), "{converged}");
    assert!(converged["observedAt"].is_string(), "{converged}");
    assert_eq!(
        plan(&stack, &stack.api_url, "acme", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (code, missing) = plan(&stack, &stack.api_url, "nobody", Some(READER)).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["error"]["code"], "not_found");
    let (code, _) = plan(&stack, &stack.api_url, "Not_A_Name", Some(READER)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let token: Value = stack
        .http
        .get(format!("{}/v1/instances/acme/gateway-token", stack.api_url))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // Only the API from here on: the spec changes, nobody reconciles.
    stack.stop_controller().await;
    let api = api_only(&stack).await;
    let patched = stack
        .http
        .patch(format!("{api}/v1/instances/acme"))
        .bearer_auth(WRITER)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"guest": {"memoryMb": 4096}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);

    let calls_before = fly_calls(&stack).await;
    let db_before = db_state(&stack, "acme").await;
    for _ in 0..3 {
        let (code, preview) = plan(&stack, &api, "acme", Some(READER)).await;
        assert_eq!(code, StatusCode::OK, "{preview}");
        assert_eq!(steps(&preview), ["UpdateMachine"], "{preview}");
        assert!(
            preview["actions"][0]["description"]
                .as_str()
                .unwrap()
                .contains(&machine),
            "{preview}"
        );
        assert_eq!(preview["converged"], false);
        assert_eq!(preview["generation"], 2);
        assert!(preview["observedAt"].is_string(), "{preview}");
        assert!(!preview.to_string().contains(&token), "a secret leaked");
    }
    assert_eq!(
        fly_calls(&stack).await,
        calls_before,
        "the preview called Fly"
    );
    assert_eq!(
        db_state(&stack, "acme").await,
        db_before,
        "the preview wrote to the database"
    );

    // The reconcile then does what the preview said, and the plan converges again.
    stack.start_controller().await;
    stack.wait_ready("acme", READY_TIMEOUT).await;
    let (_, after) = plan(&stack, &stack.api_url, "acme", Some(READER)).await;
    assert_eq!(after["converged"], true, "{after}");
    let events = stack.events("acme").await;
    let done: Vec<&str> = events
        .iter()
        .filter(|e| e["generation"] == 2 && e["type"] == "Normal")
        .filter_map(|e| e["reason"].as_str())
        .filter(|r| !r.starts_with("Phase") && !r.starts_with("Spec"))
        .collect();
    assert_eq!(done, ["UpdateMachine"], "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_is_planned_from_an_empty_world_without_creating_tokens() {
    let stack = Stack::start_without_controller(StackOptions {
        llm_proxy: true,
        ..StackOptions::default()
    })
    .await;
    let api = api_only(&stack).await;
    let put = stack
        .http
        .put(format!("{api}/v1/instances/fresh"))
        .bearer_auth(WRITER)
        .json(&json!({"spec": {"customerId": "c", "region": "iad"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let (code, preview) = plan(&stack, &api, "fresh", Some(READER)).await;
    assert_eq!(code, StatusCode::OK, "{preview}");
    assert_eq!(steps(&preview), ["CreateApp"], "{preview}");
    assert!(preview.get("observedAt").is_none(), "{preview}");
    let notes = preview["notes"].to_string();
    for expected in [
        "no reconcile has recorded",
        "no gateway token",
        "LLM proxy token",
    ] {
        assert!(notes.contains(expected), "{expected}: {notes}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the preview generated or minted a token");

    let deleted = stack
        .http
        .delete(format!("{api}/v1/instances/fresh"))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let (_, teardown) = plan(&stack, &api, "fresh", Some(READER)).await;
    assert_eq!(teardown["deleting"], true, "{teardown}");
    assert!(
        teardown["notes"]
            .to_string()
            .contains("teardown is complete"),
        "{teardown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_shows_what_would_happen_and_says_it_is_paused() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .put("held", json!({"customerId": "c", "region": "iad"}))
        .await;
    stack.wait_ready("held", READY_TIMEOUT).await;
    stack.patch("held", json!({"spec": {"paused": true}})).await;
    stack
        .wait_for("held", "the Paused condition", READY_TIMEOUT, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
    let (_, body) = stack
        .patch("held", json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    let generation = body["metadata"]["generation"].clone();
    let (code, preview) = plan(&stack, &stack.api_url, "held", Some(READER)).await;
    assert_eq!(code, StatusCode::OK, "{preview}");
    assert_eq!(preview["paused"], true, "{preview}");
    assert_eq!(preview["generation"], generation);
    assert_eq!(steps(&preview), ["UpdateMachine"], "{preview}");
    assert!(
        preview["notes"].to_string().contains("spec.paused is true"),
        "{preview}"
    );
}

/// The stored snapshot, its digest and when it was taken; the TOAST area's size of `instances`.
async fn stored_snapshot(stack: &Stack, name: &str) -> (Option<String>, String, i64) {
    let (digest, at): (Option<String>, String) =
        sqlx::query_as("SELECT observed_digest, observed_at::text FROM instances WHERE name = $1")
            .bind(name)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    let toast: i64 = sqlx::query_scalar(
        "SELECT pg_total_relation_size(reltoastrelid) FROM pg_class \
         WHERE relname = 'instances' AND relkind = 'r'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    (digest, at, toast)
}

#[tokio::test]
async fn a_look_that_finds_nothing_new_keeps_the_stored_snapshot() {
    let stack = Stack::start(StackOptions {
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    stack
        .put("steady", json!({"customerId": "c", "region": "iad"}))
        .await;
    stack.wait_ready("steady", READY_TIMEOUT).await;
    // Provisioning's last echoes (the machine settling) may still change the world once.
    let mut last = stored_snapshot(&stack, "steady").await;
    let mut kept = 0;
    for _ in 0..6 {
        stack.reconcile_now("steady").await;
        let next = openclaws_testkit::db::eventually(READY_TIMEOUT, "another look", || async {
            let now = stored_snapshot(&stack, "steady").await;
            (now.1 != last.1).then_some(now)
        })
        .await;
        assert!(next.0.is_some(), "a digest is stored with the snapshot");
        if next.0 == last.0 {
            assert_eq!(next.2, last.2, "an unchanged world wrote no new TOAST data");
            kept += 1;
        }
        last = next;
    }
    assert!(
        kept >= 4,
        "only {kept} of 6 looks found the world unchanged"
    );
    let (code, plan) = plan(&stack, &stack.api_url, "steady", Some(READER)).await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    assert_eq!(plan["converged"], true, "{plan}");
    assert_eq!(
        plan["observedAt"].as_str().map(|s| !s.is_empty()),
        Some(true)
    );
}
