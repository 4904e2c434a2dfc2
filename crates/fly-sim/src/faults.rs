//! Request-level fault injection (spec §6): rules posted to `/_sim/faults` match requests by
//! method, path regex and app, fire for the next N calls or with a probability, and bend the
//! answer: a 5xx before commit, a response lost after the operation committed, a flyd 408
//! with or without commit, a 429 burst, added latency, a full region, list lag or empty
//! lists, a revoked token. The middleware is async so an injected delay never blocks a thread.

use super::errors::{SimError, SimResult};
use super::hooks::path_segment;
use super::ratelimit::{too_many_requests, RetryAfter};
use super::Simulator;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A 5xx (default 503) before the handler runs; nothing changes.
    Error,
    /// The handler runs (the operation commits), then the client gets a 502/504 or a broken
    /// connection instead of the real answer.
    LostAfterCommit,
    /// `408 deadline_exceeded` from flyd; `commit` says whether the operation happened anyway.
    #[serde(rename = "timeout408")]
    Timeout408,
    /// A 429 independent of the token buckets.
    RateLimit,
    /// The answer is delayed by `delay_ms` (plus up to `jitter_ms`).
    Latency,
    /// `insufficient_capacity` (or `volume_placement_capacity` for volume routes).
    RegionFull,
    /// Lists omit machines/volumes created less than `seconds` ago (simulated time).
    ListLag,
    /// Lists come back empty.
    EmptyList,
    /// `401` as if the token had been revoked.
    TokenRevoked,
    /// A `wait` long-poll that stalls for `delay_ms` (default 2000) and then answers `408
    /// deadline_exceeded` whatever the machine did; only `…/wait` requests match.
    SlowWait,
    /// An org machine listing (`GET /v1/orgs/{org}/machines`) that could not reach some regions:
    /// their machines are left out and the regions named in `error_regions` (default: the
    /// simulator's default region); only that route matches.
    PartialListing,
    /// The first page of an org machine listing (a request without `cursor`) comes back with no
    /// machines and a cursor to the real first page, as Fly's document allows a page to be
    /// empty before the end; only that route matches.
    EmptyFirstPage,
}

/// A rule as posted to `POST /_sim/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Regex searched in the request path (any path when absent).
    #[serde(default)]
    pub path: Option<String>,
    /// App name to match (from the path).
    #[serde(default)]
    pub app: Option<String>,
    /// What happens.
    pub kind: FaultKind,
    /// Fire for the next N matching calls (unlimited when neither this nor `probability`).
    #[serde(default)]
    pub count: Option<u64>,
    /// Fire with this probability on each matching call.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Status for `error` (500/502/503/504), `lost_after_commit` (502/504), `region_full` (412/503;
    /// a machine update defaults to 409, as Fly answers when the host cannot grow it).
    #[serde(default)]
    pub status: Option<u16>,
    /// `error`: answer an HTML page instead of JSON, as a proxy would.
    #[serde(default)]
    pub html: bool,
    /// `lost_after_commit`: break the connection mid-response instead of answering a status.
    #[serde(default)]
    pub drop: bool,
    /// `timeout408`: whether the operation commits before the 408.
    #[serde(default)]
    pub commit: bool,
    /// `rate_limit`: the `Retry-After` (default the rate limiter's).
    #[serde(default)]
    pub retry_after: Option<RetryAfter>,
    /// `latency`, `slow_wait`, and a stall before a `lost_after_commit` answer, in real
    /// milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `latency`: extra random delay up to this many milliseconds.
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    /// `list_lag`: how long (simulated seconds) a new machine/volume stays out of lists (and a
    /// new machine read by id answers 404).
    #[serde(default)]
    pub seconds: Option<f64>,
    /// `partial_listing`: the regions the listing could not reach.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
}

