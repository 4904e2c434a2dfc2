//! A fake Composio platform API for tests, answering as Composio's published OpenAPI document
//! says (the part the `composio-exec` bridge uses is vendored in
//! `crates/testkit/data/composio-openapi-tools.json`, with its source and date, and this module's
//! tests check the fake against it so the two cannot drift apart):
//!
//! - `POST /api/v3/tools/execute/{tool_slug}` with `x-api-key`: body `user_id`, `version`
//!   (omitted = Composio's pinned base version `00000000_00`), `arguments` or `text` (not both);
//!   200 `{data, error, successful, log_id}` (a tool that fails answers 200 with
//!   `successful: false`); 400 / 401 / 404 in the `Error` shape
//!   `{"error": {message, code, slug, status, request_id}}`;
//! - `GET /api/v3/tools?toolkit_slug=…&toolkit_versions[…]=…`: the tools of a toolkit.
//!
//! Every execution is recorded for the test to read and await.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The vendored part of Composio's OpenAPI document (tool execution and listing).
pub const OPENAPI_EXTRACT: &str = include_str!("../data/composio-openapi-tools.json");

/// The request-body fields of tool execution the fake understands: those the reference lists.
pub const EXECUTE_FIELDS: &[&str] = &[
    "connected_account_id",
    "entity_id",
    "user_id",
    "version",
    "custom_auth_params",
    "custom_connection_data",
    "arguments",
    "text",
    "allow_tracing",
];

/// How a registered tool answers.
#[derive(Debug, Clone)]
pub enum ToolAnswer {
    /// `successful: true` with this `data`.
    Data(Value),
    /// `successful: false` with this `error` (what Composio answers when, say, the app's
    /// account is not connected).
    Fails(String),
}

/// One tool execution the fake received.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The tool slug from the path.
    pub tool_slug: String,
    /// The `x-api-key` header (empty when absent).
    pub api_key: String,
    /// The whole JSON body (`Null` when it was not JSON).
    pub body: Value,
    /// The HTTP status the fake answered.
    pub answered: u16,
}

impl Execution {
    /// `body.user_id`.
    pub fn user_id(&self) -> Option<&str> {
        self.body["user_id"].as_str()
    }

    /// `body.version` (`None` when omitted: Composio's base version).
    pub fn version(&self) -> Option<&str> {
        self.body["version"].as_str()
    }
}

/// One tool listing the fake received: its query string, decoded into pairs.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Query pairs, in order.
    pub query: Vec<(String, String)>,
}

#[derive(Default)]
struct Inner {
    api_key: String,
    tools: BTreeMap<String, ToolAnswer>,
    executions: Vec<Execution>,
    listings: Vec<Listing>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    seen: Arc<watch::Sender<usize>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Composio API on 127.0.0.1; stops when dropped.
pub struct FakeComposio {
    /// Its origin (`http://127.0.0.1:{port}`); the bridge's API base is [`Self::api_base`].
    pub url: String,
    shared: Shared,
    stop: CancellationToken,
}

impl FakeComposio {
    /// Starts a fake that accepts the project key `api_key` and knows no tools yet.
    pub async fn start(api_key: &str) -> FakeComposio {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                api_key: api_key.to_owned(),
                ..Inner::default()
            })),
            seen: Arc::new(watch::channel(0).0),
        };
        let app = Router::new()
            .route("/api/v3/tools/execute/{tool_slug}", post(execute))
            .route("/api/v3/tools", get(list))
            .fallback(not_found)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Composio API");
        let addr = listener.local_addr().expect("its address");
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .ok();
        });
        FakeComposio {
            url: format!("http://{addr}"),
            shared,
            stop,
        }
    }

    /// The API base the bridge is given (`{url}/api/v3`).
    pub fn api_base(&self) -> String {
        format!("{}/api/v3", self.url)
    }

    /// Registers a tool and how it answers.
    pub fn tool(&self, slug: &str, answer: ToolAnswer) {
        self.shared.lock().tools.insert(slug.to_owned(), answer);
    }

    /// Every execution so far, in arrival order.
    pub fn executions(&self) -> Vec<Execution> {
        self.shared.lock().executions.clone()
    }

    /// Every tool listing so far, in arrival order.
    pub fn listings(&self) -> Vec<Listing> {
        self.shared.lock().listings.clone()
    }

    /// Waits until an execution matches `predicate` and returns it; an error naming what
    /// arrived when `deadline` passes first.
    pub async fn wait_for_execution(
        &self,
        predicate: impl Fn(&Execution) -> bool,
        deadline: Duration,
    ) -> anyhow::Result<Execution> {
        let mut seen = self.shared.seen.subscribe();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            seen.borrow_and_update();
            if let Some(found) = self.executions().into_iter().find(|e| predicate(e)) {
                return Ok(found);
            }
            if tokio::time::timeout_at(until, seen.changed())
                .await
                .is_err()
            {
                let got: Vec<String> = self
                    .executions()
                    .iter()
                    .map(|e| format!("{} {} -> {}", e.tool_slug, e.body, e.answered))
                    .collect();
                anyhow::bail!("no matching Composio execution within {deadline:?}; got {got:?}");
            }
        }
    }
}

