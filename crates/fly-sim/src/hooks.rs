//! The embedder's per-request seam: synchronous hooks configured in code (tests add their own
//! throttles or response wrappers here). The simulator's own rate limits and runtime fault
//! rules are separate async middlewares ([`super::ratelimit`], [`super::faults`]) that run
//! before these.
//!
//! Hooks run after authentication, in configuration order. `before` may answer in place of
//! the simulator (a 429, an injected 5xx); `after` sees the real response and may replace it
//! (a "response lost after commit" fault).

use super::Simulator;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};

/// What a hook knows about a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// HTTP method.
    pub method: Method,
    /// The route template, e.g. `/v1/apps/{app}/machines/{id}/start`.
    pub route: String,
    /// The concrete path.
    pub path: String,
    /// The app named in the path, if any.
    pub app: Option<String>,
    /// The machine id named in the path, if any.
    pub machine_id: Option<String>,
    /// Simulated time of the request.
    pub now: DateTime<Utc>,
    /// The caller's `User-Agent` (the controller names its replica there).
    pub user_agent: Option<String>,
}

/// A per-request interceptor.
pub trait RequestHook: Send + Sync + 'static {
    /// Called before the handler; returning a response skips the handler.
    fn before(&self, _req: &RequestInfo) -> Option<Response> {
        None
    }

    /// Called with the handler's response; returns what the client gets.
    fn after(&self, _req: &RequestInfo, response: Response) -> Response {
        response
    }
}

/// The path segment following `after` (`/v1/apps/{app}/…` → the app name).
pub(crate) fn path_segment(path: &str, after: &str) -> Option<String> {
    let mut parts = path.split('/');
    parts.find(|p| *p == after)?;
    parts.next().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Middleware running the configured hooks around each Fly request.
pub async fn run_hooks(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let hooks = &sim.config().hooks;
    if hooks.is_empty() {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let info = RequestInfo {
        method: req.method().clone(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| path.clone()),
        app: path_segment(&path, "apps"),
        machine_id: path_segment(&path, "machines"),
        path,
        now: sim.clock().now(),
        user_agent: req
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    for hook in hooks {
        if let Some(response) = hook.before(&info) {
            return response;
        }
    }
    let mut response = next.run(req).await;
    for hook in hooks {
        response = hook.after(&info, response);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn segments() {
        let p = "/v1/apps/a1/machines/m1/start";
        assert_eq!(path_segment(p, "apps").as_deref(), Some("a1"));
        assert_eq!(path_segment(p, "machines").as_deref(), Some("m1"));
        assert_eq!(path_segment("/v1/apps", "apps"), None);
    }
}
