//! Releases in black-box tests (`docs/releases.md`): create one, read it and its members, and
//! wait for a phase while watching how many members are down at once.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use crate::db::eventually;
use crate::stack::{Stack, READER, WRITER};

/// Member states that count against `maxUnavailable`.
const DOWN: [&str; 4] = ["Updating", "Failed", "RollingBack", "RollbackFailed"];

/// `POST {path}` with `body` as the writer: the status and the JSON answer.
pub async fn post(stack: &Stack, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = stack
        .http
        .post(format!("{}{path}", stack.api_url))
        .bearer_auth(WRITER)
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = resp.status();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /v1/releases/{name}` (which must exist).
pub async fn release(stack: &Stack, name: &str) -> Value {
    let resp = stack
        .http
        .get(format!("{}/v1/releases/{name}", stack.api_url))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "release {name}");
    resp.json().await.unwrap()
}

/// The release's first page of members, in order.
pub async fn members(stack: &Stack, name: &str) -> Vec<Value> {
    let body: Value = stack
        .http
        .get(format!("{}/v1/releases/{name}/members", stack.api_url))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Polls the release until its phase is `phase`: the release then, and the most members seen
/// down at once meanwhile.
pub async fn wait_phase(
    stack: &Stack,
    name: &str,
    phase: &str,
    timeout: Duration,
) -> (Value, usize) {
    let most_down = std::cell::Cell::new(0usize);
    let body = eventually(
        timeout,
        &format!("release {name} to be {phase}"),
        || async {
            let down = members(stack, name)
                .await
                .iter()
                .filter(|m| DOWN.contains(&m["state"].as_str().unwrap_or("")))
                .count();
            most_down.set(most_down.get().max(down));
            let body = release(stack, name).await;
            (body["status"]["phase"] == phase).then_some(body)
        },
    )
    .await;
    (body, most_down.get())
}