impl Drop for FakeComposio {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An answer in the reference's `Error` shape.
pub fn error(status: StatusCode, slug: &str, message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "code": status.as_u16(),
        "slug": slug,
        "status": status.as_u16(),
        "request_id": uuid::Uuid::new_v4().to_string(),
    }});
    (status, Json(body)).into_response()
}

/// The reference's 401 for a missing or wrong `x-api-key`, if it is one.
fn refuse(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let expected = shared.lock().api_key.clone();
    match given {
        Some(key) if key == expected => None,
        Some(_) => Some(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Invalid API key",
        )),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "API key is required (x-api-key header)",
        )),
    }
}

/// Checks an execution body against the reference's request schema: an object of the listed
/// fields with their types, `arguments` and `text` not both.
pub fn validate_execute_body(body: &Value) -> Result<(), String> {
    let Some(object) = body.as_object() else {
        return Err("Request body must be a JSON object".into());
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !EXECUTE_FIELDS.contains(&k.as_str()))
    {
        return Err(format!("Unrecognized key in body: {unknown}"));
    }
    let typed = |field: &str, ok: fn(&Value) -> bool, kind: &str| match object.get(field) {
        Some(value) if !ok(value) => Err(format!("{field}: Expected {kind}")),
        _ => Ok(()),
    };
    typed("user_id", Value::is_string, "string")?;
    typed("version", Value::is_string, "string")?;
    typed("connected_account_id", Value::is_string, "string")?;
    typed("text", Value::is_string, "string")?;
    typed("arguments", Value::is_object, "object")?;
    if object.contains_key("arguments") && object.contains_key("text") {
        return Err("arguments and text are mutually exclusive".into());
    }
    Ok(())
}

/// The 200 answer of a registered tool.
fn executed(answer: &ToolAnswer) -> Value {
    let log_id = format!("log_{}", uuid::Uuid::new_v4().simple());
    match answer {
        ToolAnswer::Data(data) => {
            json!({"data": data, "error": null, "successful": true, "log_id": log_id})
        }
        ToolAnswer::Fails(message) => {
            json!({"data": {}, "error": message, "successful": false, "log_id": log_id})
        }
    }
}

