//! Fly's documented rate limits (spec §4, api doc §9) as token buckets on the simulated clock.
//!
//! Buckets are keyed by `(action, scope)`: mutating actions are 1 req/s with a burst of 3, scoped
//! to the machine for machine routes, to the app for app routes (machine and volume creates
//! included) and to the org for app creates; every GET is 5 req/s with a burst of 10; app
//! deletes are 100 per minute per org. An optional cap on every request of one token (off by
//! default) models org-wide throttling. A limited request gets `429 {"error":"rate limit
//! exceeded"}` with a `Retry-After` whose presence and format are configurable because Fly's is
//! unverified. Limits can be switched on and off at runtime through `/_sim/rate-limits`.

use super::auth::Caller;
use super::hooks::path_segment;
use super::Simulator;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What the `Retry-After` header of a 429 looks like (its real presence is unverified).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RetryAfter {
    /// A whole number of seconds, e.g. `Retry-After: 1`.
    Seconds(u64),
    /// Fractional seconds, e.g. `Retry-After: 0.5` (not RFC-conformant; some proxies send it).
    Fractional(f64),
    /// No header at all (the string `"absent"` in JSON).
    Absent(AbsentTag),
}

/// The JSON spelling of [`RetryAfter::Absent`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AbsentTag {
    /// `"absent"`.
    Absent,
}

impl RetryAfter {
    /// No `Retry-After` header.
    pub const ABSENT: Self = Self::Absent(AbsentTag::Absent);

    /// Parses the CLI spelling: `absent`, an integer, or a decimal number of seconds.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("absent") || s.eq_ignore_ascii_case("none") {
            return Some(Self::ABSENT);
        }
        if let Ok(n) = s.parse::<u64>() {
            return Some(Self::Seconds(n));
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(Self::Fractional)
    }

    /// The header value, if any.
    pub fn header(&self) -> Option<HeaderValue> {
        match self {
            Self::Seconds(n) => HeaderValue::from_str(&n.to_string()).ok(),
            Self::Fractional(f) => HeaderValue::from_str(&format!("{f}")).ok(),
            Self::Absent(_) => None,
        }
    }
}

/// The `429` Fly answers when a limit is hit, with the configured `Retry-After`.
pub fn too_many_requests(retry_after: RetryAfter) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"error": "rate limit exceeded"})),
    )
        .into_response();
    if let Some(v) = retry_after.header() {
        response.headers_mut().insert("retry-after", v);
    }
    response
}

/// One bucket's refill rate and capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket capacity (the burst).
    pub burst: f64,
}

/// Every rate-limit knob; part of [`super::SimConfig`] and replaceable at runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// Whether any limit applies.
    pub enabled: bool,
    /// The `Retry-After` of a 429.
    pub retry_after: RetryAfter,
    /// Mutating actions (create/update/start/stop/…/lease/exec/metadata writes/secrets/IPs/certs).
    pub mutating: BucketSpec,
    /// Get Machine and every other GET.
    pub get: BucketSpec,
    /// App deletes per org.
    pub app_delete: BucketSpec,
    /// Optional cap on all requests of one token, whatever the action (off by default; models
    /// org-wide throttling). Drawn before the per-action bucket.
    #[serde(default)]
    pub per_token: Option<BucketSpec>,
}

