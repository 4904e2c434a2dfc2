//! Per-endpoint call counts (`GET /_sim/calls`) and the `fly-request-id` header.

use super::Simulator;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Calls of one endpoint.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EndpointCalls {
    /// Every call.
    pub total: u64,
    /// Calls by response status code.
    pub statuses: BTreeMap<u16, u64>,
}

/// Call counts keyed like `"POST /v1/apps/{app}/machines"`.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<String, EndpointCalls>>,
}

impl CallStats {
    /// Records one call.
    pub fn record(&self, key: String, status: u16) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let entry = calls.entry(key).or_default();
        entry.total += 1;
        *entry.statuses.entry(status).or_default() += 1;
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> BTreeMap<String, EndpointCalls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Middleware counting each Fly call by method and route template.
pub async fn count_calls(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let key = format!("{} {}", req.method(), route);
    let response = next.run(req).await;
    sim.inner.stats.record(key, response.status().as_u16());
    response
}

/// Middleware stamping every response with a fresh `fly-request-id`.
pub async fn request_id(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&super::ids::ulid()) {
        response.headers_mut().insert("fly-request-id", v);
    }
    response
}