async fn execute(
    State(shared): State<Shared>,
    Path(tool_slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let answer = shared.lock().tools.get(&tool_slug).cloned();
    let response = match (refuse(&shared, &headers), validate_execute_body(&parsed)) {
        (Some(refusal), _) => refusal,
        (None, Err(message)) => error(StatusCode::BAD_REQUEST, "BadRequest", &message),
        (None, Ok(())) => match answer {
            Some(answer) => Json(executed(&answer)).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "ToolNotFound",
                &format!("Tool {tool_slug} not found"),
            ),
        },
    };
    let execution = Execution {
        tool_slug,
        api_key: header(&headers, "x-api-key"),
        body: parsed,
        answered: response.status().as_u16(),
    };
    shared.lock().executions.push(execution);
    shared.seen.send_modify(|n| *n += 1);
    response
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn list(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    shared.lock().listings.push(Listing {
        query: query.clone(),
    });
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    let toolkit = query
        .iter()
        .find(|(k, _)| k == "toolkit_slug")
        .map(|(_, v)| v.to_uppercase());
    let tools = shared.lock().tools.clone();
    let items: Vec<Value> = tools
        .keys()
        .filter(|slug| {
            toolkit
                .as_ref()
                .is_none_or(|t| slug.starts_with(&format!("{t}_")))
        })
        .map(|slug| json!({"slug": slug, "name": slug, "input_parameters": {"type": "object", "properties": Map::new()}}))
        .collect();
    let total = items.len();
    Json(json!({"items": items, "next_cursor": null, "total_pages": 1, "current_page": 1, "total_items": total}))
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("Cannot {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Value {
        serde_json::from_str(OPENAPI_EXTRACT).expect("the vendored extract is JSON")
    }

    /// An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a `null` alternative.
    fn json_schema(schema: &Value) -> Value {
        match schema {
            Value::Object(map) => {
                let mut out: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| k.as_str() != "nullable")
                    .map(|(k, v)| (k.clone(), json_schema(v)))
                    .collect();
                if map.get("nullable") == Some(&Value::Bool(true)) {
                    return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
                }
                if let Some(Value::String(r)) = out.remove("$ref") {
                    let name = r.rsplit('/').next().unwrap();
                    return json_schema(&reference()["components"]["schemas"][name]);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
            other => other.clone(),
        }
    }

    fn operation() -> Value {
        reference()["paths"]["/api/v3/tools/execute/{tool_slug}"]["post"].clone()
    }

    fn assert_documented(status: u16, body: &Value) {
        let response = &operation()["responses"][status.to_string()];
        assert!(response.is_object(), "status {status} is not documented");
        let schema = json_schema(&response["content"]["application/json"]["schema"]);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{status} {body}: {errors:?}");
    }

    #[test]
    fn the_fake_takes_exactly_the_documented_body_fields() {
        let properties = operation()["requestBody"]["content"]["application/json"]["schema"]
            ["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        let mut ours: Vec<String> = EXECUTE_FIELDS.iter().map(|s| s.to_string()).collect();
        ours.sort();
        let mut theirs = properties;
        theirs.sort();
        assert_eq!(ours, theirs);
        assert_eq!(
            reference()["components"]["securitySchemes"]["ApiKeyAuth"]["name"],
            "x-api-key"
        );
        assert!(
            operation()["requestBody"]["content"]["application/json"]["schema"]["properties"]
                ["version"]["description"]
                .as_str()
                .unwrap()
                .contains("00000000_00"),
            "an omitted version is Composio's pinned base version"
        );
    }

    async fn call(fake: &FakeComposio, key: Option<&str>, slug: &str, body: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/tools/execute/{slug}", fake.api_base()))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn every_answer_of_the_fake_is_one_the_reference_documents() {
        let fake = FakeComposio::start("ak_test").await;
        fake.tool(
            "GITHUB_GET_ME",
            ToolAnswer::Data(json!({"login": "octocat"})),
        );
        fake.tool(
            "GMAIL_SEND_EMAIL",
            ToolAnswer::Fails("No connected account".into()),
        );
        let good = r#"{"user_id":"u-1","version":"20250909_00","arguments":{}}"#;
        let cases = [
            (Some("ak_test"), "GITHUB_GET_ME", good, 200),
            (Some("ak_test"), "GMAIL_SEND_EMAIL", good, 200),
            (Some("ak_test"), "NOPE_NOTHING", good, 404),
            (None, "GITHUB_GET_ME", good, 401),
            (Some("wrong"), "GITHUB_GET_ME", good, 401),
            (Some("ak_test"), "GITHUB_GET_ME", r#"{"arguments":[]}"#, 400),
            (
                Some("ak_test"),
                "GITHUB_GET_ME",
                r#"{"arguments":{},"text":"x"}"#,
                400,
            ),
            (Some("ak_test"), "GITHUB_GET_ME", r#"{"input":{}}"#, 400),
            (Some("ak_test"), "GITHUB_GET_ME", "not json", 400),
        ];
        for (key, slug, body, expected) in cases {
            let (status, answer) = call(&fake, key, slug, body).await;
            assert_eq!(status, expected, "{slug} {body}: {answer}");
            assert_documented(status, &answer);
        }
        let first = fake
            .wait_for_execution(|e| e.answered == 200, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(first.user_id(), Some("u-1"));
        assert_eq!(first.version(), Some("20250909_00"));
        assert_eq!(fake.executions().len(), cases.len());
    }
}
