//! The Fly simulator in tests: served in-process on 127.0.0.1:0 (for stacks and the fleet
//! bench too), and a client for the simulator's own black-box tests that talks to it over real
//! HTTP.

use fly_sim::{LatencyModel, SimConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Token the tests authenticate with.
pub const TOKEN: &str = "test-token";
/// Org of [`TOKEN`].
pub const ORG: &str = "personal";

/// A response: status, parsed body (JSON, or the text as a JSON string) and the request id.
#[derive(Debug)]
pub struct Resp {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON, or its text as a JSON string.
    pub body: Value,
    /// Fly's `fly-request-id` header.
    pub request_id: Option<String>,
}

/// Serves `simulator` on 127.0.0.1:0 until `stop` is cancelled and returns its base URL.
pub async fn serve_on_loopback(simulator: &Simulator, stop: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(fly_sim::serve(listener, simulator.clone(), stop.clone()));
    format!("http://{addr}")
}

/// A simulator serving on a random port; stops when dropped.
pub struct TestSim {
    /// Base URL of the Fly API.
    pub base: String,
    /// The simulator itself (its state, its process-mode machines).
    pub sim: Simulator,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestSim {
    /// Starts a simulator whose latencies are the spec's multiplied by `scale`, with rate
    /// limits off (tests of other behaviour fire calls faster than Fly allows; the rate-limit
    /// tests use [`TestSim::start_limited`]).
    pub async fn start(scale: f64) -> Self {
        let mut config = Self::config(scale);
        config.rate_limits.enabled = false;
        Self::start_with(config).await
    }

    /// Starts a simulator with the default (enabled) rate limits.
    pub async fn start_limited(scale: f64) -> Self {
        Self::start_with(Self::config(scale)).await
    }

    /// The test token's config with latencies scaled by `scale`.
    pub fn config(scale: f64) -> SimConfig {
        let mut config = SimConfig::new(TOKEN, ORG);
        config.latency = LatencyModel::spec_defaults().scaled(scale);
        config
    }

    /// Starts a simulator with `config`.
    pub async fn start_with(config: SimConfig) -> Self {
        let sim = Simulator::new(config);
        let shutdown = CancellationToken::new();
        Self {
            base: serve_on_loopback(&sim, &shutdown).await,
            sim,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    /// Sends a request with the test token and an optional lease nonce.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
        nonce: Option<&str>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(nonce) = nonce {
            req = req.header("fly-machine-lease-nonce", nonce);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let request_id = res
            .headers()
            .get("fly-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            request_id,
        }
    }

    fn bearer() -> String {
        format!("Bearer {TOKEN}")
    }

    /// GET with the test token.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, Some(&Self::bearer()), None)
            .await
    }

    /// POST of a JSON body with the test token.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), Some(&Self::bearer()), None)
            .await
    }

    /// POST without a body with the test token.
    pub async fn post_empty(&self, path: &str) -> Resp {
        self.send(Method::POST, path, None, Some(&Self::bearer()), None)
            .await
    }

    /// POST with the test token under the machine lease `nonce`.
    pub async fn post_nonce(&self, path: &str, body: Option<Value>, nonce: &str) -> Resp {
        self.send(Method::POST, path, body, Some(&Self::bearer()), Some(nonce))
            .await
    }

    /// PUT of a JSON body with the test token.
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body), Some(&Self::bearer()), None)
            .await
    }

    /// PATCH of a JSON body with the test token.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body), Some(&Self::bearer()), None)
            .await
    }

    /// DELETE with the test token.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, Some(&Self::bearer()), None)
            .await
    }

    /// A `/_sim` call (no token).
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, body, None, None).await
    }

    /// Installs a fault rule, asserting 201.
    pub async fn fault(&self, rule: Value) -> Value {
        let r = self.control(Method::POST, "/_sim/faults", Some(rule)).await;
        assert_eq!(r.status, StatusCode::CREATED, "fault: {:?}", r.body);
        r.body
    }

    /// Sends a request and returns only the raw outcome (status and `Retry-After`), or the
    /// transport error as text.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Option<String>, String), String> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", Self::bearer());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let retry = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.map_err(|e| format!("body: {e}"))?;
        Ok((status, retry, text))
    }

    /// Moves the simulated clock forward.
    pub async fn advance(&self, seconds: f64) {
        let r = self
            .send(
                Method::POST,
                "/_sim/clock/advance",
                Some(json!({ "seconds": seconds })),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "advance: {:?}", r.body);
    }

    /// Creates an app and returns its name.
    pub async fn app(&self, name: &str) -> String {
        let r = self
            .post(
                "/v1/apps",
                json!({"name": name, "org_slug": ORG, "network": format!("{name}-net")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create app: {:?}", r.body);
        name.to_string()
    }

    /// Gives the app a shared public IPv4, without which Fly's edge (and the simulator's public
    /// proxy) routes nothing to it.
    pub async fn public_address(&self, app: &str) {
        let r = self
            .post(
                &format!("/v1/apps/{app}/ip_assignments"),
                json!({"type": "shared_v4"}),
            )
            .await;
        assert!(r.status.is_success(), "assign an address: {:?}", r.body);
    }

    /// Creates a `data` volume in `iad` and returns its id.
    pub async fn volume(&self, app: &str) -> String {
        let r = self
            .post(
                &format!("/v1/apps/{app}/volumes"),
                json!({"name": "data", "region": "iad", "size_gb": 1}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "create volume: {:?}", r.body);
        r.body["id"].as_str().expect("volume id").to_string()
    }

    /// Creates a machine (optionally mounting `volume`, with `metadata`) and returns its JSON.
    pub async fn machine(&self, app: &str, volume: Option<&str>, metadata: Value) -> Value {
        let mut config = json!({
            "image": "registry.fly.io/openclaw:1",
            "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048},
            "restart": {"policy": "always"},
            "metadata": metadata,
        });
        if let Some(v) = volume {
            config["mounts"] = json!([{"volume": v, "path": "/data"}]);
        }
        let r = self
            .post(
                &format!("/v1/apps/{app}/machines"),
                json!({"name": "gateway", "region": "iad", "config": config}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "create machine: {:?}", r.body);
        r.body
    }

    /// Waits (via Fly's wait endpoint) for `state`, asserting 200.
    pub async fn wait_for(&self, app: &str, id: &str, state: &str) -> Value {
        // Fly needs the version a wait for `stopped` is about.
        let version = if state == "stopped" {
            let m = self.get(&format!("/v1/apps/{app}/machines/{id}")).await;
            format!(
                "&version={}",
                m.body["instance_id"].as_str().unwrap_or_default()
            )
        } else {
            String::new()
        };
        let r = self
            .get(&format!(
                "/v1/apps/{app}/machines/{id}/wait?state={state}&timeout=30{version}"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "wait {state}: {:?}", r.body);
        r.body
    }

    /// The machine's current state.
    pub async fn state_of(&self, app: &str, id: &str) -> String {
        let r = self.get(&format!("/v1/apps/{app}/machines/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "get machine: {:?}", r.body);
        r.body["state"].as_str().unwrap_or_default().to_string()
    }
}

/// The `error` text of a Fly error body.
pub fn error_text(r: &Resp) -> &str {
    r.body["error"].as_str().unwrap_or_default()
}