impl RateLimitSettings {
    /// Every per-action rate (mutating, get, app deletes) `k` times faster. Not Fly: a bench
    /// scales these and the controller's own pacing together to provision thousands of
    /// instances through the whole path in minutes.
    pub fn scale(&mut self, k: f64) {
        for bucket in [&mut self.mutating, &mut self.get, &mut self.app_delete] {
            bucket.per_second *= k;
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retry_after: RetryAfter::Seconds(1),
            mutating: BucketSpec {
                per_second: 1.0,
                burst: 3.0,
            },
            get: BucketSpec {
                per_second: 5.0,
                burst: 10.0,
            },
            app_delete: BucketSpec {
                per_second: 100.0 / 60.0,
                burst: 100.0,
            },
            per_token: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// The live limiter: settings, buckets and per-endpoint 429 counts.
#[derive(Debug)]
pub struct RateLimiter {
    settings: Mutex<RateLimitSettings>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    limited: Mutex<BTreeMap<String, u64>>,
}

impl RateLimiter {
    /// A limiter starting with `settings`.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings: Mutex::new(settings),
            buckets: Mutex::new(HashMap::new()),
            limited: Mutex::new(BTreeMap::new()),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> RateLimitSettings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the settings and empties every bucket (refilled on next use).
    pub fn set(&self, settings: RateLimitSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// 429s answered by the buckets, per `"METHOD /route"`.
    pub fn limited(&self) -> BTreeMap<String, u64> {
        self.limited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes one token for `(action, scope)`; false when the bucket is empty.
    fn take(&self, key: (String, String), spec: BucketSpec, now: DateTime<Utc>) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: spec.burst,
            at: now,
        });
        let elapsed = (now - bucket.at).num_milliseconds().max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * spec.per_second).min(spec.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The bucket a request draws from: `(action, scope)` and its spec.
fn classify(
    method: &Method,
    route: &str,
    path: &str,
    org: &str,
    settings: &RateLimitSettings,
) -> ((String, String), BucketSpec) {
    let scope = path_segment(path, "machines")
        .filter(|_| route.contains("/machines/{id}"))
        .or_else(|| path_segment(path, "apps"))
        .unwrap_or_else(|| org.to_string());
    let action = format!("{method} {route}");
    if *method == Method::GET {
        return ((action, scope), settings.get);
    }
    if *method == Method::DELETE && route == "/v1/apps/{app}" {
        return (("app_delete".into(), org.to_string()), settings.app_delete);
    }
    if *method == Method::POST && route == "/v1/apps" {
        return (("app_create".into(), org.to_string()), settings.mutating);
    }
    ((action, scope), settings.mutating)
}

/// Middleware applying the buckets to each authenticated Fly request.
pub async fn limit(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let limiter = &sim.inner.limiter;
    let settings = limiter.settings();
    if !settings.enabled {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let (org, token_key) = req
        .extensions()
        .get::<Caller>()
        .map(|c| (c.org.clone(), c.token_key.clone()))
        .unwrap_or_default();
    let now = sim.clock().now();
    let within_token_cap = settings
        .per_token
        .is_none_or(|cap| limiter.take(("token".into(), token_key), cap, now));
    let (key, spec) = classify(req.method(), &route, req.uri().path(), &org, &settings);
    if within_token_cap && limiter.take(key, spec, now) {
        return next.run(req).await;
    }
    *limiter
        .limited
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(format!("{} {route}", req.method()))
        .or_default() += 1;
    too_many_requests(settings.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn retry_after_spellings() {
        assert_eq!(RetryAfter::parse("absent"), Some(RetryAfter::ABSENT));
        assert_eq!(RetryAfter::parse("2"), Some(RetryAfter::Seconds(2)));
        assert_eq!(RetryAfter::parse("0.5"), Some(RetryAfter::Fractional(0.5)));
        assert_eq!(RetryAfter::parse("x"), None);
        let v: RetryAfter = serde_json::from_str("\"absent\"").expect("absent");
        assert_eq!(v, RetryAfter::ABSENT);
        assert!(RetryAfter::ABSENT.header().is_none());
    }

    #[test]
    fn bucket_refills_on_the_given_clock() {
        let limiter = RateLimiter::new(RateLimitSettings::default());
        let spec = RateLimitSettings::default().mutating;
        let now = Utc::now();
        let key = || ("start".to_string(), "m1".to_string());
        assert!((0..3).all(|_| limiter.take(key(), spec, now)));
        assert!(!limiter.take(key(), spec, now));
        assert!(limiter.take(key(), spec, now + TimeDelta::seconds(1)));
    }

    #[test]
    fn scopes() {
        let s = RateLimitSettings::default();
        let (key, _) = classify(
            &Method::POST,
            "/v1/apps/{app}/machines/{id}/start",
            "/v1/apps/a/machines/m1/start",
            "o",
            &s,
        );
        assert_eq!(key.1, "m1");
        let (key, _) = classify(
            &Method::POST,
            "/v1/apps/{app}/machines",
            "/v1/apps/a/machines",
            "o",
            &s,
        );
        assert_eq!(key.1, "a");
        let (key, spec) = classify(&Method::DELETE, "/v1/apps/{app}", "/v1/apps/a", "o", &s);
        assert_eq!(key, ("app_delete".to_string(), "o".to_string()));
        assert_eq!(spec, s.app_delete);
    }
}
