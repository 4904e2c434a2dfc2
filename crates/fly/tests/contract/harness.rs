//! The simulator on a local port with a recording layer in front: every request the clients
//! send and every answer they get, as bytes, for checking against the documents afterwards.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use fly_sim::{LatencyModel, SimConfig, Simulator};
use openclaws_dns::CloudflareDns;
use openclaws_fly::{FlyClient, NoObserver};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Token of the simulated org.
pub const TOKEN: &str = "contract-token";
/// The simulated org.
pub const ORG: &str = "personal";
/// The zone the simulated Cloudflare hosts.
pub const ZONE: &str = "openclaws.biz";

/// One request and its answer as they crossed the wire.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub request_headers: Vec<String>,
    pub request_body: Vec<u8>,
    pub status: u16,
    pub content_type: String,
    pub response_body: Vec<u8>,
}

/// A recording simulator and clients pointed at it; stops when dropped.
pub struct Harness {
    pub base: String,
    pub fly: FlyClient,
    pub dns: CloudflareDns,
    log: Arc<Mutex<Vec<Exchange>>>,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A config with instant transitions and no rate limits (the clients' own limits still apply).
pub fn config() -> SimConfig {
    let mut config = SimConfig::new(TOKEN, ORG);
    config.latency = LatencyModel::spec_defaults().scaled(0.0);
    config.rate_limits.enabled = false;
    config.dns_zone = ZONE.into();
    config
}

impl Harness {
    /// Starts a simulator with `config`.
    pub async fn start(config: SimConfig) -> Self {
        let sim = Simulator::new(config);
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let app = sim
            .router()
            .layer(axum::middleware::from_fn_with_state(log.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        Self {
            fly: FlyClient::new(&base, TOKEN, ORG, Arc::new(NoObserver)),
            dns: CloudflareDns::new(&base, TOKEN, ZONE),
            base,
            log,
            shutdown,
        }
    }

    /// Everything recorded so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// The last recorded answer to `method` on a path ending with `suffix`, as JSON.
    pub fn last_answer(&self, method: &str, suffix: &str) -> serde_json::Value {
        let log = self.log.lock().unwrap();
        let e = log
            .iter()
            .rev()
            .find(|e| e.method == method && e.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {method} …{suffix} recorded"));
        serde_json::from_slice(&e.response_body).unwrap_or(serde_json::Value::Null)
    }

    /// A raw GET with the token, for answers the client would not show.
    pub async fn raw_get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Installs a `/_sim/faults` rule.
    pub async fn fault(&self, rule: serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.base))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "fault {rule}");
    }
}

/// The recording layer.
async fn record(
    State(log): State<Arc<Mutex<Vec<Exchange>>>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let request_body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let query = parts.uri.query().map(url_pairs).unwrap_or_default();
    let mut exchange = Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        request_headers: parts
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect(),
        request_body: request_body.to_vec(),
        status: 0,
        content_type: String::new(),
        response_body: Vec::new(),
    };
    let resp = next
        .run(Request::from_parts(parts, Body::from(request_body)))
        .await;
    let (parts, body) = resp.into_parts();
    let response_body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    exchange.status = parts.status.as_u16();
    exchange.content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    exchange.response_body = response_body.to_vec();
    log.lock().unwrap().push(exchange);
    Response::from_parts(parts, Body::from(response_body))
}

/// Decoded `key=value` pairs of a query string, repeats kept.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://q/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}
