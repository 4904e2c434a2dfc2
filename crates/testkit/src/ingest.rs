//! A stand-in for Sentry's ingest: accepts envelopes on `/api/{project}/envelope/` and keeps
//! each request's raw body, so tests can read the events and search the bytes that left.
//!
//! It also answers the one call of Sentry's web API the controller makes, Bulk Mutate an
//! Organization's Issues (`PUT /api/0/organizations/{org}/issues/?query=…`, body
//! `{"status": "resolved"}`, a bearer token): 401 without [`Ingest::API_TOKEN`], 200 when an
//! unresolved issue matches, 204 when none does (as Sentry documents). Of Sentry's search syntax
//! it knows `is:unresolved` and `tag:"value"` terms; an issue here is the events that share a
//! tag value, resolved by a matching call.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The running ingest and what it received.
#[derive(Clone)]
pub struct Ingest {
    /// DSN pointing at it (project 1).
    pub dsn: String,
    /// Base URL of its web API (`SENTRY_API_URL`).
    pub api_url: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    api: Arc<Mutex<ApiLog>>,
}

/// One call of the web API as it arrived.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// The organization slug of the path.
    pub org: String,
    /// The query string's parameters.
    pub params: HashMap<String, String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct ApiLog {
    calls: Vec<ApiCall>,
    /// `tag:value` pairs whose issue was resolved.
    resolved: Vec<(String, String)>,
}

type Shared = (Arc<Mutex<Vec<Vec<u8>>>>, Arc<Mutex<ApiLog>>);

impl Ingest {
    /// Listens on 127.0.0.1:0 until the test process ends.
    pub async fn start() -> Ingest {
        let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let api: Arc<Mutex<ApiLog>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .route("/api/0/organizations/{org}/issues/", put(mutate_issues))
            .with_state((bodies.clone(), api.clone()));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Ingest {
            dsn: format!("http://public@{addr}/1"),
            api_url: format!("http://{addr}/"),
            bodies,
            api,
        }
    }

    /// The token the web API accepts (`SENTRY_AUTH_TOKEN`).
    pub const API_TOKEN: &'static str = "sntrys_test-auth-token";

    /// Every web API call so far.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.api.lock().unwrap().calls.clone()
    }

    /// Every envelope body received so far, as text.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// The event items of every envelope received so far.
    pub fn events(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| envelope_items(b))
            .filter(|(header, _)| header["type"] == "event")
            .map(|(_, payload)| payload)
            .collect()
    }
}

async fn receive(State((bodies, _)): State<Shared>, body: Bytes) -> &'static str {
    bodies.lock().unwrap().push(body.to_vec());
    "{}"
}

/// Bulk Mutate an Organization's Issues, for status changes selected by a search query.
async fn mutate_issues(
    State((bodies, api)): State<Shared>,
    Path(org): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, answer) =
        if authorization.as_deref() != Some(&format!("Bearer {}", Ingest::API_TOKEN)) {
            (StatusCode::UNAUTHORIZED, json!({"detail": "Invalid token"}))
        } else {
            let query = params.get("query").cloned().unwrap_or_default();
            let events: Vec<Value> = bodies
                .lock()
                .unwrap()
                .iter()
                .flat_map(|b| envelope_items(b))
                .filter(|(h, _)| h["type"] == "event")
                .map(|(_, p)| p)
                .collect();
            let mut log = api.lock().unwrap();
            let tags = tag_terms(&query);
            let matched = !tags.is_empty()
                && !tags.iter().any(|t| log.resolved.contains(t))
                && events.iter().any(|e| {
                    tags.iter()
                        .all(|(k, v)| e["tags"][k.as_str()].as_str() == Some(v.as_str()))
                });
            if matched && body["status"] == "resolved" {
                log.resolved.extend(tags);
                (
                    StatusCode::OK,
                    json!({"status": "resolved", "statusDetails": {}}),
                )
            } else {
                (StatusCode::NO_CONTENT, Value::Null)
            }
        };
    api.lock().unwrap().calls.push(ApiCall {
        org,
        params,
        authorization,
        body,
        status: status.as_u16(),
    });
    match status {
        StatusCode::NO_CONTENT => status.into_response(),
        _ => (status, Json(answer)).into_response(),
    }
}

/// The `key:"value"` (or `key:value`) terms of a search query, `is:` filters left out.
fn tag_terms(query: &str) -> Vec<(String, String)> {
    query
        .split_whitespace()
        .filter_map(|term| term.split_once(':'))
        .filter(|(key, _)| *key != "is")
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// The (item header, payload) pairs of an envelope: a header line, then per item a header line
/// and a payload of `length` bytes (or up to the next newline).
fn envelope_items(body: &[u8]) -> Vec<(Value, Value)> {
    let mut rest = match body.iter().position(|&b| b == b'\n') {
        Some(end) => &body[end + 1..],
        None => return Vec::new(),
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let header: Value = serde_json::from_slice(&rest[..end]).unwrap_or(Value::Null);
        rest = &rest[end + 1..];
        let length = header["length"]
            .as_u64()
            .map(|l| l as usize)
            .or_else(|| rest.iter().position(|&b| b == b'\n'))
            .unwrap_or(rest.len())
            .min(rest.len());
        let payload = serde_json::from_slice(&rest[..length]).unwrap_or(Value::Null);
        items.push((header, payload));
        rest = &rest[length..];
        if rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
    }
    items
}