/// A stored rule with its bookkeeping, as `GET /_sim/faults` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRule {
    /// Rule id (for `DELETE /_sim/faults/{id}`).
    pub id: u64,
    /// The rule as posted.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Calls still to be hit, when counted.
    pub remaining: Option<u64>,
    /// Times it fired.
    pub hits: u64,
    #[serde(skip)]
    path_re: Option<regex::Regex>,
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str, app: Option<&str>) -> bool {
        self.spec
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_re.as_ref().is_none_or(|re| re.is_match(path))
            && self.spec.app.as_deref().is_none_or(|a| Some(a) == app)
            && (self.spec.kind != FaultKind::SlowWait || path.ends_with("/wait"))
            && (!matches!(
                self.spec.kind,
                FaultKind::PartialListing | FaultKind::EmptyFirstPage
            ) || ORG_MACHINES.is_match(path))
            && self.remaining != Some(0)
    }

    /// Decides whether a matching call is hit, consuming a count.
    fn fire(&mut self) -> bool {
        let hit = match self.spec.probability {
            Some(p) => rand::thread_rng().gen_bool(p.clamp(0.0, 1.0)),
            None => true,
        };
        if hit {
            if let Some(n) = self.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
            self.hits += 1;
        }
        hit
    }
}

/// Every installed rule.
#[derive(Debug, Default)]
pub struct FaultTable {
    rules: Mutex<Vec<FaultRule>>,
    next_id: Mutex<u64>,
}

impl FaultTable {
    /// Validates and installs a rule.
    pub fn add(&self, spec: FaultSpec) -> SimResult<FaultRule> {
        let path_re = spec
            .path
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| SimError::invalid(format!("path is not a regex: {e}")))?;
        if spec
            .probability
            .is_some_and(|p| !(p.is_finite() && (0.0..=1.0).contains(&p)))
        {
            return Err(SimError::invalid("probability must be within [0, 1]"));
        }
        if let Some(s) = spec.status {
            if StatusCode::from_u16(s).is_err() || s < 400 {
                return Err(SimError::invalid("status must be an HTTP error status"));
            }
        }
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let rule = FaultRule {
            id,
            remaining: spec.count,
            spec,
            hits: 0,
            path_re,
        };
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule.clone());
        Ok(rule)
    }

    /// Every rule with its remaining count and hits.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Removes every rule (or one by id); returns how many went.
    pub fn clear(&self, id: Option<u64>) -> usize {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = rules.len();
        rules.retain(|r| id.is_some_and(|id| r.id != id));
        before - rules.len()
    }

    /// The rules that fire for this request: every latency rule plus the first other one.
    fn firing(&self, method: &str, path: &str, app: Option<&str>) -> Vec<FaultSpec> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut decided = false;
        for rule in rules.iter_mut() {
            let latency = rule.spec.kind == FaultKind::Latency;
            if (decided && !latency) || !rule.matches(method, path, app) {
                continue;
            }
            if rule.fire() {
                decided |= !latency;
                out.push(rule.spec.clone());
            }
        }
        out
    }
}

fn json_error(status: StatusCode, message: &str, fly_status: Option<&str>) -> Response {
    let mut body = json!({"error": message});
    if let Some(s) = fly_status {
        body["status"] = json!(s);
    }
    (status, Json(body)).into_response()
}

fn injected_error(spec: &FaultSpec) -> Response {
    let status = spec
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if spec.html {
        let reason = status.canonical_reason().unwrap_or("Error");
        let page = format!(
            "<html><head><title>{} {reason}</title></head><body><center><h1>{} {reason}</h1></center><hr><center>fly-proxy</center></body></html>\n",
            status.as_u16(),
            status.as_u16()
        );
        return (status, [(header::CONTENT_TYPE, "text/html")], page).into_response();
    }
    json_error(
        status,
        &format!("internal: injected {} error", status.as_u16()),
        None,
    )
}

/// A response whose body fails after the status line: the client sees a broken connection.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection drop",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn deadline_exceeded() -> Response {
    json_error(
        StatusCode::REQUEST_TIMEOUT,
        "deadline_exceeded: context deadline exceeded",
        None,
    )
}

/// Applies `f` to every list in a list response (a bare array, or `machines`/`volumes`/`ips`
/// arrays of an object).
async fn rewrite_lists(response: Response, f: impl Fn(&mut Vec<Value>)) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    match &mut value {
        Value::Array(items) => f(items),
        Value::Object(map) => {
            for key in ["machines", "volumes", "ips", "certificates"] {
                if let Some(Value::Array(items)) = map.get_mut(key) {
                    f(items);
                }
            }
        }
        _ => {}
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn created_after(item: &Value, cutoff: DateTime<Utc>) -> bool {
    item.get("created_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.with_timezone(&Utc) > cutoff)
}

/// The org-wide machine listing.
static ORG_MACHINES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new("^/v1/orgs/[^/]+/machines$").expect("a valid regex")
});

