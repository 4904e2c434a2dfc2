//! Gateway health over HTTP: `/startupz` (start-up finished) and `/readyz` (deep readiness).
//!
//! `/healthz` is not offered: it answers 200 even when every WebSocket upgrade is refused because
//! `gateway.trustedProxies` misses the proxy's address, so it cannot tell the controller that the
//! gateway is usable. That misconfiguration shows up here as its own error,
//! [`HealthError::ProxyAttributionRequired`] (403 with `type: proxy_attribution_required`).

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Errors from a health probe.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(
        "the gateway refused the probe: proxy attribution required \
         (gateway.trustedProxies does not cover the proxy's address)"
    )]
    ProxyAttributionRequired,
    #[error("{path} answered HTTP {status}: {body}")]
    Unexpected {
        path: &'static str,
        status: u16,
        body: String,
    },
    #[error("{path} could not be reached: {source}")]
    Transport {
        path: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

/// Answer of `/readyz`: 200 when ready, 503 with the failing checks otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Readiness {
    #[serde(default)]
    pub ready: bool,
    /// Names (or objects) of the checks that fail, e.g. a broken channel account.
    #[serde(default)]
    pub failing: Vec<Value>,
}

/// Answer of `/startupz`: 503 `starting` while sidecars start, then 200 `started`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Startup {
    #[serde(default)]
    pub status: String,
    /// Shown only to local or authenticated callers.
    #[serde(default)]
    pub version: Option<String>,
}

impl Startup {
    /// Whether start-up has finished.
    pub fn started(&self) -> bool {
        self.status == "started"
    }
}

/// Probes one gateway's health endpoints.
#[derive(Debug, Clone)]
pub struct HealthClient {
    http: reqwest::Client,
    base: String,
    host: Option<String>,
}

impl HealthClient {
    /// A client for `base` (e.g. `https://acme.openclaws.biz`), with a short timeout.
    pub fn new(base: impl Into<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self::with_http(http, base))
    }

    /// A client using a prepared `reqwest::Client` (own headers, source address, timeouts).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            host: None,
        }
    }

    /// Sends `Host: host` (a gateway behind a shared proxy address, routed by hostname).
    pub fn with_host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Result<Readiness, HealthError> {
        self.probe("/readyz").await
    }

    /// `GET /startupz`.
    pub async fn startupz(&self) -> Result<Startup, HealthError> {
        self.probe("/startupz").await
    }

    async fn probe<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
    ) -> Result<T, HealthError> {
        let transport = |source| HealthError::Transport { path, source };
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(host) = &self.host {
            request = request.header(reqwest::header::HOST, host);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        classify(path, status, &body)
    }
}

/// Turns a probe's status and body into its answer; 200 and 503 both carry one.
fn classify<T: serde::de::DeserializeOwned>(
    path: &'static str,
    status: u16,
    body: &str,
) -> Result<T, HealthError> {
    if status == 403 && is_proxy_attribution_body(body) {
        return Err(HealthError::ProxyAttributionRequired);
    }
    let unexpected = || HealthError::Unexpected {
        path,
        status,
        body: body.trim().chars().take(300).collect(),
    };
    if status != 200 && status != 503 {
        return Err(unexpected());
    }
    serde_json::from_str(body).map_err(|_| unexpected())
}

/// Whether an HTTP error body is the gateway's `proxy_attribution_required` refusal.
pub(crate) fn is_proxy_attribution_body(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["type"].as_str().map(str::to_owned))
        .is_some_and(|t| t == "proxy_attribution_required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_not_ready_both_parse() {
        let ready: Readiness = classify(
            "/readyz",
            200,
            r#"{"ready":true,"failing":[],"uptimeMs":3}"#,
        )
        .unwrap();
        assert!(ready.ready);
        let not: Readiness = classify(
            "/readyz",
            503,
            r#"{"ready":false,"failing":["channel:telegram"]}"#,
        )
        .unwrap();
        assert!(!not.ready);
        assert_eq!(not.failing.len(), 1);
    }

    #[test]
    fn startup_states() {
        let starting: Startup = classify("/startupz", 503, r#"{"status":"starting"}"#).unwrap();
        assert!(!starting.started());
        let started: Startup = classify(
            "/startupz",
            200,
            r#"{"ok":true,"status":"started","version":"2026.9.6"}"#,
        )
        .unwrap();
        assert!(started.started());
        assert_eq!(started.version.as_deref(), Some("2026.9.6"));
    }

    #[test]
    fn proxy_attribution_is_its_own_error_and_other_403s_are_not() {
        let body = r#"{"error":{"message":"Proxy client attribution is required.","type":"proxy_attribution_required"}}"#;
        assert!(matches!(
            classify::<Readiness>("/readyz", 403, body),
            Err(HealthError::ProxyAttributionRequired)
        ));
        assert!(matches!(
            classify::<Readiness>("/readyz", 403, r#"{"error":{"type":"forbidden"}}"#),
            Err(HealthError::Unexpected { status: 403, .. })
        ));
        assert!(matches!(
            classify::<Readiness>("/readyz", 502, "bad gateway"),
            Err(HealthError::Unexpected { status: 502, .. })
        ));
    }
}