/// Leaves the machines of `regions` out of an org listing page and names the regions in
/// `error_regions`, as Fly answers when some regions could not be reached.
async fn partial_listing(response: Response, regions: Vec<String>) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let Ok(mut page) = serde_json::from_slice::<super::wire::OrgMachinesResponse>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let kept: Vec<_> = page
        .machines
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.region.as_ref().is_none_or(|r| !regions.contains(r)))
        .collect();
    page.machines = (!kept.is_empty()).then_some(kept);
    page.error_regions = regions;
    let bytes = serde_json::to_vec(&page).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// An empty first page whose cursor leads to the real first page; later pages pass through.
async fn empty_first_page(call: Call) -> Response {
    let has_cursor = call.req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.starts_with("cursor=") && p.len() > 7)
    });
    if has_cursor {
        return call.run().await;
    }
    let page = super::wire::OrgMachinesResponse {
        machines: None,
        next_cursor: Some(super::org::start_cursor()),
        ..Default::default()
    };
    Json(page).into_response()
}

/// A single machine's route (`GET` reads it, `POST` updates it).
static MACHINE_BY_ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new("^/v1/apps/[^/]+/machines/[0-9a-f]+$").expect("a valid regex")
});

/// A machine read by id that was created after `cutoff` is not found yet (Fly's read replicas
/// lag a fresh machine; flyctl retries these 404s).
async fn hide_fresh_machine(response: Response, cutoff: DateTime<Utc>) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(machine) if created_after(&machine, cutoff) => {
            json_error(StatusCode::NOT_FOUND, "not_found: machine not found", None)
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Middleware applying the firing rules around a request.
pub async fn inject(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let app = path_segment(&path, "apps");
    let firing = sim
        .inner
        .faults
        .firing(req.method().as_str(), &path, app.as_deref());
    if firing.is_empty() {
        return next.run(req).await;
    }
    let (delay, action) = delay_and_action(firing);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(spec) = action else {
        return next.run(req).await;
    };
    let call = Call {
        method,
        path,
        req,
        next,
    };
    match spec.kind {
        FaultKind::Latency => call.run().await,
        FaultKind::Error => injected_error(&spec),
        FaultKind::TokenRevoked => json_error(StatusCode::UNAUTHORIZED, "unauthorized", None),
        FaultKind::RateLimit => too_many_requests(
            spec.retry_after
                .unwrap_or_else(|| sim.inner.limiter.settings().retry_after),
        ),
        FaultKind::SlowWait => slow_wait(&spec).await,
        FaultKind::RegionFull => region_full(&spec, &call.method, &call.path),
        FaultKind::Timeout408 => {
            if spec.commit {
                let _committed = call.run().await;
            }
            deadline_exceeded()
        }
        FaultKind::LostAfterCommit => lost_after_commit(spec, call).await,
        FaultKind::EmptyList => rewrite_lists(call.run().await, Vec::clear).await,
        FaultKind::PartialListing => {
            let regions = spec
                .regions
                .clone()
                .unwrap_or_else(|| vec![sim.config().default_region.clone()]);
            partial_listing(call.run().await, regions).await
        }
        FaultKind::ListLag => list_lag(&sim, &spec, call).await,
        FaultKind::EmptyFirstPage => empty_first_page(call).await,
    }
}

/// The total delay of the firing latency rules, and the one other rule that fired, if any.
fn delay_and_action(firing: Vec<FaultSpec>) -> (Duration, Option<FaultSpec>) {
    let mut delay = Duration::ZERO;
    let mut action = None;
    for spec in firing {
        if spec.kind == FaultKind::Latency {
            let jitter = spec
                .jitter_ms
                .filter(|j| *j > 0)
                .map_or(0, |j| rand::thread_rng().gen_range(0..=j));
            delay += Duration::from_millis(spec.delay_ms.unwrap_or(0).saturating_add(jitter));
        } else {
            action = Some(spec);
        }
    }
    (delay, action)
}

/// The request a fault bends, with the rest of the stack that would answer it.
struct Call {
    method: String,
    path: String,
    req: Request,
    next: Next,
}

impl Call {
    /// Lets the request through: the handler runs and its answer comes back.
    async fn run(self) -> Response {
        self.next.run(self.req).await
    }
}

/// `slow_wait`: stalls, then answers the `408` of a wait that timed out.
async fn slow_wait(spec: &FaultSpec) -> Response {
    tokio::time::sleep(Duration::from_millis(spec.delay_ms.unwrap_or(2000))).await;
    json_error(
        StatusCode::REQUEST_TIMEOUT,
        "deadline_exceeded: machine did not reach the requested state in time",
        None,
    )
}

/// `region_full`: the capacity error of a volume route or of a machine route (a `409` by
/// default for a machine update, else `412`).
fn region_full(spec: &FaultSpec, method: &str, path: &str) -> Response {
    let update = method == "POST" && MACHINE_BY_ID.is_match(path);
    let status = spec
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(if update {
            StatusCode::CONFLICT
        } else {
            StatusCode::PRECONDITION_FAILED
        });
    if path.contains("/volumes") {
        json_error(
            status,
            "insufficient resources to create new volume: no host with capacity in this region",
            Some("volume_placement_capacity"),
        )
    } else {
        json_error(
            status,
            "aborted: could not reserve resource for machine: insufficient capacity",
            Some("insufficient_capacity"),
        )
    }
}

/// `lost_after_commit`: the operation commits, then the client gets a 502/504 (after an
/// optional stall) or a broken connection.
async fn lost_after_commit(spec: FaultSpec, call: Call) -> Response {
    let _committed = call.run().await;
    if let Some(ms) = spec.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if spec.drop {
        return dropped();
    }
    let status = spec
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    injected_error(&FaultSpec {
        status: Some(status.as_u16()),
        ..spec
    })
}

/// `list_lag`: what was created within the lag is left out of lists, and a machine read by id
/// is not found yet.
async fn list_lag(sim: &Simulator, spec: &FaultSpec, call: Call) -> Response {
    let lag = super::clock::delta(super::clock::secs_f64(spec.seconds.unwrap_or(1.0)));
    let cutoff = sim.clock().now() - lag;
    if call.method == "GET" && MACHINE_BY_ID.is_match(&call.path) {
        return hide_fresh_machine(call.run().await, cutoff).await;
    }
    rewrite_lists(call.run().await, move |items| {
        items.retain(|i| !created_after(i, cutoff))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: FaultKind) -> FaultSpec {
        FaultSpec {
            method: Some("POST".into()),
            path: Some("/machines$".into()),
            app: None,
            kind,
            count: Some(1),
            probability: None,
            status: None,
            html: false,
            drop: false,
            commit: false,
            retry_after: None,
            delay_ms: None,
            jitter_ms: None,
            seconds: None,
            regions: None,
        }
    }

    #[test]
    fn counted_rules_fire_once_and_latency_stacks() {
        let table = FaultTable::default();
        table.add(spec(FaultKind::Error)).expect("add");
        let mut lat = spec(FaultKind::Latency);
        lat.count = None;
        table.add(lat).expect("add");
        let first = table.firing("POST", "/v1/apps/a/machines", Some("a"));
        assert_eq!(first.len(), 2);
        let second = table.firing("POST", "/v1/apps/a/machines", Some("a"));
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].kind, FaultKind::Latency);
        assert!(table
            .firing("GET", "/v1/apps/a/machines", Some("a"))
            .is_empty());
        assert_eq!(table.list()[0].hits, 1);
        assert_eq!(table.clear(None), 2);
    }

    #[test]
    fn bad_rules_are_refused() {
        let table = FaultTable::default();
        let mut s = spec(FaultKind::Error);
        s.path = Some("(".into());
        assert!(table.add(s).is_err());
        let mut s = spec(FaultKind::Error);
        s.probability = Some(2.0);
        assert!(table.add(s).is_err());
    }
}
